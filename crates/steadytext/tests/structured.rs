//! Structured generation and reranking on the real SmolLM2 test model: twenty JSON schemas
//! whose outputs validate, thirty regular expressions whose outputs match in full, choices with
//! awkward characters, determinism, the best-token-first shortcut, errors, and reranking.

mod common;

use serde_json::json;
use steadytext::rerank;
use steadytext::{generate_constrained, stream_constrained, Constraint, Error, GenerateParams};

fn params(max_new_tokens: usize) -> GenerateParams {
    GenerateParams {
        max_new_tokens,
        ..Default::default()
    }
}

fn schemas() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (
            "Give a person's name and age",
            json!({"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer", "minimum": 0, "maximum": 120}}, "required": ["name", "age"], "additionalProperties": false}),
        ),
        ("Is the sky blue?", json!({"type": "boolean"})),
        (
            "Pick a number between 1 and 10",
            json!({"type": "integer", "minimum": 1, "maximum": 10}),
        ),
        ("What is pi?", json!({"type": "number"})),
        ("Name a colour", json!({"type": "string", "maxLength": 16})),
        (
            "Name a primary colour",
            json!({"enum": ["red", "green", "blue"]}),
        ),
        (
            "List three fruits",
            json!({"type": "array", "items": {"type": "string", "maxLength": 12}, "minItems": 3, "maxItems": 3}),
        ),
        (
            "Describe a book",
            json!({"type": "object", "properties": {"title": {"type": "string", "maxLength": 30}, "pages": {"type": "integer", "minimum": 1, "maximum": 2000}, "fiction": {"type": "boolean"}}, "required": ["title", "pages", "fiction"], "additionalProperties": false}),
        ),
        (
            "Give a point",
            json!({"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}}, "required": ["x", "y"], "additionalProperties": false}),
        ),
        (
            "Give an address",
            json!({"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}}, "required": ["city", "zip"], "additionalProperties": false}),
        ),
        (
            "Rate this film from 1 to 5",
            json!({"type": "object", "properties": {"rating": {"type": "integer", "enum": [1, 2, 3, 4, 5]}}, "required": ["rating"], "additionalProperties": false}),
        ),
        ("Say nothing", json!({"type": "null"})),
        ("Give the status", json!({"const": "ok"})),
        (
            "A number or a word",
            json!({"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 8}]}),
        ),
        (
            "Give a team",
            json!({"type": "object", "properties": {"name": {"type": "string", "maxLength": 16}, "members": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12}}, "required": ["name"], "additionalProperties": false}, "minItems": 1, "maxItems": 2}}, "required": ["name", "members"], "additionalProperties": false}),
        ),
        (
            "List two even numbers",
            json!({"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 100}, "minItems": 2, "maxItems": 2}),
        ),
        (
            "Give a date",
            json!({"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}),
        ),
        (
            "Give a product with optional tags",
            json!({"type": "object", "properties": {"sku": {"type": "string", "pattern": "^[A-Z]{3}[0-9]{3}$"}, "tags": {"type": "array", "items": {"enum": ["new", "sale"]}, "maxItems": 2}}, "required": ["sku"], "additionalProperties": false}),
        ),
        (
            "Classify the sentiment of: I love it",
            json!({"type": "object", "properties": {"sentiment": {"enum": ["positive", "negative", "neutral"]}, "confidence": {"type": "integer", "minimum": 0, "maximum": 100}}, "required": ["sentiment", "confidence"], "additionalProperties": false}),
        ),
        (
            "Give a temperature in Celsius",
            json!({"type": "object", "properties": {"celsius": {"type": "integer", "minimum": -50, "maximum": 60}, "unit": {"const": "C"}}, "required": ["celsius", "unit"], "additionalProperties": false}),
        ),
        // Patterns llama.cpp's converter would replace by "any string" if given as written:
        // unanchored (JSON Schema matches anywhere), `\d`, `\w`.
        (
            "Give a phone number",
            json!({"type": "string", "pattern": "\\d{3}-\\d{4}"}),
        ),
        (
            "Give a product code and a note",
            json!({"type": "object", "properties": {"code": {"type": "string", "pattern": "^\\w{2}\\d{2}$"}, "note": {"type": "string", "pattern": "^ok"}}, "required": ["code", "note"], "additionalProperties": false}),
        ),
        (
            "Will it rain tomorrow?",
            json!({"type": "string", "pattern": "^(yes|no)$"}),
        ),
    ]
}

#[test]
fn twenty_three_schemas_give_json_that_validates() {
    let model = common::generator();
    let cases = schemas();
    assert_eq!(cases.len(), 23);
    for (prompt, schema) in cases {
        let out = generate_constrained(
            model,
            prompt,
            &params(256),
            &Constraint::Json(schema.clone()),
        )
        .unwrap_or_else(|e| panic!("{prompt}: {e}"));
        let value: serde_json::Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{prompt}: {out:?} is not JSON: {e}"));
        let validator = jsonschema::validator_for(&schema).unwrap();
        assert!(
            validator.is_valid(&value),
            "{prompt}: {out} does not validate against {schema}"
        );
    }
}

/// Unbounded repetition (`+`, `*`) lets a small model go on until max_tokens (an Incomplete
/// error), so these patterns bound theirs.
const REGEXES: [&str; 30] = [
    r"\d{1,6}",
    r"[0-9]{3}-[0-9]{3}-[0-9]{4}",
    r"[A-Z]{2}[0-9]{4}",
    r"[a-z]{1,12}",
    r"[A-Z][a-z]{1,10}",
    r"(yes|no)",
    r"(true|false)",
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}",
    r"[a-zA-Z0-9]{8}",
    r"\w{1,10}@\w{1,10}\.com",
    r"(red|green|blue) (car|bike)",
    r"[0-9]{1,4}\.[0-9]{2}",
    r"#[0-9a-f]{6}",
    r"(?i)hello",
    r"[A-Z]{3}",
    r"(ab){1,4}",
    r"x?y{2,3}z{0,3}",
    r"[^0-9\s]{5}",
    r"\(\d{3}\) \d{3}-\d{4}",
    r"[aeiou]{2,4}",
    r"(Mr|Ms|Dr)\. [A-Z][a-z]{2,8}",
    r"-?[0-9]{1,3}",
    r"(https?)://[a-z]{3,10}\.(org|net)",
    r"[01]{8}",
    r"\$[0-9]{1,4}",
    r"[a-z]{1,8}(-[a-z]{1,8}){1,2}",
    r"(café|thé) au lait",
    r"[α-ω]{3}",
    r"^[A-Z][a-z]{1,10} [A-Z][a-z]{1,10}$",
    r"(one|two|three), (four|five)",
];

#[test]
fn thirty_regexes_give_text_they_match_in_full() {
    let model = common::generator();
    for pattern in REGEXES {
        let prompt = format!("Give an example of text matching {pattern}");
        let out = generate_constrained(
            model,
            &prompt,
            &params(64),
            &Constraint::Regex(pattern.into()),
        )
        .unwrap_or_else(|e| panic!("{pattern}: {e}"));
        let full = regex::Regex::new(&format!("^(?:{pattern})$")).unwrap();
        assert!(
            full.is_match(&out),
            "{pattern}: {out:?} does not match in full"
        );
    }
}

#[test]
fn the_choice_is_always_one_of_the_choices() {
    let model = common::generator();
    let sets: [&[&str]; 4] = [
        &["positive", "negative"],
        &["say \"yes\"", "say 'no'", "back\\slash"],
        &["café", "naïve", "日本語", "Ünïcödé"],
        &["a", "ab", "abc"],
    ];
    for choices in sets {
        let constraint = Constraint::Choice(choices.iter().map(|c| c.to_string()).collect());
        let out = generate_constrained(model, "Pick one", &params(32), &constraint).unwrap();
        assert!(
            choices.contains(&out.as_str()),
            "{out:?} is not one of {choices:?}"
        );
    }
}

#[test]
fn constrained_output_is_deterministic_and_the_shortcut_changes_nothing() {
    let model = common::generator();
    let constraint = Constraint::Json(schemas()[7].1.clone());
    let first = generate_constrained(model, "Describe a book", &params(128), &constraint).unwrap();
    assert_eq!(
        generate_constrained(model, "Describe a book", &params(128), &constraint).unwrap(),
        first
    );
    let slow: String =
        stream_constrained(model, "Describe a book", &params(128), &constraint, false)
            .unwrap()
            .map(|p| p.unwrap())
            .collect();
    assert_eq!(
        slow.trim(),
        first,
        "filtering every token gives the same output"
    );
    let two_threads = GenerateParams {
        threads: Some(2),
        ..params(128)
    };
    let one_thread = GenerateParams {
        threads: Some(1),
        ..params(128)
    };
    assert_eq!(
        generate_constrained(model, "Describe a book", &two_threads, &constraint).unwrap(),
        generate_constrained(model, "Describe a book", &one_thread, &constraint).unwrap()
    );
}

#[test]
fn sampling_under_a_grammar_is_seeded() {
    let model = common::generator();
    let constraint = Constraint::Regex("[a-z]{4,12}".into());
    let sample = |seed| {
        let p = GenerateParams {
            temperature: 0.9,
            seed,
            ..params(16)
        };
        generate_constrained(model, "Say a word", &p, &constraint).unwrap()
    };
    assert_eq!(sample(7), sample(7));
    assert!(regex::Regex::new("^[a-z]{4,12}$")
        .unwrap()
        .is_match(&sample(8)));
}

#[test]
fn bad_constraints_are_errors_before_decoding() {
    let model = common::generator();
    let err = |c: Constraint| match generate_constrained(model, "x", &params(8), &c) {
        Err(Error::InvalidArgument(m)) => m,
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    assert!(err(Constraint::Json(json!([1, 2]))).starts_with("Invalid JSON schema"));
    assert!(
        err(Constraint::Json(json!({"type": "no-such-type"}))).starts_with("Invalid JSON schema")
    );
    assert!(err(Constraint::Regex("(a)\\1".into())).contains("backreferences"));
    assert!(err(Constraint::Regex("a(?!b)".into())).contains("look-around"));
    assert_eq!(
        err(Constraint::Choice(vec!["one".into()])),
        "Must provide at least 2 choices"
    );
    // A budget too small for the grammar to finish is an error, never a truncated value.
    let schema = Constraint::Json(schemas()[0].1.clone());
    assert!(matches!(
        generate_constrained(model, "Give a person", &params(3), &schema),
        Err(Error::Incomplete { max_new_tokens: 3 })
    ));
}

/// Eight queries, each with its one relevant document first and two unrelated ones. The
/// unrelated documents reuse other queries' topics, so word overlap with the query is not
/// enough to rank well.
const LABELLED: [(&str, [&str; 3]); 8] = [
    (
        "What is PostgreSQL?",
        [
            "PostgreSQL is an open source relational database system.",
            "Bananas are a good source of potassium.",
            "A violin has four strings.",
        ],
    ),
    (
        "How do cats purr?",
        [
            "Cats purr by vibrating the muscles of their larynx.",
            "The stock market fell sharply on Monday.",
            "Paris is the capital of France.",
        ],
    ),
    (
        "What is the capital of France?",
        [
            "Paris is the capital and largest city of France.",
            "Photosynthesis converts light into chemical energy.",
            "A violin has four strings.",
        ],
    ),
    (
        "How does photosynthesis work?",
        [
            "Plants use sunlight, water and carbon dioxide to make glucose and oxygen.",
            "The Eiffel Tower is in Paris.",
            "PostgreSQL supports JSON columns.",
        ],
    ),
    (
        "Who wrote Hamlet?",
        [
            "Hamlet is a tragedy written by William Shakespeare.",
            "Water boils at 100 degrees Celsius at sea level.",
            "Cats sleep for most of the day.",
        ],
    ),
    (
        "At what temperature does water boil?",
        [
            "Water boils at 100 degrees Celsius at sea level.",
            "Hamlet is a tragedy written by William Shakespeare.",
            "The violin is played with a bow.",
        ],
    ),
    (
        "How many strings does a violin have?",
        [
            "A standard violin has four strings tuned in fifths.",
            "The French Revolution began in 1789.",
            "Bananas grow in tropical climates.",
        ],
    ),
    (
        "Which fruit is rich in potassium?",
        [
            "Bananas are a good source of potassium.",
            "PostgreSQL is an open source relational database system.",
            "The moon orbits the Earth.",
        ],
    ),
];

/// On the reranking fixture every relevant document comes first, by a clear margin (the
/// smallest measured was 0.07), and relevant documents score higher than unrelated ones on
/// average. SmolLM2-135M put the relevant document first on none of these eight.
#[test]
fn reranking_puts_the_relevant_document_first_on_a_labelled_set() {
    let model = common::reranker();
    let (mut relevant, mut unrelated) = (0.0, 0.0);
    for (query, docs) in LABELLED {
        let scored = rerank::rerank(model, query, &docs, rerank::DEFAULT_TASK, None).unwrap();
        assert_eq!(scored[0].index, 0, "{query}: {scored:?}");
        assert!(
            scored[0].score - scored[1].score > 0.02,
            "{query}: {scored:?}"
        );
        relevant += scored[0].score;
        unrelated += scored[1].score + scored[2].score;
    }
    let (relevant, unrelated) = (relevant / 8.0, unrelated / 16.0);
    assert!(
        relevant > unrelated + 0.1,
        "mean relevant {relevant}, unrelated {unrelated}"
    );
}

/// What holds for any model, even one that cannot judge relevance (SmolLM2, the fixture every
/// other path uses): continuous scores in [0, 1], each document scored on its own, best first,
/// deterministic.
#[test]
fn reranking_gives_each_document_its_own_continuous_score() {
    let model = common::generator();
    let query = "What is PostgreSQL?";
    // The long document (over 256 tokens) makes the scorer grow its context, and the violin
    // is scored after it: neither may change a score.
    let long = "A long note about storage engines and write-ahead logs. ".repeat(30);
    let docs = [
        "PostgreSQL is an open source relational database system.",
        "Bananas are a good source of potassium.",
        &long,
        "A violin has four strings.",
    ];
    let scored = rerank::rerank(model, query, &docs, rerank::DEFAULT_TASK, None).unwrap();
    assert_eq!(scored.len(), 4);
    assert!(
        scored.windows(2).all(|w| w[0].score >= w[1].score),
        "best first: {scored:?}"
    );
    assert!(
        scored.iter().all(|s| s.score > 0.0 && s.score < 1.0),
        "continuous: {scored:?}"
    );
    for s in &scored {
        let alone =
            rerank::rerank(model, query, &[docs[s.index]], rerank::DEFAULT_TASK, None).unwrap();
        assert_eq!(
            alone[0].score, s.score,
            "a document's score does not depend on the others"
        );
    }
    let other_task =
        rerank::rerank(model, query, &docs, "Find documents about fruit", None).unwrap();
    assert_ne!(other_task, scored, "the task is part of the prompt");
    assert_eq!(
        rerank::rerank(model, query, &docs, rerank::DEFAULT_TASK, None).unwrap(),
        scored
    );
}

#[test]
fn the_word_overlap_fallback_orders_a_labelled_set() {
    let docs = [
        "The violin has four strings",
        "PostgreSQL is a relational database",
        "What is a relational database? PostgreSQL is one",
    ];
    let order: Vec<usize> = rerank::fallback("what is postgresql", &docs)
        .iter()
        .map(|s| s.index)
        .collect();
    assert_eq!(order, vec![2, 1, 0]);
}
