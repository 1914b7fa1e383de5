//! `st daemon run --exit-with PID`: the daemon ends with the process that owns it.
//!
//! A daemon started for a PostgreSQL cluster (by its supervisor, or on demand by a backend, which
//! detaches it) must end with the cluster, or it keeps its port and its models after `pg_ctl
//! stop`. Its owner is the postmaster: a thread looks at that process every half second and
//! stops the daemon as SIGTERM would once it is gone. The process is named by its pid and the
//! start time it had when the daemon began, so a new process that reuses the pid is not taken
//! for it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the owner is looked at.
const INTERVAL: Duration = Duration::from_millis(500);

/// A process by its pid and its start time (clock ticks since boot, /proc's field 22).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pid: i32,
    started: u64,
}

impl Owner {
    /// The process `pid` as it is now; `None` when there is none.
    pub fn of(pid: i32) -> Option<Owner> {
        start_time(pid).map(|started| Owner { pid, started })
    }

    /// Whether that same process still runs.
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.started)
    }
}

fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields follow its last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    // After the name: state is field 3, starttime field 22.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Sets `stop` once `owner` has ended.
pub fn watch(owner: Owner, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        while owner.alive() {
            std::thread::sleep(INTERVAL);
        }
        tracing::info!(
            "the process {} this daemon ends with has ended: stopping",
            owner.pid
        );
        stop.store(true, Ordering::Relaxed);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_is_its_pid_and_start_time() {
        let me = Owner::of(std::process::id() as i32).expect("this process");
        assert!(me.alive());
        let other = Owner {
            started: me.started + 1,
            ..me
        };
        assert!(
            !other.alive(),
            "a pid with another start time is another process"
        );
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = Owner::of(child.id() as i32);
        child.wait().unwrap();
        assert!(gone.is_none_or(|g| !g.alive()));
    }

    #[test]
    fn the_watch_stops_the_daemon_when_its_owner_ends() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let owner = Owner::of(child.id() as i32).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        watch(owner, stop.clone());
        std::thread::sleep(Duration::from_millis(700));
        assert!(!stop.load(Ordering::Relaxed));
        child.kill().unwrap();
        child.wait().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(stop.load(Ordering::Relaxed));
    }
}
