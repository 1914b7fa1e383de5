#!/usr/bin/env bash
# Runs the pgTAP suite against a fresh cluster with pgvector and the installed extension.
# Expects `cargo pgrx install` to have installed pg_steadytext into the system PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=$(mktemp -d /tmp/pg_steadytext_pgtap.XXXXXX)
PORT=${PGTAP_PORT:-54329}
cleanup() {
    status=$?
    scripts/pg-cluster.sh stop "$DIR" || true
    if [ $status -ne 0 ]; then
        echo "--- server log ($DIR/server.log) ---" >&2
        tail -n 60 "$DIR/server.log" >&2 || true
    else
        rm -rf "$DIR"
    fi
}
trap cleanup EXIT
scripts/pg-cluster.sh start "$DIR" "$PORT"
psql=(psql -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U postgres)
"${psql[@]}" -d postgres -c "CREATE DATABASE steadytext_test"
"${psql[@]}" -d steadytext_test <<'SQL'
CREATE EXTENSION pgtap;
CREATE EXTENSION dblink;
CREATE EXTENSION vector;
CREATE EXTENSION pg_steadytext;
-- Login roles for the checks that need a session of a role's own (13_prompts).
CREATE ROLE pt_alice LOGIN IN ROLE steadytext_user;
CREATE ROLE pt_bob LOGIN IN ROLE steadytext_user;
SQL
"${psql[@]}" -d steadytext_test -f tests/pgtap/helpers.sql
export PGHOST=$DIR PGPORT=$PORT PGUSER=postgres PGDATABASE=steadytext_test
pg_prove tests/pgtap/[0-9]*.sql
# After the SQL suite: these statements commit.
prove tests/pgtap/messages.sh
