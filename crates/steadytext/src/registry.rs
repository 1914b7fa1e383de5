//! SteadyText's model registry and how a request's model choice resolves to a source.
//!
//! Precedence (as SteadyText): an explicit repo + filename, then a model name (a registry name
//! or, new here, a path to a GGUF file), then a size, then the environment's defaults.

use std::path::PathBuf;

/// What a model is used for; each role has its own defaults and environment overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
}

/// One registry entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSpec {
    /// SteadyText's registry name.
    pub name: &'static str,
    /// What it is for.
    pub role: Role,
    /// Hugging Face repository.
    pub repo: &'static str,
    /// GGUF file in that repository.
    pub filename: &'static str,
    /// Context window SteadyText uses for it.
    pub n_ctx: u32,
}

/// The registry, SteadyText's names and files.
pub const REGISTRY: &[ModelSpec] = &[
    ModelSpec {
        name: "qwen3-4b",
        role: Role::Generation,
        repo: "unsloth/Qwen3-4B-Instruct-2507-GGUF",
        filename: "Qwen3-4B-Instruct-2507-UD-Q6_K_XL.gguf",
        n_ctx: 32768,
    },
    ModelSpec {
        name: "qwen3-30b",
        role: Role::Generation,
        repo: "unsloth/Qwen3-30B-A3B-Instruct-2507-GGUF",
        filename: "Qwen3-30B-A3B-Instruct-2507-UD-Q4_K_XL.gguf",
        n_ctx: 32768,
    },
    ModelSpec {
        name: "gemma-mini-270m",
        role: Role::Generation,
        repo: "ggml-org/gemma-3-270m-it-qat-GGUF",
        filename: "gemma-3-270m-it-qat-Q4_0.gguf",
        n_ctx: 2048,
    },
    ModelSpec {
        name: "jina-v4-retrieval",
        role: Role::Embedding,
        repo: "jinaai/jina-embeddings-v4-text-retrieval-GGUF",
        filename: "jina-embeddings-v4-text-retrieval-Q5_K_M.gguf",
        n_ctx: 8192,
    },
    ModelSpec {
        name: "bge-embedding-mini",
        role: Role::Embedding,
        repo: "mradermacher/bge-large-en-v1.5-GGUF",
        filename: "bge-large-en-v1.5.Q2_K.gguf",
        n_ctx: 512,
    },
    ModelSpec {
        name: "qwen3-reranker-4b",
        role: Role::Reranking,
        repo: "QuantFactory/Qwen3-Reranker-4B-GGUF",
        filename: "Qwen3-Reranker-4B.Q8_0.gguf",
        n_ctx: 8192,
    },
    ModelSpec {
        name: "bge-reranker-mini",
        role: Role::Reranking,
        repo: "xinming0111/bge-reranker-base-Q8_0-GGUF",
        filename: "bge-reranker-base-q8_0.gguf",
        n_ctx: 512,
    },
];

/// Context window for models outside the registry.
pub const DEFAULT_N_CTX: u32 = 4096;

/// Looks a registry name up.
pub fn spec(name: &str) -> Option<&'static ModelSpec> {
    REGISTRY.iter().find(|s| s.name == name)
}

/// SteadyText's size shortcuts for generation.
pub fn size_to_model(size: &str) -> Option<&'static ModelSpec> {
    match size {
        "mini" => spec("gemma-mini-270m"),
        "small" => spec("qwen3-4b"),
        "large" => spec("qwen3-30b"),
        _ => None,
    }
}

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A GGUF file on disk.
    Path(PathBuf),
    /// A file of a Hugging Face repository, cached under the models directory.
    Hub {
        /// Repository.
        repo: String,
        /// File name.
        filename: String,
        /// Context window to use.
        n_ctx: Option<u32>,
    },
}

impl ModelSource {
    fn from_spec(spec: &ModelSpec) -> Self {
        ModelSource::Hub {
            repo: spec.repo.to_string(),
            filename: spec.filename.to_string(),
            n_ctx: Some(spec.n_ctx),
        }
    }

    /// Context window SteadyText's registry gives this source, if any.
    pub fn registry_n_ctx(&self) -> Option<u32> {
        match self {
            ModelSource::Hub { n_ctx, .. } => *n_ctx,
            ModelSource::Path(_) => None,
        }
    }
}

/// A caller's model choice; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelChoice {
    /// A registry name or a path to a GGUF file.
    pub model: Option<String>,
    /// Hugging Face repository (needs `filename`).
    pub repo: Option<String>,
    /// File in `repo`.
    pub filename: Option<String>,
    /// `mini`, `small` or `large` (generation only).
    pub size: Option<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn looks_like_path(model: &str) -> bool {
    model.ends_with(".gguf") || model.contains('/') || model.starts_with('~')
}

fn expand_home(path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => crate::store::home_dir().join(rest),
        None => PathBuf::from(path),
    }
}

/// Whether `STEADYTEXT_USE_MINI_MODELS` asks for the mini set (case-insensitive `true`).
pub fn use_mini_models() -> bool {
    env("STEADYTEXT_USE_MINI_MODELS").is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The role's default source: `STEADYTEXT_<ROLE>_MODEL`, else the `_REPO`/`_FILENAME`
/// overrides, else the user's saved default (`st models default`), else the registry's.
pub fn default_source(role: Role) -> ModelSource {
    let r = role.env_name();
    if let Some(model) = env(&format!("STEADYTEXT_{r}_MODEL")) {
        if let Some(source) = named_source(&model, role) {
            return source;
        }
    }
    let base = default_spec(role);
    let repo = env(&format!("STEADYTEXT_{r}_MODEL_REPO"));
    let filename = env(&format!("STEADYTEXT_{r}_MODEL_FILENAME"));
    if repo.is_none() && filename.is_none() {
        let saved = crate::defaults::load().get(role).map(str::to_string);
        return saved
            .and_then(|model| named_source(&model, role))
            .unwrap_or_else(|| ModelSource::from_spec(base));
    }
    let repo = repo.unwrap_or_else(|| base.repo.to_string());
    let filename = filename.unwrap_or_else(|| base.filename.to_string());
    let n_ctx = REGISTRY
        .iter()
        .find(|s| s.repo == repo && s.filename == filename)
        .map(|s| s.n_ctx);
    ModelSource::Hub {
        repo,
        filename,
        n_ctx,
    }
}

fn default_spec(role: Role) -> &'static ModelSpec {
    let mini = use_mini_models();
    let name = match role {
        Role::Generation if mini => "gemma-mini-270m",
        Role::Generation => match env("STEADYTEXT_GENERATION_SIZE").as_deref() {
            Some("large") => "qwen3-30b",
            _ => "qwen3-4b",
        },
        Role::Embedding if mini => "bge-embedding-mini",
        Role::Embedding => "jina-v4-retrieval",
        Role::Reranking if mini => "bge-reranker-mini",
        Role::Reranking => "qwen3-reranker-4b",
    };
    spec(name).expect("default models are in the registry")
}

fn named_source(model: &str, role: Role) -> Option<ModelSource> {
    if let Some(spec) = spec(model) {
        return Some(ModelSource::from_spec(spec));
    }
    if looks_like_path(model) {
        return Some(ModelSource::Path(expand_home(model)));
    }
    tracing::warn!(model, ?role, "unknown model name; using the default model");
    None
}

/// Resolves a choice for `role`, following SteadyText's precedence. Unknown names and sizes
/// fall back to the default with a warning, as SteadyText does.
pub fn resolve(choice: &ModelChoice, role: Role) -> ModelSource {
    if let (Some(repo), Some(filename)) = (&choice.repo, &choice.filename) {
        let n_ctx = REGISTRY
            .iter()
            .find(|s| s.repo == repo && s.filename == filename)
            .map(|s| s.n_ctx);
        return ModelSource::Hub {
            repo: repo.clone(),
            filename: filename.clone(),
            n_ctx,
        };
    }
    if let Some(source) = choice.model.as_deref().and_then(|m| named_source(m, role)) {
        return source;
    }
    if let Some(size) = choice.size.as_deref() {
        match size_to_model(size) {
            Some(spec) if role == Role::Generation => return ModelSource::from_spec(spec),
            _ => tracing::warn!(size, "unknown size; using the default model"),
        }
    }
    default_source(role)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_repo_then_name_then_size() {
        let both = ModelChoice {
            model: Some("qwen3-30b".into()),
            repo: Some("a/b".into()),
            filename: Some("c.gguf".into()),
            size: Some("mini".into()),
        };
        assert_eq!(
            resolve(&both, Role::Generation),
            ModelSource::Hub {
                repo: "a/b".into(),
                filename: "c.gguf".into(),
                n_ctx: None
            }
        );
        let name = ModelChoice {
            model: Some("qwen3-30b".into()),
            size: Some("mini".into()),
            ..Default::default()
        };
        assert_eq!(
            resolve(&name, Role::Generation),
            ModelSource::from_spec(spec("qwen3-30b").unwrap())
        );
        let size = ModelChoice {
            size: Some("mini".into()),
            ..Default::default()
        };
        assert_eq!(
            resolve(&size, Role::Generation),
            ModelSource::from_spec(spec("gemma-mini-270m").unwrap())
        );
    }

    #[test]
    fn paths_are_paths() {
        let choice = ModelChoice {
            model: Some("/models/x.gguf".into()),
            ..Default::default()
        };
        assert_eq!(
            resolve(&choice, Role::Embedding),
            ModelSource::Path("/models/x.gguf".into())
        );
    }

    #[test]
    fn sizes_map_like_steadytext() {
        assert_eq!(size_to_model("mini").unwrap().name, "gemma-mini-270m");
        assert_eq!(size_to_model("small").unwrap().name, "qwen3-4b");
        assert_eq!(size_to_model("large").unwrap().name, "qwen3-30b");
        assert!(size_to_model("medium").is_none());
    }
}
