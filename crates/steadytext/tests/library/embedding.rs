//! Embeddings on the real all-MiniLM-L6-v2 test model.

use steadytext::embed::{average, cosine};

use crate::common::{bits, embed, embed_with};

fn norm(v: &[f32]) -> f64 {
    v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt()
}

#[test]
fn width_is_1024_and_norm_is_one() {
    let v = embed("PostgreSQL is a relational database");
    assert_eq!(v.len(), 1024);
    assert!((norm(&v) - 1.0).abs() < 1e-5, "norm {}", norm(&v));
    // MiniLM is 384 wide: the rest is zero padding.
    assert!(v[384..].iter().all(|&x| x == 0.0));
}

#[test]
fn empty_text_gives_the_zero_vector() {
    for v in embed_with(&["", "   ", "\n\t"], "query", 2) {
        assert_eq!(v.len(), 1024);
        assert!(v.iter().all(|&x| x == 0.0));
    }
}

#[test]
fn one_and_two_threads_are_bit_identical() {
    let one = embed_with(&["deterministic"], "passage", 1);
    let two = embed_with(&["deterministic"], "passage", 2);
    assert_eq!(bits(&one[0]), bits(&two[0]));
    assert_eq!(
        bits(&one[0]),
        bits(&embed_with(&["deterministic"], "passage", 2)[0])
    );
}

#[test]
fn batch_equals_single_bit_for_bit() {
    let texts = [
        "a cat",
        "",
        "the stock market fell",
        "un chat noir",
        "a cat",
    ];
    let batch = embed_with(&texts, "query", 2);
    assert_eq!(batch.len(), texts.len());
    for (text, vector) in texts.iter().zip(&batch) {
        let single = embed_with(&[text], "query", 2).remove(0);
        assert_eq!(bits(vector), bits(&single), "{text}");
    }
}

#[test]
fn mode_changes_the_vector() {
    let q = embed_with(&["cats"], "query", 2).remove(0);
    let p = embed_with(&["cats"], "passage", 2).remove(0);
    assert_ne!(bits(&q), bits(&p));
}

#[test]
fn average_form_is_one_normalised_vector() {
    let vectors = embed_with(&["cat", "", "dog"], "query", 2);
    let avg = average(&vectors);
    assert!((norm(&avg) - 1.0).abs() < 1e-5);
    let (cat, dog, car) = (embed("cat"), embed("dog"), embed("car"));
    // The mean of cat and dog is closer to each of them than to an unrelated word.
    assert!(cosine(&avg, &cat) > cosine(&avg, &car));
    assert!(cosine(&avg, &dog) > cosine(&avg, &car));
    assert!(average(&embed_with(&["", " "], "query", 2))
        .iter()
        .all(|&x| x == 0.0));
}

#[test]
fn long_input_is_truncated_not_rejected() {
    let v = embed(&"word ".repeat(1900));
    assert!((norm(&v) - 1.0).abs() < 1e-5);
}

#[test]
fn semantic_triples_hold() {
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
        let (a, n, f) = (embed(anchor), embed(near), embed(far));
        let (cn, cf) = (cosine(&a, &n), cosine(&a, &f));
        if cn <= cf {
            failures.push(format!(
                "cos({anchor}, {near})={cn:.3} <= cos({anchor}, {far})={cf:.3}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
