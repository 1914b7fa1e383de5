//! The daemon proves who it is before anything is sent (CURVE, its public key pinned by every
//! client), and `st daemon stop` signals only the process the daemon recorded.
//!
//! What an impostor can do is played by `support/fake_daemon.rs`: it binds the daemon's port
//! while the daemon is down, records every byte that arrives and answers as a daemon would.
//! Each loop runs generated cases (random tokens and prompts, every kind of call) and prints
//! how many it tried.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use fastrand::Rng;
use serde_json::json;
use steadytext::client::DaemonClient;
use steadytext::daemon_keys::{self, KeyPair};
use steadytext::execute::{self, Quiet};
use steadytext::request::{Builder, EmbedSpec, GenerateSpec, RerankSpec, Spec};
use steadytext::{ErrorKind, Executor, Local, Progress};
use support::fake_daemon::{Fake, Upstream};
use support::models::{emb_path, gen_path};

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

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("st-impersonation-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The seed of the generated cases: STEADYTEXT_TEST_SEED, else a new one (printed).
fn rng() -> Rng {
    let seed = std::env::var("STEADYTEXT_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("seed {seed} (STEADYTEXT_TEST_SEED)");
    Rng::with_seed(seed)
}

fn token(rng: &mut Rng) -> String {
    (0..32).map(|_| format!("{:02x}", rng.u8(..))).collect()
}

fn prompt(rng: &mut Rng, i: usize) -> String {
    let words = [
        "secret",
        "ledger",
        "payroll",
        "diagnosis",
        "merger",
        "password",
    ];
    format!(
        "Case {i}: summarise the {} {} of {}",
        words[rng.usize(..words.len())],
        rng.u32(..),
        rng.alphanumeric()
    )
}

/// One call of `kind` (cycling through everything a client sends) with `prompt`.
fn send(client: &DaemonClient, kind: usize, prompt: &str) -> steadytext::Result<String> {
    let generate = GenerateSpec {
        prompt: prompt.into(),
        max_new_tokens: Some(8),
        ..GenerateSpec::default()
    };
    let run = |spec: Spec, streaming: bool| -> steadytext::Result<String> {
        let mut execution = client.execute_spec(spec, streaming)?;
        loop {
            if let Progress::Done(out) = execution.advance()? {
                return Ok(format!("{out:?}"));
            }
        }
    };
    match kind % 6 {
        0 => client
            .call("generate", json!({ "prompt": prompt }), &mut || true)
            .map(|(v, _)| v.to_string()),
        1 => run(Spec::Generate(generate), false),
        2 => run(Spec::Generate(generate), true),
        3 => run(
            Spec::Embed(EmbedSpec {
                texts: Some(vec![prompt.to_string()]),
                ..EmbedSpec::default()
            }),
            false,
        ),
        4 => run(
            Spec::Rerank(RerankSpec {
                query: prompt.into(),
                documents: json!(["a", "b"]),
                ..RerankSpec::default()
            }),
            false,
        ),
        _ => {
            // A request built here (resolved model: only an authorised client may send one).
            let request = Spec::Generate(generate).build(&builder())?;
            client.execute(request, false).and_then(|mut e| loop {
                if let Progress::Done(out) = e.advance()? {
                    return Ok(format!("{out:?}"));
                }
            })
        }
    }
}

/// A process on the daemon's port while the daemon is down, plain or with a CURVE key of its
/// own: a client that pins the daemon's key sends it neither its token nor a prompt, fails
/// quickly, and is never served the impostor's answers. The control: a client that pins
/// nothing is served by the plain impostor, which records its prompt.
#[test]
fn an_impostor_on_the_daemon_port_learns_nothing_and_serves_nothing() {
    let daemon = KeyPair::generate().unwrap();
    let impostor_own = KeyPair::generate().unwrap();
    let mut rng = rng();
    for (port, curve_secret, label) in [
        (5651, None, "a plain impostor"),
        (
            5652,
            Some(impostor_own.secret),
            "an impostor with a key of its own",
        ),
    ] {
        let dir = scratch(&format!("fake-{port}"));
        let fake = Fake::start(
            port,
            &dir,
            Upstream::Impostor {
                pid: 1,
                curve_secret,
            },
        )
        .unwrap();
        let endpoint = format!("tcp://127.0.0.1:{port}");
        let mut sent = Vec::new();
        let cases = 12;
        for i in 0..cases {
            let (token, prompt) = (token(&mut rng), prompt(&mut rng, i));
            let client = DaemonClient::new(&endpoint, Duration::from_secs(30))
                .with_auth(Some(token.clone()))
                .with_server_key(Some(daemon.public));
            assert!(
                !client.ping(Duration::from_millis(300)),
                "{label}: case {i}"
            );
            let started = Instant::now();
            let outcome = send(&client, i, &prompt);
            let err = outcome.expect_err(&format!("{label} served case {i}"));
            assert_eq!(
                err.kind(),
                ErrorKind::Unavailable,
                "{label}: case {i}: {err}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{label}: case {i} took {:?}",
                started.elapsed()
            );
            sent.push((token, prompt));
        }
        std::thread::sleep(Duration::from_millis(300));
        let bytes = fake.bytes();
        assert!(!bytes.is_empty(), "{label}: the clients did connect");
        for (token, prompt) in &sent {
            assert!(!contains(&bytes, token), "{label} received a token");
            assert!(!contains(&bytes, prompt), "{label} received a prompt");
        }
        assert_eq!(fake.messages(), Vec::<String>::new(), "{label}");
        eprintln!(
            "{label}: {cases} generated cases, {} bytes seen",
            bytes.len()
        );
        if curve_secret.is_none() {
            // The control: unpinned, the same impostor is believed.
            let prompt = prompt(&mut rng, cases);
            let plain = DaemonClient::new(&endpoint, Duration::from_secs(5));
            let answer = send(&plain, 0, &prompt).unwrap();
            assert_eq!(answer, "\"an impostor's answer\"");
            assert!(contains(&fake.bytes(), &prompt), "the recorder records");
            assert_eq!(fake.messages().len(), 1);
        }
        drop(fake);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A daemon on a TCP port with its secret key, token file and pid file, in the foreground.
struct CurveDaemon {
    child: Child,
    home: PathBuf,
    endpoint: String,
    public: daemon_keys::Key,
    token: String,
}

impl CurveDaemon {
    fn start(port: u16, rng: &mut Rng) -> CurveDaemon {
        let home = scratch(&format!("daemon-{port}"));
        let key = home.join("daemon.key");
        let made = st(
            &home,
            &["daemon", "keygen", "--secret-key-file", key_str(&key)],
        );
        assert!(made.status.success(), "{made:?}");
        let printed = String::from_utf8_lossy(&made.stdout).trim().to_string();
        let public = daemon_keys::read_public_key_file(&home.join("daemon.key.pub")).unwrap();
        assert_eq!(printed, daemon_keys::z85_encode(&public));
        let token = token(rng);
        std::fs::write(home.join("token"), &token).unwrap();
        let endpoint = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_st"))
            .args([
                "daemon",
                "run",
                "--endpoint",
                &endpoint,
                "--secret-key-file",
            ])
            .arg(&key)
            .arg("--token-file")
            .arg(home.join("token"))
            .env("XDG_CACHE_HOME", &home)
            .env("STEADYTEXT_GENERATION_MODEL", gen_path())
            .env("STEADYTEXT_EMBEDDING_MODEL", emb_path())
            .env("STEADYTEXT_RERANKING_MODEL", gen_path())
            .env("STEADYTEXT_DISABLE_CACHE", "1")
            .spawn()
            .unwrap();
        let daemon = CurveDaemon {
            child,
            home,
            endpoint,
            public,
            token,
        };
        let client = daemon.client(&daemon.endpoint);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !client.ping(Duration::from_millis(200)) {
            assert!(Instant::now() < deadline, "the daemon did not come up");
        }
        daemon
    }

    /// A client of `endpoint` that pins this daemon's key and holds its token.
    fn client(&self, endpoint: &str) -> DaemonClient {
        DaemonClient::new(endpoint, Duration::from_secs(120))
            .with_auth(Some(self.token.clone()))
            .with_server_key(Some(self.public))
    }
}

impl Drop for CurveDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn key_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn st(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_st"))
        .args(args)
        .env("XDG_CACHE_HOME", home)
        .env_remove("STEADYTEXT_DAEMON_TOKEN_FILE")
        .env_remove("STEADYTEXT_DAEMON_SECRET_KEY_FILE")
        .env_remove("STEADYTEXT_DAEMON_PUBLIC_KEY_FILE")
        .output()
        .unwrap()
}

fn local_text(spec: GenerateSpec) -> String {
    let request = Spec::Generate(spec).build(&builder()).unwrap();
    execute::run(&Local::new(2), request, false, &mut Quiet)
        .unwrap()
        .into_text()
        .unwrap()
}

/// The real daemon with its key: a pinned client gets the same bytes as the library, through a
/// wiretap that sees neither the token nor a prompt; a client with another key, or none,
/// cannot talk to it; a token is never sent in clear.
#[test]
fn the_curve_daemon_serves_pinned_clients_and_the_wire_shows_nothing() {
    let mut rng = rng();
    let daemon = CurveDaemon::start(5653, &mut rng);
    let dir = scratch("tap");
    let tap = Fake::start(0, &dir, Upstream::Relay(daemon.endpoint.clone())).unwrap();
    let via_tap = daemon.client(&format!("tcp://127.0.0.1:{}", tap.port));
    let mut prompts = Vec::new();
    let cases = 4;
    for i in 0..cases {
        let prompt = prompt(&mut rng, i);
        let spec = GenerateSpec {
            prompt: prompt.clone(),
            max_new_tokens: Some(12),
            ..GenerateSpec::default()
        };
        // Built by the daemon (SteadyText's form) and built here (a resolved model: the token
        // authorises it, over CURVE).
        let mut execution = via_tap
            .execute_spec(Spec::Generate(spec.clone()), i % 2 == 1)
            .unwrap();
        let there = loop {
            if let Progress::Done(out) = execution.advance().unwrap() {
                break out.into_text().unwrap();
            }
        };
        drop(execution);
        assert_eq!(there, local_text(spec.clone()), "case {i}");
        let request = Spec::Generate(spec).build(&builder()).unwrap();
        let resolved = execute::run(&via_tap, request.clone(), false, &mut Quiet).unwrap();
        let here = execute::run(&Local::new(2), request, false, &mut Quiet).unwrap();
        assert_eq!(resolved, here, "case {i}");
        prompts.push(prompt);
    }
    std::thread::sleep(Duration::from_millis(300));
    let bytes = tap.bytes();
    assert!(
        bytes.len() > 1000,
        "the tap saw the traffic ({} bytes)",
        bytes.len()
    );
    assert!(
        !contains(&bytes, &daemon.token),
        "the token crossed the wire in clear"
    );
    for prompt in &prompts {
        assert!(
            !contains(&bytes, prompt),
            "a prompt crossed the wire in clear"
        );
    }
    eprintln!(
        "{cases} generated cases through the tap, {} bytes seen",
        bytes.len()
    );

    // Another key, no key (SteadyText's Python client), a token without a key.
    let wrong = DaemonClient::new(&daemon.endpoint, Duration::from_secs(30))
        .with_auth(Some(daemon.token.clone()))
        .with_server_key(Some(KeyPair::generate().unwrap().public));
    assert!(!wrong.ping(Duration::from_millis(500)));
    let err = send(&wrong, 0, "hello").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let plain = DaemonClient::new(&daemon.endpoint, Duration::from_secs(30));
    assert!(!plain.ping(Duration::from_millis(500)));
    let seen = tap.bytes().len();
    let in_clear = DaemonClient::new(
        &format!("tcp://127.0.0.1:{}", tap.port),
        Duration::from_secs(5),
    )
    .with_auth(Some(daemon.token.clone()));
    let refused = in_clear.check().unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidArgument, "{refused}");
    assert!(!in_clear.ping(Duration::from_millis(300)));
    assert!(send(&in_clear, 0, "hello").is_err());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(tap.bytes().len(), seen, "it did not even connect");

    // The token, over CURVE, authorises shutdown; the daemon removes its pid file.
    let client = daemon.client(&daemon.endpoint);
    client.call("shutdown", json!({}), &mut || true).unwrap();
    let mut daemon = daemon;
    let status = daemon.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!daemon.home.join("steadytext/daemon-5653.pid").exists());
    drop(tap);
    let _ = std::fs::remove_dir_all(&dir);
}

fn alive(child: &mut Child) -> bool {
    child.try_wait().unwrap().is_none()
}

/// `st daemon stop` signals only what the daemon's own pid file names: never the pid an
/// impostor's stats report, nor a stale or forged pid file's process. A real daemon with its
/// key is started, found and stopped.
#[test]
fn stop_signals_only_the_process_the_daemon_recorded() {
    let home = scratch("stop");
    let mut victim = Command::new("sleep").arg("300").spawn().unwrap();
    let pid = victim.id();
    let fake = Fake::start(
        5655,
        &home.join("fake"),
        Upstream::Impostor {
            pid,
            curve_secret: None,
        },
    )
    .unwrap();
    // The control: over the wire, the impostor names the victim.
    let asked = DaemonClient::new("tcp://127.0.0.1:5655", Duration::from_secs(5))
        .call("stats", json!({}), &mut || true)
        .unwrap()
        .0;
    assert_eq!(asked["pid"], pid);
    let keys = KeyPair::generate().unwrap();
    let public = home.join("daemon.pub");
    daemon_keys::write_public_key_file(&public, &keys.public).unwrap();
    let pid_file = home.join("steadytext/daemon-5655.pid");
    std::fs::create_dir_all(pid_file.parent().unwrap()).unwrap();
    let start_time = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap()
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(19)
        .unwrap()
        .to_string();
    let cases: Vec<(&str, Option<String>, Vec<&str>)> = vec![
        ("plain, no pid file", None, vec![]),
        ("plain, --force", None, vec!["--force"]),
        (
            "pinned key",
            None,
            vec!["--public-key-file", key_str(&public)],
        ),
        (
            "an old pid file naming it",
            Some(format!("{pid}\n")),
            vec![],
        ),
        (
            "a pid file with its start time",
            Some(format!("{pid} {start_time}\n")),
            vec!["--force"],
        ),
    ];
    for (what, file, extra) in &cases {
        match file {
            Some(text) => std::fs::write(&pid_file, text).unwrap(),
            None => {
                let _ = std::fs::remove_file(&pid_file);
            }
        }
        let out = st(
            &home,
            &[&["daemon", "stop", "--port", "5655"][..], extra].concat(),
        );
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            alive(&mut victim),
            "{what}: st daemon stop killed pid {pid}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("daemon is not running"),
            "{what}: {out:?}"
        );
    }
    eprintln!("{} stop cases with the impostor answering", cases.len());
    drop(fake);
    let _ = victim.kill();
    let _ = victim.wait();

    // The real one: `st daemon start` with a key, `status` and `stop` find it.
    let key = home.join("daemon.key");
    assert!(st(
        &home,
        &["daemon", "keygen", "--secret-key-file", key_str(&key)]
    )
    .status
    .success());
    let args = ["--port", "5656", "--secret-key-file", key_str(&key)];
    let started = st(
        &home,
        &[&["daemon", "start", "--no-preload"][..], &args].concat(),
    );
    let started = String::from_utf8_lossy(&started.stdout).to_string();
    let real: u32 = started
        .strip_prefix("daemon started (pid ")
        .and_then(|r| r.split(')').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{started}"));
    let status = st(
        &home,
        &[&["daemon", "status", "--json"][..], &args].concat(),
    );
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["running"], true, "{status}");
    assert_eq!(status["pid"], real, "{status}");
    let stopped = st(&home, &[&["daemon", "stop"][..], &args].concat());
    assert_eq!(
        String::from_utf8_lossy(&stopped.stdout).trim(),
        format!("daemon stopped (pid {real})")
    );
    assert!(!home.join("steadytext/daemon-5656.pid").exists());
    let _ = std::fs::remove_dir_all(&home);
}
