//! The engine: one llama.cpp backend per process, and the models loaded into it.
//!
//! Models are loaded once and kept for the life of the process (as SteadyText does), which is
//! why the engine hands out `&'static Model`. Each request gets a fresh context, so no state
//! leaks from one request into the next.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use crate::error::{Error, ErrorKind, Result};
use crate::model_ref::ModelRef;
use crate::structured::Vocabulary;

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

/// A loaded GGUF file. The same file serves every role: the role only changes the context a
/// request makes (embeddings on or off, pooling).
pub struct Model {
    pub(crate) llama: LlamaModel,
    path: PathBuf,
    chat_template: Option<String>,
    /// The vocabulary as the constraint engine sees it, built on the first constrained request.
    vocabulary: OnceLock<Result<Vocabulary>>,
    /// Sequences one decode call may carry, decided on first use.
    batch_rows: OnceLock<u32>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("path", &self.path).finish()
    }
}

impl Model {
    /// Loads `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let llama = LlamaModel::load_from_file(backend(), path, &LlamaModelParams::default())
            .map_err(|e| {
                Error::new(
                    ErrorKind::ModelLoad,
                    format!("could not load model {}: {e}", path.display()),
                )
            })?;
        let chat_template = llama
            .meta_val_str("tokenizer.chat_template")
            .ok()
            .filter(|t| !t.is_empty());
        Ok(Self {
            llama,
            path: path.to_path_buf(),
            chat_template,
            vocabulary: OnceLock::new(),
            batch_rows: OnceLock::new(),
        })
    }

    /// The vocabulary for constrained decoding (built once: it walks every token).
    pub(crate) fn vocabulary(&self) -> Result<&Vocabulary> {
        self.vocabulary
            .get_or_init(|| {
                Vocabulary::new(llama_cpp_2::sampling::LlamaSampler::llguidance_tok_env(
                    &self.llama,
                ))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// How many sequences one decode call may carry with the bits each gets alone, on this build
    /// (see [`crate::batch`]); 1 means the model is never batched.
    pub fn batch_rows(&self) -> u32 {
        *self.batch_rows.get_or_init(|| {
            let arch = self
                .llama
                .meta_val_str("general.architecture")
                .unwrap_or_default();
            let experts = self
                .llama
                .meta_val_str(&format!("{arch}.expert_count"))
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            crate::batch::proven_rows(&self.path, &arch, experts)
        })
    }

    /// The file this model came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The window a request for `requested` tokens gets: never more than the model was trained on.
    pub fn window(&self, requested: u32) -> u32 {
        match self.llama.n_ctx_train() {
            0 => requested,
            trained => requested.min(trained),
        }
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
        self.new_context(self.context_params(n_ctx, threads, embeddings))
    }

    /// A context for `sequences` sequences of `cells_each` KV cells, in one cache (`unified`)
    /// or one stream each; otherwise the parameters of [`Model::context`].
    pub(crate) fn multi_context(
        &self,
        cells_each: u32,
        sequences: u32,
        unified: bool,
        threads: i32,
        embeddings: bool,
    ) -> Result<LlamaContext<'_>> {
        let params = self
            .context_params(cells_each * sequences, threads, embeddings)
            .with_n_seq_max(sequences)
            .with_kv_unified(unified);
        self.new_context(params)
    }

    fn context_params(&self, n_ctx: u32, threads: i32, embeddings: bool) -> LlamaContextParams {
        let n_batch = if embeddings { n_ctx } else { N_BATCH };
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(n_batch)
            .with_n_ubatch(n_batch)
            .with_n_seq_max(1)
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            .with_embeddings(embeddings)
            .with_flash_attention_policy(llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED);
        if embeddings {
            return params.with_pooling_type(self.pooling());
        }
        params
    }

    fn new_context(&self, params: LlamaContextParams) -> Result<LlamaContext<'_>> {
        self.llama
            .new_context(backend(), params)
            .map_err(|e| Error::inference(format!("cannot create a context: {e}")))
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

/// Loads models on first use and keeps them for the life of the process (a stream can outlive
/// the call that started it, so models are never unloaded). Most callers use [`Engine::global`].
#[derive(Debug)]
pub struct Engine {
    models: Mutex<HashMap<PathBuf, &'static Model>>,
    max_models: AtomicUsize,
}

impl Default for Engine {
    fn default() -> Self {
        Engine {
            models: Mutex::new(HashMap::new()),
            max_models: AtomicUsize::new(usize::MAX),
        }
    }
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

    /// Refuses to load more than `max` different files (the daemon's bound on memory).
    pub fn set_max_models(&self, max: usize) {
        self.max_models.store(max.max(1), Ordering::Relaxed);
    }

    /// The model of `model_ref`, loaded on first use.
    pub fn model(&self, model_ref: &ModelRef) -> Result<&'static Model> {
        self.load(&model_ref.path)
    }

    /// Loads the file at `path` unless already loaded.
    pub fn load(&self, path: &Path) -> Result<&'static Model> {
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        // Held while loading, so two callers never load the same file twice.
        let mut models = self.models.lock().unwrap();
        if let Some(model) = models.get(&key) {
            return Ok(model);
        }
        let max = self.max_models.load(Ordering::Relaxed);
        if models.len() >= max {
            return Err(Error::new(
                ErrorKind::Busy,
                format!(
                    "{} models are loaded, the most this process allows; {} is not loaded",
                    models.len(),
                    path.display()
                ),
            ));
        }
        let model: &'static Model = Box::leak(Box::new(Model::load(path)?));
        models.insert(key, model);
        Ok(model)
    }

    /// Models loaded so far.
    pub fn loaded(&self) -> Vec<&'static Model> {
        self.models.lock().unwrap().values().copied().collect()
    }
}
