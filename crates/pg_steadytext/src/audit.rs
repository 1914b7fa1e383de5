//! The audit trail: config changes, daemon start and stop, cache evictions (rows of
//! `steadytext_audit_log`, written in the statement's transaction), and rate-limit refusals.
//! A refusal is an error, so its transaction rolls back: refusals are appended to a file in the
//! data directory instead, and `steadytext_audit_events` shows both. Only steadytext_admin reads
//! them.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use pgrx::prelude::*;
use pgrx::JsonB;

use crate::privilege::{as_owner, identity_name};

/// The file keeps at most this many bytes; the previous file is kept as `audit.jsonl.1`, so a
/// loop of refused calls cannot fill the data directory.
const MAX_FILE_BYTES: u64 = 4 << 20;

fn file() -> std::path::PathBuf {
    crate::daemon_process::private_dir().join("audit.jsonl")
}

fn previous_file() -> std::path::PathBuf {
    crate::daemon_process::private_dir().join("audit.jsonl.1")
}

/// Appends an event that must outlive its transaction (one line, one write: lines from
/// concurrent backends never mix).
pub fn file_event(event_type: &str, user: &str, details: serde_json::Value) {
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let line = serde_json::json!({
        "at": at, "event_type": event_type, "user_id": user, "details": details,
    });
    if std::fs::metadata(file()).is_ok_and(|m| m.len() > MAX_FILE_BYTES) {
        let _ = std::fs::rename(file(), previous_file());
    }
    let appended = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(file())
        .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
    if let Err(e) = appended {
        warning!("cannot record the {event_type} event in the audit file: {e}");
    }
}

/// Records an event in `steadytext_audit_log`, with the calling role.
pub fn table_event(event_type: &str, details: serde_json::Value, success: bool) {
    let user = identity_name();
    // A hot standby cannot write the table: the event goes to its audit file.
    if !crate::spi::writable() {
        return file_event(event_type, &user, details);
    }
    as_owner(|| {
        Spi::run_with_args(
            "INSERT INTO public.steadytext_audit_log (event_type, user_id, details, success) \
             VALUES ($1, $2, $3, $4)",
            &[
                event_type.into(),
                user.as_str().into(),
                JsonB(details).into(),
                success.into(),
            ],
        )
    })
    .unwrap_or_else(|e| crate::errors::raise(&format!("cannot write the audit log: {e}")));
}

/// The events of the audit file (rate-limit refusals), for `steadytext_audit_events`.
#[pg_extern(volatile, parallel_unsafe)]
fn _steadytext_audit_file() -> TableIterator<
    'static,
    (
        name!(created_at, pgrx::datum::TimestampWithTimeZone),
        name!(event_type, String),
        name!(user_id, String),
        name!(details, JsonB),
    ),
> {
    crate::privilege::require_role("steadytext_admin", "Reading the audit trail");
    let text = [previous_file(), file()]
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap_or_default())
        .collect::<String>();
    let rows: Vec<_> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|v| {
            let at = v["at"].as_f64()?;
            let micros = ((at - 946_684_800.0) * 1e6) as i64;
            Some((
                pgrx::datum::TimestampWithTimeZone::try_from(micros).ok()?,
                v["event_type"].as_str()?.to_string(),
                v["user_id"].as_str()?.to_string(),
                JsonB(v["details"].clone()),
            ))
        })
        .collect();
    TableIterator::new(rows)
}

/// Records an audit event for the calling role (used by the admin functions in SQL).
#[pg_extern(volatile, parallel_unsafe)]
fn _steadytext_audit(event_type: &str, details: JsonB) {
    table_event(event_type, details.0, true);
}
