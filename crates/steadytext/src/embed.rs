//! Embeddings: SteadyText's `Query: `/`Passage: ` prefix, the model's pooling, 1024 wide
//! (zero-padded or truncated), L2-normalised float32.
//!
//! Every text is evaluated alone, one sequence per decode: batching sequences into one decode
//! changes results in the last bits, and "same input, same output" must hold whatever else runs.

use llama_cpp_2::llama_batch::LlamaBatch;

use crate::engine::{default_threads, Model};
use crate::error::{Error, Result};
use crate::params::{EmbedMode, EMBEDDING_DIMENSION};

/// A 1024-wide embedding.
pub type Embedding = Vec<f32>;

/// The zero vector: what empty input and failures give.
pub fn zero() -> Embedding {
    vec![0.0; EMBEDDING_DIMENSION]
}

/// Embeds one text. Empty or whitespace-only text gives the zero vector.
pub fn embed(
    model: &Model,
    text: &str,
    mode: EmbedMode,
    threads: Option<i32>,
) -> Result<Embedding> {
    if text.trim().is_empty() {
        return Ok(zero());
    }
    let raw = pooled(model, &format!("{}{text}", mode.prefix()), threads)?;
    Ok(normalize(fit_width(raw)))
}

/// Embeds each text; the result for a text is bit-identical to [`embed`] on it alone.
pub fn embed_batch(
    model: &Model,
    texts: &[&str],
    mode: EmbedMode,
    threads: Option<i32>,
) -> Result<Vec<Embedding>> {
    texts
        .iter()
        .map(|t| embed(model, t, mode, threads))
        .collect()
}

/// SteadyText's list form: the normalised mean of the non-empty texts' embeddings, one vector.
pub fn embed_average(
    model: &Model,
    texts: &[&str],
    mode: EmbedMode,
    threads: Option<i32>,
) -> Result<Embedding> {
    let mut sum = vec![0.0f64; EMBEDDING_DIMENSION];
    let mut n = 0usize;
    for text in texts.iter().filter(|t| !t.trim().is_empty()) {
        for (s, v) in sum.iter_mut().zip(embed(model, text, mode, threads)?) {
            *s += f64::from(v);
        }
        n += 1;
    }
    if n == 0 {
        return Ok(zero());
    }
    Ok(normalize(
        sum.iter().map(|s| (s / n as f64) as f32).collect(),
    ))
}

fn pooled(model: &Model, text: &str, threads: Option<i32>) -> Result<Vec<f32>> {
    let vocab = model.llama.vocab();
    let mut tokens = vocab.tokenize(text.as_bytes(), true, false);
    let limit = model.n_ctx() as usize;
    if tokens.len() > limit {
        // Truncate like SteadyText, but keep the closing separator the model expects.
        let last = *tokens.last().expect("non-empty");
        tokens.truncate(limit);
        if vocab.should_add_sep() || vocab.should_add_eos() {
            tokens[limit - 1] = last;
        }
    }
    let threads = threads.unwrap_or_else(default_threads);
    let mut ctx = model.context(model.n_ctx(), threads, true)?;
    let mut batch = LlamaBatch::new(tokens.len(), 1);
    for (i, &token) in tokens.iter().enumerate() {
        batch
            .add(token, i as i32, &[0], true)
            .map_err(|e| Error::Inference(e.to_string()))?;
    }
    ctx.decode(&mut batch)
        .map_err(|e| Error::Inference(format!("embedding evaluation failed: {e}")))?;
    let pooled = ctx
        .embeddings_seq_ith(0)
        .map_err(|e| Error::Inference(format!("no pooled embedding: {e}")))?;
    Ok(pooled.to_vec())
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
    fn normalized_has_unit_norm_and_zero_stays_zero() {
        let v = normalize(fit_width(vec![3.0, 4.0]));
        assert!((v[0] - 0.6).abs() < 1e-7 && (v[1] - 0.8).abs() < 1e-7);
        assert!(normalize(vec![0.0; 4]).iter().all(|&x| x == 0.0));
    }
}
