//! Every default and every limit, in one place. Routes (SQL, daemon, CLI, workers) never write
//! their own: a request without a value gets it here, when it is built.

/// Seed when the caller gives none (SteadyText's `DEFAULT_SEED`).
pub const SEED: u32 = 42;
/// Output budget when the caller gives none (the extension's `default_max_tokens`).
pub const MAX_NEW_TOKENS: usize = 512;
/// The `eos_string` value that means "only the default stop strings".
pub const EOS_SENTINEL: &str = "[EOS]";
/// Stop strings SteadyText always uses; the model's end-of-generation tokens stop too.
pub const STOP_SEQUENCES: [&str; 4] = ["<|im_end|>", "<|im_start|>", "</s>", "<|endoftext|>"];
/// Temperature when the caller gives none: greedy.
pub const TEMPERATURE: f32 = 0.0;
/// Temperatures accepted; 0 is greedy.
pub const TEMPERATURE_RANGE: std::ops::RangeInclusive<f32> = 0.0..=2.0;
/// SteadyText's sampler above temperature 0.
pub const TOP_K: i32 = 40;
/// Nucleus threshold above temperature 0.
pub const TOP_P: f32 = 0.95;
/// Minimum-probability threshold above temperature 0.
pub const MIN_P: f32 = 0.05;
/// Width of every embedding.
pub const EMBEDDING_DIMENSION: usize = 1024;
/// The reranking instruction when the caller gives none (SteadyText's).
pub const RERANK_TASK: &str =
    "Given a web search query, retrieve relevant passages that answer the query";
/// Context window of a generation or reranking model outside the registry.
pub const GENERATION_WINDOW: u32 = 4096;
/// Context window of an embedding model outside the registry.
pub const EMBEDDING_WINDOW: u32 = 512;

/// Bounds on what one request may ask for, checked before anything is tokenized. Each has a
/// setting of the same name in SQL (`steadytext.max_prompt_length`, ...) and a flag of `st`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Characters in a prompt, an embedded text, a query or a document.
    pub max_prompt_length: usize,
    /// Tokens a generation may ask for.
    pub max_tokens: usize,
    /// Texts in one embedding batch, documents in one rerank.
    pub max_batch_size: usize,
    /// Characters in all the texts of one request together (the documents of a rerank with its
    /// query and task, the texts of a batch, a prompt with its constraint and stop string): the
    /// per-text and per-batch limits alone let one request ask for their product.
    pub max_request_length: usize,
}

impl Limits {
    /// The defaults: `steadytext.max_prompt_length`, `steadytext.max_tokens_limit`,
    /// `steadytext.max_batch_size` and `steadytext.max_request_length` start here, and so do the
    /// `st` flags.
    pub const DEFAULT: Limits = Limits {
        max_prompt_length: 10_000,
        max_tokens: 4096,
        max_batch_size: 1000,
        max_request_length: 200_000,
    };

    /// Limits with no practical bound (for the library called directly).
    pub fn unbounded() -> Self {
        Limits {
            max_prompt_length: usize::MAX,
            max_tokens: usize::MAX,
            max_batch_size: usize::MAX,
            max_request_length: usize::MAX,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}
