//! Reranking documents per second: one scorer per query (the prompt's shared part, everything
//! before the document, decoded once) against a fresh context per document (how each document
//! was scored before). Both give the same ranking; the shared prefix changes the last digits of
//! a score, not its meaning, and a test asserts a document scores the same alone or with others.

use std::time::Instant;

use anyhow::Result;
use serde_json::json;
use steadytext::{ModelRef, Role};

use crate::core::{median, models_dir, GENERATION_MODEL};
use crate::library;

const RERANK_MODEL: &str = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf";
const QUERY: &str = "How does PostgreSQL keep data safe after a crash?";
const DOCUMENTS: [&str; 8] = [
    "PostgreSQL writes every change to the write-ahead log before the data files.",
    "Bananas are a good source of potassium.",
    "After a crash, PostgreSQL replays the write-ahead log from the last checkpoint.",
    "A violin has four strings tuned in fifths.",
    "Checkpoints flush dirty pages so that recovery has less log to replay.",
    "The Eiffel Tower was finished in 1889.",
    "fsync makes sure the log reaches the disk before a commit returns.",
    "Cats sleep for most of the day.",
];

/// Documents per second of one pass over the documents.
fn rate(model: &ModelRef, shared: bool) -> Result<f64> {
    let start = Instant::now();
    if shared {
        library::rerank(model, QUERY, &DOCUMENTS, 2)?;
    } else {
        for doc in DOCUMENTS {
            library::rerank(model, QUERY, &[doc], 2)?;
        }
    }
    Ok(DOCUMENTS.len() as f64 / start.elapsed().as_secs_f64())
}

fn median_rate(model: &ModelRef, shared: bool, repeat: usize) -> Result<f64> {
    rate(model, shared)?;
    let runs = (0..repeat)
        .map(|_| rate(model, shared))
        .collect::<Result<Vec<_>>>()?;
    Ok(median(runs))
}

/// Runs the benchmark on both test models that can score; returns JSON and a Markdown section.
pub fn run(repeat: usize) -> Result<(serde_json::Value, String)> {
    let mut markdown = format!(
        "\n## Reranking ({} short documents per query, 2 threads)\n\n\
         | model | shared prefix, docs/s | fresh context per document, docs/s | ratio |\n\
         |---|---|---|---|\n",
        DOCUMENTS.len()
    );
    let mut rows = Vec::new();
    for (name, file) in [
        ("Qwen2.5-Coder-1.5B-Instruct Q4_K_M", RERANK_MODEL),
        ("SmolLM2-135M-Instruct Q4_1", GENERATION_MODEL),
    ] {
        let model = library::model_ref(&models_dir().join(file), Role::Reranking)?;
        let shared = median_rate(&model, true, repeat)?;
        let fresh = median_rate(&model, false, repeat)?;
        markdown.push_str(&format!(
            "| {name} | {shared:.2} | {fresh:.2} | {:.2} |\n",
            shared / fresh
        ));
        rows.push(json!({ "model": name, "shared_docs_per_s": shared,
                          "fresh_docs_per_s": fresh, "ratio": shared / fresh }));
    }
    Ok((json!(rows), markdown))
}
