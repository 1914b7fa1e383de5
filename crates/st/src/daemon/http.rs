//! `st daemon --http HOST:PORT`: OpenAI's API and Prometheus metrics on the daemon.
//!
//! Every request becomes a [`Spec`] (in `steadytext::openai`) and goes to the same inference
//! thread, builders and frecency cache as the ZeroMQ clients', so an answer is the same bytes
//! whichever way it was asked. A request waits on a channel for its answer; a client that goes
//! away cancels its request (a dropped handler sets the task's cancel flag; a closed stream
//! fails the next piece).
//!
//! Who may do what: when the daemon has a token, every request must send it as
//! `Authorization: Bearer <token>` and is then authorised (may name model files by path);
//! without a token the listener must be on loopback, its clients may use registry models and
//! files in the models directory (like the daemon's TCP clients), and requests a web page could
//! make are refused (see [`admit`]).
//!
//! What a connection may hold: each peer (see `peers`) at most `--max-connections-per-peer`
//! connections, other peers together `--max-connections` (more are closed as soon as they are
//! accepted); a request's head must arrive within `--http-header-timeout-ms` of the connection
//! or of the previous response (so an idle keep-alive connection is closed then too), and its
//! body within `--http-body-timeout-ms` of its head.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use steadytext::execute::Output;
use steadytext::openai::{self, ChatRequest, CompletionRequest, EmbeddingsRequest};
use steadytext::request::Spec;
use steadytext::{Error, ErrorKind};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_stream::StreamExt;

use super::inference::{Event, Inference, Reply, Submitter, Task};
use super::metrics::Metrics;
use super::peers::{self, Budget, Limits, Peer};

/// The HTTP listener's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub bind: SocketAddr,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// How long a request's head may take, from the connection or the previous response.
    pub header_timeout: Duration,
    /// How long a request's body may take, from its head.
    pub body_timeout: Duration,
    /// The connections other peers may hold.
    pub connections: Limits,
}

/// What every handler shares.
#[derive(Clone)]
struct App {
    submitter: Submitter,
    inference: Arc<Inference>,
    metrics: Arc<Metrics>,
    token: Option<Arc<str>>,
    next_id: Arc<AtomicU64>,
    max_body_bytes: usize,
    body_timeout: Duration,
}

/// Binds the listener now (so a taken port is an error at start), to be served by [`serve`].
pub fn bind(config: &Config, token: Option<&str>) -> Result<std::net::TcpListener> {
    if token.is_none() && !config.bind.ip().is_loopback() {
        bail!(
            "--http {} is not a loopback address: give the daemon a token (--token-file), which \
             HTTP clients then send as a bearer token",
            config.bind
        );
    }
    let listener = std::net::TcpListener::bind(config.bind)
        .with_context(|| format!("cannot listen on {} (--http)", config.bind))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves until `stop` is notified, then gives open requests two seconds.
pub fn serve(
    listener: std::net::TcpListener,
    config: &Config,
    token: Option<String>,
    submitter: Submitter,
    inference: Arc<Inference>,
    metrics: Arc<Metrics>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("http")
        .enable_io()
        .enable_time()
        .build()?;
    let app = App {
        submitter,
        inference,
        metrics,
        token: token.map(Arc::from),
        next_id: Arc::new(AtomicU64::new(1)),
        max_body_bytes: config.max_body_bytes,
        body_timeout: config.body_timeout,
    };
    let router = Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        // Runs before any body is read: a client without the token costs a header parse.
        .layer(middleware::from_fn_with_state(app.clone(), admit))
        .with_state(app);
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(config.header_timeout);
    let budget = Arc::new(Mutex::new(Budget::new(config.connections)));
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let mut connections = tokio::task::JoinSet::new();
        let mut stopping = stop.clone();
        loop {
            let (stream, remote) = tokio::select! {
                _ = stopping.wait_for(|s| *s) => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors, say: the listener stays, the loop does not spin.
                        tracing::warn!("the HTTP listener cannot accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            while connections.try_join_next().is_some() {}
            let Ok(local) = stream.local_addr() else {
                continue;
            };
            let peer = peers::identify(local, remote);
            if !budget.lock().unwrap().admit(peer) {
                // Over the peer's budget: closed at once (dropped unread).
                continue;
            }
            let held = Held(budget.clone(), peer);
            let service = hyper_util::service::TowerToHyperService::new(router.clone());
            let connection = http1.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let mut stop = stop.clone();
            connections.spawn(async move {
                let _held = held;
                let mut connection = std::pin::pin!(connection);
                tokio::select! {
                    _ = connection.as_mut() => {}
                    _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                        connection.as_mut().graceful_shutdown();
                        let _ = connection.await;
                    }
                }
            });
        }
        // Open requests get two seconds; a stream whose client stopped reading does not hold
        // the daemon up (its task is cancelled when the runtime drops it).
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        Ok::<_, std::io::Error>(())
    })?;
    runtime.shutdown_timeout(Duration::ZERO);
    Ok(())
}

/// A connection counted against its peer, uncounted when the connection ends.
struct Held(Arc<Mutex<Budget>>, Peer);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.lock().unwrap().release(self.1);
    }
}

/// Whether a request may go on, before its body is read. With a token: only with
/// `Authorization: Bearer <token>` (then it is authorised). Without one the listener is on
/// loopback, where a web page in a local browser could still post to it: bodies must be JSON
/// (a page cannot send that without a CORS preflight, which is never answered) and the Host
/// must be a loopback address (no DNS rebinding).
async fn admit(State(app): State<App>, mut request: Request, next: Next) -> Response {
    let headers = request.headers();
    let trusted = match &app.token {
        Some(token) => {
            let sent = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if !super::server::same_token(sent, Some(token)) {
                app.metrics.count("http", "any", "unauthorized");
                return Unauthorized.into_response();
            }
            true
        }
        None => {
            if let Err(e) = local_json(headers, request.method() == axum::http::Method::POST) {
                app.metrics.count("http", "any", "forbidden");
                return e.into_response();
            }
            false
        }
    };
    request.extensions_mut().insert(Trusted(trusted));
    // The whole body, within its time and size, before any handler sees the request.
    let (parts, body) = request.into_parts();
    let body =
        match tokio::time::timeout(app.body_timeout, read_body(body, app.max_body_bytes)).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(refusal)) => return refusal,
            Err(_) => {
                app.metrics.count("http", "any", "timeout");
                let body = json!({ "error": { "message": "the request body did not arrive in time",
                "type": "invalid_request_error", "param": null, "code": "timeout" }});
                return (StatusCode::REQUEST_TIMEOUT, Json(body)).into_response();
            }
        };
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// A request's body, at most `limit` bytes.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, Response> {
    let refuse = |status: StatusCode, message: String| {
        let body = json!({ "error": { "message": message, "type": "invalid_request_error",
            "param": null, "code": null }});
        (status, Json(body)).into_response()
    };
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            refuse(
                StatusCode::BAD_REQUEST,
                format!("the request body could not be read: {e}"),
            )
        })?;
        if bytes.len() + chunk.len() > limit {
            return Err(refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than {limit} bytes"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(bytes))
}

/// Refuses what a browser could send to a loopback listener without a token.
fn local_json(headers: &HeaderMap, post: bool) -> Result<(), (StatusCode, Json<Value>)> {
    let refuse = |status: StatusCode, message: &str| {
        let body = json!({ "error": { "message": message, "type": "invalid_request_error",
            "param": null, "code": "forbidden" }});
        Err((status, Json(body)))
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !loopback_host(host) {
        return refuse(
            StatusCode::FORBIDDEN,
            "this daemon has no token: it answers requests for a loopback host only",
        );
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if post && !json {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON (Content-Type: application/json)",
        );
    }
    Ok(())
}

/// Whether a `Host` header names this machine's loopback exactly: `localhost` (in any case),
/// `127.0.0.1` or `[::1]`, each with an optional `:port` (1 to 5 digits, at most 65535).
/// Nothing else: a name that merely starts with `127.` is a DNS name an attacker may own and
/// point at 127.0.0.1 (DNS rebinding); userinfo, a trailing dot, other spellings of the
/// addresses and an empty Host are refused too.
fn loopback_host(host: &str) -> bool {
    let (name, port) = match host.strip_prefix('[') {
        // An IPv6 literal: the port, if any, follows its closing bracket.
        Some(_) => match host.find(']') {
            Some(end) => (&host[..=end], &host[end + 1..]),
            None => return false,
        },
        // A name or an IPv4 address has no colon of its own.
        None => match host.find(':') {
            Some(colon) => (&host[..colon], &host[colon..]),
            None => (host, ""),
        },
    };
    let port_ok = port.is_empty()
        || port.strip_prefix(':').is_some_and(|digits| {
            (1..=5).contains(&digits.len())
                && digits.bytes().all(|b| b.is_ascii_digit())
                && digits.parse::<u16>().is_ok()
        });
    port_ok && (name == "127.0.0.1" || name == "[::1]" || name.eq_ignore_ascii_case("localhost"))
}

/// Whether the request came with the daemon's token (set by [`admit`]).
#[derive(Clone, Copy)]
struct Trusted(bool);

/// An error answered in OpenAI's shape.
struct ApiError(Error);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = openai::error_body(&self.0);
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(body)).into_response()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl App {
    /// Reads a JSON body, refusing it in OpenAI's shape.
    fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
        serde_json::from_slice(body).map_err(|e| {
            ApiError(Error::invalid(format!(
                "the request body is not valid: {e}"
            )))
        })
    }

    /// Hands a spec to the inference thread; the receiver gets its pieces and its end. The
    /// returned guard cancels the task when dropped before the end.
    fn start(
        &self,
        method: &'static str,
        spec: Spec,
        trusted: bool,
    ) -> Result<(UnboundedReceiver<Event>, CancelOnDrop), ApiError> {
        let (tx, rx) = unbounded_channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let task = Task {
            reply: Reply::Http(tx),
            id: format!("http-{}", self.next_id.fetch_add(1, Ordering::Relaxed)),
            method: method.to_string(),
            spec,
            trusted,
            cancel: cancel.clone(),
        };
        self.submitter.submit(task).map_err(|e| {
            self.metrics.count("http", method, e.kind().as_str());
            ApiError(e)
        })?;
        Ok((rx, CancelOnDrop(cancel)))
    }

    /// Runs a spec to its end.
    async fn run(
        &self,
        method: &'static str,
        spec: Spec,
        trusted: bool,
    ) -> Result<Output, ApiError> {
        let (mut rx, guard) = self.start(method, spec, trusted)?;
        while let Some(event) = rx.recv().await {
            if let Event::Done(result) = event {
                guard.disarm();
                return result.map_err(ApiError);
            }
        }
        Err(ApiError(Error::new(
            ErrorKind::Unavailable,
            "the daemon's inference thread stopped before answering",
        )))
    }
}

/// A request without the daemon's token.
struct Unauthorized;

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        let body = json!({ "error": {
            "message": "this daemon needs its token: send Authorization: Bearer <token>",
            "type": "invalid_request_error",
            "param": null,
            "code": "invalid_api_key",
        }});
        (StatusCode::UNAUTHORIZED, Json(body)).into_response()
    }
}

/// Cancels its task when dropped (the client went away) unless disarmed.
struct CancelOnDrop(Arc<AtomicBool>);

impl CancelOnDrop {
    fn disarm(self) {
        std::mem::forget(self);
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn not_found() -> Response {
    let body = json!({ "error": {
        "message": "no such endpoint: /v1/models, /v1/chat/completions, /v1/completions, \
                    /v1/embeddings and /metrics are served",
        "type": "invalid_request_error",
        "param": null,
        "code": "not_found",
    }});
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

async fn models(State(app): State<App>) -> Response {
    let mut ids = vec![openai::DEFAULT_MODEL.to_string()];
    ids.extend(
        steadytext::registry::REGISTRY
            .iter()
            .map(|m| m.name.to_string()),
    );
    ids.extend(
        steadytext::Engine::global()
            .loaded()
            .iter()
            .filter_map(|m| m.path().file_name())
            .map(|f| f.to_string_lossy().into_owned()),
    );
    let data: Vec<Value> = ids
        .iter()
        .map(|id| json!({ "id": id, "object": "model", "created": 0, "owned_by": "steadytext" }))
        .collect();
    app.metrics.count("http", "models", "ok");
    Json(json!({ "object": "list", "data": data })).into_response()
}

async fn metrics_text(State(app): State<App>) -> Response {
    app.metrics.queued.set(app.submitter.queued() as i64);
    let text = app.metrics.render(
        &app.inference.cache_counts(),
        steadytext::Engine::global().loaded().len(),
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Chat and text completions differ only in their objects' shapes.
#[derive(Clone, Copy)]
enum Flavour {
    Chat,
    Text,
}

impl Flavour {
    fn object(self, streaming: bool) -> &'static str {
        match (self, streaming) {
            (Flavour::Chat, false) => "chat.completion",
            (Flavour::Chat, true) => "chat.completion.chunk",
            (Flavour::Text, _) => "text_completion",
        }
    }

    fn id_prefix(self) -> &'static str {
        match self {
            Flavour::Chat => "chatcmpl",
            Flavour::Text => "cmpl",
        }
    }

    /// A choice carrying `text` (a whole answer, or a stream's delta).
    fn choice(self, text: Option<&str>, finish: Option<&str>, streaming: bool) -> Value {
        match (self, streaming) {
            (Flavour::Chat, false) => json!({
                "index": 0,
                "message": { "role": "assistant", "content": text },
                "finish_reason": finish,
                "logprobs": null,
            }),
            (Flavour::Chat, true) => json!({
                "index": 0,
                "delta": text.map_or_else(|| json!({}), |t| json!({ "content": t })),
                "finish_reason": finish,
                "logprobs": null,
            }),
            (Flavour::Text, _) => json!({
                "index": 0,
                "text": text.unwrap_or(""),
                "finish_reason": finish,
                "logprobs": null,
            }),
        }
    }
}

async fn chat(
    State(app): State<App>,
    Extension(Trusted(trusted)): Extension<Trusted>,
    body: Bytes,
) -> Response {
    let parsed = App::parse::<ChatRequest>(&body).and_then(|r| Ok((r.spec()?, r.sampling.stream)));
    complete(app, trusted, parsed, Flavour::Chat).await
}

async fn completions(
    State(app): State<App>,
    Extension(Trusted(trusted)): Extension<Trusted>,
    body: Bytes,
) -> Response {
    let parsed =
        App::parse::<CompletionRequest>(&body).and_then(|r| Ok((r.spec()?, r.sampling.stream)));
    complete(app, trusted, parsed, Flavour::Text).await
}

async fn complete(
    app: App,
    trusted: bool,
    parsed: Result<(steadytext::request::GenerateSpec, bool), ApiError>,
    flavour: Flavour,
) -> Response {
    let (spec, streaming) = match parsed {
        Ok(p) => p,
        Err(e) => {
            app.metrics.count("http", "generate", e.0.kind().as_str());
            return e.into_response();
        }
    };
    let model = spec
        .model
        .clone()
        .unwrap_or_else(|| openai::DEFAULT_MODEL.into());
    let budget = spec
        .max_new_tokens
        .unwrap_or(steadytext::defaults::MAX_NEW_TOKENS);
    let id = format!(
        "{}-{}",
        flavour.id_prefix(),
        app.next_id.fetch_add(1, Ordering::Relaxed)
    );
    if streaming {
        return match app.start("generate_iter", Spec::Generate(spec), trusted) {
            Ok((rx, guard)) => stream(rx, guard, flavour, id, model, budget).into_response(),
            Err(e) => e.into_response(),
        };
    }
    match app.run("generate", Spec::Generate(spec), trusted).await {
        Ok(Output::Text { text, summary }) => Json(json!({
            "id": id,
            "object": flavour.object(false),
            "created": now(),
            "model": model,
            "system_fingerprint": steadytext::build_info::fingerprint(),
            "choices": [flavour.choice(Some(&text), Some(openai::finish_reason(&summary, budget)), false)],
            "usage": openai::usage(&summary),
        }))
        .into_response(),
        Ok(_) => ApiError(Error::protocol("the engine did not answer with text")).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Server-sent events: a first chunk (the assistant's role, for chat), one chunk per piece, a
/// last chunk with the finish reason and usage, then `[DONE]`. An error after the start is sent
/// as an `error` object, as OpenAI does.
fn stream(
    mut rx: UnboundedReceiver<Event>,
    guard: CancelOnDrop,
    flavour: Flavour,
    id: String,
    model: String,
    budget: usize,
) -> Sse<UnboundedReceiverStream<Result<SseEvent, std::convert::Infallible>>> {
    let (tx, events) = unbounded_channel();
    let created = now();
    let fingerprint = steadytext::build_info::fingerprint();
    let chunk = move |choice: Value, usage: Option<Value>| {
        let mut body = json!({
            "id": id,
            "object": flavour.object(true),
            "created": created,
            "model": model,
            "system_fingerprint": fingerprint,
            "choices": [choice],
        });
        if let Some(usage) = usage {
            body["usage"] = usage;
        }
        Ok(SseEvent::default().data(body.to_string()))
    };
    tokio::spawn(async move {
        // Held until the end: dropped early (the client went away) it cancels the task.
        let guard = guard;
        if let Flavour::Chat = flavour {
            let role = json!({ "index": 0, "delta": { "role": "assistant", "content": "" },
                "finish_reason": null, "logprobs": null });
            let _ = tx.send(chunk(role, None));
        }
        while let Some(event) = rx.recv().await {
            let sent = match event {
                Event::Piece(piece) => {
                    tx.send(chunk(flavour.choice(Some(&piece), None, true), None))
                }
                Event::Done(Ok(Output::Text { summary, .. })) => {
                    let finish = openai::finish_reason(&summary, budget);
                    let last = flavour.choice(None, Some(finish), true);
                    let _ = tx.send(chunk(last, Some(openai::usage(&summary))));
                    let _ = tx.send(Ok(SseEvent::default().data("[DONE]")));
                    guard.disarm();
                    return;
                }
                Event::Done(result) => {
                    let error = result
                        .err()
                        .unwrap_or_else(|| Error::protocol("the engine did not answer with text"));
                    let (_, body) = openai::error_body(&error);
                    let _ = tx.send(Ok(SseEvent::default().data(body.to_string())));
                    guard.disarm();
                    return;
                }
            };
            if sent.is_err() {
                return; // the client went away: the guard cancels the task
            }
        }
    });
    Sse::new(UnboundedReceiverStream::new(events))
}

async fn embeddings(
    State(app): State<App>,
    Extension(Trusted(trusted)): Extension<Trusted>,
    body: Bytes,
) -> Response {
    let parsed = App::parse::<EmbeddingsRequest>(&body).and_then(|r| Ok((r.spec()?, r)));
    let (spec, request) = match parsed {
        Ok(p) => p,
        Err(e) => {
            app.metrics
                .count("http", "embed_batch", e.0.kind().as_str());
            return e.into_response();
        }
    };
    let base64 = request.encoding_format.as_deref() == Some("base64");
    let vectors = match app.run("embed_batch", Spec::Embed(spec), trusted).await {
        Ok(Output::Embeddings(v)) => v,
        Ok(_) => {
            return ApiError(Error::protocol("the engine did not answer with vectors"))
                .into_response()
        }
        Err(e) => return e.into_response(),
    };
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let embedding = if base64 {
                json!(openai::base64_vector(v))
            } else {
                json!(v)
            };
            json!({ "object": "embedding", "index": index, "embedding": embedding })
        })
        .collect();
    Json(json!({
        "object": "list",
        "data": data,
        "model": request.model.unwrap_or_else(|| openai::DEFAULT_MODEL.into()),
        "usage": { "prompt_tokens": 0, "total_tokens": 0 },
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generated Host values around the three loopback names: every prefix, suffix, userinfo,
    /// port form, case and spelling of the addresses is refused unless it is one of the names
    /// exactly, with a valid port or none.
    #[test]
    fn only_exact_loopback_hosts_pass() {
        // (name, whether it is a loopback name)
        let names = [
            ("localhost", true),
            ("LOCALHOST", true),
            ("LocalHost", true),
            ("127.0.0.1", true),
            ("[::1]", true),
            ("127.0.0.2", false),
            ("127.1", false),
            ("127.000.000.001", false),
            ("2130706433", false),
            ("0x7f000001", false),
            ("0.0.0.0", false),
            ("127.attacker.com", false),
            ("127.0.0.1.attacker.com", false),
            ("localhost.attacker.com", false),
            ("attacker.com", false),
            ("localhost.", false),
            ("127.0.0.1.", false),
            ("[::1].", false),
            ("localhostx", false),
            ("localhos", false),
            ("[0:0:0:0:0:0:0:1]", false),
            ("[::ffff:127.0.0.1]", false),
            ("[::ffff:7f00:1]", false),
            ("[::1%lo]", false),
            ("[::1%25lo]", false),
            ("[::01]", false),
            ("::1", false),
            ("[::1", false),
            ("::1]", false),
            ("[[::1]]", false),
            ("[localhost]", false),
            ("[127.0.0.1]", false),
            ("", false),
        ];
        let prefixes = [
            "",
            "127.",
            "x",
            "x.",
            ".",
            "-",
            "user@",
            "localhost@",
            "127.0.0.1@",
            "[::1]@",
            " ",
            "\t",
            "*.",
            "%20",
        ];
        let suffixes = [
            "",
            ".",
            "..",
            ".attacker.com",
            "x",
            "@attacker.com",
            " ",
            "\t",
            "%00",
            "/",
            "/x",
            "?",
            "#",
            "\\",
            ";",
            ",localhost",
        ];
        // (port part, whether it is a valid port)
        let ports = [
            ("", true),
            (":80", true),
            (":8080", true),
            (":1", true),
            (":65535", true),
            (":00080", true),
            (":", false),
            (":65536", false),
            (":99999", false),
            (":123456", false),
            (":+80", false),
            (":-1", false),
            (": 80", false),
            (":80 ", false),
            (":0x50", false),
            (":８０", false),
            (":80:80", false),
            ("::80", false),
            (":80.", false),
            (":80@attacker.com", false),
        ];
        let (mut tried, mut passed) = (0, 0);
        for (name, loopback) in names {
            for prefix in prefixes {
                for suffix in suffixes {
                    for (port, port_ok) in ports {
                        let host = format!("{prefix}{name}{suffix}{port}");
                        let expected =
                            loopback && prefix.is_empty() && suffix.is_empty() && port_ok;
                        assert_eq!(loopback_host(&host), expected, "Host: {host:?}");
                        tried += 1;
                        passed += usize::from(expected);
                    }
                }
            }
        }
        // The port placed before the suffix too (`localhost:80.attacker.com`).
        for (name, _) in names {
            for suffix in suffixes.iter().filter(|s| !s.is_empty()) {
                let host = format!("{name}:80{suffix}");
                assert!(!loopback_host(&host), "Host: {host:?}");
                tried += 1;
            }
        }
        assert_eq!(passed, 5 * 6, "five names with six valid port forms");
        eprintln!("{tried} Host values checked, {passed} accepted");
    }

    /// The header as requests carry it: a loopback name passes the check, the one of the report
    /// (`Host: 127.attacker.com`) and a missing Host do not.
    #[test]
    fn the_host_header_decides() {
        let with_host = |host: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(host) = host {
                headers.insert(header::HOST, host.parse().unwrap());
            }
            local_json(&headers, false).is_ok()
        };
        assert!(with_host(Some("127.0.0.1:8080")));
        assert!(with_host(Some("[::1]")));
        assert!(!with_host(Some("127.attacker.com")));
        assert!(!with_host(Some("127.attacker.com:8080")));
        assert!(!with_host(None));
    }
}
