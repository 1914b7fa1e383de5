//! The async queue: how soon an idle background worker starts a queued request, and requests per
//! second with one and two background workers against a synchronous loop over the same inputs,
//! in the same cluster (pg_steadytext preloaded; its daemon runs with the cache off, so every
//! request is computed).

use std::time::Instant;

use anyhow::{bail, Result};
use serde_json::json;

use crate::core::median;
use crate::sql::{percentile, Cluster};

const PORT: u16 = 54332;
const LATENCY_PROBES: usize = 100;
const GENERATIONS: usize = 24;
const GENERATION_TOKENS: usize = 16;
const EMBEDDINGS: usize = 100;

fn conf(workers: usize) -> String {
    format!(
        "shared_preload_libraries = 'pg_steadytext'\n\
         steadytext.queue_workers = {workers}\n\
         steadytext.queue_databases = 'postgres'"
    )
}

/// Waits until nothing is pending or processing; returns the seconds since `since`. The wait
/// loops inside one statement (each query sees new commits), so the harness does not compete
/// with the workers for the two cores by starting a connection per poll.
pub fn drain(cluster: &Cluster, since: Instant) -> Result<f64> {
    cluster.psql(
        "DO $$ BEGIN
             WHILE EXISTS (SELECT 1 FROM steadytext_queue WHERE status IN ('pending', 'processing')) LOOP
                 PERFORM pg_sleep(0.005);
             END LOOP;
         END $$",
    )?;
    let elapsed = since.elapsed().as_secs_f64();
    let failed = cluster.psql("SELECT count(*) FROM steadytext_queue WHERE status = 'failed'")?;
    if failed.trim() != "0" {
        bail!("{} queued requests failed", failed.trim());
    }
    Ok(elapsed)
}

/// Waits until `n` queue workers are connected: a worker retries every 5 s until `CREATE
/// EXTENSION` has created its role, and a request queued before that waits for the retry.
fn wait_for_workers(cluster: &Cluster, n: usize) -> Result<()> {
    cluster.psql(&format!(
        "DO $$ BEGIN
             FOR i IN 1..600 LOOP
                 EXIT WHEN (SELECT count(*) FROM pg_stat_activity
                            WHERE backend_type = 'pg_steadytext queue worker') >= {n};
                 PERFORM pg_sleep(0.05);
             END LOOP;
         END $$"
    ))?;
    let connected = cluster.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_steadytext queue worker'",
    )?;
    if connected.trim().parse::<usize>()? < n {
        bail!("only {} of {n} queue workers connected", connected.trim());
    }
    Ok(())
}

fn arrays(tag: &str) -> (String, String) {
    let prompts = format!(
        "ARRAY(SELECT 'Describe the number ' || i || ' in one sentence ({tag})' FROM generate_series(1, {GENERATIONS}) i)"
    );
    let texts = format!(
        "ARRAY(SELECT 'Row ' || i || ' of a table about orders ({tag})' FROM generate_series(1, {EMBEDDINGS}) i)"
    );
    (prompts, texts)
}

/// Requests per second through the queue: (generations, embeddings).
fn queued_rates(cluster: &Cluster, tag: &str) -> Result<(f64, f64)> {
    let (prompts, texts) = arrays(tag);
    cluster.psql("DELETE FROM steadytext_queue")?;
    let start = Instant::now();
    cluster.psql(&format!(
        "SELECT steadytext_generate_batch_async({prompts}, {GENERATION_TOKENS})"
    ))?;
    let gen_s = drain(cluster, start)?;
    let start = Instant::now();
    cluster.psql(&format!("SELECT steadytext_embed_batch_async({texts})"))?;
    let emb_s = drain(cluster, start)?;
    Ok((GENERATIONS as f64 / gen_s, EMBEDDINGS as f64 / emb_s))
}

/// The same requests as one synchronous statement each (through the daemon, like the workers).
fn synchronous_rates(cluster: &Cluster, tag: &str) -> Result<(f64, f64)> {
    let (prompts, texts) = arrays(tag);
    let start = Instant::now();
    cluster.psql(&format!(
        "SELECT count(steadytext_generate(p, {GENERATION_TOKENS}, false)) FROM unnest({prompts}) p"
    ))?;
    let gen_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    cluster.psql(&format!(
        "SELECT count(steadytext_embed(t, false)) FROM unnest({texts}) t"
    ))?;
    let emb_s = start.elapsed().as_secs_f64();
    Ok((GENERATIONS as f64 / gen_s, EMBEDDINGS as f64 / emb_s))
}

/// Enqueue-to-start latency of an idle worker: one embedding request at a time, 30 ms apart.
fn start_latency(cluster: &Cluster) -> Result<(f64, f64)> {
    cluster.psql("DELETE FROM steadytext_queue")?;
    let mut statements = String::new();
    for i in 0..LATENCY_PROBES {
        statements.push_str(&format!(
            "SELECT steadytext_embed_async('latency probe {i}');\nSELECT pg_sleep(0.03);\n"
        ));
    }
    // psql runs each statement in its own transaction, so each enqueue commits (and wakes the
    // worker) before the next.
    cluster.psql_script(&statements)?;
    drain(cluster, Instant::now())?;
    let waits: Vec<f64> = cluster
        .psql("SELECT extract(epoch FROM started_at - created_at) * 1000 FROM steadytext_queue")?
        .lines()
        .map(|l| l.trim().parse::<f64>())
        .collect::<Result<_, _>>()?;
    Ok((percentile(waits.clone(), 0.5), percentile(waits, 0.99)))
}

/// Runs the queue benchmarks; returns JSON and a Markdown section.
pub fn run(repeat: usize) -> Result<(serde_json::Value, String)> {
    // Every request is computed: the daemon's cache is off.
    std::env::set_var("STEADYTEXT_DISABLE_CACHE", "1");
    let cluster = Cluster::start_on(PORT, &conf(1))?;
    cluster.psql(
        "SELECT steadytext_generate('warm up', 4, false), steadytext_embed('warm up', false)",
    )?;
    wait_for_workers(&cluster, 1)?;
    let (p50, p99) = start_latency(&cluster)?;
    let mut sync = Vec::new();
    let mut one = Vec::new();
    for r in 0..repeat.min(3) {
        sync.push(synchronous_rates(&cluster, &format!("s{r}"))?);
        one.push(queued_rates(&cluster, &format!("a{r}"))?);
    }
    cluster.restart_with("steadytext.queue_workers = 2")?;
    cluster.psql("SELECT steadytext_generate('warm up', 4, false)")?;
    wait_for_workers(&cluster, 2)?;
    let mut two = Vec::new();
    for r in 0..repeat.min(3) {
        two.push(queued_rates(&cluster, &format!("b{r}"))?);
    }
    std::env::remove_var("STEADYTEXT_DISABLE_CACHE");
    let med = |xs: &[(f64, f64)], gen: bool| {
        median(xs.iter().map(|x| if gen { x.0 } else { x.1 }).collect())
    };
    let (sg, se) = (med(&sync, true), med(&sync, false));
    let (g1, e1) = (med(&one, true), med(&one, false));
    let (g2, e2) = (med(&two, true), med(&two, false));
    let json = json!({
        "enqueue_to_start_ms": { "p50": p50, "p99": p99, "probes": LATENCY_PROBES },
        "generations_per_s": { "tokens": GENERATION_TOKENS, "requests": GENERATIONS, "synchronous": sg, "one_worker": g1, "two_workers": g2 },
        "embeddings_per_s": { "requests": EMBEDDINGS, "synchronous": se, "one_worker": e1, "two_workers": e2 },
    });
    let markdown = format!(
        "\n## Async queue (background workers through the daemon, cache off)\n\n\
         Enqueue to start, idle worker ({LATENCY_PROBES} requests, 30 ms apart): \
         p50 {p50:.1} ms, p99 {p99:.1} ms (target: under 50 ms).\n\n\
         | requests/s | synchronous loop | 1 worker | 2 workers | 1 worker / sync | 2 workers / sync |\n\
         |---|---|---|---|---|---|\n\
         | generations ({GENERATIONS} × {GENERATION_TOKENS} tokens) | {sg:.2} | {g1:.2} | {g2:.2} | {rg1:.3} | {rg2:.3} |\n\
         | embeddings ({EMBEDDINGS}) | {se:.1} | {e1:.1} | {e2:.1} | {re1:.3} | {re2:.3} |\n\n\
         Both workers share the one daemon, whose single inference thread uses every core, so a \
         second worker overlaps only the SQL work; more throughput comes from `st worker` on \
         other hosts.\n",
        rg1 = g1 / sg,
        rg2 = g2 / sg,
        re1 = e1 / se,
        re2 = e2 / se,
    );
    Ok((json, markdown))
}
