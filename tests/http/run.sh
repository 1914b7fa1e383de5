#!/usr/bin/env bash
# Operations (TAP): `st daemon --http` under OpenAI's official Python client, Prometheus
# scraping its /metrics, remote models in SQL with the daemon as the remote, and the README's
# pg_cron eviction schedule.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/tap.sh
ST=${ST:-${CARGO_TARGET_DIR:-$HOME/.cache/pg_steadytext/target}/${PROFILE:-dist}/st}
MODELS=${STEADYTEXT_TEST_MODELS:-/var/cache/steadytext/test-models}
GEN=$MODELS/smollm2-135m-instruct-q4_1.gguf
EMB=$MODELS/all-minilm-l6-v2-f32.gguf
VENV=${STEADYTEXT_OPENAI_VENV:-/var/cache/steadytext/openai-venv}
PGPORT=${HTTP_PG_PORT:-54360}
HTTP=127.0.0.1:${HTTP_PORT:-5640}
ZMQ_PORT=${HTTP_ZMQ_PORT:-5641}
PROM=127.0.0.1:${HTTP_PROM_PORT:-5642}
SLOW=${HTTP_SLOW_PORT:-5643}
BAD=${HTTP_BAD_PORT:-5644}

# OpenAI's client and what it needs, pinned.
if ! "$VENV/bin/python" -c "import openai; assert openai.__version__ == '3.57.0'" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps openai==3.57.0 \
        annotated-types==0.8.0 anyio==4.16.0 h11==0.16.0 httpcore2==2.16.2 httpx2==2.16.2 \
        idna==3.20 jiter==0.19.0 pydantic==2.14.4 pydantic_core==2.50.5 sniffio==1.3.1 \
        truststore==0.10.5 typing-inspection==0.4.5 typing_extensions==4.16.0
fi

DIR=$(mktemp -d /tmp/pg_steadytext_http.XXXXXX)
chmod 755 "$DIR"
WORK=$DIR/work
mkdir -p "$WORK"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    XDG_CACHE_HOME=$WORK "$ST" daemon stop --port "$ZMQ_PORT" >/dev/null 2>&1
    scripts/pg-cluster.sh stop "$DIR/pg" >/dev/null 2>&1
    [ "$failed" -eq 0 ] && rm -rf "$DIR" || echo "# kept $DIR (daemon.log, prometheus.log, pg/server.log)"
}
trap cleanup EXIT

# The daemon, with a token: HTTP clients send it as a bearer token, ZeroMQ clients over CURVE
# (they pin the daemon's public key).
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/token"
chmod 644 "$WORK/token"
TOKEN=$(cat "$WORK/token")
"$ST" daemon keygen --secret-key-file "$WORK/daemon.key" >/dev/null
XDG_CACHE_HOME=$WORK STEADYTEXT_GENERATION_MODEL=$GEN STEADYTEXT_EMBEDDING_MODEL=$EMB \
    "$ST" daemon run --port "$ZMQ_PORT" --http "$HTTP" --token-file "$WORK/token" \
    --secret-key-file "$WORK/daemon.key" >"$DIR/daemon.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q ready "$DIR/daemon.log" && break; sleep 0.1; done
grep -q "ready on tcp://127.0.0.1:$ZMQ_PORT and http://$HTTP" "$DIR/daemon.log"
check "st daemon --http serves HTTP and ZeroMQ" $? "$(cat "$DIR/daemon.log")"

# Preloaded: steadytext.remote_api_key is honoured (and hidden) only then.
export PG_EXTRA_CONF="shared_preload_libraries = 'pg_cron,pg_steadytext'
steadytext.queue_workers = 0
cron.database_name = 'postgres'
cron.use_background_workers = on"
scripts/pg-cluster.sh start "$DIR/pg" "$PGPORT" >/dev/null
export PGHOST=$DIR/pg PGPORT PGUSER=postgres PGDATABASE=postgres
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -c "CREATE EXTENSION vector; CREATE EXTENSION pg_steadytext;" >/dev/null

# What SQL answers, for the client to compare with.
PROMPT='Name three colours.'
q -c "SELECT json_build_object('prompt', p, 'max_tokens', 24, 'text', steadytext_generate(p, 24),
        'embedding', steadytext_embed(p)::real[]) FROM (SELECT '$PROMPT'::text AS p) s" \
    >"$WORK/expected.json"
SQL_TEXT=$(q -c "SELECT steadytext_generate('$PROMPT', 24)")

# 1. OpenAI's client.
out=$("$VENV/bin/python" tests/http/openai_client.py "http://$HTTP/v1" "$TOKEN" "$WORK/expected.json" 2>&1)
status=$?
printf '%s\n' "$out" | grep -v '^1\.\.' | sed 's/^/# client: /'
check "OpenAI's Python client: chat, streams, completions, embeddings, errors (above)" $status

# The HTTP answers shared the daemon's cache with its ZeroMQ clients.
hits() { curl -s -H "Authorization: Bearer $TOKEN" "http://$HTTP/metrics" |
    sed -n "s/^steadytext_cache_hits_total{kind=\"generation\"} //p"; }
before=$(hits)
zmq=$(XDG_CACHE_HOME=$WORK STEADYTEXT_DAEMON_PORT=$ZMQ_PORT STEADYTEXT_DAEMON_TOKEN_FILE=$WORK/token \
    STEADYTEXT_DAEMON_PUBLIC_KEY_FILE=$WORK/daemon.key.pub "$ST" generate --daemon --wait --max-new-tokens 24 "$PROMPT" 2>&1)
same "a ZeroMQ client gets the same bytes" "$zmq" "$SQL_TEXT"
same "from the cache the HTTP requests filled (one more generation hit)" "$(hits)" "$((before + 1))"

metrics=$(curl -s -H "Authorization: Bearer $TOKEN" "http://$HTTP/metrics")
grep -q '^steadytext_cache_hits_total{kind="generation"} [1-9]' <<<"$metrics"
check "/metrics: generation cache hits counted" $? "$(grep cache_ <<<"$metrics")"
for m in steadytext_requests_total steadytext_request_duration_seconds_bucket \
    steadytext_prompt_tokens_total steadytext_generated_tokens_total steadytext_prefill_seconds_sum \
    steadytext_decode_tokens_total steadytext_cache_misses_total steadytext_cache_evictions_total \
    steadytext_requests_queued steadytext_requests_running steadytext_models_loaded steadytext_build_info; do
    grep -q "^$m" <<<"$metrics" || { check "/metrics exports $m" 1; continue; }
done
check "/metrics exports requests, latency, tokens, prefill/decode, cache, queue, models, build" 0
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$HTTP/metrics")
same "/metrics without the token is a 401" "$code" 401

# 2. Prometheus scrapes it (with the token), and PromQL sees the request counter.
cat >"$WORK/prometheus.yml" <<YML
global: { scrape_interval: 1s }
scrape_configs:
  - job_name: steadytext
    authorization: { type: Bearer, credentials_file: $WORK/token }
    static_configs: [ { targets: ['$HTTP'] } ]
YML
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom" \
    --web.listen-address="$PROM" >"$DIR/prometheus.log" 2>&1 &
pids+=($!)
promql() {
    curl -s "http://$PROM/api/v1/query" --data-urlencode "query=$1" |
        python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")' 2>/dev/null
}
value=
for _ in $(seq 60); do
    value=$(promql 'sum(steadytext_requests_total{route="http",outcome="ok"})')
    [ -n "$value" ] && [ "${value%%.*}" -ge 8 ] && break
    sleep 1
done
[ -n "$value" ] && [ "${value%%.*}" -ge 8 ]
check "Prometheus scrapes the daemon: PromQL returns the request counter ($value)" $? "$(tail -5 "$DIR/prometheus.log")"

# The Grafana dashboard's queries run on Prometheus and name only metrics the daemon exports.
out=$(python3 - "http://$PROM" packaging/grafana/steadytext-daemon.json "$metrics" <<'PY'
import json, re, sys, urllib.parse, urllib.request
prom, dashboard, exposition = sys.argv[1:4]
exported = {line.split("{")[0].split(" ")[0] for line in exposition.splitlines() if line and line[0] != "#"}
problems, count = [], 0
for panel in json.load(open(dashboard))["panels"]:
    for target in panel["targets"]:
        count += 1
        expr = target["expr"].replace("$__rate_interval", "1m")
        reply = json.load(urllib.request.urlopen(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})))
        if reply["status"] != "success":
            problems.append(f"{panel['title']}: {reply}")
        for name in set(re.findall(r"steadytext_[a-z_]+", expr)) - exported:
            problems.append(f"{panel['title']}: {name} is not exported")
print(count, *problems, sep="\n")
PY
)
[ "$(wc -l <<<"$out")" -eq 1 ] && [ "$out" -gt 10 ]
check "the Grafana dashboard's $(head -1 <<<"$out") queries evaluate on Prometheus over exported metrics" $? "$out"

# 3. Remote models in SQL, with the daemon as the remote.
remote="SET steadytext.remote_base_url = 'http://$HTTP/v1'; SET steadytext.remote_api_key = '$TOKEN';"
got=$(q -c "$remote SELECT steadytext_generate('$PROMPT', 32, model => 'openai:$GEN', unsafe_mode => true)
    = steadytext_generate('$PROMPT', 32)")
same "openai:<fixture> through the daemon's /v1 = the local call, byte for byte" "$got" t
got=$(q -c "$remote SELECT (steadytext_embed('$PROMPT', model => 'openai:$EMB', unsafe_mode => true)
    OPERATOR(public.<=>) steadytext_embed('$PROMPT')) < 1e-6")
same "remote embeddings equal the local ones (cosine distance < 1e-6)" "$got" t
got=$(q -c "SET steadytext.remote_base_url = 'http://$HTTP/v1'; SET steadytext.remote_api_key_file = '$WORK/token';
    SELECT steadytext_generate('$PROMPT', 32, model => 'openai:$GEN', unsafe_mode => true) = steadytext_generate('$PROMPT', 32)")
same "the key may come from steadytext.remote_api_key_file" "$got" t
err() { psql -X -q -At -v VERBOSITY=verbose "$@" 2>&1 | sed -n 's/^ERROR:  //p' | head -1; }
got=$(err -c "SELECT steadytext_generate('x', 8, model => 'openai:m', unsafe_mode => true)")
[[ $got == 0A000:*steadytext.remote_base_url* ]]
check "without steadytext.remote_base_url a remote model is refused (0A000)" $? "$got"
got=$(err -c "$remote SELECT steadytext_generate('x', 8, model => 'openai:m')")
[[ $got == P0001:*unsafe_mode=TRUE* ]]
check "without unsafe_mode a remote model is refused (P0001)" $? "$got"
got=$(err -c "$remote SELECT steadytext_generate('x', 8, model => 'openai:no-such.gguf', unsafe_mode => true)")
[[ $got == 58P01:*HTTP\ 404* ]]
check "an HTTP error of the remote names its status (404 -> 58P01)" $? "$got"
got=$(err -c "SET steadytext.remote_base_url = 'http://127.0.0.1:9/v1';
    SELECT steadytext_generate('x', 8, model => 'openai:m', unsafe_mode => true)")
[[ $got == 08006:*cannot\ reach* ]]
check "an unreachable remote is 08006, naming it" $? "$got"
got=$(err -c "SET steadytext.remote_base_url = 'http://127.0.0.1:9/v1';
    SELECT steadytext_generate('x', 8, model => 'voyageai:m', unsafe_mode => true)")
[[ $got == 0A000:*voyageai* ]]
check "a provider that is not OpenAI-compatible is refused (0A000)" $? "$got"

# A remote that answers nonsense, and one that never answers.
python3 - "$BAD" "$SLOW" >"$DIR/fake-remotes.log" 2>&1 <<'PY' &
import http.server, socketserver, sys, threading, time
class Bad(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.end_headers(); self.wfile.write(b'{"choices": []}')
class Slow(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        time.sleep(60)
class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
for port, handler in ((int(sys.argv[1]), Bad), (int(sys.argv[2]), Slow)):
    threading.Thread(target=Server(("127.0.0.1", port), handler).serve_forever, daemon=True).start()
time.sleep(3600)
PY
pids+=($!)
sleep 1
got=$(err -c "SET steadytext.remote_base_url = 'http://127.0.0.1:$BAD/v1';
    SELECT steadytext_generate('x', 8, model => 'openai:m', unsafe_mode => true)")
[[ $got == 08P01:*not\ an\ OpenAI\ chat\ completion* ]]
check "a malformed reply is 08P01, saying what was wrong" $? "$got"
start=$SECONDS
got=$(err -c "SET steadytext.remote_base_url = 'http://127.0.0.1:$SLOW/v1'; SET statement_timeout = '1s';
    SELECT steadytext_generate('x', 8, model => 'openai:m', unsafe_mode => true)")
took=$((SECONDS - start))
[[ $got == 57014:* ]] && [ $took -lt 10 ]
check "statement_timeout stops a remote call that hangs (57014 after ${took}s of a 60 s hang)" $? "$got"
got=$(err -c "SET steadytext.remote_base_url = 'http://127.0.0.1:$SLOW/v1'; SET steadytext.remote_timeout = '1s';
    SELECT steadytext_generate('x', 8, model => 'openai:m', unsafe_mode => true)")
[[ $got == 08006:*timeout\ 1000\ ms* ]]
check "steadytext.remote_timeout ends a call (08006)" $? "$got"

# Privileges: the settings are superuser-only, the key is hidden, and a remote call needs
# steadytext_user.
# (ALTER SYSTEM knows the settings once the library is loaded in the session.)
q -c "CREATE ROLE app LOGIN; GRANT steadytext_user TO app; CREATE ROLE other LOGIN;" \
    -c "LOAD 'pg_steadytext'" -c "ALTER SYSTEM SET steadytext.remote_base_url = 'http://$HTTP/v1'" \
    -c "ALTER SYSTEM SET steadytext.remote_api_key = '$TOKEN'" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
got=$(q -U app -c "SELECT steadytext_generate('$PROMPT', 32, model => 'openai:$GEN', unsafe_mode => true)
    = steadytext_generate('$PROMPT', 32)" 2>&1)
same "a steadytext_user role may call a remote model" "$got" t
got=$(err -U other -c "SELECT steadytext_generate('x', 8, model => 'openai:m', unsafe_mode => true)")
[[ $got == 42501:*steadytext_user* ]]
check "a role without steadytext_user may not (42501)" $? "$got"
got=$(err -U app -c "SET steadytext.remote_base_url = 'http://evil.example/v1'")
[[ $got == 42501:* ]]
check "a non-superuser cannot set steadytext.remote_base_url" $? "$got"
got=$(err -U app -c "SHOW steadytext.remote_api_key")
[[ $got == 42501:* ]]
check "a non-superuser cannot SHOW steadytext.remote_api_key" $? "$got"
got=$(q -U app -c "SELECT count(*) FROM pg_settings WHERE name = 'steadytext.remote_api_key' AND setting LIKE '%$TOKEN%'")
same "nor read it from pg_settings" "$got" 0
got=$(err -U app -c "SELECT current_setting('steadytext.remote_api_key', true)")
[[ $got == 42501:* ]]
check "nor through current_setting" $? "$got"

# Caching: only for an endpoint declared deterministic.
got=$(q -c "SELECT vector_dims(steadytext_embed_cached('cache me', model => 'openai:$EMB', unsafe_mode => true)),
    (SELECT count(*) FROM steadytext_cache WHERE model_name LIKE 'openai:%')")
same "a remote answer is not cached by default" "$got" "1024|0"
q -c "SELECT steadytext_embed_cached('cache me')" >/dev/null
q -c "SET steadytext.remote_deterministic = on;
      SELECT steadytext_embed_cached('cache me', model => 'openai:$EMB', unsafe_mode => true)" >/dev/null
same "with steadytext.remote_deterministic it is, under a key of its own (beside the local row)" \
    "$(q -c "SELECT count(*) FILTER (WHERE model_name = 'openai:$EMB'), count(DISTINCT cache_key)
        FROM steadytext_cache WHERE prompt = 'cache me'")" "1|2"
q -c "LOAD 'pg_steadytext'" -c "ALTER SYSTEM RESET steadytext.remote_base_url" -c "ALTER SYSTEM RESET steadytext.remote_api_key" \
    -c "SELECT pg_reload_conf()" >/dev/null

# 4. The README's eviction schedule, run by Debian's pg_cron.
q -c "CREATE EXTENSION pg_cron;
      SELECT steadytext_generate_cached('row ' || i, 4) FROM generate_series(1, 6) i;
      UPDATE steadytext_cache SET created_at = now() - interval '2 hours',
          last_accessed = now() - interval '2 hours';
      SELECT steadytext_config_set('cache_max_entries', '2');" >/dev/null
before=$(q -c "SELECT count(*) FROM steadytext_cache")
q -c "SELECT cron.schedule('steadytext-eviction', '* * * * *', 'SELECT steadytext_cache_scheduled_eviction()')" >/dev/null
for _ in $(seq 75); do
    [ "$(q -c "SELECT count(*) FROM cron.job_run_details WHERE status = 'succeeded'")" -ge 1 ] && break
    sleep 1
done
after=$(q -c "SELECT count(*) FROM steadytext_cache")
ran=$(q -c "SELECT count(*) FROM cron.job_run_details WHERE status = 'succeeded'")
[ "$ran" -ge 1 ] && [ "$before" -gt 2 ] && [ "$after" -eq 2 ]
check "pg_cron runs steadytext_cache_scheduled_eviction: $before rows -> $after (cache_max_entries 2)" $? \
    "$(q -c "SELECT status, return_message FROM cron.job_run_details")"
q -c "SELECT cron.unschedule('steadytext-eviction')" >/dev/null

# 6. st cache sync: the daemon's cache into the table, and back into an empty daemon.
CACHE_FILE=$WORK/steadytext/caches/steadytext-rs.sqlite3
q -c "CREATE ROLE syncer LOGIN IN ROLE steadytext_worker" >/dev/null
sync() { XDG_CACHE_HOME=$WORK "$ST" cache sync --dsn "host=$DIR/pg port=$PGPORT user=syncer dbname=postgres" "$@" 2>&1; }
out=$(sync --push-only)
[[ $out == *steadytext_cache_import\ needs\ steadytext_admin* ]]
check "a worker role may not write the table until an admin vouches (cache_sync)" $? "$out"
q -c "SELECT steadytext_config_set('cache_sync', 'true')" >/dev/null
out=$(sync)
pushed=$(q -c "SELECT count(*) FROM steadytext_cache WHERE model_name = 'st cache sync'")
[[ $out == *"to the table: "* ]] && [ "$pushed" -ge 2 ]
check "st cache sync, as the worker role: the daemon's entries land in the table ($pushed rows)" $? "$out"
got=$(q -v text="$SQL_TEXT" <<<"SELECT bool_or(response = :'text') FROM steadytext_cache WHERE model_name = 'st cache sync'")
same "the daemon's answer in the table is the bytes SQL computes for that prompt" "$got" t
counts=$(q -c "SELECT sum(access_count), max(last_accessed) FROM steadytext_cache")
out=$(sync --push-only)
[[ $out == "to the table: "* ]]
check "a second sync runs ($out)" $? "$out"
same "syncing again merges the counts instead of adding them" "$(q -c "SELECT sum(access_count), max(last_accessed) FROM steadytext_cache")" "$counts"
# A new daemon host: an empty cache, warmed from the table.
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null
rm -f "$CACHE_FILE" "$CACHE_FILE-wal" "$CACHE_FILE-shm"
out=$(sync --pull-only)
[[ $out =~ from\ the\ table:\ ([0-9]+)\ new ]] && [ "${BASH_REMATCH[1]}" -ge 2 ]
check "st cache sync fills an empty cache from the table ($out)" $? "$out"
XDG_CACHE_HOME=$WORK STEADYTEXT_GENERATION_MODEL=$GEN STEADYTEXT_EMBEDDING_MODEL=$EMB \
    "$ST" daemon run --port "$ZMQ_PORT" --http "$HTTP" --token-file "$WORK/token" \
    --secret-key-file "$WORK/daemon.key" >"$DIR/daemon2.log" 2>&1 &
pids[0]=$!
for _ in $(seq 100); do grep -q ready "$DIR/daemon2.log" && break; sleep 0.1; done
text=$(curl -s -H "Authorization: Bearer $TOKEN" "http://$HTTP/v1/completions" \
    -d "{\"model\": \"default\", \"prompt\": \"$PROMPT\", \"max_tokens\": 24}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["text"])')
metrics=$(curl -s -H "Authorization: Bearer $TOKEN" "http://$HTTP/metrics")
hits=$(sed -n 's/^steadytext_cache_hits_total{kind="generation"} //p' <<<"$metrics")
decoded=$(sed -n 's/^steadytext_decode_tokens_total //p' <<<"$metrics")
[ "$text" = "$SQL_TEXT" ] && [ "$hits" = 1 ] && [ "$decoded" = 0 ]
check "the restarted daemon answers from the synced entry: a hit, nothing decoded, the same bytes" $? \
    "text=$text hits=$hits decoded=$decoded"

# 5. The database-side counters.
q -c "SELECT steadytext_generate_async('queued ' || i) FROM generate_series(1, 2) i;
      INSERT INTO steadytext_rate_limits (user_id, requests_per_minute) VALUES ('app', 1)" >/dev/null
q -U app -c "SELECT steadytext_generate('limited', 4)" >/dev/null 2>&1
q -U app -c "SELECT steadytext_generate('limited', 4)" >/dev/null 2>&1
got=$(q -c "SELECT string_agg(metric || coalesce(labels->>'status', labels->>'result', '') || '=' || value, ' '
    ORDER BY metric, labels::text) FROM steadytext_metrics()
    WHERE metric IN ('steadytext_queue_requests', 'steadytext_rate_limit_refusals_total')
      AND (labels->>'status' IS NULL OR labels->>'status' IN ('pending', 'completed'))")
same "steadytext_metrics(): queue by status, rate-limit refusals" "$got" \
    "steadytext_queue_requestscompleted=0 steadytext_queue_requestspending=2 steadytext_rate_limit_refusals_total=1"
got=$(q -c "SELECT count(*) FROM steadytext_metrics() WHERE metric IN ('steadytext_cache_table_hit_rate',
    'steadytext_cache_table_entries', 'steadytext_cache_table_lookups_total', 'steadytext_queue_oldest_pending_seconds')")
same "steadytext_metrics(): cache table entries, lookups, hit rate, oldest pending" "$got" 5
got=$(err -U app -c "SELECT * FROM steadytext_metrics()")
[[ $got == 42501:* ]]
check "steadytext_metrics() is for steadytext_admin (a steadytext_user gets 42501)" $? "$got"

echo "1..$n"
exit "$failed"
