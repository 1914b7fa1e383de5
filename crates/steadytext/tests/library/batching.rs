//! Continuous batching through the executor the daemon uses: generations that join a running
//! batch at different times, leave when they end or are dropped, and reuse the streams others
//! left, and start from the KV cells of the prefix they share with a running one, give exactly
//! the text, summary and streamed pieces they give alone, on both generation fixtures (up to 8
//! sequences per call on both).

use serde_json::json;
use steadytext::batch::Batched;
use steadytext::execute::{self, Execution, Executor, Output, Progress};
use steadytext::request::{GenerateSpec, Spec};
use steadytext::{Local, Request};

use crate::common::{builder, generation_model_path, reranking_model_path, spec, Pieces};

/// Twelve generations (more than a batch holds, so streams are reused) of different prompt
/// lengths and budgets; one samples, one stops at an eos string, two are constrained.
fn specs(model: &str) -> Vec<GenerateSpec> {
    let plain = [
        ("Hi.", 40),
        ("Write a haiku about the sea.", 64),
        (
            "Explain why the sky is blue, for a curious child who keeps asking why.",
            96,
        ),
        ("List three prime numbers.", 24),
        (
            "Describe a lighthouse keeper's morning, the weather, the lamp and the logbook.",
            80,
        ),
        ("What is 17 times 23?", 16),
        (
            "Translate 'good morning' into French, Spanish and German.",
            48,
        ),
        ("Summarise a story about a robot who learns to paint.", 72),
        ("Name four rivers of Europe.", 32),
    ];
    let mut specs: Vec<GenerateSpec> = plain.iter().map(|&(p, n)| spec(p, n)).collect();
    specs[3].temperature = Some(0.7);
    specs[3].seed = Some(7);
    specs[6].eos_string = Some("Spanish".into());
    let mut choice = spec("Is water wet? Answer yes or no.", 8);
    choice.choices = Some(json!(["yes", "no"]));
    specs.push(choice);
    let mut person = spec("Give a person's name and age as JSON.", 48);
    person.schema = Some(json!({
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"}},
        "required": ["name", "age"]
    }));
    specs.push(person);
    specs.push(spec("Count from one to ten in words.", 56));
    for s in &mut specs {
        s.model = Some(model.to_string());
    }
    specs
}

fn request(spec: &GenerateSpec) -> Request {
    Spec::Generate(spec.clone()).build(&builder()).unwrap()
}

/// Each generation alone, streamed: its output and its pieces.
fn alone(specs: &[GenerateSpec]) -> Vec<(Output, Vec<String>)> {
    specs
        .iter()
        .map(|s| {
            let mut pieces = Pieces::default();
            let out = execute::run(&Local::new(2), request(s), true, &mut pieces).unwrap();
            (out, pieces.0)
        })
        .collect()
}

struct Running<'e> {
    index: usize,
    execution: Box<dyn Execution + 'e>,
    pieces: Vec<String>,
}

/// Runs the generations through one batch: three start together, the others join as soon as a
/// sequence has left and after the batch has run a few steps; the one at `dropped` is dropped
/// after five steps. Every running execution is advanced once per round, as the daemon does.
/// A generation's output and streamed pieces; `None` for one that was dropped.
type Finished = Option<(Output, Vec<String>)>;

/// Also returns the most sequences one decode call carried.
fn batched(specs: &[GenerateSpec], dropped: usize) -> (Vec<Finished>, usize) {
    let executor = Batched::new(2);
    let mut results: Vec<Finished> = specs.iter().map(|_| None).collect();
    let mut next = 0;
    let mut running: Vec<Running> = Vec::new();
    let mut round = 0;
    while next < specs.len() || !running.is_empty() {
        let joining = if round == 0 { 3 } else { 1 };
        for _ in 0..joining {
            if next < specs.len() && running.len() < 8 && (round == 0 || round % 3 == 1) {
                let execution = executor.execute(request(&specs[next]), true).unwrap();
                assert!(
                    executor.take_joined(),
                    "generation {next} did not join the batch"
                );
                running.push(Running {
                    index: next,
                    execution,
                    pieces: Vec::new(),
                });
                next += 1;
            }
        }
        round += 1;
        let mut still = Vec::new();
        for mut r in running {
            if r.index == dropped && r.pieces.len() >= 5 {
                continue;
            }
            match r.execution.advance().unwrap() {
                Progress::Piece(p) => {
                    r.pieces.push(p);
                    still.push(r);
                }
                Progress::Working => still.push(r),
                Progress::Done(out) => results[r.index] = Some((out, r.pieces)),
            }
        }
        running = still;
    }
    assert!(
        executor.shared_cells() > 0,
        "the prompts share the chat template's system prompt, but none took a running one's cells"
    );
    (results, executor.most_rows())
}

/// The most sequences in one decode call must be within `rows` (at least 4, so the batch was
/// used; 8 is the limit, seldom reached, as sequences end while others join).
fn check(model: &str, rows: std::ops::RangeInclusive<usize>) {
    let specs = specs(model);
    let alone = alone(&specs);
    let dropped = 1;
    let (together, most_rows) = batched(&specs, dropped);
    assert!(
        rows.contains(&most_rows),
        "{model}: {most_rows} sequences in one decode call"
    );
    for (i, (a, b)) in alone.iter().zip(&together).enumerate() {
        if i == dropped {
            assert!(b.is_none(), "the dropped generation did not finish");
            continue;
        }
        let b = b.as_ref().unwrap();
        assert_eq!(
            &a.0, &b.0,
            "{model}: generation {i} ({:?})",
            specs[i].prompt
        );
        assert_eq!(
            a.1.concat(),
            b.1.concat(),
            "{model}: generation {i}'s pieces"
        );
    }
    let texts: Vec<String> = alone
        .iter()
        .map(|(o, _)| o.clone().into_text().unwrap())
        .collect();
    assert!(
        texts.iter().collect::<std::collections::HashSet<_>>().len() > 8,
        "the outputs should differ: {texts:?}"
    );
}

#[test]
fn q4_1_generations_in_one_batch_equal_generations_alone() {
    check(&generation_model_path().display().to_string(), 4..=8);
}

#[test]
fn repacked_generations_in_one_batch_equal_generations_alone() {
    check(&reranking_model_path().display().to_string(), 4..=8);
}

/// Embeddings, and a generation that needs more KV cells than a batched sequence has, run alone
/// (as `Local` runs them, with the same output); a short generation joins.
#[test]
fn what_does_not_batch_runs_alone() {
    let executor = Batched::new(2);
    let embed = Spec::Embed(steadytext::request::EmbedSpec {
        texts: Some(vec!["a lighthouse".into()]),
        use_cache: Some(false),
        ..Default::default()
    })
    .build(&builder())
    .unwrap();
    assert!(!executor.joins(&embed));
    let mut pieces = Pieces::default();
    let batched = execute::run(&executor, embed.clone(), false, &mut pieces).unwrap();
    assert!(!executor.take_joined());
    let alone = execute::run(&Local::new(2), embed, false, &mut pieces).unwrap();
    assert_eq!(batched, alone);

    let long = request(&spec("Write a very long story.", 3000));
    assert!(executor.joins(&long), "the model batches");
    drop(executor.execute(long, false).unwrap());
    assert!(
        !executor.take_joined(),
        "3000 tokens do not fit a sequence's 2048 cells"
    );
    drop(executor.execute(request(&spec("Hi.", 4)), false).unwrap());
    assert!(executor.take_joined());
}
