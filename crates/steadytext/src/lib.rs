//! SteadyText in Rust: deterministic text generation and embeddings on llama.cpp.
//!
//! Same input, same output: greedy decoding at temperature 0, a seeded sampler above it, a
//! fresh context per request, fixed batch sizes and pinned SIMD features (see
//! [`build_info::fingerprint`]).
//!
//! ```no_run
//! use steadytext::{Engine, GenerateParams, ModelChoice, Role, store::Fetch};
//! let engine = Engine::global();
//! let model = engine.model(&ModelChoice::default(), Role::Generation, Fetch::IfAllowed)?;
//! let text = steadytext::generate(&model, "Write a haiku about PostgreSQL", &GenerateParams::default())?;
//! # Ok::<(), steadytext::Error>(())
//! ```

pub mod build_info;
pub mod cache;
pub mod cache_key;
pub mod chat;
pub mod client;
pub mod defaults;
pub mod embed;
pub mod engine;
pub mod error;
pub mod generate;
pub mod grammar;
pub mod jobs;
pub mod params;
pub mod protocol;
pub mod registry;
pub mod rerank;
pub mod store;
pub mod text;

pub use embed::{cosine, embed, embed_average, embed_batch, Embedding};
pub use engine::{Engine, Model};
pub use error::{Error, Result};
pub use generate::{
    check_constraint, generate, generate_constrained, stream, stream_constrained, TokenStream,
};
pub use grammar::Constraint;
pub use params::{validate_seed, EmbedMode, GenerateParams, DEFAULT_SEED, EMBEDDING_DIMENSION};
pub use registry::{ModelChoice, ModelSource, Role};
