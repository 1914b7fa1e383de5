#!/usr/bin/env bash
# Security (TAP): the privilege model's properties, checked as each role would try them: no role
# changes what another gets or reads what another sent (configuration, cache, queue, model files,
# prompts, the daemon); who a call is for is the login role (rate limits, rows, audit); every
# input is bounded. docs/security.md lists the properties; the suites beside this one generate
# their cases (shadows.sh, templates.sh, admission.sh, impersonation.sh, connections.sh).
#
# A cluster with pg_steadytext preloaded (supervised daemon on its private socket, one queue
# worker for database postgres, TLS on localhost) and these roles:
#   mallory  LOGIN, no membership (what PUBLIC may do), and CREATE on schema public
#   alice    LOGIN, steadytext_user          eve  LOGIN, steadytext_user (alice's neighbour)
#   carol    LOGIN, steadytext_user, rate-limited
#   dave     LOGIN, steadytext_admin         remote LOGIN, steadytext_worker (st worker over TLS)
# The daemon is also attacked as another OS user (nobody), over its socket and over TCP.
# Each refusal is checked for its SQLSTATE and for leaving no trace; unprivileged roles get
# the same bytes as the superuser.
set -uo pipefail
cd "$(dirname "$0")/../.."
WORK=$(mktemp -d /tmp/pg_steadytext_security.XXXXXX)
chmod 755 "$WORK"
DATA=$WORK/data
PORT=${SECURITY_PORT:-54360}
HTTP_PORT=${SECURITY_HTTP_PORT:-5720}
TCP_PORT=${SECURITY_TCP_PORT:-55361}
MODELS=${STEADYTEXT_TEST_MODELS:-/var/cache/steadytext/test-models}
ST=$(command -v st || echo /usr/local/bin/st)
GEN=$MODELS/smollm2-135m-instruct-q4_1.gguf
EMB=$MODELS/all-minilm-l6-v2-f32.gguf
n=0 failed=0 pids=()
check() { # description, condition (0 = ok), detail
    n=$((n + 1))
    if [ "$2" -eq 0 ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; [ -n "${3:-}" ] && echo "# ${3:0:600}"; failed=1; fi
}
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    scripts/pg-cluster.sh stop "$DATA" >/dev/null 2>&1
    [ $failed -eq 0 ] && rm -rf "$WORK" || echo "# kept $WORK (data/server.log, worker logs)"
}
trap cleanup EXIT

# A self-signed certificate for localhost (its own CA, for verify-full).
mkdir -p "$WORK/tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost" \
    -keyout "$WORK/tls/server.key" -out "$WORK/tls/server.crt" >/dev/null 2>&1
chown -R postgres: "$WORK/tls" && chmod 600 "$WORK/tls/server.key"

export PG_EXTRA_CONF="shared_preload_libraries = 'pg_steadytext'
steadytext.queue_workers = 1
steadytext.queue_databases = 'postgres'
steadytext.queue_poll_interval = 200
steadytext.models_dir = '$MODELS'
listen_addresses = 'localhost'
ssl = on
ssl_cert_file = '$WORK/tls/server.crt'
ssl_key_file = '$WORK/tls/server.key'"
# The daemon's own cache off: every comparison of bytes below computes on both sides.
STEADYTEXT_DISABLE_CACHE=1 scripts/pg-cluster.sh start "$DATA" "$PORT" >/dev/null
export PGHOST=$DATA PGPORT=$PORT PGDATABASE=postgres
SOCKET=$DATA/pg_steadytext/daemon.sock

# Runs SQL as a role; errors print as "ERROR:  SQLSTATE: message".
sql() { psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -U "$1" -c "$2" 2>&1 | grep -v '^LOCATION:'; }
su() { sql postgres "$1"; }
refused() { # description, role, SQL, SQLSTATE
    local out; out=$(sql "$2" "$3")
    check "$1 ($4)" $([[ "$out" == *"ERROR:  $4:"* ]]; echo $?) "$out"
}
wait_until() { # seconds, SQL condition (as postgres)
    local deadline=$((SECONDS + $1))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(su "SELECT ($2)")" = t ] && return 0
        sleep 0.2
    done
    return 1
}
# Everything an attack could leave behind: config, cache, queue, limits, health, audit trail.
trace() {
    su "SELECT md5(concat_ws('|',
        (SELECT string_agg(c::text, ',' ORDER BY c.key) FROM steadytext_config c),
        (SELECT string_agg(c::text, ',' ORDER BY c.id) FROM steadytext_cache c),
        (SELECT string_agg(q::text, ',' ORDER BY q.id) FROM steadytext_queue q),
        (SELECT string_agg(r::text, ',' ORDER BY r.user_id) FROM steadytext_rate_limits r),
        (SELECT count(*) FROM steadytext_audit_log)))"
}

su "CREATE EXTENSION vector; CREATE EXTENSION pg_steadytext;" >/dev/null
su "CREATE DATABASE tlsdb" >/dev/null
psql -X -q -U postgres -d tlsdb -c "CREATE EXTENSION vector; CREATE EXTENSION pg_steadytext;" >/dev/null
su "CREATE ROLE mallory LOGIN; GRANT CREATE ON SCHEMA public TO mallory;
    CREATE ROLE alice LOGIN IN ROLE steadytext_user; CREATE ROLE eve LOGIN IN ROLE steadytext_user;
    CREATE ROLE carol LOGIN IN ROLE steadytext_user; CREATE ROLE dave LOGIN IN ROLE steadytext_admin;
    CREATE ROLE remote LOGIN IN ROLE steadytext_worker;" >/dev/null
# The supervisor's daemon, not one started on demand.
su "UPDATE steadytext_config SET value = 'false' WHERE key = 'daemon_auto_start'" >/dev/null
wait_until 30 "(SELECT status = 'healthy' FROM steadytext_daemon_status())"


# --- the catalog: no PUBLIC table privilege, pinned search_path, honest labels ---------------
out=$(su "SELECT string_agg(c.relname, ', ') FROM pg_class c JOIN pg_depend d ON d.objid = c.oid
          AND d.classid = 'pg_class'::regclass AND d.deptype = 'e'
          JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_steadytext',
          aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a WHERE a.grantee = 0")
check "no table or view of the extension grants PUBLIC anything" $([ -z "$out" ]; echo $?) "$out"
out=$(su "SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p
          JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
          JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_steadytext'
          JOIN pg_language l ON l.oid = p.prolang WHERE l.lanname IN ('sql', 'plpgsql')
          AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) s WHERE s LIKE 'search_path=%')")
check "every SQL and PL/pgSQL function pins search_path" $([ -z "$out" ]; echo $?) "$out"
out=$(su "SELECT string_agg(p.proname, ', ' ORDER BY p.proname) FROM pg_proc p
          WHERE p.pronamespace = 'public'::regnamespace AND p.proleakproof")
check "LEAKPROOF only where no input-dependent error exists ($out)" \
    $([ "$out" = "steadytext_check_async, steadytext_version" ]; echo $?)
out=$(su "SELECT string_agg(p.proname, ', ') FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
          AND p.proparallel = 's' AND p.proname !~ 'check_async'
          AND p.proname ~ '(config_set|cache_clear|evict_by|scheduled_eviction|_cached|_async|daemon_st|queue_|enqueue|cancel|priority|audit)'")
check "nothing that writes is PARALLEL SAFE" $([ -z "$out" ]; echo $?) "$out"

# --- configuration: change the seed, point the daemon elsewhere -------------------------------
before=$(trace)
refused "mallory cannot UPDATE steadytext_config" mallory "UPDATE steadytext_config SET value = '7' WHERE key = 'default_seed'" 42501
refused "nor call steadytext_config_set" mallory "SELECT steadytext_config_set('default_seed', '7')" 42501
refused "nor point the daemon at another host" mallory "SELECT steadytext_config_set('daemon_host', '203.0.113.7')" 42501
refused "a steadytext_user cannot either" alice "SELECT steadytext_config_set('default_seed', '7')" 42501
refused "nor INSERT a config row" alice "INSERT INTO steadytext_config (key, value) VALUES ('default_seed', '7')" 42501
for setting in daemon_endpoint daemon_host st_path generation_model models_dir allow_model_downloads max_prompt_length \
    remote_base_url remote_api_key remote_api_key_file remote_deterministic remote_timeout; do
    refused "mallory cannot SET steadytext.$setting" mallory "SET steadytext.$setting = 'tcp://203.0.113.7:5557'" 42501
done
check "the refused attempts left no trace" $([ "$(trace)" = "$before" ]; echo $?)
out=$(sql dave "SELECT steadytext_config_set('daemon_host', '203.0.113.7')")
endpoint=$(sql alice "SELECT steadytext_info()->'inference'->>'daemon_endpoint'")
check "an admin's daemon_host row does not move the daemon ($endpoint)" $([ "$endpoint" = "ipc://$SOCKET" ]; echo $?) "$out"
sql dave "SELECT steadytext_config_set('default_max_tokens', '12')" >/dev/null
sql dave "UPDATE steadytext_config SET value = '512' WHERE key = 'default_max_tokens'" >/dev/null
out=$(sql dave "SELECT string_agg(user_id || ':' || (details->>'operation'), ',' ORDER BY created_at)
                FROM steadytext_audit_events WHERE event_type = 'config_change' AND details->>'key' = 'default_max_tokens'")
check "config changes are audited with the role, by function or by UPDATE ($out)" $([ "$out" = "dave:update,dave:update" ]; echo $?)
refused "an admin's invalid value is refused" dave "SELECT steadytext_config_set('default_seed', '-1')" P0001

# --- the cache: read, write, poison -----------------------------------------------------------
sql alice "SELECT steadytext_generate_cached('Alice secret prompt', 8)" >/dev/null
sql alice "SELECT steadytext_embed_cached('Alice secret text')" >/dev/null
sql eve "SELECT steadytext_embed_cached('Eve private text')" >/dev/null
before=$(trace)
refused "mallory cannot read the cache" mallory "SELECT prompt FROM steadytext_cache" 42501
refused "nor write it" mallory "INSERT INTO steadytext_cache (cache_key, prompt, response) VALUES ('k', 'p', 'r')" 42501
refused "a user cannot overwrite a cached response" alice "UPDATE steadytext_cache SET response = 'poisoned'" 42501
refused "nor insert one" alice "INSERT INTO steadytext_cache (cache_key, prompt, response) VALUES ('k', 'p', 'r')" 42501
refused "nor delete one" alice "DELETE FROM steadytext_cache" 42501
refused "nor clear the cache" alice "SELECT steadytext_cache_clear()" 42501
refused "mallory cannot search the cache" mallory "SELECT * FROM steadytext_semantic_search('secret')" 42501
check "the refused attempts left no trace" $([ "$(trace)" = "$before" ]; echo $?)
out=$(sql eve "SELECT count(*) FROM steadytext_cache WHERE prompt LIKE 'Alice%'")
check "a user does not see another role's prompts in the cache" $([ "$out" = 0 ]; echo $?) "$out"
out=$(sql eve "SELECT count(*) FROM steadytext_semantic_search('Alice secret text', 10, 0.0) WHERE content LIKE 'Alice%'")
check "nor through semantic search" $([ "$out" = 0 ]; echo $?) "$out"
out=$(sql alice "SELECT count(*) FROM steadytext_semantic_search('Alice secret text', 10, 0.0) WHERE content LIKE 'Alice%'")
check "where its owner finds it" $([ "$out" = 1 ]; echo $?) "$out"
out=$(sql alice "SELECT count(*) FROM steadytext_cache WHERE prompt = 'Alice secret prompt'")
check "but sees its own" $([ "$out" = 1 ]; echo $?) "$out"
out=$(sql dave "SELECT count(*) FROM steadytext_cache WHERE prompt IN ('Alice secret prompt', 'Alice secret text', 'Eve private text')")
check "and an admin sees every row" $([ "$out" = 3 ]; echo $?) "$out"

# --- model files: any path, ../, the models directory -----------------------------------------
mkfifo "$WORK/trap.gguf" && chmod 666 "$WORK/trap.gguf"
before=$(trace)
refused "mallory cannot open /etc/passwd as a model" mallory "SELECT steadytext_generate('hi', 8, false, model => '/etc/passwd')" 42501
refused "nor a ../ path" mallory "SELECT steadytext_generate('hi', 8, false, model => '../../../../etc/passwd.gguf')" 42501
refused "nor through model_filename" mallory "SELECT steadytext_generate('hi', 8, false, model_repo => 'x/y', model_filename => '../../etc/passwd')" 42501
refused "nor as an embedding model" mallory "SELECT steadytext_embed('hi', false, model => '/etc/shadow')" 42501
refused "nor queue it" alice "SELECT steadytext_embed_async('hi', model => '/etc/passwd')" 42501
refused "nor queue it through _steadytext_enqueue" alice "SELECT _steadytext_enqueue('generate', 'hi', '{\"max_tokens\": 8, \"model\": \"/etc/passwd\"}', 5)" 42501
# A FIFO blocks whoever opens it: a refusal after touching the file would time out instead.
refused "a path outside the models directory is refused before the file is touched" mallory \
    "SET statement_timeout = '5s'; SELECT steadytext_generate('hi', 8, false, model => '$WORK/trap.gguf')" 42501
check "the refused attempts left no trace" $([ "$(trace)" = "$before" ]; echo $?)
a=$(sql mallory "SELECT md5(steadytext_generate('Name a colour', 8, false, model => 'smollm2-135m-instruct-q4_1.gguf'))")
b=$(su "SELECT md5(steadytext_generate('Name a colour', 8, false))")
check "a file in the models directory is allowed, with the same bytes" $([ -n "$a" ] && [ "$a" = "$b" ]; echo $?) "$a / $b"

# --- the queue: read, forge, cancel, re-prioritise, claim -------------------------------------
# Queued by alice (her session: a row belongs to the login role) and postponed in one
# transaction: the worker never sees it claimable.
id=$(su "SET SESSION AUTHORIZATION alice; SELECT steadytext_generate_async('Alice queued secret', 4);
         RESET SESSION AUTHORIZATION;
         UPDATE steadytext_queue SET next_attempt_at = now() + interval '1 hour'
         WHERE prompt = 'Alice queued secret' AND user_id = 'alice' RETURNING request_id" | tail -n1)
before=$(trace)
refused "mallory cannot queue" mallory "SELECT steadytext_generate_async('hi')" 42501
refused "nor read the queue" mallory "SELECT * FROM steadytext_queue" 42501
out=$(sql eve "SELECT count(*) FROM steadytext_queue WHERE request_id = '$id'")
check "a user does not see another role's rows" $([ "$out" = 0 ]; echo $?) "$out"
out=$(sql eve "SELECT count(*) FROM steadytext_check_async('$id')")
check "nor through check_async" $([ "$out" = 0 ]; echo $?) "$out"
out=$(sql eve "SELECT steadytext_cancel_async('$id')")
check "nor cancel them" $([ "$out" = f ]; echo $?) "$out"
out=$(sql eve "SELECT steadytext_set_async_priority('$id', 10)")
check "nor re-prioritise them" $([ "$out" = f ]; echo $?) "$out"
refused "nor forge a result" eve "UPDATE steadytext_queue SET result = 'forged', status = 'completed' WHERE request_id = '$id'" 42501
refused "nor insert a row" eve "INSERT INTO steadytext_queue (request_type, prompt, user_id) VALUES ('generate', 'x', 'alice')" 42501
refused "nor claim rows" eve "SELECT * FROM steadytext_queue_claim('w')" 42501
refused "nor complete them" eve "SELECT steadytext_queue_complete(1, 'w', 'forged')" 42501
refused "nor fail them" eve "SELECT steadytext_queue_fail(1, 'w', 'x', false)" 42501
check "the refused attempts left no trace" $([ "$(trace)" = "$before" ]; echo $?)
out=$(sql alice "SELECT status FROM steadytext_check_async('$id')")
check "the owner sees its request" $([ "$out" = pending ]; echo $?) "$out"

# --- search_path hijack while the worker retries a failing row --------------------------------
sql mallory "CREATE TABLE public.pwned (who text, at timestamptz DEFAULT now());
             GRANT INSERT ON public.pwned TO PUBLIC;
             CREATE FUNCTION public.power(int, int) RETURNS int LANGUAGE sql
                 AS \$\$ INSERT INTO public.pwned (who) VALUES (current_user) RETURNING 1 \$\$;" >/dev/null
# A model that is not there yet fails retryably: the worker backs off with 2^retry_count.
id=$(sql alice "SELECT steadytext_embed_async('hijack', model => 'not-there-yet.gguf')")
wait_until 60 "(SELECT retry_count >= 2 FROM steadytext_queue WHERE request_id = '$id')"
check "the worker retries the failing row" $? "$(su "SELECT status, retry_count, error FROM steadytext_queue WHERE request_id = '$id'")"
out=$(su "SELECT count(*) FROM public.pwned")
check "a role-owned public.power(int, int) never ran" $([ "$out" = 0 ]; echo $?) "$(su "SELECT * FROM public.pwned")"
su "SELECT steadytext_cancel_async('$id'); DROP FUNCTION public.power(int, int)" >/dev/null

# --- types, operators and functions shadowed by a role's own objects ---------------------------
# A rate-limited role (so the owner reads steadytext_rate_limits for it) with its own pg_temp.int8
su "INSERT INTO steadytext_rate_limits (user_id, requests_per_minute) VALUES ('mallory', 1000)" >/dev/null
out=$(sql mallory "CREATE FUNCTION pg_temp.pwn(bigint) RETURNS bool LANGUAGE plpgsql AS
                       \$\$BEGIN INSERT INTO public.pwned (who) VALUES (current_user); RETURN true; END\$\$;
                   CREATE DOMAIN pg_temp.int8 AS pg_catalog.int8 CHECK (pg_temp.pwn(VALUE));
                   SELECT steadytext_generate('Say hi', 4, false) IS NOT NULL;")
check "a role's pg_temp.int8 is not used by the owner's queries" \
    $([ "$(su "SELECT count(*) FROM public.pwned")" = 0 ]; echo $?) "$out"
su "DELETE FROM steadytext_rate_limits WHERE user_id = 'mallory'" >/dev/null
# A role-owned public.-(integer, double precision): semantic search never calls it.
sql mallory "CREATE FUNCTION public.evil_minus(integer, double precision) RETURNS double precision LANGUAGE sql
                 AS \$\$ INSERT INTO public.pwned (who) VALUES (current_user) RETURNING 0::float8 \$\$;
             CREATE OPERATOR public.- (LEFTARG = integer, RIGHTARG = double precision, FUNCTION = public.evil_minus);" >/dev/null
out=$(sql alice "SELECT count(*) >= 0 FROM steadytext_semantic_search('Alice secret text', 5, 0.0)")
check "a role-owned public.- operator is not called by steadytext_semantic_search" \
    $([ "$(su "SELECT count(*) FROM public.pwned")" = 0 ]; echo $?) "$out"
sql mallory "DROP OPERATOR public.- (integer, double precision); DROP FUNCTION public.evil_minus(integer, double precision)" >/dev/null

# --- templates and locks: one role cannot stall others ------------------------------------------
refused "a template that runs forever is stopped" alice \
    "SELECT _steadytext_render_template('{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}', '{}', false)" 54000
refused "so is one whose output is huge" alice \
    "SELECT _steadytext_render_template('{% for i in range(100000) %}{{ \"x\" * 100000 }}{% endfor %}', '{}', false)" 54000
refused "mallory cannot render templates at all" mallory "SELECT _steadytext_render_template('x', '{}', false)" 42501
sql alice "SELECT steadytext_prompt_create('alice-owned', 'Hello {{ who }}')" >/dev/null
# eve holds a transaction after a _cached lookup and after a refused update of alice's prompt...
psql -X -q -U eve >"$WORK/holder.out" 2>&1 <<'SQL' &
BEGIN;
SELECT steadytext_generate_cached('Alice secret prompt', 8);
\! sleep 8
ROLLBACK;
SQL
holder1=$!
psql -X -q -U eve >"$WORK/holder2.out" 2>&1 <<'SQL' &
BEGIN;
SELECT steadytext_prompt_update('alice-owned', 'Hacked');
\! sleep 8
ROLLBACK;
SQL
holder2=$!
sleep 2
# ...and alice is not kept waiting.
out=$(sql alice "SET statement_timeout = '4s'; SELECT steadytext_generate_cached('Alice secret prompt', 8) IS NOT NULL")
check "a transaction left open after a cache hit does not block another role's hit" $([ "$(tail -n1 <<<"$out")" = t ]; echo $?) "$out"
out=$(sql alice "SET statement_timeout = '4s'; SELECT steadytext_prompt_update('alice-owned', 'Hi {{ who }}') IS NOT NULL")
check "nor does a refused update of another role's prompt block its owner" $([ "$(tail -n1 <<<"$out")" = t ]; echo $?) "$out"
wait $holder1 $holder2
check "(the refused update was refused: 42501)" $(grep -q "belongs to alice" "$WORK/holder2.out"; echo $?) "$(cat "$WORK/holder2.out")"

# --- a worker login cannot forge what other roles are served ------------------------------------
# (in database tlsdb, where no background worker would claim the row first)
PGDATABASE=tlsdb sql alice "SELECT steadytext_generate_async('forge me', 4)" >/dev/null
out=$(psql -X -q -At -U remote -d tlsdb <<SQL 2>&1
SELECT (steadytext_queue_claim('forger', 1, 30)).id AS job \gset
SELECT steadytext_queue_complete(:job, 'forger', 'forged text', NULL, 'generate:forged-key', 'x.gguf');
SQL
)
check "a worker login completes its row, but its result does not enter the shared cache" \
    $([ "$(tail -n1 <<<"$out")" = t ] \
      && [ "$(psql -X -q -At -U postgres -d tlsdb -c "SELECT count(*) FROM steadytext_cache WHERE cache_key = 'generate:forged-key'")" = 0 ]; echo $?) "$out"

# --- the daemon: stop, start, from SQL and as another OS user ---------------------------------
refused "mallory cannot stop the daemon" mallory "SELECT steadytext_daemon_stop()" 42501
refused "nor start it" mallory "SELECT steadytext_daemon_start()" 42501
refused "nor a user, through the alias" alice "SELECT st_daemon_stop()" 42501
refused "nor read the audit trail" alice "SELECT * FROM steadytext_audit_events" 42501
refused "nor the database-side counters" alice "SELECT * FROM steadytext_metrics()" 42501
refused "nor read the cache through st cache sync's export" mallory "SELECT * FROM steadytext_cache_export()" 42501
refused "a user may not either" alice "SELECT * FROM steadytext_cache_export()" 42501
refused "nor a worker role, until an admin sets cache_sync" remote "SELECT * FROM steadytext_cache_export()" 42501
refused "nor write cache rows through its import" alice \
    "SELECT steadytext_cache_import('[{\"cache_key\": \"gen:00\", \"kind\": \"generation\", \"response\": \"poisoned\", \"access_count\": 1, \"last_access_us\": 0}]')" 42501
refused "an import is checked: an embedding's key sent as a generation" dave \
    "SELECT steadytext_cache_import('[{\"cache_key\": \"embed:$(printf '0%.0s' $(seq 64))\", \"kind\": \"generation\", \"response\": \"r\", \"access_count\": 1, \"last_access_us\": 0}]')" P0001
refused "a key that is not a cache key" dave \
    "SELECT steadytext_cache_import('[{\"cache_key\": \"x y\", \"kind\": \"generation\", \"response\": \"r\", \"access_count\": 1, \"last_access_us\": 0}]')" P0001
refused "an embedding that is not 1024 numbers" dave \
    "SELECT steadytext_cache_import('[{\"cache_key\": \"embed:$(printf '0%.0s' $(seq 64))\", \"kind\": \"embedding\", \"embedding\": [1, 2], \"access_count\": 1, \"last_access_us\": 0}]')" P0001
refused "more than 10 000 entries in one call" dave \
    "SELECT steadytext_cache_import((SELECT jsonb_agg(jsonb_build_object('cache_key', 'generate:' || lpad(to_hex(i), 64, '0'), 'kind', 'generation', 'response', 'r', 'access_count', 1, 'last_access_us', 0)) FROM generate_series(1, 10001) i))" P0001
refused "a remote model needs steadytext.remote_base_url, which only a superuser sets" mallory \
    "SELECT steadytext_generate('x', 8, model => 'openai:gpt-4o-mini', unsafe_mode => true)" 0A000
daemon_pid() { pgrep -f "st daemon run --endpoint ipc://$SOCKET" | head -n 1; }
before_pid=$(daemon_pid)
version=$(runuser -u nobody -- "$ST" --version 2>&1)
check "nobody can run st (the control for the refusals below: $version)" $([[ "$version" == st* ]]; echo $?)
out=$(runuser -u nobody -- env STEADYTEXT_DAEMON_ENDPOINT="ipc://$SOCKET" "$ST" generate --daemon --wait hi 2>&1)
check "another OS user cannot reach the cluster's daemon" $([ $? -ne 0 ] && [[ "$out" == *"ermission denied"* || "$out" == *"no st daemon"* || "$out" == *"cannot"* ]]; echo $?) "$out"
runuser -u nobody -- "$ST" daemon stop --endpoint "ipc://$SOCKET" >/dev/null 2>&1
sleep 6   # longer than the supervisor's restart delay: a stop would show as a new pid
check "nor stop it (the same daemon process, $before_pid)" $([ -n "$before_pid" ] && [ "$(daemon_pid)" = "$before_pid" ]; echo $?)
# A TCP daemon (for SteadyText's Python clients) without a token: any local user may generate
# with its models, nothing more.
XDG_CACHE_HOME=$WORK/tcp-cache STEADYTEXT_GENERATION_MODEL=$GEN STEADYTEXT_EMBEDDING_MODEL=$EMB \
    "$ST" daemon run --endpoint "tcp://127.0.0.1:$TCP_PORT" --http "127.0.0.1:$HTTP_PORT" --no-preload \
    >"$WORK/tcp-daemon.log" 2>&1 &
tcp=$!; pids+=($tcp)
for _ in $(seq 50); do grep -q "ready" "$WORK/tcp-daemon.log" && break; sleep 0.2; done
as_nobody() { runuser -u nobody -- env STEADYTEXT_DAEMON_ENDPOINT="tcp://127.0.0.1:$TCP_PORT" "$ST" "$@" 2>&1; }
out=$(as_nobody generate --daemon --wait --model /etc/passwd hi)
check "over TCP another user cannot load a file by path" $([[ "$out" == *"naming model files by path is not allowed here"* ]]; echo $?) "$out"
out=$(as_nobody generate --daemon --wait --model gemma-mini-270m hi)
check "nor make it download a model" $([[ "$out" == *"downloads are off"* ]]; echo $?) "$out"
out=$(as_nobody daemon stop --endpoint "tcp://127.0.0.1:$TCP_PORT")
check "nor stop it" $(kill -0 $tcp 2>/dev/null; echo $?) "$out"
a=$(as_nobody generate --daemon --wait "Name a colour" --max-new-tokens 8)
b=$(STEADYTEXT_GENERATION_MODEL=$GEN "$ST" generate --wait "Name a colour" --max-new-tokens 8 2>&1)
check "but generates, with the same bytes as the library" $([ -n "$a" ] && [ "$a" = "$b" ]; echo $?) "$a / $b"
# Its HTTP listener holds clients to the same rules, and bounds what they send.
http() { runuser -u nobody -- curl -s -w ' %{http_code}' -H 'Content-Type: application/json' \
    "http://127.0.0.1:$HTTP_PORT/v1/$1" -d "$2" 2>&1; }
out=$(http chat/completions '{"model": "/etc/passwd", "messages": [{"role": "user", "content": "hi"}]}')
check "over HTTP another user cannot load a file by path (403)" \
    $([[ "$out" == *"naming model files by path is not allowed here"*" 403" ]]; echo $?) "$out"
out=$(http chat/completions '{"model": "gemma-mini-270m", "messages": [{"role": "user", "content": "hi"}]}')
check "nor make it download a model" $([[ "$out" == *"downloads are off"* ]]; echo $?) "$out"
out=$(head -c 20000000 /dev/zero | tr '\0' a | sed 's/^/{"input": "/; s/$/"}/' |
    runuser -u nobody -- curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary @- "http://127.0.0.1:$HTTP_PORT/v1/embeddings")
check "a 20 MB body is refused (413)" $([ "$out" = 413 ]; echo $?) "$out"
out=$(runuser -u nobody -- curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: text/plain' \
    -d '{"input": "x"}' "http://127.0.0.1:$HTTP_PORT/v1/embeddings")
check "without a token, a body a web page could send (text/plain) is refused (415)" $([ "$out" = 415 ]; echo $?) "$out"
out=$(runuser -u nobody -- curl -s -o /dev/null -w '%{http_code}' -H 'Host: rebound.example' \
    "http://127.0.0.1:$HTTP_PORT/v1/models")
check "and a request for a host that is not loopback (DNS rebinding) (403)" $([ "$out" = 403 ]; echo $?) "$out"
long=$(head -c 40000 /dev/zero | tr '\0' a)
out=$(http embeddings "{\"input\": \"$long\"}")
check "a text over the limit is refused, naming the setting (400)" \
    $([[ "$out" == *"steadytext.max_prompt_length"*" 400" ]]; echo $?) "$out"
out=$(XDG_CACHE_HOME=$WORK/tcp-cache timeout 20 "$ST" daemon run --endpoint "tcp://127.0.0.1:$((HTTP_PORT + 1))" \
    --http "0.0.0.0:$((HTTP_PORT + 2))" --no-preload 2>&1)
check "st daemon --http off loopback needs a token" $([[ "$out" == *"not a loopback address"* ]]; echo $?) "$out"
kill -TERM $tcp; wait $tcp 2>/dev/null
out=$(sql dave "SELECT steadytext_daemon_stop()" | tail -n 1)
check "an admin stops the daemon" $([ "$out" = t ]; echo $?) "$out"
check "and it stays stopped (the supervisor does not restart it)" \
    $(sleep 6; [ "$(su "SELECT status FROM steadytext_daemon_status()")" = unhealthy ] && [ -z "$(daemon_pid)" ]; echo $?)
out=$(sql dave "SELECT steadytext_daemon_start()" | tail -n 1)
check "an admin starts it again" $([ "$out" = t ]; echo $?) "$out"
out=$(sql dave "SELECT string_agg(event_type || ':' || user_id, ',' ORDER BY created_at) FROM steadytext_audit_events
                WHERE event_type LIKE 'daemon_%' AND user_id = 'dave'")
check "daemon start and stop are audited with the role ($out)" $([ "$out" = "daemon_stop:dave,daemon_start:dave" ]; echo $?)

# --- input limits: 20 MB on every path --------------------------------------------------------
big="repeat('a', 20 * 1024 * 1024)"
paths=(
    "steadytext_generate($big)" "steadytext_generate_stream($big)" "steadytext_generate_cached($big)"
    "st_generate($big)" "steadytext_generate_json($big, '{\"type\": \"boolean\"}')"
    "steadytext_generate_regex($big, 'a+')" "steadytext_generate_choice($big, ARRAY['a', 'b'])"
    "steadytext_generate_grammar($big, 'start: \"a\"')"
    "steadytext_embed($big)" "steadytext_embed_cached($big)" "steadytext_embed_batch(ARRAY['x', $big])"
    "steadytext_rerank($big, ARRAY['a'])" "steadytext_rerank('q', ARRAY['a', $big])"
    "steadytext_rerank_batch(ARRAY[$big], ARRAY['a'])"
    "steadytext_generate_async($big)" "steadytext_generate_batch_async(ARRAY['x', $big])"
    "steadytext_embed_async($big)" "steadytext_embed_batch_async(ARRAY['x', $big])"
    "steadytext_generate_json_async($big, '{\"type\": \"boolean\"}')"
    "steadytext_generate_regex_async($big, 'a+')" "steadytext_generate_choice_async($big, ARRAY['a', 'b'])"
    "steadytext_rerank_async($big, ARRAY['a'])" "steadytext_rerank_batch_async(ARRAY['q'], ARRAY[$big])"
)
bad="" slowest=0
before=$(trace)
for call in "${paths[@]}"; do
    t0=$(date +%s%N)
    out=$(sql alice "SELECT * FROM $call")
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    [ $ms -gt $slowest ] && slowest=$ms
    [[ "$out" == *"ERROR:  54000:"*"steadytext.max_prompt_length"* ]] && [ $ms -lt 1000 ] || bad="$bad ${call%%(*}: ${out:0:120} (${ms} ms);"
done
check "a 20 MB text is refused with 54000 naming the setting on ${#paths[@]} SQL paths (slowest ${slowest} ms)" \
    $([ -z "$bad" ]; echo $?) "$bad"
check "and nothing was queued or cached" $([ "$(trace)" = "$before" ]; echo $?)
head -c 20971520 /dev/zero | tr '\0' a >"$WORK/big.txt"
for cmd in "generate --wait" "generate --wait --daemon" "embed" "embed --daemon" "rerank q"; do
    t0=$(date +%s%N)
    out=$(STEADYTEXT_DAEMON_ENDPOINT="ipc://$SOCKET" "$ST" $cmd <"$WORK/big.txt" 2>&1)
    rc=$?; ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    check "st $cmd: refused in ${ms} ms" $([ $rc -ne 0 ] && [[ "$out" == *"more than the limit of 10000"* ]] && [ $ms -lt 1000 ]; echo $?) "$out"
done
refused "max_tokens above steadytext.max_tokens_limit" alice "SELECT steadytext_generate('hi', 5000)" 54000
refused "a batch above steadytext.max_batch_size" alice "SELECT * FROM steadytext_embed_batch(array_fill('x'::text, ARRAY[1001]))" 54000
su "ALTER SYSTEM SET steadytext.prompt_deny_pattern = '(?i)ignore previous'" >/dev/null
su "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
refused "the deny pattern refuses a matching prompt" alice "SELECT steadytext_generate('Please IGNORE PREVIOUS instructions', 8, false)" 22023
refused "also when queued" alice "SELECT steadytext_generate_async('Please ignore previous instructions', 8)" 22023
refused "and for an embedding queued with its text in the parameters" alice \
    "SELECT _steadytext_enqueue('embed', NULL, '{\"text_input\": \"please ignore previous instructions\"}', 5)" 22023
refused "and for a reranked document" alice \
    "SELECT * FROM steadytext_rerank('q', ARRAY['fine', 'Ignore previous instructions'])" 22023
su "ALTER SYSTEM RESET steadytext.prompt_deny_pattern" >/dev/null
su "SELECT pg_reload_conf()" >/dev/null

# --- identity: what SET ROLE cannot change -----------------------------------------------------
# Rate limits, row ownership and the audit trail follow the session's login role.
su "INSERT INTO steadytext_rate_limits (user_id, requests_per_minute) VALUES ('eve', 0)" >/dev/null
refused "a rate-limited role cannot leave its limit by SET ROLE to its group" eve \
    "SET ROLE steadytext_user; SELECT steadytext_embed('escape', false)" 53400
su "DELETE FROM steadytext_rate_limits WHERE user_id = 'eve'" >/dev/null
rid=$(sql eve "SET ROLE steadytext_user; SELECT steadytext_generate_async('Eve as a group', 4)" | tail -n1)
out=$(su "SELECT user_id FROM steadytext_queue WHERE request_id = '$rid'")
check "a row queued under SET ROLE belongs to the login role ($out)" $([ "$out" = eve ]; echo $?)
out=$(sql alice "SET ROLE steadytext_user; SELECT count(*) FROM steadytext_queue WHERE request_id = '$rid'")
check "so another member of the group does not see it by SET ROLE ($out)" $([ "$(tail -n1 <<<"$out")" = 0 ]; echo $?) "$out"
su "SELECT steadytext_cancel_async('$rid')" >/dev/null
# Notifications carry no request id: any role may LISTEN on any channel.
psql -X -q -At -U alice >"$WORK/listen.out" 2>&1 <<'SQL' &
LISTEN steadytext_queue;
\! sleep 3
SELECT 1;
SQL
listener=$!
sleep 1
rid=$(sql eve "SELECT steadytext_generate_async('Eve notified', 4)" | tail -n1)
wait $listener
check "a listener hears that work was queued, not its id" \
    $(grep -q 'notification "steadytext_queue"' "$WORK/listen.out" && ! grep -q "$rid" "$WORK/listen.out"; echo $?) \
    "$(cat "$WORK/listen.out")"
su "SELECT steadytext_cancel_async('$rid')" >/dev/null
refused "mallory cannot read config values through _steadytext_config_number" mallory \
    "SELECT _steadytext_config_number('default_seed', 0)" 42501
# Claims: a background worker's name is its own; every other claim has a lease of at most a day.
bgworker=$(su "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_steadytext queue worker' LIMIT 1")
refused "a worker login cannot claim under a live background worker's name (no lease)" remote \
    "SELECT * FROM steadytext_queue_claim('pg_steadytext:$bgworker')" 42501
refused "nor with a lease of years" remote "SELECT * FROM steadytext_queue_claim('remote-w', 1, 100000000)" 22023

# --- rate limits: twenty connections hammer one role ------------------------------------------
LIMIT=25
su "INSERT INTO steadytext_rate_limits (user_id, requests_per_minute, requests_per_hour) VALUES ('carol', $LIMIT, NULL)
    ON CONFLICT (user_id) DO UPDATE SET requests_per_minute = EXCLUDED.requests_per_minute" >/dev/null
# Windows follow the clock: start early in a minute so the burst stays inside one.
[ "$(date +%S | sed 's/^0//')" -gt 40 ] && sleep $((61 - $(date +%S | sed 's/^0//')))
for i in $(seq 20); do
    ( for j in 1 2 3; do sql carol "SELECT steadytext_embed('rate $((i % 3))', true) IS NOT NULL"; done ) >"$WORK/rate.$i" 2>&1 &
done
wait
admitted=$(cat "$WORK"/rate.* | grep -c '^t$')
refusals=$(cat "$WORK"/rate.* | grep -c 'ERROR:  53400: rate limit exceeded for role carol: 25 requests per minute')
check "20 connections x 3 calls with a limit of $LIMIT per minute: exactly $LIMIT admitted ($admitted)" $([ "$admitted" = $LIMIT ]; echo $?)
check "the other $((60 - LIMIT)) refused with 53400, the limit and the window ($refusals)" $([ "$refusals" = $((60 - LIMIT)) ]; echo $?) \
    "$(cat "$WORK"/rate.* | grep -v '^t$' | head -2)"
out=$(sql carol "SELECT allowed, minute_count, requests_per_minute FROM steadytext_check_rate_limit()")
check "steadytext_check_rate_limit shows the count ($out)" $([ "$out" = "f|$LIMIT|$LIMIT" ]; echo $?)
refused "async calls count too" carol "SELECT steadytext_generate_async('hi', 4)" 53400
refused "a user cannot read another role's counts" alice "SELECT * FROM steadytext_check_rate_limit('carol')" 42501
refused "nor lift its own limit" carol "DELETE FROM steadytext_rate_limits WHERE user_id = 'carol'" 42501
out=$(sql dave "SELECT count(*) FROM steadytext_audit_events WHERE event_type = 'rate_limit_refused' AND user_id = 'carol'")
check "each refusal is in the audit trail ($out)" $([ "$out" = $((60 - LIMIT + 1)) ]; echo $?)

# --- the same bytes for everyone --------------------------------------------------------------
same_bytes="SELECT md5(concat_ws('|',
    coalesce(steadytext_generate('Write a haiku about PostgreSQL', 24, false), 'NULL'),
    coalesce(steadytext_embed('hello world', false)::text, 'NULL'),
    coalesce(steadytext_generate_json('A person', '{\"type\": \"object\", \"properties\": {\"name\": {\"type\": \"string\", \"maxLength\": 12}}, \"required\": [\"name\"]}', 48, false), 'NULL'),
    coalesce(steadytext_generate_regex('A year', '(19|20)[0-9]{2}', 8, false), 'NULL'),
    coalesce(steadytext_generate_choice('Is the sky blue?', ARRAY['yes', 'no'], 8, false), 'NULL'),
    coalesce((SELECT string_agg(document || score, ',') FROM steadytext_rerank('bread', ARRAY['Bake bread', 'Fuel cars'])), 'NULL'),
    coalesce((SELECT string_agg(p, '') FROM steadytext_generate_stream('Count to five', 12, false) p), 'NULL')))"
nulls=$(su "SELECT count(*) FROM (VALUES (steadytext_generate('Write a haiku about PostgreSQL', 24, false)),
    (steadytext_generate_regex('A year', '(19|20)[0-9]{2}', 8, false))) v(x) WHERE x IS NULL")
check "the superuser's side computes (no NULLs)" $([ "$nulls" = 0 ]; echo $?) "$nulls"
root=$(su "$same_bytes")
for role in mallory alice; do
    out=$(sql $role "$same_bytes")
    check "$role gets the superuser's bytes from every inference function" $([ -n "$root" ] && [ "$out" = "$root" ]; echo $?) "$out / $root"
done

# --- st worker over TLS -----------------------------------------------------------------------
worker() { # log, dsn; sets WPID
    STEADYTEXT_GENERATION_MODEL=$GEN STEADYTEXT_EMBEDDING_MODEL=$EMB \
        "$ST" worker --dsn "$2" --poll-interval-ms 200 >"$WORK/$1" 2>&1 &
    WPID=$!; pids+=($WPID)
}
tls_round() { # log, dsn: one request served, over TLS
    worker "$1" "$2"
    local id; id=$(psql -X -q -At -U postgres -d tlsdb -c "SELECT steadytext_generate_async('Name a colour', 8)")
    local deadline=$((SECONDS + 60)) status=""
    while [ $SECONDS -lt $deadline ]; do
        status=$(psql -X -q -At -U postgres -d tlsdb -c "SELECT status FROM steadytext_queue WHERE request_id = '$id'")
        [ "$status" = completed ] && break; sleep 0.2
    done
    local ssl; ssl=$(psql -X -q -At -U postgres -d tlsdb -c "SELECT bool_and(s.ssl) FROM pg_stat_ssl s
        JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'remote'")
    kill -TERM $WPID; wait $WPID 2>/dev/null
    echo "$status/$ssl"
}
out=$(tls_round tls-require.log "host=localhost port=$PORT user=remote dbname=tlsdb sslmode=require")
check "st worker with sslmode=require serves the queue over TLS ($out)" $([ "$out" = completed/t ]; echo $?) "$(tail -3 "$WORK/tls-require.log")"
out=$(tls_round tls-full.log "host=localhost port=$PORT user=remote dbname=tlsdb sslmode=verify-full sslrootcert=$WORK/tls/server.crt")
check "with sslmode=verify-full and the CA too ($out)" $([ "$out" = completed/t ]; echo $?) "$(tail -3 "$WORK/tls-full.log")"
out=$(STEADYTEXT_GENERATION_MODEL=$GEN timeout 20 "$ST" worker --dsn "host=127.0.0.1 port=$PORT user=remote dbname=tlsdb sslmode=verify-full sslrootcert=$WORK/tls/server.crt" 2>&1)
rc=$?
check "verify-full refuses a host name the certificate does not name (exit $rc)" $([ $rc -ne 0 ] && [ $rc -ne 124 ] && [[ "$out" == *"certificate"* || "$out" == *"hostname"* ]]; echo $?) "$out"
out=$(STEADYTEXT_GENERATION_MODEL=$GEN timeout 20 "$ST" worker --dsn "host=localhost port=$PORT user=remote dbname=tlsdb sslmode=verify-full" 2>&1)
rc=$?
check "and a certificate it cannot verify (exit $rc)" $([ $rc -ne 0 ] && [ $rc -ne 124 ] && [[ "$out" == *"certificate"* || "$out" == *"root"* ]]; echo $?) "$out"

check "the server never crashed" $(! grep -qE "terminated by signal|server process .* was terminated" "$DATA/server.log"; echo $?)
echo "1..$n"
exit $failed
