#!/usr/bin/env bash
# What `cargo pgrx test`'s harness runs to build and install the extension (Makefile, test-pgrx:
# CARGO_PGRX). The harness runs `$CARGO_PGRX pgrx install ...` from inside the test binary, whose
# environment cargo filled with the test crate's CARGO_MANIFEST_DIR and CARGO_PKG_* variables.
# ring's build script reruns when those change, so that build, and the next `make build` or
# `cargo pgrx package`, would each recompile ring and everything above it (rustls, ureq, hf-hub,
# steadytext). Here cargo-pgrx runs without what cargo sets for a running test (and pgrx's own
# variables for it); cargo settings from the caller's environment (CARGO_BUILD_*,
# CARGO_PROFILE_*, CARGO_ENCODED_RUSTFLAGS, ...) stay, as the harness's build had them.
set -euo pipefail
for name in $(compgen -e); do
    case $name in
        CARGO_MANIFEST_DIR | CARGO_MANIFEST_PATH | CARGO_PKG_* | CARGO_CRATE_NAME | CARGO_BIN_NAME | \
            CARGO_PRIMARY_PACKAGE | CARGO_TARGET_TMPDIR | CARGO_RUSTC_CURRENT_DIR | CARGO_PGRX | \
            CARGO_PGRX_TEST_* | OUT_DIR) unset "$name" ;;
    esac
done
# cargo-pgrx installs with a plain `cp` onto the installed files, which rewrites them in place:
# a running server that mapped pg_steadytext.so (a preloaded cluster of the demo, say) then runs
# the new bytes at the old addresses and dies (SIGSEGV). Each installed file is first replaced
# by a copy of itself under the same name (a new inode, by rename), so the copy that follows
# rewrites a file no running server has open.
if [ "${1:-}" = pgrx ] && [ "${2:-}" = install ]; then
    pg_config=$(sed -n 's/^pg15 = "\(.*\)"$/\1/p' "${PGRX_HOME:-$HOME/.pgrx}/config.toml" 2>/dev/null)
    pg_config=${pg_config:-${PG_CONFIG:-pg_config}}
    for file in "$("$pg_config" --pkglibdir)"/pg_steadytext.so "$("$pg_config" --sharedir)"/extension/pg_steadytext*; do
        [ -f "$file" ] || continue
        sudo cp -p "$file" "$file.steadytext-new" && sudo mv -f "$file.steadytext-new" "$file"
    done
fi
exec cargo-pgrx "$@"
