//! Generation on the real SmolLM2 test model: determinism, sampling, stops, the budget and the
//! window, streaming, characters cut by the budget.

use steadytext::request::GenerateSpec;
use steadytext::ErrorKind;

use crate::common::{self, generate, generate_threads, spec, text};

const PROMPT: &str = "Write a haiku about PostgreSQL";

#[test]
fn same_prompt_gives_identical_bytes_three_times() {
    let first = text(PROMPT, 48);
    assert!(!first.is_empty());
    for _ in 0..2 {
        assert_eq!(text(PROMPT, 48).as_bytes(), first.as_bytes());
    }
}

#[test]
fn one_and_two_threads_agree() {
    let one = generate_threads(spec(PROMPT, 40), 1).unwrap().0;
    let two = generate_threads(spec(PROMPT, 40), 2).unwrap().0;
    assert_eq!(one, two);
}

#[test]
fn seeded_sampling_repeats_and_seeds_matter() {
    let at = |seed| {
        let s = GenerateSpec {
            temperature: Some(0.7),
            seed: Some(seed),
            ..spec("Invent a name for a new color and describe it.", 32)
        };
        generate(s).unwrap().0
    };
    let a = at(7);
    assert_eq!(at(7), a);
    let outputs: std::collections::BTreeSet<String> = [1, 2, 3].iter().map(|&s| at(s)).collect();
    assert!(
        outputs.len() >= 2,
        "three seeds gave one output: {outputs:?}"
    );
}

#[test]
fn temperature_zero_ignores_the_seed() {
    let seeded = GenerateSpec {
        seed: Some(1234),
        ..spec(PROMPT, 24)
    };
    assert_eq!(generate(seeded).unwrap().0, text(PROMPT, 24));
}

#[test]
fn eos_string_stops_before_it() {
    let full = text(PROMPT, 48);
    let words: Vec<&str> = full.split_whitespace().collect();
    assert!(words.len() > 4, "need a few words to cut at: {full:?}");
    let stop = words[3];
    let cut = GenerateSpec {
        eos_string: Some(stop.to_string()),
        ..spec(PROMPT, 48)
    };
    let expected = full[..full.find(stop).unwrap()].trim();
    assert_eq!(generate(cut).unwrap().0, expected);
}

#[test]
fn max_new_tokens_is_honoured() {
    let (short, summary) = generate(spec(PROMPT, 5)).unwrap();
    assert_eq!(summary.generated_tokens, 5);
    assert!(!summary.completed);
    let full = text(PROMPT, 48);
    assert!(
        full.starts_with(&short),
        "{short:?} is not a prefix of {full:?}"
    );
}

/// Streamed pieces add up to exactly the returned text (surrounding whitespace is not streamed).
#[test]
fn stream_concatenation_equals_the_output() {
    for prompt in [
        PROMPT,
        "Réponds en français : qu'est-ce qu'une base de données ? 😀",
    ] {
        let request = spec(prompt, 40);
        let (output, pieces) =
            common::run_spec(steadytext::request::Spec::Generate(request), 2).unwrap();
        assert!(pieces.len() > 1, "expected several pieces");
        assert_eq!(pieces.concat(), output.into_text().unwrap());
    }
}

#[test]
fn a_prompt_that_does_not_fit_the_window_is_a_context_error() {
    // Digits and spaces: about one token per character, within the prompt length limit.
    let e = generate(spec(&"9 ".repeat(4900), 64)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ContextLength, "{e}");
    assert!(e.to_string().contains("context window"), "{e}");
}

/// SteadyText's binding clamps max_tokens to what the window leaves; so does this library (the
/// summary says so, and SQL turns it into a NOTICE). A 256-token window keeps the run short.
#[test]
fn max_tokens_beyond_the_window_is_clamped() {
    let run = |max: usize| {
        let mut request = steadytext::request::Spec::Generate(spec("Maximum tokens test", max))
            .build(&common::builder())
            .unwrap();
        if let steadytext::Request::Generate(r) = &mut request {
            r.model.n_ctx = 256;
        }
        let (output, _) = common::run(request, 2).unwrap();
        match output {
            steadytext::Output::Text { text, summary } => (text, summary),
            other => panic!("{other:?}"),
        }
    };
    let (text, summary) = run(4096);
    assert!(!text.is_empty());
    let room = 256 - summary.prompt_tokens;
    assert_eq!(summary.clamped, Some(room), "{summary:?}");
    assert!(summary.generated_tokens <= room, "{summary:?}");
    let (small, small_summary) = run(64);
    assert_eq!(small_summary.clamped, None);
    assert!(
        text.starts_with(&small),
        "the clamped run is the same generation"
    );
}

#[test]
fn invalid_parameters_are_rejected_before_anything_runs() {
    for (bad, text) in [
        (
            GenerateSpec {
                temperature: Some(-1.0),
                ..spec(PROMPT, 8)
            },
            "temperature must be between 0 and 2",
        ),
        (spec(PROMPT, 0), "max_tokens must be at least 1"),
        (
            GenerateSpec {
                size: Some("huge".into()),
                ..spec(PROMPT, 8)
            },
            "size must be one of mini, small, large, got 'huge'",
        ),
        (spec("   ", 8), "Prompt cannot be empty"),
    ] {
        let e = generate(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.to_string().starts_with(text), "{e}");
    }
}

#[test]
fn the_chat_template_is_the_models_own() {
    let model = steadytext::Engine::global()
        .model(&common::generator())
        .unwrap();
    let template = model
        .chat_template()
        .expect("SmolLM2 ships a chat template");
    let rendered = steadytext::chat::render(template, "hi", "", "").unwrap();
    // SmolLM2's template adds its default system prompt; llama.cpp's built-in ChatML would not.
    assert!(rendered.contains("<|im_start|>system"), "{rendered}");
    assert!(rendered.ends_with("<|im_start|>assistant\n"), "{rendered}");
}

/// A budget that ends inside a multi-byte character drops the character's first bytes: never a
/// U+FFFD. The prompt makes SmolLM2 answer in emoji (4 bytes, often more than one token each),
/// and every budget up to 24 is tried, so some cut falls inside a character.
#[test]
fn a_character_cut_by_the_budget_is_dropped() {
    let prompt = "Reply with five star emojis and nothing else.";
    let full = text(prompt, 48);
    assert!(full.chars().any(|c| c.len_utf8() > 1), "{full:?}");
    let mut cut_inside = 0;
    let mut previous = String::new();
    for budget in 1..=24 {
        let (out, pieces) =
            common::run_spec(steadytext::request::Spec::Generate(spec(prompt, budget)), 2).unwrap();
        let out = out.into_text().unwrap();
        let raw = pieces.concat();
        assert!(!out.contains('\u{FFFD}'), "budget {budget}: {out:?}");
        assert!(!raw.contains('\u{FFFD}'), "budget {budget}");
        assert!(
            full.starts_with(&out),
            "budget {budget}: {out:?} vs {full:?}"
        );
        assert_eq!(raw, out, "budget {budget}: the stream and the text differ");
        // One more token and no more text, where the text goes on with a multi-byte character:
        // the token held part of that character, and it was dropped.
        let next = full[out.len()..].chars().next();
        if out == previous && budget > 1 && next.is_some_and(|c| c.len_utf8() > 1) {
            cut_inside += 1;
        }
        previous = out;
    }
    assert!(
        cut_inside > 0,
        "no budget ended inside a character: {full:?}"
    );
}
