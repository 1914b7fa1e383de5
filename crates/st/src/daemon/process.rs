//! Starting, stopping and inspecting a daemon process. The daemon is found by asking it (its
//! `stats` give its pid), so `stop` and `status` work for a daemon started with `run` as well as
//! with `start`; the pid file only helps find one that does not answer.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::{Endpoint, ServeOptions};

/// How long `start` waits for a new daemon to answer.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How often `start` retries while the endpoint is still held by a daemon that is exiting.
const BIND_RETRIES: u32 = 20;

fn read_pid(endpoint: &Endpoint) -> Option<u32> {
    std::fs::read_to_string(endpoint.pid_file())
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn alive(pid: u32) -> bool {
    // A zombie has /proc/<pid> but no longer runs.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}

/// The pid the daemon at `endpoint` reports, when it answers and runs on this machine.
fn answering_pid(endpoint: &Endpoint) -> Option<u32> {
    if !endpoint.is_local() {
        return None;
    }
    let client = endpoint.client(Duration::from_secs(2)).ok()?;
    if !client.ping(Duration::from_millis(500)) {
        return None;
    }
    let (stats, _) = client.call("stats", json!({}), &mut || true).ok()?;
    stats["pid"].as_u64().map(|p| p as u32)
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
        if let Some(pid) = answering_pid(endpoint) {
            bail!("the daemon is already running (pid {pid}); use --force to start another");
        }
    }
    let pid_file = endpoint.pid_file();
    if let Some(dir) = pid_file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let log = pid_file.with_extension("log");
    for attempt in 0..=BIND_RETRIES {
        match spawn_and_wait(options, &log)? {
            Started::Answering(pid) => {
                std::fs::write(&pid_file, format!("{pid}\n"))?;
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
    let log_file =
        std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
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
    let client = options.endpoint.client(Duration::from_secs(5))?;
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if client.ping(Duration::from_millis(200)) && answering_pid(&options.endpoint) == Some(pid)
        {
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
    let mut args = vec!["--endpoint".to_string(), e.connect()];
    if let Some(file) = &e.token_file {
        args.extend(["--token-file".into(), file.display().to_string()]);
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
    args
}

/// Stops the daemon at `endpoint`, however it was started, and waits until it is gone.
pub fn stop(endpoint: &Endpoint, force: bool, timeout: Duration) -> Result<()> {
    let pid_file = endpoint.pid_file();
    let pid = answering_pid(endpoint).or_else(|| read_pid(endpoint).filter(|&p| alive(p)));
    let Some(pid) = pid else {
        let _ = std::fs::remove_file(&pid_file);
        println!("daemon is not running ({})", endpoint.connect());
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

/// Prints whether a daemon answers at `endpoint`, and what it reports.
pub fn status(endpoint: &Endpoint, as_json: bool) -> Result<()> {
    let client = endpoint.client(Duration::from_secs(2))?;
    let stats = client
        .ping(Duration::from_millis(500))
        .then(|| client.call("stats", json!({}), &mut || true).ok())
        .flatten()
        .map(|(stats, _)| stats);
    let running = stats.is_some();
    let field = |name: &str| stats.as_ref().and_then(|s| s.get(name).cloned());
    let report = json!({
        "running": running,
        "pid": field("pid").or_else(|| read_pid(endpoint).filter(|&p| alive(p)).map(|p| json!(p))),
        "endpoint": endpoint.connect(),
        "uptime_seconds": field("uptime_seconds"),
        "models": field("models").unwrap_or(json!([])),
        "fingerprint": field("fingerprint"),
        "profile": field("profile"),
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
