//! `steadytext_daemon_start()`, `steadytext_daemon_stop()`, `steadytext_daemon_status()`: they
//! act on the daemon itself (its protocol) or start it without a shell, never with user input
//! in a command line, and keep the `'default'` row of `steadytext_daemon_health` current.

use std::time::Duration;

use pgrx::prelude::*;
use serde_json::Value;
use steadytext::client::{self, DaemonClient};

use crate::inference;

fn client() -> (DaemonClient, String) {
    let (host, port) = inference::daemon_address();
    let endpoint = client::endpoint(&host, port);
    (
        DaemonClient::new(&endpoint, Duration::from_secs(5)),
        endpoint,
    )
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
    Spi::run_with_args(
        "INSERT INTO public.steadytext_daemon_health AS h (daemon_id, endpoint, status, last_heartbeat, \
         uptime_seconds, models_loaded, version) VALUES ('default', $1, $2, now(), $3, $4, $5) \
         ON CONFLICT (daemon_id) DO UPDATE SET endpoint = excluded.endpoint, status = excluded.status, \
         last_heartbeat = CASE WHEN excluded.status = 'healthy' THEN now() ELSE h.last_heartbeat END, \
         uptime_seconds = excluded.uptime_seconds, models_loaded = excluded.models_loaded, \
         version = COALESCE(excluded.version, h.version)",
        &[endpoint.into(), status.into(), uptime.into(), models.into(), version.into()],
    )
    .unwrap_or_else(|e| crate::errors::raise(&format!("cannot update steadytext_daemon_health: {e}")));
}

/// Starts the daemon (through `st daemon start`, no shell) unless it already answers.
#[pg_extern(volatile)]
fn steadytext_daemon_start() -> bool {
    let (client, endpoint) = client();
    if !client.ping(Duration::from_millis(300)) {
        let (host, port) = inference::daemon_address();
        if !inference::start_daemon_now(&host, port) {
            update_health("unhealthy", &endpoint, None);
            return false;
        }
    }
    let stats = client
        .call("stats", serde_json::json!({}), &mut || true)
        .ok();
    update_health("healthy", &endpoint, stats.as_ref());
    true
}

/// Asks the daemon to shut down (a supervised daemon stopped this way stays stopped).
#[pg_extern(volatile)]
fn steadytext_daemon_stop() -> bool {
    let (client, endpoint) = client();
    let stopped = client.ping(Duration::from_millis(300))
        && client
            .call("shutdown", serde_json::json!({}), &mut || true)
            .is_ok();
    if stopped {
        notice!("Daemon stopped successfully");
    } else {
        warning!("no st daemon answers at {endpoint}");
    }
    update_health("unhealthy", &endpoint, None);
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
    let (client, endpoint) = client();
    let stats = client
        .ping(Duration::from_millis(300))
        .then(|| {
            client
                .call("stats", serde_json::json!({}), &mut || true)
                .ok()
        })
        .flatten();
    let status = if stats.is_some() {
        "healthy"
    } else {
        "unhealthy"
    };
    update_health(status, &endpoint, stats.as_ref());
    let row = Spi::get_two::<String, pgrx::datum::TimestampWithTimeZone>(
        "SELECT status, last_heartbeat FROM public.steadytext_daemon_health WHERE daemon_id = 'default'",
    )
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
