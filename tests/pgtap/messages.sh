#!/usr/bin/env bash
# TAP: the WARNINGs and NOTICEs users read (pgTAP cannot capture them). Run by run.sh with
# PGHOST/PGPORT/PGUSER/PGDATABASE set.
set -u
n=0 failed=0
check() { # description, output, expected substring
    n=$((n + 1))
    if [[ "$2" == *"$3"* ]]; then echo "ok $n - $1"; else echo "not ok $n - $1"; echo "# got: $2"; failed=1; fi
}
check_line() { # description, output, expected line (exactly one of the output's lines)
    n=$((n + 1))
    if grep -qxF -- "$3" <<<"$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; echo "# got: $2"; failed=1; fi
}
echo "1..16"
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@" 2>&1; }

out=$(q -c "SET steadytext.generation_model = '/nonexistent/model.gguf'" \
        -c "SELECT coalesce(steadytext_generate('hi', 8, false), 'IS NULL')")
check_line "no model: generate returns NULL" "$out" "IS NULL"
check "the warning says why" "$out" "WARNING:  steadytext_generate: no generation model could be used, returning NULL: model file /nonexistent/model.gguf does not exist"
check "and how to fix it" "$out" "Set steadytext.generation_model (a registry name"

out=$(q -c "SET steadytext.embedding_model = '/nonexistent/model.gguf'" \
        -c "SELECT vector_norm(steadytext_embed('hi', false))")
check "no model: embed warns and returns the zero vector" "$out" "no embedding model could be used, returning the zero vector"

out=$(q -c "INSERT INTO steadytext_cache (cache_key, prompt, response, created_at) VALUES ('m-old', 'p', 'r', now() - interval '2 days')" \
        -c "SELECT steadytext_config_set('cache_max_entries', '0')" \
        -c "SELECT steadytext_cache_scheduled_eviction()" \
        -c "SELECT steadytext_config_set('cache_max_entries', '10000')")
check "scheduled eviction reports what it did" "$out" "NOTICE:  Cache eviction completed: 1 entries evicted"
out=$(q -c "SELECT length(steadytext_generate('Answer with one word: what colour is the sky?', 4096, false)) > 0")
check_line "max_tokens beyond the window: text" "$out" "t"
check "and a NOTICE naming the limit" "$out" "NOTICE:  max_tokens 4096 is more than the model's window leaves after the prompt; the output is limited to"
# Ten concurrent updates of one prompt: ten new versions, no number twice, one active.
q -c "SELECT steadytext_prompt_create('race-prompt', 'v1 {{ x }}')" >/dev/null
for i in $(seq 2 11); do q -c "SELECT steadytext_prompt_update('race-prompt', 'v$i {{ x }}')" >/dev/null & done
wait
out=$(q -c "SELECT count(*) || '/' || count(DISTINCT version_num) || '/' || max(version_num) || '/' || count(*) FILTER (WHERE is_active) FROM steadytext_prompt_versions('race-prompt')")
check_line "ten concurrent updates: versions 1..11, none twice, one active" "$out" "11/11/11/1"
out=$(q -c "SELECT version_num FROM steadytext_prompt_get('race-prompt')")
check_line "the active version is the last one written" "$out" "11"
q -c "SELECT steadytext_prompt_delete('race-prompt')" >/dev/null
# No queue worker on this cluster: the timeout says why and names both fixes.
out=$(q <<'SQL'
SELECT steadytext_generate_async('Say hi', 4) AS id \gset
SELECT steadytext_get_async_result(:'id', 1);
SQL
)
check_line "an unclaimed request's timeout: the Python extension's message" "$out" "ERROR:  Timeout waiting for async result (1 seconds)"
check_line "and a DETAIL saying no worker claimed it" "$out" "DETAIL:  No worker has claimed the request."
check "and a HINT naming preloading" "$out" "HINT:  Queue workers run when pg_steadytext is in shared_preload_libraries"
check "and st worker" "$out" "\`st worker --dsn ...\` on any host."

# The README's daemon sequence, in one session: each call reports what happened.
out=$(q -c "SELECT status FROM steadytext_daemon_status()" -c "SELECT steadytext_daemon_start()" \
        -c "SELECT steadytext_daemon_stop()" -c "SELECT status FROM steadytext_daemon_status()")
check_line "status, start, stop in one session: stop returns true" "$(echo "$out" | grep -v NOTICE | sed -n 3p)" "t"
check_line "and status then says unhealthy" "$(echo "$out" | grep -v NOTICE | sed -n 4p)" "unhealthy"
out=$(q -c "SELECT steadytext_daemon_start()" -c "SELECT status FROM steadytext_daemon_status()" | grep -v NOTICE | tr '\n' ' ')
check_line "start brings it back" "$out" "t healthy "
exit $failed
