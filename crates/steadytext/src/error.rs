//! The library's error type: one variant per way a request can fail, each with enough context
//! to tell the user what to do next.

use std::path::PathBuf;

/// Everything that can go wrong between a request and its result.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model file is not on disk and downloading it is not possible.
    #[error(
        "model file {filename} (Hugging Face repo {repo}) is not in {dir} and {reason}; \
         download it with `st models download` on a machine with network access and copy it to \
         {dir}, or point STEADYTEXT_{role}_MODEL at a local GGUF file"
    )]
    ModelMissing {
        /// Role in upper case (GENERATION, EMBEDDING, RERANKING), used in the hint.
        role: String,
        /// Hugging Face repository the file would come from.
        repo: String,
        /// GGUF file name.
        filename: String,
        /// Directory that was searched.
        dir: PathBuf,
        /// Why it was not downloaded.
        reason: String,
    },
    /// A model path given explicitly does not exist.
    #[error("model file {0} does not exist")]
    ModelPathMissing(PathBuf),
    /// llama.cpp refused to load the file.
    #[error("could not load model {path}: {reason}")]
    ModelLoad {
        /// The file.
        path: PathBuf,
        /// llama.cpp's complaint.
        reason: String,
    },
    /// The prompt does not fit the context window together with the requested output.
    #[error(
        "prompt has {input_tokens} tokens but at most {max_input_tokens} fit the model's \
         {n_ctx}-token context with max_new_tokens={max_new_tokens} (10% of the window is reserved); \
         shorten the prompt or lower max_new_tokens"
    )]
    ContextLengthExceeded {
        /// Tokens in the rendered prompt.
        input_tokens: usize,
        /// Largest prompt that would have been accepted.
        max_input_tokens: usize,
        /// The model's context window.
        n_ctx: u32,
        /// Requested output budget.
        max_new_tokens: usize,
    },
    /// A parameter is out of range.
    #[error("{0}")]
    InvalidArgument(String),
    /// The caller asked to stop.
    #[error(
        "the constrained output was not complete after max_tokens={max_new_tokens} tokens; \
         raise max_tokens"
    )]
    Incomplete {
        /// The budget that ran out.
        max_new_tokens: usize,
    },
    #[error("generation cancelled")]
    Cancelled,
    /// llama.cpp failed while evaluating.
    #[error("inference failed: {0}")]
    Inference(String),
    /// File system trouble.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl Error {
    /// Whether the same request would fail the same way again (a queue worker does not retry
    /// it): bad arguments and prompts that do not fit, as opposed to missing models or I/O.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Error::ContextLengthExceeded { .. }
                | Error::InvalidArgument(_)
                | Error::Incomplete { .. }
        )
    }
}
