//! `steadytext-bench`: measures the library against a minimal llama.cpp loop over the same
//! crate, the daemon against the library, and the extension against the library, each in the
//! same run, and writes the figures to `bench/results/`.
//!
//! Every figure is a median over repeated runs; ratios compare numbers from this run only.

mod batching;
mod core;
mod daemon;
mod fleet;
mod library;
mod queue;
mod rerank;
mod sql;
mod structured;

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;

/// Options.
#[derive(Debug, Parser)]
struct Args {
    /// Directory for the results (`results.json` and `README.md` there).
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Repetitions per measurement.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// The `st` binary (runs the benchmark daemon).
    #[arg(long, default_value = "st")]
    st: PathBuf,
    /// Run only this section (core, structured, rerank, daemon, batching, sql, queue, fleet); for working on one
    /// benchmark.
    #[arg(long)]
    only: Option<String>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)?;
    let wanted = |section: &str| args.only.as_deref().is_none_or(|o| o == section);
    let skipped = || (serde_json::Value::Null, String::new());
    let core = if wanted("core") {
        core::run(args.repeat)?
    } else {
        core::Report::default()
    };
    let (daemon_json, daemon_markdown) = if wanted("daemon") {
        daemon::run(&args.st, args.repeat)?
    } else {
        skipped()
    };
    let (batching_json, batching_markdown) = if wanted("batching") {
        batching::run(&args.st, args.repeat)?
    } else {
        skipped()
    };
    let (sql_json, sql_markdown) = if wanted("sql") {
        sql::run(args.repeat)?
    } else {
        skipped()
    };
    let (queue_json, queue_markdown) = if wanted("queue") {
        queue::run(args.repeat)?
    } else {
        skipped()
    };
    let (fleet_json, fleet_markdown) = if wanted("fleet") {
        fleet::run(&args.st, args.repeat)?
    } else {
        skipped()
    };
    let (structured_json, structured_markdown) = if wanted("structured") {
        structured::run(args.repeat)?
    } else {
        skipped()
    };
    let (rerank_json, rerank_markdown) = if wanted("rerank") {
        rerank::run(args.repeat)?
    } else {
        skipped()
    };
    let results = serde_json::json!({
        "core": core.json, "daemon": daemon_json, "batching": batching_json, "sql": sql_json, "queue": queue_json,
        "fleet": fleet_json,
        "structured": structured_json, "rerank": rerank_json,
    });
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    let report = core.markdown
        + &structured_markdown
        + &rerank_markdown
        + &daemon_markdown
        + &batching_markdown
        + &sql_markdown
        + &queue_markdown
        + &fleet_markdown;
    std::fs::write(args.out.join("README.md"), report)?;
    println!("{}", std::fs::read_to_string(args.out.join("README.md"))?);
    Ok(())
}
