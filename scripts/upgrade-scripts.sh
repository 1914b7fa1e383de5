#!/usr/bin/env bash
# Writes the upgrade scripts of this version into an extension directory that already holds its
# install script (what `cargo pgrx package` wrote, in scripts/package-extension.sh):
#
#   pg_steadytext--PREVIOUS--VERSION.sql   every one of ours, from crates/pg_steadytext/sql/upgrade/
#   pg_steadytext--2025.11.25--VERSION.sql from the Python extension: prologue, this version's
#                                          install script, epilogue (see the prologue for why)
#
#   scripts/upgrade-scripts.sh EXTENSION_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
ext_dir=$1
src=crates/pg_steadytext/sql/upgrade
version=$(sed -n "s/^default_version = '\(.*\)'$/\1/p" "$ext_dir/pg_steadytext.control")
install_script="$ext_dir/pg_steadytext--$version.sql"
if [ -z "$version" ] || [ ! -f "$install_script" ]; then
    echo "upgrade-scripts: no install script for version '$version' in $ext_dir" >&2
    exit 1
fi

for script in "$src"/pg_steadytext--*--*.sql; do
    install -m 644 "$script" "$ext_dir/"
done

python_script="$ext_dir/pg_steadytext--2025.11.25--$version.sql"
{
    cat "$src/from-python.prologue.sql"
    cat "$install_script"
    sed "s/@VERSION@/$version/g" "$src/from-python.epilogue.sql"
} > "$python_script.tmp"
chmod 644 "$python_script.tmp"
mv "$python_script.tmp" "$python_script"
