//! `st worker`: serves a database's `steadytext_queue` from outside the server, through the
//! claim functions the extension's background workers use (sql/queue.sql). Several workers on
//! several hosts share one queue: each claims rows with `FOR UPDATE SKIP LOCKED` under a lease
//! it renews while the model works, so a worker that dies loses its rows to the others once the
//! lease expires.
//!
//! Inference runs here (or in this host's daemon with `--daemon`), with the model the row names
//! or this host's default, so results equal the synchronous SQL functions' when both hosts have
//! the same model file (the cache key carries the file's sha256 either way).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use postgres::{Client, NoTls};
use serde_json::{json, Value};
use steadytext::client::DaemonClient;
use steadytext::jobs::{rerank_result, InvalidJob, Job, Output};
use steadytext::protocol;
use steadytext::registry::{self, ModelChoice, Role};
use steadytext::store::{self, Fetch};
use steadytext::{Engine, GenerateParams};

/// Options of `st worker`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database, as a libpq URL or key=value string (`postgresql://user@host/db`).
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
    /// Run inference in this host's daemon (STEADYTEXT_DAEMON_HOST/PORT) instead of here.
    #[arg(long)]
    daemon: bool,
    /// The name this worker gives itself in `steadytext_queue.worker_id`.
    #[arg(long)]
    name: Option<String>,
}

/// Signals received (SIGTERM, SIGINT): the first stops claiming and lets running requests
/// finish; the second gives running requests back to the queue.
static SIGNALS: AtomicUsize = AtomicUsize::new(0);

/// Wakes idle threads: on a notification, a signal, or when the worker stops.
#[derive(Default)]
struct Bell {
    rung: Mutex<u64>,
    cond: Condvar,
}

impl Bell {
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
    let bell = Arc::new(Bell::default());
    watch_signals(bell.clone())?;
    listen(&args.dsn, bell.clone())?;
    let tally = Arc::new(Tally::default());
    let args = Arc::new(args);
    tracing::info!(worker = %name, concurrency = args.concurrency, "st worker started");
    eprintln!(
        "st worker {name}: serving the queue ({} at once)",
        args.concurrency
    );
    let threads: Vec<_> = (0..args.concurrency)
        .map(|i| {
            let (args, bell, tally) = (args.clone(), bell.clone(), tally.clone());
            let me = format!("{name}/{i}");
            thread::spawn(move || serve(&args, &me, &bell, &tally))
        })
        .collect();
    let mut first_error = None;
    for t in threads {
        if let Err(e) = t.join().expect("worker thread panicked") {
            first_error.get_or_insert(e);
            SIGNALS.fetch_add(1, Ordering::SeqCst);
            bell.ring();
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

fn watch_signals(bell: Arc<Bell>) -> Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .context("cannot install signal handlers")?;
    thread::spawn(move || {
        for _ in signals.forever() {
            SIGNALS.fetch_add(1, Ordering::SeqCst);
            bell.ring();
        }
    });
    Ok(())
}

/// LISTENs on `steadytext_queue` (every enqueue NOTIFYs it) and rings the bell.
fn listen(dsn: &str, bell: Arc<Bell>) -> Result<()> {
    let mut client = connect(dsn)?;
    client.batch_execute("LISTEN steadytext_queue")?;
    thread::spawn(move || {
        while SIGNALS.load(Ordering::SeqCst) == 0 {
            let mut heard = false;
            let mut notes = client.notifications();
            let mut notes = notes.timeout_iter(Duration::from_millis(200));
            loop {
                match fallible_iterator::FallibleIterator::next(&mut notes) {
                    Ok(Some(_)) => heard = true,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!("LISTEN connection failed: {e}; polling instead");
                        return;
                    }
                }
            }
            if heard {
                bell.ring();
            }
        }
    });
    Ok(())
}

fn connect(dsn: &str) -> Result<Client> {
    Client::connect(dsn, NoTls).with_context(|| format!("cannot connect to {}", redact(dsn)))
}

/// The DSN without its password, for messages.
fn redact(dsn: &str) -> String {
    if let (Some(scheme_end), Some(at)) = (dsn.find("://"), dsn.rfind('@')) {
        let userinfo = &dsn[scheme_end + 3..at];
        if let Some(colon) = userinfo.find(':') {
            return format!(
                "{}{}:***{}",
                &dsn[..scheme_end + 3],
                &userinfo[..colon],
                &dsn[at..]
            );
        }
    }
    dsn.split_whitespace()
        .map(|kv| {
            if kv.starts_with("password=") {
                "password=***"
            } else {
                kv
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One thread: claim, run, record, until told to stop.
fn serve(args: &Args, me: &str, bell: &Bell, tally: &Tally) -> Result<()> {
    let mut db = connect(&args.dsn)?;
    let runner = Runner::new(args)?;
    while SIGNALS.load(Ordering::SeqCst) == 0 {
        let seen = bell.count();
        match claim(&mut db, me, args.lease_seconds)? {
            Some(row) => work(&mut db, &runner, me, args.lease_seconds, row, tally)?,
            None => {
                bell.wait(seen, Duration::from_millis(args.poll_interval_ms));
            }
        }
    }
    Ok(())
}

struct Row {
    id: i32,
    request_type: String,
    prompt: Option<String>,
    params: Option<Value>,
}

fn claim(db: &mut Client, me: &str, lease: u32) -> Result<Option<Row>> {
    let rows = db
        .query(
            "SELECT id, request_type, prompt, params::text FROM steadytext_queue_claim($1, 1, $2)",
            &[&me, &(lease as i32)],
        )
        .context(
            "steadytext_queue_claim failed (is pg_steadytext installed and on the search_path?)",
        )?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let params: Option<String> = row.get(3);
    Ok(Some(Row {
        id: row.get(0),
        request_type: row.get(1),
        prompt: row.get(2),
        params: params.and_then(|p| serde_json::from_str(&p).ok()),
    }))
}

/// Why a job stopped before its end.
enum Stop {
    /// The row was cancelled, or another worker took it over.
    NotMine,
    /// A second signal: give the row back.
    Abort,
}

enum Ended {
    Done(Output, Option<String>, String),
    Stopped(Stop),
    Failed(String, bool),
}

fn work(
    db: &mut Client,
    runner: &Runner,
    me: &str,
    lease: u32,
    row: Row,
    tally: &Tally,
) -> Result<()> {
    let started = Instant::now();
    let ended = match Job::parse(
        &row.request_type,
        row.prompt.as_deref(),
        row.params.as_ref(),
    ) {
        Err(InvalidJob(message)) => Ended::Failed(message, false),
        Ok(job) => {
            let mut heartbeat = Heartbeat::new(db, row.id, me, lease);
            runner.run(&job, &mut || heartbeat.check())
        }
    };
    let id = row.id;
    match ended {
        Ended::Done(output, key, model) => {
            let (text, vector) = match output {
                Output::Text(t) => (Some(t), None),
                Output::Embedding(v) => (None, Some(Output::vector_literal(&v))),
            };
            let stored: bool = db
                .query_one(
                    "SELECT steadytext_queue_complete($1, $2, $3, $4::text::vector, $5, $6)",
                    &[&id, &me, &text, &vector, &key, &model],
                )?
                .get(0);
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
            db.execute("SELECT steadytext_queue_release($1, $2)", &[&id, &me])?;
            tally.released.fetch_add(1, Ordering::SeqCst);
        }
        Ended::Failed(message, retryable) => {
            let status: Option<String> = db
                .query_one(
                    "SELECT steadytext_queue_fail($1, $2, $3, $4)",
                    &[&id, &me, &message, &retryable],
                )?
                .get(0);
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
    db: &'a mut Client,
    id: i32,
    me: &'a str,
    lease: u32,
    last: Instant,
}

impl<'a> Heartbeat<'a> {
    fn new(db: &'a mut Client, id: i32, me: &'a str, lease: u32) -> Self {
        Heartbeat {
            db,
            id,
            me,
            lease,
            last: Instant::now(),
        }
    }

    /// `None` while the job should go on.
    fn check(&mut self) -> Option<Stop> {
        if SIGNALS.load(Ordering::SeqCst) >= 2 {
            return Some(Stop::Abort);
        }
        let every = Duration::from_millis(500).min(Duration::from_secs(self.lease as u64) / 3);
        if self.last.elapsed() < every {
            return None;
        }
        self.last = Instant::now();
        let mine = self
            .db
            .query_one(
                "SELECT steadytext_queue_heartbeat($1, $2, $3)",
                &[&self.id, &self.me, &(self.lease as i32)],
            )
            .map(|r| r.get::<_, bool>(0));
        match mine {
            Ok(true) => None,
            Ok(false) => Some(Stop::NotMine),
            // The connection is gone: the lease will expire and another worker takes over.
            Err(e) => {
                tracing::error!("heartbeat failed: {e}");
                Some(Stop::NotMine)
            }
        }
    }
}

/// Runs jobs here or in the daemon.
struct Runner {
    daemon: Option<DaemonClient>,
    threads: i32,
}

/// A job's model: where it is and its sha256 (the cache key's model part).
struct ModelFile {
    path: PathBuf,
    sha256: String,
    n_ctx: Option<u32>,
}

fn model_file(model: Option<&str>, role: Role) -> Result<ModelFile, String> {
    let choice = ModelChoice {
        model: model.map(str::to_string),
        ..Default::default()
    };
    let source = registry::resolve(&choice, role);
    let path = store::locate(&source, role, Fetch::IfAllowed).map_err(|e| e.to_string())?;
    let sha256 = store::sha256_of(&path).map_err(|e| e.to_string())?;
    Ok(ModelFile {
        path,
        sha256,
        n_ctx: source.registry_n_ctx(),
    })
}

impl Runner {
    fn new(args: &Args) -> Result<Self> {
        let daemon = if args.daemon {
            Some(crate::daemon::connect()?)
        } else {
            None
        };
        // The cores are shared between the concurrent requests (the output does not depend on it).
        let threads = (steadytext::engine::default_threads() / args.concurrency as i32).max(1);
        Ok(Runner { daemon, threads })
    }

    fn run(&self, job: &Job, check: &mut dyn FnMut() -> Option<Stop>) -> Ended {
        let file = match model_file(job.model(), job.role()) {
            Ok(f) => f,
            Err(e) => return Ended::Failed(format!("no model: {e}"), true),
        };
        let key = job.cache_key(&file.sha256);
        let name = file
            .path
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default();
        let output = match &self.daemon {
            Some(client) => self.in_daemon(client, job, &file, check),
            None => self.here(job, &file, check),
        };
        match output {
            Ok(output) => Ended::Done(output, key, name),
            Err(Ok(stop)) => Ended::Stopped(stop),
            Err(Err((message, permanent))) => Ended::Failed(message, !permanent),
        }
    }

    /// The job in this process; checks between tokens.
    fn here(
        &self,
        job: &Job,
        file: &ModelFile,
        check: &mut dyn FnMut() -> Option<Stop>,
    ) -> Result<Output, Result<Stop, (String, bool)>> {
        let failed = |e: steadytext::Error| Err((e.to_string(), e.is_permanent()));
        let model = Engine::global()
            .load(&file.path, job.role(), file.n_ctx)
            .map_err(failed)?;
        match job {
            Job::Generate { prompt, params, .. } | Job::Structured { prompt, params, .. } => {
                let params = GenerateParams {
                    threads: Some(self.threads),
                    ..params.clone()
                };
                let mut stream = match job {
                    Job::Structured { constraint, .. } => {
                        steadytext::stream_constrained(model, prompt, &params, constraint, true)
                    }
                    _ => steadytext::stream(model, prompt, &params),
                }
                .map_err(failed)?;
                let mut text = String::new();
                for piece in stream.by_ref() {
                    text.push_str(&piece.map_err(failed)?);
                    if let Some(stop) = check() {
                        return Err(Ok(stop));
                    }
                }
                if matches!(job, Job::Structured { .. }) && !stream.completed() {
                    let max_new_tokens = params.max_new_tokens;
                    return Err(failed(steadytext::Error::Incomplete { max_new_tokens }));
                }
                Ok(Output::Text(text.trim().to_string()))
            }
            Job::Rerank {
                query,
                documents,
                task,
                return_scores,
                ..
            } => {
                let mut ranked = Vec::with_capacity(documents.len());
                for doc in documents {
                    let scored =
                        steadytext::rerank::rerank(model, query, &[doc], task, Some(self.threads))
                            .map_err(failed)?;
                    ranked.push((doc.clone(), scored[0].score));
                    if let Some(stop) = check() {
                        return Err(Ok(stop));
                    }
                }
                ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
                Ok(Output::Text(rerank_result(&ranked, *return_scores)))
            }
            Job::Embed { text, mode, .. } => {
                let v =
                    steadytext::embed(model, text, *mode, Some(self.threads)).map_err(failed)?;
                Ok(Output::Embedding(v))
            }
        }
    }

    /// The job in the daemon; an interrupted wait cancels it there.
    fn in_daemon(
        &self,
        client: &DaemonClient,
        job: &Job,
        file: &ModelFile,
        check: &mut dyn FnMut() -> Option<Stop>,
    ) -> Result<Output, Result<Stop, (String, bool)>> {
        let (method, params) = match job {
            Job::Generate { prompt, params, .. } => (
                "generate",
                protocol::generate_params(prompt, params, Some(&file.path)),
            ),
            Job::Embed { text, mode, .. } => (
                "embed",
                json!({ "text_input": text, "mode": mode.as_str(), "model": file.path }),
            ),
            Job::Structured {
                prompt,
                params,
                constraint,
                ..
            } => {
                let mut request = protocol::generate_params(prompt, params, Some(&file.path));
                protocol::set_constraint(&mut request, constraint);
                ("generate", request)
            }
            Job::Rerank {
                query,
                documents,
                task,
                ..
            } => (
                "rerank",
                json!({ "query": query, "documents": documents, "task": task,
                        "return_scores": true, "model": file.path }),
            ),
        };
        let mut stopped = None;
        let result = client.call(method, params, &mut || {
            stopped = check();
            stopped.is_none()
        });
        if let Some(stop) = stopped {
            return Err(Ok(stop));
        }
        let value = result.map_err(|e| Err((e.to_string(), e.is_permanent())))?;
        let malformed = |e: serde_json::Error| Err((e.to_string(), true));
        match job {
            Job::Generate { .. } | Job::Structured { .. } => {
                Ok(Output::Text(value.as_str().unwrap_or_default().to_string()))
            }
            Job::Embed { .. } => serde_json::from_value(value)
                .map(Output::Embedding)
                .map_err(malformed),
            Job::Rerank { return_scores, .. } => {
                let ranked: Vec<(String, f64)> =
                    serde_json::from_value(value).map_err(malformed)?;
                Ok(Output::Text(rerank_result(&ranked, *return_scores)))
            }
        }
    }
}
