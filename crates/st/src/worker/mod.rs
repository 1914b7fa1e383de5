//! `st worker`: serves a database's `steadytext_queue` from outside the server, through the claim
//! functions the extension's background workers use (sql/queue.sql). Several workers on several
//! hosts share one queue: each claims rows with `FOR UPDATE SKIP LOCKED` under a lease it renews
//! while the model works, so a worker that dies loses its rows to the others once the lease
//! expires.
//!
//! Inference runs here (or in this host's daemon with `--daemon`), with the model the row names
//! or this host's default, so results equal the synchronous SQL functions' when both hosts have
//! the same model file (the cache key carries the file's sha256 either way). The connection uses
//! TLS as the DSN's `sslmode` says (`require`, `verify-ca`, `verify-full` with `sslrootcert`).

mod queue;
mod runner;
pub(crate) mod tls;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use steadytext::request::Builder;

use queue::{Queue, Row, CLAIMING, RECORDING};
use runner::{Ended, Runner, Stop};

/// Options of `st worker`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database, as a libpq URL or key=value string (`postgresql://user@host/db`), with
    /// `sslmode` (disable, prefer, require, verify-ca, verify-full) and `sslrootcert` as libpq
    /// reads them (STEADYTEXT_WORKER_DSN).
    #[arg(long, env = "STEADYTEXT_WORKER_DSN")]
    dsn: String,
    /// Requests worked on at once (one database connection each).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Seconds a claimed row stays this worker's without a heartbeat (renewed every third of it).
    #[arg(long, default_value_t = 60)]
    lease_seconds: u32,
    /// How often an idle worker looks for work it was not notified of (retries that came due,
    /// rows of a dead worker).
    #[arg(long, default_value_t = 5000)]
    poll_interval_ms: u64,
    /// Run inference in this host's daemon (STEADYTEXT_DAEMON_ENDPOINT, or _HOST/_PORT)
    /// instead of here.
    #[arg(long)]
    daemon: bool,
    /// The name this worker gives itself in `steadytext_queue.worker_id` (default
    /// `st:<host>:<pid>`).
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    limits: crate::daemon::LimitArgs,
}

/// Signals received (SIGTERM, SIGINT): the first stops claiming and lets running requests
/// finish; the second gives running requests back to the queue.
static SIGNALS: AtomicUsize = AtomicUsize::new(0);

/// Wakes idle threads: on a notification, a signal, or when the worker stops.
#[derive(Default)]
pub struct Wakeups {
    rung: Mutex<u64>,
    cond: Condvar,
}

impl Wakeups {
    fn ring(&self) {
        *self.rung.lock().unwrap() += 1;
        self.cond.notify_all();
    }

    /// Waits until rung after `seen`, or `timeout`; returns the current count.
    fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        let guard = self.rung.lock().unwrap();
        let (guard, _) = self
            .cond
            .wait_timeout_while(guard, timeout, |n| *n == seen)
            .unwrap();
        *guard
    }

    fn count(&self) -> u64 {
        *self.rung.lock().unwrap()
    }
}

/// What the threads did, printed at exit.
#[derive(Default)]
struct Tally {
    completed: AtomicUsize,
    failed: AtomicUsize,
    released: AtomicUsize,
    lost: AtomicUsize,
}

pub fn run(args: Args) -> Result<()> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if args.lease_seconds < 3 {
        bail!("--lease-seconds must be at least 3 (the heartbeat runs every third of it)");
    }
    let name = args.name.clone().unwrap_or_else(default_name);
    let wakeups = Arc::new(Wakeups::default());
    watch_signals(wakeups.clone())?;
    queue::listen(&args.dsn, wakeups.clone())?;
    let tally = Arc::new(Tally::default());
    let args = Arc::new(args);
    tracing::info!(worker = %name, concurrency = args.concurrency, "st worker started");
    eprintln!(
        "st worker {name}: serving the queue ({} at once)",
        args.concurrency
    );
    let threads: Vec<_> = (0..args.concurrency)
        .map(|i| {
            let (args, wakeups, tally) = (args.clone(), wakeups.clone(), tally.clone());
            let me = format!("{name}/{i}");
            thread::spawn(move || serve(&args, me, &wakeups, &tally))
        })
        .collect();
    let mut first_error = None;
    for t in threads {
        if let Err(e) = t.join().expect("worker thread panicked") {
            first_error.get_or_insert(e);
            SIGNALS.fetch_add(1, Ordering::SeqCst);
            wakeups.ring();
        }
    }
    eprintln!(
        "st worker {name}: stopped; {} completed, {} failed, {} given back, {} lost to cancel or lease",
        tally.completed.load(Ordering::SeqCst),
        tally.failed.load(Ordering::SeqCst),
        tally.released.load(Ordering::SeqCst),
        tally.lost.load(Ordering::SeqCst),
    );
    first_error.map_or(Ok(()), Err)
}

fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("st:{host}:{}", std::process::id())
}

fn watch_signals(wakeups: Arc<Wakeups>) -> Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .context("cannot install signal handlers")?;
    thread::spawn(move || {
        for _ in signals.forever() {
            SIGNALS.fetch_add(1, Ordering::SeqCst);
            wakeups.ring();
        }
    });
    Ok(())
}

/// One thread: claim, run, record, until told to stop.
fn serve(args: &Args, me: String, wakeups: &Wakeups, tally: &Tally) -> Result<()> {
    let mut queue = Queue::connect(&args.dsn, me, args.lease_seconds)?;
    let daemon = if args.daemon {
        Some(crate::daemon::connect()?)
    } else {
        None
    };
    // The cores are shared between the concurrent requests (the output does not depend on it).
    let threads = (steadytext::engine::default_threads() / args.concurrency as i32).max(1);
    let builder = Builder {
        limits: args.limits.limits(),
        ..Builder::default()
    };
    let runner = Runner::new(daemon, threads, builder);
    while SIGNALS.load(Ordering::SeqCst) == 0 {
        let seen = wakeups.count();
        match queue.retrying(wakeups, CLAIMING, Queue::claim)? {
            Some(Some(row)) => work(&mut queue, &runner, row, wakeups, tally)?,
            Some(None) => {
                wakeups.wait(seen, Duration::from_millis(args.poll_interval_ms));
            }
            None => break,
        }
    }
    Ok(())
}

/// Runs a claimed row and records how it ended. A record that meets a lost connection is made
/// again on a new one: the claim functions act only on a row this worker still holds, so a
/// result is stored once, or not at all when the lease ran out meanwhile and another worker
/// took the row.
fn work(
    queue: &mut Queue,
    runner: &Runner,
    row: Row,
    wakeups: &Wakeups,
    tally: &Tally,
) -> Result<()> {
    let started = Instant::now();
    let id = row.id;
    let ended = {
        let mut heartbeat = Heartbeat::new(queue, id);
        runner.run(
            &row.request_type,
            row.prompt.as_deref(),
            row.params.as_ref(),
            &mut || heartbeat.check(),
        )
    };
    match ended {
        Ended::Done(result, key, model) => {
            let stored = queue
                .retrying(wakeups, RECORDING, |q| {
                    q.complete(id, &result, key.as_deref(), &model)
                })?
                .unwrap_or(false);
            let counter = if stored {
                &tally.completed
            } else {
                &tally.lost
            };
            counter.fetch_add(1, Ordering::SeqCst);
            tracing::info!(
                id,
                stored,
                ms = started.elapsed().as_millis() as u64,
                "request done"
            );
        }
        Ended::Stopped(Stop::NotMine) => {
            tally.lost.fetch_add(1, Ordering::SeqCst);
            tracing::info!(id, "request cancelled or taken over; stopped");
        }
        Ended::Stopped(Stop::Abort) => {
            queue.retrying(wakeups, RECORDING, |q| q.release(id))?;
            tally.released.fetch_add(1, Ordering::SeqCst);
        }
        Ended::Failed(message, retryable) => {
            let status = queue
                .retrying(wakeups, RECORDING, |q| q.fail(id, &message, retryable))?
                .flatten();
            tally.failed.fetch_add(1, Ordering::SeqCst);
            if status.as_deref() == Some("failed") {
                tracing::error!(id, error = %message, "request failed");
            } else {
                tracing::warn!(id, error = %message, status = ?status, "request failed; retrying");
            }
        }
    }
    Ok(())
}

/// Renews the lease every third of it and notices cancels (checked twice a second).
struct Heartbeat<'a> {
    queue: &'a mut Queue,
    id: i32,
    last: Instant,
    every: Duration,
}

impl<'a> Heartbeat<'a> {
    fn new(queue: &'a mut Queue, id: i32) -> Self {
        let every = Duration::from_millis(500).min(Duration::from_secs(queue.lease() as u64) / 3);
        Heartbeat {
            queue,
            id,
            last: Instant::now(),
            every,
        }
    }

    /// `None` while the job should go on.
    fn check(&mut self) -> Option<Stop> {
        if SIGNALS.load(Ordering::SeqCst) >= 2 {
            return Some(Stop::Abort);
        }
        if self.last.elapsed() < self.every {
            return None;
        }
        self.last = Instant::now();
        match self.queue.heartbeat(self.id) {
            Ok(true) => None,
            Ok(false) => Some(Stop::NotMine),
            // The connection is gone: the work goes on while one new connection is tried per
            // beat; its result is stored if the row is still this worker's by then.
            Err(e) if self.queue.lost(&e) => {
                tracing::warn!("heartbeat failed: {e:#}; trying a new connection");
                let _ = self.queue.reconnect_once();
                None
            }
            Err(e) => {
                tracing::error!("heartbeat failed: {e:#}");
                Some(Stop::NotMine)
            }
        }
    }
}
