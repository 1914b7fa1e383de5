//! Text generation: the prompt through the model's chat template, greedy at temperature 0,
//! SteadyText's seeded sampler above it, stop strings, token streaming, and decoding under a
//! constraint.
//!
//! The window: the prompt must fit; the output gets what the window leaves, up to `max_tokens`
//! (a larger `max_tokens` is clamped, and [`Summary::clamped`] says so). No share of the window is
//! held back: the prompt is counted exactly as it is decoded (rendered through the template).

use std::collections::VecDeque;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::LlamaToken;

use crate::chat;
use crate::defaults::{EOS_SENTINEL, MIN_P, STOP_SEQUENCES, TOP_K, TOP_P};
use crate::engine::{Model, N_BATCH};
use crate::error::{Error, ErrorKind, Result};
use crate::structured::{Constraint, Guide};
use crate::text::{StopMatcher, Utf8Assembler};

/// KV cache sizes are rounded up to this many cells (llama.cpp's attention padding), so that a
/// request-sized context evaluates exactly like a full-sized one.
const KV_PAD: u32 = 256;

/// How to generate: greedy at temperature 0, seeded sampling above it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GenerateParams {
    /// Most tokens to produce (clamped to what the window leaves).
    pub max_new_tokens: usize,
    /// Seed of the `dist` sampler; no effect at temperature 0.
    pub seed: u32,
    /// 0 is greedy.
    pub temperature: f32,
    /// An extra stop string, or `[EOS]` for none.
    pub eos_string: String,
}

impl Default for GenerateParams {
    fn default() -> Self {
        Self {
            max_new_tokens: crate::defaults::MAX_NEW_TOKENS,
            seed: crate::defaults::SEED,
            temperature: crate::defaults::TEMPERATURE,
            eos_string: EOS_SENTINEL.to_string(),
        }
    }
}

impl GenerateParams {
    /// Stop strings for this request: the defaults plus `eos_string` unless it is the sentinel.
    pub fn stop_strings(&self) -> Vec<String> {
        let mut stops: Vec<String> = STOP_SEQUENCES.iter().map(|s| s.to_string()).collect();
        if self.eos_string != EOS_SENTINEL && !self.eos_string.is_empty() {
            stops.push(self.eos_string.clone());
        }
        stops
    }
}

/// One generation to start.
#[derive(Debug, Clone, Copy)]
pub struct Decode<'a> {
    /// The user's prompt (rendered through the chat template here).
    pub prompt: &'a str,
    /// Sampling and budget.
    pub params: &'a GenerateParams,
    /// A constraint on the output, if any.
    pub constraint: Option<&'a Constraint>,
    /// The requested context window (capped at the model's training window).
    pub n_ctx: u32,
    /// llama.cpp threads; the output does not depend on it.
    pub threads: i32,
}

/// What a finished generation reports besides its text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Tokens in the rendered prompt.
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub generated_tokens: usize,
    /// The budget used when `max_tokens` did not fit the window (what was left of it).
    pub clamped: Option<usize>,
    /// Whether the output ended by itself (an end-of-generation token, or a complete constrained
    /// value) rather than at the budget or a stop string.
    pub completed: bool,
}

/// Starts a generation; pieces arrive as the model decodes. Their concatenation is the unstripped
/// output. Dropping the stream stops generation. A constraint is compiled first, and a budget
/// smaller than its shortest output is an error before anything is decoded.
pub fn stream<'m>(model: &'m Model, decode: Decode<'_>) -> Result<TokenStream<'m>> {
    start(model, prepare(model, decode)?, decode.threads)
}

/// Evaluates a prepared generation's prompt in a context of its own.
pub(crate) fn start<'m>(
    model: &'m Model,
    prepared: Prepared<'m>,
    threads: i32,
) -> Result<TokenStream<'m>> {
    let Prepared {
        mut sequence,
        prompt,
        cells,
    } = prepared;
    let mut ctx = model.context(cells, threads, false)?;
    let mut batch = LlamaBatch::new(N_BATCH as usize, 1);
    sequence.prefilled(feed_prompt(&mut ctx, &mut batch, &prompt, 0)?);
    Ok(TokenStream {
        sequence,
        ctx,
        batch,
        finished: false,
    })
}

/// A generation checked and ready to decode, in a context of its own or in a shared batch.
pub(crate) struct Prepared<'m> {
    /// Everything but the context.
    pub sequence: Sequence<'m>,
    /// The rendered prompt.
    pub prompt: Vec<LlamaToken>,
    /// KV cells the generation needs (padded as [`kv_cells`] pads them).
    pub cells: u32,
}

/// Renders and counts the prompt, clamps the budget to the window and compiles the constraint:
/// every error a generation can have before decoding happens here.
pub(crate) fn prepare<'m>(model: &'m Model, decode: Decode<'_>) -> Result<Prepared<'m>> {
    let tokens = prompt_tokens(model, decode.prompt);
    let window = model.window(decode.n_ctx);
    if tokens.len() >= window as usize {
        return Err(Error::context_length(tokens.len(), window));
    }
    let room = window as usize - tokens.len();
    let budget = decode.params.max_new_tokens.min(room);
    let clamped = (budget < decode.params.max_new_tokens).then_some(budget);
    let guide = match decode.constraint {
        Some(c) => Some(Constrained::start(model.vocabulary()?.guide(c)?, budget)?),
        None => None,
    };
    let stops = if guide.is_some() {
        // The grammar decides where a constrained output ends.
        Vec::new()
    } else {
        decode.params.stop_strings()
    };
    let sequence = Sequence {
        model,
        sampler: sampler(decode.params),
        logits_at: -1,
        n_past: tokens.len() as i32,
        budget,
        utf8: Utf8Assembler::default(),
        stop: StopMatcher::new(stops),
        greedy: decode.params.temperature == 0.0,
        guide,
        summary: Summary {
            prompt_tokens: tokens.len(),
            clamped,
            ..Summary::default()
        },
    };
    Ok(Prepared {
        sequence,
        cells: kv_cells(tokens.len() + budget, window),
        prompt: tokens,
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

pub(crate) fn kv_cells(needed: usize, n_ctx: u32) -> u32 {
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

/// Evaluates the prompt `tokens` from position `start` on; only the last token asks for logits.
/// Returns its index in its chunk.
pub(crate) fn feed_prompt(
    ctx: &mut LlamaContext<'_>,
    batch: &mut LlamaBatch,
    tokens: &[LlamaToken],
    start: usize,
) -> Result<i32> {
    feed_sequence(ctx, batch, tokens, start, 0)
}

/// [`feed_prompt`] for sequence `seq` of a context that holds several. The chunks end at
/// multiples of `N_BATCH` whatever `start` is, as when the prompt is fed from its first token:
/// a prompt fed after a shared prefix (`batch::shareable_prefix`) then has its rows in calls
/// that end where the whole prompt's do.
pub(crate) fn feed_sequence(
    ctx: &mut LlamaContext<'_>,
    batch: &mut LlamaBatch,
    tokens: &[LlamaToken],
    start: usize,
    seq: i32,
) -> Result<i32> {
    if start >= tokens.len() {
        return Err(Error::inference("no prompt token left to evaluate"));
    }
    let chunk = N_BATCH as usize;
    let mut from = start;
    while from < tokens.len() {
        let to = ((from / chunk + 1) * chunk).min(tokens.len());
        batch.clear();
        for (pos, &token) in tokens.iter().enumerate().take(to).skip(from) {
            batch
                .add(token, pos as i32, &[seq], pos + 1 == tokens.len())
                .map_err(|e| Error::inference(e.to_string()))?;
        }
        ctx.decode(batch)
            .map_err(|e| Error::inference(format!("prompt evaluation failed: {e}")))?;
        from = to;
    }
    Ok(batch.n_tokens() - 1)
}

/// A constraint's guide plus a completion that is known to finish the output within what is
/// left of the budget. When the model's next token would leave too little room, that completion
/// is emitted instead and the model is not consulted again.
struct Constrained<'m> {
    guide: Guide<'m>,
    /// Whether a completion is known (the completer finds one for JSON structure, enums, choices
    /// and most patterns, not for grammars that cannot roll back; without one the budget is not
    /// guarded, and an output the budget cuts is an [`ErrorKind::Incomplete`] error, never
    /// returned).
    guarded: bool,
    /// Bytes that complete the output from the current state.
    completion: Vec<u8>,
    /// Those bytes as tokens.
    completion_tokens: Vec<u32>,
    /// Tokens left to emit once the completion has been forced.
    forced: Option<VecDeque<u32>>,
}

impl<'m> Constrained<'m> {
    fn start(mut guide: Guide<'m>, budget: usize) -> Result<Self> {
        let completion = if guide.rolls_back() {
            guide.completion()
        } else {
            None
        };
        let Some(completion) = completion else {
            return Ok(Constrained {
                guide,
                guarded: false,
                completion: Vec::new(),
                completion_tokens: Vec::new(),
                forced: None,
            });
        };
        let completion_tokens = guide.tokenize(&completion);
        if completion_tokens.len() > budget {
            return Err(Error::new(
                ErrorKind::Incomplete,
                format!(
                    "the constrained output needs at least {} tokens but max_tokens allows {budget}; \
                     raise max_tokens",
                    completion_tokens.len()
                ),
            ));
        }
        Ok(Constrained {
            guide,
            guarded: true,
            completion,
            completion_tokens,
            forced: None,
        })
    }

    /// Records `token` unless it would leave less than finishing needs; then the known
    /// completion is scheduled instead. Returns whether `token` was taken.
    fn take(&mut self, token: u32, left_after: usize) -> Result<bool> {
        self.guide.consume(token)?;
        if !self.guarded {
            return Ok(true);
        }
        if self.completion_tokens.len() <= left_after && self.guide.verifies(&self.completion) {
            return Ok(true);
        }
        if let Some(completion) = self.guide.completion() {
            let tokens = self.guide.tokenize(&completion);
            if tokens.len() <= left_after {
                self.completion = completion;
                self.completion_tokens = tokens;
                return Ok(true);
            }
        }
        self.guide.rollback_one(token)?;
        self.forced = Some(self.completion_tokens.iter().copied().collect());
        Ok(false)
    }

    /// The next token of the constrained output, `None` at its end.
    fn next(
        &mut self,
        logits: impl FnOnce() -> Vec<f32>,
        sampler: &mut LlamaSampler,
        greedy: bool,
        is_end: impl Fn(u32) -> bool,
        left: usize,
    ) -> Result<Option<u32>> {
        if let Some(forced) = self.forced.as_mut() {
            return Ok(forced.pop_front());
        }
        if self.guide.finished() {
            return Ok(None);
        }
        let token = pick_constrained(&logits(), &mut self.guide, sampler, greedy, &is_end)?;
        if is_end(token) {
            return Ok(None);
        }
        if self.take(token, left - 1)? {
            return Ok(Some(token));
        }
        Ok(self.forced.as_mut().and_then(VecDeque::pop_front))
    }
}

/// One generation's state between decode calls: its sampler, constraint, stop strings and
/// budget. It does not own a context, so that a [`TokenStream`] can give it one of its own and a
/// shared batch can decode it together with others; either way it reads its logits from the
/// context that last decoded it, at the row that context was told.
pub(crate) struct Sequence<'m> {
    model: &'m Model,
    sampler: LlamaSampler,
    logits_at: i32,
    n_past: i32,
    budget: usize,
    utf8: Utf8Assembler,
    stop: StopMatcher,
    greedy: bool,
    guide: Option<Constrained<'m>>,
    summary: Summary,
}

/// What one step of a [`Sequence`] produced.
pub(crate) enum Step {
    /// A token was chosen: the text it released (possibly empty), and the token to decode before
    /// the next step (`None` when the next step needs no logits: a forced completion, or the end).
    Token {
        text: String,
        feed: Option<LlamaToken>,
    },
    /// Generation is over; [`Sequence::flush`] has the rest of the text.
    End,
}

impl Sequence<'_> {
    /// What has happened so far (complete once the sequence has ended).
    pub fn summary(&self) -> Summary {
        self.summary
    }

    /// The prompt was evaluated; its last token's logits are at row `at`.
    pub fn prefilled(&mut self, at: i32) {
        self.logits_at = at;
    }

    /// The token of the last step was evaluated at [`Sequence::position`]; its logits are at row
    /// `at`.
    pub fn fed(&mut self, at: i32) {
        self.n_past += 1;
        self.logits_at = at;
    }

    /// Where the next fed token goes.
    pub fn position(&self) -> i32 {
        self.n_past
    }

    /// One token, chosen from `ctx`'s logits (the context that last evaluated this sequence).
    pub fn step(&mut self, ctx: &LlamaContext<'_>) -> Result<Step> {
        if self.stop.stopped() {
            return Ok(Step::End);
        }
        if self.summary.generated_tokens >= self.budget {
            // A constrained output that used up the budget is complete when the grammar may end
            // here (a forced completion always ends so).
            if let Some(c) = self.guide.as_mut() {
                self.summary.completed =
                    c.forced.is_some() || c.guide.finished() || c.guide.accepting()?;
            }
            return Ok(Step::End);
        }
        let Some(token) = self.next_token(ctx)? else {
            self.summary.completed = true;
            return Ok(Step::End);
        };
        self.summary.generated_tokens += 1;
        let piece = self.model.llama.vocab().token_to_piece(token, false, None);
        let text = self.stop.push(&self.utf8.push(&piece));
        let forcing = self.guide.as_ref().is_some_and(|g| g.forced.is_some());
        let more = !forcing && !self.stop.stopped() && self.summary.generated_tokens < self.budget;
        Ok(Step::Token {
            text,
            feed: more.then_some(token),
        })
    }

    /// The next token from the model (under the constraint, if any); `None` at its end.
    fn next_token(&mut self, ctx: &LlamaContext<'_>) -> Result<Option<LlamaToken>> {
        let vocab = self.model.llama.vocab();
        let is_end = |t: u32| vocab.is_eog(LlamaToken(t as i32));
        let Some(constrained) = self.guide.as_mut() else {
            // sample() also accepts the token into the sampler chain; accepting again would
            // corrupt its state.
            let token = self.sampler.sample(ctx, self.logits_at);
            return Ok((!vocab.is_eog(token)).then_some(token));
        };
        let at = self.logits_at;
        let left = self.budget - self.summary.generated_tokens;
        let token = constrained.next(
            || ctx.get_logits_ith(at).to_vec(),
            &mut self.sampler,
            self.greedy,
            is_end,
            left,
        )?;
        Ok(token.map(|t| LlamaToken(t as i32)))
    }

    /// The text held back at the end (an incomplete character, a prefix of a stop string).
    pub fn flush(&mut self) -> String {
        if self.stop.stopped() {
            return String::new();
        }
        let rest = self.utf8.finish();
        let mut out = self.stop.push(&rest);
        out.push_str(&self.stop.finish());
        out
    }
}

/// A generation in progress in a context of its own; yields text pieces that never split a
/// UTF-8 character and never contain a stop string.
pub struct TokenStream<'m> {
    sequence: Sequence<'m>,
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    finished: bool,
}

impl TokenStream<'_> {
    /// What has happened so far (complete once the stream is exhausted).
    pub fn summary(&self) -> Summary {
        self.sequence.summary()
    }

    /// One token: `Ok(None)` when generation is over, otherwise the text it released.
    fn step(&mut self) -> Result<Option<String>> {
        match self.sequence.step(&self.ctx)? {
            Step::End => Ok(None),
            Step::Token { text, feed } => {
                if let Some(token) = feed {
                    self.decode_one(token)?;
                }
                Ok(Some(text))
            }
        }
    }

    fn decode_one(&mut self, token: LlamaToken) -> Result<()> {
        self.batch.clear();
        self.batch
            .add(token, self.sequence.position(), &[0], true)
            .map_err(|e| Error::inference(e.to_string()))?;
        self.ctx
            .decode(&mut self.batch)
            .map_err(|e| Error::inference(format!("decoding failed: {e}")))?;
        self.sequence.fed(0);
        Ok(())
    }
}

/// The next token under the guide. Greedy decoding tries the unconstrained best token first and
/// computes the whole mask only when the guide rejects it (the choice is the same either way);
/// sampling draws from the masked distribution.
fn pick_constrained(
    logits: &[f32],
    guide: &mut Guide<'_>,
    sampler: &mut LlamaSampler,
    greedy: bool,
    is_end: &impl Fn(u32) -> bool,
) -> Result<u32> {
    if greedy {
        let best = argmax(logits.iter().copied().enumerate()) as u32;
        if guide.allows(best, is_end(best))? {
            return Ok(best);
        }
    }
    let mask = guide.mask()?;
    let allowed = |i: usize| mask.is_allowed(i as u32);
    if greedy {
        let best = argmax(
            logits
                .iter()
                .enumerate()
                .map(|(i, &l)| (i, if allowed(i) { l } else { f32::NEG_INFINITY })),
        );
        if !allowed(best) {
            return Err(Error::inference("the constraint allows no token here"));
        }
        return Ok(best as u32);
    }
    let mut all = LlamaTokenDataArray::from_iter(
        logits.iter().enumerate().map(|(i, &l)| {
            let l = if allowed(i) { l } else { f32::NEG_INFINITY };
            LlamaTokenData::new(LlamaToken(i as i32), l, 0.0)
        }),
        false,
    );
    sampler.apply(&mut all);
    let token = all
        .selected_token()
        .ok_or_else(|| Error::inference("the constraint allows no token here"))?;
    Ok(token.0 as u32)
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
                    let rest = self.sequence.flush();
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
pub(crate) fn argmax(values: impl Iterator<Item = (usize, f32)>) -> usize {
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

    #[test]
    fn eos_sentinel_adds_nothing() {
        let p = GenerateParams::default();
        assert_eq!(p.stop_strings().len(), 4);
        let p = GenerateParams {
            eos_string: "END".into(),
            ..Default::default()
        };
        assert_eq!(p.stop_strings().last().unwrap(), "END");
    }
}
