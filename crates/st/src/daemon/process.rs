//! Starting, stopping and inspecting a daemon process. The daemon records its own pid once it
//! holds its endpoint (see `pid_file`): `stop` signals only that process, never a pid that an
//! answer over the wire names, and `start` believes a new daemon is up only when the process it
//! spawned recorded itself and the endpoint answers. A daemon without a pid file (an older
//! one) is stopped by asking it, when it can prove who it is (an `ipc://` socket, a pinned key).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::pid_file::{self, alive};
use super::{Endpoint, ServeOptions};

/// How long `start` waits for a new daemon to answer.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How often `start` retries while the endpoint is still held by a daemon that is exiting.
const BIND_RETRIES: u32 = 20;

/// The daemon this user started at `endpoint`, by its pid file.
fn recorded_pid(endpoint: &Endpoint) -> Option<u32> {
    pid_file::read(&endpoint.pid_file())
}

fn signal(pid: u32, signal: libc::c_int) -> Result<()> {
    // SAFETY: kill(2) has no memory effects; the pid is checked to be alive first.
    if unsafe { libc::kill(pid as libc::pid_t, signal) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            bail!("cannot signal the daemon (pid {pid}): {e}");
        }
    }
    Ok(())
}

/// Starts a daemon in the background and waits until it answers.
pub fn start(options: &ServeOptions, force: bool) -> Result<()> {
    let endpoint = &options.endpoint;
    if !force {
        if let Some(pid) = recorded_pid(endpoint) {
            bail!("the daemon is already running (pid {pid}); use --force to start another");
        }
        if endpoint
            .probe(Duration::from_secs(2))?
            .ping(Duration::from_millis(500))
        {
            bail!(
                "a daemon is already running at {} (it answers; this user has no pid file for \
                 it); use --force to start another",
                endpoint.connect()
            );
        }
    }
    let pid_file = endpoint.pid_file();
    steadytext::private::create_parent(&pid_file)
        .with_context(|| format!("cannot create the directory of {}", pid_file.display()))?;
    let log = pid_file.with_extension("log");
    for attempt in 0..=BIND_RETRIES {
        match spawn_and_wait(options, &log)? {
            Started::Answering(pid) => {
                println!("daemon started (pid {pid}) on {}", endpoint.connect());
                return Ok(());
            }
            // The endpoint is still held by a daemon that is exiting: wait and try again.
            Started::AddressInUse if attempt < BIND_RETRIES => {
                std::thread::sleep(Duration::from_millis(250));
            }
            Started::AddressInUse => {
                bail!("{} stays in use; see {}", endpoint.connect(), log.display())
            }
            Started::Exited => bail!("the daemon exited at start; see {}", log.display()),
            Started::Silent(pid) => bail!(
                "the daemon (pid {pid}) does not answer; see {}",
                log.display()
            ),
        }
    }
    unreachable!("the loop returns")
}

enum Started {
    Answering(u32),
    AddressInUse,
    Exited,
    Silent(u32),
}

fn spawn_and_wait(options: &ServeOptions, log: &std::path::Path) -> Result<Started> {
    let log_file = steadytext::private::create_truncated(log)
        .with_context(|| format!("cannot create {}", log.display()))?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["daemon", "run"])
        .args(serve_args(options))
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
    // Its own process group: a Ctrl-C meant for the caller does not reach the daemon.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    // When a PostgreSQL backend starts the daemon, the daemon must not inherit the backend's
    // descriptors (its client socket, the postmaster's pipes): mark them close-on-exec.
    // SAFETY: close_range is async-signal-safe and only sets flags.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("cannot start the daemon")?;
    let pid = child.id();
    let client = options.endpoint.probe(Duration::from_secs(5))?;
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        // The process we spawned holds the endpoint (it records itself only then) and answers.
        if recorded_pid(&options.endpoint) == Some(pid) && client.ping(Duration::from_millis(200)) {
            return Ok(Started::Answering(pid));
        }
        if let Ok(Some(_)) = child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            return Ok(if text.contains("Address already in use") {
                Started::AddressInUse
            } else {
                Started::Exited
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(Started::Silent(pid))
}

/// The arguments that make `st daemon run` serve as `options` say.
fn serve_args(options: &ServeOptions) -> Vec<String> {
    let e = &options.endpoint;
    let mut args = vec![
        "--endpoint".to_string(),
        e.connect(),
        "--pid-file".into(),
        e.pid_file().display().to_string(),
    ];
    if let Some(file) = &e.token_file {
        args.extend(["--token-file".into(), file.display().to_string()]);
    }
    if let Some(file) = &e.secret_key_file {
        args.extend(["--secret-key-file".into(), file.display().to_string()]);
    }
    args.extend([
        "--stream-timeout-ms".into(),
        options.stream_timeout_ms.to_string(),
        "--max-queue".into(),
        options.max_queue.to_string(),
        "--max-message-bytes".into(),
        options.max_message_bytes.to_string(),
        "--max-models".into(),
        options.max_models.to_string(),
        "--max-prompt-length".into(),
        options.limits.max_prompt_length.to_string(),
        "--max-tokens-limit".into(),
        options.limits.max_tokens_limit.to_string(),
        "--max-batch-size".into(),
        options.limits.max_batch_size.to_string(),
        "--max-request-length".into(),
        options.limits.max_request_length.to_string(),
    ]);
    let c = &options.connections;
    args.extend([
        "--max-connections-per-peer".into(),
        c.max_connections_per_peer.to_string(),
        "--max-connections".into(),
        c.max_connections.to_string(),
        "--handshake-timeout-ms".into(),
        c.handshake_timeout_ms.to_string(),
        "--heartbeat-ms".into(),
        c.heartbeat_ms.to_string(),
        "--http-header-timeout-ms".into(),
        c.http_header_timeout_ms.to_string(),
        "--http-body-timeout-ms".into(),
        c.http_body_timeout_ms.to_string(),
    ]);
    if let Some(threads) = options.threads {
        args.extend(["--threads".into(), threads.to_string()]);
    }
    if options.no_preload {
        args.push("--no-preload".into());
    }
    if let Some(http) = &options.http {
        args.extend(["--http".into(), http.to_string()]);
    }
    if options.allow_downloads {
        args.push("--allow-downloads".into());
    }
    if let Some(pid) = options.exit_with {
        args.extend(["--exit-with".into(), pid.to_string()]);
    }
    args
}

/// Stops the daemon at `endpoint`, however it was started, and waits until it is gone: the
/// process its pid file names, else (no such file) a daemon that proves who it is is asked to
/// shut down.
pub fn stop(endpoint: &Endpoint, force: bool, timeout: Duration) -> Result<()> {
    let pid_file = endpoint.pid_file();
    let Some(pid) = recorded_pid(endpoint) else {
        let _ = std::fs::remove_file(&pid_file);
        if endpoint.authenticated() && ask_to_shut_down(endpoint, timeout)? {
            println!("daemon stopped (it had no pid file; it shut down when asked)");
        } else {
            println!("daemon is not running ({})", endpoint.connect());
        }
        return Ok(());
    };
    if !force {
        signal(pid, libc::SIGTERM)?;
        let deadline = Instant::now() + timeout;
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    if alive(pid) {
        signal(pid, libc::SIGKILL)?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = std::fs::remove_file(&pid_file);
    println!("daemon stopped (pid {pid})");
    Ok(())
}

/// Sends `shutdown` to an authenticated daemon and waits until it stops answering; false when
/// none answers.
fn ask_to_shut_down(endpoint: &Endpoint, timeout: Duration) -> Result<bool> {
    let client = endpoint.client(Duration::from_secs(5))?;
    if !client.ping(Duration::from_millis(500)) {
        return Ok(false);
    }
    client
        .call("shutdown", json!({}), &mut || true)
        .context("the daemon refused to shut down")?;
    let deadline = Instant::now() + timeout;
    while client.ping(Duration::from_millis(200)) {
        if Instant::now() >= deadline {
            bail!("the daemon at {} still answers", endpoint.connect());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(true)
}

/// Prints whether a daemon answers at `endpoint`, and what it reports.
pub fn status(endpoint: &Endpoint, as_json: bool) -> Result<()> {
    let client = endpoint.probe(Duration::from_secs(2))?;
    let stats = client
        .ping(Duration::from_millis(500))
        .then(|| client.call("stats", json!({}), &mut || true).ok())
        .flatten()
        .map(|(stats, _)| stats);
    let running = stats.is_some();
    let field = |name: &str| stats.as_ref().and_then(|s| s.get(name).cloned());
    let report = json!({
        "running": running,
        "pid": recorded_pid(endpoint).map(|p| json!(p)).or_else(|| field("pid")),
        "endpoint": endpoint.connect(),
        "uptime_seconds": field("uptime_seconds"),
        "models": field("models").unwrap_or(json!([])),
        "fingerprint": field("fingerprint"),
        "profile": field("profile"),
        "connections": field("connections"),
    });
    if as_json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if running {
        println!(
            "daemon running (pid {}) on {}, up {:.0} s",
            report["pid"],
            endpoint.connect(),
            report["uptime_seconds"].as_f64().unwrap_or(0.0)
        );
    } else {
        println!("daemon is not running ({})", endpoint.connect());
    }
    Ok(())
}
