//! Generation on the real SmolLM2 test model: determinism, sampling, stops, limits, streaming.

mod common;

use steadytext::{generate, stream, Error, GenerateParams};

const PROMPT: &str = "Write a haiku about PostgreSQL";

fn params(max_new_tokens: usize) -> GenerateParams {
    GenerateParams {
        max_new_tokens,
        ..Default::default()
    }
}

#[test]
fn same_prompt_gives_identical_bytes_three_times() {
    let model = common::generator();
    let first = generate(model, PROMPT, &params(48)).unwrap();
    assert!(!first.is_empty());
    for _ in 0..2 {
        assert_eq!(
            generate(model, PROMPT, &params(48)).unwrap().as_bytes(),
            first.as_bytes()
        );
    }
}

#[test]
fn one_and_two_threads_agree() {
    let model = common::generator();
    let one = GenerateParams {
        threads: Some(1),
        ..params(40)
    };
    let two = GenerateParams {
        threads: Some(2),
        ..params(40)
    };
    assert_eq!(
        generate(model, PROMPT, &one).unwrap(),
        generate(model, PROMPT, &two).unwrap()
    );
}

#[test]
fn seeded_sampling_repeats_and_seeds_matter() {
    let model = common::generator();
    let at = |seed| GenerateParams {
        temperature: 0.7,
        seed,
        ..params(32)
    };
    let prompt = "Invent a name for a new color and describe it.";
    let a = generate(model, prompt, &at(7)).unwrap();
    assert_eq!(generate(model, prompt, &at(7)).unwrap(), a);
    let outputs: std::collections::BTreeSet<String> = [1, 2, 3]
        .iter()
        .map(|&s| generate(model, prompt, &at(s)).unwrap())
        .collect();
    assert!(
        outputs.len() >= 2,
        "three seeds gave one output: {outputs:?}"
    );
}

#[test]
fn temperature_zero_ignores_the_seed() {
    let model = common::generator();
    let seeded = GenerateParams {
        seed: 1234,
        ..params(24)
    };
    assert_eq!(
        generate(model, PROMPT, &seeded).unwrap(),
        generate(model, PROMPT, &params(24)).unwrap()
    );
}

#[test]
fn eos_string_stops_before_it() {
    let model = common::generator();
    let full = generate(model, PROMPT, &params(48)).unwrap();
    let words: Vec<&str> = full.split_whitespace().collect();
    assert!(words.len() > 4, "need a few words to cut at: {full:?}");
    let stop = words[3];
    let cut = GenerateParams {
        eos_string: stop.to_string(),
        ..params(48)
    };
    let expected = full[..full.find(stop).unwrap()].trim();
    assert_eq!(generate(model, PROMPT, &cut).unwrap(), expected);
}

#[test]
fn max_new_tokens_is_honoured() {
    let model = common::generator();
    let mut s = stream(model, PROMPT, &params(5)).unwrap();
    let text: String = s.by_ref().map(|p| p.unwrap()).collect();
    assert_eq!(s.generated_tokens(), 5);
    let full = generate(model, PROMPT, &params(48)).unwrap();
    assert!(
        full.starts_with(text.trim()),
        "{text:?} is not a prefix of {full:?}"
    );
}

#[test]
fn stream_concatenation_equals_unstripped_output() {
    let model = common::generator();
    for prompt in [
        PROMPT,
        "Réponds en français : qu'est-ce qu'une base de données ? 😀",
    ] {
        let pieces: Vec<String> = stream(model, prompt, &params(40))
            .unwrap()
            .map(|p| p.unwrap())
            .collect();
        assert!(pieces.len() > 1, "expected several pieces");
        let joined = pieces.concat();
        assert_eq!(joined.trim(), generate(model, prompt, &params(40)).unwrap());
    }
}

#[test]
fn over_long_prompt_is_a_context_error() {
    let model = common::generator();
    let prompt = "database ".repeat(5000);
    let result = stream(model, &prompt, &params(64)).map(|_| ());
    match result {
        Err(Error::ContextLengthExceeded {
            input_tokens,
            max_input_tokens,
            ..
        }) => assert!(input_tokens > max_input_tokens),
        Err(other) => panic!("wrong error: {other}"),
        Ok(()) => panic!("an over-long prompt was accepted"),
    }
}

#[test]
fn output_budget_counts_against_the_window() {
    let model = common::generator();
    let huge = GenerateParams {
        max_new_tokens: model.n_ctx() as usize,
        ..Default::default()
    };
    assert!(matches!(
        stream(model, PROMPT, &huge),
        Err(Error::ContextLengthExceeded { .. })
    ));
}

#[test]
fn invalid_parameters_are_rejected() {
    let model = common::generator();
    let bad = GenerateParams {
        temperature: -1.0,
        ..params(8)
    };
    assert!(matches!(
        stream(model, PROMPT, &bad),
        Err(Error::InvalidArgument(_))
    ));
    let zero = params(0);
    assert!(matches!(
        stream(model, PROMPT, &zero),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn the_chat_template_is_the_models_own() {
    let model = common::generator();
    let template = model
        .chat_template()
        .expect("SmolLM2 ships a chat template");
    let rendered = steadytext::chat::render(template, "hi", "", "").unwrap();
    // SmolLM2's template adds its default system prompt; llama.cpp's built-in ChatML would not.
    assert!(rendered.contains("<|im_start|>system"), "{rendered}");
    assert!(rendered.ends_with("<|im_start|>assistant\n"), "{rendered}");
}
