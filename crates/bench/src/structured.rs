//! Constrained decoding against unconstrained decoding of the same prompt, and the time to compile
//! a constraint.
//!
//! The figure is the decoding rate: tokens after the first over the time after the first. The
//! time to the first token (the prompt, and for a constraint its compilation for the model's
//! vocabulary) is reported apart: a whole-run rate would mostly measure how many tokens a
//! constraint lets the model write, not what each costs.

use std::time::Instant;

use anyhow::Result;
use serde_json::json;
use steadytext::{Constraint, ModelRef};

use crate::core::{median, test_models};
use crate::library;

const PROMPT: &str = "Write a short story about a lighthouse keeper.";
const MAX_NEW: usize = 128;

/// One run: tokens generated, milliseconds to the first token, decoding tokens per second.
#[derive(Clone, Copy)]
struct Run {
    tokens: usize,
    first_ms: f64,
    decode_tps: f64,
}

fn run_once(model: &ModelRef, constraint: Option<&Constraint>) -> Result<Run> {
    let request = library::generate_request(model, PROMPT, MAX_NEW, constraint.cloned());
    let timed = library::timed(request, 2)?;
    let tokens = timed.summary.generated_tokens;
    anyhow::ensure!(tokens > 8, "only {tokens} tokens: too few to time decoding");
    // After the first token, each token is decoded to get the next one's logits; an output that
    // ended by itself was decoded once more, to find that it ends (tokens a constraint forces at
    // the very end of the budget are not decoded: at most a few here).
    let decodes = tokens - 1 + usize::from(timed.summary.completed);
    Ok(Run {
        tokens,
        first_ms: timed.first * 1000.0,
        decode_tps: decodes as f64 / (timed.total - timed.first),
    })
}

/// Medians per case of `repeat` rounds after a warm-up; each round runs every case in turn, so
/// drift over the run weighs on all of them alike.
fn median_runs(model: &ModelRef, cases: &[Option<&Constraint>], repeat: usize) -> Result<Vec<Run>> {
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); cases.len()];
    for round in 0..=repeat {
        for (case, constraint) in cases.iter().enumerate() {
            let run = run_once(model, *constraint)?;
            if round > 0 {
                runs[case].push(run);
            }
        }
    }
    Ok(runs
        .iter()
        .map(|runs| Run {
            tokens: runs[0].tokens,
            first_ms: median(runs.iter().map(|r| r.first_ms).collect()),
            decode_tps: median(runs.iter().map(|r| r.decode_tps).collect()),
        })
        .collect())
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
    // A grammar the story mostly satisfies, and one that forces a shape the model would not
    // produce by itself: left alone it closes the string after a few words
    // (`{"story":"The Sorrow"}`), so `minLength` keeps it writing, and every time it tries to
    // close the string early the engine computes the whole mask.
    let cases = [
        (
            "any printable text (regex `[ -~\\n]{1,400}`)",
            Constraint::Regex("[ -~\\n]{1,400}".into()),
        ),
        (
            "JSON object with a long string field",
            Constraint::Json(
                json!({"type": "object", "properties": {"story": {"type": "string", "minLength": 150, "maxLength": 400}}, "required": ["story"]}),
            ),
        ),
    ];
    let mut all: Vec<Option<&Constraint>> = vec![None];
    all.extend(cases.iter().map(|(_, c)| Some(c)));
    let measured = median_runs(&model, &all, repeat)?;
    let free = measured[0];
    let mut rows = Vec::new();
    let mut markdown = format!(
        "\n## Constrained decoding (llguidance; SmolLM2, at most {MAX_NEW} tokens, greedy, 2 threads)\n\n\
         Decoding rate: decode calls after the first token over the time after it; the cases \
         run in turn in each round. The time to the first token includes the prompt and, with a constraint, compiling it for the model's \
         vocabulary; the compile column is the check of the constraint alone.\n\n\
         | constraint | tokens | first token, ms | decode tokens/s | constrained / unconstrained | compile, ms |\n\
         |---|---|---|---|---|---|\n\
         | none | {} | {:.1} | {:.1} | | |\n",
        free.tokens, free.first_ms, free.decode_tps
    );
    for ((name, constraint), constrained) in cases.iter().zip(&measured[1..]) {
        let compile = compile_ms(constraint, repeat)?;
        let ratio = constrained.decode_tps / free.decode_tps;
        markdown.push_str(&format!(
            "| {name} | {} | {:.1} | {:.1} | {ratio:.3} | {compile:.2} |\n",
            constrained.tokens, constrained.first_ms, constrained.decode_tps
        ));
        rows.push(json!({ "constraint": name, "tokens": constrained.tokens,
                          "first_token_ms": constrained.first_ms, "decode_tps": constrained.decode_tps,
                          "ratio": ratio, "compile_ms": compile }));
    }
    Ok((
        json!({ "unconstrained": { "tokens": free.tokens, "first_token_ms": free.first_ms,
                                   "decode_tps": free.decode_tps },
                "constraints": rows }),
        markdown,
    ))
}
