//! Constrained decoding against unconstrained decoding of the same prompt (tokens per second over
//! the whole run, prompt included), and the time to compile a schema for the model's vocabulary.

use std::time::Instant;

use anyhow::Result;
use serde_json::json;
use steadytext::{Constraint, ModelRef};

use crate::core::{median, test_models};
use crate::library;

const PROMPT: &str = "Write a short story about a lighthouse keeper.";
const MAX_NEW: usize = 96;

/// Tokens per second of one run: generated tokens over wall time.
fn rate(model: &ModelRef, constraint: Option<&Constraint>) -> Result<f64> {
    let request = library::generate_request(model, PROMPT, MAX_NEW, constraint.cloned());
    let timed = library::timed(request, 2)?;
    Ok(timed.summary.generated_tokens as f64 / timed.total)
}

fn median_rate(model: &ModelRef, constraint: Option<&Constraint>, repeat: usize) -> Result<f64> {
    rate(model, constraint)?;
    let runs = (0..repeat)
        .map(|_| rate(model, constraint))
        .collect::<Result<Vec<_>>>()?;
    Ok(median(runs))
}

/// Milliseconds to check (compile) a constraint, median of `repeat`.
fn compile_ms(constraint: &Constraint, repeat: usize) -> Result<f64> {
    let runs = (0..repeat.max(3))
        .map(|_| {
            let start = Instant::now();
            constraint.check()?;
            Ok(start.elapsed().as_secs_f64() * 1000.0)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(median(runs))
}

/// Runs the benchmark; returns JSON and a Markdown section.
pub fn run(repeat: usize) -> Result<(serde_json::Value, String)> {
    let (model, _) = test_models()?;
    let free = median_rate(&model, None, repeat)?;
    // A grammar the story mostly satisfies, and one that forces a shape the model would not
    // produce by itself.
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
        "\n## Constrained decoding (llguidance; SmolLM2, {MAX_NEW} tokens, greedy, 2 threads)\n\n\
         Unconstrained: {free:.1} tokens/s.\n\n\
         | constraint | tokens/s | constrained / unconstrained | compile, ms |\n\
         |---|---|---|---|\n"
    );
    for (name, constraint) in &cases {
        let constrained = median_rate(&model, Some(constraint), repeat)?;
        let compile = compile_ms(constraint, repeat)?;
        markdown.push_str(&format!(
            "| {name} | {constrained:.1} | {:.3} | {compile:.2} |\n",
            constrained / free
        ));
        rows.push(json!({ "constraint": name, "tps": constrained,
                          "ratio": constrained / free, "compile_ms": compile }));
    }
    Ok((
        json!({ "unconstrained_tps": free, "constraints": rows }),
        markdown,
    ))
}
