//! `st rerank`.

use std::io::{BufRead, Write};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use steadytext::execute::Quiet;
use steadytext::request::{RerankSpec, Spec};
use steadytext::rerank;

/// Options of `st rerank`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The query.
    query: String,
    /// The documents; else one per line from --file or stdin.
    documents: Vec<String>,
    /// Read documents from this file, one per line.
    #[arg(long)]
    file: Option<std::path::PathBuf>,
    /// The instruction given to the reranker.
    #[arg(long, default_value = steadytext::defaults::RERANK_TASK)]
    task: String,
    /// Print only the best k documents.
    #[arg(long)]
    top_k: Option<usize>,
    /// Print documents without scores.
    #[arg(long)]
    no_scores: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Accepted for SteadyText compatibility: scores come from logits, not sampling.
    #[arg(long, default_value_t = steadytext::defaults::SEED as i64)]
    seed: i64,
    /// Registry name, .gguf file name in the models directory, or path of the reranking model.
    #[arg(long)]
    model: Option<String>,
    /// Ask the running daemon instead of loading the model here.
    #[arg(long)]
    daemon: bool,
    /// llama.cpp threads.
    #[arg(long)]
    threads: Option<i32>,
    #[command(flatten)]
    limits: crate::daemon::LimitArgs,
}

fn documents(args: &Args) -> Result<Vec<String>> {
    let lines = |reader: &mut dyn BufRead| -> Result<Vec<String>> {
        let mut docs = Vec::new();
        for line in reader.lines() {
            let line = line?;
            if !line.trim().is_empty() {
                docs.push(line);
            }
        }
        Ok(docs)
    };
    let docs = if !args.documents.is_empty() {
        args.documents.clone()
    } else if let Some(path) = &args.file {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        lines(&mut std::io::BufReader::new(file))?
    } else {
        lines(&mut std::io::stdin().lock())?
    };
    if docs.is_empty() {
        bail!("no documents: give them as arguments, with --file, or on stdin");
    }
    Ok(docs)
}

/// What was ranked, and with what.
struct Ranking {
    scored: Vec<(String, f64)>,
    fallback: bool,
    model: Option<String>,
}

/// Each document with its score, best first. Without a usable reranking model the scores are the
/// word-overlap fallback, and a warning says so.
fn ranked(args: &Args, docs: &[String]) -> Result<Ranking> {
    let spec = RerankSpec {
        query: args.query.clone(),
        documents: Value::from(docs.to_vec()),
        task: Some(args.task.clone()),
        model: args.model.clone(),
        ..RerankSpec::default()
    };
    let ran = crate::route::run(
        Spec::Rerank(spec),
        args.daemon,
        args.threads,
        &crate::route::builder(&args.limits),
        false,
        &mut Quiet,
    )
    .and_then(|ran| {
        let model = ran.model.as_ref().map(|m| m.path.display().to_string());
        Ok((ran.output.into_ranked()?, model))
    });
    let unusable = |e: &anyhow::Error| {
        e.downcast_ref::<steadytext::Error>().is_some_and(|e| {
            matches!(
                e.kind(),
                steadytext::ErrorKind::ModelMissing | steadytext::ErrorKind::ModelLoad
            )
        })
    };
    let (scored, fallback, model) = match ran {
        Ok((scored, model)) => (scored, false, model.or_else(|| args.model.clone())),
        Err(e) if !unusable(&e) => return Err(e),
        Err(e) => {
            eprintln!(
                "st: warning: no reranking model ({e:#}); scores are word overlap, not model scores"
            );
            let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
            (rerank::fallback(&args.query, &refs), true, None)
        }
    };
    Ok(Ranking {
        scored: scored
            .iter()
            .map(|s| (docs[s.index].clone(), s.score))
            .collect(),
        fallback,
        model,
    })
}

pub fn run(args: Args) -> Result<()> {
    if args.query.trim().is_empty() {
        bail!("the query is empty");
    }
    if args.seed < 0 {
        bail!("seed must be non-negative");
    }
    let docs = documents(&args)?;
    let started = Instant::now();
    let Ranking {
        mut scored,
        fallback,
        model,
    } = ranked(&args, &docs)?;
    if let Some(k) = args.top_k {
        scored.truncate(k);
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let documents: Vec<_> = scored
            .iter()
            .enumerate()
            .map(|(i, (d, s))| json!({ "document": d, "score": (!args.no_scores).then_some(s), "rank": i + 1 }))
            .collect();
        let report = json!({
            "query": args.query, "task": args.task, "documents": documents,
            "model": model, "fallback": fallback,
            "total_documents": docs.len(), "returned_documents": scored.len(),
            "time_taken": started.elapsed().as_secs_f64(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    for (i, (doc, score)) in scored.iter().enumerate() {
        if args.no_scores {
            writeln!(out, "{}. {doc}", i + 1)?;
        } else {
            writeln!(out, "{}. [{score:.4}] {doc}", i + 1)?;
        }
    }
    Ok(())
}
