//! `steadytext_version()` and `steadytext_info()`.

use pgrx::prelude::*;
use pgrx::JsonB;
use steadytext::{ModelChoice, Role};

use crate::{model, route};

/// The extension's version (date-based, as the Python extension's).
#[pg_extern(immutable, parallel_safe)]
fn steadytext_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

fn describe(role: Role) -> serde_json::Value {
    match model::builder().model(None, &ModelChoice::default(), role) {
        Ok(m) => serde_json::json!({
            "path": m.path, "sha256": m.sha256, "n_ctx": m.n_ctx, "available": true,
        }),
        Err(e) => serde_json::json!({ "available": false, "error": e.to_string() }),
    }
}

/// What produces this server's outputs: the build (fingerprint, profile), the model files with
/// their sha256, where inference runs, and the limits in force.
#[pg_extern(volatile)]
fn steadytext_info() -> JsonB {
    let limits = model::limits();
    JsonB(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "fingerprint": steadytext::build_info::fingerprint(),
        "profile": steadytext::build_info::profile(),
        "inference": route::location(),
        "models_dir": steadytext::paths::models_dir(),
        "models": {
            "generation": describe(Role::Generation),
            "embedding": describe(Role::Embedding),
            "reranking": describe(Role::Reranking),
        },
        "limits": {
            "max_prompt_length": limits.max_prompt_length,
            "max_tokens_limit": limits.max_tokens,
            "max_batch_size": limits.max_batch_size,
            "max_request_length": limits.max_request_length,
        },
    }))
}
