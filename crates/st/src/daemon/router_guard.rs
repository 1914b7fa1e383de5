//! The ROUTER socket's connections, bounded per peer (see `peers`).
//!
//! libzmq has no bound on the connections a listener accepts, and on EMFILE its I/O thread
//! spins on the listening socket. So the daemon watches its socket's events: each accepted TCP
//! connection is counted against its peer's budget and, when over it, shut down at once
//! (`shutdown(2)`, never `close(2)`: libzmq still owns the descriptor, sees the end of the
//! stream and closes it itself). A descriptor is acted on only while it still is a connection
//! to this listener from the address the count recorded, so a number libzmq closed and reused
//! meanwhile is never touched. What libzmq does itself: a peer that has not completed the
//! ZMTP handshake within `--handshake-timeout-ms` is dropped (ZMQ_HANDSHAKE_IVL), and a peer
//! that stops answering heartbeats (ZMQ_HEARTBEAT_IVL/TIMEOUT) too.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::peers::{self, Budget, Limits, Peer};

/// How often the counts are checked against the descriptors (an event libzmq did not send
/// would otherwise hold a count forever).
const SWEEP: Duration = Duration::from_secs(2);

/// A connection counted against its peer.
struct Held {
    peer: Peer,
    local: SocketAddr,
    remote: SocketAddr,
}

/// Watches a ROUTER socket's TCP connections.
pub struct RouterGuard {
    events: zmq::Socket,
    port: u16,
    budget: Budget,
    held: HashMap<RawFd, Held>,
    last_sweep: Instant,
}

impl RouterGuard {
    /// Starts watching `socket` before it is bound (then [`RouterGuard::set_port`]).
    pub fn new(ctx: &zmq::Context, socket: &zmq::Socket, limits: Limits) -> Result<RouterGuard> {
        let address = format!("inproc://steadytext-router-events-{}", std::process::id());
        socket
            .monitor(
                &address,
                (zmq::SocketEvent::ACCEPTED as u16 | zmq::SocketEvent::DISCONNECTED as u16) as i32,
            )
            .context("cannot watch the daemon's socket")?;
        let events = ctx.socket(zmq::PAIR)?;
        // libzmq's I/O thread blocks on a full event pipe: this end takes any number.
        events.set_rcvhwm(0)?;
        events.connect(&address)?;
        Ok(RouterGuard {
            events,
            port: 0,
            budget: Budget::new(limits),
            held: HashMap::new(),
            last_sweep: Instant::now(),
        })
    }

    /// The TCP port the socket is bound to: only connections to it are counted.
    pub fn set_port(&mut self, port: u16) {
        self.port = port;
    }

    /// What the server's loop polls.
    pub fn poll_item(&self) -> zmq::PollItem<'_> {
        self.events.as_poll_item(zmq::POLLIN)
    }

    /// Handles every event waiting, and sweeps now and then.
    pub fn on_events(&mut self) {
        while let Ok(frames) = self.events.recv_multipart(zmq::DONTWAIT) {
            let Some(head) = frames.first().filter(|f| f.len() >= 6) else {
                continue;
            };
            let event = u16::from_ne_bytes([head[0], head[1]]);
            let fd = u32::from_ne_bytes([head[2], head[3], head[4], head[5]]) as RawFd;
            if event == zmq::SocketEvent::ACCEPTED as u16 {
                self.on_accepted(fd);
            } else if event == zmq::SocketEvent::DISCONNECTED as u16 {
                self.forget(fd);
            }
        }
        if self.last_sweep.elapsed() >= SWEEP {
            self.sweep();
        }
    }

    fn on_accepted(&mut self, fd: RawFd) {
        // An event for a number libzmq reused would have been preceded by its disconnection.
        self.forget(fd);
        let Some((local, remote)) = peers::addresses(fd).filter(|(l, _)| l.port() == self.port)
        else {
            return; // gone already, or not a connection to this listener
        };
        let peer = peers::identify(local, remote);
        if self.budget.admit(peer) {
            self.held.insert(
                fd,
                Held {
                    peer,
                    local,
                    remote,
                },
            );
            return;
        }
        // Still the connection just identified: close it (libzmq closes the descriptor).
        if peers::addresses(fd) == Some((local, remote)) {
            // SAFETY: shutdown(2) ends the stream; the descriptor stays libzmq's to close.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        }
        let (held, refused) = self.budget.counts();
        if refused.is_power_of_two() {
            tracing::warn!(
                %peer, held, refused,
                "a peer is over its connection budget; its new connections are closed at once"
            );
        }
    }

    fn forget(&mut self, fd: RawFd) {
        if let Some(held) = self.held.remove(&fd) {
            self.budget.release(held.peer);
        }
    }

    /// Uncounts connections whose descriptor no longer is theirs.
    fn sweep(&mut self) {
        self.last_sweep = Instant::now();
        let stale: Vec<RawFd> = self
            .held
            .iter()
            .filter(|(&fd, held)| peers::addresses(fd) != Some((held.local, held.remote)))
            .map(|(&fd, _)| fd)
            .collect();
        for fd in stale {
            self.forget(fd);
        }
    }

    /// Connections counted now, and connections closed for being over a bound.
    pub fn counts(&self) -> (usize, u64) {
        self.budget.counts()
    }
}
