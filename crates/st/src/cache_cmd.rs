//! `st cache stats|clear|sync`: the daemon's frecency cache.

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};
use steadytext::cache::{self, Entry, FrecencyCache, Kind};
use steadytext::cached::{kept_from_text, kept_text};
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
    /// Copy generations and embeddings both ways between this host's cache file (the daemon's)
    /// and a database's steadytext_cache; access counts merge (the larger count, the later use).
    Sync {
        /// The database, as `st worker --dsn` takes it (STEADYTEXT_WORKER_DSN). Its role needs
        /// steadytext_worker (reading the table; writing it once an admin sets the config row
        /// cache_sync_import) or steadytext_admin.
        #[arg(long, env = "STEADYTEXT_WORKER_DSN")]
        dsn: String,
        /// Only copy from the table into the cache file.
        #[arg(long, conflicts_with = "push_only")]
        pull_only: bool,
        /// Only copy from the cache file into the table.
        #[arg(long)]
        push_only: bool,
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
        Command::Sync {
            dsn,
            pull_only,
            push_only,
        } => {
            let cache = FrecencyCache::open(&cache::default_path()).map_err(|e| anyhow!(e))?;
            let mut db = crate::worker::tls::connect(&dsn)?;
            if !push_only {
                let (new, merged) = pull(&mut db, &cache)?;
                println!("from the table: {new} new entries, {merged} merged");
            }
            if !pull_only {
                let (sent, skipped) = push(&mut db, &cache)?;
                println!("to the table: {sent} entries ({skipped} skipped)");
            }
        }
    }
    Ok(())
}

/// Entries per round trip.
const PAGE: usize = 1000;

/// Table rows into the cache file, a page at a time in key order.
fn pull(db: &mut postgres::Client, cache: &FrecencyCache) -> Result<(usize, usize)> {
    let (mut new, mut merged) = (0, 0);
    let mut after = String::new();
    loop {
        let rows = db
            .query(
                "SELECT cache_key, kind, response, embedding, access_count, last_access_us \
                 FROM steadytext_cache_export($1, $2)",
                &[&after, &(PAGE as i32)],
            )
            .context("cannot read the table (steadytext_cache_export)")?;
        let Some(last) = rows.last() else {
            return Ok((new, merged));
        };
        after = last.get(0);
        for row in &rows {
            let (kind, value) = match row.get::<_, &str>(1) {
                "embedding" => {
                    let v: Vec<f32> = row.get(3);
                    (
                        Kind::Embedding,
                        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                    )
                }
                _ => (Kind::Generation, kept_from_text(row.get(2))),
            };
            let entry = Entry {
                key: row.get(0),
                value,
                frequency: i64::from(row.get::<_, i32>(4)),
                last_access_us: row.get(5),
            };
            if cache.merge(kind, &entry) {
                new += 1;
            } else {
                merged += 1;
            }
        }
    }
}

/// Cache-file entries into the table. Reranking scores stay (the table keeps none), and so do
/// generations whose finished text cannot be told (see `kept_text`).
fn push(db: &mut postgres::Client, cache: &FrecencyCache) -> Result<(usize, usize)> {
    let (mut sent, mut skipped) = (0, 0);
    let mut batch = Vec::new();
    for kind in [Kind::Generation, Kind::Embedding] {
        for entry in cache.entries(kind) {
            match as_row(kind, &entry) {
                Some(row) => batch.push(row),
                None => skipped += 1,
            }
            if batch.len() == PAGE {
                sent += send(db, std::mem::take(&mut batch))?;
            }
        }
    }
    if !batch.is_empty() {
        sent += send(db, batch)?;
    }
    Ok((sent, skipped))
}

fn as_row(kind: Kind, entry: &Entry) -> Option<Value> {
    let mut row = json!({
        "cache_key": entry.key,
        "access_count": entry.frequency,
        "last_access_us": entry.last_access_us,
    });
    match kind {
        Kind::Generation => {
            row["kind"] = json!("generation");
            row["response"] = json!(kept_text(&entry.value)?);
        }
        Kind::Embedding => {
            let v: Vec<f32> = entry
                .value
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            row["kind"] = json!("embedding");
            row["embedding"] = json!(v);
        }
        Kind::Reranking => return None,
    }
    Some(row)
}

fn send(db: &mut postgres::Client, rows: Vec<Value>) -> Result<usize> {
    let body = Value::Array(rows).to_string();
    let written: i64 = db
        .query_one("SELECT steadytext_cache_import($1::text::jsonb)", &[&body])
        .context("cannot write the table (steadytext_cache_import)")?
        .get(0);
    Ok(written as usize)
}
