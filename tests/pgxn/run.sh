#!/usr/bin/env bash
# The PGXN distribution (TAP): META.json follows PGXN Meta Spec v1.0.0 (check_meta.py); `make dist`
# built dist/pg_steadytext-VERSION.zip; Debian's PGXN client installs it from the zip (it unpacks
# it, runs `make` and `make install`, building from the sources in the zip); CREATE EXTENSION and a
# generation in a fresh cluster; `pgxn uninstall` removes the files. (make test-package then
# installs the build again.)
set -uo pipefail
cd "$(dirname "$0")/../.."
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
ZIP=dist/pg_steadytext-$VERSION.zip
DIR=$(mktemp -d /tmp/pg_steadytext_pgxn.XXXXXX)
chmod 755 "$DIR"
PORT=${PGXN_PORT:-54380}
LIB=$("$PG_CONFIG" --pkglibdir)/pg_steadytext.so
EXT_DIR=$("$PG_CONFIG" --sharedir)/extension
source tests/tap.sh
cleanup() {
    scripts/pg-cluster.sh stop "$DIR/pg" >/dev/null 2>&1
    [ $failed -eq 0 ] && rm -rf "$DIR" || echo "# kept $DIR"
}
trap cleanup EXIT

python3 tests/pgxn/check_meta.py META.json "$VERSION" > "$DIR/meta.tap" || failed=1
n=$(grep -c '^\(not \)\?ok' "$DIR/meta.tap")
cat "$DIR/meta.tap"

same "make dist built $ZIP with META.json, the Makefile and the extension's sources" \
    "$(unzip -Z1 "$ZIP" 2>/dev/null | grep -cx "pg_steadytext-$VERSION/\(META.json\|Makefile\|crates/pg_steadytext/pg_steadytext.control\|crates/pg_steadytext/sql/upgrade/from-python.epilogue.sql\)")" "4"

rm -f "$LIB"
start=$SECONDS
pgxn install --pg_config "$PG_CONFIG" "$ZIP" > "$DIR/pgxn-install.log" 2>&1
check "pgxn install $ZIP (built from the zip in $((SECONDS - start)) s)" $? "$(tail -15 "$DIR/pgxn-install.log")"
# make test built llama.cpp before this; the unpacked zip links the same vendored tree and
# shares the build cache, so it must not compile llama.cpp again (patches/llama-cpp-sys-2/
# canonical-source-path.patch). Then make install, after this suite, does not either. (A
# relative CARGO_TARGET_DIR is a cache of the zip's own, built from nothing.)
if [[ ${CARGO_TARGET_DIR:-} == /* ]]; then
    same "the build from the zip ran cargo and reused the compiled llama.cpp" \
        "$(grep -c '^ *Finished ' "$DIR/pgxn-install.log" | sed 's/^[1-9][0-9]*$/cargo ran/'), $(grep -c 'Compiling llama-cpp-sys-2' "$DIR/pgxn-install.log")" \
        "cargo ran, 0"
else
    check "the build from the zip reused the compiled llama.cpp # SKIP CARGO_TARGET_DIR is not absolute" 0
fi
same "it installed the library, the control file, the install and upgrade scripts, and st" \
    "$(for f in "$LIB" "$EXT_DIR/pg_steadytext.control" "$EXT_DIR/pg_steadytext--$VERSION.sql" "$EXT_DIR/pg_steadytext--2025.11.25--$VERSION.sql" /usr/local/bin/st; do [ -f "$f" ] || echo "missing $f"; done)" ""

same "the installed control file's default_version is META.json's version" \
    "$(sed -n "s/^default_version = '\(.*\)'$/\1/p" "$EXT_DIR/pg_steadytext.control")" "$VERSION"

scripts/pg-cluster.sh start "$DIR/pg" "$PORT" >/dev/null
export PGHOST=$DIR/pg PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
same "CREATE EXTENSION pg_steadytext from the PGXN build: version $VERSION" \
    "$(q -c "CREATE EXTENSION vector; CREATE EXTENSION pg_steadytext" -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_steadytext'")" "$VERSION"
gen=$(q -c "SELECT steadytext_generate('Name a colour.', 8, false)")
check "steadytext_generate: '$gen'" "$([ -n "$gen" ]; echo $?)"
scripts/pg-cluster.sh stop "$DIR/pg" >/dev/null

pgxn uninstall --pg_config "$PG_CONFIG" "$ZIP" > "$DIR/pgxn-uninstall.log" 2>&1
check "pgxn uninstall" $? "$(tail -5 "$DIR/pgxn-uninstall.log")"
same "no file of the extension or st is left" \
    "$(ls "$LIB" "$EXT_DIR"/pg_steadytext* /usr/local/bin/st 2>/dev/null)" ""

echo "1..$n"
exit $failed
