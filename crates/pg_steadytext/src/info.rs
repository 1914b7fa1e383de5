//! `steadytext_version()` and `steadytext_info()`.

use pgrx::prelude::*;
use pgrx::JsonB;
use steadytext::store;

use crate::inference::{self, ModelArgs, ModelFile};

/// The extension's version (date-based, as the Python extension's).
#[pg_extern(immutable, parallel_safe)]
fn steadytext_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

fn describe(model: steadytext::Result<ModelFile>) -> serde_json::Value {
    match model {
        Ok(m) => {
            serde_json::json!({ "path": m.path, "sha256": m.sha256().ok(), "available": true })
        }
        Err(e) => serde_json::json!({ "available": false, "error": e.to_string() }),
    }
}

/// What produces this server's outputs: the build fingerprint, the model files with their
/// sha256, and where inference runs.
#[pg_extern(volatile)]
fn steadytext_info() -> JsonB {
    let generation = describe(inference::generation_model(&ModelArgs::default()));
    let embedding = describe(inference::embedding_model(None));
    JsonB(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "fingerprint": steadytext::build_info::fingerprint(),
        "inference": inference::location(),
        "models_dir": store::models_dir(),
        "models": { "generation": generation, "embedding": embedding },
    }))
}
