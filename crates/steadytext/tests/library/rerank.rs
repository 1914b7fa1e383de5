//! Reranking: ranking quality on the reranking fixture, continuous per-document scores on any
//! model, and the word-overlap fallback.

use steadytext::defaults::RERANK_TASK;

use crate::common::{self, rerank};

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
        let scored = rerank(&model, query, &docs, RERANK_TASK);
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
    let scored = rerank(&model, query, &docs, RERANK_TASK);
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
        let alone = rerank(&model, query, &[docs[s.index]], RERANK_TASK);
        assert_eq!(
            alone[0].score, s.score,
            "a document's score does not depend on the others"
        );
    }
    let other_task = rerank(&model, query, &docs, "Find documents about fruit");
    assert_ne!(other_task, scored, "the task is part of the prompt");
    assert_eq!(rerank(&model, query, &docs, RERANK_TASK), scored);
}

#[test]
fn the_word_overlap_fallback_orders_a_labelled_set() {
    let docs = [
        "The violin has four strings",
        "PostgreSQL is a relational database",
        "What is a relational database? PostgreSQL is one",
    ];
    let order: Vec<usize> = steadytext::rerank::fallback("what is postgresql", &docs)
        .iter()
        .map(|s| s.index)
        .collect();
    assert_eq!(order, vec![2, 1, 0]);
}

/// A thread's stop flag (`steadytext::stop`) stops a reranking or an embedding inside its
/// llama.cpp evaluation, as Error::cancelled; once the guard is gone the same calls give the
/// same bits as before (a stopped evaluation leaves nothing behind), and a flag that is not set
/// changes nothing.
#[test]
fn a_set_stop_flag_cancels_inside_the_evaluation_and_leaves_nothing_behind() {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use steadytext::request::{EmbedSpec, RerankSpec, Spec};
    use steadytext::ErrorKind;

    let generator = common::generator();
    let documents = ["PostgreSQL is a database.", "Bananas are yellow."];
    let rerank_spec = || {
        Spec::Rerank(RerankSpec {
            query: "What is PostgreSQL?".into(),
            documents: serde_json::json!(documents),
            model: Some(generator.path.display().to_string()),
            use_cache: Some(false),
            ..RerankSpec::default()
        })
    };
    let embed_spec = || {
        Spec::Embed(EmbedSpec {
            texts: Some(vec!["a text to embed".into()]),
            use_cache: Some(false),
            model: Some(common::embedding_model_path().display().to_string()),
            ..EmbedSpec::default()
        })
    };
    let before = (
        common::run_spec(rerank_spec(), 2).unwrap().0,
        common::run_spec(embed_spec(), 2).unwrap().0,
    );
    {
        let unset = Arc::new(AtomicBool::new(false));
        let _guard = steadytext::stop::when(&unset);
        let scores = common::run_spec(rerank_spec(), 2).unwrap().0;
        assert_eq!(scores, before.0, "an unset flag changes nothing");
    }
    {
        let set = Arc::new(AtomicBool::new(true));
        let _guard = steadytext::stop::when(&set);
        for spec in [rerank_spec(), embed_spec()] {
            let e = common::run_spec(spec, 2).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
        }
    }
    let after = (
        common::run_spec(rerank_spec(), 2).unwrap().0,
        common::run_spec(embed_spec(), 2).unwrap().0,
    );
    assert_eq!(after, before, "the same bits after a stopped evaluation");
}
