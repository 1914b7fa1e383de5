//! Which process a daemon's pid file names, when it can be believed: the file holds the pid and
//! the process's start time (clock ticks since boot, from /proc/<pid>/stat). A pid is believed
//! only when the file is this user's and nobody else may write it, the process is alive, is this
//! user's, started at the recorded time (so a pid reused after the daemon died is not it) and
//! runs `st daemon run`.
//!
//! `st daemon stop` signals only such a process (never a pid an answer over the wire names), and
//! a client waiting on a daemon that does not answer its pings tells a daemon that is gone from
//! one that is alive but slow by it.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Field 22 of /proc/<pid>/stat (the start time), and whether the process is a zombie.
pub fn stat(pid: u32) -> Option<(u64, bool)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let zombie = fields.first()? == &"Z";
    let start = fields.get(19)?.parse().ok()?;
    Some((start, zombie))
}

/// Whether `pid` runs (a zombie no longer does).
pub fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(_, zombie)| !zombie)
}

/// The daemon process `path` names, when it is believable (see the module).
pub fn read(path: &Path) -> Option<u32> {
    // SAFETY: geteuid(2) cannot fail.
    let me = unsafe { libc::geteuid() };
    let meta = fs::metadata(path).ok()?;
    if meta.uid() != me || meta.mode() & 0o022 != 0 {
        return None;
    }
    let text = fs::read_to_string(path).ok()?;
    let mut fields = text.split_whitespace();
    let pid: u32 = fields.next()?.parse().ok()?;
    let recorded_start: u64 = fields.next()?.parse().ok()?;
    let (start, zombie) = stat(pid)?;
    if zombie || start != recorded_start {
        return None;
    }
    if fs::metadata(format!("/proc/{pid}")).ok()?.uid() != me {
        return None;
    }
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let runs_daemon = args.windows(2).any(|w| w == [&b"daemon"[..], &b"run"[..]]);
    runs_daemon.then_some(pid)
}
