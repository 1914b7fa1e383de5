//! What `st daemon` writes is its user's alone, whatever the umask it was started under: every
//! directory 0700 and every file 0600 (its cache and the cache's -wal/-shm, the fingerprint
//! memo, its log, its pid file, its ipc socket and the socket's directory), and the daemon runs
//! with umask 077.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use serde_json::json;
use steadytext::client::DaemonClient;

#[path = "support/models.rs"]
mod models;
use models::models_dir;

/// `st` with `args`, under umask 022, its cache root in `home`, the cache on.
fn st(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_st"));
    cmd.env("XDG_CACHE_HOME", home)
        .env_remove("STEADYTEXT_DISABLE_CACHE")
        .env(
            "STEADYTEXT_GENERATION_MODEL",
            models_dir().join("smollm2-135m-instruct-q4_1.gguf"),
        )
        .env(
            "STEADYTEXT_EMBEDDING_MODEL",
            models_dir().join("all-minilm-l6-v2-f32.gguf"),
        );
    // SAFETY: umask(2) is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        });
    }
    cmd
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every entry under `root` (not `root` itself) whose mode gives group or others any bit.
fn open_to_others(root: &Path) -> (Vec<String>, usize) {
    let (mut bad, mut seen) = (Vec::new(), 0);
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            seen += 1;
            let kind = match meta.file_type() {
                t if t.is_dir() => "dir",
                t if t.is_socket() => "socket",
                t if t.is_symlink() => "symlink",
                _ => "file",
            };
            if kind != "symlink" && meta.mode() & 0o077 != 0 {
                bad.push(format!(
                    "{kind} {} {:o}",
                    path.strip_prefix(root).unwrap().display(),
                    meta.mode() & 0o777
                ));
            }
            if meta.is_dir() {
                stack.push(path);
            }
        }
    }
    (bad, seen)
}

fn umask_of(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .unwrap_or("?")
        .trim()
        .to_string()
}

fn wait_for(client: &DaemonClient) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client.ping(Duration::from_millis(200)) {
        assert!(Instant::now() < deadline, "the daemon did not come up");
    }
}

/// Makes the daemon write its cache (both kinds) and the fingerprint memo.
fn work(client: &DaemonClient) {
    let never = &mut || true;
    let (text, _) = client
        .call(
            "generate",
            json!({ "prompt": "Private files", "max_new_tokens": 4 }),
            never,
        )
        .unwrap();
    assert!(text.is_string(), "{text}");
    let (vector, _) = client
        .call("embed", json!({ "text_input": "private files" }), never)
        .unwrap();
    assert!(vector.is_array(), "{vector}");
}

/// Kills what it holds when the test ends, passed or not.
struct Reaper(Vec<u32>, PathBuf);

impl Drop for Reaper {
    fn drop(&mut self) {
        for &pid in &self.0 {
            // SAFETY: kill(2) on a daemon this test started.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

#[test]
fn the_daemon_writes_nothing_others_may_read_under_umask_022() {
    let home = std::env::temp_dir().join(format!("st-private-files-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();

    // `st daemon start`: the log and pid file in the cache root.
    let started = ok(st(&home)
        .args(["daemon", "start", "--port", "5661"])
        .output()
        .unwrap());
    assert!(started.starts_with("daemon started (pid "), "{started}");
    let tcp_pid: u32 = started["daemon started (pid ".len()..]
        .split(')')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut reaper = Reaper(vec![tcp_pid], home.clone());
    let tcp = DaemonClient::new("tcp://127.0.0.1:5661", Duration::from_secs(120));
    work(&tcp);

    // `st daemon run` on an ipc socket in a directory it makes (and a cache root of its own,
    // which it makes too, so the two daemons do not share a cache file).
    let ipc_home = home.join("ipc-cache");
    let socket = home.join("run/st/daemon.sock");
    let endpoint = format!("ipc://{}", socket.display());
    let mut ipc: Child = st(&ipc_home)
        .args(["daemon", "run", "--endpoint", &endpoint])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    reaper.0.push(ipc.id());
    let ipc_client = DaemonClient::new(&endpoint, Duration::from_secs(120));
    wait_for(&ipc_client);
    work(&ipc_client);

    let root = home.join("steadytext");
    for made in [
        root.join("daemon-5661.pid"),
        root.join("daemon-5661.log"),
        root.join("caches/steadytext-rs.sqlite3"),
        root.join("caches/steadytext-rs.sqlite3-wal"),
        root.join("caches/steadytext-rs.sqlite3-shm"),
        root.join("fingerprints.json"),
        ipc_home.join("steadytext/caches/steadytext-rs.sqlite3"),
        socket.clone(),
    ] {
        assert!(made.exists(), "{} was written", made.display());
    }
    let (bad, seen) = open_to_others(&home);
    assert!(bad.is_empty(), "while running, of {seen} entries: {bad:#?}");

    for (name, pid) in [("start", tcp_pid), ("run", ipc.id())] {
        assert_eq!(umask_of(pid), "0077", "the daemon of `st daemon {name}`");
    }
    ok(st(&home)
        .args(["daemon", "stop", "--port", "5661"])
        .output()
        .unwrap());
    let _ = ipc.kill();
    let _ = ipc.wait();
    let (bad, after) = open_to_others(&home);
    assert!(
        bad.is_empty(),
        "after they stopped, of {after} entries: {bad:#?}"
    );
    eprintln!("{seen} entries checked while running, {after} after");
}
