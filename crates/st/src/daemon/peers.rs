//! Who is at the other end of a TCP connection, and how many connections each may hold.
//!
//! A peer is the OS user that owns the client's socket when the client runs on this machine
//! (the kernel says so: an exact `sock_diag` lookup of the connection's other end, which any
//! user may make, as `ss -e` does), else the client's address. The daemon's own user is never
//! refused (it could stop the daemon anyway); every other peer may hold at most
//! `--max-connections-per-peer` connections on each listener, and all of them together at most
//! `--max-connections`. A connection over either bound is closed as soon as it is accepted, so
//! another user's thousands of idle connections cost the daemon a bounded number of
//! descriptors, and never the descriptors its own clients need.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    /// A process of this OS user on this machine.
    User(u32),
    /// A client elsewhere (or one the kernel would not name).
    Address(IpAddr),
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::User(uid) => write!(f, "uid {uid}"),
            Peer::Address(ip) => write!(f, "{ip}"),
        }
    }
}

/// The peer of the connection accepted at `local` from `remote`.
pub fn identify(local: SocketAddr, remote: SocketAddr) -> Peer {
    let (local, remote) = (unmapped(local), unmapped(remote));
    match socket_owner(local, remote) {
        Some(uid) => Peer::User(uid),
        None => Peer::Address(remote.ip()),
    }
}

/// An IPv4 address seen through an IPv6 socket as itself.
fn unmapped(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}

/// The uid owning the socket at `remote` connected to `local`, when it is on this machine.
fn socket_owner(local: SocketAddr, remote: SocketAddr) -> Option<u32> {
    // <linux/inet_diag.h>, <linux/sock_diag.h>, <linux/netlink.h>
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct SockId {
        sport: [u8; 2],
        dport: [u8; 2],
        src: [u8; 16],
        dst: [u8; 16],
        interface: u32,
        cookie: [u32; 2],
    }
    #[repr(C)]
    struct Request {
        len: u32,
        kind: u16,
        flags: u16,
        seq: u32,
        pid: u32,
        family: u8,
        protocol: u8,
        ext: u8,
        pad: u8,
        states: u32,
        id: SockId,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Reply {
        len: u32,
        kind: u16,
        flags: u16,
        seq: u32,
        pid: u32,
        family: u8,
        state: u8,
        timer: u8,
        retrans: u8,
        id: SockId,
        expires: u32,
        rqueue: u32,
        wqueue: u32,
        uid: u32,
        inode: u32,
    }
    const NETLINK_SOCK_DIAG: libc::c_int = 4;
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLM_F_REQUEST: u16 = 1;
    const NLMSG_ERROR: u16 = 2;

    fn bytes(ip: IpAddr) -> [u8; 16] {
        let mut out = [0u8; 16];
        match ip {
            IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
            IpAddr::V6(v6) => out.copy_from_slice(&v6.octets()),
        }
        out
    }
    let family = match (local.ip(), remote.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) => libc::AF_INET,
        (IpAddr::V6(_), IpAddr::V6(_)) => libc::AF_INET6,
        _ => return None,
    };
    // The client's socket: its source is the remote end, its destination this listener.
    let request = Request {
        len: std::mem::size_of::<Request>() as u32,
        kind: SOCK_DIAG_BY_FAMILY,
        flags: NLM_F_REQUEST,
        seq: 1,
        pid: 0,
        family: family as u8,
        protocol: libc::IPPROTO_TCP as u8,
        ext: 0,
        pad: 0,
        states: u32::MAX,
        id: SockId {
            sport: remote.port().to_be_bytes(),
            dport: local.port().to_be_bytes(),
            src: bytes(remote.ip()),
            dst: bytes(local.ip()),
            interface: 0,
            cookie: [u32::MAX; 2],
        },
    };
    // SAFETY: plain system calls on a socket this function owns; the buffers are sized by
    // their types.
    unsafe {
        let fd = libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            NETLINK_SOCK_DIAG,
        );
        if fd < 0 {
            return None;
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: 200_000,
        };
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        let mut kernel: libc::sockaddr_nl = std::mem::zeroed();
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        let sent = libc::sendto(
            fd.as_raw_fd(),
            (&request as *const Request).cast(),
            std::mem::size_of::<Request>(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        );
        if sent < 0 {
            return None;
        }
        let mut buffer = [0u64; 128];
        let got = libc::recv(
            fd.as_raw_fd(),
            buffer.as_mut_ptr().cast(),
            std::mem::size_of_val(&buffer),
            0,
        );
        if got < std::mem::size_of::<Reply>() as isize {
            return None; // an error (no such socket: not on this machine) or nothing
        }
        let reply: Reply = std::ptr::read_unaligned(buffer.as_ptr().cast());
        if reply.kind == NLMSG_ERROR || reply.kind != SOCK_DIAG_BY_FAMILY {
            return None;
        }
        let same = reply.id.sport == request.id.sport
            && reply.id.dport == request.id.dport
            && reply.id.src[..] == request.id.src[..]
            && reply.id.dst[..] == request.id.dst[..];
        same.then_some(reply.uid)
    }
}

/// The local and remote addresses of a connected TCP socket.
pub fn addresses(fd: RawFd) -> Option<(SocketAddr, SocketAddr)> {
    fn get(
        fd: RawFd,
        call: unsafe extern "C" fn(
            libc::c_int,
            *mut libc::sockaddr,
            *mut libc::socklen_t,
        ) -> libc::c_int,
    ) -> Option<SocketAddr> {
        // SAFETY: the storage is large enough for any address; the length says how much the
        // kernel wrote.
        unsafe {
            let mut storage: libc::sockaddr_storage = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            if call(
                fd,
                (&mut storage as *mut libc::sockaddr_storage).cast(),
                &mut len,
            ) != 0
            {
                return None;
            }
            match storage.ss_family as libc::c_int {
                libc::AF_INET => {
                    let a: libc::sockaddr_in =
                        std::ptr::read((&storage as *const libc::sockaddr_storage).cast());
                    let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                    Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(a.sin_port)))
                }
                libc::AF_INET6 => {
                    let a: libc::sockaddr_in6 =
                        std::ptr::read((&storage as *const libc::sockaddr_storage).cast());
                    let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
                    Some(SocketAddr::new(IpAddr::V6(ip), u16::from_be(a.sin6_port)))
                }
                _ => None,
            }
        }
    }
    Some((get(fd, libc::getsockname)?, get(fd, libc::getpeername)?))
}

/// How many connections peers may hold on one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most connections of one peer (other than the daemon's own user).
    pub per_peer: usize,
    /// Most connections of all other peers together.
    pub total: usize,
}

/// The connections each peer holds on one listener.
#[derive(Debug)]
pub struct Budget {
    limits: Limits,
    own_uid: u32,
    held: HashMap<Peer, usize>,
    others: usize,
    refused: u64,
}

impl Budget {
    /// A budget for a listener of this process's user.
    pub fn new(limits: Limits) -> Budget {
        // SAFETY: geteuid(2) cannot fail.
        let own_uid = unsafe { libc::geteuid() };
        Budget {
            limits,
            own_uid,
            held: HashMap::new(),
            others: 0,
            refused: 0,
        }
    }

    /// Counts a new connection of `peer`; false (and nothing counted) when it is over a bound.
    pub fn admit(&mut self, peer: Peer) -> bool {
        let own = peer == Peer::User(self.own_uid);
        let held = self.held.get(&peer).copied().unwrap_or(0);
        if !own && (held >= self.limits.per_peer || self.others >= self.limits.total) {
            self.refused += 1;
            return false;
        }
        *self.held.entry(peer).or_insert(0) += 1;
        if !own {
            self.others += 1;
        }
        true
    }

    /// Uncounts a connection that `admit` counted.
    pub fn release(&mut self, peer: Peer) {
        if let Some(held) = self.held.get_mut(&peer) {
            *held -= 1;
            if *held == 0 {
                self.held.remove(&peer);
            }
            if peer != Peer::User(self.own_uid) {
                self.others = self.others.saturating_sub(1);
            }
        }
    }

    /// Connections held now, and connections refused so far.
    pub fn counts(&self) -> (usize, u64) {
        (self.held.values().sum(), self.refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    /// A connection from this process is this user's; the kernel names no owner for a
    /// connection that does not exist.
    #[test]
    fn the_kernel_names_the_user_of_a_local_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, remote) = listener.accept().unwrap();
        let (local, peer) = addresses(server.as_raw_fd()).unwrap();
        assert_eq!(peer, remote);
        assert_eq!(local, listener.local_addr().unwrap());
        assert_eq!(peer, client.local_addr().unwrap());
        // SAFETY: geteuid(2) cannot fail.
        let me = unsafe { libc::geteuid() };
        assert_eq!(identify(local, peer), Peer::User(me));
        let gone = SocketAddr::new(peer.ip(), peer.port().wrapping_add(1).max(1));
        assert_eq!(identify(local, gone), Peer::Address(gone.ip()));
    }

    #[test]
    fn a_budget_bounds_other_peers_not_its_own_user() {
        let mut budget = Budget::new(Limits {
            per_peer: 3,
            total: 5,
        });
        let own = Peer::User(budget.own_uid);
        let (a, b, c) = (
            Peer::User(budget.own_uid + 1),
            Peer::User(budget.own_uid + 2),
            Peer::Address("192.0.2.1".parse().unwrap()),
        );
        assert!((0..3).all(|_| budget.admit(a)));
        assert!(!budget.admit(a), "a fourth connection of one peer");
        assert!((0..2).all(|_| budget.admit(b)));
        assert!(!budget.admit(c), "a sixth connection of other peers");
        assert!((0..100).all(|_| budget.admit(own)), "the daemon's own user");
        budget.release(a);
        assert!(budget.admit(c), "a released connection makes room");
        assert!(!budget.admit(a));
        budget.release(Peer::User(12345)); // never admitted: nothing changes
        assert_eq!(budget.counts(), (105, 3));
    }
}
