//! Embeddings on the real all-MiniLM-L6-v2 test model.

mod common;

use steadytext::{cosine, embed, embed_average, embed_batch, EmbedMode};

fn norm(v: &[f32]) -> f64 {
    v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt()
}

#[test]
fn width_is_1024_and_norm_is_one() {
    let model = common::embedder();
    let v = embed(
        model,
        "PostgreSQL is a relational database",
        EmbedMode::Query,
        None,
    )
    .unwrap();
    assert_eq!(v.len(), 1024);
    assert!((norm(&v) - 1.0).abs() < 1e-5, "norm {}", norm(&v));
    // MiniLM is 384 wide: the rest is zero padding.
    assert!(v[384..].iter().all(|&x| x == 0.0));
}

#[test]
fn empty_text_gives_the_zero_vector() {
    let model = common::embedder();
    for text in ["", "   ", "\n\t"] {
        let v = embed(model, text, EmbedMode::Query, None).unwrap();
        assert_eq!(v.len(), 1024);
        assert!(v.iter().all(|&x| x == 0.0));
    }
}

#[test]
fn repeated_calls_are_bit_identical() {
    let model = common::embedder();
    let a = embed(model, "deterministic", EmbedMode::Passage, None).unwrap();
    let b = embed(model, "deterministic", EmbedMode::Passage, Some(1)).unwrap();
    let c = embed(model, "deterministic", EmbedMode::Passage, Some(2)).unwrap();
    assert_eq!(bits(&a), bits(&b));
    assert_eq!(bits(&a), bits(&c));
}

#[test]
fn batch_equals_single_bit_for_bit() {
    let model = common::embedder();
    let texts = [
        "a cat",
        "",
        "the stock market fell",
        "un chat noir",
        "a cat",
    ];
    let batch = embed_batch(model, &texts, EmbedMode::Query, None).unwrap();
    assert_eq!(batch.len(), texts.len());
    for (text, vector) in texts.iter().zip(&batch) {
        let single = embed(model, text, EmbedMode::Query, None).unwrap();
        assert_eq!(bits(vector), bits(&single), "{text}");
    }
}

#[test]
fn mode_changes_the_vector() {
    let model = common::embedder();
    let q = embed(model, "cats", EmbedMode::Query, None).unwrap();
    let p = embed(model, "cats", EmbedMode::Passage, None).unwrap();
    assert_ne!(bits(&q), bits(&p));
}

#[test]
fn average_form_is_one_normalised_vector() {
    let model = common::embedder();
    let avg = embed_average(model, &["cat", "", "dog"], EmbedMode::Query, None).unwrap();
    assert!((norm(&avg) - 1.0).abs() < 1e-5);
    let cat = embed(model, "cat", EmbedMode::Query, None).unwrap();
    let dog = embed(model, "dog", EmbedMode::Query, None).unwrap();
    let car = embed(model, "car", EmbedMode::Query, None).unwrap();
    // The mean of cat and dog is closer to each of them than to an unrelated word.
    assert!(cosine(&avg, &cat) > cosine(&avg, &car));
    assert!(cosine(&avg, &dog) > cosine(&avg, &car));
    assert!(embed_average(model, &["", " "], EmbedMode::Query, None)
        .unwrap()
        .iter()
        .all(|&x| x == 0.0));
}

#[test]
fn long_input_is_truncated_not_rejected() {
    let model = common::embedder();
    let v = embed(model, &"word ".repeat(3000), EmbedMode::Query, None).unwrap();
    assert!((norm(&v) - 1.0).abs() < 1e-5);
}

#[test]
fn semantic_triples_hold() {
    let model = common::embedder();
    // (anchor, closer, farther)
    let triples = [
        ("cat", "kitten", "car"),
        ("dog", "puppy", "spreadsheet"),
        ("king", "queen", "bicycle"),
        (
            "PostgreSQL database",
            "SQL server query",
            "banana bread recipe",
        ),
        (
            "How do I bake bread?",
            "Bread baking instructions",
            "Car engine repair",
        ),
        (
            "The weather is sunny today",
            "It is a bright and clear day",
            "The stock market crashed",
        ),
        (
            "machine learning",
            "artificial intelligence",
            "gardening tools",
        ),
        (
            "I love playing football",
            "Soccer is my favorite sport",
            "Quantum physics lecture",
        ),
        (
            "a fast red car",
            "a quick crimson automobile",
            "a slow green turtle",
        ),
        ("doctor", "physician", "volcano"),
        ("ocean", "sea", "desert"),
        ("happy", "joyful", "asphalt"),
    ];
    let mut failures = Vec::new();
    for (anchor, near, far) in triples {
        let v = |t| embed(model, t, EmbedMode::Query, None).unwrap();
        let (a, n, f) = (v(anchor), v(near), v(far));
        let (cn, cf) = (cosine(&a, &n), cosine(&a, &f));
        if cn <= cf {
            failures.push(format!(
                "cos({anchor}, {near})={cn:.3} <= cos({anchor}, {far})={cf:.3}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}
