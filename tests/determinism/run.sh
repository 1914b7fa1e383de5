#!/usr/bin/env bash
# Determinism matrix (TAP): the same prompts and texts through every route give the same bytes.
#
# Routes, each compared with the library at one thread:
#   generation  library (1 and 2 threads, streamed), st CLI, st daemon (before and after a
#               restart, and 4 and 8 clients at once, batched), SQL through the cluster's daemon and in the backend (each streamed
#               and not), the background queue worker, st worker
#   embedding   library (single, batch, 2 threads), st CLI, st daemon (before and after a
#               restart), SQL through the daemon and in the backend (single and batch), the
#               background queue worker, st worker
# Every cache is off (STEADYTEXT_DISABLE_CACHE for the daemons, use_cache => false in SQL, one
# queued request per input and database), so both sides of each comparison compute.
# Then a registry model entry (gemma-mini-270m, its file a link to the generation fixture) has
# the registry's 2048-token window on every route: a 3000-token prompt gets the same error
# everywhere, and a short prompt the same bytes as the fixture named by path.
set -uo pipefail
cd "$(dirname "$0")/../.."
HERE=tests/determinism
WORK=$(mktemp -d /tmp/pg_steadytext_determinism.XXXXXX)
chmod 755 "$WORK"
DATA=$WORK/data
PORT=${DETERMINISM_PORT:-54370}
MODELS=${STEADYTEXT_TEST_MODELS:-/var/cache/steadytext/test-models}
TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/pg_steadytext/target}/${PROFILE:-dist}
ST=${ST:-$(command -v st || echo /usr/local/bin/st)}
DIGEST=$TARGET/examples/digest
TOKENS=24
n=0 failed=0 pids=()
check() { # description, condition (0 = ok), detail
    n=$((n + 1))
    if [ "$2" -eq 0 ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; [ -n "${3:-}" ] && echo "# ${3:0:800}"; failed=1; fi
}
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    "$ST" daemon stop --endpoint "ipc://$WORK/daemon.sock" >/dev/null 2>&1
    scripts/pg-cluster.sh stop "$DATA" >/dev/null 2>&1
    [ $failed -eq 0 ] && rm -rf "$WORK" || echo "# kept $WORK"
}
trap cleanup EXIT

# The registry's mini generation model is a link to the fixture, in a models directory of its own.
mkdir -p "$WORK/models"
ln -s "$MODELS/smollm2-135m-instruct-q4_1.gguf" "$WORK/models/gemma-3-270m-it-qat-Q4_0.gguf"
export STEADYTEXT_GENERATION_MODEL=$MODELS/smollm2-135m-instruct-q4_1.gguf
export STEADYTEXT_EMBEDDING_MODEL=$MODELS/all-minilm-l6-v2-f32.gguf
export STEADYTEXT_MODELS_DIR=$WORK/models XDG_CACHE_HOME=$WORK/cache STEADYTEXT_DISABLE_CACHE=1
export STEADYTEXT_DAEMON_ENDPOINT=ipc://$WORK/daemon.sock

mapfile -t PROMPTS <"$HERE/prompts.txt"
mapfile -t TEXTS <"$HERE/texts.txt"
LONG=$(python3 -c "print('9 ' * 1500, end='')")

# --- helpers: every route prints one sha256 per input -----------------------------------------
sha_text() { python3 -c "import sys, json, hashlib; print(hashlib.sha256(json.load(sys.stdin)['text'].encode()).hexdigest())"; }
# st embed's hex (little-endian float32) as pgvector's binary form, then its sha256
sha_hex_vector() {
    python3 -c "
import sys, struct, hashlib
raw = bytes.fromhex(sys.stdin.read().strip())
v = struct.unpack('<%df' % (len(raw) // 4), raw)
print(hashlib.sha256(struct.pack('>HH', len(v), 0) + struct.pack('>%df' % len(v), *v)).hexdigest())"
}
jsonl() { # method, stream, field, values...
    local method=$1 stream=$2 field=$3; shift 3
    python3 - "$method" "$stream" "$field" "$TOKENS" "$@" <<'PY'
import sys, json
method, stream, field, tokens, values = sys.argv[1], sys.argv[2] == "1", sys.argv[3], int(sys.argv[4]), sys.argv[5:]
for v in values:
    params = {field: v}
    if method == "generate":
        params["max_new_tokens"] = tokens
    print(json.dumps({"method": method, "params": params, "stream": stream}))
PY
}
library() { "$DIGEST" "$@"; }
sql_literal_array() { python3 -c "
import sys
print('ARRAY[' + ', '.join(\"'\" + a.replace(\"'\", \"''\") + \"'\" for a in sys.argv[1:]) + ']::text[]')" "$@"; }
PA=$(sql_literal_array "${PROMPTS[@]}")
TA=$(sql_literal_array "${TEXTS[@]}")
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$DATA" -p "$PORT" -U postgres "$@"; }
sql_gen() { # db, prefix SQL, expression over p
    q -d "$1" -c "$2" -c "SELECT encode(sha256(convert_to($3, 'UTF8')), 'hex') FROM unnest($PA) WITH ORDINALITY u(p, i) ORDER BY i"
}
sql_emb() { # db, prefix SQL, expression over t
    q -d "$1" -c "$2" -c "SELECT encode(sha256(vector_send($3)), 'hex') FROM unnest($TA) WITH ORDINALITY u(t, i) ORDER BY i"
}
queued() { # db, kind (generate|embed): queue every input, wait, print the results' digests in order
    local db=$1 kind=$2
    if [ "$kind" = generate ]; then
        q -d "$db" -c "CREATE TABLE ids AS SELECT i, steadytext_generate_async(p, $TOKENS) AS id FROM unnest($PA) WITH ORDINALITY u(p, i)"
    else
        q -d "$db" -c "CREATE TABLE ids AS SELECT i, steadytext_embed_async(t) AS id FROM unnest($TA) WITH ORDINALITY u(t, i)"
    fi
    local deadline=$((SECONDS + 300))
    while [ $SECONDS -lt $deadline ] && [ "$(q -d "$db" -c "SELECT count(*) FROM ids JOIN steadytext_queue q ON q.request_id = ids.id WHERE q.status IN ('pending', 'processing')")" != 0 ]; do
        sleep 0.5
    done
    if [ "$kind" = generate ]; then
        q -d "$db" -c "SELECT coalesce(encode(sha256(convert_to(q.result, 'UTF8')), 'hex'), q.status || ': ' || coalesce(q.error, '')) FROM ids JOIN steadytext_queue q ON q.request_id = ids.id ORDER BY ids.i"
    else
        q -d "$db" -c "SELECT coalesce(encode(sha256(vector_send(q.embedding)), 'hex'), q.status || ': ' || coalesce(q.error, '')) FROM ids JOIN steadytext_queue q ON q.request_id = ids.id ORDER BY ids.i"
    fi
    q -d "$db" -c "DROP TABLE ids"
}
compare() { # description, expected file, actual file
    local cases; cases=$(wc -l <"$2")
    check "$1 ($cases inputs)" $([ "$cases" -gt 0 ] && cmp -s "$2" "$3"; echo $?) "$(diff "$2" "$3" | head -4)"
    CASES=$((${CASES:-0} + cases))
}

# --- the cluster: its daemon's cache off; database bg has a background worker, remote does not
export PG_EXTRA_CONF="shared_preload_libraries = 'pg_steadytext'
steadytext.queue_workers = 1
steadytext.queue_databases = 'bg'
steadytext.queue_poll_interval = 200
steadytext.models_dir = '$WORK/models'"
scripts/pg-cluster.sh start "$DATA" "$PORT" >/dev/null
for db in bg remote; do q -d postgres -c "CREATE DATABASE $db" >/dev/null; done
for db in postgres bg remote; do q -d $db -c "CREATE EXTENSION vector; CREATE EXTENSION pg_steadytext" >/dev/null; done
"$ST" worker --dsn "host=$DATA port=$PORT user=postgres dbname=remote" --poll-interval-ms 200 >"$WORK/st-worker.log" 2>&1 &
pids+=($!)
"$ST" daemon start --endpoint "$STEADYTEXT_DAEMON_ENDPOINT" >/dev/null

# --- generation ---------------------------------------------------------------------------------
G=$WORK/gen; mkdir -p "$G"
jsonl generate 0 prompt "${PROMPTS[@]}" | library --threads 1 >"$G/library"
jsonl generate 0 prompt "${PROMPTS[@]}" | library --threads 2 >"$G/library-2-threads"
jsonl generate 1 prompt "${PROMPTS[@]}" | library --threads 1 >"$G/library-stream"
for p in "${PROMPTS[@]}"; do "$ST" generate --json --threads 1 --max-new-tokens $TOKENS -- "$p" | sha_text; done >"$G/cli"
for p in "${PROMPTS[@]}"; do "$ST" generate --json --daemon --max-new-tokens $TOKENS -- "$p" | sha_text; done >"$G/daemon"
sql_gen postgres "SET steadytext.use_daemon = on; SET steadytext.inprocess_fallback = off" "steadytext_generate(p, $TOKENS, false)" >"$G/sql-daemon"
sql_gen postgres "SET steadytext.use_daemon = on; SET steadytext.inprocess_fallback = off" "(SELECT string_agg(s, '' ORDER BY k) FROM steadytext_generate_stream(p, $TOKENS, false) WITH ORDINALITY AS x(s, k))" >"$G/sql-daemon-stream"
sql_gen postgres "SET steadytext.use_daemon = off" "steadytext_generate(p, $TOKENS, false)" >"$G/backend"
sql_gen postgres "SET steadytext.use_daemon = off" "(SELECT string_agg(s, '' ORDER BY k) FROM steadytext_generate_stream(p, $TOKENS, false) WITH ORDINALITY AS x(s, k))" >"$G/backend-stream"
queued bg generate >"$G/background-worker"
queued remote generate >"$G/st-worker"

# --- embeddings ---------------------------------------------------------------------------------
E=$WORK/emb; mkdir -p "$E"
jsonl embed 0 text_input "${TEXTS[@]}" | library --threads 1 >"$E/library"
jsonl embed 0 text_input "${TEXTS[@]}" | library --threads 2 >"$E/library-2-threads"
python3 -c "import sys, json; print(json.dumps({'method': 'embed_batch', 'params': {'texts': sys.argv[1:]}}))" "${TEXTS[@]}" \
    | library --threads 1 >"$E/library-batch"
for t in "${TEXTS[@]}"; do "$ST" embed --threads 1 -- "$t" | sha_hex_vector; done >"$E/cli"
for t in "${TEXTS[@]}"; do "$ST" embed --daemon -- "$t" | sha_hex_vector; done >"$E/daemon"
sql_emb postgres "SET steadytext.use_daemon = on; SET steadytext.inprocess_fallback = off" "steadytext_embed(t, false)" >"$E/sql-daemon"
q -c "SET steadytext.use_daemon = on; SET steadytext.inprocess_fallback = off" -c "SELECT encode(sha256(vector_send(embedding)), 'hex') FROM steadytext_embed_batch($TA) ORDER BY index" >"$E/sql-daemon-batch"
sql_emb postgres "SET steadytext.use_daemon = off" "steadytext_embed(t, false)" >"$E/backend"
q -c "SET steadytext.use_daemon = off" -c "SELECT encode(sha256(vector_send(embedding)), 'hex') FROM steadytext_embed_batch($TA) ORDER BY index" >"$E/backend-batch"
queued bg embed >"$E/background-worker"
queued remote embed >"$E/st-worker"

# --- after a restart of the daemon --------------------------------------------------------------
first_pid=$("$ST" daemon status --json | python3 -c "import sys, json; print(json.load(sys.stdin)['pid'])")
"$ST" daemon stop --endpoint "$STEADYTEXT_DAEMON_ENDPOINT" >/dev/null
"$ST" daemon start --endpoint "$STEADYTEXT_DAEMON_ENDPOINT" >/dev/null
second_pid=$("$ST" daemon status --json | python3 -c "import sys, json; print(json.load(sys.stdin)['pid'])")
check "the daemon restarted (pid $first_pid, then $second_pid)" $([ "$first_pid" != "$second_pid" ] && [ -n "$second_pid" ]; echo $?)
for p in "${PROMPTS[@]}"; do "$ST" generate --json --daemon --max-new-tokens $TOKENS -- "$p" | sha_text; done >"$G/daemon-restarted"
for t in "${TEXTS[@]}"; do "$ST" embed --daemon -- "$t" | sha_hex_vector; done >"$E/daemon-restarted"

# --- concurrent clients of the daemon: 4, then 8 at once, so their generations share its batch ---
concurrent() { # clients; prints one digest per prompt, in prompt order
    local dir=$WORK/concurrent-$1 i group=()
    mkdir -p "$dir"
    for i in "${!PROMPTS[@]}"; do
        "$ST" generate --json --daemon --max-new-tokens $TOKENS -- "${PROMPTS[$i]}" >"$dir/$i" &
        group+=($!)
        if [ ${#group[@]} -eq "$1" ]; then wait "${group[@]}"; group=(); fi
    done
    [ ${#group[@]} -gt 0 ] && wait "${group[@]}"
    for i in "${!PROMPTS[@]}"; do sha_text <"$dir/$i"; done
}
concurrent 4 >"$G/daemon-4-clients"
concurrent 8 >"$G/daemon-8-clients"

for f in library-2-threads library-stream cli daemon daemon-restarted daemon-4-clients daemon-8-clients sql-daemon sql-daemon-stream backend backend-stream background-worker st-worker; do
    compare "generation: $f = library" "$G/library" "$G/$f"
done
for f in library-2-threads library-batch cli daemon daemon-restarted sql-daemon sql-daemon-batch backend backend-batch background-worker st-worker; do
    compare "embedding: $f = library" "$E/library" "$E/$f"
done
check "the outputs differ between inputs (not one constant digest)" \
    $([ "$(sort -u "$G/library" | wc -l)" = ${#PROMPTS[@]} ] && [ "$(sort -u "$E/library" | wc -l)" = ${#TEXTS[@]} ]; echo $?)

# --- a registry model: the same window on every route -------------------------------------------
R=$WORK/registry; mkdir -p "$R"
error_text() { sed -n 's/.*\(prompt has [0-9]* tokens but the model.s context window holds [0-9]*\).*/\1/p' | head -n 1; }
jsonl generate 0 prompt "$LONG" | python3 -c "
import sys, json
for line in sys.stdin:
    r = json.loads(line); r['params']['model'] = 'gemma-mini-270m'; r['params']['max_new_tokens'] = 8; print(json.dumps(r))" \
    | library | error_text >"$R/library"
"$ST" generate --json --model gemma-mini-270m --max-new-tokens 8 -- "$LONG" 2>&1 | error_text >"$R/cli"
"$ST" generate --json --daemon --model gemma-mini-270m --max-new-tokens 8 -- "$LONG" 2>&1 | error_text >"$R/daemon"
q -c "SET steadytext.use_daemon = off" -c "SELECT steadytext_generate('$LONG', 8, false, model => 'gemma-mini-270m')" 2>&1 | error_text >"$R/backend"
q -c "SELECT steadytext_generate('$LONG', 8, false, model => 'gemma-mini-270m')" 2>&1 | error_text >"$R/sql-daemon"
q -c "SELECT steadytext_generate('$LONG', 8, false, size => 'mini')" 2>&1 | error_text >"$R/sql-size-mini"
for db in bg remote; do
    id=$(q -d $db -c "SELECT _steadytext_enqueue('generate', '$LONG', '{\"max_tokens\": 8, \"model\": \"gemma-mini-270m\"}', 5)")
    for _ in $(seq 120); do
        [ "$(q -d $db -c "SELECT status FROM steadytext_queue WHERE request_id = '$id'")" = failed ] && break; sleep 0.5
    done
    q -d $db -c "SELECT error FROM steadytext_queue WHERE request_id = '$id'" | error_text
done >"$R/queued"
expected=$(cat "$R/library")
check "a 3000-token prompt on the registry model: '$expected'" $([[ "$expected" == *"holds 2048" ]]; echo $?)
for f in cli daemon backend sql-daemon sql-size-mini; do
    check "the same window and error through $f" $([ "$(cat "$R/$f")" = "$expected" ]; echo $?) "$(cat "$R/$f")"
done
check "and as both queue workers' error" $([ "$(sort -u "$R/queued")" = "$expected" ] && [ "$(wc -l <"$R/queued")" = 2 ]; echo $?) "$(cat "$R/queued")"
out=$(q -c "SELECT steadytext_generate('$LONG', 8, false) IS NOT NULL")
check "the fixture named by path has its own 4096-token window: the same prompt fits" $([ "$out" = t ]; echo $?) "$out"
short="${PROMPTS[0]}"
a=$(q -c "SELECT encode(sha256(convert_to(steadytext_generate('$short', $TOKENS, false, model => 'gemma-mini-270m'), 'UTF8')), 'hex')")
b=$("$ST" generate --json --daemon --model gemma-mini-270m --max-new-tokens $TOKENS -- "$short" | sha_text)
check "a short prompt on the registry model: the fixture's bytes in SQL and through the daemon" \
    $([ "$a" = "$(head -n 1 "$G/library")" ] && [ "$b" = "$a" ]; echo $?) "$a / $b"

# --- the same errors on every route ------------------------------------------------------------
# A bad grammar, an oversized prompt and a missing model: the same SQLSTATE and text in the
# backend and through the daemon, the same text as a queued job's error on both workers, and the
# same class (permanent: failed at once; transient: retried). Rows are put in the queue directly
# (as an older version would have left them): the *_async functions refuse such requests.
BIG=$(python3 -c "print('word ' * 3000, end='')")
errors_of() { # label, SQL call
    for route in "SET steadytext.use_daemon = off" "SET steadytext.use_daemon = on; SET steadytext.inprocess_fallback = off"; do
        q -v VERBOSITY=verbose -c "$route" -c "SELECT $2" 2>&1 | grep -E "^(ERROR|WARNING):" | sed -E 's/^(ERROR|WARNING):  //'
    done
}
queued_error() { # db, request_type, prompt, params: "status|retry_count|error"
    local id; id=$(q -d "$1" -c "INSERT INTO steadytext_queue (request_type, prompt, params, user_id)
                                  VALUES ('$2', '$3', '$4', 'postgres') RETURNING request_id")
    for _ in $(seq 120); do
        [ "$(q -d "$1" -c "SELECT status <> 'pending' AND status <> 'processing' OR retry_count > 0 FROM steadytext_queue WHERE request_id = '$id'")" = t ] && break
        sleep 0.5
    done
    q -d "$1" -c "SELECT status || '|' || retry_count || '|' || error FROM steadytext_queue WHERE request_id = '$id'"
    q -d "$1" -c "DELETE FROM steadytext_queue WHERE request_id = '$id'" >/dev/null
}
for case in grammar long missing; do
    case $case in
    grammar) call="steadytext_generate_grammar('hi', 'start: ???', 8, false)"; type=generate_grammar; prompt=hi
             params='{"max_tokens": 8, "grammar": "start: ???"}'; class="failed|0|" ;;
    long) call="steadytext_generate('$BIG', 8, false)"; type=generate; prompt=$BIG
          params='{"max_tokens": 8}'; class="failed|0|" ;;
    missing) call="steadytext_generate('hi', 8, false, model => 'not-there.gguf')"; type=generate; prompt=hi
             params='{"max_tokens": 8, "model": "not-there.gguf"}'; class="retried|1|" ;;
    esac
    sync=$(errors_of "$case" "$call")
    backend=$(sed -n 1p <<<"$sync") daemon=$(sed -n 2p <<<"$sync")
    check "$case: the same SQLSTATE and text in the backend and through the daemon: $backend" \
        $([ -n "$backend" ] && [ "$backend" = "$daemon" ]; echo $?) "$daemon"
    # The queued job's error is the library's text (the SQL text without a function's prefix).
    core=$(sed -E 's/^[0-9A-Z]{5}: //; s/^steadytext_[a-z_]+: no generation model could be used, returning NULL: //; s/\. Set steadytext\.generation_model.*$//' <<<"$backend")
    for db in bg remote; do
        got=$(queued_error "$db" "$type" "$prompt" "$params")
        # a transient error goes back to the queue (pending, or already claimed again)
        got_class=$(sed -E 's/^(pending|processing)\|/retried|/' <<<"$got")
        check "$case: queued in $db, classified as '${class%|}' with the same text" \
            $([[ "$got_class" == "$class"* ]] && [[ "$got" == *"$core"* ]]; echo $?) "$got / $core"
    done
done

echo "# $CASES route/input cases compared"
check "at least 200 cases" $([ "$CASES" -ge 200 ]; echo $?)
echo "1..$n"
exit $failed
