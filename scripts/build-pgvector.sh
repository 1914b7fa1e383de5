#!/usr/bin/env bash
# Build pgvector for the system PostgreSQL from Debian's source package, as a Debian package
# (postgresql-15-pgvector, which Debian 12 lacks), and install it with apt: the package of
# pg_steadytext (make deb) depends on it, and dpkg then knows whose files these are.
#
# Debian 12 has no pgvector package, so we take the source package of the next release (trixie)
# through a private apt configuration: the system's sources.list stays untouched.
#
# Prints the path of the .deb (kept in $WORK for `make deb`).
set -euo pipefail

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PGVECTOR_VERSION=${PGVECTOR_VERSION:-0.8.0}
WORK=${PGVECTOR_WORK:-/var/cache/steadytext/pgvector}
PG_MAJOR=$("$PG_CONFIG" --version | sed 's/^PostgreSQL \([0-9]*\).*/\1/')
PACKAGE=postgresql-$PG_MAJOR-pgvector
# Debian's revision of the source package, plus ours: a later Debian package replaces it.
DEB_VERSION=$PGVECTOR_VERSION-1+steadytext2
DEB=$WORK/${PACKAGE}_${DEB_VERSION}_$(dpkg --print-architecture).deb

if [ -f "$DEB" ] && [ "$(dpkg-query -W -f='${Version}' "$PACKAGE" 2>/dev/null)" = "$DEB_VERSION" ] \
    && [ -f "$($PG_CONFIG --pkglibdir)/vector.so" ]; then
    echo "$DEB"
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
root=$WORK/package
rm -rf "$root"
make -s PG_CONFIG="$PG_CONFIG" DESTDIR="$root" install >/dev/null
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root$($PG_CONFIG --pkglibdir)/vector.so"
MAINTAINER=${DEB_MAINTAINER:-pg_steadytext developers <pg-steadytext@users.noreply.github.com>}
mkdir -p "$root/DEBIAN" "$root/usr/share/doc/$PACKAGE"
install -m 644 LICENSE "$root/usr/share/doc/$PACKAGE/copyright"
{
    echo "$PACKAGE ($DEB_VERSION) bookworm; urgency=medium"
    echo
    echo "  * pgvector $PGVECTOR_VERSION from Debian's source package $PGVECTOR_VERSION-1 (trixie)."
    echo
    echo " -- $MAINTAINER  $(date -R -u -r "$(ls "$WORK"/pgvector_*.dsc | head -1)")"
} | gzip -9n > "$root/usr/share/doc/$PACKAGE/changelog.Debian.gz"
(cd "$root" && find usr -type f -exec md5sum {} +) > "$root/DEBIAN/md5sums"
cat > "$root/DEBIAN/control" <<CONTROL
Package: $PACKAGE
Version: $DEB_VERSION
Architecture: $(dpkg --print-architecture)
Maintainer: $MAINTAINER
Installed-Size: $(du -sk "$root/usr" | cut -f1)
Depends: postgresql-$PG_MAJOR, libc6
Section: database
Priority: optional
Homepage: https://github.com/pgvector/pgvector
Description: Open-source vector similarity search for PostgreSQL $PG_MAJOR
 pgvector $PGVECTOR_VERSION built from Debian's source package by pg_steadytext's
 scripts/build-pgvector.sh, for Debian 12, which has no pgvector package.
CONTROL
dpkg-deb --root-owner-group -Zxz --build "$root" "$DEB" >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    --allow-downgrades "$DEB" >/dev/null
echo "$DEB"
