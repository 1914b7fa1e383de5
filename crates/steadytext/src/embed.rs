//! Embeddings: SteadyText's `Query: `/`Passage: ` prefix, the model's pooling, 1024 wide
//! (zero-padded or truncated), L2-normalised float32.
//!
//! Every text is evaluated alone, one sequence per decode: batching sequences into one decode
//! changes results in the last bits, and "same input, same output" must hold whatever else runs.

use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;

use serde::{Deserialize, Serialize};

use crate::defaults::EMBEDDING_DIMENSION;
use crate::engine::Model;
use crate::error::{Error, Result};

/// A 1024-wide embedding.
pub type Embedding = Vec<f32>;

/// The zero vector: what empty input and failures give.
pub fn zero() -> Embedding {
    vec![0.0; EMBEDDING_DIMENSION]
}

/// Which side of a retrieval pair a text is; decides the `Query: `/`Passage: ` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbedMode {
    /// A search query (the default).
    #[default]
    Query,
    /// A document to be found.
    Passage,
}

impl EmbedMode {
    /// The prefix SteadyText puts before the text.
    pub fn prefix(self) -> &'static str {
        match self {
            EmbedMode::Query => "Query: ",
            EmbedMode::Passage => "Passage: ",
        }
    }

    /// The lower-case name used in cache keys and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            EmbedMode::Query => "query",
            EmbedMode::Passage => "passage",
        }
    }

    /// The mode from `STEADYTEXT_EMBEDDING_MODE`, `query` when unset or unknown (as SteadyText).
    pub fn from_env() -> Self {
        std::env::var("STEADYTEXT_EMBEDDING_MODE")
            .ok()
            .and_then(|m| m.parse().ok())
            .unwrap_or_default()
    }
}

impl std::str::FromStr for EmbedMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "query" => Ok(EmbedMode::Query),
            "passage" => Ok(EmbedMode::Passage),
            other => Err(Error::invalid(format!(
                "embedding mode must be one of query, passage, got '{other}'"
            ))),
        }
    }
}

/// How texts are embedded: the prefix, the window, the threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbedSetup {
    /// Query or passage.
    pub mode: EmbedMode,
    /// The requested window (capped at the model's); longer input is truncated.
    pub n_ctx: u32,
    /// llama.cpp threads; the output does not depend on it.
    pub threads: i32,
}

/// Embeds one text. Empty or whitespace-only text gives the zero vector.
pub fn embed(model: &Model, text: &str, setup: EmbedSetup) -> Result<Embedding> {
    if text.trim().is_empty() {
        return Ok(zero());
    }
    let raw = pooled(model, &format!("{}{text}", setup.mode.prefix()), setup)?;
    Ok(normalize(fit_width(raw)))
}

/// SteadyText's list form: the normalised mean of the non-empty texts' embeddings, one vector.
pub fn average(vectors: &[Embedding]) -> Embedding {
    let mut sum = vec![0.0f64; EMBEDDING_DIMENSION];
    let mut n = 0usize;
    for v in vectors.iter().filter(|v| v.iter().any(|&x| x != 0.0)) {
        for (s, x) in sum.iter_mut().zip(v) {
            *s += f64::from(*x);
        }
        n += 1;
    }
    if n == 0 {
        return zero();
    }
    normalize(sum.iter().map(|s| (s / n as f64) as f32).collect())
}

pub(crate) fn pooled(model: &Model, text: &str, setup: EmbedSetup) -> Result<Vec<f32>> {
    let window = model.window(setup.n_ctx);
    let tokens = embedding_tokens(model, text, window);
    let mut ctx = model.context(window, setup.threads, true)?;
    let mut batch = LlamaBatch::new(tokens.len(), 1);
    for (i, &token) in tokens.iter().enumerate() {
        batch
            .add(token, i as i32, &[0], true)
            .map_err(|e| Error::inference(e.to_string()))?;
    }
    ctx.decode(&mut batch)
        .map_err(|e| crate::stop::decode_error("embedding evaluation", e))?;
    let pooled = ctx
        .embeddings_seq_ith(0)
        .map_err(|e| Error::inference(format!("no pooled embedding: {e}")))?;
    Ok(pooled.to_vec())
}

/// The tokens of `text` as embedded: truncated to `window`.
pub(crate) fn embedding_tokens(model: &Model, text: &str, window: u32) -> Vec<LlamaToken> {
    let vocab = model.llama.vocab();
    let mut tokens = vocab.tokenize(text.as_bytes(), true, false);
    let limit = window as usize;
    if tokens.len() > limit {
        // Truncate like SteadyText, but keep the closing separator the model expects.
        let last = *tokens.last().expect("non-empty");
        tokens.truncate(limit);
        if vocab.should_add_sep() || vocab.should_add_eos() {
            tokens[limit - 1] = last;
        }
    }
    tokens
}

/// Zero-pads a narrower vector (cosine unchanged) or keeps the first 1024 of a wider one
/// (Matryoshka truncation, as SteadyText does for Jina v4's 2048).
pub fn fit_width(mut v: Vec<f32>) -> Vec<f32> {
    v.resize(EMBEDDING_DIMENSION, 0.0);
    v
}

/// L2-normalises; a vector with norm below 1e-9 becomes the zero vector.
pub fn normalize(v: Vec<f32>) -> Vec<f32> {
    let norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if norm < 1e-9 {
        return vec![0.0; v.len()];
    }
    v.into_iter()
        .map(|x| (f64::from(x) / norm) as f32)
        .collect()
}

/// Cosine similarity of two vectors (their dot product when both are normalised).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum();
    let na: f64 = a.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    (dot / (na * nb)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_is_always_1024() {
        assert_eq!(fit_width(vec![1.0; 384]).len(), 1024);
        assert_eq!(fit_width(vec![1.0; 2048]).len(), 1024);
    }

    #[test]
    fn mode_parses_case_insensitively() {
        assert_eq!("Passage".parse::<EmbedMode>().unwrap(), EmbedMode::Passage);
        assert!("both".parse::<EmbedMode>().is_err());
    }

    #[test]
    fn normalized_has_unit_norm_and_zero_stays_zero() {
        let v = normalize(fit_width(vec![3.0, 4.0]));
        assert!((v[0] - 0.6).abs() < 1e-7 && (v[1] - 0.8).abs() < 1e-7);
        assert!(normalize(vec![0.0; 4]).iter().all(|&x| x == 0.0));
    }
}
