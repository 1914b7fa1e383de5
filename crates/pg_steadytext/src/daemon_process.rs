//! The server's daemon as a process: its endpoint, its token, and the `st daemon` command lines
//! that start it (run without a shell, never with user input).
//!
//! By default the daemon listens on a private socket in the data directory
//! (`ipc://<data directory>/pg_steadytext/daemon.sock`, in a 0700 directory), so only the server's
//! OS user (and root) can reach it. A TCP endpoint (`steadytext.daemon_endpoint`, or
//! `steadytext.daemon_host`/`daemon_port`) gets a token, kept in that directory, which every
//! backend sends and without which the daemon refuses shutdown and model paths.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use pgrx::pg_sys;

use crate::guc;

/// `<data directory>/pg_steadytext`, created 0700 on first use.
pub fn private_dir() -> PathBuf {
    // SAFETY: DataDir is set for the whole life of every server process.
    let data_dir = unsafe { std::ffi::CStr::from_ptr(pg_sys::DataDir) }
        .to_string_lossy()
        .into_owned();
    let dir = PathBuf::from(data_dir).join("pg_steadytext");
    if !dir.is_dir() {
        let _ = fs::create_dir_all(&dir);
        let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
    }
    dir
}

/// The daemon's endpoint: the settings, else the private socket.
pub fn endpoint() -> String {
    if let Some(endpoint) = guc::string(&guc::DAEMON_ENDPOINT) {
        return endpoint;
    }
    let host = guc::string(&guc::DAEMON_HOST);
    let port = guc::DAEMON_PORT.get();
    if host.is_some() || port != 0 {
        let host = host.unwrap_or_else(|| "localhost".into());
        let port = if port == 0 {
            steadytext::protocol::DEFAULT_PORT
        } else {
            port as u16
        };
        return steadytext::client::endpoint(&host, port);
    }
    format!("ipc://{}", private_dir().join("daemon.sock").display())
}

/// The token file of a TCP endpoint (made on first use), `None` for the private socket.
pub fn token_file(endpoint: &str) -> Option<PathBuf> {
    if endpoint.starts_with("ipc://") {
        return None;
    }
    let path = private_dir().join("daemon.token");
    if !path.is_file() {
        let mut bytes = [0u8; 32];
        fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .ok()?;
        let written = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, hex::encode(bytes).as_bytes()));
        if let Err(e) = written {
            // Another backend made it at the same moment: use theirs.
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return None;
            }
        }
    }
    Some(path)
}

/// The token of a TCP endpoint.
pub fn token(endpoint: &str) -> Option<String> {
    let path = token_file(endpoint)?;
    fs::read_to_string(path).ok().map(|t| t.trim().to_string())
}

/// `st daemon <action> --endpoint E [--token-file F]` (`run`, `start` or `stop`; the first two
/// with `--no-preload`), as `steadytext.st_path` names it.
pub fn command(action: &str, endpoint: &str) -> (String, Command) {
    let st = guc::string(&guc::ST_PATH).unwrap_or_else(|| "st".into());
    let mut cmd = Command::new(&st);
    cmd.args(["daemon", action, "--endpoint", endpoint]);
    if let Some(file) = token_file(endpoint) {
        cmd.arg("--token-file").arg(file);
    }
    if action != "stop" {
        cmd.arg("--no-preload");
    }
    cmd.stdin(Stdio::null());
    (st, cmd)
}

/// Runs `st daemon start`; `Err` says why it did not start.
pub fn start(endpoint: &str) -> Result<(), String> {
    let (st, mut cmd) = command("start", endpoint);
    match cmd.stdout(Stdio::null()).stderr(Stdio::piped()).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        Err(e) => Err(format!("could not run {st}: {e}")),
    }
}
