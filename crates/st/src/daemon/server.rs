//! The daemon server: one process owns the models and serves every client.
//!
//! A ROUTER socket talks to any number of REQ clients. The loop answers `ping`, `stats`, `cancel`
//! and `shutdown` itself, at once, and hands model work to one inference thread, so a ping never
//! waits behind a generation and requests never compete for the cores (results are the same
//! whatever else is queued). Streams are paced by the client's ACKs; a stream whose client stops
//! acknowledging is cancelled after a timeout.
//!
//! No input stops the loop: a message with the wrong frames is dropped, anything else that is
//! wrong gets an error reply. Messages are bounded in size (ZMQ_MAXMSGSIZE), the queue in length
//! (a full queue answers "busy"), and the engine in loaded models.
//!
//! Who the daemon is: given a secret key (`--secret-key-file`), the socket is a CURVE server and
//! only clients that pin its public key can talk to it; the handshake proves the key before a
//! client sends anything, and all traffic is encrypted. Without one it speaks plain ZeroMQ, as
//! SteadyText's daemon does (its Python client has no keys).
//!
//! Who may do what: a client on the daemon's `ipc://` socket without CURVE (reachable only by
//! users who can enter its directory) or one that sends the daemon's token over CURVE is
//! authorised: it may name model files by path, shut the daemon down, and send resolved
//! models. A token over plain TCP authorises nothing (anyone on the way could have read it).
//! Other clients (SteadyText's Python client on a TCP port) may use registry models, files in
//! the models directory and the daemon's own defaults.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{json, Value};
use steadytext::daemon_keys::KeyPair;
use steadytext::protocol::{self, Message, Response};
use steadytext::request::Builder;
use steadytext::{Error, ErrorKind};

use steadytext::request::Spec;

use super::inference::{Inference, Outbox, Outgoing, Reply, Submitter, Task};
use super::metrics::Metrics;
use super::peers::Limits;
use super::router_guard::RouterGuard;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// ZeroMQ endpoint to bind, e.g. `tcp://127.0.0.1:5555` or `ipc:///run/st/daemon.sock`.
    pub bind: String,
    /// llama.cpp threads per request.
    pub threads: i32,
    /// Batch generations where that is proven to change no output (off: one at a time).
    pub batching: bool,
    /// How long a stream may wait for its client's ACK.
    pub stream_timeout: Duration,
    /// Load the default models before serving.
    pub preload: bool,
    /// The token that authorises a client over CURVE (and on the HTTP listener).
    pub token: Option<String>,
    /// The daemon's CURVE key pair: serve only clients that pin its public key.
    pub curve: Option<KeyPair>,
    /// Where the daemon records its pid once it holds its endpoint.
    pub pid_file: PathBuf,
    /// How requests from authorised clients are built.
    pub trusted: Builder,
    /// How requests from other clients are built.
    pub untrusted: Builder,
    /// Largest message accepted, in bytes.
    pub max_message_bytes: i64,
    /// Most requests waiting for the inference thread.
    pub max_queue: usize,
    /// The OpenAI-compatible HTTP listener and /metrics, when asked for.
    pub http: Option<super::http::Config>,
    /// How long a TCP peer may take to complete the ZMTP handshake (ZMQ_HANDSHAKE_IVL).
    pub handshake_timeout: Duration,
    /// How often peers are pinged (ZMQ_HEARTBEAT_IVL); one silent for three times this long
    /// is dropped (ZMQ_HEARTBEAT_TIMEOUT).
    pub heartbeat: Duration,
    /// The connections other peers may hold on the TCP endpoint.
    pub connections: Limits,
    /// The process the daemon ends with (`--exit-with`).
    pub exit_with: Option<super::lifetime::Owner>,
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
    wakeup: zmq::Socket,
    /// The TCP endpoint's connections, counted per peer.
    guard: Option<RouterGuard>,
    submitter: Submitter,
    outgoing: Receiver<Outgoing>,
    cancels: HashMap<String, Arc<AtomicBool>>,
    streams: HashMap<Vec<u8>, Stream>,
    inference: Arc<Inference>,
    config: Config,
    /// Every client is authorised (a plain ipc socket).
    ipc_trusted: bool,
    /// A client that sends the token is authorised (CURVE).
    token_trusted: bool,
    started: Instant,
    running: bool,
    stop_signal: Arc<AtomicBool>,
}

/// Runs the server until a `shutdown` request, SIGTERM or SIGINT.
pub fn run(config: Config) -> Result<()> {
    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::ROUTER)?;
    socket.set_linger(0)?;
    socket.set_maxmsgsize(config.max_message_bytes)?;
    // A peer that connects and never completes the handshake holds a descriptor until then; a
    // peer that stops answering pings is gone.
    let millis = |d: Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX).max(1);
    socket.set_handshake_ivl(millis(config.handshake_timeout))?;
    socket.set_heartbeat_ivl(millis(config.heartbeat))?;
    socket.set_heartbeat_timeout(millis(config.heartbeat * 3))?;
    socket.set_heartbeat_ttl(millis(config.heartbeat * 3))?;
    let ipc = config.bind.starts_with("ipc://");
    if ipc {
        prepare_ipc(&config.bind)?;
    }
    if let Some(pair) = &config.curve {
        if !steadytext::daemon_keys::curve_available() {
            anyhow::bail!("--secret-key-file needs a libzmq with CURVE (built with libsodium)");
        }
        socket.set_curve_server(true)?;
        socket.set_curve_secretkey(&pair.secret)?;
    }
    // Watched from before the first connection: each is counted against its peer.
    let mut guard = if config.bind.starts_with("tcp://") {
        Some(RouterGuard::new(&ctx, &socket, config.connections)?)
    } else {
        None
    };
    socket
        .bind(&config.bind)
        .with_context(|| format!("cannot bind {}", config.bind))?;
    if let Some(guard) = &mut guard {
        // The port bound (`:0` or `:*` asks libzmq for any).
        let bound = socket.get_last_endpoint()?.unwrap_or_default();
        match bound.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()) {
            Some(port) => guard.set_port(port),
            None => anyhow::bail!("cannot tell the port of {bound}"),
        }
    }
    // Only now that the endpoint is ours: `st daemon stop` signals the pid it finds here.
    super::pid_file::write(&config.pid_file)?;
    let stop_signal = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop_signal.clone())?;
    }
    if let Some(owner) = config.exit_with {
        super::lifetime::watch(owner, stop_signal.clone());
    }
    let http_listener = match &config.http {
        Some(http) => Some(super::http::bind(http, config.token.as_deref())?),
        None => None,
    };
    let metrics = Arc::new(Metrics::new());
    let inference = Arc::new(Inference::new(
        config.threads,
        config.batching,
        config.trusted.clone(),
        config.untrusted.clone(),
        metrics.clone(),
    ));
    if config.preload {
        inference.preload();
    }
    let (tasks, task_rx) = mpsc::channel::<Task>();
    let (out_tx, outgoing) = mpsc::channel::<Outgoing>();
    // The inference thread rings this after each message, so results leave at once instead of
    // at the next poll timeout.
    let wakeup = ctx.socket(zmq::PAIR)?;
    wakeup.bind("inproc://steadytext-wakeup")?;
    let ringer = ctx.socket(zmq::PAIR)?;
    ringer.connect("inproc://steadytext-wakeup")?;
    let queued = Arc::new(AtomicUsize::new(0));
    let thread_inference = inference.clone();
    let thread_queued = queued.clone();
    let inference_thread =
        std::thread::Builder::new()
            .name("inference".into())
            .spawn(move || {
                thread_inference.serve(task_rx, Outbox::new(out_tx, ringer), &thread_queued)
            })?;
    let submitter = Submitter::new(tasks, queued, config.max_queue, metrics.clone());
    let (http_stop, http_stopped) = tokio::sync::watch::channel(false);
    let http_thread = match (http_listener, &config.http) {
        (Some(listener), Some(http)) => {
            let (http, token, submitter) = (http.clone(), config.token.clone(), submitter.clone());
            let (inference, stop) = (inference.clone(), http_stopped);
            Some(
                std::thread::Builder::new()
                    .name("http".into())
                    .spawn(move || {
                        if let Err(e) = super::http::serve(
                            listener, &http, token, submitter, inference, metrics, stop,
                        ) {
                            tracing::error!("the HTTP listener stopped: {e:#}");
                        }
                    })?,
            )
        }
        _ => None,
    };
    if let Some(pair) = &config.curve {
        eprintln!(
            "st daemon: CURVE on, public key {}",
            steadytext::daemon_keys::z85_encode(&pair.public)
        );
    }
    match &config.http {
        Some(http) => eprintln!(
            "st daemon ready on {} and http://{} (pid {})",
            config.bind,
            http.bind,
            std::process::id()
        ),
        None => eprintln!(
            "st daemon ready on {} (pid {})",
            config.bind,
            std::process::id()
        ),
    }
    let mut server = Server {
        socket,
        wakeup,
        guard,
        submitter,
        outgoing,
        cancels: HashMap::new(),
        streams: HashMap::new(),
        inference,
        // Over CURVE the token decides; on a plain ipc socket the directory did; on plain TCP
        // nothing can.
        ipc_trusted: ipc && config.curve.is_none(),
        token_trusted: config.curve.is_some(),
        config,
        started: Instant::now(),
        running: true,
        stop_signal,
    };
    server.serve();
    let bind = server.config.bind.clone();
    let pid_file = server.config.pid_file.clone();
    server.close();
    // The HTTP side holds task senders too: it must end before the inference thread can.
    if let Some(thread) = http_thread {
        let _ = http_stop.send(true);
        let _ = thread.join();
    }
    // The inference thread ends once its task channel closes (running work is cancelled);
    // then the context can end, sending what is still queued (the answer to `shutdown`).
    let _ = inference_thread.join();
    drop(ctx);
    if let Some(path) = bind.strip_prefix("ipc://") {
        let _ = std::fs::remove_file(path);
    }
    super::pid_file::remove_if_mine(&pid_file);
    Ok(())
}

/// Makes the socket's directory (0700 when we create it) and removes a stale socket file.
fn prepare_ipc(bind: &str) -> Result<()> {
    let path = std::path::Path::new(bind.trim_start_matches("ipc://"));
    if let Some(dir) = path.parent() {
        steadytext::private::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(path);
    Ok(())
}

impl Server {
    /// Cancels running work and closes the sockets, letting queued answers leave.
    fn close(self) {
        for flag in self.cancels.values() {
            flag.store(true, Ordering::Relaxed);
        }
        let _ = self.socket.set_linger(1000);
    }

    fn serve(&mut self) {
        while self.running && !self.stop_signal.load(Ordering::Relaxed) {
            let mut items = vec![
                self.socket.as_poll_item(zmq::POLLIN),
                self.wakeup.as_poll_item(zmq::POLLIN),
            ];
            if let Some(guard) = &self.guard {
                items.push(guard.poll_item());
            }
            // The timeout only paces the checks for signals and abandoned streams.
            if let Err(e) = zmq::poll(&mut items, 100) {
                if e != zmq::Error::EINTR {
                    tracing::error!("poll failed: {e}");
                }
                continue;
            }
            let (requests, rung) = (items[0].is_readable(), items[1].is_readable());
            drop(items);
            // Connections first: one over its peer's budget is closed before it is served.
            if let Some(guard) = &mut self.guard {
                guard.on_events();
            }
            if rung {
                while self.wakeup.recv_bytes(zmq::DONTWAIT).is_ok() {}
            }
            if requests {
                while let Ok(frames) = self.socket.recv_multipart(zmq::DONTWAIT) {
                    self.on_message(frames);
                }
            }
            while let Ok(out) = self.outgoing.try_recv() {
                self.on_outgoing(out);
            }
            self.expire_streams();
        }
    }

    fn send(&self, identity: &[u8], response: &Response) {
        let sent = serde_json::to_vec(response)
            .map_err(|e| e.to_string())
            .and_then(|body| {
                self.socket
                    .send_multipart([identity, b"", &body[..]], 0)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = sent {
            tracing::warn!("cannot answer a client: {e}");
        }
    }

    /// Sends a reply, with the additions only for a client that reads them.
    fn reply(&self, identity: &[u8], response: Response, extended: bool) {
        self.send(identity, &response.for_client(extended))
    }

    fn on_message(&mut self, frames: Vec<Vec<u8>>) {
        // A REQ client's message arrives as [identity, empty delimiter, body]; anything else
        // cannot be answered and is dropped.
        let Ok([identity, delimiter, body]) = <[Vec<u8>; 3]>::try_from(frames) else {
            tracing::debug!("dropped a message with the wrong number of frames");
            return;
        };
        if !delimiter.is_empty() {
            tracing::debug!("dropped a message without the REQ delimiter");
            return;
        }
        if body == protocol::ACK {
            return self.on_ack(&identity);
        }
        let message: Message = match serde_json::from_slice(&body) {
            Ok(m) => m,
            Err(e) => {
                let error = Error::protocol(format!("invalid request: {e}"));
                return self.reply(&identity, Response::err("", &error), false);
            }
        };
        let trusted = self.ipc_trusted
            || (self.token_trusted
                && same_token(message.auth.as_deref(), self.config.token.as_deref()));
        let id = message.id.clone();
        let extended = message.extended;
        match message.method.as_str() {
            "ping" => self.reply(&identity, Response::ok(&id, json!("pong")), extended),
            "stats" => {
                let stats = self.stats();
                self.reply(&identity, Response::ok(&id, stats), extended)
            }
            "cancel" => {
                let found = match message.params.get("request_id").and_then(Value::as_str) {
                    Some(target) => self.cancel(target),
                    None => false,
                };
                self.reply(
                    &identity,
                    Response::ok(&id, json!({ "cancelled": found })),
                    extended,
                )
            }
            "shutdown" if trusted => {
                self.running = false;
                self.reply(
                    &identity,
                    Response::ok(&id, json!("shutdown initiated")),
                    extended,
                )
            }
            "shutdown" => self.reply(
                &identity,
                Response::err(
                    &id,
                    &Error::forbidden(
                        "shutdown needs an authorised client (the daemon's ipc socket, or its \
                         token over CURVE); stop the daemon with `st daemon stop` as its user",
                    ),
                ),
                extended,
            ),
            "generate" | "generate_iter" | "embed" | "embed_batch" | "rerank" => {
                self.submit(identity, message, trusted)
            }
            other => self.reply(
                &identity,
                Response::err(&id, &Error::invalid(format!("Unknown method: {other}"))),
                extended,
            ),
        }
    }

    fn submit(&mut self, identity: Vec<u8>, message: Message, trusted: bool) {
        let extended = message.extended;
        let spec = match Spec::parse(&message.method, message.params) {
            Ok(spec) => spec,
            Err(e) => return self.reply(&identity, Response::err(&message.id, &e), extended),
        };
        let cancel = Arc::new(AtomicBool::new(false));
        let streaming = message.method == "generate_iter";
        let task = Task {
            reply: Reply::Zmq {
                identity: identity.clone(),
                extended,
            },
            id: message.id.clone(),
            method: message.method,
            spec,
            trusted,
            cancel: cancel.clone(),
        };
        if let Err(e) = self.submitter.submit(task) {
            if e.kind() != ErrorKind::Busy {
                tracing::error!("{e}; stopping");
                self.running = false;
            }
            return self.reply(&identity, Response::err(&message.id, &e), extended);
        }
        self.cancels.insert(message.id.clone(), cancel);
        if streaming {
            self.streams.insert(
                identity,
                Stream {
                    request_id: message.id,
                    queue: VecDeque::new(),
                    awaiting_ack: false,
                    waiting_since: Instant::now(),
                    finished: false,
                },
            );
        }
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

    fn on_outgoing(&mut self, out: Outgoing) {
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
    fn enqueue(&mut self, identity: Vec<u8>, frame: Response, last: bool) {
        let Some(stream) = self.streams.get_mut(&identity) else {
            return; // abandoned: nobody to send to
        };
        stream.queue.push_back(frame);
        stream.finished |= last;
        if !stream.awaiting_ack {
            self.send_next(&identity);
        }
    }

    fn send_next(&mut self, identity: &[u8]) {
        let Some(stream) = self.streams.get_mut(identity) else {
            return;
        };
        let Some(frame) = stream.queue.pop_front() else {
            return;
        };
        let is_end = stream.finished && stream.queue.is_empty();
        stream.awaiting_ack = !is_end;
        stream.waiting_since = Instant::now();
        if is_end {
            self.streams.remove(identity);
        }
        self.send(identity, &frame)
    }

    fn on_ack(&mut self, identity: &[u8]) {
        if let Some(stream) = self.streams.get_mut(identity) {
            stream.awaiting_ack = false;
            if !stream.queue.is_empty() {
                self.send_next(identity);
            }
        }
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
            "profile": steadytext::build_info::profile(),
            "threads": self.config.threads,
            "batching": self.inference.batching(),
            "queued": self.submitter.queued(),
            "running": self.inference.running(),
            "active_streams": self.streams.len(),
            "models": self.inference.models(),
            "cache": self.inference.cache_stats(),
            "connections": self.guard.as_ref().map(|guard| {
                let (held, refused) = guard.counts();
                json!({ "held": held, "refused": refused })
            }),
        })
    }
}

/// Whether a client sent the daemon's token, compared in constant time (the time a wrong token
/// takes says nothing about the right one).
pub(super) fn same_token(sent: Option<&str>, token: Option<&str>) -> bool {
    match (sent, token) {
        (Some(sent), Some(token)) => {
            sent.len() == token.len()
                && sent
                    .bytes()
                    .zip(token.bytes())
                    .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                    == 0
        }
        _ => false,
    }
}
