#!/usr/bin/env bash
# What `cargo pgrx test`'s harness runs to build and install the extension (Makefile, test-pgrx:
# CARGO_PGRX). The harness runs `$CARGO_PGRX pgrx install ...` from inside the test binary, whose
# environment cargo filled with the test crate's CARGO_MANIFEST_DIR and CARGO_PKG_* variables.
# ring's build script reruns when those change, so that build, and the next `make build` or
# `cargo pgrx package`, would each recompile ring and everything above it (rustls, ureq, hf-hub,
# steadytext). Here cargo-pgrx runs with the environment the harness was started with.
set -euo pipefail
for name in $(compgen -e); do
    case $name in
        CARGO_HOME | CARGO_TARGET_DIR) ;;
        CARGO_* | OUT_DIR) unset "$name" ;;
    esac
done
exec cargo-pgrx "$@"
