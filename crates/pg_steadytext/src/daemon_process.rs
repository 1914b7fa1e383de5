//! The server's daemon as a process: its endpoint, its credentials, the clients that talk to
//! it, and the `st daemon` command lines that start and stop it (run without a shell, never
//! with user input).
//!
//! By default the daemon listens on a private socket in the data directory
//! (`ipc://<data directory>/pg_steadytext/daemon.sock`, in a 0700 directory), so only the server's
//! OS user (and root) can reach it, or bind it while the daemon is down. There CURVE would add
//! nothing: whoever could impersonate the daemon on that socket is the server's OS user, who can
//! read the daemon's secret key too. So the private socket stays plain ZeroMQ.
//!
//! Any other endpoint (`steadytext.daemon_endpoint`, or `steadytext.daemon_host`/`daemon_port`: a
//! TCP port, or a socket in a directory others may write) is a place another local user can
//! bind while the daemon is down (after `steadytext_daemon_stop()`, a crash, a restart). There
//! the daemon proves who it is before anything is sent: it runs with a CURVE key pair kept in
//! the private directory (`daemon.key`, 0600, made on first use; `daemon.key.pub` is its public
//! key, for `st` clients), every backend, queue worker and the supervisor pins its public key,
//! and the token (`daemon.token`, which authorises shutdown and model paths) travels only inside
//! the encrypted channel. An impostor's handshake fails: it receives no token and no prompt, and
//! no role is ever served its answers. The daemon records its pid in the private directory
//! (`daemon.pid`); `steadytext_daemon_stop()` signals that process only.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use pgrx::pg_sys;
use steadytext::client::DaemonClient;
use steadytext::daemon_keys;

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
    private_socket()
}

/// The private socket, the default endpoint.
fn private_socket() -> String {
    format!("ipc://{}", private_dir().join("daemon.sock").display())
}

/// Whether the daemon at `endpoint` must prove who it is (see the module): anywhere but the
/// private socket.
fn authenticated(endpoint: &str) -> bool {
    endpoint != private_socket()
}

/// The daemon's credential files of an endpoint that needs them (made on first use), `None`
/// for the private socket.
struct Credentials {
    token_file: PathBuf,
    secret_key_file: PathBuf,
    pid_file: PathBuf,
    token: String,
    public_key: daemon_keys::Key,
}

fn credentials(endpoint: &str) -> Option<Result<Credentials, String>> {
    if !authenticated(endpoint) {
        return None;
    }
    let dir = private_dir();
    let token_file = dir.join("daemon.token");
    let secret_key_file = dir.join("daemon.key");
    let made = daemon_keys::ensure_token_file(&token_file).and_then(|token| {
        let pair = daemon_keys::ensure_secret_key_file(&secret_key_file)?;
        // For `st` clients of this daemon (the key is public; the directory is not).
        let _ = daemon_keys::write_public_key_file(&dir.join("daemon.key.pub"), &pair.public);
        Ok((token, pair.public))
    });
    Some(
        made.map(|(token, public_key)| Credentials {
            token_file,
            secret_key_file,
            pid_file: dir.join("daemon.pid"),
            token,
            public_key,
        })
        .map_err(|e| e.to_string()),
    )
}

/// A client of the daemon at `endpoint`: on the private socket as it is, elsewhere pinning the
/// daemon's public key and holding its token. When the keys cannot be made, a client that
/// sends nothing (a daemon that cannot be authenticated is never used).
///
/// The client knows where the daemon records its pid when this cluster starts it (beside the
/// private socket, `st daemon`'s default for an ipc socket; else in the private directory), so
/// that a daemon that is alive but slow to answer a ping is not taken for a dead one.
pub fn client(endpoint: &str, timeout: Duration) -> DaemonClient {
    let client = DaemonClient::new(endpoint, timeout);
    match credentials(endpoint) {
        None => {
            let socket = endpoint.trim_start_matches("ipc://");
            client.with_pid_file(Some(PathBuf::from(format!("{socket}.pid"))))
        }
        Some(Ok(c)) => client
            .with_auth(Some(c.token))
            .with_server_key(Some(c.public_key))
            .with_pid_file(Some(c.pid_file)),
        Some(Err(why)) => {
            pgrx::warning!("the st daemon at {endpoint} cannot be authenticated: {why}");
            client.refusing(format!(
                "the st daemon at {endpoint} cannot be authenticated: {why}"
            ))
        }
    }
}

/// `st daemon <action> --endpoint E` (`run`, `start` or `stop`; the first two with
/// `--no-preload`), as `steadytext.st_path` names it, with the token, secret key and pid files
/// of an endpoint that needs them.
pub fn command(action: &str, endpoint: &str) -> (String, Command) {
    let st = guc::string(&guc::ST_PATH).unwrap_or_else(|| "st".into());
    let mut cmd = Command::new(&st);
    cmd.args(["daemon", action, "--endpoint", endpoint]);
    if let Some(Ok(c)) = credentials(endpoint) {
        cmd.arg("--token-file").arg(c.token_file);
        cmd.arg("--secret-key-file").arg(c.secret_key_file);
        cmd.arg("--pid-file").arg(c.pid_file);
    }
    if action != "stop" {
        cmd.arg("--no-preload");
        // However it starts (the supervisor's child, or detached on demand by a backend), the
        // daemon ends with this cluster's postmaster.
        // SAFETY: PostmasterPid is set before any backend or worker starts.
        let postmaster = unsafe { pg_sys::PostmasterPid };
        cmd.arg("--exit-with").arg(postmaster.to_string());
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
