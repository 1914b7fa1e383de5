//! A client of the daemon. Every call opens its own REQ socket (so a client is safe to share
//! between threads and a timed-out call never leaves a socket in a bad state), waits in short
//! slices so the caller can be interrupted, and asks the daemon to stop work it abandons.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::protocol::{self, Request, Response};

/// Why a daemon call failed.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Nothing answered a probe: no daemon at that endpoint.
    #[error("no st daemon answers at {0}")]
    Unreachable(String),
    /// The daemon did not answer in time.
    #[error("the st daemon at {endpoint} did not answer within {seconds:.1} s")]
    Timeout {
        /// Endpoint.
        endpoint: String,
        /// How long we waited.
        seconds: f64,
    },
    /// The daemon answered with an error.
    #[error("{0}")]
    Remote(String),
    /// ZeroMQ or JSON trouble.
    #[error("daemon protocol error: {0}")]
    Protocol(String),
}

impl DaemonError {
    /// Whether the daemon rejected the request itself (retrying cannot help), as opposed to
    /// not answering.
    pub fn is_permanent(&self) -> bool {
        // The daemon reports library errors as text; a prompt that does not fit is the one a
        // caller can trigger with valid-looking arguments.
        matches!(self, DaemonError::Remote(m)
            if m.starts_with("prompt has") || m.starts_with("the constrained output"))
    }
}

impl From<zmq::Error> for DaemonError {
    fn from(e: zmq::Error) -> Self {
        DaemonError::Protocol(e.to_string())
    }
}

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

/// Called between waits; return `false` to abandon the call (the daemon is told to cancel).
pub type KeepWaiting<'a> = &'a mut dyn FnMut() -> bool;

/// A daemon client.
#[derive(Clone)]
pub struct DaemonClient {
    ctx: zmq::Context,
    endpoint: String,
    timeout: Duration,
}

impl std::fmt::Debug for DaemonClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonClient")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

/// Granularity of waits, so that callers can check for interrupts.
const SLICE: Duration = Duration::from_millis(50);
/// How often a waiting call checks that the daemon is still alive, and how long a ping may take.
const LIVENESS_INTERVAL: Duration = Duration::from_millis(300);
const LIVENESS_TIMEOUT: Duration = Duration::from_millis(400);

impl DaemonClient {
    /// A client of `endpoint` whose calls give up after `timeout`.
    pub fn new(endpoint: &str, timeout: Duration) -> Self {
        DaemonClient {
            ctx: zmq::Context::new(),
            endpoint: endpoint.to_string(),
            timeout,
        }
    }

    /// A client configured from `STEADYTEXT_DAEMON_HOST`, `_PORT` and `_TIMEOUT_MS`.
    pub fn from_env() -> Self {
        let timeout = std::env::var("STEADYTEXT_DAEMON_TIMEOUT_MS")
            .ok()
            .and_then(|t| t.parse().ok())
            .map_or(Duration::from_secs(600), Duration::from_millis);
        Self::new(&endpoint_from_env(), timeout)
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn socket(&self) -> Result<zmq::Socket, DaemonError> {
        let socket = self.ctx.socket(zmq::REQ)?;
        socket.set_linger(0)?;
        socket.connect(&self.endpoint)?;
        Ok(socket)
    }

    /// Whether a daemon answers `ping` within `within`: a bounded probe (a REQ socket never
    /// fails by itself when nothing listens).
    pub fn ping(&self, within: Duration) -> bool {
        let Ok(socket) = self.socket() else {
            return false;
        };
        let request = json!({ "method": "ping", "params": {}, "id": new_id() });
        if socket.send(request.to_string().as_bytes(), 0).is_err() {
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

    /// Calls `method` and waits for its result; `keep_waiting` runs between 50 ms slices.
    pub fn call(
        &self,
        method: &str,
        params: Value,
        keep_waiting: KeepWaiting<'_>,
    ) -> Result<Value, DaemonError> {
        let id = new_id();
        let socket = self.socket()?;
        send(&socket, method, params, &id)?;
        let mut guard = CancelGuard {
            client: self,
            id: &id,
            armed: true,
        };
        let reply = self.wait(&socket, keep_waiting)?;
        guard.armed = false;
        into_result(&reply)
    }

    /// Waits for one message, in slices; on timeout or when told to stop, the guard of the
    /// caller cancels the request.
    fn wait(
        &self,
        socket: &zmq::Socket,
        keep_waiting: KeepWaiting<'_>,
    ) -> Result<Vec<u8>, DaemonError> {
        let start = Instant::now();
        let mut last_probe = Instant::now();
        loop {
            // A signal (PostgreSQL's statement_timeout alarm, say) interrupts the poll: that is
            // the moment to ask the caller whether to go on.
            match socket.poll(zmq::POLLIN, SLICE.as_millis() as i64) {
                Ok(n) if n > 0 => match socket.recv_bytes(zmq::DONTWAIT) {
                    Ok(bytes) => return Ok(bytes),
                    Err(zmq::Error::EINTR | zmq::Error::EAGAIN) => {}
                    Err(e) => return Err(e.into()),
                },
                Ok(_) | Err(zmq::Error::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            if !keep_waiting() {
                return Err(DaemonError::Remote("cancelled".into()));
            }
            // A REQ socket waits forever for a daemon that died: the daemon answers pings while
            // it works, so a missing pong means it is gone.
            if last_probe.elapsed() >= LIVENESS_INTERVAL {
                if !self.ping(LIVENESS_TIMEOUT) {
                    return Err(DaemonError::Unreachable(self.endpoint.clone()));
                }
                last_probe = Instant::now();
            }
            if start.elapsed() > self.timeout {
                return Err(DaemonError::Timeout {
                    endpoint: self.endpoint.clone(),
                    seconds: start.elapsed().as_secs_f64(),
                });
            }
        }
    }

    /// Starts a streamed generation.
    pub fn generate_iter(&self, params: Value) -> Result<DaemonStream<'_>, DaemonError> {
        let id = new_id();
        let socket = self.socket()?;
        send(&socket, "generate_iter", params, &id)?;
        Ok(DaemonStream {
            client: self,
            socket,
            id,
            done: false,
        })
    }

    /// Asks the daemon to stop request `id`; best effort, bounded.
    pub fn cancel(&self, id: &str) -> bool {
        let Ok(socket) = self.socket() else {
            return false;
        };
        if send(&socket, "cancel", json!({ "request_id": id }), &new_id()).is_err() {
            return false;
        }
        matches!(socket.poll(zmq::POLLIN, 1000), Ok(n) if n > 0)
    }
}

fn send(socket: &zmq::Socket, method: &str, params: Value, id: &str) -> Result<(), DaemonError> {
    let request = Request {
        method: method.to_string(),
        params,
        id: id.to_string(),
    };
    let bytes = serde_json::to_vec(&request).map_err(|e| DaemonError::Protocol(e.to_string()))?;
    socket.send(bytes, 0)?;
    Ok(())
}

fn into_result(reply: &[u8]) -> Result<Value, DaemonError> {
    let response: Response = serde_json::from_slice(reply)
        .map_err(|e| DaemonError::Protocol(format!("bad response: {e}")))?;
    match response.error {
        Some(error) => Err(DaemonError::Remote(error)),
        None => Ok(response.result),
    }
}

/// Cancels a request on the daemon when its caller stops waiting early (an error, a timeout, or
/// an unwinding interrupt).
struct CancelGuard<'a> {
    client: &'a DaemonClient,
    id: &'a str,
    armed: bool,
}

impl Drop for CancelGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.client.cancel(self.id);
        }
    }
}

/// A streamed generation from the daemon: yields pieces, acknowledging each.
pub struct DaemonStream<'c> {
    client: &'c DaemonClient,
    socket: zmq::Socket,
    id: String,
    done: bool,
}

impl DaemonStream<'_> {
    /// The request id (for `cancel`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The next piece; `Ok(None)` at the end. `keep_waiting` runs between 50 ms slices.
    pub fn next_piece(
        &mut self,
        keep_waiting: KeepWaiting<'_>,
    ) -> Result<Option<String>, DaemonError> {
        if self.done {
            return Ok(None);
        }
        let reply = match self.client.wait(&self.socket, keep_waiting) {
            Ok(reply) => reply,
            Err(e) => {
                self.done = true;
                self.client.cancel(&self.id);
                return Err(e);
            }
        };
        let result = into_result(&reply).inspect_err(|_| self.done = true)?;
        let token = result
            .get("token")
            .and_then(Value::as_str)
            .ok_or_else(|| DaemonError::Protocol("stream frame without a token".into()))?;
        if token == protocol::STREAM_END {
            self.done = true;
            return Ok(None);
        }
        let piece = token.to_string();
        self.socket.send(protocol::ACK, 0)?;
        Ok(Some(piece))
    }
}

impl Drop for DaemonStream<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.client.cancel(&self.id);
        }
    }
}
