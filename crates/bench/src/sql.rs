//! The extension through SQL, against the library in this process: generation time, cache-hit
//! latency, embeddings per second (in the backend, `steadytext.use_daemon = off`, one thread on
//! both sides), and the first call on a new connection through the daemon against loading the
//! model in the backend. SQL load comes from pgbench against a throw-away cluster.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::library;
use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::core::{median, test_models};

const PROMPT: &str = "Explain in a few sentences what a database index is.";
const MAX_TOKENS: usize = 64;
const PORT: u16 = 54331;
/// Prefix of statements measured in the backend rather than through the daemon.
const IN_BACKEND: &str = "SET steadytext.use_daemon = off;";

/// A cluster for the run, stopped on drop.
pub struct Cluster {
    dir: PathBuf,
    port: u16,
}

impl Cluster {
    fn start() -> Result<Self> {
        Self::start_on(PORT, "")
    }

    /// A fresh cluster on `port`, with `conf` appended to its postgresql.conf.
    pub fn start_on(port: u16, conf: &str) -> Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("pg_steadytext_bench.{}.{port}", std::process::id()));
        let cluster = Cluster { dir, port };
        cluster.pg_cluster("start", conf)?;
        cluster.psql("CREATE EXTENSION vector; CREATE EXTENSION pg_steadytext;")?;
        Ok(cluster)
    }

    /// A libpq connection string for `st worker`.
    pub fn dsn(&self) -> String {
        format!(
            "host={} port={} user=postgres dbname=postgres",
            self.dir.display(),
            self.port
        )
    }

    /// Restarts the server after appending `conf` to its postgresql.conf.
    pub fn restart_with(&self, conf: &str) -> Result<()> {
        self.pg_cluster("stop", "")?;
        let path = self.dir.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&path)?;
        text.push_str(&format!("\n{conf}\n"));
        std::fs::write(&path, text)?;
        self.pg_cluster("start", "")
    }

    fn pg_cluster(&self, action: &str, conf: &str) -> Result<()> {
        let status = Command::new("scripts/pg-cluster.sh")
            .args([action, self.dir.to_str().unwrap(), &self.port.to_string()])
            .env("PG_EXTRA_CONF", conf)
            .status()
            .context("scripts/pg-cluster.sh (run from the repository root)")?;
        if !status.success() {
            bail!("could not {action} the benchmark cluster");
        }
        Ok(())
    }

    /// Runs a script of several statements, each in its own transaction.
    pub fn psql_script(&self, script: &str) -> Result<()> {
        let path = self.dir.with_extension("script.sql");
        std::fs::write(&path, script)?;
        let result = self.run_psql("-f", path.as_os_str());
        std::fs::remove_file(&path)?;
        result.map(|_| ())
    }

    pub fn psql(&self, sql: &str) -> Result<String> {
        self.run_psql("-c", sql.as_ref())
    }

    /// psql as postgres on the cluster's `postgres` database, unaligned and tuples only, stopping
    /// at the first error; `source` is `-c` (a statement) or `-f` (a file).
    fn run_psql(&self, source: &str, arg: &std::ffi::OsStr) -> Result<String> {
        let out = Command::new("psql")
            .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .arg(source)
            .arg(arg)
            .output()?;
        if !out.status.success() {
            bail!("psql failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Runs `sql` `transactions` times from one client; returns per-transaction latencies in ms.
    pub fn pgbench(&self, sql: &str, transactions: usize) -> Result<Vec<f64>> {
        self.pgbench_as("postgres", sql, transactions)
    }

    /// [`Cluster::pgbench`] as `role`.
    pub fn pgbench_as(&self, role: &str, sql: &str, transactions: usize) -> Result<Vec<f64>> {
        Ok(self
            .pgbench_mix(role, &[sql.to_string()], transactions)?
            .remove(0))
    }

    /// One client that runs `transactions`, each one of `scripts` picked at random (equal
    /// weights); returns each script's latencies in ms. Interleaving the scripts in one
    /// connection makes drift over the run weigh on every script alike.
    pub fn pgbench_mix(
        &self,
        role: &str,
        scripts: &[String],
        transactions: usize,
    ) -> Result<Vec<Vec<f64>>> {
        let work = self.dir.with_extension("pgbench");
        std::fs::create_dir_all(&work)?;
        let mut command = Command::new("/usr/lib/postgresql/15/bin/pgbench");
        command.args(["-n", "-c", "1", "-t", &transactions.to_string()]);
        for (i, sql) in scripts.iter().enumerate() {
            let script = work.join(format!("script{i}.sql"));
            std::fs::write(&script, format!("{sql};\n"))?;
            command.args(["-f", &format!("{}@1", script.to_str().unwrap())]);
        }
        let prefix = work.join("log");
        let out = command
            .args(["-l", "--log-prefix", prefix.to_str().unwrap()])
            .args([
                "-h",
                self.dir.to_str().unwrap(),
                "-p",
                &self.port.to_string(),
                "-U",
                role,
                "postgres",
            ])
            .output()?;
        if !out.status.success() {
            bail!("pgbench failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let mut latencies = vec![Vec::new(); scripts.len()];
        for (script, ms) in read_pgbench_logs(&work)? {
            latencies
                .get_mut(script)
                .context("pgbench logged an unknown script")?
                .push(ms);
        }
        std::fs::remove_dir_all(&work)?;
        Ok(latencies)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("scripts/pg-cluster.sh")
            .args(["stop", self.dir.to_str().unwrap()])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// pgbench's per-transaction logs: (script number, latency in ms) from the fourth and third
/// columns.
fn read_pgbench_logs(dir: &Path) -> Result<Vec<(usize, f64)>> {
    let mut latencies = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("log")
        {
            continue;
        }
        for line in std::fs::read_to_string(&path)?.lines() {
            let columns: Vec<&str> = line.split_whitespace().collect();
            let (Some(us), Some(script)) = (columns.get(2), columns.get(3)) else {
                bail!("a short pgbench log line: {line}");
            };
            latencies.push((script.parse()?, us.parse::<f64>()? / 1000.0));
        }
    }
    Ok(latencies)
}

pub fn percentile(mut xs: Vec<f64>, p: f64) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[((xs.len() - 1) as f64 * p).round() as usize]
}

pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Median wall time of a new `psql` connection's first generate + embed, through the daemon and
/// in the backend.
fn first_calls(cluster: &Cluster, repeat: usize) -> Result<(f64, f64)> {
    let work = "SELECT steadytext_generate('Say hello', 8, false) IS NOT NULL, \
                steadytext_embed('first call', false) IS NOT NULL";
    cluster.psql(work)?; // the daemon is started on demand by the first call
    let time = |sql: &str| -> Result<f64> {
        let start = Instant::now();
        cluster.psql(sql)?;
        Ok(start.elapsed().as_secs_f64() * 1000.0)
    };
    let mut daemon = Vec::new();
    let mut backend = Vec::new();
    for _ in 0..repeat {
        daemon.push(time(work)?);
        backend.push(time(&format!("{IN_BACKEND} {work}"))?);
    }
    Ok((median(daemon), median(backend)))
}

/// Runs the SQL benchmarks; returns JSON and a Markdown section.
pub fn run(repeat: usize) -> Result<(serde_json::Value, String)> {
    let cluster = Cluster::start()?;
    let (model, embedder) = test_models()?;

    // Generation: same prompt, max_tokens and thread count (the backend uses one thread).
    library::generate(&model, PROMPT, MAX_TOKENS, 1)?;
    let library_ms = median(
        (0..repeat)
            .map(|_| {
                let start = Instant::now();
                library::generate(&model, PROMPT, MAX_TOKENS, 1).unwrap();
                start.elapsed().as_secs_f64() * 1000.0
            })
            .collect(),
    );
    let generate_sql = format!(
        "{IN_BACKEND} SELECT steadytext_generate({}, {MAX_TOKENS}, false)",
        quote(PROMPT)
    );
    let sql_ms = median(cluster.pgbench(&generate_sql, repeat + 1)?.split_off(1));

    // Cache hits: the row written by _cached, read back by steadytext_generate.
    cluster.psql(&format!(
        "SELECT steadytext_generate_cached({}, {MAX_TOKENS})",
        quote(PROMPT)
    ))?;
    let hit_sql = format!(
        "SELECT steadytext_generate({}, {MAX_TOKENS})",
        quote(PROMPT)
    );
    let hits = cluster.pgbench(&hit_sql, 500)?;
    let (hit_p50, hit_p99) = (percentile(hits.clone(), 0.5), percentile(hits, 0.99));

    // Embeddings: 32 texts, one statement each, or one batch statement.
    let texts: Vec<String> = (0..32)
        .map(|i| format!("Row {i} of a table about orders and customers"))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    library::embed(&embedder, refs[0], 1)?;
    let start = Instant::now();
    for _ in 0..repeat {
        library::embed_batch(&embedder, &refs, 1)?;
    }
    let library_eps = (repeat * refs.len()) as f64 / start.elapsed().as_secs_f64();
    let single_ms = median(cluster.pgbench(
        &format!(
            "{IN_BACKEND} SELECT steadytext_embed({}, false)",
            quote(refs[3])
        ),
        64,
    )?);
    let array = format!(
        "ARRAY[{}]",
        refs.iter().map(|t| quote(t)).collect::<Vec<_>>().join(",")
    );
    let batch_ms = median(cluster.pgbench(
        &format!("{IN_BACKEND} SELECT count(*) FROM steadytext_embed_batch({array})"),
        repeat,
    )?);
    let (first_daemon, first_backend) = first_calls(&cluster, repeat)?;
    let checks = checks(&cluster, &hit_sql, refs[5])?;
    let summary = summaries(&cluster, repeat)?;
    let sql_single_eps = 1000.0 / single_ms;
    let sql_batch_eps = 1000.0 * refs.len() as f64 / batch_ms;

    let json = json!({
        "generation": { "max_tokens": MAX_TOKENS, "sql_ms": sql_ms, "library_ms": library_ms, "ratio_sql_over_library": sql_ms / library_ms },
        "cache_hit_ms": { "p50": hit_p50, "p99": hit_p99, "transactions": 500 },
        "embeddings_per_s": { "sql_single": sql_single_eps, "sql_batch": sql_batch_eps, "library_one_thread": library_eps },
        "first_call_new_connection_ms": { "through_daemon": first_daemon, "loading_in_backend": first_backend, "ratio": first_daemon / first_backend },
        "privilege_checks": checks.json(),
        "summarize_10000_rows_ms": summary.json(),
    });
    let markdown = format!(
        "\n## Through SQL (pg_steadytext in a backend, one thread; pgbench, one client)\n\n\
         | | SQL | library, same process | SQL / library |\n|---|---|---|---|\n\
         | `steadytext_generate`, {MAX_TOKENS} tokens, ms | {sql_ms:.1} | {library_ms:.1} | {r:.3} |\n\
         | embeddings/s, one statement per text | {sql_single_eps:.1} | {library_eps:.1} | {rs:.3} |\n\
         | embeddings/s, `steadytext_embed_batch` of 32 | {sql_batch_eps:.1} | {library_eps:.1} | {rb:.3} |\n\n\
         Cache hit through `steadytext_generate` (500 transactions): p50 {hit_p50:.3} ms, p99 {hit_p99:.3} ms, \
         against {sql_ms:.1} ms to generate ({speedup:.0}x).\n\n\
         First call on a new connection (`psql -c`, an 8-token generation and an embedding, \
         wall time): {first_daemon:.0} ms through the warm daemon, {first_backend:.0} ms loading the \
         models in the backend (ratio {first_ratio:.3}).\n",
        r = sql_ms / library_ms,
        rs = sql_single_eps / library_eps,
        rb = sql_batch_eps / library_eps,
        speedup = sql_ms / hit_p50,
        first_ratio = first_daemon / first_backend,
    ) + &checks.markdown()
        + &summary.markdown();
    Ok((json, markdown))
}

/// Medians of the same calls as a superuser and as an ordinary role that the privilege model
/// checks in full (models directory policy, deny pattern, a rate limit high enough to admit
/// every call).
struct Checks {
    hit: (f64, f64),
    embed: (f64, f64),
}

fn checks(cluster: &Cluster, hit_sql: &str, text: &str) -> Result<Checks> {
    cluster.psql_script(
        "CREATE ROLE bench_user LOGIN IN ROLE steadytext_user;
         INSERT INTO steadytext_rate_limits (user_id, requests_per_minute, requests_per_hour, requests_per_day)
         VALUES ('bench_user', 1000000, 100000000, NULL);
         -- Loads the library, which defines the steadytext.* settings.
         SELECT steadytext_version();
         ALTER SYSTEM SET steadytext.prompt_deny_pattern = '(?i)ignore (all )?previous instructions';
         SELECT pg_reload_conf();",
    )?;
    let embed_sql = format!("SELECT steadytext_embed({}, false)", quote(text));
    // Both sides in one connection, interleaved at random, each a `SET SESSION AUTHORIZATION`
    // and the call in one round trip: drift over the run (the daemon's and the page cache's
    // state, other work on the machine) weighs on both alike, which separate connections in
    // rounds did not achieve. The session's role, not `SET ROLE`'s, is whom rate limits count.
    let pair = |sql: &str, n: usize| -> Result<(f64, f64)> {
        let as_role = |role: &str| format!("SET SESSION AUTHORIZATION {role} \\; {sql}");
        let mut runs =
            cluster.pgbench_mix("postgres", &[as_role("postgres"), as_role("bench_user")], n)?;
        let checked = runs.pop().unwrap_or_default();
        let superuser = runs.pop().unwrap_or_default();
        Ok((median(superuser), median(checked)))
    };
    Ok(Checks {
        hit: pair(hit_sql, HIT_TRANSACTIONS)?,
        embed: pair(&embed_sql, EMBED_TRANSACTIONS)?,
    })
}

/// Transactions of the privilege-check comparison (both sides together).
const HIT_TRANSACTIONS: usize = 4000;
const EMBED_TRANSACTIONS: usize = 400;

impl Checks {
    fn json(&self) -> serde_json::Value {
        json!({
            "cache_hit_ms": { "superuser": self.hit.0, "checked_role": self.hit.1, "ratio": self.hit.1 / self.hit.0 },
            "embed_ms": { "superuser": self.embed.0, "checked_role": self.embed.1, "ratio": self.embed.1 / self.embed.0 },
        })
    }

    fn markdown(&self) -> String {
        format!(
            "\n### The privilege model's checks\n\n\
             The same calls as a superuser and as an ordinary role checked in full (models \
             directory policy, deny pattern, a rate limit that admits every call, the request \
             checked once more by the admission): one pgbench connection interleaves `SET SESSION \
             AUTHORIZATION postgres \\; call` and `SET SESSION AUTHORIZATION bench_user \\; call` \
             at random; medians per side (the `SET` is in both, which pulls the ratio slightly \
             towards 1).\n\n\
             | | superuser, ms | checked role, ms | ratio |\n|---|---|---|---|\n\
             | cache hit (`steadytext_generate`, {HIT_TRANSACTIONS} transactions) | {:.3} | {:.3} | {:.3} |\n\
             | `steadytext_embed`, computed ({EMBED_TRANSACTIONS} transactions) | {:.2} | {:.2} | {:.3} |\n",
            self.hit.0,
            self.hit.1,
            self.hit.1 / self.hit.0,
            self.embed.0,
            self.embed.1,
            self.embed.1 / self.embed.0,
        )
    }
}

/// 10 000 rows summarised serially and with two parallel workers: the aggregation alone
/// (`steadytext_summarize_partial`) and the whole summary.
struct Summaries {
    partial: (f64, f64),
    full: (f64, f64),
}

fn summaries(cluster: &Cluster, repeat: usize) -> Result<Summaries> {
    cluster.psql_script(
        "CREATE TABLE bench_rows AS SELECT i, format('Order %s shipped %s units to the %s warehouse. \
         The customer rated it %s stars. Delivery took %s days.', i, i % 97, \
         (ARRAY['north','south','east','west'])[i % 4 + 1], i % 5 + 1, i % 9 + 1) AS body \
         FROM generate_series(1, 10000) i;
         ANALYZE bench_rows;",
    )?;
    let serial = "SET max_parallel_workers_per_gather = 0;\n";
    let parallel = "SET max_parallel_workers_per_gather = 2;\nSET parallel_setup_cost = 0;\n\
                    SET parallel_tuple_cost = 0;\nSET min_parallel_table_scan_size = 0;\n";
    let partial = "SELECT steadytext_summarize_partial(body, '{}') IS NOT NULL FROM bench_rows";
    let full = "SELECT steadytext_summarize(body, '{}') FROM bench_rows";
    let time = |settings: &str, sql: &str| -> Result<f64> {
        Ok(median(
            cluster.pgbench(&format!("{settings}{sql}"), repeat)?,
        ))
    };
    Ok(Summaries {
        partial: (time(serial, partial)?, time(parallel, partial)?),
        full: (time(serial, full)?, time(parallel, full)?),
    })
}

impl Summaries {
    fn json(&self) -> serde_json::Value {
        json!({
            "aggregation": { "serial": self.partial.0, "two_workers": self.partial.1, "speedup": self.partial.0 / self.partial.1 },
            "summary": { "serial": self.full.0, "two_workers": self.full.1, "speedup": self.full.0 / self.full.1 },
        })
    }

    fn markdown(&self) -> String {
        format!(
            "\n### Summarising 10 000 rows\n\n\
             `steadytext_summarize` over 10 000 rows (two facts each), serially and with two \
             parallel workers (same bytes either way); the aggregation alone is \
             `steadytext_summarize_partial`. The summary adds deduplicating the kept facts \
             (embeddings) and one generation.\n\n\
             | | serial, ms | 2 workers, ms | speed-up |\n|---|---|---|---|\n\
             | aggregation | {:.0} | {:.0} | {:.2} |\n\
             | whole summary | {:.0} | {:.0} | {:.2} |\n",
            self.partial.0,
            self.partial.1,
            self.partial.0 / self.partial.1,
            self.full.0,
            self.full.1,
            self.full.0 / self.full.1,
        )
    }
}
