#!/usr/bin/env bash
# Queue workers (TAP): a cluster with pg_steadytext preloaded runs one background queue worker
# for database `postgres`; database `scale` has none and is served by `st worker`s only.
#
#   - 200 mixed requests served by the background worker and an `st worker` together: each
#     completes exactly once, with the synchronous functions' bytes, and fills the cache;
#   - priority order; a cancel stops a running generation;
#   - an `st worker` killed with kill -9 mid-request: another worker finishes the row after the
#     lease, counting a retry; SIGTERM lets a request finish, a second signal gives it back.
set -uo pipefail
cd "$(dirname "$0")/../.."
DIR=$(mktemp -d /tmp/pg_steadytext_queue.XXXXXX)
chmod 755 "$DIR"
PORT=${QUEUE_PORT:-54350}
MODELS=${STEADYTEXT_TEST_MODELS:-/var/cache/steadytext/test-models}
ST=$(command -v st || echo /usr/local/bin/st)
n=0 failed=0 workers=()
check() { # description, condition (0 = ok), detail
    n=$((n + 1))
    if [ "$2" -eq 0 ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; [ -n "${3:-}" ] && echo "# $3"; failed=1; fi
}
cleanup() {
    for w in "${workers[@]}"; do kill -KILL "$w" 2>/dev/null; wait "$w" 2>/dev/null; done
    scripts/pg-cluster.sh stop "$DIR" >/dev/null 2>&1
    [ $failed -eq 0 ] && rm -rf "$DIR" || echo "# kept $DIR (server.log, worker logs)"
}
trap cleanup EXIT
export PG_EXTRA_CONF="shared_preload_libraries = 'pg_steadytext'
steadytext.queue_workers = 1
steadytext.queue_databases = 'postgres'
steadytext.queue_poll_interval = 1000"
scripts/pg-cluster.sh start "$DIR" "$PORT" >/dev/null
export PGHOST=$DIR PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -c "CREATE DATABASE scale" >/dev/null
for db in postgres scale; do
    q -d $db -c "CREATE EXTENSION vector; CREATE EXTENSION pg_steadytext;" >/dev/null
done
# st worker runs inference itself, on the test models.
export STEADYTEXT_GENERATION_MODEL=$MODELS/smollm2-135m-instruct-q4_1.gguf
export STEADYTEXT_EMBEDDING_MODEL=$MODELS/all-minilm-l6-v2-f32.gguf
export STEADYTEXT_RERANKING_MODEL=$MODELS/smollm2-135m-instruct-q4_1.gguf
worker() { # db, log, extra args...; sets WPID
    local db=$1 log=$2; shift 2
    "$ST" worker --dsn "host=$DIR port=$PORT user=postgres dbname=$db" "$@" >"$DIR/$log" 2>&1 &
    WPID=$!
    workers+=($WPID)
}
wait_until() { # seconds, db, SQL condition
    local deadline=$((SECONDS + $1))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(q -d "$2" -c "SELECT ($3)")" = t ] && return 0
        sleep 0.1
    done
    return 1
}

# The worker connects as steadytext_worker, which CREATE EXTENSION creates: until then it exits
# and is restarted every 5 s.
wait_until 15 postgres "(SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_steadytext queue worker' AND datname = 'postgres' AND usename = 'steadytext_worker')"
check "a background queue worker serves database postgres, as role steadytext_worker" $?

# --- 200 mixed requests, two workers -------------------------------------------------------
# Through the cluster's daemon, as a worker on the database host would (two processes running
# llama.cpp at once on two cores would spin against each other).
STEADYTEXT_DAEMON_ENDPOINT=ipc://$DIR/pg_steadytext/daemon.sock worker postgres mixed.log --concurrency 2 --daemon --poll-interval-ms 500
w=$WPID
sleep 0.5
t0=$SECONDS
q -c "SELECT steadytext_generate('warm up the daemon', 1, false)" >/dev/null
q -c "BEGIN" \
  -c "SELECT steadytext_generate_batch_async(array_agg('Name one thing about the number ' || i), 8) FROM generate_series(1, 100) i" \
  -c "SELECT steadytext_embed_batch_async(array_agg('document number ' || i)) FROM generate_series(1, 100) i" \
  -c "COMMIT" >/dev/null
wait_until 600 postgres "NOT EXISTS (SELECT 1 FROM steadytext_queue WHERE status IN ('pending', 'processing'))"
check "200 requests finish" $? "$(q -c "SELECT status, count(*) FROM steadytext_queue GROUP BY 1")"
echo "# 200 requests served in $((SECONDS - t0)) s"
kill -TERM "$w"; wait "$w"
counts=$(q -c "SELECT count(*), count(DISTINCT request_id), count(*) FILTER (WHERE status = 'completed'),
                      sum(retry_count) FROM steadytext_queue")
check "each of the 200 completed once, with no retry" $([ "$counts" = "200|200|200|0" ]; echo $?) "$counts"
by_st=$(q -c "SELECT count(*) FROM steadytext_queue WHERE worker_id LIKE 'st:%'")
by_bg=$(q -c "SELECT count(*) FROM steadytext_queue WHERE worker_id LIKE 'pg_steadytext:%'")
check "both workers served the queue (st worker $by_st, background worker $by_bg)" \
    $([ "$by_st" -gt 0 ] && [ "$by_bg" -gt 0 ] && [ $((by_st + by_bg)) -eq 200 ]; echo $?)
check "st worker's own count matches the rows it completed" \
    $(grep -q "stopped; $by_st completed, 0 failed, 0 given back, 0 lost" "$DIR/mixed.log"; echo $?) "$(tail -n 1 "$DIR/mixed.log")"
# Computed again in this backend (the daemon's own cache already holds these requests).
t0=$SECONDS
same=$(q -c "SET steadytext.use_daemon = off" -c "SELECT count(*) FROM steadytext_queue
               WHERE request_type = 'generate' AND result = steadytext_generate(prompt, 8, false)")
echo "# 100 synchronous generations in the backend in $((SECONDS - t0)) s"
check "generations equal steadytext_generate's bytes ($same of 100)" $([ "$same" = 100 ]; echo $?)
same=$(q -c "SET steadytext.use_daemon = off" -c "SELECT count(*) FROM steadytext_queue
               WHERE request_type = 'embed' AND embedding = steadytext_embed(prompt, false)")
check "embeddings equal steadytext_embed's ($same of 100)" $([ "$same" = 100 ]; echo $?)
# Only the background worker writes the shared cache: the server computed its keys and results.
cached=$(q -c "SELECT count(*) FROM steadytext_cache")
check "the background worker's results are in steadytext_cache, st worker's are not ($cached of $by_bg)" \
    $([ "$cached" = "$by_bg" ]; echo $?)
status=$(q -c "SELECT request_type || ':' || status || ':' || requests || ':' || (mean_processing_ms > 0)
               FROM steadytext_queue_status ORDER BY 1")
check "steadytext_queue_status summarises them" $([ "$status" = "$(printf 'embed:completed:100:true\ngenerate:completed:100:true')" ]; echo $?) "$status"

# --- structured and rerank requests: the background worker (postgres) and st worker (scale) ----
structured_jobs() { # db: queues one request of each handler's type
    q -d "$1" -c "DELETE FROM steadytext_queue" \
      -c "SELECT steadytext_generate_json_async('Give a person', '{\"type\": \"object\", \"properties\": {\"name\": {\"type\": \"string\", \"maxLength\": 12}}, \"required\": [\"name\"]}', 64)" \
      -c "SELECT steadytext_generate_regex_async('A code', '[A-Z]{3}-[0-9]{2}', 32)" \
      -c "SELECT steadytext_generate_choice_async('Is fire hot?', ARRAY['yes', 'no'], 8)" \
      -c "SELECT steadytext_rerank_async('What is PostgreSQL?', ARRAY['A database', 'A fruit'])" \
      -c "SELECT steadytext_rerank_batch_async(ARRAY['cats', 'cars'], ARRAY['Cats purr', 'Cars drive'], return_scores => false)" >/dev/null
}
# What the synchronous functions give, computed in the backend.
same_as_sync() { # db
    q -d "$1" -c "SET steadytext.use_daemon = off" -c "SELECT count(*) FILTER (WHERE result = CASE request_type
        WHEN 'generate_json' THEN steadytext_generate_json(prompt, params->'schema', 64, false)
        WHEN 'generate_regex' THEN steadytext_generate_regex(prompt, params->>'pattern', 32, false)
        WHEN 'generate_choice' THEN steadytext_generate_choice(prompt, ARRAY(SELECT jsonb_array_elements_text(params->'choices')), 8, false)
        WHEN 'rerank' THEN (SELECT jsonb_agg(jsonb_build_array(document, score))::text
                            FROM steadytext_rerank(params->>'query', ARRAY(SELECT jsonb_array_elements_text(params->'documents'))))
        WHEN 'batch_rerank' THEN (SELECT jsonb_agg(document)::text
                            FROM steadytext_rerank(params->>'query', ARRAY(SELECT jsonb_array_elements_text(params->'documents'))))
        END) || '/' || count(*) FROM steadytext_queue"
}
structured_jobs postgres
wait_until 120 postgres "NOT EXISTS (SELECT 1 FROM steadytext_queue WHERE status IN ('pending', 'processing'))"
check "the background worker serves json, regex, choice, rerank and batch_rerank requests" $? \
    "$(q -c "SELECT request_type, status, error FROM steadytext_queue")"
got=$(same_as_sync postgres)
check "with the synchronous functions' results ($got)" $([ "$got" = 6/6 ]; echo $?) "$(q -c "SELECT request_type, result FROM steadytext_queue")"
worker scale structured.log --poll-interval-ms 200; s=$WPID
structured_jobs scale
wait_until 120 scale "NOT EXISTS (SELECT 1 FROM steadytext_queue WHERE status IN ('pending', 'processing'))"
check "st worker serves them too" $? "$(q -d scale -c "SELECT request_type, status, error FROM steadytext_queue")"
got=$(same_as_sync scale)
check "with the same results ($got)" $([ "$got" = 6/6 ]; echo $?) "$(q -d scale -c "SELECT request_type, result FROM steadytext_queue")"
kill -TERM "$s"; wait "$s"
q -d scale -c "DELETE FROM steadytext_queue" >/dev/null

# --- priority ------------------------------------------------------------------------------
q -c "DELETE FROM steadytext_queue"
q -c "BEGIN" \
  -c "CREATE TEMP TABLE p AS SELECT i, steadytext_generate_async('Priority test ' || i, 4) AS id FROM generate_series(1, 6) i ORDER BY i" \
  -c "SELECT steadytext_set_async_priority(id, (ARRAY[1, 5, 10, 3, 8, 5])[i]) FROM p" \
  -c "COMMIT" >/dev/null
wait_until 120 postgres "NOT EXISTS (SELECT 1 FROM steadytext_queue WHERE status <> 'completed')"
check "prioritised requests finish" $?
order=$(q -c "SELECT string_agg(substring(prompt from '[0-9]+$'), ',' ORDER BY started_at) FROM steadytext_queue")
# priorities 1, 5, 10, 3, 8, 5 for requests 1..6: request 2 and 6 tie, and 2 is older
check "they start highest priority first, then oldest ($order)" $([ "$order" = "3,5,2,6,4,1" ]; echo $?)

# --- cancel while running --------------------------------------------------------------------
# How long the whole generation takes, and that it runs to its budget (no early end).
t0=$(date +%s%N)
full=$(q -c "SELECT length(steadytext_generate('Write a very long story about a dragon and a knight', 400, false))")
full_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "the long generation is long: $full characters in $full_ms ms" $([ "${full:-0}" -gt 1400 ]; echo $?)
long=$(q -c "SELECT steadytext_generate_async('Write a very long story about a dragon and a knight', 400)")
wait_until 30 postgres "(SELECT status = 'processing' FROM steadytext_queue WHERE request_id = '$long')"
check "a long generation is running" $?
sleep 0.5
check "cancel_async cancels it" $([ "$(q -c "SELECT steadytext_cancel_async('$long')")" = t ]; echo $?)
t0=$(date +%s%N)
short=$(q -c "SELECT steadytext_generate_async('Say hi', 8)")
got=$(q -c "SELECT steadytext_get_async_result('$short', 60)" 2>&1)
short_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
# Served in less than half the long generation's time only if its decoding stopped.
check "the worker stops decoding and serves the next request (${short_ms} ms < ${full_ms}/2 ms)" \
    $([ "$got" = "$(q -c "SELECT steadytext_generate('Say hi', 8, false)")" ] && [ $short_ms -lt $((full_ms / 2)) ]; echo $?) "$got"
check "the cancelled request stays cancelled, without a result" \
    $([ "$(q -c "SELECT status || ':' || (result IS NULL) FROM steadytext_queue WHERE request_id = '$long'")" = "cancelled:true" ]; echo $?)

# A request that cannot succeed (its prompt alone overflows the context) is not retried.
bad=$(q -c "SELECT steadytext_generate_async(repeat('9 ', 4900), 16)")
wait_until 30 postgres "(SELECT status = 'failed' FROM steadytext_queue WHERE request_id = '$bad')"
row=$(q -c "SELECT retry_count || ':' || (error LIKE '%tokens but the model''s context window holds 4096%') FROM steadytext_queue WHERE request_id = '$bad'")
check "a request that cannot fit the context fails at once, without retries" $([ "$row" = "0:true" ]; echo $?) "$row"

# --- kill -9 of an st worker mid-request (database scale: st workers only) --------------------
prompt="Tell a story about a lighthouse keeper"
worker scale killed.log --lease-seconds 3 --poll-interval-ms 200 --name worker-a; a=$WPID
id=$(q -d scale -c "SELECT steadytext_generate_async('$prompt', 400)")
wait_until 30 scale "(SELECT status = 'processing' AND worker_id LIKE 'worker-a/%' FROM steadytext_queue WHERE request_id = '$id')"
check "worker A is running the request" $?
kill -KILL "$a"; wait "$a" 2>/dev/null
worker scale survivor.log --lease-seconds 3 --poll-interval-ms 200 --name worker-b; b=$WPID
wait_until 120 scale "(SELECT status = 'completed' FROM steadytext_queue WHERE request_id = '$id')"
check "worker B finishes it after A's lease expires" $? "$(q -d scale -c "SELECT status, worker_id, error FROM steadytext_queue")"
row=$(q -d scale -c "SELECT worker_id LIKE 'worker-b/%', retry_count, error IS NULL FROM steadytext_queue WHERE request_id = '$id'")
check "the row is B's, with retry_count 1" $([ "$row" = "t|1|t" ]; echo $?) "$row"
check "with the synchronous bytes" \
    $([ "$(q -d scale -c "SELECT result FROM steadytext_queue WHERE request_id = '$id'")" = \
        "$(q -d scale -c "SELECT steadytext_generate('$prompt', 400, false)")" ]; echo $?)
check "and exactly one row" $([ "$(q -d scale -c "SELECT count(*) FROM steadytext_queue")" = 1 ]; echo $?)

# --- SIGTERM: the running request finishes; a second signal gives it back ---------------------
id=$(q -d scale -c "SELECT steadytext_generate_async('Describe the sea', 300)")
wait_until 30 scale "(SELECT status = 'processing' FROM steadytext_queue WHERE request_id = '$id')"
kill -TERM "$b"; wait "$b"; rc=$?
check "SIGTERM: st worker exits cleanly ($rc)" $([ $rc -eq 0 ]; echo $?) "$(tail -n 3 "$DIR/survivor.log")"
check "after finishing its request" \
    $([ "$(q -d scale -c "SELECT status FROM steadytext_queue WHERE request_id = '$id'")" = completed ]; echo $?)
worker scale aborted.log --lease-seconds 30 --name worker-c; c=$WPID
id=$(q -d scale -c "SELECT steadytext_generate_async('Write a very long story about a whale', 3000)")
wait_until 30 scale "(SELECT status = 'processing' FROM steadytext_queue WHERE request_id = '$id')"
kill -TERM "$c"; sleep 0.3; kill -INT "$c"; wait "$c"; rc=$?
check "a second signal stops it at once ($rc)" $([ $rc -eq 0 ] && grep -q "1 given back" "$DIR/aborted.log"; echo $?) "$(tail -n 2 "$DIR/aborted.log")"
row=$(q -d scale -c "SELECT status, retry_count, worker_id IS NULL FROM steadytext_queue WHERE request_id = '$id'")
check "giving its request back to the queue, not counted as a retry" $([ "$row" = "pending|0|t" ]; echo $?) "$row"
q -d scale -c "SELECT steadytext_cancel_async('$id')" >/dev/null

# --- two workers race for the same rows (the claim protocol itself, database scale) ------------
# A deterministic race first: A's lease runs out while it works, B takes the row and completes
# it; A's late completion is refused and changes nothing. Each worker is one connection (only
# the connection that claimed a row may complete it).
q -d scale -c "DELETE FROM steadytext_queue" >/dev/null
id=$(q -d scale -c "SELECT steadytext_generate_async('race alone', 4)")
q -d scale >"$DIR/racer-a.out" 2>&1 <<'SQL' &
SELECT (steadytext_queue_claim('racer-a', 1, 1)).id AS job \gset
SELECT pg_sleep(3);
SELECT 'job=' || :job, 'a=' || steadytext_queue_complete(:job, 'racer-a', 'by a');
SQL
racer_a=$!
sleep 1.5
q -d scale >"$DIR/racer-b.out" 2>&1 <<'SQL'
SELECT (steadytext_queue_claim('racer-b', 1, 30)).id AS job \gset
SELECT 'job=' || :job, 'b=' || steadytext_queue_complete(:job, 'racer-b', 'by b');
SQL
wait $racer_a
row=$(q -d scale -c "SELECT status || '|' || result || '|' || retry_count FROM steadytext_queue WHERE request_id = '$id'")
outcome="$(grep -h '^job=' "$DIR/racer-a.out" "$DIR/racer-b.out" | tr '\n' ' ')"
check "a late completion from a worker whose lease expired is refused ($outcome; $row)" \
    $(grep -q '|a=false' "$DIR/racer-a.out" && grep -q '|b=true' "$DIR/racer-b.out" \
      && [ "$(grep -ho '^job=[0-9]*' "$DIR/racer-a.out")" = "$(grep -ho '^job=[0-9]*' "$DIR/racer-b.out")" ] \
      && [ "$row" = "completed|by b|1" ]; echo $?) "$(cat "$DIR/racer-a.out" "$DIR/racer-b.out")"
# Another connection cannot act on a row it did not claim, even under the claimer's name.
id=$(q -d scale -c "SELECT steadytext_generate_async('claimed elsewhere', 4)")
q -d scale >"$DIR/holder.out" 2>&1 <<'SQL' &
SELECT (steadytext_queue_claim('holder', 1, 30)).id AS job \gset
SELECT pg_sleep(2);
SQL
holder=$!
sleep 1
job=$(q -d scale -c "SELECT id FROM steadytext_queue WHERE request_id = '$id'")
stolen=$(q -d scale -c "SELECT steadytext_queue_complete($job, 'holder', 'forged')")
wait $holder
check "a connection that did not claim a row cannot complete it under the claimer's name ($stolen)" \
    $([ "$stolen" = f ] && [ "$(q -d scale -c "SELECT result IS NULL FROM steadytext_queue WHERE request_id = '$id'")" = t ]; echo $?)
# Then three workers with a 1 s lease: r1 and r2 work for up to 1.6 s, r3 always for 3 s (its
# leases run out). Every row is completed once, by the worker whose completion was accepted;
# r3's late completions are refused.
q -d scale -c "DELETE FROM steadytext_queue" >/dev/null
q -d scale -c "SELECT steadytext_generate_async('race ' || i, 4) FROM generate_series(1, 30) i" >/dev/null
# Leases run out on purpose here: enough retries that no row fails for it.
q -d scale -c "UPDATE steadytext_queue SET max_retries = 1000" >/dev/null
q -d scale -c "CREATE TABLE race_log (worker text, job int, accepted boolean)" >/dev/null
racer() { # name, seconds of work (SQL expression)
    q -d scale -c "DO \$\$
DECLARE job int; ok boolean;
BEGIN
    LOOP
        SELECT (steadytext_queue_claim('$1', 1, 1)).id INTO job;
        COMMIT;
        IF job IS NULL THEN
            EXIT WHEN NOT EXISTS (SELECT 1 FROM steadytext_queue WHERE status IN ('pending', 'processing'));
            PERFORM pg_sleep(0.2);
            CONTINUE;
        END IF;
        PERFORM pg_sleep($2);
        ok := steadytext_queue_complete(job, '$1', 'by $1');
        INSERT INTO race_log VALUES ('$1', job, ok);
        COMMIT;
    END LOOP;
END \$\$"
}
racer r1 "random() * 1.6" & racer r2 "random() * 1.6" & racer r3 3 & wait
row=$(q -d scale -c "SELECT (SELECT count(*) FROM steadytext_queue WHERE status = 'completed') || '|' ||
    (SELECT count(*) FROM race_log WHERE accepted) || '|' ||
    (SELECT count(*) FROM (SELECT job FROM race_log WHERE accepted GROUP BY job HAVING count(*) <> 1) x) || '|' ||
    (SELECT count(*) FROM race_log l JOIN steadytext_queue q ON q.id = l.job WHERE l.accepted AND q.result <> 'by ' || l.worker) || '|' ||
    (SELECT count(*) FILTER (WHERE NOT accepted) FROM race_log)")
check "racing workers: 30 rows, 30 accepted completions, none twice, each the row's result, some refused (completed|accepted|dup|wrong|refused: $row)" \
    $([[ "$row" == 30\|30\|0\|0\|* ]] && [ "${row##*|}" -gt 0 ]; echo $?)
q -d scale -c "DROP TABLE race_log; DELETE FROM steadytext_queue" >/dev/null

check "the server never crashed" $(! grep -q "terminated by signal\|server process .* was terminated" "$DIR/server.log"; echo $?)
echo "1..$n"
exit $failed
