//! The async queue inside the server: waking workers when a request is queued, and the
//! background workers that serve `steadytext_queue` (when `pg_steadytext` is preloaded).
//!
//! A worker claims one row at a time through `steadytext_queue_claim` (sql/queue.sql, the same
//! protocol `st worker` uses), runs it exactly as the synchronous function would (same model
//! resolution, cache read, daemon route), and stores the result and the cache row through
//! `steadytext_queue_complete`, in one transaction. While the model works, the worker checks
//! every 250 ms that the row is still its own: a cancel stops the decoding.

use std::cell::Cell;
use std::time::{Duration, Instant};

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::prelude::*;
use pgrx::{register_xact_callback, PgSqlErrorCode, PgXactCallbackEvent};
use serde_json::Value;
use steadytext::jobs::{Job, Output};

use crate::errors::{raise, raise_with};
use crate::inference::{self, ModelArgs, ModelFile, THREADS};
use crate::vector::Vector;
use crate::{cache, guc};

/// `backend_type` of the workers in `pg_stat_activity`; sql/queue.sql relies on it.
const WORKER_TYPE: &str = "pg_steadytext queue worker";
const WATCH_INTERVAL: Duration = Duration::from_millis(250);

// ---------------------------------------------------------------------------------------------
// Waking
// ---------------------------------------------------------------------------------------------

thread_local! {
    static WAKE_PENDING: Cell<bool> = const { Cell::new(false) };
}

/// Wakes this database's queue workers when the current transaction commits (before that the
/// new rows are invisible to them). Called by every enqueue; cheap after the first call in a
/// transaction.
#[pg_extern(volatile, parallel_unsafe)]
fn _steadytext_queue_wake() {
    if WAKE_PENDING.get() {
        return;
    }
    let pids: Vec<i32> = Spi::connect(|client| {
        client
            .select(
                "SELECT pid FROM pg_stat_activity \
                 WHERE backend_type = $1 AND datname = current_database()",
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
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    let me = format!("pg_steadytext:{}", std::process::id());
    log!("{WORKER_TYPE} {me} serving database {database}");
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

/// An error raised while running a job: its message, and whether a retry could succeed.
struct JobError {
    message: String,
    retryable: bool,
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
            // Validation errors and prompts that do not fit fail the same way every time.
            let permanent = matches!(
                report.sql_error_code(),
                PgSqlErrorCode::ERRCODE_RAISE_EXCEPTION
                    | PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED
                    | PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE
                    | PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED
            );
            Err(JobError {
                message: report.message().to_string(),
                retryable: !permanent,
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
    let me = me.to_string();
    let claimed = in_transaction(move || {
        let schema = Spi::get_one::<String>(
            "SELECT n.nspname::text FROM pg_extension e \
             JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_steadytext'",
        )
        .ok()
        .flatten()?;
        Spi::run_with_args(
            "SELECT set_config('search_path', quote_ident($1) || ', public', false)",
            &[schema.into()],
        )
        .ok()?;
        Spi::connect_mut(|client| {
            let rows = client
                .update(
                    "SELECT id, request_type, prompt, params FROM steadytext_queue_claim($1, 1)",
                    Some(1),
                    &[me.as_str().into()],
                )
                .ok()?;
            let row = rows.first();
            Some(Claimed {
                id: row.get::<i32>(1).ok()??,
                request_type: row.get::<String>(2).ok()??,
                prompt: row.get::<String>(3).ok()?,
                params: row.get::<pgrx::JsonB>(4).ok()?.map(|j| j.0),
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
                    message: e.0,
                    retryable: false,
                },
            )
        }
    };
    STOPPED.set(None);
    let (id, owner) = (row.id, me.to_string());
    let outcome = in_transaction(move || {
        inference::with_watcher(watcher(id, owner.clone()), || execute(id, &owner, &job))
    });
    let ended = match (outcome, STOPPED.take()) {
        (Ok(true), _) => Ended::Done,
        (Ok(false), _) | (Err(_), Some(Stopped::NotMine)) => Ended::NotMine,
        (Err(_), Some(Stopped::ShuttingDown)) => Ended::ShuttingDown,
        (Err(e), None) => Ended::Failed {
            message: e.message,
            retryable: e.retryable,
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
            "SELECT status = 'processing' AND worker_id = $2 FROM steadytext_queue WHERE id = $1",
            &[id.into(), me.as_str().into()],
        );
        if !matches!(mine, Ok(Some(true))) {
            STOPPED.set(Some(Stopped::NotMine));
            raise("the request was cancelled");
        }
    }
}

/// Runs the job and stores its result; false when the row was no longer ours.
fn execute(id: i32, me: &str, job: &Job) -> bool {
    let (output, key, model) = match job {
        Job::Generate {
            prompt,
            params,
            model,
            ..
        }
        | Job::Structured {
            prompt,
            params,
            model,
            ..
        } => {
            let file = model_file(inference::generation_model(&ModelArgs {
                model: model.clone(),
                ..Default::default()
            }));
            let key = job.cache_key(&sha256(&file));
            let text = key.as_deref().and_then(cache::response).unwrap_or_else(|| {
                let params = steadytext::GenerateParams {
                    threads: Some(THREADS),
                    ..params.clone()
                };
                match job {
                    Job::Structured { constraint, .. } => {
                        inference::generate_constrained(&file, prompt, &params, constraint)
                    }
                    _ => inference::generate(&file, prompt, &params),
                }
            });
            (Output::Text(text), key, file.name())
        }
        Job::Embed {
            text, mode, model, ..
        } => {
            let file = model_file(inference::embedding_model(model.as_deref()));
            let key = job.cache_key(&sha256(&file));
            let vector = key
                .as_deref()
                .and_then(cache::embedding)
                .unwrap_or_else(|| {
                    inference::embed(inference::route(), &file, text, *mode)
                        .unwrap_or_else(|e| raise_transient(&format!("embedding failed: {e}")))
                });
            (Output::Embedding(vector), key, file.name())
        }
        Job::Rerank {
            query,
            documents,
            task,
            return_scores,
            model,
        } => {
            // No fallback here: a queued rerank without a model fails (and is retried) rather
            // than storing word-overlap scores as if they were the model's.
            let file = model_file(inference::reranking_model(model.as_deref()));
            let ranked = inference::rerank(&file, query, documents, task)
                .unwrap_or_else(|e| raise_transient(&format!("reranking failed: {e}")));
            let text = steadytext::jobs::rerank_result(&ranked, *return_scores);
            (Output::Text(text), None, file.name())
        }
    };
    let (text, vector) = match output {
        Output::Text(t) => (Some(t), None),
        Output::Embedding(v) => (None, Some(Vector(v))),
    };
    Spi::get_one_with_args::<bool>(
        "SELECT steadytext_queue_complete($1, $2, $3, $4, $5, $6)",
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

/// An error a retry may cure (a model being installed, a daemon restarting).
fn raise_transient(message: &str) -> ! {
    raise_with(PgSqlErrorCode::ERRCODE_EXTERNAL_ROUTINE_EXCEPTION, message)
}

fn model_file(found: steadytext::Result<ModelFile>) -> ModelFile {
    found.unwrap_or_else(|e| raise_transient(&format!("no model: {e}")))
}

fn sha256(file: &ModelFile) -> String {
    file.sha256()
        .unwrap_or_else(|e| raise_transient(&format!("cannot fingerprint the model: {e}")))
}

/// Records how a job ended (a failure or a give-back) in its own transaction.
fn finish(me: &str, id: i32, ended: Ended) {
    let me = me.to_string();
    let recorded = in_transaction(move || match ended {
        Ended::Done | Ended::NotMine => Ok(()),
        Ended::ShuttingDown => Spi::run_with_args(
            "SELECT steadytext_queue_release($1, $2)",
            &[id.into(), me.as_str().into()],
        ),
        Ended::Failed { message, retryable } => Spi::run_with_args(
            "SELECT steadytext_queue_fail($1, $2, $3, $4)",
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
