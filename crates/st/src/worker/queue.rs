//! The queue as `st worker` sees it: the claim protocol's functions (sql/queue.sql), called as
//! the worker's database role.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use postgres::Client;
use serde_json::Value;
use steadytext::jobs::{vector_literal, RowResult};

use super::{Wakeups, SIGNALS};

/// One database connection of a worker thread.
pub struct Queue {
    db: Client,
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
            me,
            lease,
        })
    }

    /// The lease, in seconds.
    pub fn lease(&self) -> u32 {
        self.lease
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

/// LISTENs on `steadytext_queue` (every enqueue NOTIFYs it) and rings `wakeups`.
pub fn listen(dsn: &str, wakeups: Arc<Wakeups>) -> Result<()> {
    let mut client = super::tls::connect(dsn)?;
    client.batch_execute("LISTEN steadytext_queue")?;
    thread::spawn(move || {
        while SIGNALS.load(Ordering::SeqCst) == 0 {
            let mut heard = false;
            let mut notes = client.notifications();
            let mut notes = notes.timeout_iter(Duration::from_millis(200));
            loop {
                match fallible_iterator::FallibleIterator::next(&mut notes) {
                    Ok(Some(_)) => heard = true,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!("LISTEN connection failed: {e}; polling instead");
                        return;
                    }
                }
            }
            if heard {
                wakeups.ring();
            }
        }
    });
    Ok(())
}
