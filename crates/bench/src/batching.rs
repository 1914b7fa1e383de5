//! Continuous batching: generated tokens per second with 1, 2, 4 and 8 concurrent clients of one
//! `st daemon`, batched (the default) against `--serial`, on SmolLM2 (Q4_1) and
//! Qwen2.5-Coder-1.5B (Q4_K_M), both 8 sequences per decode call. Cache off, distinct prompts,
//! greedy. Two kinds of request: short answers (at most 48 tokens, about as many as the prompt)
//! and long ones (at most 128). The prompts differ in their last words only, as rows of one
//! SQL query's prompts do: in the batch, a prompt that joins while another is running copies
//! the KV cells of the prefix they share (the chat template's system prompt and the request's
//! words) and is prefilled from there; the serial daemon prefills every prompt whole.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::json;
use steadytext::client::DaemonClient;
use steadytext::execute::{Output, Progress};
use steadytext::request::{GenerateSpec, Spec};

use crate::core::{median, models_dir, EMBEDDING_MODEL, GENERATION_MODEL};

const CLIENTS: [usize; 4] = [1, 2, 4, 8];
/// (most tokens, prompt before the client's number): a short answer and a long one.
const REQUESTS: [(usize, &str); 2] = [
    (48, "Tell me about the number"),
    (128, "Write a long story about the number"),
];
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
        let mode = if serial { "serial" } else { "batched" };
        let dir =
            std::env::temp_dir().join(format!("st-bench-batch-{}-{mode}", std::process::id()));
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
fn generate(client: &DaemonClient, prompt: String, tokens: usize) -> Result<usize> {
    let spec = GenerateSpec {
        prompt,
        max_new_tokens: Some(tokens),
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
fn rate(daemon: &Daemon, clients: usize, (tokens, ask): (usize, &str), tag: &str) -> Result<f64> {
    let since = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let client = daemon.client();
            let prompt = format!("{ask} {} ({tag}).", i + 3);
            std::thread::spawn(move || generate(&client, prompt, tokens))
        })
        .collect();
    let mut tokens = 0;
    for t in threads {
        tokens += t.join().expect("a client thread")?;
    }
    Ok(tokens as f64 / since.elapsed().as_secs_f64())
}

/// Runs per figure: the daemons' generations are slow, so at most 3.
fn runs(repeat: usize) -> usize {
    repeat.clamp(1, 3)
}

/// The two daemons `rates` compares: indices into its result.
const SERIAL: usize = 0;
const BATCHED: usize = 1;

/// Median tokens/s of a serial and a batched daemon, both up at once, indexed by [`SERIAL`] and
/// [`BATCHED`]: a row per request kind, a column per client count. Each run of the serial daemon
/// is followed by the same run (same prompts) of the batched one, so the two see nearly the same
/// state of the machine (the serial one always goes first); run one after the other, this
/// machine's drift of 10 to 15 % between minutes showed up as a difference of modes.
fn rates(st: &Path, file: &str, repeat: usize) -> Result<[Vec<Vec<f64>>; 2]> {
    // At SERIAL and BATCHED.
    let daemons = [
        Daemon::start(st, file, true)?,
        Daemon::start(st, file, false)?,
    ];
    for daemon in &daemons {
        rate(daemon, 1, REQUESTS[0], "warm")?;
    }
    let mut medians = [
        vec![Vec::new(); REQUESTS.len()],
        vec![Vec::new(); REQUESTS.len()],
    ];
    for (kind, &request) in REQUESTS.iter().enumerate() {
        for &clients in &CLIENTS {
            let mut samples = [Vec::new(), Vec::new()];
            for r in 0..runs(repeat) {
                let tag = format!("{clients}.{r}");
                for mode in [SERIAL, BATCHED] {
                    samples[mode].push(rate(&daemons[mode], clients, request, &tag)?);
                }
            }
            for (mode, samples) in samples.into_iter().enumerate() {
                medians[mode][kind].push(median(samples));
            }
        }
    }
    Ok(medians)
}

/// Runs the batching benchmark; `st` runs the daemons.
pub fn run(st: &Path, repeat: usize) -> Result<(serde_json::Value, String)> {
    let mut json_rows = Vec::new();
    let mut rows = String::new();
    for (name, file) in MODELS {
        let medians = rates(st, file, repeat)?;
        let (serial, batched) = (&medians[SERIAL], &medians[BATCHED]);
        for (&(tokens, _), (serial, batched)) in REQUESTS.iter().zip(serial.iter().zip(batched)) {
            // The serial daemon with one client of the same request kind: today's throughput.
            let one = serial[0];
            for ((&clients, &s), &b) in CLIENTS.iter().zip(serial).zip(batched) {
                json_rows.push(json!({
                    "model": name, "max_new_tokens": tokens, "clients": clients,
                    "serial_tokens_per_s": s, "batched_tokens_per_s": b,
                    "batched_over_serial": b / s, "batched_over_serial_1_client": b / one,
                }));
                rows.push_str(&format!(
                    "| {name} | {tokens} | {clients} | {s:.1} | {b:.1} | {:.2} | {:.2} |\n",
                    b / s,
                    b / one
                ));
            }
        }
    }
    let runs = runs(repeat);
    let json = json!({ "runs": json_rows });
    let markdown = format!(
        "\n## Continuous batching (st daemon, cache off, distinct prompts, greedy)\n\n\
         Each client sends one generation; all start together. Batched is the default daemon, \
         serial is `--serial` (one request at a time, as before); both run side by side and \
         take turns, each run of one followed by the same run of the other. Short answers (at \
         most 48 tokens) are about as long as their prompts; long ones ask for a story (at most \
         128). The prompts differ in their last words only (\"Tell me about the number 5 (4.1).\"): \
         in the batch a prompt that joins while another runs copies the KV cells of the prefix \
         they share and is prefilled from there; the serial daemon prefills every prompt whole. \
         Medians of {runs} runs.\n\n\
         | model | most tokens | clients | serial tokens/s | batched tokens/s | batched / serial | \
         batched / serial, 1 client |\n|---|---|---|---|---|---|---|\n{rows}"
    );
    Ok((json, markdown))
}
