#!/usr/bin/env bash
# Fault tests (TAP): a cluster with pg_steadytext preloaded, whose supervisor runs the st daemon.
# kill -9 and SIGABRT of the daemon during a SQL generation; a daemon stopped (SIGSTOP) for 3 s
# mid-request; a long rerank cancelled mid-document; twenty concurrent connections;
# a backend's memory after inference through the daemon.
set -uo pipefail
cd "$(dirname "$0")/../.."
DIR=$(mktemp -d /tmp/pg_steadytext_faults.XXXXXX)
PORT=${FAULTS_PORT:-54340}
n=0 failed=0
check() { # description, condition (0 = ok), detail
    n=$((n + 1))
    if [ "$2" -eq 0 ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; [ -n "${3:-}" ] && echo "# $3"; failed=1; fi
}
cleanup() {
    scripts/pg-cluster.sh stop "$DIR" >/dev/null 2>&1
    [ $failed -eq 0 ] && rm -rf "$DIR" || echo "# kept $DIR (server.log)"
}
trap cleanup EXIT
export PG_EXTRA_CONF="shared_preload_libraries = 'pg_steadytext'"
scripts/pg-cluster.sh start "$DIR" "$PORT" >/dev/null
export PGHOST=$DIR PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -c "CREATE EXTENSION vector; CREATE EXTENSION pg_steadytext;" >/dev/null
# The supervisor's daemon, not one started on demand by a backend.
q -c "UPDATE steadytext_config SET value = 'false' WHERE key = 'daemon_auto_start'" >/dev/null

# The supervisor runs the daemon on the cluster's private socket.
daemon_pid() { pgrep -f "st daemon run --endpoint ipc://$DIR/pg_steadytext/daemon.sock" | head -n 1; }
wait_for_daemon() { # seconds; prints the pid
    local deadline=$((SECONDS + $1)) pid
    while [ $SECONDS -lt $deadline ]; do
        pid=$(daemon_pid)
        if [ -n "$pid" ] && [ "$(q -c "SELECT status FROM steadytext_daemon_status()")" = healthy ]; then
            echo "$pid"; return 0
        fi
        sleep 0.2
    done
    return 1
}

echo "1..23"
pid=$(wait_for_daemon 20); check "the supervisor starts the daemon with the server" $? "no daemon"
before=$(q -c "SELECT steadytext_generate('Write a haiku about PostgreSQL', 32, false)")
check "a generation through the daemon" $([ -n "$before" ]; echo $?)

for signal in KILL ABRT; do
    # A long generation on one connection, a sleeping query on another.
    start=$(date +%s.%N)
    q -c "SET steadytext.inprocess_fallback = off" \
      -c "SELECT steadytext_generate('Write a long story about a dragon', 2000, false)" >"$DIR/long.out" 2>&1 &
    long=$!
    q -c "SELECT pg_sleep(3), 'other connection fine'" >"$DIR/other.out" 2>&1 &
    other=$!
    sleep 1
    kill -$signal "$pid"
    killed=$(date +%s.%N)
    wait $long; status=$?
    ended=$(date +%s.%N)
    took=$(awk "BEGIN { printf \"%.2f\", $ended - $killed }")
    check "SIG$signal: the interrupted query fails" $([ $status -ne 0 ]; echo $?) "$(cat "$DIR/long.out")"
    check "SIG$signal: within 2 s of the kill (took ${took}s)" $(awk "BEGIN { exit !($took < 2) }"; echo $?)
    # The daemon died mid-generation (not "no daemon answers", which a request that never
    # reached it would get).
    check "SIG$signal: with the mid-request error" $(grep -q "stopped answering during the request" "$DIR/long.out"; echo $?) "$(cat "$DIR/long.out")"
    wait $other
    check "SIG$signal: other connections are unaffected" $(grep -q "other connection fine" "$DIR/other.out"; echo $?) "$(cat "$DIR/other.out")"
    restart_from=$SECONDS
    newpid=$(wait_for_daemon 5); ok=$?
    check "SIG$signal: the supervisor restarts the daemon within 5 s" $([ $ok -eq 0 ] && [ "$newpid" != "$pid" ]; echo $?)
    pid=$newpid
done
# With steadytext.inprocess_fallback on (the default), a generation whose daemon dies finishes
# in the backend (daemon and backend give the same bytes: pgTAP 09_daemon).
q -c "SELECT steadytext_generate('Tell a story about a lighthouse keeper', 301, false)" >"$DIR/fallback.out" 2>"$DIR/fallback.err" &
fallback=$!
sleep 1
kill -KILL "$(daemon_pid)"
wait $fallback; status=$?
check "fallback: the interrupted query completes in the backend" $([ $status -eq 0 ] && grep -q "stopped answering during the request; running the request in this backend" "$DIR/fallback.err"; echo $?) \
    "$(cat "$DIR/fallback.err")"
expected=$(q -c "SET steadytext.use_daemon = off" -c "SELECT steadytext_generate('Tell a story about a lighthouse keeper', 301, false)")
check "fallback: with the same bytes as generating in the backend" $([ -n "$expected" ] && [ "$(cat "$DIR/fallback.out")" = "$expected" ]; echo $?)
pid=$(wait_for_daemon 5)

# A daemon that is alive but does not answer for 3 s (stopped: as starved of CPU on a busy
# machine, or flooded with connections) is waited for, not given up on: its pid file names a
# live process. One missed ping (400 ms) used to end the call.
stopped_pid=$(daemon_pid)
story="SELECT steadytext_generate('Write a long story about a knight', 300, false)"
q -c "SET steadytext.inprocess_fallback = off" -c "$story" >"$DIR/stopped.out" 2>&1 &
stopped_call=$!
sleep 0.5
kill -STOP "$stopped_pid"
sleep 3
running=$(kill -0 $stopped_call 2>/dev/null && echo yes)
kill -CONT "$stopped_pid"
wait $stopped_call; status=$?
expected=$(q -c "SET steadytext.use_daemon = off" -c "$story")
check "a daemon stopped for 3 s mid-request: the call waits (${running:-it had ended}) and gets the backend's bytes" \
    $([ "$running" = yes ] && [ $status -eq 0 ] && [ "$(cat "$DIR/stopped.out")" = "$expected" ]; echo $?) \
    "$(cat "$DIR/stopped.out")"
check "and the daemon is the same process" $([ "$(daemon_pid)" = "$stopped_pid" ]; echo $?)

# A rerank cancelled by statement_timeout stops inside its document's decode: one long document
# is one decode of about 30 s here (3900 tokens), and the daemon used to finish it before
# serving anyone else. The next call is answered at once instead.
q -c "SET statement_timeout = '2s'" -c "SET steadytext.inprocess_fallback = off" \
  -c "SELECT count(*) FROM steadytext_rerank('which word comes next?', ARRAY[repeat('x ', 3900)])" \
  >"$DIR/rerank.out" 2>&1
cancelled=$(date +%s.%N)
next=$(q -c "SELECT steadytext_generate('Say hi', 4, false)")
took=$(awk "BEGIN { printf \"%.2f\", $(date +%s.%N) - $cancelled }")
check "a rerank of one long document is cancelled by statement_timeout" \
    $(grep -q "canceling statement due to statement timeout" "$DIR/rerank.out"; echo $?) "$(cat "$DIR/rerank.out")"
check "and the daemon answers the next call within 4 s of it (took ${took}s)" \
    $([ -n "$next" ] && awk "BEGIN { exit !($took < 4) }"; echo $?)

after=$(q -c "SELECT steadytext_generate('Write a haiku about PostgreSQL', 32, false)")
check "the next call returns the same bytes as before" $([ "$after" = "$before" ]; echo $?) "before: $before / after: $after"
check "the supervisor logged why the daemon went away" \
    $(grep -q "st daemon killed by signal 9" "$DIR/server.log" && grep -q "st daemon killed by signal 6" "$DIR/server.log"; echo $?)
check "no crash recovery in the server log" $(! grep -qE "terminated by signal|reinitializing|crash" "$DIR/server.log"; echo $?) \
    "$(grep -E "terminated by signal|reinitializing|crash" "$DIR/server.log" | head -3)"

# Twenty connections at once, five mixed requests each: the serial results, byte for byte.
requests() {
    cat <<SQL
SELECT steadytext_generate('Say hello number $1', 12, false);
SELECT md5(steadytext_embed('concurrency $1', false)::text);
SELECT steadytext_generate('Name a colour', 12, false);
SELECT md5(steadytext_embed('shared text', false)::text);
SELECT string_agg(p, '') FROM steadytext_generate_stream('Count to $1', 10, false) AS p;
SQL
}
for i in $(seq 1 20); do requests $((i % 4)) | q >"$DIR/serial.$i" 2>&1; done
for i in $(seq 1 20); do requests $((i % 4)) | q >"$DIR/parallel.$i" 2>&1 & done
wait
same=0
for i in $(seq 1 20); do
    cmp -s "$DIR/serial.$i" "$DIR/parallel.$i" || same=1
    # five real answers, not five identical errors
    [ "$(grep -cv '^$' "$DIR/serial.$i")" = 5 ] && ! grep -qE "ERROR|WARNING" "$DIR/serial.$i" || same=1
done
check "20 concurrent connections x 5 requests equal the serial run" $same "$(diff "$DIR/serial.1" "$DIR/parallel.1" | head -5)"

# A backend's memory after generating and embedding through the daemon.
growth=$(q <<'SQL'
CREATE TEMP TABLE rss AS SELECT (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), 'VmRSS:\s+(\d+)'))[1]::int AS kb;
SELECT steadytext_generate('Write a haiku about memory', 32, false) IS NOT NULL, steadytext_embed('memory', false) IS NOT NULL \g /dev/null
SELECT ((regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), 'VmRSS:\s+(\d+)'))[1]::int - kb) / 1024 FROM rss;
SQL
)
check "a backend grows by less than 50 MB after generate and embed (grew ${growth} MB)" $([ "${growth:-999}" -lt 50 ]; echo $?)
exit $failed
