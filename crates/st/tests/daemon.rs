//! `st daemon` on the real test models: the same bytes as the library in this process (both
//! computing: the daemon's cache is off unless a test is about the cache), concurrency, streams,
//! cancellation of work in flight, typed errors, who may do what, a wire fuzz, bounds, and the
//! process lifecycle (`start`, `status`, `stop`, `restart`, `run`).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use fastrand::Rng;
use serde_json::{json, Value};
use steadytext::client::DaemonClient;
use steadytext::execute::{self, Quiet, Sink};
use steadytext::request::{Builder, EmbedSpec, GenerateSpec, RerankSpec, Spec};
use steadytext::{ErrorKind, Executor, Local, Progress};

#[path = "support/models.rs"]
mod models;
use models::{emb_path, gen_path};

/// A daemon in the foreground with its own endpoint and cache directory, killed on drop.
struct Daemon {
    child: Child,
    endpoint: String,
    home: PathBuf,
    token: Option<String>,
    public_key: Option<steadytext::daemon_keys::Key>,
}

/// How a test daemon runs: by default on an `ipc://` socket (its user is authorised, as the
/// extension's daemon), cache off.
#[derive(Default)]
struct Options<'a> {
    cache: bool,
    tcp: bool,
    token: bool,
    /// With a CURVE key pair (its clients pin the public key).
    curve: bool,
    extra: &'a [&'a str],
}

impl Daemon {
    fn start(port: u16, options: Options<'_>) -> Daemon {
        let home =
            std::env::temp_dir().join(format!("st-daemon-test-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home).unwrap();
        let endpoint = if options.tcp {
            format!("tcp://127.0.0.1:{port}")
        } else {
            format!("ipc://{}/sock/daemon.sock", home.display())
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_st"));
        cmd.args([
            "daemon",
            "run",
            "--endpoint",
            &endpoint,
            "--stream-timeout-ms",
            "700",
        ])
        .args(options.extra)
        .env("XDG_CACHE_HOME", &home)
        .env("STEADYTEXT_GENERATION_MODEL", gen_path())
        .env("STEADYTEXT_EMBEDDING_MODEL", emb_path())
        .env("STEADYTEXT_RERANKING_MODEL", gen_path());
        if !options.cache {
            cmd.env("STEADYTEXT_DISABLE_CACHE", "1");
        }
        let token = options.token.then(|| {
            let file = home.join("token");
            std::fs::write(&file, "sesame").unwrap();
            cmd.args(["--token-file", file.to_str().unwrap()]);
            "sesame".to_string()
        });
        let public_key = options.curve.then(|| {
            let file = home.join("daemon.key");
            let pair = steadytext::daemon_keys::ensure_secret_key_file(&file).unwrap();
            cmd.args(["--secret-key-file", file.to_str().unwrap()]);
            pair.public
        });
        let child = cmd.spawn().expect("st daemon run starts");
        let daemon = Daemon {
            child,
            endpoint,
            home,
            token,
            public_key,
        };
        let client = daemon.stranger();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !client.ping(Duration::from_millis(200)) {
            assert!(Instant::now() < deadline, "the daemon did not come up");
        }
        daemon
    }

    /// A client with the daemon's token and key, when it has them.
    fn client(&self) -> DaemonClient {
        self.stranger().with_auth(self.token.clone())
    }

    /// A client without the token (with the key: it knows which daemon it talks to).
    fn stranger(&self) -> DaemonClient {
        DaemonClient::new(&self.endpoint, Duration::from_secs(120)).with_server_key(self.public_key)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// Builds specs as the command line does (any path), with the test models as defaults.
fn builder() -> Builder {
    Builder {
        defaults: steadytext::request::DefaultModels {
            generation: Some(gen_path().display().to_string()),
            embedding: Some(emb_path().display().to_string()),
            reranking: Some(gen_path().display().to_string()),
        },
        ..Builder::default()
    }
}

fn gen_spec(prompt: &str, max: usize) -> GenerateSpec {
    GenerateSpec {
        prompt: prompt.into(),
        max_new_tokens: Some(max),
        ..GenerateSpec::default()
    }
}

/// The text the daemon gives for a spec it builds itself (SteadyText's clients send these).
fn remote_text(client: &DaemonClient, spec: GenerateSpec) -> String {
    let mut execution = client.execute_spec(Spec::Generate(spec), false).unwrap();
    loop {
        if let Progress::Done(out) = execution.advance().unwrap() {
            return out.into_text().unwrap();
        }
    }
}

/// The text this process computes for the same spec.
fn local_text(spec: GenerateSpec) -> String {
    let request = Spec::Generate(spec).build(&builder()).unwrap();
    execute::run(&Local::new(2), request, false, &mut Quiet)
        .unwrap()
        .into_text()
        .unwrap()
}

fn raw_generate(client: &DaemonClient, prompt: &str, max: usize) -> String {
    client
        .call(
            "generate",
            json!({ "prompt": prompt, "max_new_tokens": max }),
            &mut || true,
        )
        .unwrap()
        .0
        .as_str()
        .unwrap()
        .to_string()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn results_equal_the_library_in_process() {
    let daemon = Daemon::start(5621, Options::default());
    let client = daemon.client();
    let prompt = "Write a haiku about PostgreSQL";
    assert_eq!(
        remote_text(&client, gen_spec(prompt, 40)),
        local_text(gen_spec(prompt, 40))
    );
    let sampled = GenerateSpec {
        temperature: Some(0.7),
        seed: Some(7),
        ..gen_spec(prompt, 24)
    };
    assert_eq!(remote_text(&client, sampled.clone()), local_text(sampled));
    // A request built here, model resolved here, run there (what the extension does).
    let request = Spec::Generate(gen_spec(prompt, 40))
        .build(&builder())
        .unwrap();
    let there = execute::run(&client, request.clone(), false, &mut Quiet).unwrap();
    let here = execute::run(&Local::new(2), request, false, &mut Quiet).unwrap();
    assert_eq!(there, here);

    let texts = vec!["hello".to_string(), "a cat".to_string(), String::new()];
    let embed = Spec::Embed(EmbedSpec {
        texts: Some(texts),
        ..EmbedSpec::default()
    })
    .build(&builder())
    .unwrap();
    let there = execute::run(&client, embed.clone(), false, &mut Quiet)
        .unwrap()
        .into_embeddings()
        .unwrap();
    let here = execute::run(&Local::new(2), embed, false, &mut Quiet)
        .unwrap()
        .into_embeddings()
        .unwrap();
    assert_eq!(
        there.iter().map(|v| bits(v)).collect::<Vec<_>>(),
        here.iter().map(|v| bits(v)).collect::<Vec<_>>()
    );
    // SteadyText's `embed` form: one text, one vector.
    let single: Vec<f32> = serde_json::from_value(
        client
            .call("embed", json!({ "text_input": "hello" }), &mut || true)
            .unwrap()
            .0,
    )
    .unwrap();
    assert_eq!(bits(&single), bits(&here[0]));
}

#[test]
fn ping_is_answered_at_once_during_a_long_generation() {
    let daemon = Daemon::start(5622, Options::default());
    let client = daemon.client();
    let busy = client.clone();
    let long =
        std::thread::spawn(move || raw_generate(&busy, "Write a long story about a dragon", 300));
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
    assert!(
        long.join().unwrap().split_whitespace().count() > 50,
        "a long generation"
    );
}

struct Collect(Vec<String>);

impl Sink for Collect {
    fn piece(&mut self, text: &str) -> bool {
        self.0.push(text.to_string());
        true
    }
}

#[test]
fn a_stream_adds_up_to_the_generation() {
    let daemon = Daemon::start(5623, Options::default());
    let client = daemon.client();
    let request = Spec::Generate(gen_spec("Write a haiku about PostgreSQL", 40))
        .build(&builder())
        .unwrap();
    let mut pieces = Collect(Vec::new());
    let streamed = execute::run(&client, request.clone(), true, &mut pieces).unwrap();
    let whole = execute::run(&client, request, false, &mut Quiet).unwrap();
    assert!(pieces.0.len() > 1);
    assert_eq!(streamed, whole, "both computed (the cache is off)");
    assert_eq!(pieces.0.concat().trim(), whole.into_text().unwrap());
}

#[test]
fn an_abandoned_stream_does_not_wedge_the_server() {
    let daemon = Daemon::start(5624, Options::default());
    // A raw client that reads one frame and never acknowledges it.
    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::REQ).unwrap();
    socket.connect(&daemon.endpoint).unwrap();
    let request = json!({ "method": "generate_iter", "params": { "prompt": "Tell a long story", "max_new_tokens": 400 }, "id": "abandoned" });
    socket.send(request.to_string().as_bytes(), 0).unwrap();
    let first: Value = serde_json::from_slice(&socket.recv_bytes(0).unwrap()).unwrap();
    assert!(first["result"]["token"].is_string());
    drop(socket);
    let client = daemon.client();
    let start = Instant::now();
    assert!(!raw_generate(&client, "Say hello", 8).is_empty());
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "the server stayed wedged"
    );
    // The next request may have shared the batch with the abandoned stream and finished first;
    // the stream itself ends at the stream timeout (700 ms here).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = client.call("stats", json!({}), &mut || true).unwrap().0;
        if stats["active_streams"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the abandoned stream was never dropped: {stats}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The generation is shown to be running (forty pieces streamed) before it is dropped; the
/// daemon then serves the next request at once instead of finishing 2000 tokens.
#[test]
fn cancel_stops_the_work_in_flight() {
    let daemon = Daemon::start(5625, Options::default());
    let client = daemon.client();
    let request = Spec::Generate(gen_spec("Write a long story about a dragon", 2000))
        .build(&builder())
        .unwrap();
    let mut execution = client.execute(request, true).unwrap();
    let mut pieces = 0;
    while pieces < 40 {
        match execution.advance().unwrap() {
            Progress::Piece(_) => pieces += 1,
            Progress::Working => {}
            Progress::Done(out) => panic!("the long generation ended early: {out:?}"),
        }
    }
    drop(execution);
    let next = Instant::now();
    assert!(!raw_generate(&client, "Say hello", 4).is_empty());
    assert!(
        next.elapsed() < Duration::from_secs(5),
        "waited {:?}",
        next.elapsed()
    );
}

/// With the cache off and distinct prompts, every concurrent request computes, and gets the
/// bytes it gets alone.
#[test]
fn concurrent_clients_get_the_serial_results() {
    let daemon = Daemon::start(5626, Options::default());
    let client = daemon.client();
    let prompts: Vec<String> = (0..8).map(|i| format!("Name {} animals", i + 2)).collect();
    let serial: Vec<String> = prompts
        .iter()
        .map(|p| raw_generate(&client, p, 12))
        .collect();
    let threads: Vec<_> = prompts
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, prompt)| {
            let client = client.clone();
            std::thread::spawn(move || (i, raw_generate(&client, &prompt, 12)))
        })
        .collect();
    for t in threads {
        let (i, text) = t.join().unwrap();
        assert_eq!(text, serial[i], "{}", prompts[i]);
    }
    let stats = client.call("stats", json!({}), &mut || true).unwrap().0;
    assert_eq!(
        stats["cache"],
        Value::Null,
        "the cache was off: every request computed"
    );
}

/// A generation's streamed pieces put together, and the text it ends with.
fn streamed_text(client: &DaemonClient, spec: GenerateSpec) -> (String, String) {
    let mut execution = client.execute_spec(Spec::Generate(spec), true).unwrap();
    let mut pieces = String::new();
    loop {
        match execution.advance().unwrap() {
            Progress::Piece(p) => pieces.push_str(&p),
            Progress::Working => {}
            Progress::Done(out) => return (pieces, out.into_text().unwrap()),
        }
    }
}

/// Generations on a model proven to batch (SmolLM2's Q4_1 weights: 8 per decode call) share one
/// batch when they arrive together. 4 and 8 concurrent clients, streamed and not, one of them
/// constrained, next to a stream that is cancelled mid-way, get exactly the bytes a `--serial`
/// daemon gives them one at a time (cache off, distinct prompts), and the daemon is seen running
/// several at once.
#[test]
fn batched_clients_get_the_serial_bytes() {
    let specs: Vec<GenerateSpec> = (0..8)
        .map(|i| {
            let topics = [
                "rivers", "owls", "bread", "trains", "comets", "violins", "maps", "tea",
            ];
            let mut s = gen_spec(
                &format!("Write {} sentences about {}.", i + 1, topics[i]),
                24 + 8 * i,
            );
            if i == 5 {
                s.prompt = "Is tea a drink? Answer yes or no.".into();
                s.choices = Some(json!(["yes", "no"]));
            }
            s
        })
        .collect();
    let serial_daemon = Daemon::start(
        5641,
        Options {
            extra: &["--serial"],
            ..Default::default()
        },
    );
    let serial_client = serial_daemon.client();
    let stats = serial_client
        .call("stats", json!({}), &mut || true)
        .unwrap()
        .0;
    assert_eq!(stats["batching"], "serial");
    let serial: Vec<String> = specs
        .iter()
        .map(|s| remote_text(&serial_client, s.clone()))
        .collect();
    drop(serial_daemon);

    let daemon = Daemon::start(5642, Options::default());
    let client = daemon.client();
    let stats = client.call("stats", json!({}), &mut || true).unwrap().0;
    assert_eq!(stats["batching"], "continuous");
    let generation_model = stats["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["path"].as_str().is_some_and(|p| p.ends_with("q4_1.gguf")))
        .cloned();
    assert_eq!(generation_model.unwrap()["batch_rows"], 8, "{stats}");
    for n in [4, 8] {
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher = {
            let (client, done) = (client.clone(), done.clone());
            std::thread::spawn(move || {
                let mut most = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let stats = client.call("stats", json!({}), &mut || true).unwrap().0;
                    most = most.max(stats["running"].as_i64().unwrap_or(0));
                    std::thread::sleep(Duration::from_millis(10));
                }
                most
            })
        };
        let cancelled = (n == 4).then(|| {
            let client = client.clone();
            std::thread::spawn(move || {
                let spec = gen_spec("Write a long story about a dragon", 2000);
                let mut execution = client.execute_spec(Spec::Generate(spec), true).unwrap();
                let mut pieces = 0;
                while pieces < 10 {
                    if let Progress::Piece(_) = execution.advance().unwrap() {
                        pieces += 1;
                    }
                }
            })
        });
        let clients: Vec<_> = specs[..n]
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, spec)| {
                let client = client.clone();
                std::thread::spawn(move || {
                    if i % 2 == 0 {
                        let (pieces, text) = streamed_text(&client, spec);
                        assert_eq!(
                            pieces.trim(),
                            text,
                            "client {i}: the pieces add up to the text"
                        );
                        (i, text)
                    } else {
                        (i, remote_text(&client, spec))
                    }
                })
            })
            .collect();
        for t in clients {
            let (i, text) = t.join().unwrap();
            assert_eq!(
                text, serial[i],
                "{n} clients: client {i} ({:?})",
                specs[i].prompt
            );
        }
        if let Some(c) = cancelled {
            c.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let most = watcher.join().unwrap();
        assert!(most > 1, "{n} clients: the daemon never ran two at once");
    }
    assert!(
        serial
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len()
            == 8,
        "{serial:?}"
    );
}

#[test]
fn the_cache_answers_repeats_with_the_computed_bytes() {
    let daemon = Daemon::start(
        5630,
        Options {
            cache: true,
            ..Options::default()
        },
    );
    let client = daemon.client();
    let first = raw_generate(&client, "Name a colour", 12);
    let again = raw_generate(&client, "Name a colour", 12);
    assert_eq!(first, again);
    let stats = client.call("stats", json!({}), &mut || true).unwrap().0;
    assert_eq!(stats["cache"]["kinds"]["generation"]["hits"], 1, "{stats}");
    // use_cache off: computed, not read or written.
    let off = remote_text(
        &client,
        GenerateSpec {
            use_cache: Some(false),
            ..gen_spec("Name a colour", 12)
        },
    );
    assert_eq!(off, first);
    let stats = client.call("stats", json!({}), &mut || true).unwrap().0;
    assert_eq!(stats["cache"]["kinds"]["generation"]["hits"], 1, "{stats}");
}

#[test]
fn errors_are_answered_with_their_kind_not_fatal() {
    let daemon = Daemon::start(5627, Options::default());
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
    assert_eq!(
        (bad.kind(), bad.to_string().as_str()),
        (ErrorKind::InvalidArgument, "seed must be non-negative")
    );
    let long = client
        .call(
            "generate",
            json!({ "prompt": "x".repeat(20_000) }),
            &mut || true,
        )
        .unwrap_err();
    assert_eq!(long.kind(), ErrorKind::LimitExceeded, "{long}");
    // Digits and spaces: about a token a character, over the 4096-token window.
    let window = client
        .call(
            "generate",
            json!({ "prompt": "9 ".repeat(4900) }),
            &mut || true,
        )
        .unwrap_err();
    assert_eq!(window.kind(), ErrorKind::ContextLength, "{window}");
    let missing = client
        .call("generate", json!({ "max_new_tokens": 3 }), &mut || true)
        .unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("invalid parameters for generate"),
        "{missing}"
    );
    let both = client
        .call(
            "generate",
            json!({"prompt": "x", "regex": "a", "choices": ["a", "b"]}),
            &mut || true,
        )
        .unwrap_err();
    assert!(
        both.to_string()
            .contains("only one of schema, regex, choices and grammar"),
        "{both}"
    );
    assert!(client.ping(Duration::from_secs(1)));
}

#[test]
fn structured_generation_and_reranking_match_the_library() {
    let daemon = Daemon::start(
        5629,
        Options {
            cache: true,
            ..Options::default()
        },
    );
    let client = daemon.client();
    let schema =
        json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]});
    let spec = GenerateSpec {
        schema: Some(schema.clone()),
        ..gen_spec("Pick a number", 48)
    };
    let local = local_text(spec.clone());
    for _ in 0..2 {
        // The second answer comes from the daemon's cache.
        assert_eq!(remote_text(&client, spec.clone()), local);
    }
    let docs = ["A database", "A fruit", "A violin"];
    let rerank = Spec::Rerank(RerankSpec {
        query: "What is PostgreSQL?".into(),
        documents: json!(docs),
        ..RerankSpec::default()
    })
    .build(&builder())
    .unwrap();
    let here = execute::run(&Local::new(2), rerank.clone(), false, &mut Quiet).unwrap();
    for _ in 0..2 {
        assert_eq!(
            execute::run(&client, rerank.clone(), false, &mut Quiet).unwrap(),
            here
        );
    }
    let names = client
        .call(
            "rerank",
            json!({"query": "q", "documents": "one", "return_scores": false}),
            &mut || true,
        )
        .unwrap()
        .0;
    assert_eq!(
        names,
        json!(["one"]),
        "a single document and no scores, as SteadyText's daemon"
    );
}

/// On TCP a client without the token may use models by name, but may not name files, send a
/// resolved model or shut the daemon down; the token (over CURVE) opens all three. Over plain
/// TCP the token opens nothing: anyone on the way could have read it.
#[test]
fn a_tcp_client_without_the_token_is_held_to_model_names() {
    let plain = Daemon::start(
        5637,
        Options {
            tcp: true,
            token: true,
            extra: &["--no-preload"],
            ..Options::default()
        },
    );
    let refused = plain.client().check().unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidArgument, "{refused}");
    // What an older client did: the token in clear.
    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::REQ).unwrap();
    socket.connect(&plain.endpoint).unwrap();
    let request = json!({ "method": "shutdown", "params": {}, "id": "1", "auth": "sesame" });
    socket.send(request.to_string().as_bytes(), 0).unwrap();
    assert!(matches!(socket.poll(zmq::POLLIN, 5000), Ok(1)));
    let answer: Value = serde_json::from_slice(&socket.recv_bytes(0).unwrap()).unwrap();
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or("")
            .contains("authorised"),
        "a token in clear shut the daemon down: {answer}"
    );
    assert!(plain.stranger().ping(Duration::from_secs(2)));
    drop(plain);

    let daemon = Daemon::start(
        5631,
        Options {
            tcp: true,
            token: true,
            curve: true,
            ..Options::default()
        },
    );
    let stranger = daemon.stranger();
    assert!(
        !raw_generate(&stranger, "Say hello", 4).is_empty(),
        "the daemon's default model"
    );
    let shutdown = stranger
        .call("shutdown", json!({}), &mut || true)
        .unwrap_err();
    assert_eq!(shutdown.kind(), ErrorKind::Forbidden, "{shutdown}");
    let path = stranger
        .call(
            "generate",
            json!({"prompt": "hi", "model": "/etc/passwd"}),
            &mut || true,
        )
        .unwrap_err();
    assert_eq!(path.kind(), ErrorKind::Forbidden, "{path}");
    let request = Spec::Generate(gen_spec("hi", 4)).build(&builder()).unwrap();
    let sent = execute::run(&stranger, request.clone(), false, &mut Quiet).unwrap_err();
    assert_eq!(sent.kind(), ErrorKind::Forbidden, "{sent}");
    let friend = daemon.client();
    assert!(execute::run(&friend, request, false, &mut Quiet).is_ok());
    let bye = friend.call("shutdown", json!({}), &mut || true);
    assert!(bye.is_ok(), "{bye:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while friend.ping(Duration::from_millis(100)) {
        assert!(Instant::now() < deadline, "the daemon did not stop");
    }
}

/// An `ipc://` socket in a 0700 directory: its user is served in full, another OS user cannot
/// even connect.
#[test]
fn an_ipc_daemon_is_reachable_only_by_its_user() {
    let daemon = Daemon::start(5632, Options::default());
    let client = daemon.client();
    let request = Spec::Generate(gen_spec("hi", 4)).build(&builder()).unwrap();
    assert!(
        execute::run(&client, request, false, &mut Quiet).is_ok(),
        "model paths over ipc"
    );
    let dir = PathBuf::from(daemon.endpoint.trim_start_matches("ipc://"))
        .parent()
        .unwrap()
        .to_path_buf();
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&dir).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700, "{}", dir.display());
    // `st daemon status` as the nobody user (from a copy of st it may run): no answer.
    let bin = std::env::temp_dir().join(format!("st-nobody-{}", std::process::id()));
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let st_copy = bin.join("st");
    std::fs::copy(env!("CARGO_BIN_EXE_st"), &st_copy).unwrap();
    let as_nobody = Command::new(&st_copy)
        .args(["daemon", "status", "--json", "--endpoint", &daemon.endpoint])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&as_nobody.stdout).unwrap_or(json!({}));
    assert_eq!(
        status["running"],
        false,
        "{status} {}",
        String::from_utf8_lossy(&as_nobody.stderr)
    );
    assert!(client.ping(Duration::from_secs(1)));
    let _ = std::fs::remove_dir_all(&bin);
}

/// A random or mutated message body.
fn fuzz_body(rng: &mut Rng) -> Vec<u8> {
    let valid = [
        json!({"method": "ping", "params": {}, "id": "1"}),
        json!({"method": "generate", "params": {"prompt": "hi", "max_new_tokens": 1}, "id": "2"}),
        json!({"method": "embed", "params": {"text_input": "hi"}, "id": "3"}),
        json!({"method": "rerank", "params": {"query": "q", "documents": ["a"]}, "id": "4"}),
        json!({"method": "stats", "id": "5"}),
        json!({"method": "cancel", "params": {"request_id": "2"}, "id": "6"}),
    ];
    let base = valid[rng.usize(..valid.len())].to_string().into_bytes();
    match rng.usize(..8) {
        0 => (0..rng.usize(..200)).map(|_| rng.u64(..) as u8).collect(),
        1 => {
            let mut b = base;
            for _ in 0..1 + rng.usize(..4) {
                let i = rng.usize(..b.len());
                b[i] = rng.u64(..) as u8;
            }
            b
        }
        2 => base[..rng.usize(..base.len())].to_vec(),
        3 => json!({"method": rng.u64(..) % 7, "params": [1, 2], "id": {"x": null}}).to_string().into_bytes(),
        4 => json!({"method": "generate", "params": {"prompt": 5, "max_new_tokens": "x", "seed": [1]}}).to_string().into_bytes(),
        5 => json!({"method": "generate", "params": {"prompt": "x", "max_new_tokens": u64::MAX}, "id": "z"}).to_string().into_bytes(),
        6 => b"ACK".to_vec(),
        _ => json!({"method": "embed_batch", "params": {"texts": ["a", "a", "a"], "mode": "sideways"}, "id": "m"}).to_string().into_bytes(),
    }
}

/// Ten thousand random and mutated messages (any number of frames, any bytes, JSON of the wrong
/// shape, oversized): the daemon never exits, still answers, and gives the same bytes as before.
#[test]
fn ten_thousand_hostile_messages_leave_the_daemon_serving_the_same_bytes() {
    let daemon = Daemon::start(
        5633,
        Options {
            extra: &["--max-message-bytes", "65536"],
            ..Options::default()
        },
    );
    let client = daemon.client();
    let before = raw_generate(&client, "Say hello", 8);
    let ctx = zmq::Context::new();
    let mut rng = Rng::with_seed(0xF00D_5EED_0000_0001);
    let mut socket = ctx.socket(zmq::DEALER).unwrap();
    socket.set_linger(0).unwrap();
    socket.connect(&daemon.endpoint).unwrap();
    for i in 0..10_000 {
        let body = fuzz_body(&mut rng);
        let frames: Vec<Vec<u8>> = match rng.usize(..5) {
            0 => vec![body],
            1 => vec![Vec::new(), body],
            2 => vec![Vec::new(), body, b"extra".to_vec()],
            3 => vec![b"not a delimiter".to_vec(), body],
            _ => vec![Vec::new(), vec![b'x'; 70_000]],
        };
        let _ = socket.send_multipart(frames, zmq::DONTWAIT);
        // Drain answers so the socket never blocks; reconnect after the daemon drops an
        // oversized message's connection.
        while socket.recv_multipart(zmq::DONTWAIT).is_ok() {}
        if i % 500 == 499 {
            socket = ctx.socket(zmq::DEALER).unwrap();
            socket.set_linger(0).unwrap();
            socket.connect(&daemon.endpoint).unwrap();
            assert!(
                client.ping(Duration::from_secs(5)),
                "after {} messages",
                i + 1
            );
        }
    }
    assert!(client.ping(Duration::from_secs(5)));
    assert_eq!(raw_generate(&client, "Say hello", 8), before);
}

/// More queued requests than --max-queue are answered "busy", not buffered without bound.
#[test]
fn a_full_queue_answers_busy() {
    let daemon = Daemon::start(
        5634,
        Options {
            extra: &["--max-queue", "2"],
            ..Options::default()
        },
    );
    let client = daemon.client();
    let long: Vec<_> = (0..6)
        .map(|i| {
            let client = client.clone();
            std::thread::spawn(move || {
                client.call(
                    "generate",
                    json!({"prompt": format!("Write a long story number {i}"), "max_new_tokens": 300}),
                    &mut || true,
                )
            })
        })
        .collect();
    let results: Vec<_> = long.into_iter().map(|t| t.join().unwrap()).collect();
    let busy = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.kind() == ErrorKind::Busy))
        .count();
    assert!(busy >= 1, "{results:?}");
    assert!(results.iter().any(Result::is_ok));
}

fn st(home: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_st"))
        .args(args)
        .env("XDG_CACHE_HOME", home)
        .env("STEADYTEXT_GENERATION_MODEL", gen_path())
        .env("STEADYTEXT_EMBEDDING_MODEL", emb_path())
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The README's sequence: start, status, stop; a second start refused; stop reports what it did.
#[test]
fn start_status_stop_tell_the_truth() {
    let home = std::env::temp_dir().join(format!("st-daemon-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    fn with<'a>(cmd: &[&'a str]) -> Vec<&'a str> {
        [cmd, &["--port", "5628"][..]].concat()
    }
    let started = stdout(&st(&home, &with(&["daemon", "start", "--no-preload"])));
    assert!(started.starts_with("daemon started (pid "), "{started}");
    assert!(home.join("steadytext/daemon-5628.pid").is_file());
    let again = st(&home, &with(&["daemon", "start"]));
    assert!(!again.status.success(), "a second start is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already running"));
    let status: Value =
        serde_json::from_str(&stdout(&st(&home, &with(&["daemon", "status", "--json"])))).unwrap();
    assert_eq!(status["running"], true);
    assert_eq!(status["endpoint"], "tcp://127.0.0.1:5628");
    assert!(status["uptime_seconds"].as_f64().unwrap() > 0.0, "{status}");
    let stopped = stdout(&st(&home, &with(&["daemon", "stop"])));
    assert!(stopped.starts_with("daemon stopped (pid "), "{stopped}");
    let status: Value =
        serde_json::from_str(&stdout(&st(&home, &with(&["daemon", "status", "--json"])))).unwrap();
    assert_eq!(status["running"], false);
    assert!(!home.join("steadytext/daemon-5628.pid").exists());
    let not_running = stdout(&st(&home, &with(&["daemon", "stop"])));
    assert!(
        not_running.starts_with("daemon is not running"),
        "{not_running}"
    );
    let _ = std::fs::remove_dir_all(&home);
}

/// `stop` finds a daemon started in the foreground (no pid file), and `run` says when it is ready.
#[test]
fn stop_finds_a_foreground_daemon() {
    let home = std::env::temp_dir().join(format!("st-daemon-fg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let mut child = Command::new(env!("CARGO_BIN_EXE_st"))
        .args(["daemon", "run", "--port", "5635", "--no-preload"])
        .env("XDG_CACHE_HOME", &home)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let client = DaemonClient::new("tcp://127.0.0.1:5635", Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !client.ping(Duration::from_millis(200)) {
        assert!(Instant::now() < deadline);
    }
    let stopped = stdout(&st(&home, &["daemon", "stop", "--port", "5635"]));
    assert_eq!(
        stopped.trim(),
        format!("daemon stopped (pid {})", child.id())
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "a graceful exit: {status:?}");
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    assert_eq!(
        log.matches("st daemon ready on tcp://127.0.0.1:5635")
            .count(),
        1,
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&home);
}

/// Twenty restarts in a row: each leaves one answering daemon, a new process every time.
#[test]
fn twenty_restarts_in_a_row() {
    let home = std::env::temp_dir().join(format!("st-daemon-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let args = ["--port", "5636", "--no-preload"];
    stdout(&st(&home, &[&["daemon", "start"][..], &args].concat()));
    let mut pids = std::collections::BTreeSet::new();
    for i in 0..20 {
        let out = stdout(&st(&home, &[&["daemon", "restart"][..], &args].concat()));
        let pid = out
            .lines()
            .find_map(|l| l.strip_prefix("daemon started (pid "))
            .and_then(|rest| rest.split(')').next())
            .unwrap_or_else(|| panic!("restart {i}: {out}"))
            .to_string();
        assert!(pids.insert(pid), "restart {i} reused a process: {out}");
        let client = DaemonClient::new("tcp://127.0.0.1:5636", Duration::from_secs(5));
        assert!(client.ping(Duration::from_secs(2)), "restart {i}");
    }
    stdout(&st(&home, &["daemon", "stop", "--port", "5636"]));
    let _ = std::fs::remove_dir_all(&home);
}
