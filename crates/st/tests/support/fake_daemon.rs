//! What a process that binds the daemon's endpoint while the daemon is down can do, for the
//! impersonation tests (`tests/impersonation.rs`, and `tests/security/impersonation.sh`
//! through `examples/fake_daemon.rs`).
//!
//! A TCP listener on the daemon's port records every byte clients send (`bytes` in its
//! directory) and relays the connection to either
//! - an impostor: a ZeroMQ ROUTER that answers SteadyText's protocol as a daemon would (`pong`,
//!   a `stats` naming a pid of its choice, made-up results) and records every request it
//!   decodes (`messages`, one JSON string per line); plain ZeroMQ, or CURVE with a key pair of
//!   its own (not the daemon's), or
//! - a real daemon's endpoint (a wiretap: the bytes on the wire, nothing changed).

// Each user (the test, the example) uses part of it.
#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};

/// Where the listener sends what it receives.
pub enum Upstream {
    /// An impostor answering as a daemon, reporting `pid` in its stats; with `curve_secret`
    /// it is a CURVE server with that (its own) secret key.
    Impostor {
        pid: u32,
        curve_secret: Option<[u8; 32]>,
    },
    /// A real daemon at `tcp://host:port`.
    Relay(String),
}

/// A listener on a port, recording, relaying; stopped on drop.
pub struct Fake {
    /// The port it listens on.
    pub port: u16,
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

fn append(file: &Mutex<File>, bytes: &[u8]) {
    let mut file = file.lock().unwrap();
    let _ = file.write_all(bytes);
    let _ = file.flush();
}

impl Fake {
    /// Listens on 127.0.0.1:`port` (0: any free port), recording into `dir`.
    pub fn start(port: u16, dir: &Path, upstream: Upstream) -> std::io::Result<Fake> {
        std::fs::create_dir_all(dir)?;
        let open = |name: &str| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(name))
                .map(|f| Arc::new(Mutex::new(f)))
        };
        let bytes = open("bytes")?;
        let messages = open("messages")?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let target = match upstream {
            Upstream::Relay(endpoint) => {
                endpoint
                    .trim_start_matches("tcp://")
                    .replacen("localhost:", "127.0.0.1:", 1)
            }
            Upstream::Impostor { pid, curve_secret } => {
                let ctx = zmq::Context::new();
                let socket = ctx.socket(zmq::ROUTER).map_err(std::io::Error::other)?;
                if let Some(secret) = curve_secret {
                    socket
                        .set_curve_server(true)
                        .map_err(std::io::Error::other)?;
                    socket
                        .set_curve_secretkey(&secret)
                        .map_err(std::io::Error::other)?;
                }
                socket.set_linger(0).map_err(std::io::Error::other)?;
                socket
                    .bind("tcp://127.0.0.1:*")
                    .map_err(std::io::Error::other)?;
                let endpoint = socket
                    .get_last_endpoint()
                    .map_err(std::io::Error::other)?
                    .map_err(|_| std::io::Error::other("no endpoint"))?;
                let (stop, messages) = (stop.clone(), messages.clone());
                threads.push(std::thread::spawn(move || {
                    impostor(&ctx, &socket, pid, &messages, &stop)
                }));
                endpoint.trim_start_matches("tcp://").to_string()
            }
        };
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let accept_stop = stop.clone();
        threads.push(std::thread::spawn(move || {
            while !accept_stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        relay(client, &target, bytes.clone(), accept_stop.clone());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }));
        Ok(Fake {
            port,
            dir: dir.to_path_buf(),
            stop,
            threads,
        })
    }

    /// Every byte clients sent so far.
    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("bytes")).unwrap_or_default()
    }

    /// Every request the impostor decoded so far.
    pub fn messages(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("messages"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Waits until the listener has stopped (for the example, which runs until killed).
    pub fn join(mut self) {
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Copies one connection both ways, recording what the client sends.
fn relay(client: TcpStream, target: &str, record: Arc<Mutex<File>>, stop: Arc<AtomicBool>) {
    let _ = client.set_nonblocking(false);
    let Ok(upstream) = TcpStream::connect(target) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let pipe = move |mut from: TcpStream, mut to: TcpStream, record: Option<Arc<Mutex<File>>>| {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let _ = from.set_read_timeout(Some(Duration::from_millis(100)));
            let mut buffer = [0u8; 65536];
            while !stop.load(Ordering::Relaxed) {
                match from.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => {
                        if let Some(record) = &record {
                            append(record, &buffer[..n]);
                        }
                        if to.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => break,
                }
            }
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
        });
    };
    let (Ok(client2), Ok(upstream2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    pipe(client, upstream, Some(record));
    pipe(upstream2, client2, None);
}

/// Answers as a daemon would, with made-up results, recording every request.
fn impostor(
    _ctx: &zmq::Context,
    socket: &zmq::Socket,
    pid: u32,
    messages: &Mutex<File>,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Relaxed) {
        if !matches!(socket.poll(zmq::POLLIN, 50), Ok(n) if n > 0) {
            continue;
        }
        let Ok(frames) = socket.recv_multipart(zmq::DONTWAIT) else {
            continue;
        };
        let body = frames.last().cloned().unwrap_or_default();
        let line = serde_json::to_string(&String::from_utf8_lossy(&body)).unwrap();
        append(messages, format!("{line}\n").as_bytes());
        if body == b"ACK" || frames.len() != 3 {
            continue;
        }
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let id = request["id"].clone();
        let params = &request["params"];
        let answer = "an impostor's answer";
        let result = match request["method"].as_str().unwrap_or("") {
            "ping" => json!("pong"),
            "stats" => json!({
                "pid": pid, "endpoint": "impostor", "uptime_seconds": 3600.0,
                "fingerprint": "impostor", "models": [], "cache": {},
            }),
            "shutdown" => json!("shutdown initiated"),
            "cancel" => json!({ "cancelled": true }),
            "generate" => json!(answer),
            "generate_iter" => {
                let reply = json!({
                    "id": id, "result": { "token": "##STREAM_END##" }, "error": null,
                    "detail": { "text": answer },
                });
                let _ = socket.send_multipart(
                    [&frames[0][..], b"", reply.to_string().as_bytes()],
                    zmq::DONTWAIT,
                );
                continue;
            }
            "embed" => json!(vec![0.03125f32; 1024]),
            "embed_batch" => {
                let n = params["texts"].as_array().map_or(1, Vec::len);
                json!(vec![vec![0.03125f32; 1024]; n])
            }
            "rerank" => {
                let docs = params["documents"].as_array().cloned().unwrap_or_default();
                json!(docs.iter().map(|d| json!([d, 1.0])).collect::<Vec<_>>())
            }
            _ => Value::Null,
        };
        let reply = json!({ "id": id, "result": result, "error": null });
        let _ = socket.send_multipart(
            [&frames[0][..], b"", reply.to_string().as_bytes()],
            zmq::DONTWAIT,
        );
    }
}
