//! Continuous batching: concurrent generations on one model decoded together, one llama.cpp call
//! per step for several of them, only where that is proven to give every sequence the bits it
//! gets alone (`docs/batch-invariance.md`).
//!
//! Each model that may batch gets one context with [`MAX_SEQUENCES`] KV streams (one per
//! sequence, never a unified cache, so a sequence's cells start at 0 as they do alone). A
//! generation that joins is prefilled in decode calls of its own (never mixed with other
//! sequences' rows); then every step decodes one token per sequence, at most
//! [`Model::batch_rows`] sequences per call, and each sequence chooses its next token right
//! after the call that produced its logits. A sequence leaves when it ends or its execution is
//! dropped (a cancelled request), and its stream is emptied for the next one.
//!
//! A prompt that begins like one already in the batch (the chat template's system prompt, a
//! shared instruction) copies that sequence's KV cells for the part [`shareable_prefix`] allows
//! and is prefilled from there: those cells, and the rows evaluated after them, have the bits
//! the prompt's own prefill gives them.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ffi::CString;
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;

use crate::engine::{Engine, Model, N_BATCH};
use crate::error::{Error, Result};
use crate::execute::{Execution, Executor};
use crate::generate::{self, feed_sequence, Prepared, Sequence, Step, Summary};
use crate::local::{decode_of, Generation, Local, Pieces};
use crate::request::Request;

/// The most sequences one model's batch holds.
pub const MAX_SEQUENCES: u32 = 8;

/// KV cells each batched sequence may use; a generation that needs more (prompt plus budget,
/// padded) runs in a context of its own.
pub const CELLS_PER_SEQUENCE: u32 = 2048;

/// A repacked product (Q4_K on AVX2) runs its GEMM kernel on groups of four rows counted from
/// the first row of the call and its GEMV kernel on the rest: a prompt fed from a shared prefix
/// keeps every row in the kernel it gets when fed whole only if the prefix is a multiple of four.
const ROW_GROUP: usize = 4;

/// llama.cpp's tiled K-quant product (Q6_K) runs on calls of eight rows or more and the per-row
/// dot product on fewer, and the two round differently: the rest of a prompt after a shared
/// prefix must be evaluated in a call at least this long, as the whole prompt is.
const TILED_ROWS: usize = 8;

/// Architectures whose batched decoding has been compared with decoding alone (the test
/// fixtures: SmolLM2 is `llama`, Qwen2.5-Coder is `qwen2`). Others have other attention layouts
/// (sliding windows, other KV caches) and are not batched until a test covers them.
const PROVEN_ARCHITECTURES: &[&str] = &["llama", "qwen2"];

/// Tensor types (`ggml_type`) of the generation fixtures, proven up to [`MAX_SEQUENCES`] rows per
/// call. SmolLM2 Q4_1's have no repacked form on x86-64 with AVX2: each row goes through the same
/// dot product (or llamafile tile, which accumulates each output alone) whatever the other rows
/// are. Qwen2.5-Coder Q4_K_M's Q4_K is repacked, and llama.cpp's GEMM kernel for four rows rounds
/// in another order than the GEMV kernel one row gets; `patches/llama-cpp-sys-2` gives a decode
/// step of several sequences a GEMM kernel that rounds as GEMV does. (Q4_0, IQ4_NL and MXFP4 are
/// repacked too; the patch sends their rows through GEMV one by one, but no fixture proves it.)
const PROVEN_TYPES: &[u32] = &[
    0,  // F32
    3,  // Q4_1
    8,  // Q8_0
    12, // Q4_K
    14, // Q6_K
];

/// How many sequences one decode call may carry for the model file at `path` with architecture
/// `arch` and `experts` experts per layer (0 for a dense model): see [`rows_for`].
pub(crate) fn proven_rows(path: &Path, arch: &str, experts: u32) -> u32 {
    let pinned_target = cfg!(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        not(target_feature = "avx512f")
    ));
    tensor_types(path).map_or(1, |types| rows_for(arch, &types, experts, pinned_target))
}

/// [`MAX_SEQUENCES`] for a model kind the fixtures prove, 1 (never batched) for anything else:
/// another architecture, another weight type, another CPU target than the pinned x86-64-v3, or
/// a mixture of experts (`llama` covers Mixtral too): expert products (`ggml_mul_mat_id`) are
/// not marked by the patch, and eight rows routed to one expert take llama.cpp's tiles.
fn rows_for(arch: &str, types: &[u32], experts: u32, pinned_target: bool) -> u32 {
    let proven = pinned_target
        && experts == 0
        && PROVEN_ARCHITECTURES.contains(&arch)
        && types.iter().all(|t| PROVEN_TYPES.contains(t));
    if proven {
        MAX_SEQUENCES
    } else {
        1
    }
}

/// The `ggml_type` of every tensor in a GGUF file, read from its header.
pub(crate) fn tensor_types(path: &Path) -> Option<Vec<u32>> {
    let name = CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let params = llama_cpp_sys_2::gguf_init_params {
        no_alloc: true,
        ctx: std::ptr::null_mut(),
    };
    // SAFETY: `name` is a valid C string; with `no_alloc` and no ggml context requested, the
    // call only parses the header; the returned context is freed below and not used after.
    unsafe {
        let gguf = llama_cpp_sys_2::gguf_init_from_file(name.as_ptr(), params);
        if gguf.is_null() {
            return None;
        }
        let n = llama_cpp_sys_2::gguf_get_n_tensors(gguf);
        let types = (0..n)
            .map(|i| llama_cpp_sys_2::gguf_get_tensor_type(gguf, i) as u32)
            .collect();
        llama_cpp_sys_2::gguf_free(gguf);
        Some(types)
    }
}

/// How many of `prompt`'s first tokens may take their KV cells from a sequence whose prompt is
/// `source`, so that the cells and the logits after the rest of the prompt are bit for bit
/// those of feeding `prompt` whole: 0 when nothing may be shared. Prompts are fed in chunks that
/// end at multiples of `N_BATCH` (`generate::feed_sequence`). The prefix
/// - is common to both and a multiple of [`ROW_GROUP`], and leaves a token to evaluate;
/// - ends a chunk, or has at least [`TILED_ROWS`] rows in the chunk where it ends, so that chunk
///   had the tiles in the source's prefill and has them in the prompt's (a source of 5 tokens
///   computed its first 4 without them);
/// - leaves a first call that starts a chunk or has [`TILED_ROWS`] rows, as the whole prompt's
///   call for those rows has.
///
/// The invariance tests prove it on both generation fixtures, and that the first and last
/// conditions are needed on the repacked one.
pub(crate) fn shareable_prefix(source: &[LlamaToken], prompt: &[LlamaToken]) -> usize {
    let common = source
        .iter()
        .zip(prompt)
        .take_while(|(a, b)| a == b)
        .count()
        .min(prompt.len().saturating_sub(1));
    let chunk = N_BATCH as usize;
    let same_calls = |prefix: usize| {
        let in_chunk = prefix % chunk;
        let first_call_end = (prefix - in_chunk + chunk).min(prompt.len());
        in_chunk == 0 || (in_chunk >= TILED_ROWS && first_call_end - prefix >= TILED_ROWS)
    };
    let mut prefix = common - common % ROW_GROUP;
    while prefix > 0 && !same_calls(prefix) {
        prefix -= ROW_GROUP;
    }
    prefix
}

/// Of the `running` sequences (stream, prompt), the one `prompt` shares the longest prefix with,
/// and that prefix's length; `None` when none shares any.
pub(crate) fn prefix_source<'a>(
    running: impl IntoIterator<Item = (i32, &'a [LlamaToken])>,
    prompt: &[LlamaToken],
) -> Option<(i32, usize)> {
    running
        .into_iter()
        .map(|(stream, source)| (stream, shareable_prefix(source, prompt)))
        .filter(|&(_, shared)| shared > 0)
        .max_by_key(|&(stream, shared)| (shared, std::cmp::Reverse(stream)))
}

/// Runs generations in shared batches where the model allows it, everything else as [`Local`]
/// does. Single-threaded: executions share their batch through `Rc`, so all of them are advanced
/// by the thread that made them (the daemon's inference thread).
pub struct Batched {
    local: Local,
    batches: RefCell<HashMap<usize, Rc<RefCell<Shared>>>>,
    /// Models whose batch context could not be made (memory): their generations run alone.
    unavailable: RefCell<HashSet<usize>>,
    /// Whether the last execution started joined a batch.
    joined: Cell<bool>,
}

impl Batched {
    /// An executor with `threads` llama.cpp threads (the output does not depend on it).
    pub fn new(threads: i32) -> Self {
        Batched {
            local: Local::new(threads),
            batches: RefCell::new(HashMap::new()),
            unavailable: RefCell::new(HashSet::new()),
            joined: Cell::new(false),
        }
    }

    /// Whether `request` may join a shared batch: a generation on a model that batches. Whether
    /// it does is known once it starts ([`Batched::take_joined`]): one that needs more KV cells
    /// than a sequence has runs alone.
    pub fn joins(&self, request: &Request) -> bool {
        let Request::Generate(r) = request else {
            return false;
        };
        let Ok(model) = Engine::global().model(&r.model) else {
            return false;
        };
        model.batch_rows() > 1
    }

    /// Whether the execution started last joined a batch (and forgets it).
    pub fn take_joined(&self) -> bool {
        self.joined.replace(false)
    }

    /// The most sequences one decode call has carried so far, over every model.
    pub fn most_rows(&self) -> usize {
        self.batches
            .borrow()
            .values()
            .map(|b| b.borrow().most_rows)
            .max()
            .unwrap_or(0)
    }

    /// The prompt positions whose KV cells were copied from a running sequence so far, over
    /// every model.
    pub fn shared_cells(&self) -> usize {
        self.batches
            .borrow()
            .values()
            .map(|b| b.borrow().shared_cells)
            .sum()
    }

    /// The model's batch, made on first use; `None` when its context cannot be made.
    fn shared(&self, model: &'static Model) -> Option<Rc<RefCell<Shared>>> {
        let key = model as *const Model as usize;
        if let Some(shared) = self.batches.borrow().get(&key) {
            return Some(shared.clone());
        }
        if self.unavailable.borrow().contains(&key) {
            return None;
        }
        match Shared::new(model, self.local.threads) {
            Ok(shared) => {
                let shared = Rc::new(RefCell::new(shared));
                self.batches.borrow_mut().insert(key, shared.clone());
                Some(shared)
            }
            Err(e) => {
                tracing::warn!(model = %model.path().display(), error = %e,
                    "no context for a batch; this model's generations run one at a time");
                self.unavailable.borrow_mut().insert(key);
                None
            }
        }
    }
}

impl Executor for Batched {
    fn execute(&self, request: Request, streaming: bool) -> Result<Box<dyn Execution + '_>> {
        self.joined.set(false);
        let Request::Generate(r) = &request else {
            return self.local.execute(request, streaming);
        };
        let model = Engine::global().model(&r.model)?;
        if model.batch_rows() <= 1 {
            return self.local.execute(request, streaming);
        }
        let threads = self.local.threads;
        let prepared = generate::prepare(model, decode_of(r, threads))?;
        let constrained = r.constraint.is_some();
        let shared = match self.shared(model) {
            Some(shared) if prepared.cells <= CELLS_PER_SEQUENCE => shared,
            _ => {
                return Ok(Box::new(Generation::alone(
                    model,
                    prepared,
                    constrained,
                    threads,
                )?))
            }
        };
        let seat = shared.borrow_mut().join(prepared)?;
        self.joined.set(true);
        let member = Member {
            shared,
            seat,
            summary: Summary::default(),
            ended: false,
        };
        Ok(Box::new(Generation::new(Box::new(member), constrained)))
    }
}

/// What a sequence has produced and its caller has not taken yet.
enum Event {
    Piece(String),
    End(Summary),
    Failed(Error),
}

/// Where a sequence is.
enum State {
    /// Its prompt is still to be evaluated.
    Joining,
    /// It chose a token; the token to decode next, if any.
    Chosen(Option<LlamaToken>),
    /// It ended (its events may still be waiting).
    Over,
}

struct Seat {
    sequence: Sequence<'static>,
    prompt: Vec<LlamaToken>,
    state: State,
    events: VecDeque<Event>,
}

/// One model's batch: its context, and a seat per sequence (the seat's key is its KV stream).
struct Shared {
    ctx: LlamaContext<'static>,
    batch: LlamaBatch<'static>,
    rows: usize,
    seats: BTreeMap<i32, Seat>,
    /// The most sequences one decode call has carried.
    most_rows: usize,
    /// Prompt positions whose KV cells were copied instead of evaluated.
    shared_cells: usize,
}

impl Shared {
    fn new(model: &'static Model, threads: i32) -> Result<Self> {
        let ctx = model.multi_context(CELLS_PER_SEQUENCE, MAX_SEQUENCES, false, threads, false)?;
        Ok(Shared {
            ctx,
            batch: LlamaBatch::new(N_BATCH as usize, MAX_SEQUENCES as i32),
            rows: model.batch_rows() as usize,
            seats: BTreeMap::new(),
            most_rows: 0,
            shared_cells: 0,
        })
    }

    /// Takes the lowest free stream (low, adjacent streams let llama.cpp put the sequences of a
    /// step in one ubatch).
    fn join(&mut self, prepared: Prepared<'static>) -> Result<i32> {
        let free = (0..MAX_SEQUENCES as i32).find(|s| !self.seats.contains_key(s));
        let Some(id) = free else {
            return Err(Error::new(
                crate::error::ErrorKind::Busy,
                format!("the batch already runs {MAX_SEQUENCES} generations"),
            ));
        };
        self.seats.insert(
            id,
            Seat {
                sequence: prepared.sequence,
                prompt: prepared.prompt,
                state: State::Joining,
                events: VecDeque::new(),
            },
        );
        Ok(id)
    }

    fn leave(&mut self, id: i32) {
        self.seats.remove(&id);
        self.empty_stream(id);
    }

    fn empty_stream(&mut self, id: i32) {
        // Removing every cell also moves the stream's head back to 0, so the next sequence's
        // cells start where they would alone.
        let _ = self.ctx.clear_kv_cache_seq(Some(id as u32), None, None);
    }

    /// One step of every sequence: prefill the ones that joined, then decode the chosen tokens
    /// in calls of at most `rows` sequences, each sequence choosing again right after its call
    /// (the context keeps only the last call's logits).
    fn step(&mut self) {
        let joining: Vec<i32> = self
            .seats
            .iter()
            .filter(|(_, s)| matches!(s.state, State::Joining))
            .map(|(&id, _)| id)
            .collect();
        for id in joining {
            self.prefill(id);
        }
        let mut feeding = Vec::new();
        let mut forced = Vec::new();
        for (&id, seat) in &self.seats {
            match seat.state {
                State::Chosen(Some(token)) => feeding.push((id, token, seat.sequence.position())),
                State::Chosen(None) => forced.push(id),
                _ => {}
            }
        }
        for id in forced {
            self.choose(id);
        }
        for group in feeding.chunks(self.rows) {
            self.decode(group);
        }
    }

    fn prefill(&mut self, id: i32) {
        // It stays Joining (so not a source of cells) until `choose` or `fail` moves it on.
        let Some(seat) = self.seats.get(&id) else {
            return;
        };
        if !matches!(seat.state, State::Joining) {
            return;
        }
        let prompt = seat.prompt.clone();
        let started = Instant::now();
        let fed = self.share_prefix(id, &prompt).and_then(|shared| {
            let at = feed_sequence(&mut self.ctx, &mut self.batch, &prompt, shared, id)?;
            Ok((shared, at))
        });
        match fed {
            Ok((shared, at)) => {
                // With `st -vv daemon run` or STEADYTEXT_LOG=debug: where a batch's time goes.
                tracing::debug!(
                    sequence = id,
                    tokens = prompt.len(),
                    shared,
                    ms = millis(started),
                    "prefill"
                );
                if let Some(seat) = self.seats.get_mut(&id) {
                    seat.sequence.prefilled(at);
                }
                self.choose(id);
            }
            Err(e) => self.fail(&[id], e),
        }
    }

    /// Copies into `id`'s stream the KV cells of the longest prefix of `prompt` a running
    /// sequence can give it; returns the prompt position to evaluate from (0: none shared).
    fn share_prefix(&mut self, id: i32, prompt: &[LlamaToken]) -> Result<usize> {
        let running = self
            .seats
            .iter()
            .filter(|(_, seat)| matches!(seat.state, State::Chosen(_)))
            .map(|(&other, seat)| (other, seat.prompt.as_slice()));
        let Some((source, shared)) = prefix_source(running, prompt) else {
            return Ok(0);
        };
        copy_prefix(&mut self.ctx, source, id, shared)?;
        self.shared_cells += shared;
        Ok(shared)
    }

    fn decode(&mut self, group: &[(i32, LlamaToken, i32)]) {
        self.most_rows = self.most_rows.max(group.len());
        let started = Instant::now();
        if let Err(e) = self.evaluate(group) {
            let ids: Vec<i32> = group.iter().map(|g| g.0).collect();
            return self.fail(&ids, e);
        }
        tracing::debug!(rows = group.len(), ms = millis(started), "decode call");
        for (row, &(id, _, _)) in group.iter().enumerate() {
            if let Some(seat) = self.seats.get_mut(&id) {
                seat.sequence.fed(row as i32);
            }
            self.choose(id);
        }
    }

    /// One decode call for the group's tokens.
    fn evaluate(&mut self, group: &[(i32, LlamaToken, i32)]) -> Result<()> {
        self.batch.clear();
        for &(id, token, pos) in group {
            self.batch
                .add(token, pos, &[id], true)
                .map_err(|e| Error::inference(e.to_string()))?;
        }
        self.ctx
            .decode(&mut self.batch)
            .map_err(|e| Error::inference(format!("decoding failed: {e}")))
    }

    /// The sequence's next token, from the logits of the call that last evaluated it.
    fn choose(&mut self, id: i32) {
        let Some(seat) = self.seats.get_mut(&id) else {
            return;
        };
        match seat.sequence.step(&self.ctx) {
            Ok(Step::Token { text, feed }) => {
                seat.events.push_back(Event::Piece(text));
                seat.state = State::Chosen(feed);
            }
            Ok(Step::End) => {
                let rest = seat.sequence.flush();
                seat.events.push_back(Event::Piece(rest));
                seat.events.push_back(Event::End(seat.sequence.summary()));
                seat.state = State::Over;
                self.empty_stream(id);
            }
            Err(e) => self.fail(&[id], e),
        }
    }

    fn fail(&mut self, ids: &[i32], error: Error) {
        for &id in ids {
            if let Some(seat) = self.seats.get_mut(&id) {
                seat.events.push_back(Event::Failed(error.clone()));
                seat.state = State::Over;
            }
            self.empty_stream(id);
        }
    }
}

/// One generation's place in a shared batch. Asking it for a piece runs a step of the whole
/// batch when it has none waiting; dropping it frees its stream.
struct Member {
    shared: Rc<RefCell<Shared>>,
    seat: i32,
    summary: Summary,
    ended: bool,
}

impl Pieces for Member {
    fn next_piece(&mut self) -> Option<Result<String>> {
        if self.ended {
            return None;
        }
        let mut shared = self.shared.borrow_mut();
        let idle = shared
            .seats
            .get(&self.seat)
            .is_none_or(|s| s.events.is_empty());
        if idle {
            shared.step();
        }
        let event = shared
            .seats
            .get_mut(&self.seat)
            .and_then(|s| s.events.pop_front());
        match event {
            Some(Event::Piece(text)) => Some(Ok(text)),
            Some(Event::End(summary)) => {
                self.summary = summary;
                self.ended = true;
                None
            }
            Some(Event::Failed(e)) => {
                self.ended = true;
                Some(Err(e))
            }
            None => {
                self.ended = true;
                Some(Err(Error::inference("the batch lost this generation")))
            }
        }
    }

    fn summary(&self) -> Summary {
        self.summary
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.shared.borrow_mut().leave(self.seat);
    }
}

/// Gives sequence `to` (an empty stream) the KV cells of `from`'s first `cells` positions.
/// llama.cpp copies a whole stream between streams; the cells after the prefix are then
/// removed, which also puts the stream's head right after the prefix, where the prompt's own
/// prefill would put the next token. The buffer is copied at the start of the next decode call,
/// before it computes anything: `from`'s cells can only change in a decode call, so the copy
/// is of the cells as they are now.
pub(crate) fn copy_prefix(
    ctx: &mut LlamaContext<'_>,
    from: i32,
    to: i32,
    cells: usize,
) -> Result<()> {
    let failed = |e: &dyn std::fmt::Display| Error::inference(format!("sharing a prefix: {e}"));
    ctx.copy_kv_cache_seq(from, to, None, None)
        .map_err(|e| failed(&e))?;
    let removed = ctx
        .clear_kv_cache_seq(Some(to as u32), Some(cells as u32), None)
        .map_err(|e| failed(&e))?;
    if removed {
        Ok(())
    } else {
        Err(failed(
            &"llama.cpp could not remove the cells after the prefix",
        ))
    }
}

fn millis(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOLLM2: &[u32] = &[0, 3, 8];
    const QWEN25_Q4_K_M: &[u32] = &[0, 12, 14];

    fn tokens(ids: impl IntoIterator<Item = i32>) -> Vec<LlamaToken> {
        ids.into_iter().map(LlamaToken).collect()
    }

    #[test]
    fn a_shared_prefix_is_a_multiple_of_four_that_keeps_every_call_of_the_whole_prompt() {
        // (source length, tokens in common, prompt tokens after them, the prefix shared)
        let cases = [
            (100, 30, 10, 28), // leaves 12 rows
            (100, 30, 5, 24),  // 28 would leave 7 rows
            (100, 40, 0, 32),  // the whole prompt in common: 36 would leave 4
            (100, 0, 40, 0),
            (100, 3, 40, 0),
            (100, 9, 0, 0),  // 8 would leave 1 row, 4 ends 4 rows into the chunk
            (100, 0, 0, 0),  // no prompt
            (5, 5, 20, 0),   // a source of 5 computed its first 4 without the tiles
            (100, 4, 20, 0), // 4 rows in the chunk, whatever the source's length
            (9, 8, 20, 8),
            // chunks of 512: the rest starts one of its own at 512
            (1100, 514, 3, 512),
            (1100, 1040, 10, 1040), // 16 rows into the chunk at 1024, 10 left there
            (1100, 600, 1, 592),    // 9 left in the chunk at 512
            (1100, 508, 100, 504),  // the first chunk ends at 512: 8 rows left in it
            (519, 519, 20, 512),    // 516 ends 4 rows into the source's second chunk
        ];
        for (source, common, rest, shared) in cases {
            let prompt = tokens((0..common).chain(5000..5000 + rest));
            let got = shareable_prefix(&tokens(0..source), &prompt);
            assert_eq!(got, shared as usize, "{source}, {common}, {rest}");
        }
    }

    #[test]
    fn the_longest_shared_prefix_is_taken() {
        let a = tokens(0..40);
        let b = tokens((0..20).chain(600..640));
        let prompt = tokens((0..36).chain(700..710));
        let running = [(3, a.as_slice()), (1, b.as_slice())];
        assert_eq!(prefix_source(running, &prompt), Some((3, 36)));
        let running = [(1, b.as_slice())];
        assert_eq!(prefix_source(running, &prompt), Some((1, 20)));
        let running = [(5, a.as_slice()), (2, a.as_slice())];
        assert_eq!(
            prefix_source(running, &prompt),
            Some((2, 36)),
            "the lowest stream"
        );
        assert_eq!(prefix_source([], &prompt), None);
    }

    #[test]
    fn the_fixtures_kinds_batch_eight() {
        assert_eq!(rows_for("llama", SMOLLM2, 0, true), MAX_SEQUENCES);
        assert_eq!(rows_for("qwen2", QWEN25_Q4_K_M, 0, true), MAX_SEQUENCES);
    }

    #[test]
    fn anything_unproven_is_served_alone() {
        // a weight type no fixture has: F16, Q4_0 (repacked), Q5_K
        for other in [1, 2, 13] {
            assert_eq!(
                rows_for("llama", &[0, 12, other], 0, true),
                1,
                "type {other}"
            );
        }
        assert_eq!(rows_for("qwen3", QWEN25_Q4_K_M, 0, true), 1);
        assert_eq!(
            rows_for("llama", QWEN25_Q4_K_M, 8, true),
            1,
            "a mixture of experts"
        );
        assert_eq!(
            rows_for("llama", SMOLLM2, 0, false),
            1,
            "another CPU target"
        );
    }
}
