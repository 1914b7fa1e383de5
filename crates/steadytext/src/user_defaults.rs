//! The user's default models, saved by `st models default` in
//! `$XDG_CONFIG_HOME/steadytext/models.json` (or `~/.config/...`). They apply when no
//! `STEADYTEXT_*` variable names a model, and before the registry's defaults.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::role::Role;

/// Saved defaults, a registry name or a GGUF path per role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Defaults {
    /// Generation model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<String>,
    /// Embedding model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<String>,
    /// Reranking model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reranking: Option<String>,
}

impl Defaults {
    /// The saved default for `role`.
    pub fn get(&self, role: Role) -> Option<&str> {
        match role {
            Role::Generation => self.generation.as_deref(),
            Role::Embedding => self.embedding.as_deref(),
            Role::Reranking => self.reranking.as_deref(),
        }
    }
}

/// `$XDG_CONFIG_HOME/steadytext/models.json`, or `~/.config/steadytext/models.json`.
pub fn path() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::paths::home_dir().join(".config"))
        .join("steadytext")
        .join("models.json")
}

/// The saved defaults (none when the file is absent or unreadable).
pub fn load() -> Defaults {
    std::fs::read(path())
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Saves `defaults` (atomically: a temporary file, then a rename).
pub fn save(defaults: &Defaults) -> std::io::Result<()> {
    crate::private::write_atomic(&path(), &serde_json::to_vec_pretty(defaults)?)
}
