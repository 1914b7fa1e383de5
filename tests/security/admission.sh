#!/usr/bin/env bash
# Security (TAP): one admission for every way in.
#
# Every function a steadytext_user may execute, from the catalog, attacked through each of its
# inputs (tests/security/admission/calls.sql says how): a 20 MB text, array element or jsonb
# value and an array over steadytext.max_batch_size are refused before anything is computed or
# stored; and every way in to a model refuses a model path the role may not name (42501), a
# prompt the deny pattern matches (22023) and a call over the role's rate limit (53400). The
# audit file that records the refusals stays within its bound.
set -uo pipefail
cd "$(dirname "$0")/../.."
WORK=$(mktemp -d /tmp/pg_steadytext_admission.XXXXXX)
chmod 755 "$WORK"
DATA=$WORK/data
PORT=${ADMISSION_PORT:-54377}
source tests/tap.sh
cleanup() {
    scripts/pg-cluster.sh stop "$DATA" >/dev/null 2>&1
    [ "$failed" -eq 0 ] && rm -rf "$WORK" || echo "# kept $WORK"
}
trap cleanup EXIT

# Inference in the backend (a refused call reaches no daemon either way); the deny pattern set.
PG_EXTRA_CONF="steadytext.use_daemon = off
steadytext.prompt_deny_pattern = '(?i)ignore previous'" scripts/pg-cluster.sh start "$DATA" "$PORT" >/dev/null
export PGHOST=$DATA PGPORT=$PORT PGDATABASE=postgres
q() { psql -X -q -At -v ON_ERROR_STOP=1 -U postgres "$@"; }
q -c "CREATE EXTENSION vector; CREATE EXTENSION pg_steadytext;
      CREATE ROLE alice LOGIN IN ROLE steadytext_user; CREATE ROLE carol LOGIN IN ROLE steadytext_user;
      INSERT INTO steadytext_rate_limits (user_id, requests_per_minute, requests_per_hour, requests_per_day)
      VALUES ('carol', 0, NULL, NULL)" >/dev/null
# The prompt steadytext_generate_from_prompt renders (a prompt of another role's: all may read).
psql -X -q -At -U alice -c "SELECT steadytext_prompt_create('admission-test', 'Hi {{ who }}')" >/dev/null
batch=$(q -c "SELECT steadytext_info()->'limits'->>'max_batch_size'")
q -v batch="$batch" -f tests/security/admission/calls.sql | tail -n +2 > "$WORK/calls.tsv"
trace() { q -c "SELECT (SELECT count(*) FROM steadytext_queue) || '/' || (SELECT count(*) FROM steadytext_cache)
                      || '/' || (SELECT count(*) FROM steadytext_prompts) || '/' || (SELECT count(*) FROM steadytext_prompt_versions)"; }

# Each call in its own session, as alice (carol for the rate limit): its SQLSTATE, or "empty"
# for an answer with nothing in it, or "answered".
before=$(trace)
while IFS=$'\t' read -r attack fn param expected stmt; do
    role=alice; [ "$attack" = rate ] && role=carol
    t0=$(date +%s%N)
    out=$(psql -X -q -At -U "$role" -v VERBOSITY=verbose -c "SET statement_timeout = '20s'" -c "$stmt" 2>&1 |
        grep -v '^LOCATION:\|^CONTEXT:\|^WARNING:\|^NOTICE:\|^HINT:\|^DETAIL:')
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    code=$(sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p' <<<"$out" | head -1)
    if [ -z "$code" ]; then
        case "$(tr -d '[:space:]' <<<"$out")" in ""|f|"{}"|"[]") code=empty ;; *) code=answered ;; esac
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$attack" "$fn" "$param" "$expected" "$code" "$ms" "${out:0:160}"
done < "$WORK/calls.tsv" > "$WORK/outcomes.tsv"
after=$(trace)

for attack in length count model deny rate; do
    total=$(awk -F'\t' -v a="$attack" '$1 == a' "$WORK/outcomes.tsv" | wc -l)
    # Refused: an error that is not internal nor a timeout, or an empty answer, in under 5 s.
    bad=$(awk -F'\t' -v a="$attack" '$1 == a && !(($4 == "refused" && $5 != "answered" && $5 != "XX000" && $5 != "57014" && $6 < 5000) || $4 == $5)' "$WORK/outcomes.tsv") ||
        bad="awk failed"
    functions=$(awk -F'\t' -v a="$attack" '$1 == a {print $2}' "$WORK/outcomes.tsv" | sort -u | wc -l)
    check "$attack: $total calls of $functions functions, each refused as it must be" \
        "$([ -z "$bad" ] && [ "$total" -gt 0 ]; echo $?)" "$(cut -f1-7 <<<"$bad" | head -20)"
done
same "the refused calls wrote no queue, cache or prompt row" "$after" "$before"

# The refusals above went to the audit file; thirty thousand more keep it within its bound.
psql -X -q -At -U carol -c "DO \$\$
DECLARE i int;
BEGIN
    FOR i IN 1..30000 LOOP
        BEGIN
            PERFORM public.steadytext_embed('x' || i);
        EXCEPTION WHEN sqlstate '53400' THEN NULL;
        END;
    END LOOP;
END \$\$" >/dev/null 2>&1
bytes=$(cat "$DATA"/pg_steadytext/audit.jsonl* 2>/dev/null | wc -c)
lines=$(cat "$DATA"/pg_steadytext/audit.jsonl* 2>/dev/null | wc -l)
check "30 000 refusals later the audit files hold $bytes bytes ($lines events): within their bound of 2 x 4 MB" \
    "$([ "$bytes" -gt 0 ] && [ "$bytes" -le $((8 * 1024 * 1024 + 65536)) ]; echo $?)"

check "the server never crashed" "$(! grep -qE "terminated by signal|server process .* was terminated" "$DATA/server.log"; echo $?)"
echo "1..$n"
exit "$failed"
