//! The test models. Built by `scripts/fetch-test-models.sh` (run by `make test`) into
//! `$STEADYTEXT_TEST_MODELS`, default `/var/cache/steadytext/test-models`.
#![allow(dead_code)] // each test file uses part of this module

use std::path::PathBuf;
use steadytext::{Engine, Model, Role};

pub fn models_dir() -> PathBuf {
    std::env::var_os("STEADYTEXT_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/steadytext/test-models"))
}

fn fixture(name: &str) -> PathBuf {
    let path = models_dir().join(name);
    assert!(
        path.is_file(),
        "test model {} is missing: run `make models` (scripts/fetch-test-models.sh)",
        path.display()
    );
    path
}

pub fn generation_model_path() -> PathBuf {
    fixture("smollm2-135m-instruct-q4_1.gguf")
}

pub fn embedding_model_path() -> PathBuf {
    fixture("all-minilm-l6-v2-f32.gguf")
}

/// Qwen2.5-Coder-1.5B-Instruct: the smallest model in reach of the test machines that judges
/// relevance (SmolLM2-135M answers "yes" to everything), so reranking quality is tested on it.
pub fn reranking_model_path() -> PathBuf {
    fixture("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
}

pub fn reranker() -> &'static Model {
    Engine::global()
        .load(&reranking_model_path(), Role::Reranking, None)
        .expect("the reranking test model loads")
}

pub fn generator() -> &'static Model {
    Engine::global()
        .load(&generation_model_path(), Role::Generation, None)
        .expect("the generation test model loads")
}

pub fn embedder() -> &'static Model {
    Engine::global()
        .load(&embedding_model_path(), Role::Embedding, None)
        .expect("the embedding test model loads")
}
