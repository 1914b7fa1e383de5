//! What a model is used for. Each role has its own defaults, environment overrides and window.

use serde::{Deserialize, Serialize};

/// A model's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Text generation, structured output.
    Generation,
    /// Embeddings.
    Embedding,
    /// Reranking.
    Reranking,
}

impl Role {
    /// Upper-case name used in environment variables (`STEADYTEXT_<ROLE>_MODEL_REPO`).
    pub fn env_name(self) -> &'static str {
        match self {
            Role::Generation => "GENERATION",
            Role::Embedding => "EMBEDDING",
            Role::Reranking => "RERANKING",
        }
    }

    /// Lower-case name, as in JSON and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Generation => "generation",
            Role::Embedding => "embedding",
            Role::Reranking => "reranking",
        }
    }
}
