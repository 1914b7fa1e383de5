//! Worker fleets: queue throughput with 1, 2 and 3 `st daemon` + `st worker --daemon` pairs,
//! each daemon at one thread, as separate hosts would serve one database. Here every pair runs
//! on this machine, so the scaling stops at its core count; on real hosts each pair brings its
//! own cores. The daemons' caches are off, so every request is computed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::json;
use steadytext::client::DaemonClient;

use crate::core::{median, models_dir, EMBEDDING_MODEL, GENERATION_MODEL};
use crate::queue::drain;
use crate::sql::Cluster;

const PORT: u16 = 54334;
const GENERATIONS: usize = 24;
const TOKENS: usize = 16;

/// Running daemons and workers, stopped on drop.
struct Fleet {
    children: Vec<Child>,
    dir: PathBuf,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // Workers first, so none is left waiting on a daemon that is gone.
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Fleet {
    /// `pairs` daemons at one thread each, and one `st worker --daemon` per daemon.
    fn start(st: &Path, pairs: usize, dsn: &str) -> Result<Fleet> {
        let dir = std::env::temp_dir().join(format!("st-bench-fleet-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut fleet = Fleet {
            children: Vec::new(),
            dir: dir.clone(),
        };
        let mut daemons = Vec::new();
        for i in 0..pairs {
            let endpoint = format!("ipc://{}/daemon-{i}.sock", dir.display());
            fleet.children.push(
                Command::new(st)
                    .args(["daemon", "run", "--endpoint", &endpoint, "--threads", "1"])
                    .env("XDG_CACHE_HOME", dir.join(format!("cache-{i}")))
                    .env("STEADYTEXT_DISABLE_CACHE", "1")
                    .env(
                        "STEADYTEXT_GENERATION_MODEL",
                        models_dir().join(GENERATION_MODEL),
                    )
                    .env(
                        "STEADYTEXT_EMBEDDING_MODEL",
                        models_dir().join(EMBEDDING_MODEL),
                    )
                    .spawn()?,
            );
            daemons.push(endpoint);
        }
        for endpoint in &daemons {
            let client = DaemonClient::new(endpoint, Duration::from_secs(5));
            let deadline = Instant::now() + Duration::from_secs(60);
            while !client.ping(Duration::from_millis(200)) {
                if Instant::now() > deadline {
                    bail!("the fleet daemon at {endpoint} did not come up");
                }
            }
            fleet.children.push(
                Command::new(st)
                    .args(["worker", "--dsn", dsn, "--daemon"])
                    .env("STEADYTEXT_DAEMON_ENDPOINT", endpoint)
                    .stderr(std::process::Stdio::null())
                    .spawn()?,
            );
        }
        Ok(fleet)
    }
}

/// Generations per second through the queue with this fleet.
fn rate(cluster: &Cluster, tag: &str) -> Result<f64> {
    let since = Instant::now();
    cluster.psql(&format!(
        "SELECT steadytext_generate_batch_async(ARRAY(SELECT 'Describe the number ' || i || \
         ' in one sentence ({tag})' FROM generate_series(1, {GENERATIONS}) i), {TOKENS})"
    ))?;
    Ok(GENERATIONS as f64 / drain(cluster, since)?)
}

/// Runs the fleet benchmark; `st` runs the daemons and workers.
pub fn run(st: &Path, repeat: usize) -> Result<(serde_json::Value, String)> {
    let cluster = Cluster::start_on(PORT, "")?;
    let mut rates = Vec::new();
    for pairs in 1..=3usize {
        let _fleet = Fleet::start(st, pairs, &cluster.dsn())?;
        rate(&cluster, &format!("warm {pairs}"))?;
        let runs = (0..repeat.min(3))
            .map(|r| rate(&cluster, &format!("{pairs}.{r}")))
            .collect::<Result<Vec<_>>>()?;
        rates.push((pairs, median(runs)));
    }
    let one = rates[0].1;
    let json = json!({
        "generations": GENERATIONS, "tokens": TOKENS, "daemon_threads": 1,
        "generations_per_s": rates.iter().map(|(p, r)| json!({ "pairs": p, "rate": r, "ratio": r / one })).collect::<Vec<_>>(),
    });
    let rows: String = rates
        .iter()
        .map(|(p, r)| format!("| {p} | {r:.2} | {:.2} |\n", r / one))
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let markdown = format!(
        "\n## Worker fleets (st daemon + st worker pairs, 1 thread per daemon, cache off)\n\n\
         {GENERATIONS} queued generations of {TOKENS} tokens; every pair on this {cores}-core \
         machine (separate hosts would each bring their own cores).\n\n\
         | pairs | generations/s | / 1 pair |\n|---|---|---|\n{rows}"
    );
    Ok((json, markdown))
}
