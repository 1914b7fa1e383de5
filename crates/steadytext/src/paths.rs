//! Where SteadyText keeps things on disk: the cache root and the models directory.

use std::path::PathBuf;
use std::sync::RwLock;

/// The user's home directory (`$HOME`, or `/` when unset).
pub fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// `~/rest` with the home directory put in; other paths as they are.
pub fn expand_home(path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => home_dir().join(rest),
        None => PathBuf::from(path),
    }
}

/// SteadyText's cache root: `$XDG_CACHE_HOME/steadytext` or `~/.cache/steadytext`.
pub fn cache_root() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home_dir().join(".cache"))
        .join("steadytext")
}

static MODELS_DIR_OVERRIDE: RwLock<Option<PathBuf>> = RwLock::new(None);

/// Sets the models directory for this process, ahead of the environment (the extension's
/// `steadytext.models_dir` setting). `None` restores the default.
pub fn set_models_dir(dir: Option<PathBuf>) {
    *MODELS_DIR_OVERRIDE.write().unwrap() = dir;
}

/// Where model files are kept: the process override, `$STEADYTEXT_MODELS_DIR`, else
/// `<cache root>/models`.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = MODELS_DIR_OVERRIDE.read().unwrap().clone() {
        return dir;
    }
    std::env::var_os("STEADYTEXT_MODELS_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_root().join("models"))
}
