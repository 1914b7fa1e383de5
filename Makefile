# pg_steadytext: the two commands are `make demo` and `make test`; both set up what they need.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

# One build cache outside the clone, reused by every clone on the machine (never required).
# cargo from rustup, wherever the caller's PATH stops.
export PATH := $(HOME)/.cargo/bin:$(PATH)
export CARGO_TARGET_DIR ?= $(HOME)/.cache/pg_steadytext/target
# The test models (scripts/fetch-test-models.sh builds them here).
export STEADYTEXT_TEST_MODELS ?= /var/cache/steadytext/test-models
PREFIX ?= /usr/local
BIN := $(CARGO_TARGET_DIR)/debug

GEN_MODEL := $(STEADYTEXT_TEST_MODELS)/smollm2-135m-instruct-q4_1.gguf
EMB_MODEL := $(STEADYTEXT_TEST_MODELS)/all-minilm-l6-v2-f32.gguf

.PHONY: setup build install test lint demo bench models clean

## Install system packages, pgvector, cargo-pgrx, the test models, and `st` on the PATH.
setup:
	scripts/setup.sh
	$(MAKE) --no-print-directory install

models:
	scripts/fetch-test-models.sh

## Build every binary in the one (dev) profile: llama.cpp is compiled once per build cache.
build:
	cargo build --workspace --all-targets

install: build
	install -m 755 $(BIN)/st $(PREFIX)/bin/st

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

## Every test, on the real test models. One test at a time: each uses every core, and ggml's
## spinning threads collapse when two requests share two cores.
test: setup lint
	cargo test --workspace -- --test-threads=1

## The main job on the test models: generate, embed, and a tiny semantic search.
demo: setup
	scripts/demo.sh

## Benchmarks; results go to bench/results/.
bench: setup
	cargo run --quiet -p steadytext-bench -- --out bench/results

clean:
	cargo clean
