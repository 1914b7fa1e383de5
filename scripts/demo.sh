#!/usr/bin/env bash
# The main job on the test models. Prints the same bytes on every run.
set -euo pipefail
MODELS=${STEADYTEXT_TEST_MODELS:-/var/cache/steadytext/test-models}
GEN="$MODELS/smollm2-135m-instruct-q4_1.gguf"
EMB="$MODELS/all-minilm-l6-v2-f32.gguf"

echo "== st generate (SmolLM2-135M, greedy)"
st generate "Write a haiku about PostgreSQL" --model "$GEN" --max-new-tokens 64 --wait

echo
echo "== st embed (all-MiniLM-L6-v2): first 8 of 1024 dimensions"
st embed "PostgreSQL is a relational database" --model "$EMB" --format json \
    | python3 -c 'import json,sys; v=json.load(sys.stdin)["embedding"]; print(len(v), "dims:", " ".join(f"{x:+.5f}" for x in v[:8]))'
