#!/usr/bin/env bash
# Security (TAP): nothing of the extension binds to an object a role created.
#
# A role with CREATE on schema public (mallory) puts a shadow in public for every operator and
# function name the extension's SQL uses, for every argument-type combination that pg_catalog has
# no exact match for (shadows/create.sql; the names and types come from a clean install's
# catalog and from the SQL the Rust functions send, shadows/plan.sql). A shadow that runs says so
# in the server log, records who ran it, and makes mallory a superuser if a superuser ran it.
# Then, in a database each: a fresh install; an upgrade from the Python extension's stand-in; an
# upgrade from each earlier release of ours (tests/upgrade/releases). In each, no object of the
# extension depends on an object outside pg_catalog that belongs to no extension
# (shadows/foreign_deps.sql), and a superuser reads every view and calls every function and
# aggregate (shadows/calls.sql) with a user's search_path: no shadow runs, mallory stays
# unprivileged.
set -uo pipefail
cd "$(dirname "$0")/../.."
WORK=$(mktemp -d /tmp/pg_steadytext_shadows.XXXXXX)
chmod 755 "$WORK"
DATA=$WORK/data
PORT=${SHADOWS_PORT:-54375}
source tests/tap.sh
cleanup() {
    unplace
    scripts/pg-cluster.sh stop "$DATA" >/dev/null 2>&1
    [ "$failed" -eq 0 ] && rm -rf "$WORK" || echo "# kept $WORK"
}
trap cleanup EXIT
S=tests/security/shadows
VERSION=$(sed -n "s/^default_version = '\(.*\)'$/\1/p" "$EXT_DIR/pg_steadytext.control")

# --- statically: the scripts as installed, and the SQL sources ------------------------------
scripts=("$EXT_DIR/pg_steadytext--$VERSION.sql" "$EXT_DIR"/pg_steadytext--*--"$VERSION".sql
         crates/pg_steadytext/sql/upgrade/pg_steadytext--*--*.sql)
out=$(python3 "$S/pinned.py" "${scripts[@]}")
check "every statement of the install and upgrade scripts runs with search_path pinned to pg_catalog (${#scripts[@]} scripts, $(tail -n1 <<<"$out"))" $? "$out"
out=$(python3 "$S/literals.py" crates/pg_steadytext/sql/*.sql crates/pg_steadytext/sql/upgrade/*.sql)
check "every literal argument of a call to the extension's own functions is cast ($(tail -n1 <<<"$out"))" $? "$out"

# Inference in the backend: the calls below need no daemon.
PG_EXTRA_CONF="steadytext.use_daemon = off" scripts/pg-cluster.sh start "$DATA" "$PORT" >/dev/null
export PGHOST=$DATA PGPORT=$PORT PGUSER=postgres
# The suite's own queries resolve names in pg_catalog alone, or they would run the shadows
# themselves; the calls under attack run with a user's search_path (PGOPTIONS emptied).
export PGOPTIONS="-c search_path=pg_catalog,pg_temp"
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -d postgres -c "CREATE ROLE mallory LOGIN" >/dev/null

# --- the plan, from a clean install ----------------------------------------------------------
q -d postgres -c "CREATE DATABASE ref" >/dev/null
q -d ref -c "CREATE EXTENSION vector SCHEMA public; CREATE EXTENSION pg_steadytext; CREATE TABLE public.plan_rust_sql (src text)" >/dev/null
# The SQL string literals of the Rust functions (each one whole, as CSV).
python3 - crates/pg_steadytext/src/*.rs > "$WORK/rust_sql.csv" <<'PY'
import csv, re, sys
out = csv.writer(sys.stdout)
for path in sys.argv[1:]:
    text = open(path).read()
    for m in re.finditer(r'"((?:[^"\\]|\\.)*)"', text, re.S):
        s = re.sub(r'\\\n\s*', '', m.group(1)).replace('\\"', '"')
        if re.search(r'\b(SELECT|INSERT|UPDATE|DELETE)\b', s):
            out.writerow([s])
PY
q -d ref -c "\copy public.plan_rust_sql FROM '$WORK/rust_sql.csv' WITH (FORMAT csv)"
q -d ref -f "$S/plan.sql" >/dev/null
for t in plan_ops plan_funcs plan_types plan_own; do
    q -d ref -c "\copy public.$t TO '$WORK/$t.csv' WITH (FORMAT csv)"
done
plan="$(q -d ref -c "SELECT (SELECT count(*) FROM public.plan_ops) || ' operator names, ' || (SELECT count(*) FROM public.plan_funcs)
    || ' pg_catalog function names, ' || (SELECT count(*) FROM public.plan_own) || ' of its own functions, '
    || (SELECT count(*) FROM public.plan_types) || ' types, from ' || (SELECT count(*) FROM public.plan_rust_sql) || ' Rust SQL strings and '
    || (SELECT count(*) FROM public.plan_sources) - (SELECT count(*) FROM public.plan_rust_sql) || ' SQL sources'")"
check "the plan: $plan" "$([ "$(q -d ref -c "SELECT count(*) > 10 FROM public.plan_ops")" = t ]; echo $?)"

# --- a database per way of installing --------------------------------------------------------
# prepare DB: the plan's tables, and mallory's shadows in public (made before the extension).
prepare() {
    # pgvector first, as a database that uses it has it before pg_steadytext (a database made
    # earlier has it already).
    if [ "$(q -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$1'")" = 0 ]; then
        q -d postgres -c "CREATE DATABASE $1" >/dev/null
        q -d "$1" -c "CREATE EXTENSION vector SCHEMA public" >/dev/null
    fi
    q -d "$1" -c "GRANT CREATE ON SCHEMA public TO mallory;
                  CREATE TABLE public.plan_ops (name name); CREATE TABLE public.plan_funcs (name text);
                  CREATE TABLE public.plan_types (t text); CREATE TABLE public.plan_own (name text, args text[], result text);
                  GRANT SELECT ON public.plan_ops, public.plan_funcs, public.plan_types, public.plan_own TO mallory" >/dev/null
    for t in plan_ops plan_funcs plan_types plan_own; do
        q -d "$1" -c "\copy public.$t FROM '$WORK/$t.csv' WITH (FORMAT csv)"
    done
    psql -X -q -At -v ON_ERROR_STOP=1 -U mallory -d "$1" -f "$S/create.sql" 2>&1 | sed -n 's/.*WARNING:  //p'
}
# attack DB HOW: the checks after the install or upgrade.
attack() {
    local db=$1 how=$2 deps members stmts out errors fired
    deps=$(q -d "$db" -f "$S/foreign_deps.sql" 2>&1)
    members=$(q -d "$db" -c "SELECT count(*) FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                             WHERE e.extname = 'pg_steadytext' AND e.extversion = '$VERSION' AND d.deptype = 'e'")
    check "$how: none of its $members objects depends on a role's object" "$([ -z "$deps" ] && [ "$members" -gt 100 ]; echo $?)" "$deps"
    q -d "$db" -f "$S/calls.sql" > "$WORK/$db.calls"
    stmts=$(wc -l < "$WORK/$db.calls")
    # A user's search_path (the default), each statement on its own.
    out=$( { echo "SET statement_timeout = '60s';"; cat "$WORK/$db.calls"; } |
        PGOPTIONS= psql -X -q -At -d "$db" -o /dev/null 2>&1)
    errors=$(grep -c '^psql:.*ERROR' <<<"$out")
    check "$how: a superuser read every view and called every function and aggregate ($stmts statements, $errors refused their arguments)" \
        "$([ "$stmts" -gt 150 ]; echo $?)"
    out=$(q -d "$db" -c "SELECT string_agg(DISTINCT shadow || ' by ' || by_role, '; ') FROM public.shadow_hits")
    fired=$(tail -n +"$log_from" "$DATA/server.log" | grep -m5 'shadow fired')
    check "$how: no shadow ran" "$([ -z "$out" ] && [ -z "$fired" ]; echo $?)" "$out $fired"
    same "$how: mallory is not a superuser" "$(q -d "$db" -c "SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'")" "f"
    # Each database's case on its own: a failure above does not carry over.
    q -d "$db" -c "ALTER ROLE mallory NOSUPERUSER" >/dev/null
}

log_from=$(($(wc -l < "$DATA/server.log") + 1))
made=$(prepare fresh)
check "fresh: $made" "$([[ "$made" == shadows:* ]]; echo $?)"
out=$(q -d fresh -c "CREATE EXTENSION pg_steadytext" 2>&1)
check "fresh: CREATE EXTENSION with the shadows in place" $? "$out"
attack fresh "fresh install"

fixture=tests/upgrade/python-2025.11.25
log_from=$(($(wc -l < "$DATA/server.log") + 1))
made=$(prepare python)
check "python: $made" "$([[ "$made" == shadows:* ]]; echo $?)"
place "$fixture/pg_steadytext--2025.11.25.sql" && place "$fixture/pg_steadytext--2025.11.25.control"
q -d python -c "CREATE EXTENSION pg_steadytext VERSION '2025.11.25' CASCADE" >/dev/null 2>&1
unplace
out=$(q -d python -c "ALTER EXTENSION pg_steadytext UPDATE" 2>&1)
check "python: ALTER EXTENSION pg_steadytext UPDATE from the Python extension's stand-in" $? "$out"
attack python "from the Python extension"

for release in tests/upgrade/releases/pg_steadytext--*.sql; do
    from=$(basename "$release" .sql); from=${from#pg_steadytext--}
    db="from_${from//./_}"
    # The release was installed before the shadows existed (its own install script does not pin
    # the path: that is what this release fixes); the upgrade runs with them in place.
    q -d postgres -c "CREATE DATABASE $db" >/dev/null
    place "$release"
    q -d "$db" -c "CREATE EXTENSION vector SCHEMA public; CREATE EXTENSION pg_steadytext VERSION '$from'" >/dev/null
    unplace
    log_from=$(($(wc -l < "$DATA/server.log") + 1))
    made=$(prepare "$db")
    out=$(q -d "$db" -c "ALTER EXTENSION pg_steadytext UPDATE" 2>&1)
    check "$db: release $from updated with the shadows in place ($made)" "$([ $? -eq 0 ] && [[ "$made" == shadows:* ]]; echo $?)" "$out"
    attack "$db" "from release $from"
done

check "the server never crashed" "$(! grep -qE "terminated by signal|server process .* was terminated" "$DATA/server.log"; echo $?)"
echo "1..$n"
exit "$failed"
