#!/usr/bin/env bash
# Operations (TAP): a cluster's daemon ends with the cluster, however it was started.
#
# For each way a daemon starts (the supervisor of a preloaded cluster; on demand by a backend of
# a cluster without preloading, which detaches it; steadytext_daemon_stop() then an on-demand
# start; on a TCP endpoint) the cluster is stopped with pg_ctl stop -m fast, or its postmaster
# killed with kill -9: no st daemon of it is left running, and its port is free.
set -uo pipefail
cd "$(dirname "$0")/../.."
WORK=$(mktemp -d /tmp/pg_steadytext_lifecycle.XXXXXX)
chmod 755 "$WORK"
PORT=${LIFECYCLE_PORT:-54385}
TCP_PORT=${LIFECYCLE_TCP_PORT:-55386}
BIN=/usr/lib/postgresql/15/bin
source tests/tap.sh
cleanup() {
    for d in "$WORK"/c*; do scripts/pg-cluster.sh stop "$d" >/dev/null 2>&1; done
    pkill -KILL -f "st daemon run --endpoint ipc://$WORK/" 2>/dev/null
    [ "$failed" -eq 0 ] && rm -rf "$WORK" || echo "# kept $WORK"
}
trap cleanup EXIT

daemons_of() { pgrep -f "st daemon run --endpoint .*(${1}|:$TCP_PORT)" | tr '\n' ' '; }
gone_within() { # seconds, cluster dir
    local deadline=$((SECONDS + $1))
    while [ $SECONDS -lt $deadline ]; do
        [ -z "$(daemons_of "$2")" ] && return 0
        sleep 0.2
    done
    return 1
}
q() { psql -X -q -At -h "$1" -p "$2" -U postgres -d postgres -c "$3"; }
started() { # dir, port: waits until the cluster's daemon answers
    for _ in $(seq 150); do
        [ "$(q "$1" "$2" "SELECT status FROM steadytext_daemon_status()" 2>/dev/null)" = healthy ] && return 0
        sleep 0.2
    done
    return 1
}

case_no=0
run_case() { # description, preload (on/off), endpoint ('' = private socket), how (stop/kill), restart (0/1)
    case_no=$((case_no + 1))
    local dir=$WORK/c$case_no port=$((PORT + case_no)) conf=""
    [ "$2" = on ] && conf="shared_preload_libraries = 'pg_steadytext'"
    [ -n "$3" ] && conf="$conf
steadytext.daemon_endpoint = '$3'"
    PG_EXTRA_CONF="$conf" scripts/pg-cluster.sh start "$dir" "$port" >/dev/null
    q "$dir" "$port" "CREATE EXTENSION vector; CREATE EXTENSION pg_steadytext" >/dev/null
    q "$dir" "$port" "SELECT steadytext_generate('Say hi', 2) IS NOT NULL" >/dev/null
    started "$dir" "$port"
    if [ "$5" = 1 ]; then
        q "$dir" "$port" "SELECT steadytext_daemon_stop()" >/dev/null
        q "$dir" "$port" "SELECT steadytext_generate('Say hi again', 2) IS NOT NULL" >/dev/null
        started "$dir" "$port"
    fi
    local before; before=$(daemons_of "$dir")
    if [ "$4" = kill ]; then
        kill -KILL "$(head -1 "$dir/postmaster.pid")"
    else
        runuser -u postgres -- "$BIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
    fi
    local t0=$SECONDS
    gone_within 10 "$dir"
    check "$1: the daemon ($before) is gone $((SECONDS - t0)) s after the cluster" \
        "$([ -n "$before" ] && [ -z "$(daemons_of "$dir")" ]; echo $?)" "left: $(daemons_of "$dir")"
    [ "$4" = kill ] && pkill -KILL -f "postgres -D $dir" 2>/dev/null
}

run_case "supervised, pg_ctl stop" on "" stop 0
run_case "supervised, postmaster killed (kill -9)" on "" kill 0
run_case "started on demand (not preloaded), pg_ctl stop" off "" stop 0
run_case "steadytext_daemon_stop() then on demand, pg_ctl stop" off "" stop 1
run_case "supervised on TCP, stopped and restarted, pg_ctl stop" on "tcp://127.0.0.1:$TCP_PORT" stop 1
out=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', $TCP_PORT)); print('free')" 2>&1)
same "and the TCP port is free again" "$out" free
echo "1..$n"
exit "$failed"
