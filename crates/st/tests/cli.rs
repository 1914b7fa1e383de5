//! The `st` binary, run as separate processes on the real test models.

use std::process::{Command, Output};

#[path = "support/models.rs"]
mod models;
use models::models_dir;

fn gen_model() -> String {
    let p = models_dir().join("smollm2-135m-instruct-q4_1.gguf");
    assert!(p.is_file(), "missing {}: run `make models`", p.display());
    p.display().to_string()
}

fn emb_model() -> String {
    let p = models_dir().join("all-minilm-l6-v2-f32.gguf");
    assert!(p.is_file(), "missing {}: run `make models`", p.display());
    p.display().to_string()
}

/// `st` with an isolated cache directory, so tests never touch or download into the user's.
fn st(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_st"));
    let home = std::env::temp_dir().join(format!("st-cli-home-{}", std::process::id()));
    cmd.args(args)
        .env("XDG_CACHE_HOME", &home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env_remove("STEADYTEXT_MODELS_DIR")
        .env_remove("STEADYTEXT_GENERATION_MODEL")
        .env_remove("STEADYTEXT_EMBEDDING_MODEL");
    cmd
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "st failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

#[test]
fn generate_is_identical_across_processes_and_modes() {
    let m = gen_model();
    let args = [
        "generate",
        "Write a haiku about PostgreSQL",
        "--model",
        &m,
        "--max-new-tokens",
        "40",
    ];
    let first = ok(st(&args).output().unwrap());
    let second = ok(st(&args).output().unwrap());
    assert_eq!(first, second);
    let mut wait_args = args.to_vec();
    wait_args.push("--wait");
    let waited = ok(st(&wait_args).output().unwrap());
    assert_eq!(first.trim(), waited.trim(), "stream and --wait differ");
    let mut threads_args = wait_args.clone();
    threads_args.extend(["--threads", "1"]);
    assert_eq!(ok(st(&threads_args).output().unwrap()), waited);
}

#[test]
fn generate_reads_stdin_and_reports_json() {
    use std::io::Write;
    let m = gen_model();
    let mut child = st(&["generate", "--model", &m, "--max-new-tokens", "8", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"  Say hello  \n")
        .unwrap();
    let out = ok(child.wait_with_output().unwrap());
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["prompt"], "Say hello");
    assert_eq!(report["model_sha256"].as_str().unwrap().len(), 64);
    assert!(report["usage"]["completion_tokens"].as_u64().unwrap() <= 8);
    assert!(report["usage"]["prompt_tokens"].as_u64().unwrap() > 2);
}

#[test]
fn embed_json_has_1024_numbers_with_unit_norm() {
    let m = emb_model();
    let out = ok(st(&["embed", "hello", "--format", "json", "--model", &m])
        .output()
        .unwrap());
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let v: Vec<f64> = report["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(v.len(), 1024);
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
}

#[test]
fn embed_formats_agree() {
    let m = emb_model();
    let hex_out = ok(st(&["embed", "hello", "world", "--model", &m])
        .output()
        .unwrap());
    let bytes = hex::decode(hex_out.trim()).unwrap();
    assert_eq!(bytes.len(), 4096);
    let npy = st(&["embed", "hello world", "--format", "numpy", "--model", &m])
        .output()
        .unwrap();
    assert!(npy.status.success());
    assert!(npy.stdout.starts_with(b"\x93NUMPY"));
    assert_eq!(
        &npy.stdout[npy.stdout.len() - 4096..],
        &bytes[..],
        "joined args == one text"
    );
}

#[test]
fn errors_go_to_stderr_with_failure_status() {
    let out = st(&["generate", "hi", "--model", "/nonexistent/model.gguf"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/model.gguf") && err.contains("does not exist"),
        "{err}"
    );

    let out = st(&["generate", "hi", "--seed", "-1", "--model", &gen_model()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("seed must be non-negative"));

    let out = st(&["embed", "x", "--mode", "sideways", "--model", &emb_model()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("one of query, passage"));

    // Enumerated arguments list their values, as in SQL.
    let out = st(&["generate", "hi", "--size", "huge"]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("size must be one of mini, small, large, got 'huge'"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn refused_download_names_the_file_and_the_fix() {
    let dir = std::env::temp_dir().join(format!("st-empty-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = st(&["generate", "hi", "--model", "qwen3-4b"])
        .env("STEADYTEXT_MODELS_DIR", &dir)
        .env("STEADYTEXT_ALLOW_MODEL_DOWNLOADS", "false")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Qwen3-4B-Instruct-2507-UD-Q6_K_XL.gguf"),
        "{err}"
    );
    assert!(
        err.contains("STEADYTEXT_ALLOW_MODEL_DOWNLOADS=false"),
        "{err}"
    );
    assert!(err.contains(&dir.display().to_string()), "{err}");
}

#[test]
fn offline_download_fails_with_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("st-offline-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Nothing listens on port 9 of loopback: the download fails at once, as offline.
    let out = st(&["models", "download", "gemma-mini-270m"])
        .env("STEADYTEXT_MODELS_DIR", &dir)
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("gemma-3-270m-it-qat-Q4_0.gguf") && err.contains("download failed"),
        "{err}"
    );
}

#[test]
fn models_fingerprint_matches_the_checksum_file() {
    let m = gen_model();
    let out = ok(st(&["models", "fingerprint", &m]).output().unwrap());
    let sums = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/test-models.sha256"
    ))
    .unwrap();
    let expected = sums
        .lines()
        .find(|l| l.ends_with("smollm2-135m-instruct-q4_1.gguf"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap();
    assert!(out.starts_with(expected), "{out}");
    let json = ok(st(&["models", "fingerprint", &m, "--json"])
        .output()
        .unwrap());
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(report["build"].as_str().unwrap().contains("avx2"));
}

#[test]
fn models_list_and_path() {
    let out = ok(st(&["models", "list"]).output().unwrap());
    for name in [
        "qwen3-4b",
        "qwen3-30b",
        "jina-v4-retrieval",
        "qwen3-reranker-4b",
        "gemma-mini-270m",
    ] {
        assert!(out.contains(name), "{name} missing from {out}");
    }
    let path = ok(st(&["models", "path"])
        .env("STEADYTEXT_MODELS_DIR", "/x/y")
        .output()
        .unwrap());
    assert_eq!(path.trim(), "/x/y");
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["generate", "--help"],
        vec!["embed", "--help"],
        vec!["models", "--help"],
        vec!["models", "list", "--help"],
        vec!["models", "path", "--help"],
        vec!["models", "download", "--help"],
        vec!["models", "fingerprint", "--help"],
    ] {
        let out = ok(st(&args).output().unwrap());
        assert!(out.contains("Usage:"), "{args:?}");
    }
}

#[test]
fn saved_defaults_make_plain_commands_use_those_models() {
    let config = std::env::temp_dir().join(format!("st-defaults-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&config);
    let with_config = |args: &[&str]| {
        let mut cmd = st(args);
        cmd.env("XDG_CONFIG_HOME", &config);
        cmd.output().unwrap()
    };
    let saved = ok(with_config(&[
        "models",
        "default",
        "--generation",
        &gen_model(),
        "--embedding",
        &emb_model(),
    ]));
    assert!(saved.contains("smollm2"), "{saved}");
    // --if-unset keeps what is saved
    ok(with_config(&[
        "models",
        "default",
        "--if-unset",
        "--generation",
        "qwen3-4b",
    ]));
    let first = ok(with_config(&[
        "generate",
        "Write a haiku about PostgreSQL",
        "--max-new-tokens",
        "24",
    ]));
    let second = ok(with_config(&[
        "generate",
        "Write a haiku about PostgreSQL",
        "--max-new-tokens",
        "24",
    ]));
    assert!(!first.trim().is_empty());
    assert_eq!(first, second);
    let report: serde_json::Value =
        serde_json::from_str(&ok(with_config(&["embed", "hello", "--format", "json"]))).unwrap();
    assert_eq!(report["embedding"].as_array().unwrap().len(), 1024);
    // With nothing to set, `default` shows what is in effect and where it comes from.
    let shown: serde_json::Value =
        serde_json::from_str(&ok(with_config(&["models", "default"]))).unwrap();
    assert!(
        shown["generation"]["model"]
            .as_str()
            .unwrap()
            .ends_with("smollm2-135m-instruct-q4_1.gguf"),
        "{shown}"
    );
    let reset: serde_json::Value =
        serde_json::from_str(&ok(with_config(&["models", "default", "--reset"]))).unwrap();
    assert_eq!(reset["generation"]["from"], "registry default", "{reset}");
    assert!(
        reset["generation"]["model"]
            .as_str()
            .unwrap()
            .contains("Qwen3-4B"),
        "{reset}"
    );
    let _ = std::fs::remove_dir_all(&config);
}

#[test]
fn worker_refuses_bad_arguments_and_says_which_database_it_cannot_reach() {
    let out = st(&["worker", "--dsn", "host=/nonexistent", "--concurrency", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--concurrency must be at least 1"));
    // A closed loopback port; the password is not repeated in the message.
    let out = st(&[
        "worker",
        "--dsn",
        "postgresql://u:secret@127.0.0.1:9/db",
        "--lease-seconds",
        "10",
    ])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot connect to postgresql://u:***@127.0.0.1:9/db"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "{stderr}");
}

#[test]
fn structured_generation_and_rerank_on_the_command_line() {
    let schema =
        r#"{"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}"#;
    let out = ok(st(&[
        "generate",
        "Is it ok?",
        "--model",
        &gen_model(),
        "--schema",
        schema,
        "--max-new-tokens",
        "32",
    ])
    .output()
    .unwrap());
    let value: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(value["ok"].is_boolean(), "{out}");
    let out = ok(st(&[
        "generate",
        "Pick",
        "--model",
        &gen_model(),
        "--choices",
        "left,right",
    ])
    .output()
    .unwrap());
    assert!(["left", "right"].contains(&out.trim()), "{out}");
    let bad = st(&[
        "generate",
        "x",
        "--model",
        &gen_model(),
        "--regex",
        "a(?=b)",
    ])
    .output()
    .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("Invalid regex pattern"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let both = st(&["generate", "x", "--regex", "a", "--choices", "a,b"])
        .output()
        .unwrap();
    assert!(!both.status.success(), "only one constraint at a time");

    let out = ok(st(&[
        "rerank",
        "What is PostgreSQL?",
        "A database",
        "A fruit",
        "--model",
        &gen_model(),
    ])
    .output()
    .unwrap());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].starts_with("1. [0.") && lines[1].starts_with("2. [0."),
        "{out}"
    );
    let fallback = st(&[
        "rerank",
        "red apple",
        "one red apple",
        "car",
        "--model",
        "/nonexistent.gguf",
        "--json",
    ])
    .output()
    .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&fallback.stdout).unwrap();
    assert_eq!(report["fallback"], true);
    assert_eq!(report["documents"][0]["document"], "one red apple");
    assert_eq!(report["documents"][0]["score"], 1.0);
    assert!(String::from_utf8_lossy(&fallback.stderr).contains("word overlap"));
}
