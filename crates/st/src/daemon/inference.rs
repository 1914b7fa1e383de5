//! The inference thread: builds each task's request (resolving its model, which may mean hashing
//! a file, so never on the thread that answers pings), runs it through the frecency cache and the
//! engine, and reports back to the server loop.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use steadytext::cache::{self, FrecencyCache, Kind};
use steadytext::cached::Cached;
use steadytext::execute::{Execution, Executor, Output, Progress};
use steadytext::protocol::{self, Response, Shape, STREAM_END};
use steadytext::request::{Builder, Spec};
use steadytext::{Engine, Error, ErrorKind, Local, Role};

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
    metrics: Arc<Metrics>,
    cache: Option<FrecencyCache>,
    trusted: Builder,
    untrusted: Builder,
}

impl Inference {
    /// The inference side of a daemon. The cache is `<cache root>/caches/steadytext-rs.sqlite3`
    /// unless `STEADYTEXT_DISABLE_CACHE=1`.
    pub fn new(threads: i32, trusted: Builder, untrusted: Builder, metrics: Arc<Metrics>) -> Self {
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

    /// Loaded models with their files and sha256.
    pub fn models(&self) -> Value {
        Engine::global()
            .loaded()
            .iter()
            .map(|m| {
                json!({
                    "path": m.path(),
                    "sha256": steadytext::store::sha256_of(m.path()).ok(),
                })
            })
            .collect()
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

    /// Serves tasks until the server loop goes away; `queued` counts the tasks not yet taken.
    pub fn serve(&self, tasks: Receiver<Task>, out: Outbox, queued: &AtomicUsize) {
        for task in tasks {
            let waiting = queued.fetch_sub(1, Ordering::SeqCst) - 1;
            self.metrics.queued.set(waiting as i64);
            self.metrics.running.set(1);
            let started = Instant::now();
            let streaming = task.method == "generate_iter";
            let result = if task.cancel.load(Ordering::Relaxed) {
                Err(Error::cancelled())
            } else {
                self.output(&task, streaming, &out)
            };
            self.metrics
                .observe(task.route(), &task.method, &result, started.elapsed());
            self.metrics.running.set(0);
            let delivered = match task.reply {
                Reply::Http(tx) => {
                    let _ = tx.send(Event::Done(result));
                    true
                }
                Reply::Zmq { identity, extended } => {
                    let response =
                        zmq_response(&task.id, &task.method, &task.spec, result, streaming)
                            .for_client(extended);
                    out.send(if streaming {
                        Outgoing::End(identity, response)
                    } else {
                        Outgoing::Reply(identity, response)
                    })
                }
            };
            if !delivered {
                return;
            }
        }
    }

    /// Runs a task through the cache and the engine; streamed pieces go to its client as they
    /// come. Prefill and decode times are counted for work the engine did (not cache hits).
    fn output(&self, task: &Task, streaming: bool, out: &Outbox) -> Result<Output, Error> {
        let builder = if task.trusted {
            &self.trusted
        } else {
            &self.untrusted
        };
        let request = task.spec.clone().build(builder)?;
        let executor = Cached {
            inner: Local::new(self.threads),
            cache: self.cache.as_ref(),
        };
        let hits = |c: &FrecencyCache| c.counts(Kind::Generation).hits;
        let hits_before = self.cache.as_ref().map(hits);
        let started = Instant::now();
        let mut execution = executor.execute(request, streaming)?;
        let prefilled = Instant::now();
        let output = drive(execution.as_mut(), task, streaming, out)?;
        if let Output::Text { summary, .. } = &output {
            let computed = self.cache.as_ref().map(hits) == hits_before;
            self.metrics.tokens(
                summary,
                computed.then(|| (prefilled - started, prefilled.elapsed())),
            );
        }
        Ok(output)
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

/// Advances the execution to its end, passing pieces on when streaming and stopping when the
/// task is cancelled or its HTTP client has gone.
fn drive(
    execution: &mut dyn Execution,
    task: &Task,
    streaming: bool,
    out: &Outbox,
) -> Result<Output, Error> {
    loop {
        if task.cancel.load(Ordering::Relaxed) {
            return Err(Error::cancelled());
        }
        match execution.advance()? {
            Progress::Piece(piece) if streaming => match &task.reply {
                Reply::Zmq { identity, .. } => {
                    out.send(Outgoing::Piece(identity.clone(), task.id.clone(), piece));
                }
                Reply::Http(tx) => {
                    if tx.send(Event::Piece(piece)).is_err() {
                        return Err(Error::cancelled());
                    }
                }
            },
            Progress::Piece(_) | Progress::Working => {}
            Progress::Done(output) => return Ok(output),
        }
    }
}
