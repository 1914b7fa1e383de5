//! The inference thread: builds each task's request (resolving its model, which may mean hashing
//! a file, so never on the thread that answers pings), runs it through the frecency cache and the
//! engine, and reports back to the server loop.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use steadytext::batch::Batched;
use steadytext::cache::{self, FrecencyCache, Kind};
use steadytext::cached::Cached;
use steadytext::execute::{Execution, Executor, Output, Progress};
use steadytext::protocol::{self, Response, Shape, STREAM_END};
use steadytext::request::{Builder, Spec};
use steadytext::{Engine, Error, ErrorKind, Local, Request, Role};

use super::metrics::Metrics;

/// Where a task's answer goes.
pub enum Reply {
    /// A ZeroMQ client, through the server loop.
    Zmq {
        /// The client's identity.
        identity: Vec<u8>,
        /// Whether it reads the replies' additions.
        extended: bool,
    },
    /// An HTTP handler, waiting on this channel (closed when its client went away).
    Http(tokio::sync::mpsc::UnboundedSender<Event>),
}

/// What an HTTP handler receives.
pub enum Event {
    /// Streamed text.
    Piece(String),
    /// The end.
    Done(Result<Output, Error>),
}

/// One client request handed to the inference thread.
pub struct Task {
    /// Where the answer goes.
    pub reply: Reply,
    /// The request id.
    pub id: String,
    /// The method (decides the answer's shape; `generate_iter` streams).
    pub method: String,
    /// What to do.
    pub spec: Spec,
    /// Whether the client is authorised (may send model paths).
    pub trusted: bool,
    /// Set by `cancel` (or a client that went away): stop between steps.
    pub cancel: Arc<AtomicBool>,
}

impl Task {
    fn route(&self) -> &'static str {
        match self.reply {
            Reply::Zmq { .. } => "zmq",
            Reply::Http(_) => "http",
        }
    }
}

/// What the inference thread sends back to the server loop.
pub enum Outgoing {
    /// A complete response.
    Reply(Vec<u8>, Response),
    /// One stream piece: identity, request id, text.
    Piece(Vec<u8>, String, String),
    /// The end of a stream (or its error).
    End(Vec<u8>, Response),
}

/// Hands tasks to the inference thread; refuses with "busy" when `--max-queue` wait already.
#[derive(Clone)]
pub struct Submitter {
    tasks: Sender<Task>,
    queued: Arc<AtomicUsize>,
    max_queue: usize,
    metrics: Arc<Metrics>,
}

impl Submitter {
    /// A submitter on `tasks`, counting waiting tasks in `queued`.
    pub fn new(
        tasks: Sender<Task>,
        queued: Arc<AtomicUsize>,
        max_queue: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        Submitter {
            tasks,
            queued,
            max_queue,
            metrics,
        }
    }

    /// Queues `task`, or says why not (the task is dropped).
    pub fn submit(&self, task: Task) -> Result<(), Error> {
        if self.queued.load(Ordering::SeqCst) >= self.max_queue {
            return Err(Error::new(
                ErrorKind::Busy,
                format!(
                    "the daemon has {} requests waiting, its limit (--max-queue); try again later",
                    self.max_queue
                ),
            ));
        }
        let waiting = self.queued.fetch_add(1, Ordering::SeqCst) + 1;
        self.metrics.queued.set(waiting as i64);
        self.tasks.send(task).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            Error::new(
                ErrorKind::Unavailable,
                "the daemon's inference thread has stopped",
            )
        })
    }

    /// Requests waiting.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }
}

/// The channel to the server loop, plus the socket that wakes it.
pub struct Outbox {
    out: Sender<Outgoing>,
    wakeup: zmq::Socket,
}

impl Outbox {
    /// An outbox sending on `out` and waking the loop through `wakeup`.
    pub fn new(out: Sender<Outgoing>, wakeup: zmq::Socket) -> Self {
        Outbox { out, wakeup }
    }

    fn send(&self, message: Outgoing) -> bool {
        if self.out.send(message).is_err() {
            return false;
        }
        let _ = self.wakeup.send(&b""[..], zmq::DONTWAIT);
        true
    }
}

/// Owns the cache and the two ways requests are built: for authorised clients (model paths
/// allowed) and for the rest (registry models and files in the models directory).
pub struct Inference {
    threads: i32,
    /// Whether generations on models proven to batch share a batch (off with `--serial`).
    batching: bool,
    metrics: Arc<Metrics>,
    cache: Option<FrecencyCache>,
    trusted: Builder,
    untrusted: Builder,
}

impl Inference {
    /// The inference side of a daemon. The cache is `<cache root>/caches/steadytext-rs.sqlite3`
    /// unless `STEADYTEXT_DISABLE_CACHE=1`.
    pub fn new(
        threads: i32,
        batching: bool,
        trusted: Builder,
        untrusted: Builder,
        metrics: Arc<Metrics>,
    ) -> Self {
        let disabled = std::env::var("STEADYTEXT_DISABLE_CACHE").is_ok_and(|v| v == "1");
        let cache = if disabled {
            None
        } else {
            FrecencyCache::open(&cache::default_path())
                .map_err(|e| tracing::error!(error = %e, "cache unavailable; serving without it"))
                .ok()
        };
        Inference {
            threads,
            batching,
            metrics,
            cache,
            trusted,
            untrusted,
        }
    }

    /// Loads the default generation and embedding models now, so the first request is fast.
    pub fn preload(&self) {
        for role in [Role::Generation, Role::Embedding] {
            let loaded = self
                .trusted
                .model(None, &Default::default(), role)
                .and_then(|m| Engine::global().model(&m).map(drop));
            if let Err(e) = loaded {
                tracing::warn!(?role, error = %e, "preload failed; the model loads on first use");
            }
        }
    }

    /// Loaded models with their files and sha256, and how many generations one decode call
    /// carries for each (1: one at a time).
    pub fn models(&self) -> Value {
        Engine::global()
            .loaded()
            .iter()
            .map(|m| {
                json!({
                    "path": m.path(),
                    "sha256": steadytext::store::sha256_of(m.path()).ok(),
                    "batch_rows": if self.batching { m.batch_rows() } else { 1 },
                })
            })
            .collect()
    }

    /// Requests being run now (more than one only when they share a batch).
    pub fn running(&self) -> i64 {
        self.metrics.running.get()
    }

    /// `continuous` (generations on models proven to batch share a batch) or `serial`.
    pub fn batching(&self) -> &'static str {
        if self.batching {
            "continuous"
        } else {
            "serial"
        }
    }

    /// The cache's hit, miss and eviction counters per kind (none without a cache).
    pub fn cache_counts(&self) -> Vec<(Kind, cache::Counts)> {
        self.cache
            .iter()
            .flat_map(|c| Kind::ALL.iter().map(move |&k| (k, c.counts(k))))
            .collect()
    }

    /// Cache counters per kind.
    pub fn cache_stats(&self) -> Value {
        match &self.cache {
            None => json!(null),
            Some(cache) => {
                let kinds: serde_json::Map<String, Value> = Kind::ALL
                    .iter()
                    .map(|&k| (format!("{k:?}").to_lowercase(), json!(cache.stats(k))))
                    .collect();
                json!({ "path": cache.path(), "kinds": kinds })
            }
        }
    }

    /// Serves tasks until the server loop goes away; `queued` counts the tasks not yet started.
    ///
    /// One request at a time, except generations on a model proven to batch (see
    /// `steadytext::batch`): while only such generations run, more of them start and share the
    /// batch, up to its size. Every running request advances one step per round, so a batch
    /// decodes all its sequences together.
    pub fn serve(&self, tasks: Receiver<Task>, out: Outbox, queued: &AtomicUsize) {
        let runner = if self.batching {
            Runner::Batched(Batched::new(self.threads))
        } else {
            Runner::Serial(Local::new(self.threads))
        };
        let executor = Cached {
            inner: runner,
            cache: self.cache.as_ref(),
        };
        let mut pending: VecDeque<Pending> = VecDeque::new();
        let mut active: Vec<Active> = Vec::new();
        let mut open = true;
        loop {
            if active.is_empty() && pending.is_empty() {
                match tasks.recv() {
                    Ok(task) => pending.push_back(Pending::new(task)),
                    Err(_) => return,
                }
            }
            loop {
                match tasks.try_recv() {
                    Ok(task) => pending.push_back(Pending::new(task)),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            // A cancelled request that waits is answered now, not when its turn comes. Checked
            // before partitioning: this runs once per decode step.
            let is_cancelled = |p: &Pending| p.task.cancel.load(Ordering::Relaxed);
            let cancelled: VecDeque<Pending> = if pending.iter().any(is_cancelled) {
                let (cancelled, waiting) = pending.drain(..).partition(is_cancelled);
                pending = waiting;
                cancelled
            } else {
                VecDeque::new()
            };
            for p in cancelled {
                self.dequeued(queued);
                if !self.deliver(p.task, Err(Error::cancelled()), Duration::ZERO, &out) {
                    return;
                }
            }
            while let Some(head) = pending.front_mut() {
                if !self.admissible(head, &active, &executor.inner) {
                    break;
                }
                let Some(p) = pending.pop_front() else { break };
                self.dequeued(queued);
                match self.start(p, &executor) {
                    Ok(a) => active.push(a),
                    Err(failed) => {
                        let (task, error) = *failed;
                        if !self.deliver(task, Err(error), Duration::ZERO, &out) {
                            return;
                        }
                    }
                }
            }
            self.metrics.running.set(active.len() as i64);
            let mut still = Vec::with_capacity(active.len());
            for mut a in active {
                match a.advance(&out) {
                    None => still.push(a),
                    Some(result) => {
                        if let Ok(Output::Text { summary, .. }) = &result {
                            let first = a.first.unwrap_or_else(Instant::now);
                            let timing = (first - a.started, first.elapsed());
                            self.metrics.tokens(summary, a.computed.then_some(timing));
                        }
                        let took = a.started.elapsed();
                        if !self.deliver(a.task, result, took, &out) {
                            return;
                        }
                    }
                }
            }
            active = still;
            self.metrics.running.set(active.len() as i64);
            if !open && active.is_empty() && pending.is_empty() {
                return;
            }
        }
    }

    fn dequeued(&self, queued: &AtomicUsize) {
        let waiting = queued.fetch_sub(1, Ordering::SeqCst) - 1;
        self.metrics.queued.set(waiting as i64);
    }

    /// Whether the first waiting task may start now: when nothing runs, or when it may join a
    /// batch and everything running is in a batch with room. Its request is built (resolving
    /// its model, which may mean hashing a file or loading it) only when it is first in line.
    /// A request that cannot be built starts at once (it only answers its error).
    fn admissible(&self, p: &mut Pending, active: &[Active], runner: &Runner) -> bool {
        let builder = if p.task.trusted {
            &self.trusted
        } else {
            &self.untrusted
        };
        let request = p
            .request
            .get_or_insert_with(|| p.task.spec.clone().build(builder));
        let Ok(request) = request else {
            return true;
        };
        if active.is_empty() {
            return true;
        }
        let joins = *p.joins.get_or_insert_with(|| runner.joins(request));
        joins
            && active.len() < steadytext::batch::MAX_SEQUENCES as usize
            && active.iter().all(|a| a.joined)
    }

    /// Starts a task through the cache; a cache hit is not computed work (its tokens are not
    /// counted as the engine's).
    fn start<'e>(
        &self,
        p: Pending,
        executor: &'e Cached<'e, Runner>,
    ) -> Result<Active<'e>, Box<(Task, Error)>> {
        let Pending { task, request, .. } = p;
        let request = match request {
            Some(Ok(r)) => r,
            Some(Err(e)) => return Err(Box::new((task, e))),
            None => {
                let e = Error::inference("the request was not built");
                return Err(Box::new((task, e)));
            }
        };
        executor.inner.take_joined();
        let hits = |c: &FrecencyCache| c.counts(Kind::Generation).hits;
        let hits_before = self.cache.as_ref().map(hits);
        let started = Instant::now();
        let streaming = task.method == "generate_iter";
        match executor.execute(request, streaming) {
            Ok(execution) => Ok(Active {
                computed: self.cache.as_ref().map(hits) == hits_before,
                joined: executor.inner.take_joined(),
                task,
                execution,
                streaming,
                started,
                first: None,
            }),
            Err(e) => Err(Box::new((task, e))),
        }
    }

    /// Sends a task's result to its client; false when the server loop has gone.
    fn deliver(
        &self,
        task: Task,
        result: Result<Output, Error>,
        took: Duration,
        out: &Outbox,
    ) -> bool {
        let streaming = task.method == "generate_iter";
        self.metrics
            .observe(task.route(), &task.method, &result, took);
        match task.reply {
            Reply::Http(tx) => {
                let _ = tx.send(Event::Done(result));
                true
            }
            Reply::Zmq { identity, extended } => {
                let response = zmq_response(&task.id, &task.method, &task.spec, result, streaming)
                    .for_client(extended);
                out.send(if streaming {
                    Outgoing::End(identity, response)
                } else {
                    Outgoing::Reply(identity, response)
                })
            }
        }
    }
}

/// A task taken from the channel and not started yet.
struct Pending {
    task: Task,
    /// Its request, built when it is first in line.
    request: Option<Result<Request, Error>>,
    /// Whether it may join a batch, once known.
    joins: Option<bool>,
}

impl Pending {
    fn new(task: Task) -> Self {
        Pending {
            task,
            request: None,
            joins: None,
        }
    }
}

/// A task being run.
struct Active<'e> {
    task: Task,
    execution: Box<dyn Execution + 'e>,
    /// Whether it runs in a shared batch.
    joined: bool,
    streaming: bool,
    /// Whether the engine computes it (not a cache hit).
    computed: bool,
    started: Instant,
    /// When its first step ended (the end of the prompt's evaluation).
    first: Option<Instant>,
}

impl Active<'_> {
    /// One step; the result once it is over. Streamed pieces go to the client as they come;
    /// a cancelled task, or an HTTP client that went away, ends it.
    fn advance(&mut self, out: &Outbox) -> Option<Result<Output, Error>> {
        if self.task.cancel.load(Ordering::Relaxed) {
            return Some(Err(Error::cancelled()));
        }
        // A reranking or an embedding owns its llama.cpp contexts, so a cancel stops it inside a
        // decode (one long document is one decode of seconds); a generation's context may be
        // shared or kept, so it stops between tokens only.
        let _stop = matches!(self.task.spec, Spec::Rerank(_) | Spec::Embed(_))
            .then(|| steadytext::stop::when(&self.task.cancel));
        let progress = self.execution.advance();
        self.first.get_or_insert_with(Instant::now);
        match progress {
            Err(e) => Some(Err(e)),
            Ok(Progress::Done(output)) => Some(Ok(output)),
            Ok(Progress::Piece(piece)) if self.streaming => match &self.task.reply {
                Reply::Zmq { identity, .. } => {
                    out.send(Outgoing::Piece(
                        identity.clone(),
                        self.task.id.clone(),
                        piece,
                    ));
                    None
                }
                Reply::Http(tx) => tx
                    .send(Event::Piece(piece))
                    .is_err()
                    .then(|| Err(Error::cancelled())),
            },
            Ok(Progress::Piece(_) | Progress::Working) => None,
        }
    }
}

/// Where the daemon runs requests: one at a time (`--serial`), or generations in shared batches
/// where the model is proven to batch.
enum Runner {
    Serial(Local),
    Batched(Batched),
}

impl Runner {
    fn joins(&self, request: &Request) -> bool {
        match self {
            Runner::Serial(_) => false,
            Runner::Batched(b) => b.joins(request),
        }
    }

    /// Whether the execution started last joined a batch.
    fn take_joined(&self) -> bool {
        match self {
            Runner::Serial(_) => false,
            Runner::Batched(b) => b.take_joined(),
        }
    }
}

impl Executor for Runner {
    fn execute(&self, request: Request, streaming: bool) -> Result<Box<dyn Execution + '_>, Error> {
        match self {
            Runner::Serial(local) => local.execute(request, streaming),
            Runner::Batched(batched) => batched.execute(request, streaming),
        }
    }
}

/// A ZeroMQ client's answer, in SteadyText's shapes.
fn zmq_response(
    id: &str,
    method: &str,
    spec: &Spec,
    result: Result<Output, Error>,
    streaming: bool,
) -> Response {
    let output = match result {
        Ok(output) => output,
        Err(e) => return Response::err(id, &e),
    };
    let documents = match (spec, &output) {
        (Spec::Rerank(_), Output::Ranked(_)) => rerank_documents(spec),
        _ => Vec::new(),
    };
    let shape = match method {
        "embed" => Shape::Vector,
        "embed_batch" => Shape::Vectors,
        "rerank" => Shape::Ranked {
            documents: &documents,
            return_scores: match spec {
                Spec::Rerank(r) => r.return_scores.unwrap_or(true),
                _ => true,
            },
        },
        _ => Shape::Text,
    };
    let (result, mut detail) = protocol::encode(&output, shape);
    let mut response = if streaming {
        detail.text = result.as_str().map(str::to_string);
        Response::token(id, STREAM_END)
    } else {
        Response::ok(id, result)
    };
    response.detail = serde_json::to_value(detail).ok();
    response
}

/// The documents of a rerank spec, in input order (as the built request holds them).
fn rerank_documents(spec: &Spec) -> Vec<String> {
    match spec {
        Spec::Rerank(r) => match &r.documents {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}
