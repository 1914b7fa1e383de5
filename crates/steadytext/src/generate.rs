//! Text generation: the prompt through the model's chat template, greedy at temperature 0,
//! SteadyText's seeded sampler above it, stop strings, and token streaming.
//!
//! [`generate`] is [`stream`] collected and stripped, so streamed and non-streamed output can
//! never disagree.

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::LlamaToken;

use crate::chat;
use crate::engine::{default_threads, Model, N_BATCH};
use crate::error::{Error, Result};
use crate::grammar::Constraint;
use crate::params::{GenerateParams, MIN_P, TOP_K, TOP_P};
use crate::text::{StopMatcher, Utf8Assembler};

/// Share of the context window kept free, as SteadyText's context check does.
const RESERVED_FRACTION: u32 = 10;
/// KV cache sizes are rounded up to this many cells (llama.cpp's attention padding), so that a
/// request-sized context evaluates exactly like a full-sized one.
const KV_PAD: u32 = 256;

/// Generates text for `prompt`, stripped of surrounding whitespace.
pub fn generate(model: &Model, prompt: &str, params: &GenerateParams) -> Result<String> {
    let mut text = String::new();
    for piece in stream(model, prompt, params)? {
        text.push_str(&piece?);
    }
    Ok(text.trim().to_string())
}

/// Generates text that satisfies `constraint` (see [`stream_constrained`]), stripped.
pub fn generate_constrained(
    model: &Model,
    prompt: &str,
    params: &GenerateParams,
    constraint: &Constraint,
) -> Result<String> {
    let mut stream = stream_constrained(model, prompt, params, constraint, true)?;
    let mut text = String::new();
    for piece in stream.by_ref() {
        text.push_str(&piece?);
    }
    if !stream.completed() {
        return Err(Error::Incomplete {
            max_new_tokens: params.max_new_tokens,
        });
    }
    Ok(text.trim().to_string())
}

/// Starts generating; pieces arrive as the model decodes. Their concatenation is the unstripped
/// output. Dropping the stream stops generation.
pub fn stream<'m>(
    model: &'m Model,
    prompt: &str,
    params: &GenerateParams,
) -> Result<TokenStream<'m>> {
    start(model, prompt, params, None, false)
}

/// Starts a generation whose every token keeps the output inside `constraint`'s grammar. The
/// grammar is built and checked before anything is decoded. With `best_first` (greedy decoding
/// only), the unconstrained best token is tried against the grammar first and the whole
/// vocabulary is filtered only when it is rejected; the output is the same either way.
pub fn stream_constrained<'m>(
    model: &'m Model,
    prompt: &str,
    params: &GenerateParams,
    constraint: &Constraint,
    best_first: bool,
) -> Result<TokenStream<'m>> {
    let gbnf = constraint.to_gbnf()?;
    let grammar = LlamaSampler::grammar(&model.llama, &gbnf, "root").map_err(|e| {
        Error::InvalidArgument(format!("the grammar for this constraint is invalid: {e}"))
    })?;
    start(model, prompt, params, Some(grammar), best_first)
}

/// Builds `constraint`'s grammar for `model` without decoding: an error here is what
/// [`stream_constrained`] would return.
pub fn check_constraint(model: &Model, constraint: &Constraint) -> Result<()> {
    let gbnf = constraint.to_gbnf()?;
    LlamaSampler::grammar(&model.llama, &gbnf, "root")
        .map(drop)
        .map_err(|e| {
            Error::InvalidArgument(format!("the grammar for this constraint is invalid: {e}"))
        })
}

fn start<'m>(
    model: &'m Model,
    prompt: &str,
    params: &GenerateParams,
    grammar: Option<LlamaSampler>,
    best_first: bool,
) -> Result<TokenStream<'m>> {
    params.validate()?;
    let tokens = prompt_tokens(model, prompt);
    check_context(model, tokens.len(), params.max_new_tokens)?;
    let threads = params.threads.unwrap_or_else(default_threads);
    let kv = kv_cells(tokens.len() + params.max_new_tokens, model.n_ctx());
    let mut ctx = model.context(kv, threads, false)?;
    let mut batch = LlamaBatch::new(N_BATCH as usize, 1);
    let last_logits = feed_prompt(&mut ctx, &mut batch, &tokens)?;
    Ok(TokenStream {
        model,
        ctx,
        batch,
        sampler: sampler(params),
        logits_at: last_logits,
        n_past: tokens.len() as i32,
        prompt_tokens: tokens.len(),
        generated: 0,
        max_new_tokens: params.max_new_tokens,
        utf8: Utf8Assembler::default(),
        stop: StopMatcher::new(params.stop_strings()),
        finished: false,
        grammar,
        greedy: params.temperature == 0.0,
        best_first,
        completed: false,
    })
}

/// The rendered prompt as tokens.
pub fn prompt_tokens(model: &Model, prompt: &str) -> Vec<LlamaToken> {
    let vocab = model.llama.vocab();
    let bos = model.token_text(vocab.bos());
    let eos = model.token_text(vocab.eos());
    let text = match model.chat_template() {
        Some(template) => chat::render(template, prompt, &bos, &eos).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "chat template failed to render; using ChatML");
            chat::chatml(prompt)
        }),
        None => chat::chatml(prompt),
    };
    // Templates that write the BOS token themselves must not get a second one.
    let add_bos = vocab.should_add_bos() && (bos.is_empty() || !text.starts_with(&bos));
    vocab.tokenize(text.as_bytes(), add_bos, true)
}

fn check_context(model: &Model, input_tokens: usize, max_new_tokens: usize) -> Result<()> {
    let n_ctx = model.n_ctx();
    let room = (n_ctx - n_ctx / RESERVED_FRACTION) as usize;
    let max_input_tokens = room.saturating_sub(max_new_tokens);
    if input_tokens > max_input_tokens {
        return Err(Error::ContextLengthExceeded {
            input_tokens,
            max_input_tokens,
            n_ctx,
            max_new_tokens,
        });
    }
    Ok(())
}

fn kv_cells(needed: usize, n_ctx: u32) -> u32 {
    let padded = (needed as u32).div_ceil(KV_PAD) * KV_PAD;
    padded.clamp(KV_PAD, n_ctx.max(KV_PAD))
}

fn sampler(params: &GenerateParams) -> LlamaSampler {
    if params.temperature == 0.0 {
        return LlamaSampler::greedy();
    }
    LlamaSampler::chain_simple([
        LlamaSampler::top_k(TOP_K),
        LlamaSampler::top_p(TOP_P, 1),
        LlamaSampler::min_p(MIN_P, 1),
        LlamaSampler::temp(params.temperature),
        LlamaSampler::dist(params.seed),
    ])
}

/// Evaluates the prompt in `N_BATCH` chunks; returns the batch index holding the last logits.
fn feed_prompt(
    ctx: &mut LlamaContext<'_>,
    batch: &mut LlamaBatch,
    tokens: &[LlamaToken],
) -> Result<i32> {
    let chunks = tokens.chunks(N_BATCH as usize);
    let n_chunks = chunks.len();
    for (c, chunk) in chunks.enumerate() {
        batch.clear();
        for (i, &token) in chunk.iter().enumerate() {
            let pos = (c * N_BATCH as usize + i) as i32;
            let last = c + 1 == n_chunks && i + 1 == chunk.len();
            batch
                .add(token, pos, &[0], last)
                .map_err(|e| Error::Inference(e.to_string()))?;
        }
        ctx.decode(batch)
            .map_err(|e| Error::Inference(format!("prompt evaluation failed: {e}")))?;
    }
    Ok(batch.n_tokens() - 1)
}

/// A generation in progress; yields text pieces that never split a UTF-8 character and never
/// contain a stop string.
pub struct TokenStream<'m> {
    model: &'m Model,
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    sampler: LlamaSampler,
    logits_at: i32,
    n_past: i32,
    prompt_tokens: usize,
    generated: usize,
    max_new_tokens: usize,
    utf8: Utf8Assembler,
    stop: StopMatcher,
    finished: bool,
    /// The constraint's grammar sampler, if any.
    grammar: Option<LlamaSampler>,
    greedy: bool,
    best_first: bool,
    /// Whether the model ended the output itself (an end-of-generation token), rather than
    /// running out of tokens or hitting a stop string.
    completed: bool,
}

impl TokenStream<'_> {
    /// Tokens in the rendered prompt.
    pub fn prompt_tokens(&self) -> usize {
        self.prompt_tokens
    }

    /// Tokens generated so far.
    pub fn generated_tokens(&self) -> usize {
        self.generated
    }

    /// Whether the model ended the output itself; under a constraint, that the grammar is
    /// complete.
    pub fn completed(&self) -> bool {
        self.completed
    }

    /// One token: `Ok(None)` when generation is over, otherwise the text it released.
    fn step(&mut self) -> Result<Option<String>> {
        if self.stop.stopped() || self.generated >= self.max_new_tokens {
            return Ok(None);
        }
        let token = if self.grammar.is_some() {
            self.pick_constrained()?
        } else {
            // sample() also accepts the token into the sampler chain; accepting again would
            // corrupt its state.
            self.sampler.sample(&self.ctx, self.logits_at)
        };
        let vocab = self.model.llama.vocab();
        if vocab.is_eog(token) {
            self.completed = true;
            return Ok(None);
        }
        self.generated += 1;
        let text = self.utf8.push(&vocab.token_to_piece(token, false, None));
        let out = self.stop.push(&text);
        if !self.stop.stopped() && self.generated < self.max_new_tokens {
            self.decode_one(token)?;
        }
        Ok(Some(out))
    }

    /// The next token under the grammar, accepted into it. Never calls `sample()` on the
    /// grammar (it accepts internally, and a second accept aborts llama.cpp).
    fn pick_constrained(&mut self) -> Result<LlamaToken> {
        let logits = self.ctx.get_logits_ith(self.logits_at);
        let grammar = self.grammar.as_mut().expect("a constrained stream");
        let mut token = None;
        if self.greedy && self.best_first {
            let best = argmax(logits.iter().copied().enumerate());
            let mut one = LlamaTokenDataArray::new(
                vec![LlamaTokenData::new(
                    LlamaToken(best as i32),
                    logits[best],
                    0.0,
                )],
                false,
            );
            grammar.apply(&mut one);
            if one.data[0].logit().is_finite() {
                token = Some(LlamaToken(best as i32));
            }
        }
        let token = match token {
            Some(t) => t,
            None => {
                let mut all = LlamaTokenDataArray::from_iter(
                    logits
                        .iter()
                        .enumerate()
                        .map(|(i, &l)| LlamaTokenData::new(LlamaToken(i as i32), l, 0.0)),
                    false,
                );
                grammar.apply(&mut all);
                if self.greedy {
                    let allowed = all.data.iter().map(|d| d.logit()).enumerate();
                    let best = argmax(allowed);
                    if !all.data[best].logit().is_finite() {
                        return Err(Error::Inference("the grammar allows no token here".into()));
                    }
                    all.data[best].id()
                } else {
                    self.sampler.apply(&mut all);
                    all.selected_token().ok_or_else(|| {
                        Error::Inference("the grammar allows no token here".into())
                    })?
                }
            }
        };
        grammar
            .try_accept(token)
            .map_err(|e| Error::Inference(format!("the grammar rejected a token: {e}")))?;
        Ok(token)
    }

    fn decode_one(&mut self, token: LlamaToken) -> Result<()> {
        self.batch.clear();
        self.batch
            .add(token, self.n_past, &[0], true)
            .map_err(|e| Error::Inference(e.to_string()))?;
        self.ctx
            .decode(&mut self.batch)
            .map_err(|e| Error::Inference(format!("decoding failed: {e}")))?;
        self.n_past += 1;
        self.logits_at = 0;
        Ok(())
    }

    fn flush(&mut self) -> String {
        if self.stop.stopped() {
            return String::new();
        }
        let rest = self.utf8.finish();
        let mut out = self.stop.push(&rest);
        out.push_str(&self.stop.finish());
        out
    }
}

impl Iterator for TokenStream<'_> {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.finished {
            match self.step() {
                Ok(Some(piece)) if piece.is_empty() => continue,
                Ok(Some(piece)) => return Some(Ok(piece)),
                Ok(None) => {
                    self.finished = true;
                    let rest = self.flush();
                    return (!rest.is_empty()).then_some(Ok(rest));
                }
                Err(e) => {
                    self.finished = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

/// Index of the largest value; the first one on ties (as llama.cpp's greedy sampler).
fn argmax(values: impl Iterator<Item = (usize, f32)>) -> usize {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, v) in values {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_cells_are_padded_and_capped() {
        assert_eq!(kv_cells(1, 4096), 256);
        assert_eq!(kv_cells(257, 4096), 512);
        assert_eq!(kv_cells(100_000, 4096), 4096);
    }
}
