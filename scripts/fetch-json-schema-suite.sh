#!/usr/bin/env bash
# The JSON Schema Test Suite (npm package json-schema-test-suite, pinned and checked by sha256)
# and a private Python environment with a JSON Schema validator, for tests/jsonschema.
set -euo pipefail
DEST=${STEADYTEXT_JSON_SCHEMA_SUITE:-/var/cache/steadytext/json-schema-test-suite}
VENV=${STEADYTEXT_JSONSCHEMA_VENV:-/var/cache/steadytext/jsonschema-venv}
VERSION=0.0.10
SHA256=0b54234c9ae1c164deefae9f45c1491f18852b6d5748c093279597b7ae0e328c

if [ ! -f "$DEST/.sha256-$SHA256" ]; then
    tmp=$(mktemp -d)
    # The npm registry's tarball of the package (npm itself is not needed to fetch it).
    curl -fsSL -o "$tmp/json-schema-test-suite-$VERSION.tgz" \
        "https://registry.npmjs.org/json-schema-test-suite/-/json-schema-test-suite-$VERSION.tgz"
    echo "$SHA256  $tmp/json-schema-test-suite-$VERSION.tgz" | sha256sum -c --quiet
    rm -rf "$DEST" && mkdir -p "$DEST"
    tar xzf "$tmp/json-schema-test-suite-$VERSION.tgz" -C "$DEST" --strip-components=1
    touch "$DEST/.sha256-$SHA256"
    rm -rf "$tmp"
fi
if ! "$VENV/bin/python" -c "import jsonschema" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check jsonschema==4.26.0
fi
