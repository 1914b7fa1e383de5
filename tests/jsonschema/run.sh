#!/usr/bin/env bash
# The JSON Schema Test Suite's draft4 schema groups through steadytext_generate_json (TAP):
# at least 90 % of the satisfiable schemas give output that validates, none gives output that
# does not, and every refusal names the keyword it cannot honour.
set -euo pipefail
cd "$(dirname "$0")/../.."
SUITE=${STEADYTEXT_JSON_SCHEMA_SUITE:-/var/cache/steadytext/json-schema-test-suite}
VENV=${STEADYTEXT_JSONSCHEMA_VENV:-/var/cache/steadytext/jsonschema-venv}
DIR=$(mktemp -d /tmp/pg_steadytext_jsonschema.XXXXXX)
PORT=${JSONSCHEMA_PORT:-54380}
scripts/fetch-json-schema-suite.sh
cleanup() { scripts/pg-cluster.sh stop "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
scripts/pg-cluster.sh start "$DIR" "$PORT" >/dev/null
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U postgres -d postgres "$@"; }
q -c "CREATE EXTENSION vector; CREATE EXTENSION pg_steadytext;"
python3 tests/jsonschema/suite.py load "$SUITE" | q >/dev/null
q <<'SQL'
CREATE TABLE results (id int, output text, error text);
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM suite ORDER BY id LOOP
        BEGIN
            INSERT INTO results VALUES (r.id, steadytext_generate_json(
                'Give an example JSON value.', r.schema, 96, false), NULL);
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO results VALUES (r.id, NULL, SQLSTATE || ': ' || SQLERRM);
        END;
    END LOOP;
END $$;
SQL
q -c "SELECT row_to_json(r) FROM results r ORDER BY id" >"$DIR/results.jsonl"
"$VENV/bin/python" tests/jsonschema/suite.py check "$SUITE" "$DIR/results.jsonl"
