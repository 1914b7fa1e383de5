#!/usr/bin/env bash
# Build and install pgvector for the system PostgreSQL from Debian's source package.
#
# Debian 12 has no pgvector package, so we take the source package of the next release (trixie)
# through a private apt configuration: the system's sources.list stays untouched.
set -euo pipefail

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PGVECTOR_VERSION=${PGVECTOR_VERSION:-0.8.0}
WORK=${PGVECTOR_WORK:-/var/cache/steadytext/pgvector}

if [ -f "$($PG_CONFIG --sharedir)/extension/vector--${PGVECTOR_VERSION}.sql" ] \
    && [ -f "$($PG_CONFIG --pkglibdir)/vector.so" ]; then
    echo "pgvector ${PGVECTOR_VERSION} already installed"
    exit 0
fi

mkdir -p "$WORK/apt/lists/partial" "$WORK/apt/sources"
cat > "$WORK/apt/sources/trixie-src.sources" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
APT_OPTS=(
    -o "Dir::Etc::SourceList=/dev/null"
    -o "Dir::Etc::SourceParts=$WORK/apt/sources"
    -o "Dir::State::Lists=$WORK/apt/lists"
    -o "Dir::Cache=$WORK/apt/cache"
    -o "Debug::NoLocking=1"
)
apt-get "${APT_OPTS[@]}" update -qq
cd "$WORK"
rm -rf "pgvector-${PGVECTOR_VERSION}"
apt-get "${APT_OPTS[@]}" source --download-only -qq "pgvector=${PGVECTOR_VERSION}-*" 2>/dev/null \
    || apt-get "${APT_OPTS[@]}" source --download-only -qq pgvector
dpkg-source -x --no-check pgvector_*.dsc "pgvector-${PGVECTOR_VERSION}" >/dev/null
cd "pgvector-${PGVECTOR_VERSION}"
make -s PG_CONFIG="$PG_CONFIG" OPTFLAGS="" >/dev/null
make -s PG_CONFIG="$PG_CONFIG" install >/dev/null
echo "pgvector $(grep default_version vector.control) installed"
