//! Reranking: how relevant each document is to a query, as the probability the model answers
//! "yes" to SteadyText's Qwen3-Reranker prompt. The score comes from the "yes" and "no" logits
//! of the first answer token (softmax over the two), so it is continuous; SteadyText scored the
//! greedy token as 0 or 1.

use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;

use crate::engine::{default_threads, Model, N_BATCH};
use crate::error::{Error, Result};

/// The task when the caller gives none (SteadyText's default).
pub const DEFAULT_TASK: &str =
    "Given a web search query, retrieve relevant passages that answer the query";

/// SteadyText's prompt, verbatim (its own variant of Qwen3-Reranker's format).
pub fn prompt(query: &str, document: &str, task: &str) -> String {
    format!(
        "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query \
         and the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n\
         <|im_start|>user\nInstruct: {task}\nQuery: {query}\nDocument: {document}\n\
         <|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )
}

/// A document's score.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Index of the document in the input.
    pub index: usize,
    /// In [0, 1].
    pub score: f64,
}

/// Scores every document against `query` and returns them best first (ties keep input order).
pub fn rerank(
    model: &Model,
    query: &str,
    documents: &[&str],
    task: &str,
    threads: Option<i32>,
) -> Result<Vec<Scored>> {
    let (yes, no) = answer_tokens(model)?;
    let threads = threads.unwrap_or_else(default_threads);
    let mut scored = Vec::with_capacity(documents.len());
    for (index, document) in documents.iter().enumerate() {
        let score = score(model, &prompt(query, document, task), &yes, &no, threads)?;
        scored.push(Scored { index, score });
    }
    sort(&mut scored);
    Ok(scored)
}

/// Best first; a stable sort, so ties keep the input order.
fn sort(scored: &mut [Scored]) {
    scored.sort_by(|a, b| b.score.total_cmp(&a.score));
}

/// The first tokens of "yes"/"Yes" and of "no"/"No" (a model may answer in either case; a
/// reranking model's answer is lower-case, so this changes nothing for it).
fn answer_tokens(model: &Model) -> Result<(Vec<LlamaToken>, Vec<LlamaToken>)> {
    let vocab = model.llama.vocab();
    let first = |words: [&str; 2]| -> Result<Vec<LlamaToken>> {
        let mut tokens = Vec::new();
        for word in words {
            let token = vocab
                .tokenize(word.as_bytes(), false, false)
                .first()
                .copied()
                .ok_or_else(|| Error::Inference(format!("the model cannot tokenize '{word}'")))?;
            if !tokens.contains(&token) {
                tokens.push(token);
            }
        }
        Ok(tokens)
    };
    Ok((first(["yes", "Yes"])?, first(["no", "No"])?))
}

/// P(yes) over {yes, no} for one prompt, in a fresh context.
fn score(
    model: &Model,
    prompt: &str,
    yes: &[LlamaToken],
    no: &[LlamaToken],
    threads: i32,
) -> Result<f64> {
    let vocab = model.llama.vocab();
    let tokens = vocab.tokenize(prompt.as_bytes(), vocab.should_add_bos(), true);
    let n_ctx = model.n_ctx() as usize;
    if tokens.len() >= n_ctx {
        return Err(Error::ContextLengthExceeded {
            input_tokens: tokens.len(),
            max_input_tokens: n_ctx - 1,
            n_ctx: model.n_ctx(),
            max_new_tokens: 1,
        });
    }
    let cells = (tokens.len() as u32 + 1).div_ceil(256) * 256;
    let mut ctx = model.context(cells.min(model.n_ctx()), threads, false)?;
    let mut batch = LlamaBatch::new(N_BATCH as usize, 1);
    let chunks: Vec<_> = tokens.chunks(N_BATCH as usize).collect();
    for (c, chunk) in chunks.iter().enumerate() {
        batch.clear();
        for (i, &token) in chunk.iter().enumerate() {
            let last = c + 1 == chunks.len() && i + 1 == chunk.len();
            batch
                .add(token, (c * N_BATCH as usize + i) as i32, &[0], last)
                .map_err(|e| Error::Inference(e.to_string()))?;
        }
        ctx.decode(&mut batch)
            .map_err(|e| Error::Inference(format!("reranking failed: {e}")))?;
    }
    let logits = ctx.get_logits_ith(batch.n_tokens() - 1);
    let logit = |t: &LlamaToken| f64::from(logits[t.0 as usize]);
    // A softmax over the answer tokens, shifted by the largest logit so exp() cannot overflow.
    let top = yes
        .iter()
        .chain(no)
        .map(logit)
        .fold(f64::NEG_INFINITY, f64::max);
    let mass = |tokens: &[LlamaToken]| tokens.iter().map(|t| (logit(t) - top).exp()).sum::<f64>();
    let (p_yes, p_no) = (mass(yes), mass(no));
    Ok(p_yes / (p_yes + p_no))
}

/// SteadyText's score without a model: the share of query words found in the document.
/// Callers must say that this is what they return.
pub fn fallback(query: &str, documents: &[&str]) -> Vec<Scored> {
    let words = |s: &str| -> std::collections::HashSet<String> {
        s.to_lowercase()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let query_words = words(query);
    let mut scored: Vec<Scored> = documents
        .iter()
        .enumerate()
        .map(|(index, doc)| {
            let score = if query_words.is_empty() {
                0.0
            } else {
                query_words.intersection(&words(doc)).count() as f64 / query_words.len() as f64
            };
            Scored { index, score }
        })
        .collect();
    sort(&mut scored);
    scored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_counts_query_words_and_keeps_ties_in_order() {
        let scored = fallback(
            "red apple",
            &["a green pear", "one red apple", "red car", "apple red"],
        );
        let order: Vec<usize> = scored.iter().map(|s| s.index).collect();
        assert_eq!(order, vec![1, 3, 2, 0]);
        assert_eq!(scored[0].score, 1.0);
        assert_eq!(scored[2].score, 0.5);
        assert_eq!(scored[3].score, 0.0);
    }

    #[test]
    fn the_prompt_is_steadytexts() {
        let p = prompt("q", "d", "t");
        assert!(p.starts_with("<|im_start|>system\nJudge whether the Document"));
        assert!(p.contains("Instruct: t\nQuery: q\nDocument: d\n<|im_end|>"));
        assert!(p.ends_with("<|im_start|>assistant\n<think>\n\n</think>\n\n"));
    }
}
