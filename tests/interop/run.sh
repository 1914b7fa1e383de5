#!/usr/bin/env bash
# Interop: SteadyText's Python client (PyPI `steadytext`, installed without its model
# dependencies into a private virtual environment) against `st daemon`. TAP, via prove.
set -euo pipefail
cd "$(dirname "$0")/../.."
ST=${ST:-${CARGO_TARGET_DIR:-$HOME/.cache/pg_steadytext/target}/${PROFILE:-dist}/st}
MODELS=${STEADYTEXT_TEST_MODELS:-/var/cache/steadytext/test-models}
VENV=${STEADYTEXT_INTEROP_VENV:-/var/cache/steadytext/interop-venv}
PORT=${INTEROP_PORT:-5611}

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import steadytext, zmq" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps steadytext==2025.11.25
    "$VENV/bin/pip" install -q --disable-pip-version-check \
        pyzmq==27.3.0 numpy==2.4.6 huggingface_hub==2.4.0 pydantic==2.14.4 requests==2.34.2
fi
SHIM=$(mktemp -d)
WORK=$(mktemp -d)
mkdir -p "$SHIM/llama_cpp"
cp tests/interop/llama_cpp_shim.py "$SHIM/llama_cpp/__init__.py"

export XDG_CACHE_HOME=$WORK STEADYTEXT_DAEMON_PORT=$PORT
export STEADYTEXT_GENERATION_MODEL=$MODELS/smollm2-135m-instruct-q4_1.gguf
export STEADYTEXT_EMBEDDING_MODEL=$MODELS/all-minilm-l6-v2-f32.gguf
export STEADYTEXT_RERANKING_MODEL=$MODELS/smollm2-135m-instruct-q4_1.gguf
trap '"$ST" daemon stop >/dev/null 2>&1 || true; rm -rf "$SHIM" "$WORK"' EXIT
"$ST" daemon start >/dev/null
PYTHONPATH=$SHIM "$VENV/bin/python" tests/interop/steadytext_client.py "$PORT" "$ST"
