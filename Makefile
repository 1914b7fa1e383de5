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
# Passed to the scripts that need it, never to cargo: zmq-sys's build script tracks PROFILE.
unexport PROFILE
BIN := $(CARGO_TARGET_DIR)/$(PROFILE)
PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
# The pgrx test cluster's data directory must be reachable by the postgres user.
PGRX_TEST_PGDATA ?= /tmp/pg_steadytext-pgrx-test

GEN_MODEL := $(STEADYTEXT_TEST_MODELS)/smollm2-135m-instruct-q4_1.gguf
EMB_MODEL := $(STEADYTEXT_TEST_MODELS)/all-minilm-l6-v2-f32.gguf
RERANK_MODEL := $(STEADYTEXT_TEST_MODELS)/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf

.PHONY: all vendor setup build install install-st install-extension uninstall deb dist test test-operations test-upgrade test-package test-core test-interop test-pgrx test-pgtap test-faults test-queue test-security test-determinism test-jsonschema test-readme test-http lint demo bench property models clean

VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -1)

## What `make` alone does (and `pgxn install` before `make install`): build, the same build as
## the tests'.
all: build

## Install system packages, pgvector, cargo-pgrx, the test models, and `st` on the PATH, with
## the test models as its default models.
setup:
	scripts/setup.sh
	$(MAKE) --no-print-directory install-st
	@# `st` works out of the box on the test models (keeps any defaults already saved).
	st models default --if-unset --generation $(GEN_MODEL) --embedding $(EMB_MODEL) \
		--reranking $(RERANK_MODEL) >/dev/null

models:
	scripts/fetch-test-models.sh

## llama-cpp-sys-2 from crates.io with patches/llama-cpp-sys-2 applied, where Cargo.toml's
## [patch.crates-io] expects it. Every target that runs cargo needs it first.
vendor:
	scripts/vendor-llama.sh

## Build every binary and test harness in the one profile: llama.cpp is compiled once per build
## cache. crates/workspace-hack gives every selection of crates the same dependency features, so
## cargo pgrx test and cargo pgrx package reuse what this compiled.
build: vendor
	cargo build --workspace --all-targets --profile $(PROFILE)

## `st` and the extension (what `pgxn install` runs after `make`).
install: install-st install-extension

install-st: all
	install -m 755 $(BIN)/st $(PREFIX)/bin/st

## The extension into the system PostgreSQL 15, with its upgrade scripts.
install-extension: vendor
	PG_CONFIG=$(PG_CONFIG) PROFILE=$(PROFILE) scripts/package-extension.sh "$(CARGO_TARGET_DIR)/stage"
	@# New files, not overwritten ones: a running server keeps the library it has mapped.
	cp -r --remove-destination --no-preserve=ownership "$(CARGO_TARGET_DIR)/stage/." /

## Removes what `make install` installed (`pgxn uninstall` runs it); not the Debian package's.
uninstall:
	@if dpkg -S "$$($(PG_CONFIG) --pkglibdir)/pg_steadytext.so" >/dev/null 2>&1; then \
		echo "pg_steadytext is installed by a Debian package: apt-get remove it" >&2; exit 1; fi
	rm -f "$$($(PG_CONFIG) --pkglibdir)/pg_steadytext.so" \
		"$$($(PG_CONFIG) --sharedir)"/extension/pg_steadytext.control \
		"$$($(PG_CONFIG) --sharedir)"/extension/pg_steadytext--*.sql $(PREFIX)/bin/st

## dist/postgresql-15-steadytext_<version>-1_amd64.deb (and the pgvector package it needs).
deb: all
	PROFILE=$(PROFILE) scripts/build-deb.sh

## dist/pg_steadytext-<version>.zip, the PGXN distribution: the tracked files as they are in
## the working tree (`git stash create` records uncommitted changes without touching anything).
dist:
	mkdir -p dist
	rev=$$(git stash create); git archive --format=zip --prefix=pg_steadytext-$(VERSION)/ \
		-o dist/pg_steadytext-$(VERSION).zip "$${rev:-HEAD}"

lint: vendor
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --profile $(PROFILE) -- -D warnings

## Every test, on the real test models.
## test-package comes last: it installs and purges the package, then installs the build again.
test: setup build lint test-core test-interop test-pgrx test-pgtap test-faults test-queue test-security test-operations test-determinism test-jsonschema test-readme test-http test-upgrade test-package

## Library and CLI tests (the extension's #[pg_test]s run under test-pgrx). One test at a time:
## each uses every core, and ggml's spinning threads collapse when two requests share two cores.
test-core: vendor
	cargo test --workspace --profile $(PROFILE) -- --test-threads=1 --skip tests::pg_

## SteadyText's own Python daemon client against `st daemon`.
test-interop:
	PROFILE=$(PROFILE) prove tests/interop/run.sh

## Rust-level tests inside a temporary PostgreSQL (run as the postgres user).
## The library installed before (which running servers may have mapped) must not change under
## them: the file is held open and its bytes compared after (scripts/pgrx-test-install.sh).
test-pgrx: vendor
	so=$$($(PG_CONFIG) --pkglibdir)/pg_steadytext.so; held=; status=0; \
	if [ -f "$$so" ]; then exec 3<"$$so"; held=$$(sha256sum < /proc/$$$$/fd/3); fi; \
	(cd crates/pg_steadytext && CARGO_PGRX=$(CURDIR)/scripts/pgrx-test-install.sh cargo pgrx test pg15 \
		--profile $(PROFILE) --runas postgres --pgdata $(PGRX_TEST_PGDATA)) || status=$$?; \
	if [ -n "$$held" ] && [ "$$(sha256sum < /proc/$$$$/fd/3)" != "$$held" ]; then \
		echo "cargo pgrx test rewrote the installed pg_steadytext.so in place" >&2; exit 1; fi; \
	exit $$status

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

## Operations: OpenAI's Python client against `st daemon --http`, Prometheus scraping /metrics
## (and the Grafana dashboard's queries), remote models in SQL, pg_cron eviction, SQL counters.
test-http: install-st install-extension
	PROFILE=$(PROFILE) prove tests/http/run.sh

## Every attack on the privilege model, as unprivileged roles and as another OS user; st worker
## over TLS; an impostor on the daemon's port (its fake is an example `build` compiles; the
## extension runs the installed st); generated attacks: shadow objects, templates, every
## user-callable function's inputs; another OS user's 2000 + 2000 idle connections against the
## daemon.
test-security: install-st install-extension
	prove tests/security/run.sh tests/security/impersonation.sh tests/security/shadows.sh \
		tests/security/templates.sh tests/security/admission.sh tests/security/connections.sh

## Operations: pg_dump and pg_restore keep every row users made; a streaming replica serves
## reads (and refuses writes with 25006); a cluster's daemon ends with the cluster; kill -9 of a
## backend or of the postmaster loses no queued request, cache row or count.
test-operations: install-extension
	prove tests/operations/dump.sh tests/operations/standby.sh tests/operations/lifecycle.sh \
		tests/operations/crash.sh

## From the Python extension (2025.11.25) and from each earlier release of ours, keeping data;
## an upgraded schema equals a fresh install's.
test-upgrade: install-extension
	prove tests/upgrade/run.sh

## The Debian package (install, use, purge) and the PGXN distribution (pgxn install from the
## zip, use, pgxn uninstall); then `make install` again, which both replaced.
test-package: deb dist
	status=0; prove tests/package/run.sh tests/pgxn/run.sh || status=$$?; \
		$(MAKE) --no-print-directory install; exit $$status

## The pgTAP suite against a fresh cluster with the extension installed.
test-pgtap: install-extension
	tests/pgtap/run.sh

## The structured-output budget guarantee as a property on 2000 generated regexes and 1000
## generated JSON schemas (make test runs fixed samples of 300 and 150); counts and running time
## in bench/results/property.txt.
property: vendor
	mkdir -p bench/results
	start=$$(date +%s); \
	STEADYTEXT_PROPERTY_REGEXES=2000 STEADYTEXT_PROPERTY_SCHEMAS=1000 cargo test -p steadytext \
		--profile $(PROFILE) --test library -- --test-threads=1 --nocapture \
		generated_regexes_complete_within_their_budgets \
		generated_schemas_complete_within_their_budgets | tee /tmp/steadytext-property.log; \
	{ echo "make property, $$(date -u +%Y-%m-%d), $$(git rev-parse --short HEAD)"; \
	  grep -oE '[0-9]+ generated .*refused' /tmp/steadytext-property.log; \
	  echo "$$(( $$(date +%s) - start )) s"; } > bench/results/property.txt
	cat bench/results/property.txt

## The main job on the test models: generate, embed, and a tiny semantic search.
demo: setup install-extension
	scripts/demo.sh

## Benchmarks; results go to bench/results/.
bench: setup build install-extension
	$(BIN)/steadytext-bench --out bench/results --st $(BIN)/st

clean:
	cargo clean
