//! Runs an evaluation that a caller controls (a prompt template) in a child process with a memory
//! and a CPU-time limit, so that no input can make the calling process allocate without bound.
//!
//! Bounding each operation of an interpreter (string concatenation, repetition, every filter,
//! list growth in loops) is a list that is never complete; bounding the process is a property.
//! The child is a `fork` of the caller: it shares nothing writable with it, starts with the
//! caller's memory as copy-on-write pages, gets `RLIMIT_AS` at what it already has plus the bound,
//! and `RLIMIT_CPU`. An allocation beyond the bound fails in the child, whose Rust runtime aborts
//! it: the caller sees the child end by a signal and reports the limit. The caller's own memory,
//! signal handlers and (in PostgreSQL) shared state are untouched, and the postmaster never sees
//! the child (it is not its child), so its death is not a backend crash.
//!
//! The child runs the closure and leaves with `_exit`: no destructor, no `atexit` handler and
//! none of PostgreSQL's exit callbacks run there. It must be called from a process whose other
//! threads hold no lock the closure needs (a PostgreSQL backend has no other thread while it
//! renders; glibc's `fork` keeps `malloc` usable in the child).

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};

/// The limits of one isolated evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Bytes of address space the child may add to what the caller had mapped.
    pub memory_bytes: usize,
    /// Bytes the result may have.
    pub output_bytes: usize,
    /// Wall-clock time before the child is killed (its CPU limit is the same, rounded up).
    pub time: Duration,
    /// What the limits are called in errors ("the template").
    pub what: &'static str,
    /// The setting that raises the memory bound, named in its error.
    pub memory_setting: &'static str,
}

/// How often the caller looks at `interrupted` while it waits.
const SLICE: Duration = Duration::from_millis(50);

/// Runs `f` in a child process within `bounds`; `interrupted` is asked every 50 ms and, when it
/// says so, the child is killed and the result is [`Error::cancelled`].
pub fn run(
    bounds: Bounds,
    interrupted: &dyn Fn() -> bool,
    f: impl FnOnce() -> Result<String>,
) -> Result<String> {
    let (read, write) = pipe()?;
    // SAFETY: fork has no preconditions; the child only runs `child` and leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::io(
            "cannot start a process for the evaluation",
            std::io::Error::last_os_error(),
        ));
    }
    if pid == 0 {
        drop(read);
        child(&bounds, write, f);
    }
    drop(write);
    let outcome = collect(pid, read, &bounds, interrupted);
    let status = reap(pid);
    match outcome? {
        Some(bytes) => decode(&bytes),
        None => Err(ended_by(status, &bounds)),
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors, which we own from here on.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::io(
            "cannot start a process for the evaluation",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: fresh descriptors from pipe2.
    unsafe { Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))) }
}

/// The child: limits, then `f`, its result on the pipe, `_exit`.
fn child(bounds: &Bounds, out: OwnedFd, f: impl FnOnce() -> Result<String>) -> ! {
    // SAFETY: process-local settings of this child only.
    unsafe {
        // Die with the caller, and take none of its signal handlers (PostgreSQL's would run its
        // exit path here): the defaults, every signal unblocked.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        for signal in 1..32 {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                libc::signal(signal, libc::SIG_DFL);
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        // An allocation that fails aborts with a message on stderr: not into the server's log.
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
        if null >= 0 {
            libc::dup2(null, 2);
        }
        let limit = |resource, value: u64| {
            let rlimit = libc::rlimit {
                rlim_cur: value,
                rlim_max: value,
            };
            libc::setrlimit(resource, &rlimit)
        };
        limit(libc::RLIMIT_CORE, 0);
        limit(libc::RLIMIT_CPU, bounds.time.as_secs().max(1) + 1);
        let mapped = mapped_bytes().unwrap_or(0);
        limit(
            libc::RLIMIT_AS,
            (mapped + bounds.memory_bytes as u64).max(mapped),
        );
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(Error::inference("the evaluation failed")));
    let bytes = encode(&result, bounds.output_bytes);
    let mut file = std::fs::File::from(out);
    let _ = std::io::Write::write_all(&mut file, &bytes);
    // SAFETY: leaves without running anything of the caller's (destructors, atexit handlers).
    unsafe { libc::_exit(0) }
}

/// The process's mapped bytes (`VmSize`), what `RLIMIT_AS` counts.
fn mapped_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().next()?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// `0` and the text, or `1`, the error kind's name, `\n` and the message.
fn encode(result: &Result<String>, output_bytes: usize) -> Vec<u8> {
    match result {
        Ok(text) if text.len() <= output_bytes => [&[0u8][..], text.as_bytes()].concat(),
        Ok(text) => encode(
            &Err(Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "the output has {} bytes, more than the limit of {output_bytes}",
                    text.len()
                ),
            )),
            output_bytes,
        ),
        Err(e) => [
            &[1u8][..],
            e.kind().as_str().as_bytes(),
            b"\n",
            e.message().as_bytes(),
        ]
        .concat(),
    }
}

fn decode(bytes: &[u8]) -> Result<String> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match bytes.split_first() {
        Some((0, rest)) => Ok(text(rest)),
        Some((1, rest)) => {
            let (kind, message) = rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or((rest, &[][..]), |i| (&rest[..i], &rest[i + 1..]));
            let kind = serde_json::from_str::<ErrorKind>(&format!("\"{}\"", text(kind)))
                .unwrap_or(ErrorKind::Inference);
            Err(Error::new(kind, text(message)))
        }
        _ => Err(Error::inference("the evaluation gave no result")),
    }
}

/// Reads the child's result; `None` when it ended without writing one.
fn collect(
    pid: libc::pid_t,
    read: OwnedFd,
    bounds: &Bounds,
    interrupted: &dyn Fn() -> bool,
) -> Result<Option<Vec<u8>>> {
    let deadline = Instant::now() + bounds.time;
    let mut file = std::fs::File::from(read);
    let mut bytes = Vec::new();
    let most = bounds.output_bytes + 4096;
    loop {
        let mut poll = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut poll, 1, SLICE.as_millis() as i32) };
        if interrupted() {
            kill(pid);
            return Err(Error::cancelled());
        }
        if Instant::now() >= deadline {
            kill(pid);
            return Err(Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "{} ran for more than {} s, the limit",
                    bounds.what,
                    bounds.time.as_secs()
                ),
            ));
        }
        if ready <= 0 {
            continue;
        }
        let mut chunk = [0u8; 65536];
        match file.read(&mut chunk) {
            Ok(0) => return Ok((!bytes.is_empty()).then_some(bytes)),
            Ok(n) if bytes.len() + n <= most => bytes.extend_from_slice(&chunk[..n]),
            Ok(_) => {
                kill(pid);
                return Err(Error::protocol("the evaluation wrote more than its output"));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("cannot read the evaluation's result", e)),
        }
    }
}

fn kill(pid: libc::pid_t) {
    // SAFETY: our own child, not yet reaped.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Waits for the child; its wait status, or `None` when the process reaps children itself.
fn reap(pid: libc::pid_t) -> Option<i32> {
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Some(status);
        }
        if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return None;
        }
    }
}

/// The error for a child that ended without a result.
fn ended_by(status: Option<i32>, bounds: &Bounds) -> Error {
    let signal = status
        .filter(|s| libc::WIFSIGNALED(*s))
        .map(|s| libc::WTERMSIG(s));
    match signal {
        Some(libc::SIGXCPU) | Some(libc::SIGKILL) => Error::new(
            ErrorKind::LimitExceeded,
            format!(
                "{} ran for more than {} s, the limit",
                bounds.what,
                bounds.time.as_secs()
            ),
        ),
        // An allocation beyond RLIMIT_AS aborts (SIGABRT); a stack that cannot grow is SIGSEGV.
        _ => Error::new(
            ErrorKind::LimitExceeded,
            format!(
                "{} needs more than {} bytes of memory, the limit ({})",
                bounds.what, bounds.memory_bytes, bounds.memory_setting
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds() -> Bounds {
        Bounds {
            memory_bytes: 64 << 20,
            output_bytes: 1 << 20,
            time: Duration::from_secs(10),
            what: "the test",
            memory_setting: "test.memory",
        }
    }

    #[test]
    fn a_result_and_an_error_come_back_whole() {
        let never = || false;
        assert_eq!(
            run(bounds(), &never, || Ok("é\n".repeat(3))).unwrap(),
            "é\né\né\n"
        );
        let e = run(bounds(), &never, || Err(Error::invalid("bad\nline"))).unwrap_err();
        assert_eq!(
            (e.kind(), e.message()),
            (ErrorKind::InvalidArgument, "bad\nline")
        );
    }

    #[test]
    fn memory_beyond_the_bound_is_a_limit_error_and_the_caller_lives() {
        let never = || false;
        let e = run(bounds(), &never, || {
            let mut v: Vec<Vec<u8>> = Vec::new();
            loop {
                v.push(vec![1u8; 8 << 20]);
                std::hint::black_box(&v);
            }
        })
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
        assert!(e.message().contains("test.memory"), "{e}");
        // Well under the bound is fine.
        let ok = run(bounds(), &never, || {
            Ok(vec![b'x'; 16 << 20].len().to_string())
        });
        assert_eq!(ok.unwrap(), (16 << 20).to_string());
    }

    #[test]
    fn an_output_over_its_bound_and_a_long_run_are_refused() {
        let never = || false;
        let e = run(bounds(), &never, || Ok("x".repeat(2 << 20))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
        let short = Bounds {
            time: Duration::from_secs(1),
            ..bounds()
        };
        let e = run(short, &never, || loop {
            std::hint::black_box(0);
        })
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
    }

    #[test]
    fn an_interrupt_kills_the_child() {
        let start = Instant::now();
        let asked = || start.elapsed() > Duration::from_millis(200);
        let e = run(bounds(), &asked, || loop {
            std::hint::black_box(0);
        })
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Cancelled);
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
