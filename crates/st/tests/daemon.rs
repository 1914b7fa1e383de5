//! `st daemon` on the real test models: protocol, concurrency, streams, cancellation, cache,
//! and identical results to the library in-process.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use steadytext::client::DaemonClient;
use steadytext::{EmbedMode, Engine, GenerateParams, Role};

fn models_dir() -> PathBuf {
    std::env::var_os("STEADYTEXT_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/steadytext/test-models"))
}

fn gen_path() -> PathBuf {
    models_dir().join("smollm2-135m-instruct-q4_1.gguf")
}

fn emb_path() -> PathBuf {
    models_dir().join("all-minilm-l6-v2-f32.gguf")
}

/// A daemon on its own port and cache directory, killed on drop.
struct Daemon {
    child: Child,
    port: u16,
    home: PathBuf,
}

impl Daemon {
    fn start(port: u16, extra_env: &[(&str, &str)]) -> Daemon {
        let home =
            std::env::temp_dir().join(format!("st-daemon-test-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_st"));
        cmd.args([
            "daemon",
            "run",
            "--port",
            &port.to_string(),
            "--stream-timeout-ms",
            "700",
        ])
        .env("XDG_CACHE_HOME", &home)
        .env("STEADYTEXT_GENERATION_MODEL", gen_path())
        .env("STEADYTEXT_EMBEDDING_MODEL", emb_path());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("st daemon run starts");
        let daemon = Daemon { child, port, home };
        let client = daemon.client();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !client.ping(Duration::from_millis(200)) {
            assert!(Instant::now() < deadline, "the daemon did not come up");
        }
        daemon
    }

    fn client(&self) -> DaemonClient {
        DaemonClient::new(
            &format!("tcp://127.0.0.1:{}", self.port),
            Duration::from_secs(120),
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn generate(client: &DaemonClient, prompt: &str, max: usize) -> String {
    let params = json!({ "prompt": prompt, "max_new_tokens": max });
    client
        .call("generate", params, &mut || true)
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

fn embed(client: &DaemonClient, text: &str) -> Vec<f32> {
    serde_json::from_value(
        client
            .call("embed", json!({ "text_input": text }), &mut || true)
            .unwrap(),
    )
    .unwrap()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn results_equal_the_library_in_process() {
    let daemon = Daemon::start(5621, &[("STEADYTEXT_DISABLE_CACHE", "1")]);
    let client = daemon.client();
    let model = Engine::global()
        .load(&gen_path(), Role::Generation, None)
        .unwrap();
    let local = |params: GenerateParams| {
        steadytext::generate(model, "Write a haiku about PostgreSQL", &params).unwrap()
    };
    assert_eq!(
        generate(&client, "Write a haiku about PostgreSQL", 40),
        local(GenerateParams {
            max_new_tokens: 40,
            ..Default::default()
        })
    );
    let sampled = client
        .call(
            "generate",
            json!({ "prompt": "Write a haiku about PostgreSQL", "max_new_tokens": 24, "temperature": 0.7, "seed": 7 }),
            &mut || true,
        )
        .unwrap();
    let expected = local(GenerateParams {
        max_new_tokens: 24,
        temperature: 0.7,
        seed: 7,
        ..Default::default()
    });
    assert_eq!(sampled, json!(expected));

    let embedder = Engine::global()
        .load(&emb_path(), Role::Embedding, None)
        .unwrap();
    let here = steadytext::embed(embedder, "hello", EmbedMode::Query, None).unwrap();
    assert_eq!(bits(&embed(&client, "hello")), bits(&here));
    let batch: Vec<Vec<f32>> = serde_json::from_value(
        client
            .call(
                "embed_batch",
                json!({ "texts": ["hello", "a cat"] }),
                &mut || true,
            )
            .unwrap(),
    )
    .unwrap();
    assert_eq!(bits(&batch[0]), bits(&here));
    assert_eq!(bits(&batch[1]), bits(&embed(&client, "a cat")));
}

#[test]
fn ping_is_answered_at_once_during_a_long_generation() {
    let daemon = Daemon::start(5622, &[("STEADYTEXT_DISABLE_CACHE", "1")]);
    let client = daemon.client();
    let busy = client.clone();
    let long =
        std::thread::spawn(move || generate(&busy, "Write a long story about a dragon", 300));
    std::thread::sleep(Duration::from_millis(300));
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let start = Instant::now();
        assert!(client.ping(Duration::from_secs(2)));
        slowest = slowest.max(start.elapsed());
    }
    assert!(
        !long.is_finished(),
        "the generation should still be running"
    );
    assert!(
        slowest < Duration::from_millis(50),
        "slowest ping took {slowest:?}"
    );
    assert!(!long.join().unwrap().is_empty());
}

#[test]
fn a_stream_adds_up_to_the_generation() {
    let daemon = Daemon::start(5623, &[("STEADYTEXT_DISABLE_CACHE", "1")]);
    let client = daemon.client();
    let params = json!({ "prompt": "Write a haiku about PostgreSQL", "max_new_tokens": 40 });
    let mut stream = client.generate_iter(params).unwrap();
    let mut pieces = Vec::new();
    while let Some(piece) = stream.next_piece(&mut || true).unwrap() {
        pieces.push(piece);
    }
    assert!(pieces.len() > 1);
    assert_eq!(
        pieces.concat().trim(),
        generate(&client, "Write a haiku about PostgreSQL", 40)
    );
}

#[test]
fn an_abandoned_stream_does_not_wedge_the_server() {
    let daemon = Daemon::start(5624, &[("STEADYTEXT_DISABLE_CACHE", "1")]);
    // A raw client that reads one frame and never acknowledges it.
    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::REQ).unwrap();
    socket
        .connect(&format!("tcp://127.0.0.1:{}", daemon.port))
        .unwrap();
    let request = json!({ "method": "generate_iter", "params": { "prompt": "Tell a long story", "max_new_tokens": 400 }, "id": "abandoned" });
    socket.send(request.to_string().as_bytes(), 0).unwrap();
    let first: Value = serde_json::from_slice(&socket.recv_bytes(0).unwrap()).unwrap();
    assert!(first["result"]["token"].is_string());
    drop(socket);
    let client = daemon.client();
    let start = Instant::now();
    assert!(!generate(&client, "Say hello", 8).is_empty());
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "the server stayed wedged"
    );
    let stats = client.call("stats", json!({}), &mut || true).unwrap();
    assert_eq!(stats["active_streams"], 0);
}

#[test]
fn cancel_stops_the_work() {
    let daemon = Daemon::start(5625, &[("STEADYTEXT_DISABLE_CACHE", "1")]);
    let client = daemon.client();
    let start = Instant::now();
    let mut polls = 0;
    // Give up after ~0.5 s: the client's guard sends `cancel` for the request.
    let result = client.call(
        "generate",
        json!({ "prompt": "Write a long story about a dragon", "max_new_tokens": 2000 }),
        &mut || {
            polls += 1;
            polls < 10
        },
    );
    assert!(result.is_err());
    assert!(start.elapsed() < Duration::from_secs(2));
    // Had the 2000-token generation gone on, this would wait behind it for many seconds.
    let next = Instant::now();
    assert!(!generate(&client, "Say hello", 4).is_empty());
    assert!(
        next.elapsed() < Duration::from_secs(5),
        "waited {:?}",
        next.elapsed()
    );
}

#[test]
fn many_clients_at_once_get_the_serial_results() {
    let daemon = Daemon::start(5626, &[]);
    let client = daemon.client();
    let prompts = [
        "Say hello",
        "Name a colour",
        "Count to three",
        "Name a fruit",
    ];
    let serial: Vec<String> = prompts.iter().map(|p| generate(&client, p, 12)).collect();
    let serial_embed = bits(&embed(&client, "concurrency"));
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let client = client.clone();
            let prompt = prompts[i % prompts.len()];
            std::thread::spawn(move || {
                let text = generate(&client, prompt, 12);
                let vector = bits(&embed(&client, "concurrency"));
                (i, text, vector)
            })
        })
        .collect();
    for t in threads {
        let (i, text, vector) = t.join().unwrap();
        assert_eq!(text, serial[i % prompts.len()]);
        assert_eq!(vector, serial_embed);
    }
    let stats = client.call("stats", json!({}), &mut || true).unwrap();
    let generation = &stats["cache"]["kinds"]["generation"];
    assert!(generation["hits"].as_u64().unwrap() >= 8, "{generation}");
    assert_eq!(generation["entries"], 4);
}

#[test]
fn errors_are_answered_not_fatal() {
    let daemon = Daemon::start(5627, &[]);
    let client = daemon.client();
    let unknown = client
        .call("frobnicate", json!({}), &mut || true)
        .unwrap_err();
    assert_eq!(unknown.to_string(), "Unknown method: frobnicate");
    let bad = client
        .call(
            "generate",
            json!({ "prompt": "x", "seed": -1 }),
            &mut || true,
        )
        .unwrap_err();
    assert!(
        bad.to_string()
            .contains("Seed must be a non-negative integer"),
        "{bad}"
    );
    let missing = client
        .call("generate", json!({ "max_new_tokens": 3 }), &mut || true)
        .unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("invalid parameters for generate"),
        "{missing}"
    );
    assert!(client.ping(Duration::from_secs(1)));
}

#[test]
fn start_status_stop() {
    let home = std::env::temp_dir().join(format!("st-daemon-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let st = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_st"))
            .args(args)
            .args(["--port", "5628"])
            .env("XDG_CACHE_HOME", &home)
            .env("STEADYTEXT_GENERATION_MODEL", gen_path())
            .env("STEADYTEXT_EMBEDDING_MODEL", emb_path())
            .output()
            .unwrap()
    };
    let started = st(&["daemon", "start"]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    assert!(home.join("steadytext/daemon-5628.pid").is_file());
    let again = st(&["daemon", "start"]);
    assert!(!again.status.success(), "a second start is refused");
    let status: Value =
        serde_json::from_slice(&st(&["daemon", "status", "--json"]).stdout).unwrap();
    assert_eq!(status["running"], true);
    assert_eq!(status["endpoint"], "tcp://127.0.0.1:5628");
    assert!(status["uptime_seconds"].as_f64().unwrap() >= 0.0);
    let shas: Vec<&str> = status["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["sha256"].as_str())
        .collect();
    assert_eq!(shas.len(), 2, "{status}");
    assert!(st(&["daemon", "stop"]).status.success());
    let status: Value =
        serde_json::from_slice(&st(&["daemon", "status", "--json"]).stdout).unwrap();
    assert_eq!(status["running"], false);
    assert!(!home.join("steadytext/daemon-5628.pid").exists());
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn structured_generation_and_reranking_match_the_library_with_and_without_the_cache() {
    let daemon = Daemon::start(
        5629,
        &[("STEADYTEXT_RERANKING_MODEL", gen_path().to_str().unwrap())],
    );
    let client = daemon.client();
    let model = steadytext::Engine::global()
        .load(&gen_path(), steadytext::Role::Generation, None)
        .unwrap();
    let schema = serde_json::json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]});
    let params = steadytext::GenerateParams {
        max_new_tokens: 48,
        ..Default::default()
    };
    let local = steadytext::generate_constrained(
        model,
        "Pick a number",
        &params,
        &steadytext::Constraint::Json(schema.clone()),
    )
    .unwrap();
    let request =
        serde_json::json!({"prompt": "Pick a number", "max_new_tokens": 48, "schema": schema});
    for _ in 0..2 {
        // The second answer comes from the daemon's cache.
        let remote = client
            .call("generate", request.clone(), &mut || true)
            .unwrap();
        assert_eq!(remote.as_str().unwrap(), local);
    }
    let both = serde_json::json!({"prompt": "x", "regex": "a", "choices": ["a", "b"]});
    let err = client
        .call("generate", both, &mut || true)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("only one of schema, regex and choices"),
        "{err}"
    );
    let bad = serde_json::json!({"prompt": "x", "regex": "(a)\\1"});
    let err = client
        .call("generate", bad, &mut || true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("backreferences"), "{err}");

    let docs = ["A database", "A fruit", "A violin"];
    let local = steadytext::rerank::rerank(
        model,
        "What is PostgreSQL?",
        &docs,
        steadytext::rerank::DEFAULT_TASK,
        None,
    )
    .unwrap();
    let request = serde_json::json!({"query": "What is PostgreSQL?", "documents": docs});
    for _ in 0..2 {
        let remote: Vec<(String, f64)> = serde_json::from_value(
            client
                .call("rerank", request.clone(), &mut || true)
                .unwrap(),
        )
        .unwrap();
        let expected: Vec<(String, f64)> = local
            .iter()
            .map(|s| (docs[s.index].to_string(), s.score))
            .collect();
        assert_eq!(remote, expected);
    }
    let names = client
        .call(
            "rerank",
            serde_json::json!({"query": "q", "documents": "one", "return_scores": false}),
            &mut || true,
        )
        .unwrap();
    assert_eq!(
        names,
        serde_json::json!(["one"]),
        "a single document and no scores, as SteadyText's daemon"
    );
}
