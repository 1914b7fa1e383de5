//! `steadytext-bench`: measures the library against a minimal llama.cpp loop over the same
//! crate, the daemon against the library, and the extension against the library, each in the
//! same run, and writes the figures to `bench/results/`.
//!
//! Every figure is a median over repeated runs; ratios compare numbers from this run only.

mod core;
mod daemon;
mod sql;

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
}

fn main() -> Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)?;
    let core = core::run(args.repeat)?;
    let (daemon_json, daemon_markdown) = daemon::run(&args.st, args.repeat)?;
    let (sql_json, sql_markdown) = sql::run(args.repeat)?;
    let results = serde_json::json!({ "core": core.json, "daemon": daemon_json, "sql": sql_json });
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    let report = core.markdown + &daemon_markdown + &sql_markdown;
    std::fs::write(args.out.join("README.md"), report)?;
    println!("{}", std::fs::read_to_string(args.out.join("README.md"))?);
    Ok(())
}
