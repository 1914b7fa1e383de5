//! Continuous batching: generated tokens per second with 1, 2, 4 and 8 concurrent clients of one
//! `st daemon`, batched (the default) against `--serial`, on SmolLM2 (Q4_1: 8 sequences per
//! decode call) and Qwen2.5-Coder-1.5B (Q4_K_M: 3 per call). Cache off, distinct prompts, greedy.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::json;
use steadytext::client::DaemonClient;
use steadytext::execute::{Output, Progress};
use steadytext::request::{GenerateSpec, Spec};

use crate::core::{median, models_dir, EMBEDDING_MODEL, GENERATION_MODEL};

const TOKENS: usize = 48;
const CLIENTS: [usize; 4] = [1, 2, 4, 8];
const MODELS: [(&str, &str); 2] = [
    ("SmolLM2-135M Q4_1", GENERATION_MODEL),
    (
        "Qwen2.5-Coder-1.5B Q4_K_M",
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    ),
];

/// A daemon on `model`, stopped on drop.
struct Daemon {
    child: Child,
    dir: PathBuf,
    endpoint: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Daemon {
    fn start(st: &Path, model: &str, serial: bool) -> Result<Daemon> {
        let dir = std::env::temp_dir().join(format!("st-bench-batch-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let endpoint = format!("ipc://{}/daemon.sock", dir.display());
        let mut cmd = Command::new(st);
        cmd.args(["daemon", "run", "--endpoint", &endpoint])
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .env("STEADYTEXT_DISABLE_CACHE", "1")
            .env("STEADYTEXT_GENERATION_MODEL", models_dir().join(model))
            .env(
                "STEADYTEXT_EMBEDDING_MODEL",
                models_dir().join(EMBEDDING_MODEL),
            );
        if serial {
            cmd.arg("--serial");
        }
        let daemon = Daemon {
            child: cmd.spawn()?,
            dir,
            endpoint,
        };
        let client = daemon.client();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !client.ping(Duration::from_millis(200)) {
            if Instant::now() > deadline {
                bail!("the benchmark daemon did not come up");
            }
        }
        Ok(daemon)
    }

    fn client(&self) -> DaemonClient {
        DaemonClient::new(&self.endpoint, Duration::from_secs(600))
    }
}

/// Tokens the generation produced.
fn generate(client: &DaemonClient, prompt: String) -> Result<usize> {
    let spec = GenerateSpec {
        prompt,
        max_new_tokens: Some(TOKENS),
        ..GenerateSpec::default()
    };
    let mut execution = client.execute_spec(Spec::Generate(spec), false)?;
    loop {
        if let Progress::Done(Output::Text { summary, .. }) = execution.advance()? {
            return Ok(summary.generated_tokens);
        }
    }
}

/// Generated tokens per second with `clients` clients sending one generation each at once.
fn rate(daemon: &Daemon, clients: usize, tag: &str) -> Result<f64> {
    let since = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let client = daemon.client();
            let prompt = format!("Tell me about the number {} ({tag}).", i + 3);
            std::thread::spawn(move || generate(&client, prompt))
        })
        .collect();
    let mut tokens = 0;
    for t in threads {
        tokens += t.join().expect("a client thread")?;
    }
    Ok(tokens as f64 / since.elapsed().as_secs_f64())
}

/// Runs the batching benchmark; `st` runs the daemons.
pub fn run(st: &Path, repeat: usize) -> Result<(serde_json::Value, String)> {
    let mut json_rows = Vec::new();
    let mut rows = String::new();
    for (name, file) in MODELS {
        let mut serial_one = 0.0;
        for serial in [true, false] {
            let daemon = Daemon::start(st, file, serial)?;
            rate(&daemon, 1, "warm")?;
            let mut rates = Vec::new();
            for clients in CLIENTS {
                let runs = (0..repeat.min(3))
                    .map(|r| rate(&daemon, clients, &format!("{clients}.{r}")))
                    .collect::<Result<Vec<_>>>()?;
                rates.push((clients, median(runs)));
            }
            drop(daemon);
            if serial {
                serial_one = rates[0].1;
            }
            let mode = if serial { "serial" } else { "batched" };
            for (clients, r) in rates {
                json_rows.push(json!({
                    "model": name, "mode": mode, "clients": clients,
                    "tokens_per_s": r, "ratio_to_serial_1_client": r / serial_one,
                }));
                rows.push_str(&format!(
                    "| {name} | {mode} | {clients} | {r:.1} | {:.2} |\n",
                    r / serial_one
                ));
            }
        }
    }
    let json = json!({ "tokens": TOKENS, "runs": json_rows });
    let markdown = format!(
        "\n## Continuous batching (st daemon, cache off, distinct prompts, {TOKENS} tokens each)\n\n\
         Each client sends one generation; all start together. Batched is the default daemon, \
         serial is `--serial` (one request at a time, as before).\n\n\
         | model | mode | clients | tokens/s | / serial, 1 client |\n|---|---|---|---|---|\n{rows}"
    );
    Ok((json, markdown))
}
