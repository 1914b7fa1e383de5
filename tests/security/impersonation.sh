#!/usr/bin/env bash
# Impersonation (TAP): the daemon proves who it is before anything is sent (issue 32, point 2).
#
# A cluster with pg_steadytext preloaded whose supervised daemon listens on TCP
# (steadytext.daemon_endpoint = 'tcp://127.0.0.1:PORT'), one queue worker, and a role alice
# (steadytext_user). The daemon is stopped with steadytext_daemon_stop(), and another OS user
# (nobody) binds its port with an impostor (crates/st/examples/fake_daemon.rs): it records every
# byte that arrives and answers as a daemon would, its stats naming the pid of a process of the
# server's user (a `sleep`). Then generated cases of every inference path, as the superuser and
# as alice, with the in-process fallback on (same bytes as in the backend) and off (08006); the
# impostor must see no token and no prompt, and steadytext_daemon_stop() must kill nothing it
# names. The fake is built by `make build` (cargo build --all-targets).
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/tap.sh
WORK=$(mktemp -d /tmp/pg_steadytext_impersonation.XXXXXX)
chmod 755 "$WORK"
DATA=$WORK/data
PORT=${IMPERSONATION_PORT:-54362}
TCP_PORT=${IMPERSONATION_TCP_PORT:-55364}
CASES=${IMPERSONATION_CASES:-14}
ST=$(command -v st || echo /usr/local/bin/st)
FAKE=${FAKE_DAEMON:-${CARGO_TARGET_DIR:-$HOME/.cache/pg_steadytext/target}/dist/examples/fake_daemon}
ENDPOINT=tcp://127.0.0.1:$TCP_PORT
PRIVATE=$DATA/pg_steadytext
pids=()
victim=""
cleanup() {
    [ -n "$victim" ] && kill -KILL "$victim" 2>/dev/null
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    # A daemon started by steadytext_daemon_start() is not the supervisor's child.
    [ -f "$PRIVATE/daemon.pid" ] && runuser -u postgres -- "$ST" daemon stop --endpoint "$ENDPOINT" \
        --pid-file "$PRIVATE/daemon.pid" >/dev/null 2>&1
    scripts/pg-cluster.sh stop "$DATA" >/dev/null 2>&1
    [ "$failed" -eq 0 ] && rm -rf "$WORK" || echo "# kept $WORK (data/server.log, fake/)"
}
trap cleanup EXIT
if [ ! -x "$FAKE" ]; then
    echo "Bail out! no impostor at $FAKE: run make build"
    exit 1
fi
# Where nobody can run it.
install -m 755 "$FAKE" "$WORK/fake_daemon"

export PG_EXTRA_CONF="shared_preload_libraries = 'pg_steadytext'
steadytext.queue_workers = 1
steadytext.queue_databases = 'postgres'
steadytext.queue_poll_interval = 200
steadytext.daemon_endpoint = '$ENDPOINT'"
# The daemon's own cache off: every comparison of bytes computes on both sides.
STEADYTEXT_DISABLE_CACHE=1 scripts/pg-cluster.sh start "$DATA" "$PORT" >/dev/null
export PGHOST=$DATA PGPORT=$PORT PGDATABASE=postgres

sql() { psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -U "$1" -c "$2" 2>&1 | grep -v '^LOCATION:'; }
su() { sql postgres "$1"; }
wait_until() { # seconds, SQL condition (as postgres)
    local deadline=$((SECONDS + $1))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(su "SELECT ($2)")" = t ] && return 0
        sleep 0.2
    done
    return 1
}
daemon_pid() { pgrep -u postgres -f "st daemon run --endpoint $ENDPOINT" | head -n 1; }

su "CREATE EXTENSION vector; CREATE EXTENSION pg_steadytext;" >/dev/null
su "CREATE ROLE alice LOGIN IN ROLE steadytext_user" >/dev/null
# The supervisor's daemon, not one a backend starts on demand.
su "UPDATE steadytext_config SET value = 'false' WHERE key = 'daemon_auto_start'" >/dev/null
wait_until 60 "(SELECT status = 'healthy' FROM steadytext_daemon_status())"
check "the supervised daemon answers on $ENDPOINT" $? "$(tail -5 "$DATA/server.log")"

# --- the daemon's credentials ------------------------------------------------------------------
modes=$(stat -c '%n %a %U' "$PRIVATE" "$PRIVATE/daemon.key" "$PRIVATE/daemon.token" | sed "s|$PRIVATE|P|")
same "the private directory and the secret files are the server user's alone" "$modes" \
    "P 700 postgres
P/daemon.key 600 postgres
P/daemon.token 600 postgres"
public=$(sed -n 's/^ *public-key = "\(.*\)"$/\1/p' "$PRIVATE/daemon.key.pub")
pinned=$(su "SELECT steadytext_info()->'inference'->>'daemon_public_key'")
check "backends pin the daemon's public key ($pinned)" $([ ${#public} -eq 40 ] && [ "$pinned" = "$public" ]; echo $?) "$public"
real=$(daemon_pid)
cmdline=$(tr '\0' ' ' </proc/"$real"/cmdline 2>/dev/null)
check "the daemon runs with its secret key ($real)" $([[ "$cmdline" == *"--secret-key-file $PRIVATE/daemon.key"* ]]; echo $?) "$cmdline"
check "and records its pid in the private directory" $([ "$(cut -d' ' -f1 "$PRIVATE/daemon.pid")" = "$real" ]; echo $?)
key_md5=$(md5sum <"$PRIVATE/daemon.key")

# --- generated cases: every inference path, as two roles ----------------------------------------
# case i: a fresh prompt through one of these (%s: the prompt); every call bypasses the caches.
paths=(
    "SELECT steadytext_generate('%s', 8, false)"
    "SELECT md5(steadytext_embed('%s', false)::text)"
    "SELECT steadytext_generate_json('%s', '{\"type\": \"boolean\"}', 16, false)"
    "SELECT steadytext_generate_choice('%s', ARRAY['yes', 'no'], 8, false)"
    "SELECT string_agg(document || ':' || score, ',') FROM steadytext_rerank('%s', ARRAY['Bake bread', 'Fuel cars'])"
    "SELECT string_agg(p, '') FROM steadytext_generate_stream('%s', 8, false) p"
    "ASYNC"
)
roles=(postgres alice)
call() { # role, i, prompt, [SET ...;]: the path's answer (an async one: its result when completed)
    local path=${paths[$(($2 % ${#paths[@]}))]}
    if [ "$path" = ASYNC ]; then
        local id out="" deadline=$((SECONDS + 120))
        id=$(sql "$1" "${4:-} SELECT steadytext_generate_async('$3', 8)" | tail -n 1)
        [[ "$id" == *ERROR* ]] && { echo "$id"; return; }
        while [ $SECONDS -lt $deadline ]; do
            out=$(sql "$1" "SELECT status || ':' || coalesce(result, error, '') FROM steadytext_check_async('$id')")
            [[ "$out" == completed:* || "$out" == failed:* ]] && break
            sleep 0.2
        done
        echo "${out#completed:}"
    else
        # shellcheck disable=SC2059
        sql "$1" "${4:-} $(printf "$path" "$3")" | tail -n 1
    fi
}
inprocess() { # i, prompt: the bytes the backend computes itself (a queued generation: the same
              # request as steadytext_generate's)
    local i=$1
    [ "${paths[$((i % ${#paths[@]}))]}" = ASYNC ] && i=0
    call postgres "$i" "$2" "SET steadytext.use_daemon = off;"
}
role_of() { echo "${roles[$(($1 / ${#paths[@]} % 2))]}"; }
prompts=()
for i in $(seq 0 $((CASES - 1))); do
    prompts[$i]="Case $i of $RANDOM$RANDOM: the payroll of $(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
done
bad=""
for i in $(seq 0 $((CASES - 1))); do
    p="${prompts[$i]} (daemon)"
    want=$(inprocess "$i" "$p")
    got=$(call "$(role_of "$i")" "$i" "$p")
    [ -n "$got" ] && [ "$got" = "$want" ] || bad="$bad case $i as $(role_of "$i"): ${got:0:80} / ${want:0:80};"
done
check "the real daemon gives the in-process bytes on every path ($CASES generated cases)" $([ -z "$bad" ]; echo $?) "$bad"

# --- the daemon stops; an impostor binds its port ---------------------------------------------
out=$(su "SELECT steadytext_daemon_stop()" | tail -n 1)
check "steadytext_daemon_stop() stops the daemon" $([ "$out" = t ] && [ -z "$(daemon_pid)" ]; echo $?) "$out"
check "which removed its pid file" $([ ! -e "$PRIVATE/daemon.pid" ]; echo $?)
runuser -u postgres -- sleep 86399 &
pids+=($!)
victim=""
for _ in $(seq 50); do victim=$(pgrep -u postgres -f '^sleep 86399$' | head -n 1); [ -n "$victim" ] && break; sleep 0.1; done
mkdir -p "$WORK/fake" && chown nobody "$WORK/fake"
runuser -u nobody -- "$WORK/fake_daemon" "$TCP_PORT" "$WORK/fake" "$victim" >"$WORK/fake.log" 2>&1 &
fake=$!; pids+=($fake)
for _ in $(seq 50); do grep -q listening "$WORK/fake.log" && break; sleep 0.1; done
check "another OS user (nobody) binds the port; its stats name pid $victim (the server user's sleep)" \
    $(grep -q listening "$WORK/fake.log"; echo $?) "$(cat "$WORK/fake.log")"
# The control: a client that pins nothing believes it.
out=$(STEADYTEXT_DAEMON_ENDPOINT=$ENDPOINT "$ST" generate --daemon --wait "control prompt" 2>&1)
check "(the control: an unpinned client is served the impostor's answer)" \
    $([[ "$out" == *"an impostor's answer"* ]] && grep -qa "control prompt" "$WORK/fake/bytes"; echo $?) "$out"
control=$(wc -l <"$WORK/fake/messages")

bad="" tried=0
for i in $(seq 0 $((CASES - 1))); do
    want=$(inprocess "$i" "${prompts[$i]}")
    got=$(call "$(role_of "$i")" "$i" "${prompts[$i]}")
    tried=$((tried + 1))
    [ -n "$got" ] && [ "$got" = "$want" ] || bad="$bad case $i as $(role_of "$i"): ${got:0:80} / ${want:0:80};"
done
check "with the fallback on, every path gives the in-process bytes ($tried generated cases)" $([ -z "$bad" ]; echo $?) "$bad"
bad="" tried=0
for i in $(seq 0 $((CASES - 1))); do
    [ "${paths[$((i % ${#paths[@]}))]}" = ASYNC ] && continue
    out=$(call postgres "$i" "${prompts[$i]} (no fallback)" "SET steadytext.inprocess_fallback = off;")
    tried=$((tried + 1))
    [[ "$out" == *"ERROR:  08006:"* ]] || bad="$bad case $i: ${out:0:120};"
done
check "with the fallback off, every path fails with 08006 ($tried generated cases)" $([ -z "$bad" ]; echo $?) "$bad"
out=$(su "SELECT status FROM steadytext_daemon_status()")
same "steadytext_daemon_status() does not take the impostor for the daemon" "$out" unhealthy
out=$(runuser -u postgres -- env STEADYTEXT_DAEMON_ENDPOINT="$ENDPOINT" \
    STEADYTEXT_DAEMON_PUBLIC_KEY_FILE="$PRIVATE/daemon.key.pub" STEADYTEXT_DAEMON_TOKEN_FILE="$PRIVATE/daemon.token" \
    "$ST" generate --daemon --wait "${prompts[0]} (st)" 2>&1)
check "st with the daemon's public key refuses the impostor" $([[ "$out" == *"no st daemon answers"* ]]; echo $?) "$out"
out=$(su "SELECT steadytext_daemon_stop()" | tail -n 1)
sleep 0.5
check "steadytext_daemon_stop() with the impostor answering kills nothing it names (pid $victim lives)" \
    $(kill -0 "$victim" 2>/dev/null && kill -0 "$fake" 2>/dev/null; echo $?) "$out"
sleep 1   # the supervisor's pings go on meanwhile
bytes=$(stat -c %s "$WORK/fake/bytes")
token=$(cat "$PRIVATE/daemon.token")
leaks=""
grep -qaF "$token" "$WORK/fake/bytes" && leaks="$leaks the token;"
sent=0
for i in $(seq 0 $((CASES - 1))); do
    for p in "${prompts[$i]}" "${prompts[$i]} (no fallback)"; do
        sent=$((sent + 1))
        grep -qaF "$p" "$WORK/fake/bytes" && leaks="$leaks case $i: $p;"
    done
done
grep -qaF "${prompts[0]} (st)" "$WORK/fake/bytes" && leaks="$leaks st's prompt;"
check "the impostor received no token and none of the $((sent + 1)) prompts ($bytes bytes seen)" \
    $([ -z "$leaks" ] && [ "$bytes" -gt 0 ]; echo $?) "$leaks"
same "nor decoded any request but the control's" "$(wc -l <"$WORK/fake/messages")" "$control"

# --- the daemon comes back ---------------------------------------------------------------------
kill -TERM "$fake"; wait "$fake" 2>/dev/null
out=$(su "SELECT steadytext_daemon_start()" | tail -n 1)
check "steadytext_daemon_start() starts the daemon again" $([ "$out" = t ]; echo $?) "$out"
check "with the same key" $([ "$(md5sum <"$PRIVATE/daemon.key")" = "$key_md5" ]; echo $?)
p="${prompts[0]} (back)"
same "and it gives the in-process bytes again" "$(call alice 0 "$p")" "$(inprocess 0 "$p")"

check "the server never crashed" $(! grep -qE "terminated by signal|server process .* was terminated" "$DATA/server.log"; echo $?)
echo "1..$n"
exit $failed
