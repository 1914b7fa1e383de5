//! `st daemon run|start|stop|status|restart`: the daemon and its process management.

mod server;
mod worker;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;
use steadytext::client::{self, DaemonClient};
use steadytext::protocol;

/// Where the daemon listens.
#[derive(Debug, Clone, clap::Args)]
pub struct Endpoint {
    /// Host to bind or reach (STEADYTEXT_DAEMON_HOST; loopback by default).
    #[arg(long, env = "STEADYTEXT_DAEMON_HOST", default_value = protocol::DEFAULT_HOST)]
    host: String,
    /// Port (STEADYTEXT_DAEMON_PORT).
    #[arg(long, env = "STEADYTEXT_DAEMON_PORT", default_value_t = protocol::DEFAULT_PORT)]
    port: u16,
}

impl Endpoint {
    /// The address to connect to.
    fn connect(&self) -> String {
        client::endpoint(&self.host, self.port)
    }

    /// The address to bind: Debian 12's libzmq cannot bind `tcp://localhost`.
    fn bind(&self) -> String {
        let host = if self.host == "localhost" {
            "127.0.0.1"
        } else {
            &self.host
        };
        client::endpoint(host, self.port)
    }

    /// `<cache root>/daemon.pid` for the default port, `daemon-<port>.pid` otherwise.
    fn pid_file(&self) -> PathBuf {
        let name = if self.port == protocol::DEFAULT_PORT {
            "daemon.pid".to_string()
        } else {
            format!("daemon-{}.pid", self.port)
        };
        steadytext::store::cache_root().join(name)
    }
}

/// Server options (run, start, restart).
#[derive(Debug, Clone, clap::Args)]
pub struct ServeOptions {
    #[command(flatten)]
    endpoint: Endpoint,
    /// llama.cpp threads per request (default: STEADYTEXT_THREADS or all cores).
    #[arg(long)]
    threads: Option<i32>,
    /// Cancel a stream whose client has not acknowledged a piece for this long.
    #[arg(long, default_value_t = 30_000)]
    stream_timeout_ms: u64,
    /// Do not load the default models at start.
    #[arg(long)]
    no_preload: bool,
}

/// `st daemon` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DaemonCommand {
    /// Serve in the foreground.
    Run(ServeOptions),
    /// Start in the background; writes a pid file under the cache directory.
    Start {
        #[command(flatten)]
        options: ServeOptions,
        /// Start even if the pid file names a live process.
        #[arg(long)]
        force: bool,
    },
    /// Stop gracefully (shutdown request), then forcefully after a timeout.
    Stop {
        #[command(flatten)]
        endpoint: Endpoint,
        /// Kill at once.
        #[arg(long)]
        force: bool,
        /// Seconds to wait for a graceful exit.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
    /// Whether it runs, its pid, endpoint, uptime and models.
    Status {
        #[command(flatten)]
        endpoint: Endpoint,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop, then start.
    Restart(ServeOptions),
}

/// Runs a `st daemon` subcommand.
pub fn run(command: DaemonCommand) -> Result<()> {
    match command {
        DaemonCommand::Run(options) => serve(&options),
        DaemonCommand::Start { options, force } => start(&options, force),
        DaemonCommand::Stop {
            endpoint,
            force,
            timeout,
        } => stop(&endpoint, force, Duration::from_secs(timeout)),
        DaemonCommand::Status { endpoint, json } => status(&endpoint, json),
        DaemonCommand::Restart(options) => {
            stop(&options.endpoint, false, Duration::from_secs(5))?;
            start(&options, false)
        }
    }
}

fn serve(options: &ServeOptions) -> Result<()> {
    server::run(server::Config {
        bind: options.endpoint.bind(),
        threads: options
            .threads
            .unwrap_or_else(steadytext::engine::default_threads),
        stream_timeout: Duration::from_millis(options.stream_timeout_ms),
        preload: !options.no_preload,
    })
}

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

fn start(options: &ServeOptions, force: bool) -> Result<()> {
    let endpoint = &options.endpoint;
    if let Some(pid) = read_pid(endpoint).filter(|&p| alive(p)) {
        if !force {
            bail!("the daemon is already running (pid {pid}); use --force to start another");
        }
    }
    let pid_file = endpoint.pid_file();
    let log = pid_file.with_extension("log");
    std::fs::create_dir_all(pid_file.parent().unwrap())?;
    let log_file =
        std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args([
        "daemon",
        "run",
        "--host",
        &endpoint.host,
        "--port",
        &endpoint.port.to_string(),
    ])
    .args([
        "--stream-timeout-ms",
        &options.stream_timeout_ms.to_string(),
    ])
    .stdin(Stdio::null())
    .stdout(log_file.try_clone()?)
    .stderr(log_file);
    if let Some(threads) = options.threads {
        cmd.args(["--threads", &threads.to_string()]);
    }
    if options.no_preload {
        cmd.arg("--no-preload");
    }
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
    let child = cmd.spawn().context("cannot start the daemon")?;
    std::fs::write(&pid_file, format!("{}\n", child.id()))?;
    let client = DaemonClient::new(&endpoint.connect(), Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if client.ping(Duration::from_millis(200)) {
            println!(
                "daemon started (pid {}) on {}",
                child.id(),
                endpoint.connect()
            );
            return Ok(());
        }
        if !alive(child.id()) {
            let _ = std::fs::remove_file(&pid_file);
            bail!("the daemon exited at start; see {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "the daemon (pid {}) does not answer; see {}",
        child.id(),
        log.display()
    )
}

fn stop(endpoint: &Endpoint, force: bool, timeout: Duration) -> Result<()> {
    let pid_file = endpoint.pid_file();
    let Some(pid) = read_pid(endpoint).filter(|&p| alive(p)) else {
        let _ = std::fs::remove_file(&pid_file);
        println!("daemon is not running");
        return Ok(());
    };
    if !force {
        let client = DaemonClient::new(&endpoint.connect(), Duration::from_secs(2));
        let _ = client.call("shutdown", json!({}), &mut || true);
        let deadline = Instant::now() + timeout;
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    if alive(pid) {
        Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()?;
    }
    let _ = std::fs::remove_file(&pid_file);
    println!("daemon stopped (pid {pid})");
    Ok(())
}

fn status(endpoint: &Endpoint, as_json: bool) -> Result<()> {
    let pid = read_pid(endpoint).filter(|&p| alive(p));
    let client = DaemonClient::new(&endpoint.connect(), Duration::from_secs(2));
    let stats = client.call("stats", json!({}), &mut || true).ok();
    let running = stats.is_some();
    let report = json!({
        "running": running,
        "pid": stats.as_ref().and_then(|s| s.get("pid").cloned()).or(pid.map(|p| json!(p))),
        "endpoint": endpoint.connect(),
        "uptime_seconds": stats.as_ref().and_then(|s| s.get("uptime_seconds").cloned()),
        "models": stats.as_ref().and_then(|s| s.get("models").cloned()).unwrap_or(json!([])),
        "fingerprint": stats.as_ref().and_then(|s| s.get("fingerprint").cloned()),
    });
    if as_json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if running {
        println!(
            "daemon running (pid {}) on {}, up {:.0} s",
            report["pid"],
            report["endpoint"].as_str().unwrap_or(""),
            report["uptime_seconds"].as_f64().unwrap_or(0.0)
        );
    } else {
        println!("daemon is not running ({})", endpoint.connect());
    }
    Ok(())
}

/// `st cache stats`: from the running daemon when there is one, else from the file.
pub fn cache_stats(endpoint: &str) -> Result<serde_json::Value> {
    let client = DaemonClient::new(endpoint, Duration::from_secs(2));
    if client.ping(Duration::from_millis(300)) {
        if let Ok(stats) = client.call("stats", json!({}), &mut || true) {
            return Ok(stats["cache"].clone());
        }
    }
    let cache = steadytext::cache::FrecencyCache::open(&steadytext::cache::default_path())
        .map_err(anyhow::Error::msg)?;
    let kinds: serde_json::Map<String, serde_json::Value> = steadytext::cache::Kind::ALL
        .iter()
        .map(|&k| (format!("{k:?}").to_lowercase(), json!(cache.stats(k))))
        .collect();
    Ok(json!({ "path": cache.path(), "kinds": kinds }))
}

/// A client of the daemon at STEADYTEXT_DAEMON_HOST/PORT, or a clear error when none answers.
pub fn connect() -> Result<DaemonClient> {
    let client = DaemonClient::from_env();
    if !client.ping(Duration::from_millis(500)) {
        bail!(
            "no st daemon answers at {}: start one with `st daemon start`",
            client.endpoint()
        );
    }
    Ok(client)
}
