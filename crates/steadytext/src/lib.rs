//! SteadyText in Rust: deterministic text generation, embeddings, structured output and
//! reranking on llama.cpp.
//!
//! Same input, same output: greedy decoding at temperature 0, a seeded sampler above it, a
//! fresh context per request, fixed batch sizes and pinned SIMD features (see
//! [`build_info::fingerprint`]).
//!
//! Every route builds one typed [`Request`] with a [`request::Builder`] and runs it on an
//! [`Executor`]: [`Local`] (this process), [`client::DaemonClient`] (the daemon), or either
//! behind the daemon's cache ([`cached::Cached`]).
//!
//! ```no_run
//! use steadytext::request::{Builder, GenerateSpec};
//! use steadytext::{execute, Local, Request};
//! let request = Builder::default().generate(GenerateSpec {
//!     prompt: "Write a haiku about PostgreSQL".into(),
//!     max_new_tokens: Some(64),
//!     ..GenerateSpec::default()
//! })?;
//! let output = execute::run(&Local::new(2), Request::Generate(request), false, &mut execute::Quiet)?;
//! println!("{}", output.into_text()?);
//! # Ok::<(), steadytext::Error>(())
//! ```

pub mod batch;
pub mod build_info;
pub mod cache;
pub mod cache_key;
pub mod cached;
pub mod chat;
pub mod client;
pub mod daemon_keys;
pub mod daemon_pid;
pub mod defaults;
pub mod embed;
pub mod engine;
pub mod error;
pub mod execute;
pub mod generate;
pub mod invariance;
pub mod isolate;
pub mod jobs;
mod json_schema;
pub mod local;
pub mod model_ref;
pub mod openai;
pub mod paths;
pub mod private;
pub mod protocol;
pub mod registry;
pub mod remote;
pub mod request;
pub mod rerank;
pub mod role;
mod shortest;
pub mod stop;
pub mod store;
pub mod structured;
pub mod summary;
pub mod template;
pub mod text;
pub mod user_defaults;

pub use embed::{EmbedMode, Embedding};
pub use engine::{Engine, Model};
pub use error::{Error, ErrorKind, Result};
pub use execute::{Execution, Executor, Output, Progress, Sink};
pub use generate::GenerateParams;
pub use local::Local;
pub use model_ref::ModelRef;
pub use registry::{ModelChoice, ModelSource};
pub use request::Request;
pub use role::Role;
pub use structured::Constraint;
