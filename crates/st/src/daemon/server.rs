//! The daemon server: one process owns the models and serves every client.
//!
//! A ROUTER socket talks to any number of REQ clients. The main loop answers `ping`, `stats`,
//! `cancel` and `shutdown` itself, at once, and hands model work to one inference thread, so a
//! ping never waits behind a generation and requests never compete for the cores (results are
//! the same whatever else is queued). Streams are paced by the client's ACKs; a stream whose
//! client stops acknowledging is cancelled after a timeout, so it never wedges the server.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{json, Value};
use steadytext::protocol::{self, Request, Response};

use super::worker::{Job, Work, Worker};

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// ZeroMQ endpoint to bind, e.g. `tcp://127.0.0.1:5555`.
    pub bind: String,
    /// llama.cpp threads per request.
    pub threads: i32,
    /// How long a stream may wait for its client's ACK.
    pub stream_timeout: Duration,
    /// Load the default models before serving.
    pub preload: bool,
}

/// What the inference thread sends back to the main loop.
pub enum Outgoing {
    /// A complete response.
    Reply(Vec<u8>, Response),
    /// One stream piece.
    Piece(Vec<u8>, String, String),
    /// The end of a stream (or its error).
    End(Vec<u8>, Response),
}

struct Stream {
    request_id: String,
    queue: VecDeque<Response>,
    awaiting_ack: bool,
    waiting_since: Instant,
    finished: bool,
}

struct Server {
    socket: zmq::Socket,
    bell: zmq::Socket,
    jobs: Sender<Job>,
    outgoing: Receiver<Outgoing>,
    cancels: HashMap<String, Arc<AtomicBool>>,
    streams: HashMap<Vec<u8>, Stream>,
    worker: Arc<Worker>,
    config: Config,
    started: Instant,
    running: bool,
}

/// Runs the server until a `shutdown` request or a fatal error.
pub fn run(config: Config) -> Result<()> {
    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::ROUTER)?;
    socket.set_linger(0)?;
    socket
        .bind(&config.bind)
        .with_context(|| format!("cannot bind {}", config.bind))?;
    let worker = Arc::new(Worker::new(config.threads));
    if config.preload {
        worker.preload();
    }
    let (jobs, job_rx) = mpsc::channel::<Job>();
    let (out_tx, outgoing) = mpsc::channel::<Outgoing>();
    // The inference thread rings this bell after each message, so results leave at once
    // instead of at the next poll timeout.
    let bell = ctx.socket(zmq::PAIR)?;
    bell.bind("inproc://steadytext-bell")?;
    let ringer = ctx.socket(zmq::PAIR)?;
    ringer.connect("inproc://steadytext-bell")?;
    let thread_worker = worker.clone();
    std::thread::Builder::new()
        .name("inference".into())
        .spawn(move || thread_worker.serve(job_rx, out_tx, ringer))?;
    tracing::info!(endpoint = %config.bind, "st daemon serving");
    let mut server = Server {
        socket,
        bell,
        jobs,
        outgoing,
        cancels: HashMap::new(),
        streams: HashMap::new(),
        worker,
        config,
        started: Instant::now(),
        running: true,
    };
    server.serve()
}

impl Server {
    fn serve(&mut self) -> Result<()> {
        while self.running {
            let mut items = [
                self.socket.as_poll_item(zmq::POLLIN),
                self.bell.as_poll_item(zmq::POLLIN),
            ];
            // The timeout only paces the check for abandoned streams.
            zmq::poll(&mut items, 100)?;
            let (requests, rung) = (items[0].is_readable(), items[1].is_readable());
            if rung {
                while self.bell.recv_bytes(zmq::DONTWAIT).is_ok() {}
            }
            if requests {
                while let Ok(frames) = self.socket.recv_multipart(zmq::DONTWAIT) {
                    self.on_message(frames)?;
                }
            }
            while let Ok(out) = self.outgoing.try_recv() {
                self.on_outgoing(out)?;
            }
            self.expire_streams();
        }
        Ok(())
    }

    fn send(&self, identity: &[u8], response: &Response) -> Result<()> {
        let body = serde_json::to_vec(response)?;
        self.socket.send_multipart([identity, b"", &body[..]], 0)?;
        Ok(())
    }

    fn on_message(&mut self, frames: Vec<Vec<u8>>) -> Result<()> {
        // A REQ client's message arrives as [identity, empty delimiter, body].
        let [identity, _, body] =
            <[Vec<u8>; 3]>::try_from(frames).map_err(|_| anyhow::anyhow!("malformed message"))?;
        if body == protocol::ACK {
            return self.on_ack(&identity);
        }
        let request: Request = match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return self.send(
                    &identity,
                    &Response::err("", format!("invalid request: {e}")),
                )
            }
        };
        match request.method.as_str() {
            "ping" => self.send(&identity, &Response::ok(&request.id, json!("pong"))),
            "stats" => {
                let stats = self.stats();
                self.send(&identity, &Response::ok(&request.id, stats))
            }
            "cancel" => {
                let target = request
                    .params
                    .get("request_id")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let found = self.cancel(target);
                self.send(
                    &identity,
                    &Response::ok(&request.id, json!({ "cancelled": found })),
                )
            }
            "shutdown" => {
                self.running = false;
                self.send(
                    &identity,
                    &Response::ok(&request.id, json!("shutdown initiated")),
                )
            }
            "generate" | "generate_iter" | "embed" | "embed_batch" | "rerank" => {
                self.submit(identity, request)
            }
            other => self.send(
                &identity,
                &Response::err(&request.id, format!("Unknown method: {other}")),
            ),
        }
    }

    fn submit(&mut self, identity: Vec<u8>, request: Request) -> Result<()> {
        let cancel = Arc::new(AtomicBool::new(false));
        self.cancels.insert(request.id.clone(), cancel.clone());
        let work = match Work::parse(&request.method, request.params) {
            Ok(work) => work,
            Err(e) => return self.send(&identity, &Response::err(&request.id, e)),
        };
        if matches!(work, Work::Stream(_)) {
            self.streams.insert(
                identity.clone(),
                Stream {
                    request_id: request.id.clone(),
                    queue: VecDeque::new(),
                    awaiting_ack: false,
                    waiting_since: Instant::now(),
                    finished: false,
                },
            );
        }
        let job = Job {
            identity,
            id: request.id,
            work,
            cancel,
        };
        self.jobs
            .send(job)
            .map_err(|_| anyhow::anyhow!("the inference thread is gone"))
    }

    fn cancel(&mut self, request_id: &str) -> bool {
        match self.cancels.get(request_id) {
            Some(flag) => {
                flag.store(true, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    fn on_outgoing(&mut self, out: Outgoing) -> Result<()> {
        match out {
            Outgoing::Reply(identity, response) => {
                self.cancels.remove(&response.id);
                self.send(&identity, &response)
            }
            Outgoing::Piece(identity, id, piece) => {
                self.enqueue(identity, Response::token(&id, &piece), false)
            }
            Outgoing::End(identity, response) => {
                self.cancels.remove(&response.id);
                self.enqueue(identity, response, true)
            }
        }
    }

    /// Queues a stream frame; sends it now if the client is not waiting on an earlier one.
    fn enqueue(&mut self, identity: Vec<u8>, frame: Response, last: bool) -> Result<()> {
        let Some(stream) = self.streams.get_mut(&identity) else {
            return Ok(()); // abandoned: nobody to send to
        };
        stream.queue.push_back(frame);
        stream.finished |= last;
        if !stream.awaiting_ack {
            self.send_next(&identity)?;
        }
        Ok(())
    }

    fn send_next(&mut self, identity: &[u8]) -> Result<()> {
        let Some(stream) = self.streams.get_mut(identity) else {
            return Ok(());
        };
        let Some(frame) = stream.queue.pop_front() else {
            return Ok(());
        };
        let is_end = stream.finished && stream.queue.is_empty();
        stream.awaiting_ack = !is_end;
        stream.waiting_since = Instant::now();
        if is_end {
            self.streams.remove(identity);
        }
        self.send(identity, &frame)
    }

    fn on_ack(&mut self, identity: &[u8]) -> Result<()> {
        if let Some(stream) = self.streams.get_mut(identity) {
            stream.awaiting_ack = false;
            if !stream.queue.is_empty() {
                return self.send_next(identity);
            }
        }
        Ok(())
    }

    /// Cancels streams whose client stopped acknowledging.
    fn expire_streams(&mut self) {
        let timeout = self.config.stream_timeout;
        let expired: Vec<(Vec<u8>, String)> = self
            .streams
            .iter()
            .filter(|(_, s)| s.awaiting_ack && s.waiting_since.elapsed() > timeout)
            .map(|(identity, s)| (identity.clone(), s.request_id.clone()))
            .collect();
        for (identity, request_id) in expired {
            tracing::warn!(request_id, "stream abandoned by its client; cancelling it");
            self.streams.remove(&identity);
            self.cancel(&request_id);
        }
    }

    fn stats(&self) -> Value {
        json!({
            "pid": std::process::id(),
            "endpoint": self.config.bind,
            "uptime_seconds": self.started.elapsed().as_secs_f64(),
            "fingerprint": steadytext::build_info::fingerprint(),
            "threads": self.config.threads,
            "active_streams": self.streams.len(),
            "models": self.worker.models(),
            "cache": self.worker.cache_stats(),
        })
    }
}
