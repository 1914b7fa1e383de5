//! Where a call's request runs: in the st daemon (one model owner for every connection) when it
//! can be reached, else in this backend when `steadytext.inprocess_fallback` allows. Both give
//! the same bytes: the request is built here, by the library's one builder, and the daemon
//! receives it with its model resolved. The daemon runs the same builder again on what it
//! receives (it cannot trust a sender), which checks the model file's sha256 before using it.
//!
//! A dead daemon is detected in milliseconds (a short probe, remembered for two seconds), and
//! started on demand when the `daemon_auto_start` config row allows. In the backend the engine
//! runs on one thread: ggml then starts no threads of its own, so PostgreSQL's signal handling
//! is untouched. Between steps interrupts are checked (every token in the backend, every 50 ms
//! while waiting on the daemon); an interrupted call drops its execution, which tells the daemon
//! to cancel.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pgrx::prelude::*;
use serde_json::{json, Value};
use steadytext::client::DaemonClient;
use steadytext::execute::{self, Execution, Executor, Output, Sink};
use steadytext::{Error, ErrorKind, Local, Request};

use crate::{config, daemon_process, guc};

/// llama.cpp threads per in-backend request. The output does not depend on it.
pub const THREADS: i32 = 1;

/// Where a call's inference runs.
#[derive(Clone, Copy)]
pub enum Route {
    /// The st daemon.
    Daemon(&'static DaemonClient),
    /// This backend.
    InProcess,
}

impl Route {
    /// The executor of this route.
    pub fn executor(self) -> &'static dyn Executor {
        static LOCAL: Local = Local { threads: THREADS };
        match self {
            Route::Daemon(client) => client,
            Route::InProcess => &LOCAL,
        }
    }
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

/// One client per endpoint for the life of the backend (streams borrow it across calls).
pub fn client() -> &'static DaemonClient {
    static CLIENTS: Mutex<Option<HashMap<String, &'static DaemonClient>>> = Mutex::new(None);
    let endpoint = daemon_process::endpoint();
    let mut clients = CLIENTS.lock().unwrap();
    clients
        .get_or_insert_with(HashMap::new)
        .entry(endpoint.clone())
        .or_insert_with(|| {
            let client = daemon_process::client(&endpoint, Duration::from_secs(24 * 3600));
            Box::leak(Box::new(client))
        })
}

/// Decides where this call runs; raises when the daemon is required and unreachable.
pub fn route() -> Route {
    if !guc::USE_DAEMON.get() {
        return Route::InProcess;
    }
    let client = client();
    let recently_failed = LAST_FAILURE
        .get()
        .is_some_and(|t| t.elapsed() < FAILURE_MEMORY);
    if !recently_failed && (client.ping(PROBE) || (start_daemon() && client.ping(PROBE))) {
        LAST_FAILURE.set(None);
        return Route::Daemon(client);
    }
    LAST_FAILURE.set(Some(Instant::now()));
    if guc::INPROCESS_FALLBACK.get() {
        return Route::InProcess;
    }
    crate::errors::raise_with(
        pgrx::PgSqlErrorCode::ERRCODE_CONNECTION_FAILURE,
        &format!(
            "no st daemon answers at {} and steadytext.inprocess_fallback is off; start it \
             with SELECT steadytext_daemon_start() or `st daemon start`",
            client.endpoint()
        ),
    )
}

/// Starts the daemon when the `daemon_auto_start` config row allows (at most every 10 s per
/// backend).
fn start_daemon() -> bool {
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
    match daemon_process::start(&daemon_process::endpoint()) {
        Ok(()) => true,
        Err(why) => {
            warning!("could not start the st daemon: {why}");
            false
        }
    }
}

thread_local! {
    /// Called while inference runs; a queue worker checks there that its row is still its own.
    static WATCHER: RefCell<Option<Box<dyn FnMut()>>> = const { RefCell::new(None) };
}

/// Runs `f` with `watch` called between steps. `watch` stops the work by raising an error,
/// exactly as an interrupt does.
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

/// Checks for interrupts and the watcher between steps. An interrupt unwinds out of the call;
/// dropping the execution on the way tells the daemon to cancel.
pub struct Interrupts;

impl Sink for Interrupts {
    fn keep_going(&mut self) -> bool {
        pgrx::check_for_interrupts!();
        WATCHER.with(|w| {
            if let Some(watch) = w.borrow_mut().as_mut() {
                watch();
            }
        });
        true
    }
}

/// Runs `request` where `route()` says, to its end. A daemon that dies during the call is
/// replaced by this backend when the fallback is allowed.
pub fn run(request: Request) -> steadytext::Result<Output> {
    let route = route();
    match execute::run(route.executor(), request.clone(), false, &mut Interrupts) {
        Err(e)
            if e.kind() == ErrorKind::Unavailable
                && matches!(route, Route::Daemon(_))
                && guc::INPROCESS_FALLBACK.get() =>
        {
            LAST_FAILURE.set(Some(Instant::now()));
            warning!("{e}; running the request in this backend");
            execute::run(Route::InProcess.executor(), request, false, &mut Interrupts)
        }
        other => other,
    }
}

/// Starts `request` for a caller that takes the pieces as they come (streaming).
pub fn start(request: Request) -> steadytext::Result<Box<dyn Execution + 'static>> {
    route().executor().execute(request, true)
}

/// Where inference would run now, for `steadytext_info()`.
pub fn location() -> Value {
    let client = client();
    let reachable = guc::USE_DAEMON.get() && client.ping(PROBE);
    let location = if reachable {
        "daemon"
    } else if guc::INPROCESS_FALLBACK.get() || !guc::USE_DAEMON.get() {
        "in-process"
    } else {
        "unavailable"
    };
    json!({
        "location": location,
        "daemon_endpoint": client.endpoint(),
        // The CURVE key every connection pins (null on the private socket).
        "daemon_public_key": client.server_key().map(steadytext::daemon_keys::z85_encode),
        "use_daemon": guc::USE_DAEMON.get(),
        "inprocess_fallback": guc::INPROCESS_FALLBACK.get(),
        "inprocess_threads": THREADS,
        "backend_pid": std::process::id(),
    })
}

/// The error for a call whose model cannot be used, for functions that return NULL instead.
pub fn is_model_problem(error: &Error) -> bool {
    matches!(error.kind(), ErrorKind::ModelMissing | ErrorKind::ModelLoad)
}
