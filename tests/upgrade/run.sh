#!/usr/bin/env bash
# Upgrades (TAP), against the installed extension and its upgrade scripts (make install-extension):
#
#   - from the Python extension 2025.11.25: a stand-in install built from the reference's schema
#     facts (python-2025.11.25/), with rows in every table (rows.sql), upgraded in place with
#     ALTER EXTENSION ... UPDATE; every row is checked, the PL/Python dependency is gone, the
#     pending queue rows are served by `st worker` with the synchronous functions' bytes;
#   - from each earlier release of ours (releases/pg_steadytext--VERSION.sql, the install script
#     as that release generated it);
#   - after each upgrade the schema equals a fresh install's: pg_dump --schema-only of both, the
#     extension's objects detached so that pg_dump prints them, compared line by line.
#
# The stand-in and the earlier install scripts are copied into the extension directory for the
# test and removed after it.
set -uo pipefail
cd "$(dirname "$0")/../.."
DIR=$(mktemp -d /tmp/pg_steadytext_upgrade.XXXXXX)
chmod 755 "$DIR"
PORT=${UPGRADE_PORT:-54360}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
EXT_DIR=$("$PG_CONFIG" --sharedir)/extension
MODELS=${STEADYTEXT_TEST_MODELS:-/var/cache/steadytext/test-models}
ST=$(command -v st || echo /usr/local/bin/st)
VERSION=$(sed -n "s/^default_version = '\(.*\)'$/\1/p" "$EXT_DIR/pg_steadytext.control")
worker=
source tests/tap.sh
cleanup() {
    [ -n "$worker" ] && kill -KILL "$worker" 2>/dev/null
    unplace
    scripts/pg-cluster.sh stop "$DIR" >/dev/null 2>&1
    [ $failed -eq 0 ] && rm -rf "$DIR" || echo "# kept $DIR"
}
trap cleanup EXIT

scripts/pg-cluster.sh start "$DIR" "$PORT" >/dev/null
export PGHOST=$DIR PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# The schema of database $1: the tables whose rows pg_dump dumps (pg_extension_config_dump),
# then pg_dump's output with the extension's objects detached (pg_dump prints members of an
# extension as CREATE EXTENSION alone). Leaves the database with the objects detached.
schema_of() {
    q -d "$1" -c "SELECT 'dumped with the database: ' || c::regclass::text || ' ' || quote_literal(coalesce(cond, ''))
                  FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(c, cond)
                  WHERE e.extname = 'pg_steadytext' ORDER BY 1"
    # pg_dump prints an extension object's privileges only where they differ from those its
    # script gave it (pg_init_privs), so they are listed here.
    q -d "$1" -c "SELECT 'privileges of ' || pg_describe_object(d.classid, d.objid, 0) || ': ' || coalesce(
                      CASE d.classid
                          WHEN 'pg_class'::regclass THEN (SELECT c.relacl::text FROM pg_class c WHERE c.oid = d.objid)
                          WHEN 'pg_proc'::regclass THEN (SELECT p.proacl::text FROM pg_proc p WHERE p.oid = d.objid)
                          WHEN 'pg_namespace'::regclass THEN (SELECT n.nspacl::text FROM pg_namespace n WHERE n.oid = d.objid)
                          WHEN 'pg_type'::regclass THEN (SELECT t.typacl::text FROM pg_type t WHERE t.oid = d.objid)
                      END, 'default')
                  FROM pg_depend d
                  WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
                    AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_steadytext')
                  ORDER BY 1"
    q -d "$1" >/dev/null <<'SQL'
DO $$
DECLARE o record;
BEGIN
    FOR o IN
        SELECT (pg_identify_object(d.classid, d.objid, 0)).*
        FROM pg_depend d
        WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
          AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_steadytext')
    LOOP
        EXECUTE format('ALTER EXTENSION pg_steadytext DROP %s %s', o.type, o.identity);
    END LOOP;
END
$$;
SQL
    # pg_dump 15.14 and later write a random \restrict key: not part of the schema.
    /usr/lib/postgresql/15/bin/pg_dump --schema-only "$1" | grep -v '^\\\(un\)\?restrict '
}
q -c "CREATE DATABASE fresh" >/dev/null
q -d fresh -c "CREATE EXTENSION vector; CREATE EXTENSION pg_steadytext" >/dev/null
members_fresh=$(q -d fresh -c "SELECT count(*) FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e' AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_steadytext')")
schema_of fresh > "$DIR/fresh.sql"
check "a fresh install of $VERSION dumps its $members_fresh objects" \
    "$([ "$members_fresh" -gt 100 ] && grep -q 'CREATE FUNCTION public.steadytext_generate' "$DIR/fresh.sql"; echo $?)"

# --- from the Python extension ----------------------------------------------------------------
fixture=tests/upgrade/python-2025.11.25
place "$fixture/pg_steadytext--2025.11.25.sql" && place "$fixture/pg_steadytext--2025.11.25.control"
q -c "CREATE DATABASE python" >/dev/null
q -d python -c "CREATE EXTENSION pg_steadytext VERSION '2025.11.25' CASCADE" >/dev/null 2>&1
same "the stand-in Python extension installs, with plpython3u" \
    "$(q -d python -c "SELECT string_agg(extname || ' ' || extversion, ', ' ORDER BY extname) FROM pg_extension WHERE extname <> 'plpgsql'")" \
    "pg_steadytext 2025.11.25, plpython3u 1.0, vector 0.8.0"
q -d python -f "$fixture/rows.sql" >/dev/null
before=$(q -d python -c "SELECT (SELECT count(*) FROM steadytext_config) || ' ' || (SELECT count(*) FROM steadytext_queue) || ' ' || (SELECT count(*) FROM steadytext_cache) || ' ' || (SELECT count(*) FROM steadytext_daemon_health) || ' ' || (SELECT count(*) FROM steadytext_rate_limits) || ' ' || (SELECT count(*) FROM steadytext_audit_log) || ' ' || (SELECT count(*) FROM steadytext_prompts) || ' ' || (SELECT count(*) FROM steadytext_prompt_versions)")
same "rows in config, queue, cache, daemon health, rate limits, audit log, prompts, versions" "$before" "10 7 3 2 2 6 2 4"
audit_max=$(q -d python -c "SELECT max(id) FROM steadytext_audit_log")
q -d python -c "CREATE TABLE user_data (id int)" >/dev/null

# A view of the user's on an extension function stops the upgrade, which changes nothing.
q -c "CREATE DATABASE python_blocked" >/dev/null
q -d python_blocked -c "CREATE EXTENSION pg_steadytext VERSION '2025.11.25' CASCADE" \
    -c "CREATE VIEW my_answers AS SELECT steadytext_generate('x') AS answer" >/dev/null 2>&1
blocked=$(psql -X -q -At -d python_blocked -v VERBOSITY=verbose -c "ALTER EXTENSION pg_steadytext UPDATE TO '$VERSION'" 2>&1)
same "an upgrade blocked by a user's view fails with 2BP01 naming the view" \
    "$(echo "$blocked" | grep -c '2BP01: cannot drop function .*steadytext_generate'; echo "$blocked" | grep -c 'view .*my_answers depends')" "1
1"
same "and leaves the Python extension and the view as they were" \
    "$(q -d python_blocked -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_steadytext'") $(q -d python_blocked -c "SELECT count(*) FROM pg_views WHERE viewname = 'my_answers'")" \
    "2025.11.25 1"
# The files of the Python version are not needed to upgrade (a package replaces them).
unplace

notices=$(psql -X -q -At -v ON_ERROR_STOP=1 -d python -c "ALTER EXTENSION pg_steadytext UPDATE TO '$VERSION'" 2>&1)
check "ALTER EXTENSION pg_steadytext UPDATE TO '$VERSION' from 2025.11.25" $? "$notices"
echo "$notices" | sed 's/^/# /'
same "the extension is at $VERSION" "$(q -d python -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_steadytext'")" "$VERSION"
same "it no longer depends on plpython3u" \
    "$(q -d python -c "SELECT count(*) FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid WHERE d.classid = 'pg_extension'::regclass AND d.objid = (SELECT oid FROM pg_extension WHERE extname = 'pg_steadytext') AND e.extname = 'plpython3u'")" "0"
same "none of its functions is PL/Python" \
    "$(q -d python -c "SELECT count(*) FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE l.lanname = 'plpython3u'")" "0"
q -d python -c "DROP EXTENSION plpython3u" >/dev/null 2>&1
check "plpython3u can be dropped (RESTRICT)" $?
same "the user's own table is untouched" "$(q -d python -c "SELECT to_regclass('user_data') IS NOT NULL")" "t"
q -d python -c "DROP TABLE user_data" >/dev/null  # not part of the schema comparison below
same "no schema is left behind" "$(q -d python -c "SELECT count(*) FROM pg_namespace WHERE nspname = '_steadytext_python'")" "0"

# Config: 9 default rows + cron_host kept, + the 2 rows of this version; strings converted.
same "config: the Python rows kept, this version's added" \
    "$(q -d python -c "SELECT count(*) FROM steadytext_config")" "12"
same "config: '64' stored as a string becomes the number 64, its role and time kept" \
    "$(q -d python -c "SELECT value::text || ' ' || jsonb_typeof(value) || ' ' || updated_by || ' ' || (updated_at = '2025-12-01 10:00+00') FROM steadytext_config WHERE key = 'default_max_tokens'")" \
    "64 number old_admin true"
same "config: 'false' becomes a boolean" \
    "$(q -d python -c "SELECT jsonb_typeof(value) || ' ' || value::text FROM steadytext_config WHERE key = 'cache_eviction_enabled'")" "boolean false"
same "config: a value this version refuses keeps the default, and a WARNING names it" \
    "$(q -d python -c "SELECT value::text FROM steadytext_config WHERE key = 'default_seed'") $(echo "$notices" | grep -c 'config values refused, kept at this version.s default (1): default_seed = "-5"')" "42 1"
same "config: a key this version does not use is kept" \
    "$(q -d python -c "SELECT value #>> '{}' FROM steadytext_config WHERE key = 'cron_host'")" "db.internal"
same "config: steadytext_config_get reads the converted value" \
    "$(q -d python -c "SELECT steadytext_config_get('default_max_tokens')")" "64"

# Queue: every row, ids and request ids kept; processing back to pending; embed text in prompt.
same "queue: every row with its id, request id and type" \
    "$(q -d python -c "SELECT string_agg(id || ':' || right(request_id::text, 1) || ':' || request_type || ':' || status, ' ' ORDER BY id) FROM steadytext_queue")" \
    "1:1:generate:pending 2:2:embed:pending 3:3:generate:pending 4:4:generate:completed 5:5:rerank:failed 6:6:generate:cancelled 7:7:embed:failed"
same "queue: a processing row is pending again, its start cleared" \
    "$(q -d python -c "SELECT started_at IS NULL AND user_id = 'alice' FROM steadytext_queue WHERE id = 3")" "t"
same "queue: a pending row naming a model by path fails, with a WARNING" \
    "$(q -d python -c "SELECT error LIKE 'model ''/etc/ssl/private/key.gguf'' names a file by path%' FROM steadytext_queue WHERE id = 7") $(echo "$notices" | grep -c 'pending queue requests failed because they name a model by path (1)')" "t 1"
same "queue: an embed row of steadytext_embed_async has its text in prompt" \
    "$(q -d python -c "SELECT prompt FROM steadytext_queue WHERE id = 2")" "green tea"
same "queue: finished rows keep their results and errors" \
    "$(q -d python -c "SELECT (SELECT result FROM steadytext_queue WHERE id = 4) || ' / ' || (SELECT error || ' ' || retry_count FROM steadytext_queue WHERE id = 5)")" \
    "Hi there! / RuntimeError: Failed to load reranking model 1"
same "queue: new ids continue after the Python sequence" \
    "$(q -d python -c "SELECT nextval('steadytext_queue_id_seq')")" "10"

# Cache: dropped, counted.
same "cache: the rows keyed by the old scheme are dropped, with a WARNING giving the count" \
    "$(q -d python -c "SELECT count(*) FROM steadytext_cache") $(echo "$notices" | grep -c 'dropped 3 cache rows')" "0 1"

same "daemon health: both rows as they were" \
    "$(q -d python -c "SELECT string_agg(daemon_id || ':' || status || ':' || coalesce(version, '-') || ':' || total_requests, ' ' ORDER BY daemon_id) FROM steadytext_daemon_health")" \
    "default:healthy:2025.10.30:1234 gpu-box:unhealthy:-:0"
same "rate limits: both rows as they were, with a WARNING that they are enforced now" \
    "$(q -d python -c "SELECT string_agg(user_id || ':' || requests_per_minute || ':' || current_minute_count, ' ' ORDER BY user_id) FROM steadytext_rate_limits") $(echo "$notices" | grep -c 'rate limit rows kept (2): they are enforced')" \
    "alice:10:3 bob:60:0 1"
same "audit log: every row with its id, and one row for the upgrade" \
    "$(q -d python -c "SELECT count(*) FILTER (WHERE id <= $audit_max) || ' ' || count(*) FILTER (WHERE event_type = 'extension_upgrade' AND id > $audit_max AND (details ->> 'cache_rows_dropped')::int = 3 AND (details ->> 'queue_rows')::int = 7) FROM steadytext_audit_log")" \
    "6 1"
same "prompts: both, with their versions" \
    "$(q -d python -c "SELECT (SELECT count(*) FROM steadytext_prompts) || ' ' || (SELECT count(*) FROM steadytext_prompt_versions)")" "2 4"
same "prompts: of two active versions the newest stays active" \
    "$(q -d python -c "SELECT string_agg(p.slug || ':' || v.version, ' ' ORDER BY p.slug) FROM steadytext_prompt_versions v JOIN steadytext_prompts p ON p.id = v.prompt_id WHERE v.is_active") $(echo "$notices" | grep -c 'prompt versions made inactive (1)')" \
    "greeting:2 summary-en:2 1"
same "prompts: a kept prompt renders with this version's functions" \
    "$(q -d python -c "SELECT steadytext_prompt_render('greeting', '{\"name\": \"Ada\"}')")" "Hello Ada!"

# The pending rows are served by this version's worker, with the synchronous functions' bytes.
STEADYTEXT_GENERATION_MODEL=$MODELS/smollm2-135m-instruct-q4_1.gguf \
STEADYTEXT_EMBEDDING_MODEL=$MODELS/all-minilm-l6-v2-f32.gguf \
    "$ST" worker --dsn "host=$DIR port=$PORT user=postgres dbname=python" --poll-interval-ms 200 \
    >"$DIR/worker.log" 2>&1 &
worker=$!
for _ in $(seq 1 600); do
    [ "$(q -d python -c "SELECT count(*) FROM steadytext_queue WHERE status IN ('pending', 'processing')")" = 0 ] && break
    sleep 0.2
done
kill -TERM "$worker" 2>/dev/null; wait "$worker" 2>/dev/null; worker=
same "queue: the three pending rows are completed by st worker" \
    "$(q -d python -c "SELECT string_agg(id || ':' || status, ' ' ORDER BY id) FROM steadytext_queue WHERE id IN (1, 2, 3)")" \
    "1:completed 2:completed 3:completed"
same "queue: a Python generate row's result equals steadytext_generate(prompt, max_tokens)" \
    "$(q -d python -c "SELECT result = steadytext_generate('Write one sentence about tea.', 16, false) AND length(result) > 0 FROM steadytext_queue WHERE id = 1")" "t"
same "queue: a Python embed row's vector equals steadytext_embed(text)" \
    "$(q -d python -c "SELECT embedding = steadytext_embed('green tea', false) FROM steadytext_queue WHERE id = 2")" "t"

# Backups: pg_dump of the upgraded database restores into a new one with the users' rows.
/usr/lib/postgresql/15/bin/pg_dump -d python > "$DIR/python-dump.sql"
q -c "CREATE DATABASE restored" >/dev/null
restore=$(q -d restored -f "$DIR/python-dump.sql" 2>&1 >/dev/null)
check "pg_dump of the upgraded database restores without an error" $? "$restore"
rows_of() { q -d "$1" -c "SELECT (SELECT count(*) FROM steadytext_queue) || ' ' || (SELECT count(*) FROM steadytext_audit_log) || ' ' || (SELECT count(*) FROM steadytext_rate_limits) || ' ' || (SELECT count(*) FROM steadytext_prompts) || ' ' || (SELECT count(*) FROM steadytext_prompt_versions) || ' ' || (SELECT string_agg(result, '|' ORDER BY id) FROM steadytext_queue)"; }
same "the restore has the queue, audit, rate limit and prompt rows" "$(rows_of restored)" "$(rows_of python)"
same "restored sequences go on from where they were" \
    "$(q -d restored -c "SELECT nextval('steadytext_queue_id_seq')")" "$(q -d python -c "SELECT nextval('steadytext_queue_id_seq')")"

schema_of python > "$DIR/python.sql"
diff -u "$DIR/fresh.sql" "$DIR/python.sql" > "$DIR/python.diff"
check "the upgraded schema equals a fresh install's (pg_dump --schema-only)" $? "$(head -40 "$DIR/python.diff")"

# --- from each earlier release of ours --------------------------------------------------------
# The release before this one (CHANGELOG.md's second heading) must be among them.
previous=$(sed -n 's/^## \([0-9.]*\)$/\1/p' CHANGELOG.md | sed -n 2p)
same "the previous release ($previous) has its install script in tests/upgrade/releases" \
    "$(ls tests/upgrade/releases/pg_steadytext--"$previous".sql 2>/dev/null | wc -l)" "1"
shopt -s nullglob
for release in tests/upgrade/releases/pg_steadytext--*.sql; do
    from=$(basename "$release" .sql); from=${from#pg_steadytext--}
    db="from_${from//./_}"
    place "$release"
    q -c "CREATE DATABASE $db" >/dev/null
    q -d "$db" -c "CREATE EXTENSION vector; CREATE EXTENSION pg_steadytext VERSION '$from'" >/dev/null
    check "release $from installs" $?
    q -d "$db" -c "SELECT steadytext_config_set('default_max_tokens', '77'); SELECT steadytext_prompt_create('kept-prompt', 'Hi {{ who }}')" >/dev/null
    unplace
    out=$(q -d "$db" -c "ALTER EXTENSION pg_steadytext UPDATE TO '$VERSION'" 2>&1)
    check "ALTER EXTENSION pg_steadytext UPDATE from $from to $VERSION" $? "$out"
    same "$from: rows kept" \
        "$(q -d "$db" -c "SELECT steadytext_config_get('default_max_tokens') || ' ' || steadytext_prompt_render('kept-prompt', '{\"who\": \"you\"}')")" "77 Hi you"
    schema_of "$db" > "$DIR/$db.sql"
    diff -u "$DIR/fresh.sql" "$DIR/$db.sql" > "$DIR/$db.diff"
    check "$from upgraded to $VERSION equals a fresh install (pg_dump --schema-only)" $? "$(head -40 "$DIR/$db.diff")"
done

echo "1..$n"
exit $failed
