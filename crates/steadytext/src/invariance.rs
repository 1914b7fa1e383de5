//! Batch invariance: whether decoding several sequences in one llama.cpp batch gives each one
//! the logits, bit for bit, that decoding it alone gives.
//!
//! Serving concurrent requests in one batch is only allowed where this holds, because the
//! product is "same input, same output". The single-sequence side is the library's own
//! decoding: the same context parameters, the prompt fed in [`N_BATCH`] chunks, one token per
//! step. The batched side feeds every sequence the tokens its single run chose (teacher
//! forcing), so a difference in one step does not change the inputs of the next and every step
//! is compared. Findings: `docs/batch-invariance.md`.

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;

use crate::batch::{copy_prefix, prefix_source};
use crate::embed::{embedding_tokens, pooled, EmbedMode, EmbedSetup};
use crate::engine::{Model, N_BATCH};
use crate::error::{Error, Result};
use crate::generate::{argmax, feed_prompt, feed_sequence, kv_cells};

pub use crate::batch::MAX_SEQUENCES;

/// How the sequences share a context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// One KV cache for all sequences (llama.cpp's `kv_unified`), or one stream each.
    pub unified_kv: bool,
    /// How the prompts are evaluated before the steps.
    pub prefill: Prefill,
    /// llama.cpp threads of the batched side (decoding alone does not depend on them).
    pub threads: i32,
    /// The most sequences per decode call after the prefill (more are decoded in several calls
    /// per step, as the daemon's batch does).
    pub rows: usize,
}

/// How the prompts of sequences decoded together are evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefill {
    /// Each prompt in decode calls of its own.
    Apart,
    /// As the daemon's batch does: each prompt apart, from the longest prefix an earlier
    /// sequence's prompt can give it (`batch::shareable_prefix`), whose KV cells are copied.
    Shared,
    /// Every sequence after the first copies the first sequence's KV cells for this many
    /// positions, whether or not `shareable_prefix` allows it, and is prefilled from there.
    Copied(usize),
    /// All prompts in one batch.
    Together,
}

/// One sequence decoded alone: the greedy tokens and the logits before each of them.
#[derive(Debug, Clone)]
pub struct Trace {
    /// The prompt, as tokens.
    pub prompt: Vec<LlamaToken>,
    /// The token chosen at each step.
    pub tokens: Vec<LlamaToken>,
    /// The logits at each step.
    pub logits: Vec<Vec<f32>>,
}

/// How batched decoding compared with decoding alone.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Sequences decoded together.
    pub sequences: usize,
    /// Steps compared per sequence.
    pub steps: usize,
    /// Steps (over all sequences) whose logits were not bit-identical.
    pub differing_steps: usize,
    /// The first (sequence, step) that differed.
    pub first_difference: Option<(usize, usize)>,
    /// The largest absolute difference of one logit.
    pub max_abs_difference: f32,
    /// Steps whose greedy token differed.
    pub differing_tokens: usize,
    /// For each sequence, the prompt positions whose KV cells were copied from another
    /// sequence instead of evaluated.
    pub copied: Vec<usize>,
}

impl Comparison {
    fn empty(sequences: usize, steps: usize) -> Self {
        Comparison {
            sequences,
            steps,
            differing_steps: 0,
            first_difference: None,
            max_abs_difference: 0.0,
            differing_tokens: 0,
            copied: vec![0; sequences],
        }
    }

    /// Whether every logit of every step was bit-identical.
    pub fn identical(&self) -> bool {
        self.differing_steps == 0
    }
}

/// Decodes `prompt` alone for `steps` greedy steps, as generation does.
pub fn decode_alone(
    model: &Model,
    prompt: &[LlamaToken],
    steps: usize,
    threads: i32,
) -> Result<Trace> {
    let cells = kv_cells(prompt.len() + steps, model.window(u32::MAX));
    let mut ctx = model.context(cells, threads, false)?;
    let mut batch = LlamaBatch::new(N_BATCH as usize, 1);
    let mut at = feed_prompt(&mut ctx, &mut batch, prompt, 0)?;
    let mut trace = Trace {
        prompt: prompt.to_vec(),
        tokens: Vec::with_capacity(steps),
        logits: Vec::with_capacity(steps),
    };
    for step in 0..steps {
        let logits = ctx.get_logits_ith(at).to_vec();
        let token = LlamaToken(argmax(logits.iter().copied().enumerate()) as i32);
        trace.logits.push(logits);
        trace.tokens.push(token);
        if step + 1 < steps {
            batch.clear();
            add(&mut batch, token, prompt.len() + step, 0, true)?;
            decode(&mut ctx, &mut batch)?;
            at = 0;
        }
    }
    Ok(trace)
}

/// Decodes the traces' prompts together under `layout`, one token per sequence per step, and
/// compares every step's logits with the trace's.
pub fn compare_together(model: &Model, traces: &[Trace], layout: Layout) -> Result<Comparison> {
    let steps = traces.iter().map(|t| t.logits.len()).min().unwrap_or(0);
    let longest = traces.iter().map(|t| t.prompt.len()).max().unwrap_or(0);
    let n = traces.len() as u32;
    let cells = kv_cells(longest + steps, model.window(u32::MAX));
    let mut ctx = model.multi_context(cells, n, layout.unified_kv, layout.threads, false)?;
    let mut batch = LlamaBatch::new(N_BATCH.max(n) as usize, n as i32);
    let mut comparison = Comparison::empty(traces.len(), steps);
    let first = prefill(
        &mut ctx,
        &mut batch,
        traces,
        layout.prefill,
        &mut comparison,
    )?;
    for (i, logits) in first.iter().enumerate() {
        record(&mut comparison, i, 0, &traces[i].logits[0], logits);
    }
    let indexed: Vec<(usize, &Trace)> = traces.iter().enumerate().collect();
    for step in 1..steps {
        for group in indexed.chunks(layout.rows.max(1)) {
            batch.clear();
            for &(i, trace) in group {
                let pos = trace.prompt.len() + step - 1;
                add(&mut batch, trace.tokens[step - 1], pos, i as i32, true)?;
            }
            decode(&mut ctx, &mut batch)?;
            for (row, &(i, trace)) in group.iter().enumerate() {
                let got = ctx.get_logits_ith(row as i32);
                record(&mut comparison, i, step, &trace.logits[step], got);
            }
        }
    }
    Ok(comparison)
}

/// Embeds `texts` together, each its own sequence in one batch (all of them in one ubatch, as a
/// bidirectional model needs), and compares each pooled vector with the text embedded alone.
/// The context has room for [`MAX_SEQUENCES`] texts whatever their number, so one text through
/// it shows whether the context's size alone changes anything.
pub fn compare_embeddings(model: &Model, texts: &[&str], layout: Layout) -> Result<Comparison> {
    let setup = EmbedSetup {
        mode: EmbedMode::Query,
        n_ctx: u32::MAX,
        threads: layout.threads,
    };
    let window = model.window(setup.n_ctx);
    let n = texts.len() as u32;
    let capacity = n.max(MAX_SEQUENCES);
    let mut ctx = model.multi_context(window, capacity, layout.unified_kv, layout.threads, true)?;
    let tokens: Vec<_> = texts
        .iter()
        .map(|t| embedding_tokens(model, t, window))
        .collect();
    let mut batch = LlamaBatch::new(tokens.iter().map(Vec::len).sum(), n as i32);
    for (seq, tokens) in tokens.iter().enumerate() {
        for (pos, &token) in tokens.iter().enumerate() {
            add(&mut batch, token, pos, seq as i32, true)?;
        }
    }
    decode(&mut ctx, &mut batch)?;
    let mut comparison = Comparison::empty(texts.len(), 1);
    for (seq, text) in texts.iter().enumerate() {
        let alone = pooled(model, text, setup)?;
        let together = ctx
            .embeddings_seq_ith(seq as i32)
            .map_err(|e| Error::inference(format!("no pooled embedding: {e}")))?;
        record(&mut comparison, seq, 0, &alone, together);
    }
    Ok(comparison)
}

/// Feeds every prompt; returns each sequence's logits after its last prompt token.
fn prefill(
    ctx: &mut LlamaContext<'_>,
    batch: &mut LlamaBatch,
    traces: &[Trace],
    how: Prefill,
    comparison: &mut Comparison,
) -> Result<Vec<Vec<f32>>> {
    if how == Prefill::Together {
        return prefill_together(ctx, batch, traces);
    }
    let mut out = Vec::new();
    for (i, trace) in traces.iter().enumerate() {
        let earlier = traces[..i]
            .iter()
            .enumerate()
            .map(|(j, t)| (j as i32, t.prompt.as_slice()));
        let copied = match how {
            Prefill::Shared => prefix_source(earlier, &trace.prompt),
            Prefill::Copied(cells) if i > 0 => Some((0, cells)),
            _ => None,
        };
        let start = match copied {
            Some((from, cells)) => {
                copy_prefix(ctx, from, i as i32, cells)?;
                comparison.copied[i] = cells;
                cells
            }
            None => 0,
        };
        let at = feed_sequence(ctx, batch, &trace.prompt, start, i as i32)?;
        out.push(ctx.get_logits_ith(at).to_vec());
    }
    Ok(out)
}

fn prefill_together(
    ctx: &mut LlamaContext<'_>,
    batch: &mut LlamaBatch,
    traces: &[Trace],
) -> Result<Vec<Vec<f32>>> {
    let total: usize = traces.iter().map(|t| t.prompt.len()).sum();
    if total > N_BATCH as usize {
        return Err(Error::invalid(format!(
            "a mixed prefill of {total} tokens does not fit one batch of {N_BATCH}"
        )));
    }
    batch.clear();
    let mut last = Vec::new();
    for (i, trace) in traces.iter().enumerate() {
        for (pos, &token) in trace.prompt.iter().enumerate() {
            let is_last = pos + 1 == trace.prompt.len();
            add(batch, token, pos, i as i32, is_last)?;
        }
        last.push(batch.n_tokens() - 1);
    }
    decode(ctx, batch)?;
    Ok(last
        .iter()
        .map(|&at| ctx.get_logits_ith(at).to_vec())
        .collect())
}

fn record(comparison: &mut Comparison, seq: usize, step: usize, alone: &[f32], together: &[f32]) {
    let same_bits = alone.len() == together.len()
        && alone
            .iter()
            .zip(together)
            .all(|(a, b)| a.to_bits() == b.to_bits());
    if same_bits {
        return;
    }
    comparison.differing_steps += 1;
    comparison.first_difference.get_or_insert((seq, step));
    let worst = alone
        .iter()
        .zip(together)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    comparison.max_abs_difference = comparison.max_abs_difference.max(worst);
    let pick = |l: &[f32]| argmax(l.iter().copied().enumerate());
    if pick(alone) != pick(together) {
        comparison.differing_tokens += 1;
    }
}

fn add(
    batch: &mut LlamaBatch,
    token: LlamaToken,
    pos: usize,
    seq: i32,
    logits: bool,
) -> Result<()> {
    batch
        .add(token, pos as i32, &[seq], logits)
        .map_err(|e| Error::inference(e.to_string()))
}

fn decode(ctx: &mut LlamaContext<'_>, batch: &mut LlamaBatch) -> Result<()> {
    ctx.decode(batch)
        .map_err(|e| Error::inference(format!("decoding failed: {e}")))
}
