//! Batch invariance on the fixtures: decoding 1 to 8 prompts of different lengths in one batch
//! against decoding each alone, logits compared bit for bit over 128 steps, and embeddings of
//! several texts in one batch against one text at a time. The tests pin down both sides of each
//! finding in `docs/batch-invariance.md`: where batching gives the same bits, and the nearest
//! condition where it does not (so a change in llama.cpp that alters either shows up here).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use steadytext::engine::Engine;
use steadytext::generate::prompt_tokens;
use steadytext::invariance::{
    compare_embeddings, compare_together, decode_alone, Comparison, Layout, Trace, MAX_SEQUENCES,
};
use steadytext::Model;

use crate::common::{embedding_model_path, generation_model_path, reranking_model_path};

const STEPS: usize = 128;

/// Prompts of different lengths, so sequences sit at different positions in every step.
const PROMPTS: [&str; 8] = [
    "Hi.",
    "Write a haiku about the sea.",
    "Explain in two sentences why the sky is blue, for a curious child who keeps asking why.",
    "List three prime numbers.",
    "Describe a lighthouse keeper's morning routine, including the weather, the lamp, the logbook \
     and the breakfast he cooks, in the style of a nineteenth-century novel.",
    "What is 17 times 23?",
    "Translate 'good morning' into French, Spanish and German.",
    "Summarise the plot of a story about a robot who learns to paint, in one paragraph.",
];

/// The first `n` prompts decoded alone on `model`; the eight traces per model are computed once
/// and shared by the tests (a Qwen trace takes seconds).
fn traces(model: &Model, n: usize) -> Vec<Trace> {
    static TRACES: Mutex<BTreeMap<PathBuf, Vec<Trace>>> = Mutex::new(BTreeMap::new());
    let mut all = TRACES.lock().unwrap();
    let computed = all
        .entry(model.path().to_path_buf())
        .or_insert_with(|| PROMPTS.iter().map(|p| trace(model, p)).collect());
    computed[..n].to_vec()
}

fn trace(model: &Model, prompt: &str) -> Trace {
    decode_alone(model, &prompt_tokens(model, prompt), STEPS, 2).unwrap()
}

/// The layout the daemon would batch with: a KV stream per sequence, each prompt fed alone.
const SERVED: Layout = Layout {
    unified_kv: false,
    prefill_together: false,
    threads: 2,
    rows: MAX_SEQUENCES as usize,
};

const ONE_THREAD: Layout = Layout {
    threads: 1,
    ..SERVED
};

fn compare(model: &Model, alone: &[Trace], layout: Layout) -> Comparison {
    compare_together(model, alone, layout).unwrap()
}

/// The first `n` traces, for every `n` in `counts`, decoded together in every layout give the
/// logits of decoding alone.
fn assert_identical(model: &Model, alone: &[Trace], layouts: &[Layout], counts: &[usize]) {
    for &layout in layouts {
        for &n in counts {
            let c = compare(model, &alone[..n], layout);
            let model = model.path().display();
            assert!(c.identical(), "{model}: {n} sequences, {layout:?}: {c:?}");
        }
    }
}

/// The gate itself: for every fixture, 1, 2, 4 and 8 sequences of different lengths decoded as
/// the daemon's batch would decode them (at most `batch_rows` per call, each prompt fed alone)
/// give every step's logits bit for bit as decoding alone, wherever the model batches at all.
#[test]
fn every_fixture_decodes_the_same_logits_wherever_it_is_batched() {
    let expected = [
        (generation_model_path(), MAX_SEQUENCES),
        (reranking_model_path(), MAX_SEQUENCES),
        (embedding_model_path(), 1),
    ];
    for (path, rows) in expected {
        let model = Engine::global().load(&path).unwrap();
        assert_eq!(model.batch_rows(), rows, "{}", path.display());
        if rows == 1 {
            continue;
        }
        let alone = traces(model, 8);
        let served = Layout {
            rows: rows as usize,
            ..SERVED
        };
        assert_identical(model, &alone, &[served], &[1, 2, 4, 8]);
    }
}

#[test]
fn q4_1_weights_decode_the_same_logits_in_batches_of_up_to_eight() {
    let model = Engine::global().load(&generation_model_path()).unwrap();
    let alone = traces(model, 8);
    let mixed_prefill = Layout {
        prefill_together: true,
        ..SERVED
    };
    // The served layout at 1, 2, 4 and 8 is the gate test's.
    assert_identical(model, &alone, &[ONE_THREAD, mixed_prefill], &[1, 2, 4, 8]);
    // A short request next to one that needs more than 256 KV cells: llama.cpp then attends over
    // as many cells as the longest stream uses (512 here, 256 alone), and the extra masked cells
    // must add exact zeros.
    let long = trace(model, &PROMPTS[4].repeat(6));
    assert!(long.prompt.len() + STEPS > 256, "{}", long.prompt.len());
    let mixed_sizes = [alone[0].clone(), long];
    let c = compare(model, &mixed_sizes, SERVED);
    assert!(c.identical(), "a short and a long sequence: {c:?}");
    // One KV cache for all sequences puts a sequence's cells at other offsets than alone, and
    // the attention sums group its terms differently.
    let unified = Layout {
        unified_kv: true,
        ..SERVED
    };
    let c = compare(model, &alone[..2], unified);
    assert!(!c.identical(), "a unified KV cache was expected to differ");
}

/// Q4_K is repacked: a product runs a GEMM kernel on each group of four rows and a GEMV kernel on
/// the rest. A decode step of several sequences gets the patched GEMM that rounds as GEMV does
/// (`patches/llama-cpp-sys-2`); five sequences put rows through both kernels in one call.
#[test]
fn repacked_k_quant_weights_decode_the_same_logits_in_batches_of_up_to_eight() {
    let model = Engine::global().load(&reranking_model_path()).unwrap();
    let alone = traces(model, 8);
    assert_identical(model, &alone, &[SERVED, ONE_THREAD], &[3, 5]);
    // A prefill of several sequences puts several tokens of one sequence in a call: those rows
    // take llama.cpp's own GEMM, as a prompt alone does, and its rounding differs from one row's.
    let mixed = Layout {
        prefill_together: true,
        ..SERVED
    };
    assert!(!compare(model, &alone[..2], mixed).identical());
}

#[test]
fn embeddings_in_one_batch_differ_from_embeddings_alone() {
    let model = Engine::global().load(&embedding_model_path()).unwrap();
    // The control: one text through the batched path, in a context with room for eight, is the
    // text alone.
    assert!(compare_embeddings(model, &PROMPTS[..1], SERVED)
        .unwrap()
        .identical());
    // A bidirectional model sees every text of the batch in one ubatch: the attention and the
    // F32 matrix products run over all their rows, grouped differently than for one text.
    for n in [2, 8] {
        let c = compare_embeddings(model, &PROMPTS[..n], SERVED).unwrap();
        assert!(!c.identical(), "{n} texts were expected to differ: {c:?}");
    }
}
