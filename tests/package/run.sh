#!/usr/bin/env bash
# The Debian package (TAP), as `make deb` built it: lintian; `apt-get install ./file.deb`; its
# files, system user and systemd units; CREATE EXTENSION with a generate and an embed in a fresh
# cluster whose daemon is the package's st; `apt-get purge`, after which none of its files, its
# user or its state is left. (make test-package then installs the build again.)
set -uo pipefail
cd "$(dirname "$0")/../.."
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
PACKAGE=postgresql-15-steadytext
DEB=dist/${PACKAGE}_${VERSION}-1_$(dpkg --print-architecture).deb
DIR=$(mktemp -d /tmp/pg_steadytext_package.XXXXXX)
chmod 755 "$DIR"
PORT=${PACKAGE_PORT:-54370}
source tests/tap.sh
cleanup() {
    STEADYTEXT_ST=/usr/bin/st scripts/pg-cluster.sh stop "$DIR/pg" >/dev/null 2>&1
    [ $failed -eq 0 ] && rm -rf "$DIR" || echo "# kept $DIR"
}
trap cleanup EXIT

[ -f "$DEB" ]
check "make deb built $DEB ($(du -h "$DEB" 2>/dev/null | cut -f1))" $?
dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ {print "#   " $6}'

# Lintian: every tag it reports must be one explained in packaging/debian/lintian.md.
lintian --no-tag-display-limit "$DEB" > "$DIR/lintian.txt" 2>&1
unexplained=$(sed -n 's/^[EWIP]: [^ ]* [^ ]*: \([a-z0-9-]*\).*/\1/p' "$DIR/lintian.txt" | sort -u |
    while read -r tag; do grep -q "^- \`$tag\`" packaging/debian/lintian.md || echo "$tag"; done)
sed 's/^/# lintian: /' "$DIR/lintian.txt"
same "lintian reports no tag that packaging/debian/lintian.md does not explain" "$unexplained" ""
same "lintian reports no error or warning" "$(grep -c '^[EW]: ' "$DIR/lintian.txt")" "0"

DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "./$DEB" > "$DIR/apt-install.log" 2>&1
check "apt-get install ./$DEB" $? "$(tail -5 "$DIR/apt-install.log")"
same "the package is installed" "$(dpkg-query -W -f='${Status} ${Version}' $PACKAGE 2>/dev/null)" "install ok installed $VERSION-1"
files=$(dpkg -L $PACKAGE | while read -r f; do [ -f "$f" ] && echo "$f"; done)
same "it installed st, the extension's library and its $VERSION install script" \
    "$(for f in /usr/bin/st /usr/lib/postgresql/15/lib/pg_steadytext.so /usr/share/postgresql/15/extension/pg_steadytext--$VERSION.sql /usr/share/postgresql/15/extension/pg_steadytext--2025.11.25--$VERSION.sql; do echo "$files" | grep -qx "$f" || echo "missing $f"; done)" ""
same "the package's st runs" "$(/usr/bin/st --version 2>&1 | head -1 | grep -c "$VERSION")" "1"
same "the system user steadytext exists, with its state directory" \
    "$(id -u steadytext >/dev/null 2>&1 && stat -c '%U %a' /var/lib/steadytext)" "steadytext 750"
for unit in steadytext-daemon.service steadytext-worker@.service; do
    out=$(systemd-analyze verify "/lib/systemd/system/$unit" 2>&1 | grep -v 'Failed to connect\|not running' )
    same "systemd-analyze verify $unit" "$out" ""
done
same "the units run as steadytext in a sandbox" \
    "$(grep -h -c '^User=steadytext\|^ProtectSystem=strict\|^NoNewPrivileges=yes\|^ProtectHome=yes\|^PrivateTmp=yes' /lib/systemd/system/steadytext-daemon.service /lib/systemd/system/steadytext-worker@.service | tr '\n' ' ')" "5 5 "

# The package's extension, in a fresh cluster whose daemon is the package's st.
STEADYTEXT_ST=/usr/bin/st scripts/pg-cluster.sh start "$DIR/pg" "$PORT" >/dev/null
export PGHOST=$DIR/pg PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -c "CREATE EXTENSION vector; CREATE EXTENSION pg_steadytext" >/dev/null
check "CREATE EXTENSION pg_steadytext" $?
same "steadytext_version() is $VERSION" "$(q -c "SELECT steadytext_version()")" "$VERSION"
gen=$(q -c "SELECT steadytext_generate('Name a colour.', 8, false)")
check "steadytext_generate through the package's daemon: '$gen'" "$([ -n "$gen" ]; echo $?)"
same "steadytext_embed: 1024 dimensions, unit norm" \
    "$(q -c "SELECT vector_dims(v) || ' ' || round(vector_norm(v)::numeric, 3) FROM (SELECT steadytext_embed('colour', false) v) e")" "1024 1.000"
same "the daemon that answered is /usr/bin/st" \
    "$(pgrep -u postgres -f "^/usr/bin/st daemon run" >/dev/null && echo yes)" "yes"
STEADYTEXT_ST=/usr/bin/st scripts/pg-cluster.sh stop "$DIR/pg" >/dev/null

DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq $PACKAGE > "$DIR/apt-purge.log" 2>&1
check "apt-get purge $PACKAGE" $? "$(tail -5 "$DIR/apt-purge.log")"
left=$(for f in $files; do [ -e "$f" ] && echo "$f"; done)
same "none of its $(echo "$files" | wc -l) files is left" "$left" ""
same "no user, group, state or cache directory is left" \
    "$(getent passwd steadytext; getent group steadytext; ls -d /var/lib/steadytext /var/cache/steadytext-daemon /etc/steadytext /etc/default/steadytext 2>/dev/null)" ""
same "dpkg has the package as not installed" \
    "$(dpkg-query -W -f='${Status}' $PACKAGE 2>/dev/null | grep -c 'ok installed\|config-files')" "0"

echo "1..$n"
exit $failed
