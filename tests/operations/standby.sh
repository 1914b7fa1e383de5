#!/usr/bin/env bash
# Operations (TAP): a hot standby serves reads.
#
# A primary and a streaming replica made from it (pg_basebackup -R), the replica's server
# started with RUST_BACKTRACE=1 in its environment. On the replica, every way in to a model that
# a steadytext_user may call (generated from the catalog, as tests/security/admission.sh does)
# either answers, with the primary's bytes for the same call, or, when it would write (the
# *_async functions and the queue), is refused with 25006 and a message that says to call it on
# the primary. The _cached functions read the replicated cache and, on a miss, compute without
# writing. No error shows an internal message or a backtrace.
set -uo pipefail
cd "$(dirname "$0")/../.."
WORK=$(mktemp -d /tmp/pg_steadytext_standby.XXXXXX)
chmod 755 "$WORK"
PRIMARY=$WORK/primary STANDBY=$WORK/standby
PORT=${STANDBY_PORT:-54381}
source tests/tap.sh
cleanup() {
    scripts/pg-cluster.sh stop "$STANDBY" >/dev/null 2>&1
    scripts/pg-cluster.sh stop "$PRIMARY" >/dev/null 2>&1
    [ "$failed" -eq 0 ] && rm -rf "$WORK" || echo "# kept $WORK"
}
trap cleanup EXIT

PG_EXTRA_CONF="steadytext.use_daemon = off" scripts/pg-cluster.sh start "$PRIMARY" "$PORT" >/dev/null
on() { local dir=$1; shift; psql -X -q -At -h "$dir" -p "$(cat "$dir/port")" -d postgres "$@"; }
echo "$PORT" > "$PRIMARY/port"
on "$PRIMARY" -U postgres -v ON_ERROR_STOP=1 -c "CREATE EXTENSION vector; CREATE EXTENSION pg_steadytext;
    CREATE ROLE alice LOGIN IN ROLE steadytext_user" >/dev/null
on "$PRIMARY" -U alice -c "SELECT steadytext_generate_cached('Name a colour', 8), steadytext_embed_cached('a cached text')" >/dev/null
on "$PRIMARY" -U alice -c "SELECT steadytext_prompt_create('admission-test', 'Hi {{ who }}')" >/dev/null

install -d -o postgres -g postgres -m 700 "$STANDBY"
runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_basebackup -h "$PRIMARY" -p "$PORT" -U postgres \
    -D "$STANDBY" -R -X stream 2>"$WORK/basebackup.err"
check "pg_basebackup -R makes a replica" $? "$(cat "$WORK/basebackup.err")" || true
[ -f "$STANDBY/standby.signal" ] || { echo "1..$n"; exit 1; }
echo $((PORT + 1)) > "$STANDBY/port"
cat >> "$STANDBY/postgresql.conf" <<CONF
port = $((PORT + 1))
unix_socket_directories = '$STANDBY'
CONF
chown -R postgres: "$STANDBY"
runuser -u postgres -- env RUST_BACKTRACE=1 HOME="$(getent passwd postgres | cut -d: -f6)" XDG_CACHE_HOME="$STANDBY/.cache" \
    /usr/lib/postgresql/15/bin/pg_ctl -D "$STANDBY" -l "$STANDBY/server.log" -w start >/dev/null
same "the replica is in recovery" "$(on "$STANDBY" -U postgres -c "SELECT pg_is_in_recovery()")" t
for _ in $(seq 100); do
    [ "$(on "$STANDBY" -U postgres -c "SELECT count(*) FROM steadytext_cache")" = 2 ] && break; sleep 0.1
done

# The calls: every way in, with valid arguments (admission/calls.sql's "rate" lines).
batch=$(on "$PRIMARY" -U postgres -c "SELECT steadytext_info()->'limits'->>'max_batch_size'")
on "$PRIMARY" -U postgres -v batch="$batch" -f tests/security/admission/calls.sql | awk -F'\t' '$1 == "rate"' > "$WORK/calls.tsv"
answered=0 refused=0 bad=""
while IFS=$'\t' read -r _ fn _ _ stmt; do
    replica=$(on "$STANDBY" -U alice -v VERBOSITY=verbose -c "$stmt" 2>&1 | grep -v '^WARNING\|^LOCATION')
    case "$fn" in
        *_async | _steadytext_enqueue* | _steadytext_structured_async)
            if [[ "$replica" == *"ERROR:  25006:"*"primary"* ]]; then refused=$((refused + 1));
            else bad="$bad $fn: ${replica:0:200};"; fi ;;
        *)
            primary=$(on "$PRIMARY" -U alice -c "$stmt" 2>&1 | grep -v '^WARNING')
            if [ "$replica" = "$primary" ] && [[ "$replica" != *ERROR* ]]; then answered=$((answered + 1));
            else bad="$bad $fn: ${replica:0:200} / ${primary:0:100};"; fi ;;
    esac
    [[ "$replica" == *"backtrace"* || "$replica" == *"internal error"* || "$replica" == *"TransactionId"* ]] &&
        bad="$bad $fn shows an internal error: ${replica:0:200};"
done < "$WORK/calls.tsv"
check "on the replica $answered calls answer with the primary's bytes, $refused that would write are refused with 25006" \
    "$([ -z "$bad" ] && [ "$answered" -gt 20 ] && [ "$refused" -gt 10 ]; echo $?)" "$bad"

# The cache: a hit is served from the replicated row, a miss computes without writing.
hit=$(on "$STANDBY" -U alice -c "SELECT steadytext_generate_cached('Name a colour', 8) = steadytext_generate('Name a colour', 8, false)")
same "a _cached hit on the replica gives the replicated row" "$hit" t
miss=$(on "$STANDBY" -U alice -v VERBOSITY=verbose -c "SELECT steadytext_generate_cached('A new prompt', 8) = steadytext_generate('A new prompt', 8, false),
                                                              steadytext_embed_cached('a new text') = steadytext_embed('a new text', false)" 2>&1)
same "a miss computes the same bytes without writing" "$miss" "t|t"
same "and wrote nothing" \
    "$(on "$STANDBY" -U postgres -c "SELECT count(*) FROM steadytext_cache WHERE prompt IN ('A new prompt', 'a new text')")" 0
out=$(on "$STANDBY" -U alice -v VERBOSITY=verbose -c "SELECT steadytext_prompt_create('on-a-replica', 'Hi')" 2>&1)
check "other writes are refused with 25006 too" "$([[ "$out" == *"ERROR:  25006:"* ]]; echo $?)" "$out"
check "no backend of either server crashed" \
    "$(! grep -qE "terminated by signal|server process .* was terminated" "$PRIMARY/server.log" "$STANDBY/server.log"; echo $?)"
echo "1..$n"
exit "$failed"
