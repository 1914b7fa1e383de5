#!/usr/bin/env bash
# Operations (TAP): crashes lose nothing.
#
# A cluster with pg_steadytext preloaded runs its daemon, one background queue worker and an
# `st worker` (through the daemon, as on a database host) while a client keeps calling a
# `_cached` function. Twice, with a round of queued requests running: first a backend (the
# background worker, mid-request) is killed with kill -9, which makes PostgreSQL end every
# session and reinitialise; then the postmaster is killed with kill -9 and the cluster started
# again. After each crash:
#   - every request of the round completes exactly once (one row each, completed, with the
#     synchronous functions' bytes), and requests enqueued after it complete too;
#   - the cache is whole: each row holds what the synchronous function computes for its prompt,
#     and the access counts agree with the lookups table (both are written in the caller's
#     transaction, so a crash keeps both or neither);
#   - the daemon answers, the background worker is back, and the `st worker` (same process)
#     serves requests again.
set -uo pipefail
cd "$(dirname "$0")/../.."
WORK=$(mktemp -d /tmp/pg_steadytext_crash.XXXXXX)
chmod 755 "$WORK"
DIR=$WORK/data
PORT=${CRASH_PORT:-54392}
MODELS=${STEADYTEXT_TEST_MODELS:-/var/cache/steadytext/test-models}
ST=$(command -v st || echo /usr/local/bin/st)
source tests/tap.sh
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    scripts/pg-cluster.sh stop "$DIR" >/dev/null 2>&1
    [ "$failed" -eq 0 ] && rm -rf "$WORK" || echo "# kept $WORK (data/server.log, worker.log)"
}
trap cleanup EXIT

export PG_EXTRA_CONF="shared_preload_libraries = 'pg_steadytext'
steadytext.queue_workers = 1
steadytext.queue_databases = 'postgres'
steadytext.queue_poll_interval = 500
restart_after_crash = on"
scripts/pg-cluster.sh start "$DIR" "$PORT" >/dev/null
export PGHOST=$DIR PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -c "CREATE EXTENSION vector; CREATE EXTENSION pg_steadytext" >/dev/null
wait_until() { # seconds, SQL condition (errors count as false: the server may be restarting)
    local deadline=$((SECONDS + $1))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(q -c "SELECT ($2)" 2>/dev/null)" = t ] && return 0
        sleep 0.2
    done
    return 1
}
BGW="SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_steadytext queue worker'"
wait_until 30 "EXISTS ($BGW)"
check "a background queue worker runs" $?

# The st worker, through the cluster's daemon; a short lease, so rows a crash orphaned return soon.
STEADYTEXT_DAEMON_ENDPOINT=ipc://$DIR/pg_steadytext/daemon.sock \
    STEADYTEXT_GENERATION_MODEL=$MODELS/smollm2-135m-instruct-q4_1.gguf \
    STEADYTEXT_EMBEDDING_MODEL=$MODELS/all-minilm-l6-v2-f32.gguf \
    "$ST" worker --dsn "host=$DIR port=$PORT user=postgres dbname=postgres" --daemon \
    --lease-seconds 6 --poll-interval-ms 500 >"$WORK/worker.log" 2>&1 &
worker=$!
pids+=("$worker")

# A client calling a _cached function in a loop, one call per session, until $WORK/stop exists.
probe() {
    local i=0
    while [ ! -e "$WORK/stop" ]; do
        i=$((i + 1))
        q -c "SELECT steadytext_generate_cached('Crash probe ' || ($i % 7), 6)" >/dev/null 2>&1
    done
}
probe &
pids+=("$!")

enqueue() { # round: 24 generations and 12 embeddings in one transaction; prints nothing
    q -c "BEGIN" \
      -c "SELECT steadytext_generate_batch_async(array_agg('$1: name a thing about ' || i), 8) FROM generate_series(1, 24) i" \
      -c "SELECT steadytext_embed_batch_async(array_agg('$1: document ' || i)) FROM generate_series(1, 12) i" \
      -c "COMMIT" >/dev/null
}
round_done() { # round
    wait_until 600 "NOT EXISTS (SELECT 1 FROM steadytext_queue WHERE prompt LIKE '$1: %' AND status IN ('pending', 'processing'))"
}
verify() { # round, what happened
    local round=$1 what=$2
    round_done "$round"
    check "$what: the round's 36 requests end" $? \
        "$(q -c "SELECT status, count(*) FROM steadytext_queue WHERE prompt LIKE '$round: %' GROUP BY 1" 2>&1)"
    local rows
    rows=$(q -c "SELECT count(*), count(DISTINCT request_id), count(*) FILTER (WHERE status = 'completed')
                 FROM steadytext_queue WHERE prompt LIKE '$round: %'")
    check "$what: each completed once, in one row ($rows)" "$([ "$rows" = "36|36|36" ]; echo $?)" \
        "$(q -c "SELECT status, worker_id, retry_count, error FROM steadytext_queue WHERE prompt LIKE '$round: %' AND status <> 'completed'")"
    local same
    same=$(q -c "SET steadytext.use_daemon = off" -c "SELECT count(*) FILTER (WHERE CASE request_type
                     WHEN 'generate' THEN result = steadytext_generate(prompt, 8, false)
                     ELSE embedding = steadytext_embed(prompt, false) END)
                 FROM steadytext_queue WHERE prompt LIKE '$round: %'")
    check "$what: with the synchronous functions' bytes ($same of 36)" "$([ "$same" = 36 ]; echo $?)"
    # Every row, whoever wrote it (the background worker, the probe's backends).
    local cache
    cache=$(q -c "SET steadytext.use_daemon = off" -c "SELECT count(*) || '|' || count(*) FILTER (WHERE CASE
                     WHEN response IS NOT NULL THEN response = steadytext_generate(prompt,
                          CASE WHEN prompt LIKE 'Crash probe %' THEN 6 ELSE 8 END, false)
                     ELSE embedding = steadytext_embed(prompt, false) END)
                  FROM steadytext_cache")
    check "$what: every cache row holds its prompt's bytes ($cache)" \
        "$([ "${cache%|*}" -gt 0 ] && [ "${cache%|*}" = "${cache#*|}" ]; echo $?)"
    local counts
    counts=$(q -c "SELECT (SELECT coalesce(sum(access_count - 1), 0) FROM steadytext_cache) || '|' ||
                          (SELECT coalesce(sum(hits), 0) FROM steadytext_cache_lookups)")
    check "$what: the access counts agree with the lookups table ($counts)" \
        "$([ "${counts%|*}" = "${counts#*|}" ] && [ "${counts%|*}" -gt 0 ]; echo $?)"
    wait_until 60 "(SELECT status = 'healthy' FROM steadytext_daemon_status())"
    check "$what: the daemon answers" $?
    wait_until 30 "EXISTS ($BGW)"
    check "$what: the background worker is back" $?
    # Requests enqueued now, each worker's share counted.
    enqueue "$round after"
    round_done "$round after"
    local served
    served=$(q -c "SELECT count(*) FILTER (WHERE status = 'completed') || '|' ||
                          count(*) FILTER (WHERE worker_id LIKE 'st:%') || '|' ||
                          count(*) FILTER (WHERE worker_id LIKE 'pg_steadytext:%')
                   FROM steadytext_queue WHERE prompt LIKE '$round after: %'")
    check "$what: requests enqueued afterwards complete ($served: all, by st worker, by the background worker)" \
        "$([[ "$served" =~ ^36\|[1-9][0-9]*\|[1-9][0-9]*$ ]]; echo $?)"
    check "$what: the st worker is the same process" "$(kill -0 "$worker" 2>/dev/null; echo $?)" \
        "$(tail -n 5 "$WORK/worker.log")"
}
running() { # round: waits until some of its requests are done and some run
    wait_until 300 "(SELECT count(*) FILTER (WHERE status = 'completed') >= 4
                        AND count(*) FILTER (WHERE status = 'processing') >= 1
                     FROM steadytext_queue WHERE prompt LIKE '$1: %')"
}

# --- kill -9 of a backend: the background worker, mid-request ----------------------------------
enqueue backend
running backend
check "round 1 runs (some requests done, some in progress)" $?
victim=$(q -c "$BGW")
kill -KILL "$victim"
wait_until 60 "true"
check "the cluster takes connections again after a backend's kill -9" $? "$(tail -n 5 "$DIR/server.log")"
check "PostgreSQL reinitialised (every session ended)" \
    "$(grep -q "all server processes terminated; reinitializing" "$DIR/server.log"; echo $?)"
verify backend "backend killed"

# --- kill -9 of the postmaster, then a restart ----------------------------------------------
enqueue postmaster
running postmaster
check "round 2 runs (some requests done, some in progress)" $?
postmaster=$(head -1 "$DIR/postmaster.pid")
children=$(ps -o pid= --ppid "$postmaster" | tr '\n' ' ')
kill -KILL "$postmaster"
# Its children notice and leave; a new postmaster needs the old shared memory released.
for _ in $(seq 100); do
    alive=$(for c in $children; do kill -0 "$c" 2>/dev/null && echo "$c"; done)
    [ -z "$alive" ] && break
    sleep 0.2
done
check "the old postmaster's processes are gone" "$([ -z "$alive" ]; echo $?)" "left: $alive"
scripts/pg-cluster.sh start "$DIR" "$PORT" >/dev/null
check "the cluster starts again (crash recovery)" $? "$(tail -n 5 "$DIR/server.log")"
verify postmaster "postmaster killed"

touch "$WORK/stop"
kill -TERM "$worker"; wait "$worker"
check "the st worker stops cleanly on SIGTERM" $? "$(tail -n 3 "$WORK/worker.log")"
check "it connected again after each crash" \
    "$([ "$(grep -c "connected again" "$WORK/worker.log")" -ge 2 ]; echo $?)" "$(grep -i "connect" "$WORK/worker.log" | tail -n 5)"
echo "1..$n"
exit "$failed"
