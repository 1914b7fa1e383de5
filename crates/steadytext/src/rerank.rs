//! Reranking: how relevant each document is to a query, as the probability the model answers
//! "yes" to SteadyText's Qwen3-Reranker prompt. The score comes from the "yes" and "no" logits
//! of the first answer token (softmax over the two), so it is continuous; SteadyText scored the
//! greedy token as 0 or 1.

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;

use serde::{Deserialize, Serialize};

use crate::engine::{Model, N_BATCH};
use crate::error::{Error, Result};

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    n_ctx: u32,
    threads: i32,
) -> Result<Vec<Scored>> {
    let mut scorer = QueryScorer::new(model, query, task, n_ctx, threads)?;
    let mut scored = Vec::with_capacity(documents.len());
    for (index, document) in documents.iter().enumerate() {
        let score = scorer.score(document)?;
        scored.push(Scored { index, score });
    }
    sort(&mut scored);
    Ok(scored)
}

/// Best first; a stable sort, so ties keep the input order.
pub fn sort(scored: &mut [Scored]) {
    scored.sort_by(|a, b| b.score.total_cmp(&a.score));
}

/// Scores one query's documents one at a time. The prompt up to the document (system text,
/// task, query: most of the tokens for short documents) is decoded once per scorer; each
/// document's tokens are decoded after it and dropped again. A document's score depends only
/// on the query, the task and the document: its tokens always sit at the same cache positions
/// behind the same prefix, and llama.cpp's attention width follows the cells in use, not the
/// context size (a test asserts a document scores the same alone and after others).
pub struct QueryScorer<'m> {
    model: &'m Model,
    query: String,
    task: String,
    threads: i32,
    window: u32,
    yes: Vec<LlamaToken>,
    no: Vec<LlamaToken>,
    /// The shared prompt's tokens (starting with BOS when the model adds one).
    prefix: Vec<LlamaToken>,
    /// The context, and whether the prefix is in its cache; made on the first document, and
    /// again larger when a document does not fit.
    ctx: Option<(LlamaContext<'m>, bool)>,
}

impl<'m> QueryScorer<'m> {
    /// A scorer for `query` under `task` with a window of `n_ctx` tokens (capped at the model's).
    pub fn new(
        model: &'m Model,
        query: &str,
        task: &str,
        n_ctx: u32,
        threads: i32,
    ) -> Result<Self> {
        let (yes, no) = answer_tokens(model)?;
        let vocab = model.llama.vocab();
        // Up to "Document:" without the space: BPE tokenizers start the document's first word
        // with that space, so the split falls on a token boundary.
        let shared = prompt(query, "", task);
        let shared = &shared[..shared
            .find("Document: ")
            .map_or(0, |i| i + "Document:".len())];
        Ok(Self {
            model,
            query: query.to_string(),
            task: task.to_string(),
            threads,
            window: model.window(n_ctx),
            yes,
            no,
            prefix: vocab.tokenize(shared.as_bytes(), vocab.should_add_bos(), true),
            ctx: None,
        })
    }

    /// P(yes) over {yes, no} for `document`.
    pub fn score(&mut self, document: &str) -> Result<f64> {
        let vocab = self.model.llama.vocab();
        let full = prompt(&self.query, document, &self.task);
        let tokens = vocab.tokenize(full.as_bytes(), vocab.should_add_bos(), true);
        if tokens.len() >= self.window as usize {
            return Err(Error::context_length(tokens.len(), self.window));
        }
        self.make_room(tokens.len())?;
        let Self {
            ctx,
            prefix,
            yes,
            no,
            ..
        } = self;
        let (ctx, prefix_loaded) = ctx.as_mut().expect("made by make_room");
        // A tokenizer may merge across the document's start; such a prompt is decoded whole
        // (rare, and still the same for the same inputs).
        let shared = tokens.starts_with(prefix) && prefix.len() < tokens.len();
        let start = if shared {
            if !*prefix_loaded {
                decode(ctx, prefix, 0, false)?;
                *prefix_loaded = true;
            }
            prefix.len()
        } else {
            clear(ctx, 0)?;
            *prefix_loaded = false;
            0
        };
        let last = decode(ctx, &tokens[start..], start, true)?;
        let logits = ctx.get_logits_ith(last);
        let logit = |t: &LlamaToken| f64::from(logits[t.0 as usize]);
        // A softmax over the answer tokens, shifted by the largest logit so exp() cannot overflow.
        let top = yes
            .iter()
            .chain(no.iter())
            .map(logit)
            .fold(f64::NEG_INFINITY, f64::max);
        let mass =
            |tokens: &[LlamaToken]| tokens.iter().map(|t| (logit(t) - top).exp()).sum::<f64>();
        let (p_yes, p_no) = (mass(yes), mass(no));
        clear(ctx, start)?;
        Ok(p_yes / (p_yes + p_no))
    }

    /// Makes the context (or remakes it larger, with an empty cache) so `needed` tokens fit.
    fn make_room(&mut self, needed: usize) -> Result<()> {
        let cells = ((needed as u32 + 1).div_ceil(256) * 256).min(self.window);
        if self.ctx.as_ref().is_none_or(|(c, _)| c.n_ctx() < cells) {
            self.ctx = Some((self.model.context(cells, self.threads, false)?, false));
        }
        Ok(())
    }
}

/// Decodes `tokens` at positions `start..`, in N_BATCH chunks; only the last token of the last
/// chunk asks for logits when `logits` is set. Returns that token's index in its chunk.
fn decode(
    ctx: &mut LlamaContext,
    tokens: &[LlamaToken],
    start: usize,
    logits: bool,
) -> Result<i32> {
    let mut batch = LlamaBatch::new(N_BATCH as usize, 1);
    let chunks: Vec<_> = tokens.chunks(N_BATCH as usize).collect();
    for (c, chunk) in chunks.iter().enumerate() {
        batch.clear();
        for (i, &token) in chunk.iter().enumerate() {
            let last = logits && c + 1 == chunks.len() && i + 1 == chunk.len();
            batch
                .add(token, (start + c * N_BATCH as usize + i) as i32, &[0], last)
                .map_err(|e| Error::inference(e.to_string()))?;
        }
        ctx.decode(&mut batch)
            .map_err(|e| crate::stop::decode_error("reranking", e))?;
    }
    Ok(batch.n_tokens() - 1)
}

/// Drops the cached tokens from position `from` on.
fn clear(ctx: &mut LlamaContext, from: usize) -> Result<()> {
    ctx.clear_kv_cache_seq(Some(0), Some(from as u32), None)
        .map(|_| ())
        .map_err(|e| Error::inference(format!("reranking failed: {e}")))
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
                .ok_or_else(|| Error::inference(format!("the model cannot tokenize '{word}'")))?;
            if !tokens.contains(&token) {
                tokens.push(token);
            }
        }
        Ok(tokens)
    };
    Ok((first(["yes", "Yes"])?, first(["no", "No"])?))
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
