#!/usr/bin/env bash
# Security (TAP): no template can end a backend.
#
# The cluster runs with its address space limited (ulimit -v, as a host with a memory limit
# would), and a steadytext_user renders generated templates (tests/security/templates.py: every
# way of making a value larger, nested, looped, in macros and recursion) through
# _steadytext_render_template and as stored prompts of another role. Each renders or is refused
# with 54000 (or P0001 for one minijinja rejects: a filter on the wrong type); no backend dies,
# the server never restarts.
set -uo pipefail
cd "$(dirname "$0")/../.."
WORK=$(mktemp -d /tmp/pg_steadytext_templates.XXXXXX)
chmod 755 "$WORK"
DATA=$WORK/data
PORT=${TEMPLATES_PORT:-54376}
COUNT=${TEMPLATES_COUNT:-2000}
source tests/tap.sh
cleanup() {
    scripts/pg-cluster.sh stop "$DATA" >/dev/null 2>&1
    [ "$failed" -eq 0 ] && rm -rf "$WORK" || echo "# kept $WORK"
}
trap cleanup EXIT

# 3 GB of address space for every server process (the report's backend had 2.8 GB).
(ulimit -v 3000000 && PG_EXTRA_CONF="steadytext.use_daemon = off" scripts/pg-cluster.sh start "$DATA" "$PORT") >/dev/null
export PGHOST=$DATA PGPORT=$PORT PGDATABASE=postgres
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -U postgres -c "CREATE EXTENSION vector; CREATE EXTENSION pg_steadytext;
                  CREATE ROLE alice LOGIN IN ROLE steadytext_user; CREATE ROLE bob LOGIN IN ROLE steadytext_user;
                  CREATE TABLE templates (id serial, template text); GRANT SELECT ON templates TO alice, bob" >/dev/null
python3 tests/security/templates.py "$COUNT" 20261207 > "$WORK/templates.csv"
q -U postgres -c "\copy templates (template) FROM '$WORK/templates.csv' WITH (FORMAT csv)"

# Each template on its own (a refusal must not end the others), the SQLSTATE counted.
tally="CREATE FUNCTION pg_temp.tally(how text) RETURNS TABLE(state text, n bigint) LANGUAGE plpgsql AS \$\$
DECLARE t record; s text;
BEGIN
    CREATE TEMP TABLE outcome (state text);
    FOR t IN SELECT template FROM public.templates ORDER BY id LOOP
        BEGIN
            IF how = 'render' THEN
                PERFORM public._steadytext_render_template(t.template, '{}'::jsonb, false);
            ELSE
                PERFORM public.steadytext_prompt_render('bobs-template', '{}'::jsonb, NULL, false);
            END IF;
            s := 'rendered';
        EXCEPTION WHEN OTHERS THEN
            s := SQLSTATE;
        END;
        INSERT INTO outcome VALUES (s);
        EXIT WHEN how <> 'render';
    END LOOP;
    RETURN QUERY SELECT o.state, count(*) FROM outcome o GROUP BY 1 ORDER BY 1;
END \$\$;"
start=$SECONDS
out=$(q -U alice -c "$tally" -c "SELECT string_agg(state || ':' || n, ' ') FROM pg_temp.tally('render')" 2>&1)
took=$((SECONDS - start))
check "$COUNT generated templates rendered or refused by one backend in ${took} s ($out)" \
    "$([[ "$out" =~ ^54000:[0-9]+\ (P0001:[0-9]+\ )?rendered:[0-9]+$ ]]; echo $?)" "$out"
refused=$(sed -n 's/.*54000:\([0-9]*\).*/\1/p' <<<"$out")
check "most of them hit a limit ($refused)" "$([ "${refused:-0}" -gt $((COUNT / 4)) ]; echo $?)"

# The report's template, stored by one role and rendered by another.
big="{% set a='x'*100000000 %}{% set b=a~a %}{% set c=b~b %}{% set d=c~c %}{% set e=d~d %}{{ e|length }}"
q -U bob -c "SELECT steadytext_prompt_create('bobs-template', \$t\$$big\$t\$)" >/dev/null
out=$(psql -X -q -At -v VERBOSITY=verbose -U alice -c "SELECT steadytext_prompt_render('bobs-template', '{}', NULL, false)" 2>&1)
check "a stored template that would take 1.6 GB is refused for the role that renders it (54000)" \
    "$([[ "$out" == *"ERROR:  54000:"*"steadytext.max_template_memory"* ]]; echo $?)" "$out"
out=$(psql -X -q -At -v VERBOSITY=verbose -U alice -c "SELECT _steadytext_render_template('Hello {{ who }}', '{\"who\": \"you\"}', true)" 2>&1)
same "an ordinary template still renders" "$out" "Hello you"
# Few engine steps, each copying a megabyte: the fuel would last minutes, the 10 s limit would
# end it; only the statement timeout can stop it at 300 ms, on a fast machine or a busy one.
slow="{% set a = 'x' * 500000 %}{% for i in range(100) %}{% for j in range(100000) %}{% set b = a ~ a %}{% endfor %}{% endfor %}"
out=$(psql -X -q -At -v VERBOSITY=verbose -U alice -c "SET statement_timeout = '300ms';
    SELECT _steadytext_render_template(\$t\$$slow\$t\$, '{}', false)" 2>&1)
check "a statement timeout stops a rendering (57014)" "$([[ "$out" == *"57014"* ]]; echo $?)" "$out"
sleep 0.5
check "and leaves no process behind" "$(! pgrep -f "postgres: alice" >/dev/null; echo $?)" "$(pgrep -af "postgres: alice")"
check "no backend died and the server never restarted" \
    "$(! grep -qE "terminated by signal|server process .* was terminated|all server processes terminated" "$DATA/server.log"; echo $?)" \
    "$(grep -m3 -E "terminated" "$DATA/server.log")"
echo "1..$n"
exit "$failed"
