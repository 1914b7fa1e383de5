//! The daemon supervisor: a background worker (when `pg_steadytext` is in
//! `shared_preload_libraries` and `steadytext.daemon_autostart` is on) that starts `st daemon`
//! with the server, restarts it with backoff when it exits, and logs why. A daemon stopped on
//! request (exit status 0) stays stopped until something starts it again.

use std::process::Child;
use std::time::{Duration, Instant};

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::prelude::*;

use crate::daemon_process;

/// Registers the worker; called from `_PG_init` while preloading.
pub fn register() {
    BackgroundWorkerBuilder::new("pg_steadytext daemon supervisor")
        .set_type("pg_steadytext supervisor")
        .set_library("pg_steadytext")
        .set_function("steadytext_supervisor_main")
        .set_restart_time(Some(Duration::from_secs(5)))
        .load();
}

struct Supervised {
    child: Option<Child>,
    started: Instant,
    backoff: Duration,
    stopped_on_request: bool,
    next_start: Instant,
}

const MAX_BACKOFF: Duration = Duration::from_secs(30);
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn steadytext_supervisor_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let endpoint = daemon_process::endpoint();
    let client = daemon_process::client(&endpoint, Duration::from_secs(5));
    let mut state = Supervised {
        child: None,
        started: Instant::now(),
        backoff: Duration::from_secs(1),
        stopped_on_request: false,
        next_start: Instant::now(),
    };
    log!(
        "pg_steadytext supervisor: keeping st daemon alive at {}",
        client.endpoint()
    );
    while BackgroundWorker::wait_latch(Some(Duration::from_millis(250))) {
        reap(&mut state);
        if client.ping(Duration::from_millis(200)) {
            state.stopped_on_request = false;
            continue;
        }
        if state.child.is_none() && !state.stopped_on_request && Instant::now() >= state.next_start
        {
            spawn(&mut state, &endpoint);
        }
    }
    if let Some(mut child) = state.child.take() {
        // SAFETY: kill(2) of our own child.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Notes a child that exited, and why.
fn reap(state: &mut Supervised) {
    let Some(child) = state.child.as_mut() else {
        return;
    };
    let Ok(Some(status)) = child.try_wait() else {
        return;
    };
    state.child = None;
    if status.success() {
        log!("pg_steadytext supervisor: st daemon stopped on request; not restarting it");
        state.stopped_on_request = true;
        return;
    }
    if state.started.elapsed() > HEALTHY_AFTER {
        state.backoff = Duration::from_secs(1);
    }
    let why = match std::os::unix::process::ExitStatusExt::signal(&status) {
        Some(signal) => format!("killed by signal {signal}"),
        None => format!("exited with {status}"),
    };
    warning!(
        "pg_steadytext supervisor: st daemon {why} after {:.1} s; restarting it in {:.0} s",
        state.started.elapsed().as_secs_f64(),
        state.backoff.as_secs_f64()
    );
    state.next_start = Instant::now() + state.backoff;
    state.backoff = (state.backoff * 2).min(MAX_BACKOFF);
}

fn spawn(state: &mut Supervised, endpoint: &str) {
    let (st, mut cmd) = daemon_process::command("run", endpoint);
    match cmd.spawn() {
        Ok(child) => {
            log!(
                "pg_steadytext supervisor: started st daemon (pid {})",
                child.id()
            );
            state.child = Some(child);
            state.started = Instant::now();
        }
        Err(e) => {
            warning!("pg_steadytext supervisor: cannot run {st}: {e}");
            state.next_start = Instant::now() + state.backoff;
            state.backoff = (state.backoff * 2).min(MAX_BACKOFF);
        }
    }
}
