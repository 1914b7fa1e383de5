//! The test models (scripts/fetch-test-models.sh builds them; STEADYTEXT_TEST_MODELS names where).
// Each test crate includes this file and uses what it needs of it.
#![allow(dead_code)]

use std::path::PathBuf;

/// The directory of the test models.
pub fn models_dir() -> PathBuf {
    std::env::var_os("STEADYTEXT_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/steadytext/test-models"))
}

/// SmolLM2-135M-Instruct (generation).
pub fn gen_path() -> PathBuf {
    models_dir().join("smollm2-135m-instruct-q4_1.gguf")
}

/// all-MiniLM-L6-v2 (embeddings).
pub fn emb_path() -> PathBuf {
    models_dir().join("all-minilm-l6-v2-f32.gguf")
}
