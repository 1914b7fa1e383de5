//! Constrained decoding against unconstrained decoding of the same prompt, with and without the
//! best-token-first check (the unconstrained best token is tried against the grammar before
//! the whole vocabulary is filtered). Tokens per second over the decode loop, prompt included.

use std::time::Instant;

use anyhow::Result;
use serde_json::json;
use steadytext::{stream, stream_constrained, Constraint, GenerateParams, Model};

use crate::core::{median, test_models};

const PROMPT: &str = "Write a short story about a lighthouse keeper.";
const MAX_NEW: usize = 96;

/// Tokens per second of one run: generated tokens over wall time.
fn rate(model: &Model, constraint: Option<&Constraint>, best_first: bool) -> Result<f64> {
    let params = GenerateParams {
        max_new_tokens: MAX_NEW,
        threads: Some(2),
        ..Default::default()
    };
    let start = Instant::now();
    let mut s = match constraint {
        Some(c) => stream_constrained(model, PROMPT, &params, c, best_first)?,
        None => stream(model, PROMPT, &params)?,
    };
    for piece in s.by_ref() {
        piece?;
    }
    Ok(s.generated_tokens() as f64 / start.elapsed().as_secs_f64())
}

fn median_rate(
    model: &Model,
    constraint: Option<&Constraint>,
    best_first: bool,
    repeat: usize,
) -> Result<f64> {
    rate(model, constraint, best_first)?;
    let runs = (0..repeat)
        .map(|_| rate(model, constraint, best_first))
        .collect::<Result<Vec<_>>>()?;
    Ok(median(runs))
}

/// Runs the benchmark; returns JSON and a Markdown section.
pub fn run(repeat: usize) -> Result<(serde_json::Value, String)> {
    let (model, _) = test_models()?;
    let free = median_rate(model, None, true, repeat)?;
    // A grammar the story mostly satisfies (the best token is usually allowed), and one that
    // forces a shape the model would not produce by itself.
    let cases = [
        (
            "any printable text (regex `[ -~\\n]{1,400}`)",
            Constraint::Regex("[ -~\\n]{1,400}".into()),
        ),
        (
            "JSON object with a long string field",
            Constraint::Json(
                json!({"type": "object", "properties": {"story": {"type": "string", "maxLength": 400}}, "required": ["story"]}),
            ),
        ),
    ];
    let mut rows = Vec::new();
    let mut markdown = format!(
        "\n## Constrained decoding (SmolLM2, {MAX_NEW} tokens, greedy, 2 threads)\n\n\
         Unconstrained: {free:.1} tokens/s.\n\n\
         | grammar | best token first, tok/s | filter every token, tok/s | best-first / unconstrained | filter-all / unconstrained |\n\
         |---|---|---|---|---|\n"
    );
    for (name, constraint) in &cases {
        let fast = median_rate(model, Some(constraint), true, repeat)?;
        let slow = median_rate(model, Some(constraint), false, repeat)?;
        markdown.push_str(&format!(
            "| {name} | {fast:.1} | {slow:.1} | {:.3} | {:.3} |\n",
            fast / free,
            slow / free
        ));
        rows.push(
            json!({ "grammar": name, "best_first_tps": fast, "filter_all_tps": slow,
                          "best_first_ratio": fast / free, "filter_all_ratio": slow / free }),
        );
    }
    markdown.push_str(
        "\nBoth columns produce the same bytes (asserted in crates/steadytext/tests/structured.rs).\n",
    );
    Ok((
        json!({ "unconstrained_tps": free, "grammars": rows }),
        markdown,
    ))
}
