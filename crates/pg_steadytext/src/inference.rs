//! Where inference runs: in the st daemon (one model owner for every connection) when it can be
//! reached, else in the backend when `steadytext.inprocess_fallback` allows. Both paths give the
//! same bytes. Models are resolved here, from the call's arguments or the `steadytext.*` settings,
//! to a file whose sha256 keys the cache; the daemon is sent that file's path, so both sides use
//! the same model whatever their environments.
//!
//! In the backend the engine runs on one thread: ggml then starts no threads of its own, so
//! PostgreSQL's signal handling is untouched. Waits on the daemon are sliced so interrupts are
//! checked every 50 ms; an interrupted call tells the daemon to cancel the work.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pgrx::prelude::*;
use serde_json::{json, Value};
use steadytext::client::{self, DaemonClient, DaemonError, DaemonStream};
use steadytext::registry::{self, ModelChoice, Role};
use steadytext::store::{self, Fetch};
use steadytext::{Constraint, EmbedMode, Engine, GenerateParams, Model, TokenStream};

use crate::errors::{raise_library, raise_with};
use crate::{config, guc};

/// llama.cpp threads per in-backend request. The output does not depend on it.
pub const THREADS: i32 = 1;

/// A call's model arguments (all optional).
#[derive(Debug, Default, Clone)]
pub struct ModelArgs {
    pub model: Option<String>,
    pub model_repo: Option<String>,
    pub model_filename: Option<String>,
    pub size: Option<String>,
}

impl ModelArgs {
    fn is_empty(&self) -> bool {
        self.model.is_none()
            && self.model_repo.is_none()
            && self.model_filename.is_none()
            && self.size.is_none()
    }
}

/// A model file, located but not necessarily loaded here.
#[derive(Debug, Clone)]
pub struct ModelFile {
    pub path: PathBuf,
    pub role: Role,
    n_ctx: Option<u32>,
}

impl ModelFile {
    /// The file's sha256 (computed once per file version).
    pub fn sha256(&self) -> steadytext::Result<String> {
        store::sha256_of(&self.path)
    }

    /// The file name, for the cache's `model_name` column.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map_or_else(String::new, |f| f.to_string_lossy().into_owned())
    }

    /// The model loaded into this backend.
    fn load(&self) -> steadytext::Result<&'static Model> {
        Engine::global().load(&self.path, self.role, self.n_ctx)
    }
}

fn locate(choice: &ModelChoice, role: Role) -> steadytext::Result<ModelFile> {
    store::set_models_dir(guc::string(&guc::MODELS_DIR).map(PathBuf::from));
    let fetch = if guc::ALLOW_MODEL_DOWNLOADS.get() {
        Fetch::IfAllowed
    } else {
        Fetch::LocalOnly
    };
    let source = registry::resolve(choice, role);
    let path = store::locate(&source, role, fetch)?;
    Ok(ModelFile {
        path,
        role,
        n_ctx: source.registry_n_ctx(),
    })
}

fn choice(args: &ModelArgs, setting: Option<String>) -> ModelChoice {
    if args.is_empty() {
        return ModelChoice {
            model: setting,
            ..Default::default()
        };
    }
    ModelChoice {
        model: args.model.clone(),
        repo: args.model_repo.clone(),
        filename: args.model_filename.clone(),
        size: args.size.clone(),
    }
}

/// The generation model file for a call.
pub fn generation_model(args: &ModelArgs) -> steadytext::Result<ModelFile> {
    locate(
        &choice(args, guc::string(&guc::GENERATION_MODEL)),
        Role::Generation,
    )
}

/// The reranking model file for a call (`model`, else `steadytext.reranking_model`, else the
/// default).
pub fn reranking_model(model: Option<&str>) -> steadytext::Result<ModelFile> {
    let args = ModelArgs {
        model: model.map(str::to_string),
        ..Default::default()
    };
    locate(
        &choice(&args, guc::string(&guc::RERANKING_MODEL)),
        Role::Reranking,
    )
}

/// The embedding model file for a call.
pub fn embedding_model(model: Option<&str>) -> steadytext::Result<ModelFile> {
    let args = ModelArgs {
        model: model.map(str::to_string),
        ..Default::default()
    };
    locate(
        &choice(&args, guc::string(&guc::EMBEDDING_MODEL)),
        Role::Embedding,
    )
}

// ---------------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------------

/// Where a call's inference runs.
#[derive(Clone, Copy)]
pub enum Route {
    /// The st daemon.
    Daemon(&'static DaemonClient),
    /// This backend.
    InProcess,
}

thread_local! {
    /// When the daemon last failed to answer: a dead daemon costs one probe, not one per call.
    static LAST_FAILURE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// When this backend last tried to start the daemon.
    static LAST_START: Cell<Option<Instant>> = const { Cell::new(None) };
}

const FAILURE_MEMORY: Duration = Duration::from_secs(2);
const START_INTERVAL: Duration = Duration::from_secs(10);
const PROBE: Duration = Duration::from_millis(150);

/// The daemon's host and port: the settings, else the config rows, else SteadyText's defaults.
pub fn daemon_address() -> (String, u16) {
    let host = guc::string(&guc::DAEMON_HOST)
        .or_else(|| config::text("daemon_host"))
        .unwrap_or_else(|| "localhost".into());
    let port = match guc::DAEMON_PORT.get() {
        0 => config::int("daemon_port")
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(5555),
        p => p as u16,
    };
    (host, port)
}

/// One client per endpoint for the life of the backend (streams borrow it across calls).
fn client_for(endpoint: &str) -> &'static DaemonClient {
    static CLIENTS: Mutex<Option<HashMap<String, &'static DaemonClient>>> = Mutex::new(None);
    let mut clients = CLIENTS.lock().unwrap();
    clients
        .get_or_insert_with(HashMap::new)
        .entry(endpoint.to_string())
        .or_insert_with(|| {
            Box::leak(Box::new(DaemonClient::new(
                endpoint,
                Duration::from_secs(24 * 3600),
            )))
        })
}

/// Decides where this call runs; raises when the daemon is required and unreachable.
pub fn route() -> Route {
    if !guc::USE_DAEMON.get() {
        return Route::InProcess;
    }
    let (host, port) = daemon_address();
    let endpoint = client::endpoint(&host, port);
    let client = client_for(&endpoint);
    let recently_failed = LAST_FAILURE
        .get()
        .is_some_and(|t| t.elapsed() < FAILURE_MEMORY);
    if !recently_failed && (client.ping(PROBE) || (start_daemon(&host, port) && client.ping(PROBE)))
    {
        LAST_FAILURE.set(None);
        return Route::Daemon(client);
    }
    LAST_FAILURE.set(Some(Instant::now()));
    fallback(&endpoint)
}

fn fallback(endpoint: &str) -> Route {
    if guc::INPROCESS_FALLBACK.get() {
        return Route::InProcess;
    }
    raise_with(
        pgrx::PgSqlErrorCode::ERRCODE_CONNECTION_FAILURE,
        &format!(
            "no st daemon answers at {endpoint} and steadytext.inprocess_fallback is off; start it \
             with `st daemon start` or SELECT steadytext_daemon_start()"
        ),
    )
}

/// Starts the daemon when the `daemon_auto_start` config row allows (at most every 10 s per
/// backend).
fn start_daemon(host: &str, port: u16) -> bool {
    if !config::bool("daemon_auto_start").unwrap_or(true) {
        return false;
    }
    if LAST_START
        .get()
        .is_some_and(|t| t.elapsed() < START_INTERVAL)
    {
        return false;
    }
    LAST_START.set(Some(Instant::now()));
    start_daemon_now(host, port)
}

/// `st daemon <action> --host H --port P --no-preload` (`run` or `start`), as
/// `steadytext.st_path` names it. No shell: the arguments are passed as they are.
pub fn st_daemon(action: &str, host: &str, port: u16) -> (String, Command) {
    let st = guc::string(&guc::ST_PATH).unwrap_or_else(|| "st".into());
    let mut cmd = Command::new(&st);
    cmd.args([
        "daemon",
        action,
        "--host",
        host,
        "--port",
        &port.to_string(),
        "--no-preload",
    ])
    .stdin(Stdio::null());
    (st, cmd)
}

/// Runs `st daemon start`.
pub fn start_daemon_now(host: &str, port: u16) -> bool {
    let (st, mut cmd) = st_daemon("start", host, port);
    let started = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).output();
    match started {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            warning!(
                "could not start the st daemon: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            false
        }
        Err(e) => {
            warning!("could not run {st} to start the daemon: {e}");
            false
        }
    }
}

thread_local! {
    /// Called while inference runs; a queue worker checks there that its row is still its own.
    static WATCHER: RefCell<Option<Box<dyn FnMut()>>> = const { RefCell::new(None) };
}

/// Runs `f` with `watch` called between tokens and while waiting on the daemon. `watch` stops
/// the work by raising an error, exactly as an interrupt does.
pub fn with_watcher<R>(watch: impl FnMut() + 'static, f: impl FnOnce() -> R) -> R {
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            WATCHER.with(|w| w.borrow_mut().take());
        }
    }
    WATCHER.with(|w| *w.borrow_mut() = Some(Box::new(watch)));
    let _clear = Clear;
    f()
}

/// Checks for interrupts (and the watcher) while waiting on the daemon; an interrupt unwinds,
/// and the client's guard tells the daemon to cancel.
pub fn keep_waiting() -> bool {
    pgrx::check_for_interrupts!();
    WATCHER.with(|w| {
        if let Some(watch) = w.borrow_mut().as_mut() {
            watch();
        }
    });
    true
}

fn raise_daemon(context: &str, error: &DaemonError) -> ! {
    let message = error.to_string();
    let code = if message.starts_with("prompt has") || message.starts_with("the constrained output")
    {
        pgrx::PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED
    } else if matches!(
        error,
        DaemonError::Unreachable(_) | DaemonError::Timeout { .. }
    ) {
        pgrx::PgSqlErrorCode::ERRCODE_CONNECTION_FAILURE
    } else {
        pgrx::PgSqlErrorCode::ERRCODE_EXTERNAL_ROUTINE_EXCEPTION
    };
    raise_with(code, &format!("{context}: {message}"))
}

// ---------------------------------------------------------------------------------------------
// Generation and embeddings, wherever they run
// ---------------------------------------------------------------------------------------------

fn generate_params(file: &ModelFile, prompt: &str, params: &GenerateParams) -> Value {
    steadytext::protocol::generate_params(prompt, params, Some(&file.path))
}

/// The generated text, stripped.
pub fn generate(file: &ModelFile, prompt: &str, params: &GenerateParams) -> String {
    if let Route::Daemon(client) = route() {
        match client.call(
            "generate",
            generate_params(file, prompt, params),
            &mut keep_waiting,
        ) {
            Ok(text) => return text.as_str().unwrap_or_default().to_string(),
            Err(DaemonError::Unreachable(_)) if guc::INPROCESS_FALLBACK.get() => {
                LAST_FAILURE.set(Some(Instant::now()));
                warning!("the st daemon went away during the call; generating in this backend");
            }
            Err(e) => raise_daemon("generation failed", &e),
        }
    }
    let text: String = Pieces::Local(local_stream(file, prompt, params)).collect();
    text.trim().to_string()
}

fn local_stream(file: &ModelFile, prompt: &str, params: &GenerateParams) -> TokenStream<'static> {
    let model = file
        .load()
        .unwrap_or_else(|e| raise_library("cannot load the model", &e));
    steadytext::stream(model, prompt, params)
        .unwrap_or_else(|e| raise_library("generation failed", &e))
}

/// Generated pieces as they are decoded, from the daemon or this backend.
pub enum Pieces {
    Local(TokenStream<'static>),
    Daemon(DaemonStream<'static>),
}

/// Starts a streamed generation.
pub fn stream(file: &ModelFile, prompt: &str, params: &GenerateParams) -> Pieces {
    match route() {
        Route::Daemon(client) => {
            match client.generate_iter(generate_params(file, prompt, params)) {
                Ok(stream) => Pieces::Daemon(stream),
                Err(e) => raise_daemon("generation failed", &e),
            }
        }
        Route::InProcess => Pieces::Local(local_stream(file, prompt, params)),
    }
}

impl Iterator for Pieces {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        keep_waiting();
        match self {
            Pieces::Local(stream) => stream
                .next()
                .map(|p| p.unwrap_or_else(|e| raise_library("generation failed", &e))),
            Pieces::Daemon(stream) => stream
                .next_piece(&mut keep_waiting)
                .unwrap_or_else(|e| raise_daemon("generation failed", &e)),
        }
    }
}

/// One embedding (1024 wide), where `route` says (decided once per statement: a batch does not
/// probe the daemon per text).
pub fn embed(
    route: Route,
    file: &ModelFile,
    text: &str,
    mode: EmbedMode,
) -> Result<Vec<f32>, String> {
    if let Route::Daemon(client) = route {
        let params = json!({ "text_input": text, "mode": mode.as_str(), "model": file.path });
        match client.call("embed", params, &mut keep_waiting) {
            Ok(v) => return serde_json::from_value(v).map_err(|e| e.to_string()),
            Err(DaemonError::Unreachable(_)) if guc::INPROCESS_FALLBACK.get() => {
                LAST_FAILURE.set(Some(Instant::now()));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    let model = file.load().map_err(|e| e.to_string())?;
    steadytext::embed(model, text, mode, Some(THREADS)).map_err(|e| e.to_string())
}

/// Text that satisfies `constraint` (already checked by the caller), stripped.
pub fn generate_constrained(
    file: &ModelFile,
    prompt: &str,
    params: &GenerateParams,
    constraint: &Constraint,
) -> String {
    if let Route::Daemon(client) = route() {
        let mut request = generate_params(file, prompt, params);
        steadytext::protocol::set_constraint(&mut request, constraint);
        match client.call("generate", request, &mut keep_waiting) {
            Ok(text) => return text.as_str().unwrap_or_default().to_string(),
            Err(DaemonError::Unreachable(_)) if guc::INPROCESS_FALLBACK.get() => {
                LAST_FAILURE.set(Some(Instant::now()));
                warning!("the st daemon went away during the call; generating in this backend");
            }
            Err(e) => raise_daemon("structured generation failed", &e),
        }
    }
    let model = file
        .load()
        .unwrap_or_else(|e| raise_library("cannot load the model", &e));
    let mut stream = steadytext::stream_constrained(model, prompt, params, constraint, true)
        .unwrap_or_else(|e| raise_library("structured generation failed", &e));
    let mut text = String::new();
    for piece in stream.by_ref() {
        keep_waiting();
        text.push_str(&piece.unwrap_or_else(|e| raise_library("structured generation failed", &e)));
    }
    if !stream.completed() {
        raise_library(
            "structured generation failed",
            &steadytext::Error::Incomplete {
                max_new_tokens: params.max_new_tokens,
            },
        );
    }
    text.trim().to_string()
}

/// Each document with its score, best first, from the reranking model (daemon or here).
pub fn rerank(
    file: &ModelFile,
    query: &str,
    documents: &[String],
    task: &str,
) -> Result<Vec<(String, f64)>, String> {
    if let Route::Daemon(client) = route() {
        let params = json!({ "query": query, "documents": documents, "task": task,
                             "return_scores": true, "model": file.path });
        match client.call("rerank", params, &mut keep_waiting) {
            Ok(v) => return serde_json::from_value(v).map_err(|e| e.to_string()),
            Err(DaemonError::Unreachable(_)) if guc::INPROCESS_FALLBACK.get() => {
                LAST_FAILURE.set(Some(Instant::now()));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    let model = file.load().map_err(|e| e.to_string())?;
    let mut scorer = steadytext::rerank::QueryScorer::new(model, query, task, Some(THREADS))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(documents.len());
    for (i, doc) in documents.iter().enumerate() {
        keep_waiting();
        out.push((i, scorer.score(doc).map_err(|e| e.to_string())?));
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(out
        .into_iter()
        .map(|(i, score)| (documents[i].clone(), score))
        .collect())
}

/// Where inference would run now, for `steadytext_info()`.
pub fn location() -> Value {
    let (host, port) = daemon_address();
    let endpoint = client::endpoint(&host, port);
    let reachable = guc::USE_DAEMON.get() && client_for(&endpoint).ping(PROBE);
    json!({
        "location": if reachable { "daemon" } else if guc::INPROCESS_FALLBACK.get() || !guc::USE_DAEMON.get() { "in-process" } else { "unavailable" },
        "daemon_endpoint": endpoint,
        "use_daemon": guc::USE_DAEMON.get(),
        "inprocess_fallback": guc::INPROCESS_FALLBACK.get(),
        "inprocess_threads": THREADS,
        "backend_pid": std::process::id(),
    })
}
