//! A resolved model: the file, its sha256 and the context window a request runs with. It is
//! resolved once, where the request is built, and travels with the request, so every route
//! (backend, daemon, queue workers, CLI) loads the same file with the same window.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::defaults;
use crate::error::Result;
use crate::registry::{self, ModelChoice, ModelSource};
use crate::role::Role;
use crate::store::{self, Fetch, PathPolicy};

/// A model file ready to load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRef {
    /// The GGUF file.
    pub path: PathBuf,
    /// Its sha256 (lower-case hex): the model's part of every cache key.
    pub sha256: String,
    /// What it is used for.
    pub role: Role,
    /// The context window requested for it; the engine caps it at the model's training window.
    pub n_ctx: u32,
}

impl ModelRef {
    /// The file name, for the cache table's `model_name` column and messages.
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map_or_else(String::new, |f| f.to_string_lossy().into_owned())
    }
}

/// How a caller's model choice becomes a [`ModelRef`]: who may name paths, and whether a missing
/// registry model may be downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolver {
    /// Which names are allowed.
    pub policy: PathPolicy,
    /// Whether to download a missing registry model.
    pub fetch: Fetch,
}

impl Resolver {
    /// Any path, downloads when the environment allows (the command line).
    pub fn trusted() -> Self {
        Resolver {
            policy: PathPolicy::Any,
            fetch: Fetch::IfAllowed,
        }
    }

    /// Resolves `choice` for `role`. The policy is checked before any file is touched.
    pub fn resolve(&self, choice: &ModelChoice, role: Role) -> Result<ModelRef> {
        let source = registry::resolve(choice, role)?;
        self.resolve_source(&source, role)
    }

    /// Resolves a source that is already known.
    pub fn resolve_source(&self, source: &ModelSource, role: Role) -> Result<ModelRef> {
        store::check_policy(source, self.policy)?;
        let path = store::locate(source, role, self.fetch)?;
        let sha256 = store::sha256_of(&path)?;
        Ok(ModelRef {
            path,
            sha256,
            role,
            n_ctx: window(source, role),
        })
    }
}

/// The window a model runs with: `STEADYTEXT_MAX_CONTEXT_WINDOW`, else the registry's, else the
/// role's default.
fn window(source: &ModelSource, role: Role) -> u32 {
    let from_env = std::env::var("STEADYTEXT_MAX_CONTEXT_WINDOW")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|&v| v > 0);
    from_env.or(source.registry_n_ctx()).unwrap_or(match role {
        Role::Embedding => defaults::EMBEDDING_WINDOW,
        _ => defaults::GENERATION_WINDOW,
    })
}
