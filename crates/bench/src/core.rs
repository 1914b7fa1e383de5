//! The core library: generation (prefill and decode tokens/s) against a minimal llama-cpp-2
//! loop, and embeddings per second, single and batched.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use serde_json::json;
use steadytext::{Engine, ModelRef, Role};

use crate::library;

const MAX_NEW: usize = 128;
const THREADS: i32 = 2;

/// Figures as JSON and as a Markdown report.
#[derive(Default)]
pub struct Report {
    pub json: serde_json::Value,
    pub markdown: String,
}

pub fn models_dir() -> PathBuf {
    std::env::var_os("STEADYTEXT_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/steadytext/test-models"))
}

/// The generation and embedding test models.
pub fn test_models() -> Result<(ModelRef, ModelRef)> {
    let generator = library::model_ref(&models_dir().join(GENERATION_MODEL), Role::Generation)?;
    let embedder = library::model_ref(&models_dir().join(EMBEDDING_MODEL), Role::Embedding)?;
    Ok((generator, embedder))
}

/// File names of the test models in `models_dir()`.
pub const GENERATION_MODEL: &str = "smollm2-135m-instruct-q4_1.gguf";
pub const EMBEDDING_MODEL: &str = "all-minilm-l6-v2-f32.gguf";

pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

/// Seconds to the first token and seconds for the rest, plus token counts.
#[derive(Debug, Clone, Copy)]
struct Timing {
    prompt_tokens: usize,
    generated: usize,
    first: f64,
    rest: f64,
}

impl Timing {
    fn prefill_tps(&self) -> f64 {
        self.prompt_tokens as f64 / self.first
    }
    fn decode_tps(&self) -> f64 {
        (self.generated - 1) as f64 / self.rest
    }
}

fn prompt() -> String {
    let topic = "PostgreSQL stores rows in heap pages, keeps old row versions for MVCC, \
                 and vacuums them later. Indexes such as B-tree, GIN and HNSW speed up lookups. ";
    format!(
        "{}Summarise the text above in one paragraph.",
        topic.repeat(6)
    )
}

fn library_run(model: &ModelRef, prompt: &str) -> Result<Timing> {
    let timed = library::timed(
        library::generate_request(model, prompt, MAX_NEW, None),
        THREADS,
    )?;
    Ok(Timing {
        prompt_tokens: timed.summary.prompt_tokens,
        generated: timed.summary.generated_tokens,
        first: timed.first,
        rest: timed.total - timed.first,
    })
}

/// The baseline: the same tokens, context size, attention settings and greedy sampler, with
/// nothing around them.
fn raw_run(
    model: &LlamaModel,
    tokens: &[llama_cpp_2::token::LlamaToken],
    generated: usize,
) -> Result<Timing> {
    let start = Instant::now();
    let kv = ((tokens.len() + MAX_NEW) as u32).div_ceil(256) * 256;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(kv))
        .with_n_batch(512)
        .with_n_ubatch(512)
        .with_n_threads(THREADS)
        .with_n_threads_batch(THREADS)
        // The engine turns flash attention off (fixed numerics); so does the baseline, so the
        // ratio measures the library's own overhead.
        .with_flash_attention_policy(llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED);
    let mut ctx = model.new_context(steadytext::engine::backend(), params)?;
    let mut batch = LlamaBatch::new(512, 1);
    for (i, &t) in tokens.iter().enumerate() {
        batch.add(t, i as i32, &[0], i + 1 == tokens.len())?;
    }
    ctx.decode(&mut batch)?;
    let mut sampler = LlamaSampler::greedy();
    let mut token = sampler.sample(&ctx, batch.n_tokens() - 1);
    let _ = model.vocab().token_to_piece(token, false, None);
    let first = start.elapsed().as_secs_f64();
    for i in 1..generated {
        batch.clear();
        batch.add(token, (tokens.len() + i - 1) as i32, &[0], true)?;
        ctx.decode(&mut batch)?;
        token = sampler.sample(&ctx, 0);
        let _ = model.vocab().token_to_piece(token, false, None);
    }
    Ok(Timing {
        prompt_tokens: tokens.len(),
        generated,
        first,
        rest: start.elapsed().as_secs_f64() - first,
    })
}

fn embedding_texts() -> Vec<String> {
    (0..32)
        .map(|i| {
            format!(
                "Document {i}: PostgreSQL row {i} describes an order of {} items.",
                i * 3 + 1
            )
        })
        .collect()
}

/// Runs every core benchmark `repeat` times.
pub fn run(repeat: usize) -> Result<Report> {
    let gen_path = models_dir().join(GENERATION_MODEL);
    let emb_path = models_dir().join(EMBEDDING_MODEL);
    let (model, embedder) = test_models()?;
    let loaded = Engine::global().model(&model)?;
    let raw_model = LlamaModel::load_from_file(
        steadytext::engine::backend(),
        &gen_path,
        &LlamaModelParams::default(),
    )?;
    let prompt = prompt();
    let tokens = steadytext::generate::prompt_tokens(loaded, &prompt);

    library_run(&model, &prompt)?; // warm-up: page the model in
    let mut lib = Vec::new();
    let mut raw = Vec::new();
    for _ in 0..repeat {
        let l = library_run(&model, &prompt)?;
        raw.push(raw_run(&raw_model, &tokens, l.generated)?);
        lib.push(l);
    }
    let lib_prefill = median(lib.iter().map(Timing::prefill_tps).collect());
    let lib_decode = median(lib.iter().map(Timing::decode_tps).collect());
    let raw_prefill = median(raw.iter().map(Timing::prefill_tps).collect());
    let raw_decode = median(raw.iter().map(Timing::decode_tps).collect());

    let texts = embedding_texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    library::embed(&embedder, refs[0], THREADS)?;
    let single = median(
        (0..repeat)
            .map(|_| {
                let start = Instant::now();
                for t in &refs {
                    library::embed(&embedder, t, THREADS).unwrap();
                }
                refs.len() as f64 / start.elapsed().as_secs_f64()
            })
            .collect(),
    );
    let batched = median(
        (0..repeat)
            .map(|_| {
                let start = Instant::now();
                library::embed_batch(&embedder, &refs, THREADS).unwrap();
                refs.len() as f64 / start.elapsed().as_secs_f64()
            })
            .collect(),
    );

    let json = json!({
        "fingerprint": steadytext::build_info::fingerprint(),
        "profile": steadytext::build_info::profile(),
        "generation_model": gen_path,
        "embedding_model": emb_path,
        "threads": THREADS,
        "repeat": repeat,
        "prompt_tokens": tokens.len(),
        "generated_tokens": lib[0].generated,
        "generation": {
            "library": { "prefill_tps": lib_prefill, "decode_tps": lib_decode },
            "raw_llama_cpp_2": { "prefill_tps": raw_prefill, "decode_tps": raw_decode },
            "ratio_library_over_raw": { "prefill": lib_prefill / raw_prefill, "decode": lib_decode / raw_decode },
        },
        "embeddings": { "texts": refs.len(), "single_per_s": single, "batch_per_s": batched },
    });
    let markdown = format!(
        "# Benchmark results\n\n\
         Produced by `make bench` (`crates/bench`). Medians of {repeat} runs, {THREADS} threads, \
         build `{fp}`, profile `{profile}`.\n\n\
         ## Core library (SmolLM2-135M Q4_1, all-MiniLM-L6-v2 F32)\n\n\
         Generation: a {pt}-token prompt, {gen} greedy tokens. The baseline is a minimal loop over \
         the same `llama-cpp-2` crate with the same tokens, context size, attention settings and sampler.\n\n\
         | | library | raw loop | library / raw |\n|---|---|---|---|\n\
         | prefill tokens/s (to first token, incl. context setup) | {lp:.1} | {rp:.1} | {pr:.3} |\n\
         | decode tokens/s | {ld:.1} | {rd:.1} | {dr:.3} |\n\n\
         Embeddings ({n} short texts): {single:.1}/s one call per text, {batched:.1}/s with \
         `embed_batch` (ratio {br:.3}; each text is still its own decode, by design).\n",
        fp = steadytext::build_info::fingerprint(),
        profile = steadytext::build_info::profile(),
        pt = tokens.len(),
        gen = lib[0].generated,
        lp = lib_prefill,
        rp = raw_prefill,
        pr = lib_prefill / raw_prefill,
        ld = lib_decode,
        rd = raw_decode,
        dr = lib_decode / raw_decode,
        n = refs.len(),
        br = batched / single,
    );
    Ok(Report { json, markdown })
}
