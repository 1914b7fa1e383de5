//! A client of the daemon, and the daemon as an [`Executor`].
//!
//! Every call opens its own REQ socket (so a client is safe to share between threads and a
//! timed-out call never leaves a socket in a bad state), waits in short slices so the caller can
//! be interrupted, and asks the daemon to stop work it abandons.
//!
//! Given the daemon's public key ([`DaemonClient::with_server_key`]), every socket is a CURVE
//! client with a fresh key pair: nothing is sent before the daemon proved it holds the secret
//! key, and everything is encrypted. Without it, the client speaks plain ZeroMQ (SteadyText's
//! daemons, the private `ipc://` socket) and refuses to send a token over anything but `ipc://`,
//! where a listener would read it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::daemon_keys::{self, Key};
use crate::error::{Error, ErrorKind, Result};
use crate::execute::{Execution, Executor, Output, Progress};
use crate::protocol::{self, Message, Response};
use crate::request::{Request, Spec};

/// The endpoint from `STEADYTEXT_DAEMON_HOST` / `STEADYTEXT_DAEMON_PORT` (defaults 127.0.0.1:5555).
pub fn endpoint_from_env() -> String {
    let host = std::env::var("STEADYTEXT_DAEMON_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| protocol::DEFAULT_HOST.to_string());
    let port = std::env::var("STEADYTEXT_DAEMON_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(protocol::DEFAULT_PORT);
    endpoint(&host, port)
}

/// `tcp://host:port`.
pub fn endpoint(host: &str, port: u16) -> String {
    format!("tcp://{host}:{port}")
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn new_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{}-{}",
        std::process::id(),
        nanos,
        NEXT_ID.fetch_add(1, Ordering::Relaxed)
    )
}

fn zmq_error(e: zmq::Error) -> Error {
    Error::protocol(format!("daemon connection: {e}"))
}

/// A daemon client.
#[derive(Clone)]
pub struct DaemonClient {
    ctx: zmq::Context,
    endpoint: String,
    timeout: Duration,
    auth: Option<String>,
    server_key: Option<Key>,
    refusal: Option<String>,
    /// The daemon's pid file, when this client knows it (the extension's daemons).
    pid_file: Option<PathBuf>,
}

impl std::fmt::Debug for DaemonClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonClient")
            .field("endpoint", &self.endpoint)
            .field(
                "server_key",
                &self.server_key.as_ref().map(daemon_keys::z85_encode),
            )
            .finish_non_exhaustive()
    }
}

/// Granularity of waits, so that callers can check for interrupts.
const SLICE: Duration = Duration::from_millis(50);
/// How often a waiting call checks that the daemon is still alive, and how long a ping may take.
const LIVENESS_INTERVAL: Duration = Duration::from_millis(300);
const LIVENESS_TIMEOUT: Duration = Duration::from_millis(400);
/// How long a daemon may miss pings during a call before it is given up on, when its process
/// cannot be seen (a daemon on another host). A ping opens a connection and, on TCP, a CURVE
/// handshake: on a busy machine (or while another user floods the port) one can take longer
/// than its 400 ms although the daemon is working, and one missed ping made the caller abandon
/// a request the daemon went on computing.
const SILENCE: Duration = Duration::from_secs(2);
/// The same, for a daemon whose process is seen alive (its pid file): it is working or
/// starved of CPU, not gone.
pub const SILENCE_OF_A_LIVE_DAEMON: Duration = Duration::from_secs(30);

impl DaemonClient {
    /// A client of `endpoint` (`tcp://host:port` or `ipc:///path`) whose calls give up after
    /// `timeout`.
    pub fn new(endpoint: &str, timeout: Duration) -> Self {
        DaemonClient {
            ctx: zmq::Context::new(),
            endpoint: endpoint.to_string(),
            timeout,
            auth: None,
            server_key: None,
            refusal: None,
            pid_file: None,
        }
    }

    /// The same client, knowing where the daemon records its pid: a daemon whose process is
    /// alive is given [`SILENCE_OF_A_LIVE_DAEMON`] to answer a ping during a call, one whose
    /// process is gone (its file names no live daemon) is given up on at the first missed ping.
    pub fn with_pid_file(mut self, path: Option<PathBuf>) -> Self {
        self.pid_file = path;
        self
    }

    /// How long a daemon may miss pings during a call before it is given up on.
    fn allowed_silence(&self) -> Duration {
        match &self.pid_file {
            // Not started where this client looks (another host's, say): its process is unseen.
            Some(path) if !path.exists() => SILENCE,
            Some(path) if crate::daemon_pid::read(path).is_some() => SILENCE_OF_A_LIVE_DAEMON,
            // A file left by a daemon that died (kill -9 removes nothing).
            Some(_) => Duration::ZERO,
            None => SILENCE,
        }
    }

    /// The same client, sending `token` with every request (see `st daemon --token-file`);
    /// only to an `ipc://` socket or a daemon whose public key is pinned.
    pub fn with_auth(mut self, token: Option<String>) -> Self {
        self.auth = token;
        self
    }

    /// The same client, talking only to the daemon that holds the secret key of `key` (its
    /// CURVE public key): see `st daemon run --secret-key-file`.
    pub fn with_server_key(mut self, key: Option<Key>) -> Self {
        self.server_key = key;
        self
    }

    /// A client that sends nothing: every call fails with `why` (a daemon that cannot be
    /// authenticated is not used at all).
    pub fn refusing(mut self, why: impl Into<String>) -> Self {
        self.refusal = Some(why.into());
        self
    }

    /// Whether a listener could read what this client sends: no pinned key and not `ipc://`.
    fn in_clear(&self) -> bool {
        self.server_key.is_none() && !self.endpoint.starts_with("ipc://")
    }

    /// Why this client would send nothing, if it would not: it was made refusing, or it holds
    /// a token it would have to send in clear.
    pub fn check(&self) -> Result<()> {
        if let Some(why) = &self.refusal {
            return Err(Error::new(ErrorKind::Unavailable, why.clone()));
        }
        if self.auth.is_some() && self.in_clear() {
            return Err(Error::invalid(format!(
                "the daemon's token would cross {} in clear: pin the daemon's public key \
                 (--public-key-file or STEADYTEXT_DAEMON_PUBLIC_KEY_FILE; the daemon runs with \
                 --secret-key-file)",
                self.endpoint
            )));
        }
        Ok(())
    }

    /// A client configured from `STEADYTEXT_DAEMON_HOST`, `_PORT` and `_TIMEOUT_MS`.
    pub fn from_env() -> Self {
        let timeout = std::env::var("STEADYTEXT_DAEMON_TIMEOUT_MS")
            .ok()
            .and_then(|t| t.parse().ok())
            .map_or(Duration::from_secs(600), Duration::from_millis);
        Self::new(&endpoint_from_env(), timeout)
    }

    /// The daemon's public key, when pinned.
    pub fn server_key(&self) -> Option<&Key> {
        self.server_key.as_ref()
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn socket(&self) -> Result<zmq::Socket> {
        self.check()?;
        let socket = self.ctx.socket(zmq::REQ).map_err(zmq_error)?;
        socket.set_linger(0).map_err(zmq_error)?;
        if let Some(server_key) = &self.server_key {
            // ZeroMQ holds every message until the handshake proved the server's key.
            let mine = daemon_keys::KeyPair::generate()?;
            socket.set_curve_serverkey(server_key).map_err(zmq_error)?;
            socket
                .set_curve_publickey(&mine.public)
                .map_err(zmq_error)?;
            socket
                .set_curve_secretkey(&mine.secret)
                .map_err(zmq_error)?;
        }
        socket.connect(&self.endpoint).map_err(zmq_error)?;
        Ok(socket)
    }

    fn send(&self, socket: &zmq::Socket, method: &str, params: Value, id: &str) -> Result<()> {
        let message = Message {
            method: method.to_string(),
            params,
            id: id.to_string(),
            // The token goes only where it authorises something: `ping` and `cancel` need none.
            auth: self
                .auth
                .clone()
                .filter(|_| !matches!(method, "ping" | "cancel")),
            extended: true,
        };
        let bytes = serde_json::to_vec(&message).map_err(|e| Error::protocol(e.to_string()))?;
        socket.send(bytes, 0).map_err(zmq_error)
    }

    /// Whether a daemon answers `ping` within `within`: a bounded probe (a REQ socket never
    /// fails by itself when nothing listens).
    pub fn ping(&self, within: Duration) -> bool {
        let Ok(socket) = self.socket() else {
            return false;
        };
        if self.send(&socket, "ping", json!({}), &new_id()).is_err() {
            return false;
        }
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match socket.poll(zmq::POLLIN, left.as_millis() as i64) {
                Ok(n) if n > 0 => break,
                // Interrupted by a signal: keep waiting out the same deadline.
                Err(zmq::Error::EINTR) if !left.is_zero() => continue,
                _ => return false,
            }
        }
        socket
            .recv_bytes(zmq::DONTWAIT)
            .ok()
            .and_then(|b| serde_json::from_slice::<Response>(&b).ok())
            .is_some_and(|r| r.result == "pong")
    }

    /// Calls `method` and waits for its result and detail; `keep_waiting` runs between 50 ms
    /// slices, and returning false abandons the call (the daemon is told to cancel).
    pub fn call(
        &self,
        method: &str,
        params: Value,
        keep_waiting: &mut dyn FnMut() -> bool,
    ) -> Result<(Value, Option<Value>)> {
        let mut pending = self.start(method, params)?;
        loop {
            if let Some(response) = pending.wait_slice()? {
                pending.done = true;
                return response.into_result();
            }
            if !keep_waiting() {
                return Err(Error::cancelled());
            }
        }
    }

    fn start(&self, method: &str, params: Value) -> Result<Pending<'_>> {
        let id = new_id();
        let socket = self.socket()?;
        self.send(&socket, method, params, &id)?;
        Ok(Pending {
            client: self,
            socket,
            id,
            started: Instant::now(),
            last_probe: Instant::now(),
            last_pong: Instant::now(),
            done: false,
        })
    }

    /// Asks the daemon to stop request `id`; best effort, bounded.
    pub fn cancel(&self, id: &str) -> bool {
        let Ok(socket) = self.socket() else {
            return false;
        };
        if self
            .send(&socket, "cancel", json!({ "request_id": id }), &new_id())
            .is_err()
        {
            return false;
        }
        matches!(socket.poll(zmq::POLLIN, 1000), Ok(n) if n > 0)
    }
}

/// A request sent and not yet answered. Dropping it unanswered cancels it on the daemon.
struct Pending<'c> {
    client: &'c DaemonClient,
    socket: zmq::Socket,
    id: String,
    started: Instant,
    last_probe: Instant,
    /// When the daemon last answered a ping (or the request was sent).
    last_pong: Instant,
    done: bool,
}

impl Pending<'_> {
    /// Waits up to one slice for a message.
    fn wait_slice(&mut self) -> Result<Option<Response>> {
        // A signal (PostgreSQL's statement_timeout alarm, say) interrupts the poll: that is the
        // moment to let the caller decide whether to go on.
        match self.socket.poll(zmq::POLLIN, SLICE.as_millis() as i64) {
            Ok(n) if n > 0 => match self.socket.recv_bytes(zmq::DONTWAIT) {
                Ok(bytes) => {
                    let response = serde_json::from_slice::<Response>(&bytes).map_err(|e| {
                        Error::protocol(format!("the daemon sent a malformed reply: {e}"))
                    })?;
                    return Ok(Some(response));
                }
                Err(zmq::Error::EINTR | zmq::Error::EAGAIN) => {}
                Err(e) => return Err(zmq_error(e)),
            },
            Ok(_) | Err(zmq::Error::EINTR) => {}
            Err(e) => return Err(zmq_error(e)),
        }
        // A REQ socket waits forever for a daemon that died: the daemon answers pings while it
        // works, so pongs missing for longer than it may be silent mean it is gone.
        if self.last_probe.elapsed() >= LIVENESS_INTERVAL {
            if self.client.ping(LIVENESS_TIMEOUT) {
                self.last_pong = Instant::now();
            } else if self.last_pong.elapsed() >= self.client.allowed_silence() {
                self.done = true;
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "the st daemon at {} stopped answering during the request",
                        self.client.endpoint
                    ),
                ));
            }
            self.last_probe = Instant::now();
        }
        if self.started.elapsed() > self.client.timeout {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "the st daemon at {} did not answer within {:.1} s",
                    self.client.endpoint,
                    self.started.elapsed().as_secs_f64()
                ),
            ));
        }
        Ok(None)
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.client.cancel(&self.id);
        }
    }
}

impl DaemonClient {
    /// Starts `spec` in the daemon, which builds it (the way to send a caller's parameters
    /// unresolved, for a client that may not name model files).
    pub fn execute_spec(&self, spec: Spec, streaming: bool) -> Result<Box<dyn Execution + '_>> {
        let method = spec.method(streaming);
        let pending = self.start(method, spec.params())?;
        Ok(Box::new(DaemonExecution {
            pending,
            method,
            spec,
        }))
    }
}

impl Executor for DaemonClient {
    fn execute(&self, request: Request, streaming: bool) -> Result<Box<dyn Execution + '_>> {
        self.execute_spec(request.spec(), streaming)
    }
}

/// A request running in the daemon.
struct DaemonExecution<'a> {
    pending: Pending<'a>,
    method: &'static str,
    spec: Spec,
}

impl Execution for DaemonExecution<'_> {
    fn advance(&mut self) -> Result<Progress> {
        let Some(response) = self.pending.wait_slice()? else {
            return Ok(Progress::Working);
        };
        let (result, detail) = response
            .into_result()
            .inspect_err(|_| self.pending.done = true)?;
        if self.method == "generate_iter" {
            let Some(token) = result.get("token").and_then(Value::as_str) else {
                return Err(Error::protocol("a stream frame without a token"));
            };
            if token != protocol::STREAM_END {
                let piece = token.to_string();
                self.pending
                    .socket
                    .send(protocol::ACK, 0)
                    .map_err(zmq_error)?;
                return Ok(Progress::Piece(piece));
            }
            self.pending.done = true;
            let text = detail
                .as_ref()
                .and_then(|d| d.get("text"))
                .cloned()
                .ok_or_else(|| Error::protocol("the stream ended without its text"))?;
            return protocol::decode_text(text, detail).map(Progress::Done);
        }
        self.pending.done = true;
        let output = match (&self.spec, self.method) {
            (Spec::Generate(_), _) => protocol::decode_text(result, detail)?,
            (Spec::Embed(_), "embed") => {
                let v: Vec<f32> = serde_json::from_value(result)
                    .map_err(|e| Error::protocol(format!("the daemon answered embed with {e}")))?;
                Output::Embeddings(vec![v])
            }
            (Spec::Embed(_), _) => protocol::decode_embeddings(result)?,
            (Spec::Rerank(spec), _) => {
                let documents: Vec<String> = match &spec.documents {
                    Value::String(s) => vec![s.clone()],
                    other => serde_json::from_value(other.clone()).unwrap_or_default(),
                };
                protocol::decode_ranked(result, detail, &documents)?
            }
        };
        Ok(Progress::Done(output))
    }
}
