//! The async queue's Rust side: queueing a request (checked as the synchronous function checks
//! it, recorded for the calling role), a role's cancel and re-prioritise, waking the workers, and
//! the background workers that serve the queue.
//!
//! Roles have no privileges on `steadytext_queue` beyond reading their own rows (row-level
//! security). Writes go through these functions, which run their fixed queries as the extension's
//! owner with values computed here: a row's `user_id` is always the role that called.
//!
//! A background worker connects as `steadytext.worker_role` (a non-superuser), claims the next row
//! (sql/queue.sql), runs it exactly as the synchronous function would (same request, model, cache
//! key and bytes) and stores the result and the cache row through `steadytext_queue_complete`, in
//! one transaction. While the model works, the worker checks every 250 ms that the row is still
//! its own: a cancel stops the decoding.

use std::cell::Cell;
use std::time::{Duration, Instant};

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::prelude::*;
use pgrx::{register_xact_callback, JsonB, PgXactCallbackEvent};
use serde_json::Value;
use steadytext::jobs::{Job, RowResult};
use steadytext::store::PathPolicy;
use steadytext::{Error, Request};

use crate::errors::{raise, raise_error, OrRaise};
use crate::privilege::{as_owner, has_role, identity_name};
use crate::vector::Vector;
use crate::{cache, guc, model, route};

/// `backend_type` of the workers in `pg_stat_activity`; sql/queue.sql relies on it.
const WORKER_TYPE: &str = "pg_steadytext queue worker";
const WATCH_INTERVAL: Duration = Duration::from_millis(250);

// ---------------------------------------------------------------------------------------------
// Queueing, cancelling, re-prioritising
// ---------------------------------------------------------------------------------------------

thread_local! {
    static WAKE_PENDING: Cell<bool> = const { Cell::new(false) };
}

/// Wakes this database's queue workers when the current transaction commits (before that the
/// new rows are invisible to them). Cheap after the first call in a transaction.
fn wake() {
    if WAKE_PENDING.get() {
        return;
    }
    let pids: Vec<i32> = Spi::connect(|client| {
        client
            .select(
                "SELECT a.pid FROM pg_catalog.pg_stat_activity a \
                 WHERE a.backend_type OPERATOR(pg_catalog.=) $1 \
                 AND a.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()",
                None,
                &[WORKER_TYPE.into()],
            )
            .map(|rows| {
                rows.filter_map(|row| row.get::<i32>(1).ok().flatten())
                    .collect()
            })
            .unwrap_or_default()
    });
    if pids.is_empty() {
        return;
    }
    WAKE_PENDING.set(true);
    register_xact_callback(PgXactCallbackEvent::Commit, move || {
        for pid in pids {
            // SIGUSR1 sets a background worker's latch (procsignal_sigusr1_handler).
            // SAFETY: kill(2) with a pid of a live worker of this cluster.
            unsafe { libc::kill(pid, libc::SIGUSR1) };
        }
        WAKE_PENDING.set(false);
    });
    register_xact_callback(PgXactCallbackEvent::Abort, || WAKE_PENDING.set(false));
}

/// Queues one request for the calling role and returns its `request_id`. The request is checked
/// as building it would check it (limits, constraint, the role's model policy), so a row in the
/// queue is always one its worker may run; the rate limit counts it now.
#[pg_extern(volatile, parallel_unsafe)]
fn _steadytext_enqueue(
    request_type: &str,
    prompt: Option<&str>,
    params: Option<JsonB>,
    priority: default!(i32, 5),
) -> pgrx::datum::Uuid {
    crate::spi::require_writable("queue a request");
    let params = params.map(|p| p.0);
    let job = Job::parse(request_type, prompt, params.as_ref()).unwrap_or_else(|e| raise_error(&e));
    crate::admission::admit(&job.spec());
    // The row keeps the parameters as given (workers of other versions read them): they count
    // against the request's total like its texts.
    if let Some(p) = &params {
        model::builder()
            .check_total([p.to_string().as_str()])
            .unwrap_or_else(|e| raise_error(&e));
    }
    if !(1..=10).contains(&priority) {
        raise("priority must be between 1 and 10");
    }
    let user = identity_name();
    let id = as_owner(|| {
        Spi::get_one_with_args::<pgrx::datum::Uuid>(
            "INSERT INTO public.steadytext_queue (request_type, prompt, params, priority, user_id) \
             VALUES ($1, $2, $3, $4, $5) RETURNING request_id",
            &[
                request_type.into(),
                prompt.into(),
                params.map(JsonB).into(),
                priority.into(),
                user.as_str().into(),
            ],
        )
    })
    .ok()
    .flatten()
    .unwrap_or_else(|| raise("cannot queue the request"));
    // An empty payload: every role may LISTEN on any channel, and a request id is the caller's
    // alone (the workers only need to wake).
    Spi::run("SELECT pg_catalog.pg_notify('steadytext_queue', '')")
        .unwrap_or_else(|e| raise(&format!("cannot notify the workers: {e}")));
    wake();
    id
}

/// Refuses a text longer than `steadytext.max_prompt_length` before any SQL copies it: the
/// `*_async` functions call it first (`what` is "prompt" or "text", as in the synchronous texts).
#[pg_extern(stable, parallel_safe)]
fn _steadytext_check_lengths(what: &str, texts: pgrx::Array<&str>) {
    if !["prompt", "text", "query", "document", "task"].contains(&what) {
        raise(&format!("no length check for '{what}'"));
    }
    let builder = model::builder();
    builder
        .check_batch(&format!("{what}s"), texts.len())
        .or_raise();
    for text in texts.iter().flatten() {
        builder.check_length(what, text).or_raise();
    }
    builder.check_total(texts.iter().flatten()).or_raise();
}

/// Records a batch element that needs no worker: a NULL or blank text completes with the zero
/// vector (what `steadytext_embed_batch` gives it), a NULL or blank prompt fails with the text
/// `steadytext_generate` would raise. One request per element either way.
#[pg_extern(volatile, parallel_unsafe)]
fn _steadytext_enqueue_empty(request_type: &str, prompt: Option<&str>) -> pgrx::datum::Uuid {
    crate::spi::require_writable("queue a request");
    let (status, error, embedding) = match (request_type, prompt) {
        ("embed", _) => ("completed", None, Some(Vector(steadytext::embed::zero()))),
        ("generate", None) => ("failed", Some("Prompt cannot be null"), None),
        ("generate", Some(_)) => ("failed", Some("Prompt cannot be empty"), None),
        (other, _) => raise(&format!("no empty form of request_type '{other}'")),
    };
    if prompt.is_some_and(|p| !p.trim().is_empty()) {
        raise("only a NULL or blank element has an empty form");
    }
    // A row like any other: its text bounded, and counted by the rate limit.
    crate::admission::admit_text("prompt", prompt.unwrap_or(""));
    let user = identity_name();
    as_owner(|| {
        Spi::get_one_with_args::<pgrx::datum::Uuid>(
            "INSERT INTO public.steadytext_queue (request_type, prompt, status, error, embedding, \
             user_id, completed_at, processing_time_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, pg_catalog.now(), 0) RETURNING request_id",
            &[
                request_type.into(),
                prompt.into(),
                status.into(),
                error.into(),
                embedding.into(),
                user.as_str().into(),
            ],
        )
    })
    .ok()
    .flatten()
    .unwrap_or_else(|| raise("cannot queue the request"))
}

/// Updates a queue row of the calling role (any row for steadytext_admin); true when one changed.
/// `sql_set` may use `$4`, which is `extra` when given.
fn update_own(
    sql_set: &str,
    statuses: &str,
    request_id: pgrx::datum::Uuid,
    extra: Option<i32>,
) -> bool {
    crate::spi::require_writable("change a queued request");
    let user = identity_name();
    let admin = has_role("steadytext_admin");
    let sql = format!(
        "UPDATE public.steadytext_queue q SET {sql_set} \
         WHERE q.request_id OPERATOR(pg_catalog.=) $1 AND q.status OPERATOR(pg_catalog.=) ANY ({statuses}) \
         AND ($2 OR q.user_id OPERATOR(pg_catalog.=) $3)"
    );
    let mut args: Vec<pgrx::datum::DatumWithOid> =
        vec![request_id.into(), admin.into(), user.as_str().into()];
    if let Some(extra) = extra {
        args.push(extra.into());
    }
    as_owner(|| Spi::connect_mut(|client| client.update(&sql, None, &args).map(|t| t.len())))
        .unwrap_or_else(|e| raise(&format!("cannot update the request: {e}")))
        > 0
}

/// Cancels a pending or running request of the calling role; false when already finished (or
/// not the role's: another role's request cannot be told apart from an unknown one).
#[pg_extern(volatile, parallel_unsafe)]
fn steadytext_cancel_async(request_id: pgrx::datum::Uuid) -> bool {
    update_own(
        "status = 'cancelled', completed_at = pg_catalog.now(), lease_until = NULL",
        "ARRAY['pending', 'processing']",
        request_id,
        None,
    )
}

/// Changes a pending request's priority (1..10, higher first); the calling role's requests only.
#[pg_extern(volatile, parallel_unsafe)]
fn steadytext_set_async_priority(request_id: pgrx::datum::Uuid, priority: Option<i32>) -> bool {
    let priority = match priority {
        Some(p) if (1..=10).contains(&p) => p,
        _ => raise("priority must be between 1 and 10"),
    };
    update_own(
        "priority = $4",
        "ARRAY['pending']",
        request_id,
        Some(priority),
    )
}

// ---------------------------------------------------------------------------------------------
// Background workers
// ---------------------------------------------------------------------------------------------

fn databases() -> Vec<String> {
    guc::string(&guc::QUEUE_DATABASES)
        .unwrap_or_default()
        .split(',')
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .collect()
}

/// Registers `steadytext.queue_workers` workers per database; called from `_PG_init` while
/// preloading.
pub fn register_workers() {
    let per_database = guc::QUEUE_WORKERS.get().max(0);
    for (d, database) in databases().iter().enumerate() {
        for w in 0..per_database {
            BackgroundWorkerBuilder::new(&format!("pg_steadytext queue worker {w} ({database})"))
                .set_type(WORKER_TYPE)
                .set_library("pg_steadytext")
                .set_function("steadytext_queue_worker_main")
                .set_argument(((d as i32) * 1000 + w).into_datum())
                .enable_spi_access()
                .set_restart_time(Some(Duration::from_secs(5)))
                .load();
        }
    }
}

/// How one job ended.
enum Ended {
    Done,
    /// The row was cancelled or taken over; nothing to record.
    NotMine,
    /// The worker is shutting down: give the row back.
    ShuttingDown,
    Failed {
        message: String,
        retryable: bool,
    },
}

/// Why the watcher stopped the current job (by raising an error on purpose).
#[derive(Clone, Copy)]
enum Stopped {
    /// The row was cancelled or taken over.
    NotMine,
    /// SIGTERM: the row goes back to the queue.
    ShuttingDown,
}

thread_local! {
    static STOPPED: Cell<Option<Stopped>> = const { Cell::new(None) };
    /// The library error of the job that is running, when it failed with one.
    static FAILED: std::cell::RefCell<Option<Error>> = const { std::cell::RefCell::new(None) };
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn steadytext_queue_worker_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let index = unsafe { i32::from_datum(arg, false) }.unwrap_or(0);
    let database = databases()
        .get((index / 1000) as usize)
        .cloned()
        .unwrap_or_else(|| "postgres".into());
    let role = guc::string(&guc::WORKER_ROLE).unwrap_or_else(|| "steadytext_worker".into());
    BackgroundWorker::connect_worker_to_spi(Some(&database), Some(&role));
    let me = format!("pg_steadytext:{}", std::process::id());
    log!("{WORKER_TYPE} {me} serving database {database} as role {role}");
    loop {
        while !BackgroundWorker::sigterm_received() {
            let Some(row) = claim(&me) else { break };
            run(&me, row);
        }
        let poll = Duration::from_millis(guc::QUEUE_POLL_MS.get().max(10) as u64);
        if !BackgroundWorker::wait_latch(Some(poll)) {
            break;
        }
        if BackgroundWorker::sighup_received() {
            // SAFETY: the documented way for a background worker to reload its settings.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
    }
}

/// An error raised while running a job.
struct JobError {
    message: String,
}

/// Runs `f` in its own transaction; an error rolls it back and comes back as a [`JobError`].
fn in_transaction<R>(
    f: impl FnOnce() -> R + std::panic::UnwindSafe + std::panic::RefUnwindSafe,
) -> Result<R, JobError> {
    PgTryBuilder::new(|| Ok(BackgroundWorker::transaction(f)))
        .catch_others(|e| {
            // SAFETY: we are in a background worker whose transaction failed; this is what
            // PostgreSQL's own workers do after an error.
            unsafe { pg_sys::AbortCurrentTransaction() };
            let report = match &e {
                pg_sys::panic::CaughtError::PostgresError(r)
                | pg_sys::panic::CaughtError::ErrorReport(r)
                | pg_sys::panic::CaughtError::RustPanic { ereport: r, .. } => r,
            };
            Err(JobError {
                message: report.message().to_string(),
            })
        })
        .execute()
}

/// A claimed row.
struct Claimed {
    id: i32,
    request_type: String,
    prompt: Option<String>,
    params: Option<Value>,
}

/// Claims the next row, or `None` (also while the extension is not installed here).
fn claim(me: &str) -> Option<Claimed> {
    // A hot standby's workers wait: its queue rows are the primary's to run.
    if !crate::spi::writable() {
        return None;
    }
    let me = me.to_string();
    let claimed = in_transaction(move || {
        let installed = Spi::get_one::<bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e \
             WHERE e.extname OPERATOR(pg_catalog.=) 'pg_steadytext')",
        )
        .ok()
        .flatten()
        .unwrap_or(false);
        if !installed {
            return None;
        }
        Spi::connect_mut(|client| {
            let rows = client
                .update(
                    "SELECT c.id, c.request_type, c.prompt, c.params \
                     FROM public.steadytext_queue_claim($1, 1) c",
                    Some(1),
                    &[me.as_str().into()],
                )
                .ok()?;
            let row = rows.first();
            Some(Claimed {
                id: row.get::<i32>(1).ok()??,
                request_type: row.get::<String>(2).ok()??,
                prompt: row.get::<String>(3).ok()?,
                params: row.get::<JsonB>(4).ok()?.map(|j| j.0),
            })
        })
    });
    claimed.unwrap_or_else(|e| {
        warning!("{WORKER_TYPE}: cannot claim work: {}", e.message);
        None
    })
}

fn run(me: &str, row: Claimed) {
    let job = match Job::parse(
        &row.request_type,
        row.prompt.as_deref(),
        row.params.as_ref(),
    ) {
        Ok(job) => job,
        Err(e) => {
            return finish(
                me,
                row.id,
                Ended::Failed {
                    message: e.to_string(),
                    retryable: false,
                },
            )
        }
    };
    STOPPED.set(None);
    FAILED.with(|f| f.borrow_mut().take());
    let (id, owner) = (row.id, me.to_string());
    let outcome = in_transaction(move || {
        route::with_watcher(watcher(id, owner.clone()), || execute(id, &owner, &job))
    });
    let failed = FAILED.with(|f| f.borrow_mut().take());
    let ended = match (outcome, STOPPED.take(), failed) {
        (Ok(true), _, _) => Ended::Done,
        (Ok(false), _, _) | (Err(_), Some(Stopped::NotMine), _) => Ended::NotMine,
        (Err(_), Some(Stopped::ShuttingDown), _) => Ended::ShuttingDown,
        // A library error: its kind decides, as in `st worker`.
        (Err(_), None, Some(e)) => Ended::Failed {
            message: e.to_string(),
            retryable: !e.is_permanent(),
        },
        // Anything else (SPI trouble storing the result) may pass.
        (Err(e), None, None) => Ended::Failed {
            message: e.message,
            retryable: true,
        },
    };
    finish(me, row.id, ended);
}

/// Stops the job (by raising) when the row stops being ours or the worker must exit.
fn watcher(id: i32, me: String) -> impl FnMut() + 'static {
    let mut last = Instant::now();
    move || {
        if BackgroundWorker::sigterm_received() {
            STOPPED.set(Some(Stopped::ShuttingDown));
            raise("pg_steadytext queue worker shutting down");
        }
        if last.elapsed() < WATCH_INTERVAL {
            return;
        }
        last = Instant::now();
        let mine = Spi::get_one_with_args::<bool>(
            "SELECT q.status OPERATOR(pg_catalog.=) 'processing' \
             AND q.worker_id OPERATOR(pg_catalog.=) $2 \
             FROM public.steadytext_queue q WHERE q.id OPERATOR(pg_catalog.=) $1",
            &[id.into(), me.as_str().into()],
        );
        if !matches!(mine, Ok(Some(true))) {
            STOPPED.set(Some(Stopped::NotMine));
            raise("the request was cancelled");
        }
    }
}

/// Raises a library error, remembering it so the job's end is classified by its kind.
fn fail(e: Error) -> ! {
    FAILED.with(|f| *f.borrow_mut() = Some(e.clone()));
    raise_error(&e)
}

/// Runs the job and stores its result; false when the row was no longer ours.
fn execute(id: i32, me: &str, job: &Job) -> bool {
    // Rows are checked against the queueing role's policy when they are queued.
    let builder = steadytext::request::Builder {
        policy: PathPolicy::Any,
        ..model::builder()
    };
    let request = job.build(&builder).unwrap_or_else(|e| fail(e));
    let (key, cached) = match &request {
        Request::Generate(r) => {
            let key = r.cache_key();
            let hit = key
                .as_deref()
                .and_then(cache::response)
                .map(RowResult::Text);
            (key, hit)
        }
        Request::Embed(r) => {
            let key = r.texts.first().and_then(|t| r.cache_key(t));
            let hit = key
                .as_deref()
                .and_then(cache::embedding)
                .map(RowResult::Embedding);
            (key, hit)
        }
        Request::Rerank(_) => (None, None),
    };
    let model = request.model().file_name();
    let result = match cached {
        Some(hit) => hit,
        None => {
            let output = route::run(request.clone()).unwrap_or_else(|e| fail(e));
            job.row_result(&request, output).unwrap_or_else(|e| fail(e))
        }
    };
    let (text, vector) = match result {
        RowResult::Text(t) => (Some(t), None),
        RowResult::Embedding(v) => (None, Some(Vector(v))),
    };
    Spi::get_one_with_args::<bool>(
        "SELECT public.steadytext_queue_complete($1, $2, $3, $4, $5, $6)",
        &[
            id.into(),
            me.into(),
            text.into(),
            vector.into(),
            key.into(),
            model.into(),
        ],
    )
    .unwrap_or_else(|e| raise(&format!("cannot store the result: {e}")))
    .unwrap_or(false)
}

/// Records how a job ended (a failure or a give-back) in its own transaction.
fn finish(me: &str, id: i32, ended: Ended) {
    let me = me.to_string();
    let recorded = in_transaction(move || match ended {
        Ended::Done | Ended::NotMine => Ok(()),
        Ended::ShuttingDown => Spi::run_with_args(
            "SELECT public.steadytext_queue_release($1, $2)",
            &[id.into(), me.as_str().into()],
        ),
        Ended::Failed { message, retryable } => Spi::run_with_args(
            "SELECT public.steadytext_queue_fail($1, $2, $3, $4)",
            &[
                id.into(),
                me.as_str().into(),
                message.as_str().into(),
                retryable.into(),
            ],
        ),
    });
    let problem = match recorded {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.message,
    };
    // The row stays 'processing' and returns to the queue when this worker exits.
    warning!("{WORKER_TYPE}: cannot record the end of request row {id}: {problem}");
}
