#!/usr/bin/env bash
# Builds the extension and lays out its files under OUT_DIR as they are installed (the library,
# the control file, the install script, the upgrade scripts): `make install-extension` copies
# them into place, `make deb` packages them: one build and one layout serve both.
#
#   scripts/package-extension.sh OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
out_dir=$1
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
profile=${PROFILE:-dist}
# Not in cargo's environment: zmq-sys's build script reruns when PROFILE changes, and `make build`
# runs without it, so each would recompile zmq-sys and everything above it for the other.
unset PROFILE
rm -rf "$out_dir"
(cd crates/pg_steadytext &&
    cargo pgrx package --profile "$profile" --pg-config "$PG_CONFIG" --out-dir "$out_dir" >/dev/null)
scripts/upgrade-scripts.sh "$out_dir$("$PG_CONFIG" --sharedir)/extension"
