#!/usr/bin/env bash
# llama-cpp-sys-2 (the llama.cpp that every route runs) as crates.io ships it, with
# patches/llama-cpp-sys-2/*.patch applied, at vendor/llama-cpp-sys-2: Cargo.toml's
# [patch.crates-io] builds it instead of the registry copy. docs/batch-invariance.md says why
# rows-alone.patch exists.
#
# The patched tree is made once per machine under the build cache and vendor/ links to it, so
# every clone compiles llama.cpp from the same unchanged files and reuses the compiled library
# (a tree unpacked into each clone would be newer than the cache and rebuilt every time).
# canonical-source-path.patch completes that: the build script names the sources by the tree's
# real path, not by each clone's link, or cargo sees other paths from each clone and rebuilds.
# Idempotent; the crate comes from cargo's download cache when it is there, else from
# crates.io, and is checked against the sha256 below either way.
set -euo pipefail
cd "$(dirname "$0")/.."

# Bump together with the `=0.1.160` pins in Cargo.toml (and rebase the patches).
NAME=llama-cpp-sys-2
VERSION=0.1.160
SHA256=912d8a0522acec022ae07d099366234067c8af6a18570a603f0749b7bb927e9a

patches=(patches/$NAME/*.patch)
patch_id=$(cat "${patches[@]}" | sha256sum | cut -c1-12)
cache=${STEADYTEXT_VENDOR_CACHE:-$HOME/.cache/pg_steadytext/vendor}
tree=$cache/$NAME-$VERSION-$patch_id

if [ ! -f "$tree/Cargo.toml" ]; then
    mkdir -p "$cache"
    work=$(mktemp -d "$cache/.unpack.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    crate=$work/$NAME-$VERSION.crate
    cached=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"$NAME-$VERSION.crate" 2>/dev/null | head -1 || true)
    if [ -n "$cached" ]; then
        cp "$cached" "$crate"
    else
        curl -fsSL --retry 3 -o "$crate" "https://static.crates.io/crates/$NAME/$NAME-$VERSION.crate"
    fi
    echo "$SHA256  $crate" | sha256sum --check --quiet
    tar -xzf "$crate" -C "$work"
    for p in "${patches[@]}"; do
        # No fuzz: a patch that no longer applies exactly must fail, not land somewhere near.
        patch --quiet --forward --fuzz=0 --strip=1 --directory="$work/$NAME-$VERSION" < "$p"
    done
    # A run that finished first (two clones building at once) has already put the same tree
    # there; keep it.
    if mv -T "$work/$NAME-$VERSION" "$tree" 2>/dev/null; then
        echo "vendor: $NAME $VERSION with ${#patches[@]} patch(es) at $tree" >&2
    elif [ ! -f "$tree/Cargo.toml" ]; then
        echo "vendor: could not create $tree" >&2
        exit 1
    fi
fi

mkdir -p vendor
ln -sfn "$tree" vendor/$NAME
