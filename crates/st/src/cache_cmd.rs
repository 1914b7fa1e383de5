//! `st cache stats|clear`: the daemon's frecency cache.

use anyhow::{anyhow, Result};
use steadytext::cache::{self, FrecencyCache, Kind};
use steadytext::client;

/// `st cache` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Entries, bytes, hits and misses per kind (from the running daemon when there is one).
    Stats,
    /// Remove entries (all kinds unless one is named).
    Clear {
        /// Only generation results.
        #[arg(long)]
        generation: bool,
        /// Only embeddings.
        #[arg(long)]
        embedding: bool,
    },
}

/// Runs a `st cache` subcommand.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Stats => {
            let stats = crate::daemon::cache_stats(&client::endpoint_from_env())?;
            println!("{}", serde_json::to_string_pretty(&stats)?);
        }
        Command::Clear {
            generation,
            embedding,
        } => {
            let cache = FrecencyCache::open(&cache::default_path()).map_err(|e| anyhow!(e))?;
            let kinds: Vec<Kind> = match (generation, embedding) {
                (false, false) => Kind::ALL.to_vec(),
                _ => [(generation, Kind::Generation), (embedding, Kind::Embedding)]
                    .into_iter()
                    .filter_map(|(on, k)| on.then_some(k))
                    .collect(),
            };
            for kind in kinds {
                println!("{:?}: {} entries removed", kind, cache.clear(kind));
            }
        }
    }
    Ok(())
}
