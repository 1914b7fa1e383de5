//! The daemon: its per-request overhead against the library called directly, and requests per
//! second with 1, 4 and 8 concurrent clients. The daemon's cache is off, so every request computes.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::core::{median, models_dir, test_models, EMBEDDING_MODEL, GENERATION_MODEL};
use crate::library;
use anyhow::{bail, Result};
use serde_json::json;
use steadytext::client::DaemonClient;

const PORT: u16 = 5641;
const HTTP: &str = "127.0.0.1:5645";
const THREADS: i32 = 2;

struct Daemon(Child, std::path::PathBuf);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn start(st: &Path) -> Result<(Daemon, DaemonClient)> {
    let home = std::env::temp_dir().join(format!("st-bench-daemon-{}", std::process::id()));
    let child = Command::new(st)
        .args([
            "daemon",
            "run",
            "--port",
            &PORT.to_string(),
            "--threads",
            &THREADS.to_string(),
            "--http",
            HTTP,
        ])
        .env("XDG_CACHE_HOME", &home)
        .env("STEADYTEXT_DISABLE_CACHE", "1")
        .env(
            "STEADYTEXT_GENERATION_MODEL",
            models_dir().join(GENERATION_MODEL),
        )
        .env(
            "STEADYTEXT_EMBEDDING_MODEL",
            models_dir().join(EMBEDDING_MODEL),
        )
        .spawn()?;
    let daemon = Daemon(child, home);
    let client = DaemonClient::new(&format!("tcp://127.0.0.1:{PORT}"), Duration::from_secs(300));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client.ping(Duration::from_millis(200)) {
        if Instant::now() > deadline {
            bail!("the benchmark daemon did not come up");
        }
    }
    Ok((daemon, client))
}

fn time_ms(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64() * 1000.0
}

/// Median ms per request over HTTP and over ZeroMQ, (embed, generate 32 tokens), taken in
/// alternation so both see the same machine.
fn http_and_zmq(client: &DaemonClient, repeat: usize) -> Result<((f64, f64), (f64, f64))> {
    let agent = ureq::AgentBuilder::new().build();
    let post = |path: &str, body: serde_json::Value| -> Result<()> {
        agent
            .post(&format!("http://{HTTP}/v1/{path}"))
            .send_json(body)
            .map(drop)
            .map_err(|e| anyhow::anyhow!("HTTP {path}: {e}"))
    };
    let prompt = "Explain in a few sentences what a database index is.";
    let (mut he, mut ze, mut hg, mut zg) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    post("embeddings", json!({ "input": "warm up" }))?;
    for i in 0..repeat * 4 {
        let text = format!("transport {i}");
        he.push(time_ms(|| {
            post("embeddings", json!({ "input": text.clone() })).unwrap()
        }));
        ze.push(time_ms(|| {
            client
                .call("embed", json!({ "text_input": text.clone() }), &mut || true)
                .unwrap();
        }));
    }
    for _ in 0..repeat {
        let body = json!({ "prompt": prompt, "max_tokens": 32 });
        hg.push(time_ms(|| post("completions", body).unwrap()));
        let request = json!({ "prompt": prompt, "max_new_tokens": 32 });
        zg.push(time_ms(|| {
            client.call("generate", request, &mut || true).unwrap();
        }));
    }
    Ok(((median(he), median(hg)), (median(ze), median(zg))))
}

/// Runs the daemon benchmarks; `st` is the binary to run the daemon with.
pub fn run(st: &Path, repeat: usize) -> Result<(serde_json::Value, String)> {
    let (_daemon, client) = start(st)?;
    let (model, embedder) = test_models()?;
    let prompt = "Explain in a few sentences what a database index is.";
    let gen_request = json!({ "prompt": prompt, "max_new_tokens": 32 });
    client.call("generate", gen_request.clone(), &mut || true)?;
    library::generate(&model, prompt, 32, THREADS)?;
    let gen_daemon = median(
        (0..repeat)
            .map(|_| {
                time_ms(|| {
                    client
                        .call("generate", gen_request.clone(), &mut || true)
                        .unwrap();
                })
            })
            .collect(),
    );
    let gen_library = median(
        (0..repeat)
            .map(|_| {
                time_ms(|| {
                    library::generate(&model, prompt, 32, THREADS).unwrap();
                })
            })
            .collect(),
    );
    let embed_daemon = median(
        (0..repeat * 4)
            .map(|i| {
                time_ms(|| {
                    client
                        .call(
                            "embed",
                            json!({ "text_input": format!("overhead {i}") }),
                            &mut || true,
                        )
                        .unwrap();
                })
            })
            .collect(),
    );
    let embed_library = median(
        (0..repeat * 4)
            .map(|i| {
                time_ms(|| {
                    library::embed(&embedder, &format!("overhead {i}"), THREADS).unwrap();
                })
            })
            .collect(),
    );

    let (http_ms, zmq_ms) = http_and_zmq(&client, repeat)?;

    let mut throughput = Vec::new();
    for clients in [1usize, 4, 8] {
        let per_client = 64 / clients;
        let start = Instant::now();
        let workers: Vec<_> = (0..clients)
            .map(|c| {
                let client = client.clone();
                std::thread::spawn(move || {
                    for i in 0..per_client {
                        let text = format!("client {c} request {i} about tables and rows");
                        client
                            .call("embed", json!({ "text_input": text }), &mut || true)
                            .unwrap();
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        throughput.push((
            clients,
            (clients * per_client) as f64 / start.elapsed().as_secs_f64(),
        ));
    }

    let json = json!({
        "per_request_ms": {
            "generate_32_tokens": { "daemon": gen_daemon, "library": gen_library, "ratio": gen_daemon / gen_library },
            "embed": { "daemon": embed_daemon, "library": embed_library, "ratio": embed_daemon / embed_library },
        },
        "http_vs_zmq_ms": {
            "embed": { "http": http_ms.0, "zmq": zmq_ms.0, "ratio": http_ms.0 / zmq_ms.0 },
            "generate_32_tokens": { "http": http_ms.1, "zmq": zmq_ms.1, "ratio": http_ms.1 / zmq_ms.1 },
        },
        "embed_requests_per_s": throughput.iter().map(|(c, r)| json!({ "clients": c, "rps": r })).collect::<Vec<_>>(),
    });
    let rows: String = throughput
        .iter()
        .map(|(c, r)| format!("| {c} | {r:.1} |\n"))
        .collect();
    let markdown = format!(
        "\n## The st daemon (cache off, {THREADS} threads per request)\n\n\
         | per request | through the daemon, ms | library in this process, ms | daemon / library |\n|---|---|---|---|\n\
         | generate, 32 tokens | {gen_daemon:.1} | {gen_library:.1} | {:.3} |\n\
         | embed one text | {embed_daemon:.2} | {embed_library:.2} | {:.3} |\n\n\
         One request over HTTP (`--http`, OpenAI's API) against ZeroMQ, alternating:\n\n\
         | per request | HTTP, ms | ZeroMQ, ms | HTTP / ZeroMQ |\n|---|---|---|---|\n\
         | embed one text | {:.2} | {:.2} | {:.3} |\n\
         | generate, 32 tokens | {:.1} | {:.1} | {:.3} |\n\n\
         Embedding requests per second by concurrent clients (one inference thread serves them in turn):\n\n\
         | clients | requests/s |\n|---|---|\n{rows}",
        gen_daemon / gen_library,
        embed_daemon / embed_library,
        http_ms.0,
        zmq_ms.0,
        http_ms.0 / zmq_ms.0,
        http_ms.1,
        zmq_ms.1,
        http_ms.1 / zmq_ms.1,
    );
    Ok((json, markdown))
}
