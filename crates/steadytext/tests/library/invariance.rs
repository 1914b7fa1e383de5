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
    compare_embeddings, compare_together, decode_alone, Comparison, Layout, Prefill, Trace,
    MAX_SEQUENCES,
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
    static TRACES: Cache = Mutex::new(BTreeMap::new());
    once_per_model(&TRACES, model, || decode_each(model, &PROMPTS, STEPS))[..n].to_vec()
}

/// Traces computed once per model file and shared by the tests that use them.
type Cache = Mutex<BTreeMap<PathBuf, Vec<Trace>>>;

fn once_per_model(
    cache: &Cache,
    model: &Model,
    compute: impl FnOnce() -> Vec<Trace>,
) -> Vec<Trace> {
    let mut all = cache.lock().unwrap();
    all.entry(model.path().to_path_buf())
        .or_insert_with(compute)
        .clone()
}

/// Each prompt decoded alone for `steps` greedy steps.
fn decode_each(model: &Model, prompts: &[impl AsRef<str>], steps: usize) -> Vec<Trace> {
    prompts
        .iter()
        .map(|p| decode_alone(model, &prompt_tokens(model, p.as_ref()), steps, 2).unwrap())
        .collect()
}

fn trace(model: &Model, prompt: &str) -> Trace {
    decode_each(model, &[prompt], STEPS).remove(0)
}

/// The layout the daemon would batch with: a KV stream per sequence, each prompt fed alone from
/// the longest prefix it may share with an earlier one (the prompts here share the chat
/// template's system prompt).
const SERVED: Layout = Layout {
    unified_kv: false,
    prefill: Prefill::Shared,
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
            // The prompts share the chat template's system prompt.
            let shared = c.copied[1..].iter().all(|&cells| cells > 0);
            if layout.prefill == Prefill::Shared {
                assert!(shared, "{model}: {n}, {layout:?}: {c:?}");
            }
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
        prefill: Prefill::Together,
        ..SERVED
    };
    let apart = Layout {
        prefill: Prefill::Apart,
        ..SERVED
    };
    // The served layout at 1, 2, 4 and 8 is the gate test's.
    assert_identical(model, &alone, &[ONE_THREAD, mixed_prefill], &[1, 2, 4, 8]);
    assert_identical(model, &alone, &[apart], &[8]);
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
        prefill: Prefill::Together,
        ..SERVED
    };
    assert!(!compare(model, &alone[..2], mixed).identical());
}

/// Steps after a shared prefix: the copied cells and the prompt evaluated after them show in the
/// first logits already; the steps after check decoding on top of them.
const PREFIX_STEPS: usize = 32;

const NOTE: &str = "the lighthouse stands on a rock two miles from the harbour; its keeper \
    climbs one hundred and twelve steps every evening to light the lamp, writes the weather in \
    the logbook at six, nine and midnight, and cooks porridge at dawn before he sleeps.";

/// Eight prompts that begin with the same long instruction and end differently, decoded alone
/// (once per model: two tests use them).
fn instructed(model: &Model) -> Vec<Trace> {
    static TRACES: Cache = Mutex::new(BTreeMap::new());
    once_per_model(&TRACES, model, || decode_instructed(model))
}

fn decode_instructed(model: &Model) -> Vec<Trace> {
    let instruction =
        format!("Read the note and answer the question after it. The note: {NOTE} Question: ");
    let questions = [
        "How many steps?",
        "When does he write in the logbook, and why then?",
        "What does he cook?",
        "Where is it?",
        "Is the keeper happy? Answer at length, with reasons drawn from the note.",
        "Why?",
        "What colour is the lamp, if the note says?",
        "Who lives there?",
    ];
    let prompts: Vec<String> = questions
        .iter()
        .map(|q| format!("{instruction}{q}"))
        .collect();
    decode_each(model, &prompts, PREFIX_STEPS)
}

/// A prompt that begins like one already in the batch copies that sequence's KV cells for the
/// prefix `batch::shareable_prefix` allows and is evaluated from there; every step's logits are
/// still bit for bit those of the prompt alone, on both generation fixtures.
#[test]
fn a_prompt_after_a_shared_prefix_gets_the_logits_of_the_whole_prompt() {
    for path in [generation_model_path(), reranking_model_path()] {
        let model = Engine::global().load(&path).unwrap();
        let alone = instructed(model);
        let c = compare(model, &alone, SERVED);
        assert!(c.identical(), "{}: {c:?}", path.display());
        // every prompt after the first took at least the instruction's first 64 tokens
        assert!(
            c.copied[1..].iter().all(|&n| n >= 64),
            "{}: {c:?}",
            path.display()
        );
    }
}

/// Prompts longer than a 512-token chunk share a prefix that ends in their second chunk; and a
/// prompt shorter than 256 tokens shares one with a source longer than 256, whose prefill
/// attended over 512 KV cells where the prompt alone attends over 256 (the extra cells are
/// masked and must add exact zeros, as in the steps). On the repacked model.
#[test]
fn long_prompts_share_prefixes_across_chunks_and_attention_sizes() {
    let model = Engine::global().load(&reranking_model_path()).unwrap();
    let traces = |instruction: &str, questions: &[&str]| -> Vec<Trace> {
        let prompts: Vec<String> = questions
            .iter()
            .map(|q| format!("{instruction} Question: {q}"))
            .collect();
        decode_each(model, &prompts, 4)
    };
    let long = format!("Read the notes. {}", ["Note: ", NOTE].concat().repeat(12));
    let alone = traces(&long, &["How many steps?", "When does he cook, and what?"]);
    assert!(alone[0].prompt.len() > 560, "{}", alone[0].prompt.len());
    let c = compare(model, &alone, SERVED);
    assert!(c.identical(), "{c:?}");
    assert!(c.copied[1] > 512 && c.copied[1] % 512 >= 8, "{c:?}");

    let medium = format!("Read the notes. {}", ["Note: ", NOTE].concat().repeat(3));
    let source = format!("{} {}", NOTE.repeat(2), "Which of these facts matter most?");
    let alone = traces(&medium, &[&source, "Why?"]);
    let lengths = [alone[0].prompt.len(), alone[1].prompt.len()];
    assert!(lengths[0] > 256 && lengths[1] <= 256, "{lengths:?}");
    let c = compare(model, &alone, SERVED);
    assert!(c.identical(), "{c:?}");
    assert!(c.copied[1] > 150, "{c:?}");
}

/// The conditions of `batch::shareable_prefix`, each shown necessary on the repacked model: a
/// prefix that is not a multiple of four puts rows after it into other kernels (GEMM in groups
/// of four counted from the call's first row, GEMV for the rest), and one that leaves fewer than
/// eight rows sends Q6_K products to the per-row dot product instead of the tiles the whole
/// prompt gets. SmolLM2's Q4_1 gives the same bits for any prefix.
#[test]
fn a_prefix_shared_against_the_rule_changes_the_bits_of_repacked_weights() {
    let model = Engine::global().load(&reranking_model_path()).unwrap();
    let alone = instructed(model);
    let common = common_prefix(&alone);
    let aligned = common - common % 4;
    assert!(aligned > 8, "{common}");
    let copied = |cells| Layout {
        prefill: Prefill::Copied(cells),
        ..SERVED
    };
    // The rule's prefix for these prompts is the aligned common one: the control.
    assert!(alone[1].prompt.len() - aligned >= 8);
    let c = compare(model, &alone[..2], copied(aligned));
    assert!(c.identical(), "{aligned} cells: {c:?}");
    let c = compare(model, &alone[..2], copied(aligned - 1));
    assert!(
        !c.identical(),
        "{} cells were expected to differ",
        aligned - 1
    );
    // SmolLM2's Q4_1 has no kernel chosen by a row's place in its call.
    let smollm2 = Engine::global().load(&generation_model_path()).unwrap();
    let small = instructed(smollm2);
    let c = compare(smollm2, &small[..2], copied(common_prefix(&small) - 1));
    assert!(
        c.identical(),
        "SmolLM2, a prefix not a multiple of four: {c:?}"
    );
    // Two prompts that differ in their last word only: the aligned common prefix leaves fewer
    // than eight rows, and the rule shares four fewer.
    let pair = decode_each(
        model,
        &["Name a thing that is red", "Name a thing that is blue"],
        2,
    );
    let common = common_prefix(&pair);
    let aligned = common - common % 4;
    assert!(
        pair[1].prompt.len() - aligned < 8,
        "{common} of {}",
        pair[1].prompt.len()
    );
    let c = compare(model, &pair, copied(aligned));
    assert!(!c.identical(), "{aligned} cells were expected to differ");
    let c = compare(model, &pair, SERVED);
    assert!(c.identical(), "the rule's prefix: {c:?}");
    assert_eq!(c.copied[1], aligned - 4, "{c:?}");
}

/// How many first tokens all the traces' prompts have in common.
fn common_prefix(traces: &[Trace]) -> usize {
    let first = &traces[0].prompt;
    (0..first.len())
        .take_while(|&k| traces.iter().all(|t| t.prompt.get(k) == Some(&first[k])))
        .count()
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
