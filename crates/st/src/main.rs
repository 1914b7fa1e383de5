//! `st`: the SteadyText command line over the `steadytext` library.

mod cache_cmd;
mod daemon;
mod embed_cmd;
mod generate_cmd;
mod models_cmd;
mod rerank_cmd;
mod route;
mod worker;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Deterministic text generation and embeddings: same input, same output.
#[derive(Debug, Parser)]
#[command(name = "st", version, about, propagate_version = true)]
struct Cli {
    /// Log more (repeat for more detail); logs go to stderr.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate text for a prompt (streams by default).
    Generate(generate_cmd::Args),
    /// Embed text into a 1024-wide unit vector.
    Embed(embed_cmd::Args),
    /// Order documents by relevance to a query.
    Rerank(rerank_cmd::Args),
    /// List, locate, download and fingerprint models.
    Models {
        #[command(subcommand)]
        command: models_cmd::Command,
    },
    /// Run and manage the daemon that serves every client from one copy of the models.
    Daemon {
        #[command(subcommand)]
        command: daemon::DaemonCommand,
    },
    /// The daemon's frecency cache.
    Cache {
        #[command(subcommand)]
        command: cache_cmd::Command,
    },
    /// Serve a database's steadytext_queue (the *_async SQL functions) from this host.
    Worker(worker::Args),
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "error",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("STEADYTEXT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Generate(args) => generate_cmd::run(args),
        Command::Embed(args) => embed_cmd::run(args),
        Command::Rerank(args) => rerank_cmd::run(args),
        Command::Models { command } => models_cmd::run(command),
        Command::Daemon { command } => daemon::run(command),
        Command::Cache { command } => cache_cmd::run(command),
        Command::Worker(args) => worker::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("st: error: {e:#}");
            if let Some(flag) = limit_flag(&e) {
                eprintln!("st: the limit is the flag {flag} here");
            }
            ExitCode::FAILURE
        }
    }
}

/// The flag that sets the limit a message names by its SQL setting (one name in every message).
fn limit_flag(e: &anyhow::Error) -> Option<&'static str> {
    use steadytext::request::{MAX_BATCH_SIZE, MAX_PROMPT_LENGTH, MAX_TOKENS_LIMIT};
    let text = e.to_string();
    [
        (MAX_PROMPT_LENGTH, "--max-prompt-length"),
        (MAX_TOKENS_LIMIT, "--max-tokens-limit"),
        (MAX_BATCH_SIZE, "--max-batch-size"),
    ]
    .into_iter()
    .find(|(setting, _)| text.contains(&format!("({setting})")))
    .map(|(_, flag)| flag)
}

/// Reads the text argument, or standard input when it is absent or `-` (stripped, as SteadyText).
pub(crate) fn text_or_stdin(arg: Option<String>) -> anyhow::Result<String> {
    match arg.as_deref() {
        Some(text) if text != "-" => Ok(text.to_string()),
        _ => {
            let mut input = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut input)
                .map_err(|e| anyhow::anyhow!("cannot read the prompt from stdin: {e}"))?;
            Ok(input.trim().to_string())
        }
    }
}
