#!/usr/bin/env bash
# Builds the llama.cpp harnesses of docs/batch-invariance.md against the static libraries
# cargo built from the vendored, patched llama.cpp (run `make build` first), and runs them on the
# Qwen2.5-Coder-1.5B fixture: bench/llama/run.sh [ROWS [STEPS]] (default 8 rows, 160 steps).
# TIME_OPS=1 times each operation, THREADS=n changes the thread count (default 2). Not part of
# make test or make bench: it measures llama.cpp's kernels, not what users run, and only means
# something on an otherwise idle machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$HOME/.cache/pg_steadytext/target}
cargo_profile=${PROFILE:-dist}  # as in the Makefile
models=${STEADYTEXT_TEST_MODELS:-/var/cache/steadytext/test-models}
source_tree=$(readlink -e "$root/vendor/llama-cpp-sys-2/llama.cpp") || {
    echo "no vendored llama.cpp: run make vendor" >&2
    exit 1
}

# The newest pinned (x86-64-v3) build of this vendored tree: other patch sets, and builds with
# RUSTFLAGS=-Ctarget-cpu=native, leave their own next to it.
build=
for cache in "$target/$cargo_profile"/build/llama-cpp-sys-2-*/out/build/CMakeCache.txt; do
    dir=$(dirname "$cache")
    if grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$source_tree" "$cache" 2>/dev/null &&
        grep -q '^CMAKE_C_FLAGS:STRING=.*-march=x86-64-v3' "$cache" &&
        [ -f "$dir/src/libllama.a" ] &&
        { [ -z "$build" ] || [ "$dir/src/libllama.a" -nt "$build/src/libllama.a" ]; }; then
        build=$dir
    fi
done
if [ -z "$build" ]; then
    echo "no $cargo_profile build of $source_tree under $target: run make build" >&2
    exit 1
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
libs=("$build/src/libllama.a" "$build/ggml/src/libggml.a" "$build/ggml/src/libggml-cpu.a" "$build/ggml/src/libggml-base.a")
flags=(-O2 -march=x86-64-v3 -std=c++17 -I"$source_tree/include" -I"$source_tree/ggml/include")
g++ "${flags[@]}" "$here/decode-calls.cpp" -o "$out/decode-calls" "${libs[@]}" -lpthread -ldl -lm
g++ "${flags[@]}" "$here/q4k-kernel.cpp" -o "$out/q4k-kernel" "${libs[@]}" -lpthread -ldl -lm
g++ "${flags[@]}" "$here/q6k-kernel.cpp" -o "$out/q6k-kernel" "${libs[@]}" -lpthread -ldl -lm

echo "== Q4_K kernels, one thread ($build)"
"$out/q4k-kernel"
echo "== Q6_K kernels, one thread"
"$out/q6k-kernel"
echo "== decode calls"
"$out/decode-calls" "$models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf" "${1:-8}" "${2:-160}"
