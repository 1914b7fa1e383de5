//! The inference thread: builds each task's request (resolving its model, which may mean hashing
//! a file, so never on the thread that answers pings), runs it through the frecency cache and the
//! engine, and reports back to the server loop.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;

use serde_json::{json, Value};
use steadytext::cache::{self, FrecencyCache, Kind};
use steadytext::cached::Cached;
use steadytext::execute::{Execution, Executor, Output, Progress};
use steadytext::protocol::{self, Response, Shape, STREAM_END};
use steadytext::request::{Builder, Spec};
use steadytext::{Engine, Error, Local, Request, Role};

/// One client request handed to the inference thread.
pub struct Task {
    /// The client's ZeroMQ identity.
    pub identity: Vec<u8>,
    /// The request id.
    pub id: String,
    /// The method (decides the answer's shape).
    pub method: String,
    /// What to do.
    pub spec: Spec,
    /// Whether the client is authorised (may send model paths).
    pub trusted: bool,
    /// Whether the client reads the replies' additions.
    pub extended: bool,
    /// Set by `cancel` (or an abandoned stream): stop between steps.
    pub cancel: Arc<AtomicBool>,
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
    cache: Option<FrecencyCache>,
    trusted: Builder,
    untrusted: Builder,
}

impl Inference {
    /// The inference side of a daemon. The cache is `<cache root>/caches/steadytext-rs.sqlite3`
    /// unless `STEADYTEXT_DISABLE_CACHE=1`.
    pub fn new(threads: i32, trusted: Builder, untrusted: Builder) -> Self {
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
            queued.fetch_sub(1, Ordering::SeqCst);
            let streaming = task.method == "generate_iter";
            let response = if task.cancel.load(Ordering::Relaxed) {
                Response::err(&task.id, &Error::cancelled())
            } else {
                self.run(&task, streaming, &out)
            }
            .for_client(task.extended);
            let message = if streaming {
                Outgoing::End(task.identity, response)
            } else {
                Outgoing::Reply(task.identity, response)
            };
            if !out.send(message) {
                return;
            }
        }
    }

    fn run(&self, task: &Task, streaming: bool, out: &Outbox) -> Response {
        match self.execute(task, streaming, out) {
            Ok(response) => response,
            Err(e) => Response::err(&task.id, &e),
        }
    }

    fn execute(&self, task: &Task, streaming: bool, out: &Outbox) -> Result<Response, Error> {
        let builder = if task.trusted {
            &self.trusted
        } else {
            &self.untrusted
        };
        let return_scores = match &task.spec {
            Spec::Rerank(spec) => spec.return_scores.unwrap_or(true),
            _ => true,
        };
        let request = task.spec.clone().build(builder)?;
        let executor = Cached {
            inner: Local::new(self.threads),
            cache: self.cache.as_ref(),
        };
        let documents = match &request {
            Request::Rerank(r) => r.documents.clone(),
            _ => Vec::new(),
        };
        let mut execution = executor.execute(request, streaming)?;
        let output = self.drive(execution.as_mut(), task, streaming, out)?;
        let shape = match task.method.as_str() {
            "embed" => Shape::Vector,
            "embed_batch" => Shape::Vectors,
            "rerank" => Shape::Ranked {
                documents: &documents,
                return_scores,
            },
            _ => Shape::Text,
        };
        let (result, mut detail) = protocol::encode(&output, shape);
        let mut response = if streaming {
            detail.text = result.as_str().map(str::to_string);
            Response::token(&task.id, STREAM_END)
        } else {
            Response::ok(&task.id, result)
        };
        response.detail = serde_json::to_value(detail).ok();
        Ok(response)
    }

    /// Advances the execution to its end, passing pieces on when streaming and stopping when
    /// the task is cancelled.
    fn drive(
        &self,
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
                Progress::Piece(piece) if streaming => {
                    out.send(Outgoing::Piece(
                        task.identity.clone(),
                        task.id.clone(),
                        piece,
                    ));
                }
                Progress::Piece(_) | Progress::Working => {}
                Progress::Done(output) => return Ok(output),
            }
        }
    }
}
