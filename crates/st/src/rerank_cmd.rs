//! `st rerank`.

use std::io::{BufRead, Write};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::json;
use steadytext::rerank::{self, DEFAULT_TASK};
use steadytext::store::Fetch;
use steadytext::{Engine, ModelChoice, Role};

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
    #[arg(long, default_value = DEFAULT_TASK)]
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
    #[arg(long, default_value_t = 42)]
    seed: i64,
    /// Registry name or path of the reranking model.
    #[arg(long)]
    model: Option<String>,
    /// Ask the running daemon instead of loading the model here.
    #[arg(long)]
    daemon: bool,
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

/// Each document with its score, best first; `true` when the scores are the word-overlap
/// fallback because no reranking model could be used.
fn ranked(args: &Args, query: &str, docs: &[String]) -> Result<(Vec<(String, f64)>, bool)> {
    let scored = if args.daemon {
        let client = crate::daemon::connect()?;
        let params = json!({ "query": query, "documents": docs, "task": args.task,
                             "return_scores": true, "model": args.model });
        client
            .call("rerank", params, &mut || true)
            .map_err(anyhow::Error::from)
            .and_then(|v| Ok(serde_json::from_value::<Vec<(String, f64)>>(v)?))
    } else {
        let choice = ModelChoice {
            model: args.model.clone(),
            ..Default::default()
        };
        Engine::global()
            .model(&choice, Role::Reranking, Fetch::IfAllowed)
            .map_err(anyhow::Error::from)
            .and_then(|model| {
                let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
                let scored = rerank::rerank(model, query, &refs, &args.task, None)?;
                Ok(scored
                    .iter()
                    .map(|s| (docs[s.index].clone(), s.score))
                    .collect())
            })
    };
    match scored {
        Ok(scored) => Ok((scored, false)),
        Err(e) => {
            eprintln!("st: warning: no reranking model ({e:#}); scores are word overlap, not model scores");
            let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
            let scored = rerank::fallback(query, &refs);
            Ok((
                scored
                    .iter()
                    .map(|s| (docs[s.index].clone(), s.score))
                    .collect(),
                true,
            ))
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    if args.query.trim().is_empty() {
        bail!("the query is empty");
    }
    steadytext::validate_seed(args.seed)?;
    let docs = documents(&args)?;
    let started = Instant::now();
    let (mut scored, fallback) = ranked(&args, &args.query, &docs)?;
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
            "model": args.model, "fallback": fallback,
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
