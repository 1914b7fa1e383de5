//! SteadyText's model registry and how a request's model choice resolves to a source.
//!
//! Precedence (as SteadyText): an explicit repo + filename, then a model name (a registry name
//! or, new here, a path to a GGUF file), then a size, then the environment's defaults.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::paths::expand_home;
pub use crate::role::Role;

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

/// Looks a registry name up.
pub fn spec(name: &str) -> Option<&'static ModelSpec> {
    REGISTRY.iter().find(|s| s.name == name)
}

/// The generation sizes and the registry models they stand for (SteadyText's `SIZE_TO_MODEL`).
pub const SIZES: [(&str, &str); 3] = [
    ("mini", "gemma-mini-270m"),
    ("small", "qwen3-4b"),
    ("large", "qwen3-30b"),
];

/// The model a generation size stands for; an error listing the sizes for any other value.
pub fn size_to_model(size: &str) -> Result<&'static ModelSpec> {
    SIZES
        .iter()
        .find(|(name, _)| *name == size)
        .and_then(|(_, model)| spec(model))
        .ok_or_else(|| {
            Error::invalid(format!(
                "size must be one of mini, small, large, got '{size}'"
            ))
        })
}

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A GGUF file named by its path.
    Path(PathBuf),
    /// A GGUF file in the models directory, named by its file name.
    File(String),
    /// A file of a Hugging Face repository, kept in the models directory.
    Hub {
        /// Repository.
        repo: String,
        /// File name.
        filename: String,
        /// Context window the registry gives it.
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

    fn hub(repo: String, filename: String) -> Self {
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

    /// Context window SteadyText's registry gives this source, if any.
    pub fn registry_n_ctx(&self) -> Option<u32> {
        match self {
            ModelSource::Hub { n_ctx, .. } => *n_ctx,
            _ => None,
        }
    }

    /// Whether this is a file of the registry (the only files downloaded).
    pub fn in_registry(&self) -> bool {
        match self {
            ModelSource::Hub { repo, filename, .. } => REGISTRY
                .iter()
                .any(|s| s.repo == repo && s.filename == filename),
            _ => false,
        }
    }
}

/// A caller's model choice; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelChoice {
    /// A registry name, a GGUF file name in the models directory, or a path to a GGUF file.
    pub model: Option<String>,
    /// Hugging Face repository (needs `filename`).
    pub repo: Option<String>,
    /// File in `repo`.
    pub filename: Option<String>,
    /// `mini`, `small` or `large` (generation only).
    pub size: Option<String>,
}

impl ModelChoice {
    /// A choice of `model` alone.
    pub fn named(model: Option<&str>) -> Self {
        ModelChoice {
            model: model.map(str::to_string),
            ..Default::default()
        }
    }

    /// Whether nothing was chosen.
    pub fn is_empty(&self) -> bool {
        self.model.is_none()
            && self.repo.is_none()
            && self.filename.is_none()
            && self.size.is_none()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Whether `STEADYTEXT_USE_MINI_MODELS` asks for the mini set (case-insensitive `true`).
pub fn use_mini_models() -> bool {
    env("STEADYTEXT_USE_MINI_MODELS").is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The role's default source: `STEADYTEXT_<ROLE>_MODEL`, else the `_REPO`/`_FILENAME`
/// overrides, else the user's saved default (`st models default`), else the registry's.
pub fn default_source(role: Role) -> Result<ModelSource> {
    let r = role.env_name();
    if let Some(model) = env(&format!("STEADYTEXT_{r}_MODEL")) {
        return named_source(&model, role);
    }
    let base = default_spec(role);
    let repo = env(&format!("STEADYTEXT_{r}_MODEL_REPO"));
    let filename = env(&format!("STEADYTEXT_{r}_MODEL_FILENAME"));
    if repo.is_none() && filename.is_none() {
        return match crate::user_defaults::load().get(role) {
            Some(model) => named_source(model, role),
            None => Ok(ModelSource::from_spec(base)),
        };
    }
    Ok(ModelSource::hub(
        repo.unwrap_or_else(|| base.repo.to_string()),
        filename.unwrap_or_else(|| base.filename.to_string()),
    ))
}

/// The registry model a role uses when nothing names one (SteadyText's defaults).
pub fn default_spec(role: Role) -> &'static ModelSpec {
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

/// A model string: a registry name, a path (with a `/` or starting with `~`), or a `.gguf` file
/// name in the models directory. Anything else is an error that names the registry models.
pub fn named_source(model: &str, role: Role) -> Result<ModelSource> {
    let model = model.trim();
    if let Some(spec) = spec(model) {
        return Ok(ModelSource::from_spec(spec));
    }
    if model.contains('/') || model.starts_with('~') {
        return Ok(ModelSource::Path(expand_home(model)));
    }
    if model.ends_with(".gguf") {
        return Ok(ModelSource::File(model.to_string()));
    }
    let names: Vec<&str> = REGISTRY
        .iter()
        .filter(|s| s.role == role)
        .map(|s| s.name)
        .collect();
    Err(Error::invalid(format!(
        "unknown {} model '{model}': use a registry name ({}), a .gguf file name in the models \
         directory, or a path",
        role.as_str(),
        names.join(", ")
    )))
}

/// Resolves a choice for `role`, following SteadyText's precedence: repo and filename, then the
/// model name, then the size, then the defaults.
pub fn resolve(choice: &ModelChoice, role: Role) -> Result<ModelSource> {
    if let (Some(repo), Some(filename)) = (&choice.repo, &choice.filename) {
        return Ok(ModelSource::hub(repo.clone(), filename.clone()));
    }
    if let Some(model) = choice.model.as_deref().filter(|m| !m.trim().is_empty()) {
        return named_source(model, role);
    }
    if let Some(size) = choice.size.as_deref() {
        let spec = size_to_model(size)?;
        if role == Role::Generation {
            return Ok(ModelSource::from_spec(spec));
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
            resolve(&both, Role::Generation).unwrap(),
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
            resolve(&name, Role::Generation).unwrap(),
            ModelSource::from_spec(spec("qwen3-30b").unwrap())
        );
        let size = ModelChoice {
            size: Some("mini".into()),
            ..Default::default()
        };
        assert_eq!(
            resolve(&size, Role::Generation).unwrap(),
            ModelSource::from_spec(spec("gemma-mini-270m").unwrap())
        );
    }

    #[test]
    fn paths_files_and_names() {
        let path = ModelChoice::named(Some("/models/x.gguf"));
        assert_eq!(
            resolve(&path, Role::Embedding).unwrap(),
            ModelSource::Path("/models/x.gguf".into())
        );
        let file = ModelChoice::named(Some("x.gguf"));
        assert_eq!(
            resolve(&file, Role::Embedding).unwrap(),
            ModelSource::File("x.gguf".into())
        );
        let unknown = resolve(&ModelChoice::named(Some("gpt-5")), Role::Generation).unwrap_err();
        assert!(unknown.to_string().contains("qwen3-4b"), "{unknown}");
    }

    #[test]
    fn sizes_map_like_steadytext_and_others_are_refused() {
        assert_eq!(size_to_model("mini").unwrap().name, "gemma-mini-270m");
        assert_eq!(size_to_model("small").unwrap().name, "qwen3-4b");
        assert_eq!(size_to_model("large").unwrap().name, "qwen3-30b");
        let e = size_to_model("huge").unwrap_err();
        assert_eq!(
            e.to_string(),
            "size must be one of mini, small, large, got 'huge'"
        );
        let huge = ModelChoice {
            size: Some("huge".into()),
            ..Default::default()
        };
        assert!(resolve(&huge, Role::Generation).is_err());
    }
}
