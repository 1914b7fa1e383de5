//! The engine: one llama.cpp backend per process, and the models loaded into it.
//!
//! Models are loaded once and kept for the life of the process (as SteadyText does), which is
//! why the engine hands out `&'static Model`: a stream can outlive the call that started it. Each
//! request gets a fresh context, so no state leaks from one request into the next.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use crate::error::{Error, Result};
use crate::registry::{self, ModelChoice, Role};
use crate::store::{self, Fetch};

/// Tokens evaluated per `llama_decode` call. Fixed: changing it can change results.
pub const N_BATCH: u32 = 512;

static BACKEND: OnceLock<LlamaBackend> = OnceLock::new();

/// The process's llama.cpp backend; llama.cpp's own log goes to `tracing` instead of stderr.
pub fn backend() -> &'static LlamaBackend {
    BACKEND.get_or_init(|| {
        llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
        LlamaBackend::init().expect("llama.cpp backend is initialised only here")
    })
}

/// Threads per request when the caller does not say: `STEADYTEXT_THREADS`, else every core.
pub fn default_threads() -> i32 {
    std::env::var("STEADYTEXT_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .filter(|&t: &i32| t > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as i32))
}

/// A loaded GGUF model.
pub struct Model {
    pub(crate) llama: LlamaModel,
    path: PathBuf,
    role: Role,
    n_ctx: u32,
    chat_template: Option<String>,
    sha256: OnceLock<String>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("path", &self.path)
            .field("role", &self.role)
            .field("n_ctx", &self.n_ctx)
            .finish()
    }
}

impl Model {
    /// Loads `path`. `n_ctx` is the context window to use; `None` picks
    /// `STEADYTEXT_MAX_CONTEXT_WINDOW`, else the smaller of 4096 and the model's training window.
    pub fn load(path: &Path, role: Role, n_ctx: Option<u32>) -> Result<Self> {
        let llama = LlamaModel::load_from_file(backend(), path, &LlamaModelParams::default())
            .map_err(|e| Error::ModelLoad {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        let window = context_window(n_ctx, llama.n_ctx_train(), role);
        let chat_template = llama
            .meta_val_str("tokenizer.chat_template")
            .ok()
            .filter(|t| !t.is_empty());
        Ok(Self {
            llama,
            path: path.to_path_buf(),
            role,
            n_ctx: window,
            chat_template,
            sha256: OnceLock::new(),
        })
    }

    /// The file this model came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What it was loaded for.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The context window requests are checked against.
    pub fn n_ctx(&self) -> u32 {
        self.n_ctx
    }

    /// The file's sha256 (hex), computed on first use.
    pub fn sha256(&self) -> Result<&str> {
        if let Some(sha) = self.sha256.get() {
            return Ok(sha);
        }
        let sha = store::sha256_of(&self.path)?;
        Ok(self.sha256.get_or_init(|| sha))
    }

    /// The Jinja chat template embedded in the file, if any.
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// Text of a special token, or "" when the model has none.
    pub(crate) fn token_text(&self, token: LlamaToken) -> String {
        if token.0 < 0 {
            return String::new();
        }
        String::from_utf8_lossy(&self.llama.vocab().token_to_piece(token, true, None)).into_owned()
    }

    /// A fresh context. `n_ctx` tokens of KV cache, one sequence, fixed batch sizes.
    pub(crate) fn context(
        &self,
        n_ctx: u32,
        threads: i32,
        embeddings: bool,
    ) -> Result<LlamaContext<'_>> {
        let n_batch = if embeddings { n_ctx } else { N_BATCH };
        let mut params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(n_batch)
            .with_n_ubatch(n_batch)
            .with_n_seq_max(1)
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            .with_embeddings(embeddings)
            .with_flash_attention_policy(llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED);
        if embeddings {
            params = params.with_pooling_type(self.pooling());
        }
        self.llama
            .new_context(backend(), params)
            .map_err(|e| Error::Inference(format!("cannot create a context: {e}")))
    }

    /// The model's own pooling; mean pooling when it declares none (as SteadyText pools).
    fn pooling(&self) -> LlamaPoolingType {
        let arch = self
            .llama
            .meta_val_str("general.architecture")
            .unwrap_or_default();
        match self
            .llama
            .meta_val_str(&format!("{arch}.pooling_type"))
            .as_deref()
        {
            Ok("2") => LlamaPoolingType::Cls,
            Ok("3") => LlamaPoolingType::Last,
            _ => LlamaPoolingType::Mean,
        }
    }
}

fn context_window(requested: Option<u32>, n_ctx_train: u32, role: Role) -> u32 {
    let from_env = std::env::var("STEADYTEXT_MAX_CONTEXT_WINDOW")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|&v| v > 0);
    let fallback = match role {
        Role::Embedding => 512,
        _ => registry::DEFAULT_N_CTX,
    };
    let window = from_env.or(requested).unwrap_or(fallback);
    if n_ctx_train > 0 {
        window.min(n_ctx_train)
    } else {
        window
    }
}

/// Loads models on first use and keeps them for the life of the process. Most callers use
/// [`Engine::global`].
#[derive(Debug, Default)]
pub struct Engine {
    models: Mutex<HashMap<(PathBuf, Role), &'static Model>>,
}

impl Engine {
    /// A new engine with no models loaded.
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide engine.
    pub fn global() -> &'static Engine {
        static ENGINE: OnceLock<Engine> = OnceLock::new();
        ENGINE.get_or_init(Engine::new)
    }

    /// The model for `choice` in `role`, resolved, located (downloaded if `fetch` allows) and
    /// loaded on first use.
    pub fn model(&self, choice: &ModelChoice, role: Role, fetch: Fetch) -> Result<&'static Model> {
        let source = registry::resolve(choice, role);
        let path = store::locate(&source, role, fetch)?;
        self.load(&path, role, source.registry_n_ctx())
    }

    /// Loads the file at `path` for `role` unless already loaded.
    pub fn load(&self, path: &Path, role: Role, n_ctx: Option<u32>) -> Result<&'static Model> {
        let key = (path.to_path_buf(), role);
        // Held while loading, so two callers never load the same file twice.
        let mut models = self.models.lock().unwrap();
        if let Some(model) = models.get(&key) {
            return Ok(model);
        }
        let model: &'static Model = Box::leak(Box::new(Model::load(path, role, n_ctx)?));
        models.insert(key, model);
        Ok(model)
    }

    /// Models loaded so far.
    pub fn loaded(&self) -> Vec<&'static Model> {
        self.models.lock().unwrap().values().copied().collect()
    }
}
