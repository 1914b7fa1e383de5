//! The daemon's process-wide resources: its umask and its file descriptors.

use super::peers::Limits;
use super::ConnectionArgs;

/// Descriptors kept for the daemon itself (model files, the cache, its own user's clients,
/// libzmq's and tokio's internals), beyond what other peers' connections may take.
const RESERVED_DESCRIPTORS: u64 = 256;

/// Sets the umask to 077: whatever the daemon or a library it calls creates (SQLite, libzmq's
/// ipc socket, llama.cpp) is its user's alone. Files are also created with private modes, so
/// this is the second of two locks.
pub fn private_umask() {
    // SAFETY: umask(2) cannot fail.
    unsafe { libc::umask(0o077) };
}

/// The descriptor limit: (soft, hard) after raising the soft one to the hard one, and the
/// soft one before.
fn raise_descriptor_limit() -> Option<(u64, u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        let before = limit.rlim_cur;
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
        Some((limit.rlim_cur, limit.rlim_max, before))
    }
}

/// Raises the descriptor limit, and the connection limits that fit in it: other peers'
/// connections on every listener leave [`RESERVED_DESCRIPTORS`] free. Logs both.
pub fn connection_limits(args: &ConnectionArgs, http: bool) -> Limits {
    let listeners = if http { 2 } else { 1 };
    let (soft, hard, before) = raise_descriptor_limit().unwrap_or((1024, 1024, 1024));
    let fits = usize::try_from(soft.saturating_sub(RESERVED_DESCRIPTORS) / listeners)
        .unwrap_or(usize::MAX)
        .max(1);
    let total = args.max_connections.clamp(1, fits);
    let limits = Limits {
        per_peer: args.max_connections_per_peer.clamp(1, total),
        total,
    };
    eprintln!(
        "st daemon: file descriptors: soft limit {soft} (was {before}), hard limit {hard}; \
         other peers may hold {} connections each and {} in all on each listener{}",
        limits.per_peer,
        limits.total,
        if total < args.max_connections {
            format!(" (--max-connections {} does not fit)", args.max_connections)
        } else {
            String::new()
        }
    );
    limits
}
