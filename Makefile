# pg_steadytext: the two commands are `make demo` and `make test`; both set up what they need.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

# cargo from rustup, wherever the caller's PATH stops.
export PATH := $(HOME)/.cargo/bin:$(PATH)
# One build cache outside the clone, reused by every clone on the machine (never required).
export CARGO_TARGET_DIR ?= $(HOME)/.cache/pg_steadytext/target
# The test models (scripts/fetch-test-models.sh builds them here).
export STEADYTEXT_TEST_MODELS ?= /var/cache/steadytext/test-models
PREFIX ?= /usr/local
# What users install, and what every test and benchmark runs: the optimised `dist` profile
# (Cargo.toml). One profile for everything, so llama.cpp is compiled once per build cache.
PROFILE ?= dist
BIN := $(CARGO_TARGET_DIR)/$(PROFILE)
PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
# The pgrx test cluster's data directory must be reachable by the postgres user.
PGRX_TEST_PGDATA ?= /tmp/pg_steadytext-pgrx-test

GEN_MODEL := $(STEADYTEXT_TEST_MODELS)/smollm2-135m-instruct-q4_1.gguf
EMB_MODEL := $(STEADYTEXT_TEST_MODELS)/all-minilm-l6-v2-f32.gguf
RERANK_MODEL := $(STEADYTEXT_TEST_MODELS)/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf

.PHONY: setup build install install-extension test test-core test-interop test-pgrx test-pgtap test-faults test-queue test-security test-determinism test-jsonschema test-readme lint demo bench models clean

## Install system packages, pgvector, cargo-pgrx, the test models, and `st` on the PATH, with
## the test models as its default models.
setup:
	scripts/setup.sh
	$(MAKE) --no-print-directory install
	@# `st` works out of the box on the test models (keeps any defaults already saved).
	st models default --if-unset --generation $(GEN_MODEL) --embedding $(EMB_MODEL) \
		--reranking $(RERANK_MODEL) >/dev/null

models:
	scripts/fetch-test-models.sh

## Build every binary in the one profile: llama.cpp is compiled once per build cache.
## Every cargo command here covers the whole workspace (or pg_steadytext, whose dependency tree
## includes everything llama.cpp's build depends on): a narrower selection would unify features
## differently and rebuild llama.cpp.
build:
	cargo build --workspace --all-targets --profile $(PROFILE)

install: build
	install -m 755 $(BIN)/st $(PREFIX)/bin/st

## The extension into the system PostgreSQL 15.
install-extension:
	cd crates/pg_steadytext && cargo pgrx install --profile $(PROFILE) --pg-config $(PG_CONFIG)

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --profile $(PROFILE) -- -D warnings

## Every test, on the real test models.
test: setup lint test-core test-interop test-pgrx test-pgtap test-faults test-queue test-security test-determinism test-jsonschema test-readme

## Library and CLI tests (the extension's #[pg_test]s run under test-pgrx). One test at a time:
## each uses every core, and ggml's spinning threads collapse when two requests share two cores.
test-core:
	cargo test --workspace --profile $(PROFILE) -- --test-threads=1 --skip tests::pg_

## SteadyText's own Python daemon client against `st daemon`.
test-interop:
	PROFILE=$(PROFILE) prove tests/interop/run.sh

## Rust-level tests inside a temporary PostgreSQL (run as the postgres user).
test-pgrx:
	cd crates/pg_steadytext && cargo pgrx test pg15 --profile $(PROFILE) --runas postgres --pgdata $(PGRX_TEST_PGDATA)

## kill -9 / SIGABRT of the supervised daemon, 20 concurrent connections, backend memory.
test-faults: install-extension
	prove tests/faults/run.sh

## Background queue workers and st worker: 200 mixed requests, priority, cancel, kill -9.
test-queue: install-extension
	prove tests/queue/run.sh

## The same bytes on every route: library, st, daemon, SQL (daemon and backend), both queue
## workers; stream or not, batch or not, 1 or 2 threads, after a restart; a registry model's window.
test-determinism: install-extension
	PROFILE=$(PROFILE) prove tests/determinism/run.sh

## The JSON Schema Test Suite (draft 4, pinned npm package) through steadytext_generate_json.
test-jsonschema: install-extension
	prove tests/jsonschema/run.sh

## Every SQL and shell example of the README, as written (marked ones skipped).
test-readme: install-extension
	prove tests/readme/run.sh

## Every attack on the privilege model, as unprivileged roles and as another OS user; st worker
## over TLS.
test-security: install-extension
	prove tests/security/run.sh

## The pgTAP suite against a fresh cluster with the extension installed.
test-pgtap: install-extension
	tests/pgtap/run.sh

## The main job on the test models: generate, embed, and a tiny semantic search.
demo: setup install-extension
	scripts/demo.sh

## Benchmarks; results go to bench/results/.
bench: setup install-extension
	$(BIN)/steadytext-bench --out bench/results --st $(BIN)/st

clean:
	cargo clean
