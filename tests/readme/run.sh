#!/usr/bin/env bash
# The README's examples, run as written (TAP) against a cluster set up like `make demo`'s:
# pg_steadytext preloaded (supervised daemon, a queue worker for database readme), the test
# models as the defaults, `st` on the PATH. Examples marked `<!-- example: not run (why) -->`
# are skipped (downloads of large models, make targets, units for other machines).
set -uo pipefail
cd "$(dirname "$0")/../.."
MODELS=${STEADYTEXT_TEST_MODELS:-/var/cache/steadytext/test-models}
WORK=$(mktemp -d /tmp/pg_steadytext_readme.XXXXXX)
chmod 755 "$WORK"
DATA=$WORK/data PORT=${README_PORT:-54390}
cleanup() {
    st daemon stop >/dev/null 2>&1
    scripts/pg-cluster.sh stop "$DATA" >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT
export PG_EXTRA_CONF="shared_preload_libraries = 'pg_steadytext'
steadytext.queue_workers = 1
steadytext.queue_databases = 'readme'
steadytext.models_dir = '$MODELS'"
scripts/pg-cluster.sh start "$DATA" "$PORT" >/dev/null
psql -X -q -h "$DATA" -p "$PORT" -U postgres -d postgres -c "CREATE DATABASE readme"
# The shell examples: st with the test models as its defaults, a home of its own, and psql
# reaching the cluster.
export HOME=$WORK/home XDG_CACHE_HOME=$WORK/home/.cache
mkdir -p "$HOME"
export STEADYTEXT_GENERATION_MODEL=$MODELS/smollm2-135m-instruct-q4_1.gguf
export STEADYTEXT_EMBEDDING_MODEL=$MODELS/all-minilm-l6-v2-f32.gguf
export STEADYTEXT_RERANKING_MODEL=$MODELS/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
export PGHOST=$DATA PGPORT=$PORT PGUSER=postgres PGDATABASE=readme STEADYTEXT_TEST_MODELS=$MODELS
# Every flag of every st command, and every steadytext.* setting (the preloaded cluster has them all).
for cmd in generate embed rerank worker "models list" "models path" "models download" "models default" \
           "models fingerprint" "daemon run" "daemon start" "daemon stop" "daemon status" \
           "daemon restart" "daemon keygen" "cache stats" "cache clear" "cache sync"; do
    st $cmd --help
done | grep -oE -- '--[a-z][a-z-]+' | grep -vxE -- '--help|--version|--verbose' | sort -u >"$WORK/options.txt"
psql -X -At -h "$DATA" -p "$PORT" -U postgres -d readme \
    -c "SELECT name FROM pg_settings WHERE name LIKE 'steadytext.%' ORDER BY 1" >>"$WORK/options.txt"
python3 tests/readme/examples.py README.md "host=$DATA port=$PORT user=postgres dbname=readme" "$WORK" "$WORK/options.txt"
