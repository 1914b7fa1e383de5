#!/usr/bin/env bash
# Set up a fresh Debian 12 machine (as root) for building, testing and running pg_steadytext.
# Idempotent: every step checks whether its work is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_MAJOR=15
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
PGRX_VERSION=0.18.0
PACKAGES=(
    build-essential cmake clang libclang-dev pkg-config git curl ca-certificates sudo
    dpkg-dev python3 python3-venv
    postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR postgresql-$PG_MAJOR-pgtap
    libtap-parser-sourcehandler-pgtap-perl
    libzmq3-dev libssl-dev openssl procps
    # make deb and the package and upgrade tests (test-package, test-upgrade)
    lintian help2man pgxnclient unzip systemd adduser postgresql-plpython3-$PG_MAJOR
    # the operations test (test-http): Prometheus scrapes the daemon; pg_cron runs eviction
    prometheus postgresql-$PG_MAJOR-cron
)

step() { printf '\n== %s\n' "$*" >&2; }

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    step "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The st daemons of scripts/pg-cluster.sh clusters listen on PORT+1000 (55300-55399 for the
# tests, demo and benchmarks). Those ports are inside Linux's ephemeral range, so a client
# connection could hold one and the daemon would fail to bind (seen once in the fault tests).
# Reserving them keeps outgoing connections off them; best effort (a container may refuse).
reserved=/proc/sys/net/ipv4/ip_local_reserved_ports
if [ -w "$reserved" ] && ! grep -q '55300-55399' "$reserved"; then
    current=$(cat "$reserved")
    echo "${current:+$current,}55300-55399" > "$reserved" 2>/dev/null ||
        echo "setup: could not reserve ports 55300-55399 for the test daemons" >&2
fi

step "pgvector"
PG_CONFIG=$PG_CONFIG scripts/build-pgvector.sh

if ! command -v cargo >/dev/null; then
    echo "setup: cargo is not on PATH; install Rust (rustup) first" >&2
    exit 1
fi
if [ "$(cargo pgrx --version 2>/dev/null | awk '{print $2}')" != "$PGRX_VERSION" ]; then
    step "cargo-pgrx $PGRX_VERSION"
    cargo install cargo-pgrx --version "$PGRX_VERSION" --locked --quiet
fi
if ! grep -q "^pg$PG_MAJOR = \"$PG_CONFIG\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" 2>/dev/null; then
    step "cargo pgrx init (system PostgreSQL $PG_MAJOR)"
    cargo pgrx init --pg$PG_MAJOR "$PG_CONFIG" >/dev/null
fi

step "test models"
scripts/fetch-test-models.sh >/dev/null

step "JSON Schema Test Suite (tests/jsonschema)"
scripts/fetch-json-schema-suite.sh
