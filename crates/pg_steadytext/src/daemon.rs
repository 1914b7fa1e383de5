//! `steadytext_daemon_start()`, `steadytext_daemon_stop()`, `steadytext_daemon_status()`: they
//! ask the daemon itself (its protocol) or run `st daemon start|stop` with fixed arguments (no
//! shell, never user input), keep the `'default'` row of `steadytext_daemon_health` current, and
//! report what actually happened. Start and stop are for steadytext_admin and are audited.

use std::process::Stdio;
use std::time::{Duration, Instant};

use pgrx::prelude::*;
use serde_json::{json, Value};

use crate::privilege::as_owner;
use crate::{audit, daemon_process, route};

fn stats() -> Option<Value> {
    let client = route::client();
    if !client.ping(Duration::from_millis(300)) {
        return None;
    }
    client
        .call("stats", json!({}), &mut || true)
        .ok()
        .map(|(stats, _)| stats)
}

fn update_health(status: &str, endpoint: &str, stats: Option<&Value>) {
    let uptime = stats
        .and_then(|s| s["uptime_seconds"].as_f64())
        .unwrap_or(0.0) as i32;
    let models: Vec<String> = stats
        .and_then(|s| s["models"].as_array())
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    format!(
                        "{}:{}",
                        m["path"].as_str().unwrap_or(""),
                        m["sha256"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let version = stats
        .and_then(|s| s["fingerprint"].as_str())
        .map(str::to_string);
    // The health row is informational: a hot standby (which cannot write) reports without it.
    if !crate::spi::writable() {
        return;
    }
    as_owner(|| {
        Spi::run_with_args(
            "INSERT INTO public.steadytext_daemon_health AS h (daemon_id, endpoint, status, \
             last_heartbeat, uptime_seconds, models_loaded, version) \
             VALUES ('default', $1, $2, pg_catalog.now(), $3, $4, $5) \
             ON CONFLICT (daemon_id) DO UPDATE SET endpoint = excluded.endpoint, \
             status = excluded.status, \
             last_heartbeat = CASE WHEN excluded.status OPERATOR(pg_catalog.=) 'healthy' \
                              THEN pg_catalog.now() ELSE h.last_heartbeat END, \
             uptime_seconds = excluded.uptime_seconds, models_loaded = excluded.models_loaded, \
             version = COALESCE(excluded.version, h.version)",
            &[
                endpoint.into(),
                status.into(),
                uptime.into(),
                models.into(),
                version.into(),
            ],
        )
    })
    .unwrap_or_else(|e| {
        crate::errors::raise(&format!("cannot update steadytext_daemon_health: {e}"))
    });
}

/// Starts the daemon (through `st daemon start`, no shell) unless it already answers; true when
/// it answers afterwards.
#[pg_extern(volatile)]
fn steadytext_daemon_start() -> bool {
    let endpoint = daemon_process::endpoint();
    let started = if stats().is_some() {
        Ok(())
    } else {
        daemon_process::start(&endpoint)
    };
    if let Err(why) = &started {
        warning!("could not start the st daemon at {endpoint}: {why}");
    }
    let stats = stats();
    update_health(
        if stats.is_some() {
            "healthy"
        } else {
            "unhealthy"
        },
        &endpoint,
        stats.as_ref(),
    );
    audit::table_event(
        "daemon_start",
        json!({ "endpoint": endpoint, "error": started.as_ref().err() }),
        stats.is_some(),
    );
    stats.is_some()
}

/// Stops the daemon (through `st daemon stop`, which signals the process the daemon recorded in
/// its pid file in the private directory, never a pid an answer over the wire names, and waits
/// until it is gone); true when one was running and is gone. A supervised daemon stopped this
/// way stays stopped until something starts it again.
#[pg_extern(volatile)]
fn steadytext_daemon_stop() -> bool {
    let endpoint = daemon_process::endpoint();
    let was_running = stats().is_some();
    let (st, mut stop) = daemon_process::command("stop", &endpoint);
    let outcome = stop.stderr(Stdio::piped()).stdout(Stdio::null()).output();
    let deadline = Instant::now() + Duration::from_secs(10);
    while was_running && stats().is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let gone = stats().is_none();
    let stopped = was_running && gone;
    match &outcome {
        Ok(out) if !out.status.success() => warning!(
            "{st} daemon stop failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => warning!("could not run {st}: {e}"),
        _ if stopped => notice!("Daemon stopped successfully"),
        _ if !was_running => warning!("no st daemon was running at {endpoint}"),
        _ => warning!("the st daemon at {endpoint} still answers"),
    }
    update_health("unhealthy", &endpoint, None);
    audit::table_event(
        "daemon_stop",
        json!({ "endpoint": endpoint, "was_running": was_running }),
        stopped,
    );
    stopped
}

/// The daemon's state: asks it directly, records it in `steadytext_daemon_health`, returns the
/// row (uptime is the daemon's own).
#[pg_extern(volatile)]
fn steadytext_daemon_status() -> TableIterator<
    'static,
    (
        name!(daemon_id, String),
        name!(status, String),
        name!(endpoint, String),
        name!(last_heartbeat, Option<pgrx::datum::TimestampWithTimeZone>),
        name!(uptime_seconds, i32),
    ),
> {
    let endpoint = daemon_process::endpoint();
    let stats = stats();
    let status = if stats.is_some() {
        "healthy"
    } else {
        "unhealthy"
    };
    update_health(status, &endpoint, stats.as_ref());
    let row = as_owner(|| {
        Spi::get_two::<String, pgrx::datum::TimestampWithTimeZone>(
            "SELECT h.status, h.last_heartbeat FROM public.steadytext_daemon_health h \
             WHERE h.daemon_id OPERATOR(pg_catalog.=) 'default'",
        )
    })
    .unwrap_or((None, None));
    let uptime = stats
        .and_then(|s| s["uptime_seconds"].as_f64())
        .unwrap_or(0.0) as i32;
    TableIterator::once((
        "default".to_string(),
        row.0.unwrap_or_default(),
        endpoint,
        row.1,
        uptime,
    ))
}
