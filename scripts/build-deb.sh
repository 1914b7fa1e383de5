#!/usr/bin/env bash
# make deb: dist/postgresql-15-steadytext_<version>-1_<arch>.deb with the extension (library,
# install and upgrade scripts), st, its manual page, and the systemd units of st daemon and
# st worker; beside it dist/postgresql-15-pgvector_*.deb, the pgvector package it depends on
# (scripts/build-pgvector.sh; Debian 12 has none).
#
# Expects `make build` to have built st; builds the extension with scripts/package-extension.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PROFILE=${PROFILE:-dist}
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/pg_steadytext/target}
BIN=$CARGO_TARGET_DIR/$PROFILE
PG_MAJOR=$("$PG_CONFIG" --version | sed 's/^PostgreSQL \([0-9]*\).*/\1/')
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
PACKAGE=postgresql-$PG_MAJOR-steadytext
DEB_VERSION=$VERSION-1
ARCH=$(dpkg --print-architecture)
# The project has no mail domain of its own: set DEB_MAINTAINER when publishing a package.
MAINTAINER=${DEB_MAINTAINER:-pg_steadytext developers <pg-steadytext@users.noreply.github.com>}
# The changelog's date is the commit's. Not exported as SOURCE_DATE_EPOCH: C build scripts
# track that variable, and cargo would rebuild half the dependency tree for it.
released=$(git log -1 --format=%ct 2>/dev/null || date +%s)

root=$CARGO_TARGET_DIR/deb/$PACKAGE
PG_CONFIG=$PG_CONFIG PROFILE=$PROFILE scripts/package-extension.sh "$root"
mkdir -p dist
lib=$root$("$PG_CONFIG" --pkglibdir)/pg_steadytext.so

install -D -m 755 "$BIN/st" "$root/usr/bin/st"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/st" "$lib"
chmod 644 "$lib"
install -d "$root/usr/share/man/man1"
help2man --no-info --version-string="$VERSION" \
    --name "deterministic text generation, embeddings and reranking on local GGUF models" \
    "$root/usr/bin/st" | gzip -9n > "$root/usr/share/man/man1/st.1.gz"
install -D -m 644 -t "$root/lib/systemd/system" packaging/systemd/*.service
install -D -m 644 packaging/debian/default "$root/etc/default/steadytext"
install -D -m 644 packaging/debian/lintian-overrides \
    "$root/usr/share/lintian/overrides/$PACKAGE"

doc=$root/usr/share/doc/$PACKAGE
install -D -m 644 packaging/debian/copyright "$doc/copyright"
install -m 644 README.md "$doc/README.md"
gzip -9nc CHANGELOG.md > "$doc/changelog.gz"
{
    echo "$PACKAGE ($DEB_VERSION) bookworm; urgency=medium"
    echo
    echo "  * pg_steadytext $VERSION (see changelog.gz)."
    echo
    echo " -- $MAINTAINER  $(date -R -u -d "@$released")"
} | gzip -9n > "$doc/changelog.Debian.gz"
chmod 644 "$doc"/*.gz
find "$root" -type d -exec chmod 755 {} +

# Shared-library dependencies as dpkg-shlibdeps computes them (it wants a debian/control).
shlibs_dir=$(mktemp -d)
trap 'rm -rf "$shlibs_dir"' EXIT
mkdir "$shlibs_dir/debian"
printf 'Source: pg-steadytext\n\nPackage: %s\nArchitecture: any\n' "$PACKAGE" > "$shlibs_dir/debian/control"
# The library's PostgreSQL symbols come from the server itself: not a library dependency.
shlibs=$(cd "$shlibs_dir" && dpkg-shlibdeps -O --ignore-missing-info -e"$root/usr/bin/st" -e"$lib" 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p')

install -d "$root/DEBIAN"
install -m 755 packaging/debian/postinst packaging/debian/postrm packaging/debian/prerm "$root/DEBIAN/"
echo /etc/default/steadytext > "$root/DEBIAN/conffiles"
(cd "$root" && find usr lib -type f -print0 | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
cat > "$root/DEBIAN/control" <<CONTROL
Package: $PACKAGE
Version: $DEB_VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: postgresql-$PG_MAJOR, postgresql-$PG_MAJOR-pgvector (>= 0.7.0), adduser, $shlibs
Section: database
Priority: optional
Homepage: https://pgxn.org/dist/pg_steadytext/
Description: deterministic text generation and embeddings in PostgreSQL $PG_MAJOR
 pg_steadytext generates text, structured output, embeddings and rerankings
 inside PostgreSQL, on local GGUF models run by llama.cpp: the same input gives
 the same output, every time. It has an async job queue, summarization and a
 prompt registry.
 .
 This package contains the extension, the st command (daemon, queue worker,
 model management) and systemd units for st daemon and st worker.
CONTROL
deb=dist/${PACKAGE}_${DEB_VERSION}_$ARCH.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
cp "$(PG_CONFIG=$PG_CONFIG DEB_MAINTAINER="$MAINTAINER" scripts/build-pgvector.sh | tail -1)" dist/
echo "$deb"
