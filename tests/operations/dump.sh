#!/usr/bin/env bash
# Operations (TAP): backups keep everything users made.
#
# A database with a row in every table of the extension that a user or an admin writes (an
# admin's configuration change, rate limits, prompts with two versions, queued requests pending,
# claimed and completed, the audit trail, cache rows and their lookup counts). pg_dump in the
# custom format restored by pg_restore, and in the plain format through psql, each into a new
# database: every table of the extension (from the catalog) has the same rows, byte for byte,
# and every sequence goes on from where it was. Without the cache when the dump leaves it out
# (--exclude-table-data). The same for a database upgraded from the Python extension.
set -uo pipefail
cd "$(dirname "$0")/../.."
WORK=$(mktemp -d /tmp/pg_steadytext_dump.XXXXXX)
chmod 755 "$WORK"
# The dumps are written by the postgres user (pg_dump runs as it).
install -d -o postgres -m 700 "$WORK/dumps"
DATA=$WORK/data
PORT=${DUMP_PORT:-54383}
BIN=/usr/lib/postgresql/15/bin
source tests/tap.sh
cleanup() {
    unplace
    scripts/pg-cluster.sh stop "$DATA" >/dev/null 2>&1
    [ "$failed" -eq 0 ] && rm -rf "$WORK" || echo "# kept $WORK"
}
trap cleanup EXIT

PG_EXTRA_CONF="steadytext.use_daemon = off" scripts/pg-cluster.sh start "$DATA" "$PORT" >/dev/null
export PGHOST=$DATA PGPORT=$PORT
q() { psql -X -q -At -v ON_ERROR_STOP=1 -U postgres "$@"; }
as() { local role=$1 db=$2; shift 2; psql -X -q -At -v ON_ERROR_STOP=1 -U "$role" -d "$db" "$@"; }
q -d postgres -c "CREATE DATABASE src" >/dev/null
q -d src -c "CREATE EXTENSION vector; CREATE EXTENSION pg_steadytext" >/dev/null
q -d postgres -c "CREATE ROLE alice LOGIN IN ROLE steadytext_user" -c "CREATE ROLE dave LOGIN IN ROLE steadytext_admin" \
    -c "CREATE ROLE remote LOGIN IN ROLE steadytext_worker" >/dev/null
as dave src -c "SELECT steadytext_config_set('default_max_tokens', '100')" \
    -c "INSERT INTO steadytext_rate_limits (user_id, requests_per_minute) VALUES ('alice', 500)" >/dev/null
as alice src -c "SELECT steadytext_prompt_create('kept-prompt', 'Hi {{ who }}')" \
    -c "SELECT steadytext_prompt_update('kept-prompt', 'Hello {{ who }}')" \
    -c "SELECT steadytext_generate_async('pending one', 4), steadytext_generate_async('claimed one', 4),
               steadytext_generate_async('finished one', 4)" \
    -c "SELECT steadytext_generate_cached('Name a colour', 8), steadytext_embed_cached('a cached text'),
               steadytext_generate_cached('Name a colour', 8)" >/dev/null
as remote src -c "SELECT steadytext_queue_complete((steadytext_queue_claim('w', 1)).id, 'w', 'done')" \
    -c "SELECT (steadytext_queue_claim('w', 1)).id" >/dev/null

# Every table and sequence of the extension (daemon health aside: the daemon rewrites it), as
# lines "name rows md5" and "sequence last_value".
snapshot() {
    q -d "$1" <<'SQL'
DO $$
DECLARE r record; line text;
BEGIN
    CREATE TEMP TABLE snap (line text);
    FOR r IN SELECT c.oid::regclass AS name, c.relkind FROM pg_class c
             JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
             JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_steadytext'
             WHERE c.relkind IN ('r', 'S') AND c.relname <> 'steadytext_daemon_health' LOOP
        IF r.relkind = 'S' THEN
            EXECUTE format('SELECT %L || '' '' || last_value || '' '' || is_called FROM %s', r.name, r.name) INTO line;
        ELSE
            EXECUTE format('SELECT %L || '' '' || count(*) || '' '' || coalesce(md5(string_agg(t::text, E''\n'' ORDER BY t::text)), '''') FROM %s t',
                           r.name, r.name) INTO line;
        END IF;
        INSERT INTO snap VALUES (line);
    END LOOP;
END $$;
SELECT line FROM snap ORDER BY 1;
SQL
}
snapshot src > "$WORK/src.snap"
tables=$(grep -c . "$WORK/src.snap")
empty=$(awk '$2 == 0 && NF == 3 {print $1}' "$WORK/src.snap" | tr '\n' ' ')
check "the source has rows in every table ($tables tables and sequences)" "$([ -z "$empty" ]; echo $?)" "empty: $empty"

compare() { # how, database
    snapshot "$2" > "$WORK/$2.snap"
    diff -u "$WORK/src.snap" "$WORK/$2.snap" > "$WORK/$2.diff"
    check "$1: every table and sequence as it was ($tables)" $? "$(cat "$WORK/$2.diff")"
}
runuser -u postgres -- "$BIN/pg_dump" -h "$DATA" -p "$PORT" -Fc -f "$WORK/dumps/src.dump" src
q -d postgres -c "CREATE DATABASE custom" >/dev/null
out=$(runuser -u postgres -- "$BIN/pg_restore" -h "$DATA" -p "$PORT" -d custom --exit-on-error "$WORK/dumps/src.dump" 2>&1)
check "pg_dump -Fc | pg_restore: no error" $? "$out"
compare "custom format" custom
runuser -u postgres -- "$BIN/pg_dump" -h "$DATA" -p "$PORT" -f "$WORK/dumps/src.sql" src
q -d postgres -c "CREATE DATABASE plain" >/dev/null
out=$(q -d plain -f "$WORK/dumps/src.sql" 2>&1 >/dev/null)
check "pg_dump | psql: no error" $? "$out"
compare "plain format" plain
same "a restored admin setting applies (default_max_tokens)" \
    "$(as alice plain -c "SELECT steadytext_config_get('default_max_tokens')")" 100

runuser -u postgres -- "$BIN/pg_dump" -h "$DATA" -p "$PORT" --exclude-table-data=steadytext_cache -f "$WORK/dumps/nocache.sql" src
q -d postgres -c "CREATE DATABASE nocache" >/dev/null
q -d nocache -f "$WORK/dumps/nocache.sql" >/dev/null 2>&1
same "--exclude-table-data=steadytext_cache leaves the cache out" \
    "$(q -d nocache -c "SELECT (SELECT count(*) FROM steadytext_cache) || ' ' || (SELECT count(*) FROM steadytext_prompts)")" "0 1"

# From the Python extension: upgraded in place, then dumped and restored.
fixture=tests/upgrade/python-2025.11.25
place "$fixture/pg_steadytext--2025.11.25.sql" && place "$fixture/pg_steadytext--2025.11.25.control"
q -d postgres -c "CREATE DATABASE python" >/dev/null
q -d python -c "CREATE EXTENSION pg_steadytext VERSION '2025.11.25' CASCADE" >/dev/null 2>&1
q -d python -f "$fixture/rows.sql" >/dev/null
unplace
q -d python -c "ALTER EXTENSION pg_steadytext UPDATE" >/dev/null 2>&1
snapshot python > "$WORK/src.snap"
runuser -u postgres -- "$BIN/pg_dump" -h "$DATA" -p "$PORT" -Fc -f "$WORK/dumps/python.dump" python
q -d postgres -c "CREATE DATABASE python_restored" >/dev/null
out=$(runuser -u postgres -- "$BIN/pg_restore" -h "$DATA" -p "$PORT" -d python_restored --exit-on-error "$WORK/dumps/python.dump" 2>&1)
check "an upgraded Python database: pg_restore without an error" $? "$out"
compare "an upgraded Python database" python_restored
echo "1..$n"
exit "$failed"
