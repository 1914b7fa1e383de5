//! The queue as `st worker` sees it: the claim protocol's functions (sql/queue.sql), called as
//! the worker's database role.
//!
//! A connection the server ends (a restart, a crash of any backend, which makes PostgreSQL end
//! every session, or an administrator's `pg_terminate_backend`) is opened again: a worker outlives
//! its database's restarts, as the extension's background workers do. Every call of the claim
//! protocol is safe to repeat on a new connection: a claim whose answer was lost expires with its
//! lease, and complete, fail and release act only on a row this worker still holds.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use postgres::Client;
use serde_json::Value;
use steadytext::jobs::{vector_literal, RowResult};

use super::{Wakeups, SIGNALS};

/// A claim waits for the database until the first signal (which stops claiming).
pub const CLAIMING: usize = 1;
/// Recording a finished request waits until the second (which gives requests back).
pub const RECORDING: usize = 2;

/// One database connection of a worker thread.
pub struct Queue {
    db: Client,
    dsn: String,
    /// The name this worker gives itself in `worker_id`.
    pub me: String,
    lease: u32,
}

/// A claimed row.
pub struct Row {
    /// `steadytext_queue.id`.
    pub id: i32,
    /// `request_type`.
    pub request_type: String,
    /// `prompt`.
    pub prompt: Option<String>,
    /// `params`.
    pub params: Option<Value>,
}

impl Queue {
    /// Connects to `dsn` (TLS as its sslmode says).
    pub fn connect(dsn: &str, me: String, lease: u32) -> Result<Self> {
        Ok(Queue {
            db: super::tls::connect(dsn)?,
            dsn: dsn.to_string(),
            me,
            lease,
        })
    }

    /// The lease, in seconds.
    pub fn lease(&self) -> u32 {
        self.lease
    }

    /// Whether `error` (from a call on this connection) means the session is gone, so that a new
    /// connection may succeed where this one cannot: the socket closed, or the server ended the
    /// session (class 57P: shutdown, crash of another backend, terminated) or the connection
    /// (class 08).
    pub fn lost(&self, error: &anyhow::Error) -> bool {
        self.db.is_closed()
            || error.chain().any(|cause| {
                cause
                    .downcast_ref::<postgres::Error>()
                    .is_some_and(|e| e.is_closed() || e.code().is_some_and(|c| ended(c.code())))
            })
    }

    /// One try at a new connection.
    pub fn reconnect_once(&mut self) -> Result<()> {
        self.db = super::tls::connect(&self.dsn)?;
        // Printed like the worker's start and stop: an operator sees each outage it rode out.
        eprintln!("st worker {}: connected again", self.me);
        Ok(())
    }

    /// Connects again (see [`until_connected`]); false once `signals` signals were received.
    pub fn reconnect(&mut self, wakeups: &Wakeups, signals: usize) -> bool {
        let me = self.me.clone();
        until_connected(
            wakeups,
            signals,
            || self.reconnect_once(),
            |e| tracing::warn!(worker = %me, "cannot connect yet: {e:#}"),
        )
        .is_some()
    }

    /// Runs `call` on this connection and, when the session is lost, on a new one (once the
    /// server takes connections again); `None` once `signals` signals were received meanwhile
    /// ([`CLAIMING`] or [`RECORDING`]).
    pub fn retrying<T>(
        &mut self,
        wakeups: &Wakeups,
        signals: usize,
        mut call: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Option<T>> {
        loop {
            match call(self) {
                Ok(value) => return Ok(Some(value)),
                Err(e) if self.lost(&e) => {
                    tracing::warn!(worker = %self.me, "the database connection is gone: {e:#}");
                    if !self.reconnect(wakeups, signals) {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The next runnable row, claimed under a lease.
    pub fn claim(&mut self) -> Result<Option<Row>> {
        let rows = self
            .db
            .query(
                "SELECT id, request_type, prompt, params::text FROM steadytext_queue_claim($1, 1, $2)",
                &[&self.me, &(self.lease as i32)],
            )
            .context(
                "steadytext_queue_claim failed (is pg_steadytext installed, on the search_path, \
                 and is this role a member of steadytext_worker?)",
            )?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let params: Option<String> = row.get(3);
        Ok(Some(Row {
            id: row.get(0),
            request_type: row.get(1),
            prompt: row.get(2),
            params: params.and_then(|p| serde_json::from_str(&p).ok()),
        }))
    }

    /// Renews the lease; false once the row is no longer this worker's (cancelled, taken over).
    pub fn heartbeat(&mut self, id: i32) -> Result<bool> {
        Ok(self
            .db
            .query_one(
                "SELECT steadytext_queue_heartbeat($1, $2, $3)",
                &[&id, &self.me, &(self.lease as i32)],
            )?
            .get(0))
    }

    /// Stores the result (and the cache row); false when the row was no longer this worker's.
    pub fn complete(
        &mut self,
        id: i32,
        result: &RowResult,
        key: Option<&str>,
        model: &str,
    ) -> Result<bool> {
        let (text, vector) = match result {
            RowResult::Text(t) => (Some(t.as_str()), None),
            RowResult::Embedding(v) => (None, Some(vector_literal(v))),
        };
        Ok(self
            .db
            .query_one(
                "SELECT steadytext_queue_complete($1, $2, $3, $4::text::vector, $5, $6)",
                &[&id, &self.me, &text, &vector, &key, &model],
            )?
            .get(0))
    }

    /// Records a failure; the row's new status (`pending` when it will be retried).
    pub fn fail(&mut self, id: i32, message: &str, retryable: bool) -> Result<Option<String>> {
        Ok(self
            .db
            .query_one(
                "SELECT steadytext_queue_fail($1, $2, $3, $4)",
                &[&id, &self.me, &message, &retryable],
            )?
            .get(0))
    }

    /// Gives the row back untouched.
    pub fn release(&mut self, id: i32) -> Result<()> {
        self.db
            .execute("SELECT steadytext_queue_release($1, $2)", &[&id, &self.me])?;
        Ok(())
    }
}

/// Runs `connect` until it succeeds, waiting 1, 2, 4, 8, then 10 s between tries (less when
/// `wakeups` rings: new work is a reason to try now) and reporting each failure; `None` once
/// `signals` signals were received. The database may be down for minutes (a restart, a
/// failover): the pause grows so a worker fleet does not hammer it, but stays short enough that
/// work resumes soon after it is back.
fn until_connected<T>(
    wakeups: &Wakeups,
    signals: usize,
    mut connect: impl FnMut() -> Result<T>,
    report: impl Fn(&anyhow::Error),
) -> Option<T> {
    let mut pause = Duration::from_secs(1);
    loop {
        if SIGNALS.load(Ordering::SeqCst) >= signals {
            return None;
        }
        match connect() {
            Ok(value) => return Some(value),
            Err(e) => report(&e),
        }
        wakeups.wait(wakeups.count(), pause);
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}

/// A server's answer that it ended the session or the connection.
fn ended(sqlstate: &str) -> bool {
    sqlstate.starts_with("57P") || sqlstate.starts_with("08")
}

/// LISTENs on `steadytext_queue` (every enqueue NOTIFYs it) and rings `wakeups`; a lost
/// connection is opened again (the threads poll meanwhile, and are woken once it is back, for
/// what was enqueued while nobody listened).
pub fn listen(dsn: &str, wakeups: Arc<Wakeups>) -> Result<()> {
    let listening = |dsn: &str| -> Result<Client> {
        let mut client = super::tls::connect(dsn)?;
        client.batch_execute("LISTEN steadytext_queue")?;
        Ok(client)
    };
    let mut client = listening(dsn)?;
    let dsn = dsn.to_string();
    thread::spawn(move || {
        while SIGNALS.load(Ordering::SeqCst) == 0 {
            let mut heard = false;
            let mut lost = false;
            {
                let mut notes = client.notifications();
                let mut notes = notes.timeout_iter(Duration::from_millis(200));
                loop {
                    match fallible_iterator::FallibleIterator::next(&mut notes) {
                        Ok(Some(_)) => heard = true,
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(
                                "LISTEN connection failed: {e}; polling until it is back"
                            );
                            lost = true;
                            break;
                        }
                    }
                }
            }
            if lost || client.is_closed() {
                // The connection was just lost: a try at once would most likely fail too, and a
                // server that accepts and then cuts connections would be asked without a pause.
                wakeups.wait(wakeups.count(), Duration::from_secs(1));
                let again = until_connected(
                    &wakeups,
                    1,
                    || listening(&dsn),
                    |e| tracing::warn!("cannot LISTEN again yet: {e:#}"),
                );
                match again {
                    Some(c) => client = c,
                    None => return,
                }
                heard = true;
            }
            if heard {
                wakeups.ring();
            }
        }
    });
    Ok(())
}
