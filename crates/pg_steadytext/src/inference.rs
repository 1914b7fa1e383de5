//! Where inference runs. In this build: in the backend, through the `steadytext` library, on one
//! thread (ggml then starts no threads of its own, so PostgreSQL's signal handling is untouched).
//! Models come from the `steadytext.*` settings unless a call names one.

use std::path::PathBuf;

use steadytext::store::{self, Fetch};
use steadytext::{Engine, Model, ModelChoice, Role};

use crate::guc;

/// llama.cpp threads per in-backend request. The output does not depend on it.
pub const THREADS: i32 = 1;

/// A call's model arguments (all optional).
#[derive(Debug, Default, Clone)]
pub struct ModelArgs {
    pub model: Option<String>,
    pub model_repo: Option<String>,
    pub model_filename: Option<String>,
    pub size: Option<String>,
}

impl ModelArgs {
    fn is_empty(&self) -> bool {
        self.model.is_none()
            && self.model_repo.is_none()
            && self.model_filename.is_none()
            && self.size.is_none()
    }
}

fn prepare() -> Fetch {
    store::set_models_dir(guc::string(&guc::MODELS_DIR).map(PathBuf::from));
    if guc::ALLOW_MODEL_DOWNLOADS.get() {
        Fetch::IfAllowed
    } else {
        Fetch::LocalOnly
    }
}

fn choice(args: &ModelArgs, setting: Option<String>) -> ModelChoice {
    if args.is_empty() {
        return ModelChoice {
            model: setting,
            ..Default::default()
        };
    }
    ModelChoice {
        model: args.model.clone(),
        repo: args.model_repo.clone(),
        filename: args.model_filename.clone(),
        size: args.size.clone(),
    }
}

/// The generation model for a call.
pub fn generation_model(args: &ModelArgs) -> steadytext::Result<&'static Model> {
    let fetch = prepare();
    let choice = choice(args, guc::string(&guc::GENERATION_MODEL));
    Engine::global().model(&choice, Role::Generation, fetch)
}

/// The embedding model for a call.
pub fn embedding_model(model: Option<&str>) -> steadytext::Result<&'static Model> {
    let fetch = prepare();
    let args = ModelArgs {
        model: model.map(str::to_string),
        ..Default::default()
    };
    let choice = choice(&args, guc::string(&guc::EMBEDDING_MODEL));
    Engine::global().model(&choice, Role::Embedding, fetch)
}

/// Display name of a model for the cache's `model_name` column: its file name.
pub fn model_name(model: &Model) -> String {
    model
        .path()
        .file_name()
        .map_or_else(String::new, |f| f.to_string_lossy().into_owned())
}
