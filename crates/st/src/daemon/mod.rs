//! `st daemon run|start|stop|status|restart`: the daemon and its process management.

mod http;
mod inference;
mod lifetime;
mod metrics;
mod peers;
mod pid_file;
mod process;
mod resources;
mod router_guard;
mod server;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::json;
use steadytext::client::{self, DaemonClient};
use steadytext::daemon_keys::{self, Key, KeyPair};
use steadytext::defaults::Limits;
use steadytext::protocol;
use steadytext::request::Builder;
use steadytext::store::{Fetch, PathPolicy};

/// Where the daemon listens.
#[derive(Debug, Clone, clap::Args)]
pub struct Endpoint {
    /// A whole ZeroMQ endpoint, `ipc:///path/to/daemon.sock` or `tcp://host:port`
    /// (STEADYTEXT_DAEMON_ENDPOINT); overrides --host and --port.
    #[arg(long, env = "STEADYTEXT_DAEMON_ENDPOINT")]
    endpoint: Option<String>,
    /// Host to bind or reach (STEADYTEXT_DAEMON_HOST; loopback by default).
    #[arg(long, env = "STEADYTEXT_DAEMON_HOST", default_value = protocol::DEFAULT_HOST)]
    host: String,
    /// Port (STEADYTEXT_DAEMON_PORT).
    #[arg(long, env = "STEADYTEXT_DAEMON_PORT", default_value_t = protocol::DEFAULT_PORT)]
    port: u16,
    /// A file holding the daemon's token: a client that sends it may shut the daemon down and
    /// name model files by path (STEADYTEXT_DAEMON_TOKEN_FILE). Off `ipc://` it is sent only to
    /// a daemon whose public key is pinned, and accepted only by a daemon with a secret key.
    #[arg(long, env = "STEADYTEXT_DAEMON_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// The daemon's CURVE secret key file (STEADYTEXT_DAEMON_SECRET_KEY_FILE; `st daemon
    /// keygen` makes one): the daemon serves only CURVE clients that pin its public key, and
    /// the commands that talk to it pin that key.
    #[arg(long, env = "STEADYTEXT_DAEMON_SECRET_KEY_FILE")]
    secret_key_file: Option<PathBuf>,
    /// The daemon's CURVE public key file (STEADYTEXT_DAEMON_PUBLIC_KEY_FILE): talk only to the
    /// daemon that holds its secret key.
    #[arg(long, env = "STEADYTEXT_DAEMON_PUBLIC_KEY_FILE")]
    public_key_file: Option<PathBuf>,
    /// Where the daemon records its pid (the only pid `stop` signals); by default beside an
    /// ipc socket, or in the cache directory.
    #[arg(long)]
    pid_file: Option<PathBuf>,
}

impl Endpoint {
    /// The address to connect to.
    pub fn connect(&self) -> String {
        match &self.endpoint {
            Some(e) => e.clone(),
            None => client::endpoint(&self.host, self.port),
        }
    }

    /// The address to bind: Debian 12's libzmq cannot bind `tcp://localhost`.
    fn bind(&self) -> String {
        self.connect()
            .replacen("tcp://localhost:", "tcp://127.0.0.1:", 1)
    }

    /// --pid-file; else beside an ipc socket, `<socket>.pid`; for TCP, `<cache root>/daemon.pid`
    /// on the default port and `daemon-<port>.pid` on others.
    fn pid_file(&self) -> PathBuf {
        if let Some(path) = &self.pid_file {
            return path.clone();
        }
        let e = self.connect();
        if let Some(path) = e.strip_prefix("ipc://") {
            return PathBuf::from(format!("{path}.pid"));
        }
        let port = e
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(self.port);
        let name = if port == protocol::DEFAULT_PORT {
            "daemon.pid".to_string()
        } else {
            format!("daemon-{port}.pid")
        };
        steadytext::paths::cache_root().join(name)
    }

    /// The token, read from the token file.
    fn token(&self) -> Result<Option<String>> {
        let Some(path) = &self.token_file else {
            return Ok(None);
        };
        let token = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the token file {}", path.display()))?;
        let token = token.trim().to_string();
        if token.is_empty() {
            bail!("the token file {} is empty", path.display());
        }
        Ok(Some(token))
    }

    /// The daemon's key pair, when it is given its secret key.
    fn key_pair(&self) -> Result<Option<KeyPair>> {
        self.secret_key_file
            .as_deref()
            .map(daemon_keys::read_secret_key_file)
            .transpose()
            .map_err(anyhow::Error::from)
    }

    /// The public key a client pins: --public-key-file, else the secret key file's.
    fn server_key(&self) -> Result<Option<Key>> {
        if let Some(path) = &self.public_key_file {
            return Ok(Some(daemon_keys::read_public_key_file(path)?));
        }
        Ok(self.key_pair()?.map(|pair| pair.public))
    }

    /// Whether an answer at this endpoint comes from the daemon: its socket is `ipc://` (a
    /// directory's permissions say who may bind it) or its public key is pinned.
    fn authenticated(&self) -> bool {
        self.connect().starts_with("ipc://")
            || self.public_key_file.is_some()
            || self.secret_key_file.is_some()
    }

    /// A client of this endpoint, with the token and the daemon's public key when given.
    pub fn client(&self, timeout: Duration) -> Result<DaemonClient> {
        let client = self.probe(timeout)?.with_auth(self.token()?);
        client.check()?;
        Ok(client)
    }

    /// A client for what needs no token (`ping`, `stats`): with the daemon's public key when
    /// given, never the token.
    fn probe(&self, timeout: Duration) -> Result<DaemonClient> {
        Ok(DaemonClient::new(&self.connect(), timeout)
            .with_server_key(self.server_key()?)
            .with_pid_file(Some(self.pid_file())))
    }
}

/// Server options (run, start, restart).
#[derive(Debug, Clone, clap::Args)]
pub struct ServeOptions {
    #[command(flatten)]
    endpoint: Endpoint,
    /// llama.cpp threads per request (default: STEADYTEXT_THREADS or all cores).
    #[arg(long)]
    threads: Option<i32>,
    /// Serve one request at a time, even generations on models proven to batch (see
    /// docs/batch-invariance.md); the outputs are the same either way.
    #[arg(long)]
    serial: bool,
    /// Cancel a stream whose client has not acknowledged a piece for this long.
    #[arg(long, default_value_t = 30_000)]
    stream_timeout_ms: u64,
    /// Do not load the default models at start.
    #[arg(long)]
    no_preload: bool,
    /// Download a missing registry model when a request needs it (off: a missing model is an
    /// error; `st models download` fetches models ahead).
    #[arg(long)]
    allow_downloads: bool,
    /// Most requests waiting at once; more are answered "busy".
    #[arg(long, default_value_t = 64)]
    max_queue: usize,
    /// Largest request accepted, in bytes.
    #[arg(long, default_value_t = 16 << 20)]
    max_message_bytes: i64,
    /// Most model files loaded at once.
    #[arg(long, default_value_t = 4)]
    max_models: usize,
    /// Also serve OpenAI's API (/v1/models, /v1/chat/completions, /v1/completions,
    /// /v1/embeddings) and Prometheus metrics (/metrics) over HTTP at HOST:PORT, e.g.
    /// 127.0.0.1:8080 (STEADYTEXT_DAEMON_HTTP). Off loopback it needs --token-file (clients
    /// send the token as `Authorization: Bearer`).
    #[arg(long, value_name = "HOST:PORT", env = "STEADYTEXT_DAEMON_HTTP")]
    http: Option<std::net::SocketAddr>,
    /// End when the process PID ends (the extension passes its postmaster: a daemon started for
    /// a cluster never outlives it).
    #[arg(long, value_name = "PID")]
    exit_with: Option<i32>,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    connections: ConnectionArgs,
}

/// What a connection may hold, on the TCP endpoint and the HTTP listener.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectionArgs {
    /// Most connections one peer (an OS user on this machine, else an address) holds at once
    /// on each listener; more are closed as soon as they are accepted. The daemon's own user
    /// is not limited.
    #[arg(long, default_value_t = 256)]
    pub max_connections_per_peer: usize,
    /// Most connections all other peers together hold at once on each listener (lowered at
    /// start to what the descriptor limit leaves).
    #[arg(long, default_value_t = 2048)]
    pub max_connections: usize,
    /// Drop a TCP peer that has not completed the ZeroMQ handshake within this time.
    #[arg(long, default_value_t = 5_000)]
    pub handshake_timeout_ms: u64,
    /// Ping ZeroMQ peers this often; drop one that has been silent for three times as long.
    #[arg(long, default_value_t = 5_000)]
    pub heartbeat_ms: u64,
    /// Close an HTTP connection whose request head has not arrived within this time of the
    /// connection or of the previous response (an idle keep-alive connection included).
    #[arg(long, default_value_t = 5_000)]
    pub http_header_timeout_ms: u64,
    /// Answer 408 to an HTTP request whose body has not arrived within this time of its head.
    #[arg(long, default_value_t = 30_000)]
    pub http_body_timeout_ms: u64,
}

/// The input limits (the same names as the SQL settings `steadytext.max_*`).
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Most characters in a prompt, text, query or document.
    #[arg(long, default_value_t = Limits::default().max_prompt_length)]
    pub max_prompt_length: usize,
    /// Most tokens a generation may ask for.
    #[arg(long, default_value_t = Limits::default().max_tokens)]
    pub max_tokens_limit: usize,
    /// Most texts or documents in one request.
    #[arg(long, default_value_t = Limits::default().max_batch_size)]
    pub max_batch_size: usize,
    /// Most characters in all the texts of one request together.
    #[arg(long, default_value_t = Limits::default().max_request_length)]
    pub max_request_length: usize,
}

impl LimitArgs {
    /// As the library's limits.
    pub fn limits(&self) -> Limits {
        Limits {
            max_prompt_length: self.max_prompt_length,
            max_tokens: self.max_tokens_limit,
            max_batch_size: self.max_batch_size,
            max_request_length: self.max_request_length,
        }
    }
}

/// `st daemon` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DaemonCommand {
    /// Serve in the foreground (prints one line when ready).
    Run(ServeOptions),
    /// Start in the background; writes a pid file (see `status`).
    Start {
        #[command(flatten)]
        options: ServeOptions,
        /// Start even if a daemon answers at the endpoint.
        #[arg(long)]
        force: bool,
    },
    /// Stop the daemon at the endpoint, started by `start` or `run`: SIGTERM, then SIGKILL after
    /// --timeout seconds.
    Stop {
        #[command(flatten)]
        endpoint: Endpoint,
        /// Kill at once.
        #[arg(long)]
        force: bool,
        /// Seconds to wait for a graceful exit.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
    /// Whether it runs, its pid, endpoint, uptime and models.
    Status {
        #[command(flatten)]
        endpoint: Endpoint,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop, then start (waits for the endpoint to be free).
    Restart(ServeOptions),
    /// Make a CURVE key pair for `--secret-key-file` (kept when the file exists) and write its
    /// public key for clients; prints the public key.
    Keygen {
        /// The secret key file (made 0600).
        #[arg(long)]
        secret_key_file: PathBuf,
        /// The public key file [default: the secret key file's name with `.pub` added].
        #[arg(long)]
        public_key_file: Option<PathBuf>,
    },
}

/// Runs a `st daemon` subcommand.
pub fn run(command: DaemonCommand) -> Result<()> {
    if matches!(
        command,
        DaemonCommand::Run(_) | DaemonCommand::Start { .. } | DaemonCommand::Restart(_)
    ) {
        // What the daemon writes (its log, pid file, cache, sockets) is its user's alone,
        // whatever umask it was started under; files are also created with private modes.
        resources::private_umask();
    }
    match command {
        DaemonCommand::Run(options) => serve(&options),
        DaemonCommand::Start { options, force } => process::start(&options, force),
        DaemonCommand::Stop {
            endpoint,
            force,
            timeout,
        } => process::stop(&endpoint, force, Duration::from_secs(timeout)),
        DaemonCommand::Status { endpoint, json } => process::status(&endpoint, json),
        DaemonCommand::Restart(options) => {
            process::stop(&options.endpoint, false, Duration::from_secs(5))?;
            process::start(&options, false)
        }
        DaemonCommand::Keygen {
            secret_key_file,
            public_key_file,
        } => {
            let pair = daemon_keys::ensure_secret_key_file(&secret_key_file)?;
            let public_key_file = public_key_file.unwrap_or_else(|| {
                let mut name = secret_key_file.clone().into_os_string();
                name.push(".pub");
                PathBuf::from(name)
            });
            daemon_keys::write_public_key_file(&public_key_file, &pair.public)?;
            println!("{}", daemon_keys::z85_encode(&pair.public));
            Ok(())
        }
    }
}

fn serve(options: &ServeOptions) -> Result<()> {
    let fetch = if options.allow_downloads {
        Fetch::IfAllowed
    } else {
        Fetch::LocalOnly
    };
    let limits = options.limits.limits();
    let trusted = Builder {
        policy: PathPolicy::Any,
        fetch,
        limits,
        defaults: Default::default(),
        trust_model_ref: true,
    };
    let untrusted = Builder {
        policy: PathPolicy::ModelsDirOnly,
        trust_model_ref: false,
        ..trusted.clone()
    };
    steadytext::Engine::global().set_max_models(options.max_models);
    let connections = resources::connection_limits(&options.connections, options.http.is_some());
    let bind = options.endpoint.bind();
    let token = options.endpoint.token()?;
    let curve = options.endpoint.key_pair()?;
    if curve.is_none() && token.is_some() && !bind.starts_with("ipc://") {
        // A plain TCP client's token would have crossed the wire in clear: anyone who saw it
        // could replay it.
        eprintln!(
            "st daemon: the token authorises HTTP clients only; ZeroMQ clients on {bind} need \
             the daemon to have a secret key (--secret-key-file)"
        );
    }
    server::run(server::Config {
        bind,
        threads: options
            .threads
            .unwrap_or_else(steadytext::engine::default_threads),
        batching: !options.serial,
        stream_timeout: Duration::from_millis(options.stream_timeout_ms),
        preload: !options.no_preload,
        token,
        curve,
        pid_file: options.endpoint.pid_file(),
        trusted,
        untrusted,
        max_message_bytes: options.max_message_bytes,
        max_queue: options.max_queue.max(1),
        http: options.http.map(|bind| http::Config {
            bind,
            max_body_bytes: usize::try_from(options.max_message_bytes).unwrap_or(usize::MAX),
            header_timeout: Duration::from_millis(options.connections.http_header_timeout_ms),
            body_timeout: Duration::from_millis(options.connections.http_body_timeout_ms),
            connections,
        }),
        handshake_timeout: Duration::from_millis(options.connections.handshake_timeout_ms),
        heartbeat: Duration::from_millis(options.connections.heartbeat_ms),
        connections,
        exit_with: match options.exit_with {
            Some(pid) => Some(lifetime::Owner::of(pid).with_context(|| {
                format!("--exit-with {pid}: no such process (it has ended already)")
            })?),
            None => None,
        },
    })
}

/// `st cache stats`: from the running daemon when there is one, else from the file.
pub fn cache_stats(endpoint: &str) -> Result<serde_json::Value> {
    let client = client_from_env(endpoint, Duration::from_secs(2), false)?;
    if client.ping(Duration::from_millis(300)) {
        if let Ok((stats, _)) = client.call("stats", json!({}), &mut || true) {
            return Ok(stats["cache"].clone());
        }
    }
    let cache = steadytext::cache::FrecencyCache::open(&steadytext::cache::default_path())
        .map_err(anyhow::Error::msg)?;
    let kinds: serde_json::Map<String, serde_json::Value> = steadytext::cache::Kind::ALL
        .iter()
        .map(|&k| (format!("{k:?}").to_lowercase(), json!(cache.stats(k))))
        .collect();
    Ok(json!({ "path": cache.path(), "kinds": kinds }))
}

/// A client of `endpoint` with what the environment gives: the token of
/// STEADYTEXT_DAEMON_TOKEN_FILE and the public key of STEADYTEXT_DAEMON_PUBLIC_KEY_FILE (or of
/// STEADYTEXT_DAEMON_SECRET_KEY_FILE, for the daemon's own user).
fn client_from_env(endpoint: &str, timeout: Duration, token: bool) -> Result<DaemonClient> {
    let path = |name: &str| {
        std::env::var_os(name)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    };
    let endpoint = Endpoint {
        endpoint: Some(endpoint.to_string()),
        host: protocol::DEFAULT_HOST.to_string(),
        port: protocol::DEFAULT_PORT,
        token_file: path("STEADYTEXT_DAEMON_TOKEN_FILE"),
        secret_key_file: path("STEADYTEXT_DAEMON_SECRET_KEY_FILE"),
        public_key_file: path("STEADYTEXT_DAEMON_PUBLIC_KEY_FILE"),
        pid_file: None,
    };
    if token {
        endpoint.client(timeout)
    } else {
        endpoint.probe(timeout)
    }
}

/// A client of the daemon at STEADYTEXT_DAEMON_ENDPOINT (or _HOST/_PORT), with the token and
/// key of the environment (see `client_from_env`), or a clear error when none answers.
pub fn connect() -> Result<DaemonClient> {
    let endpoint = std::env::var("STEADYTEXT_DAEMON_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
        .unwrap_or_else(client::endpoint_from_env);
    let timeout = std::env::var("STEADYTEXT_DAEMON_TIMEOUT_MS")
        .ok()
        .and_then(|t| t.parse().ok())
        .map_or(Duration::from_secs(600), Duration::from_millis);
    let client = client_from_env(&endpoint, timeout, true)?;
    if !client.ping(Duration::from_millis(500)) {
        let pinned = if client.server_key().is_some() {
            " (none that holds the secret key of the pinned public key)"
        } else {
            ""
        };
        bail!(
            "no st daemon answers at {}{pinned}: start one with `st daemon start`",
            client.endpoint()
        );
    }
    Ok(client)
}
