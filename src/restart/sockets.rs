//! Sockets on the tool side (the shape of `pipes.rs`): every socket of the computation is made
//! once by `dmtcp_restart` before any group (pid namespace) exists, so that each group inherits
//! it and every process finds it at its old fd numbers (a socket shared over fork is one socket
//! again; the two ends of a connection between two launches meet again).
//!
//! Pairing:
//! - UNIX: two records whose inodes name each other as peer (the kernel's `UNIX_DIAG_PEER`, saved
//!   by the library) are one connection: one `socketpair` of their type. A connected stream or
//!   seqpacket socket whose peer is not among the images (closed, or outside the computation)
//!   gets a socketpair whose other end nobody holds: it reads what was in flight, then
//!   end-of-file, and writes fail with EPIPE. The rest (listeners, bound or unbound datagram
//!   sockets) get a fresh socket of their type; the process binds, listens and reconnects it by
//!   the name it keeps in its own memory.
//! - TCP: two connected records are one connection when each one's local address and port are
//!   the other's peer address and port (never by inode, so that a later multi-host restart can
//!   match ends of two hosts the same way). It is made again between the same addresses: the
//!   server side (the end whose port a listener of the group has, else the first seen) through a
//!   temporary listener at its old address, the client side bound to its old port first
//!   (SO_REUSEADDR on both). A connection whose peer is not among the images is left out with a
//!   warning; the process puts a reset connection at its number.
//! - Listeners, UDP sockets and idle TCP sockets are made as their record says: bound to the
//!   same address and port (SO_REUSEADDR, and SO_REUSEPORT, IPV6_V6ONLY where they were set),
//!   listening with the same backlog, UDP connected to the same peer. Listeners are made after
//!   the connections (a temporary listener may need their port). `check_ports` tries every
//!   listener's port from `dmtcp_restart` itself before anything is created, so that a port
//!   taken by another program is reported by port and program.
//!
//! Bytes in flight: the process that copied a socket's receive queue writes it back through the
//! other end. When that process does not hold the other end itself, it gets a copy of it at a
//! spare fd (the lowest number its fd table does not use); the library finds it by the peer's
//! inode or address and closes it once refilled.
use super::pipes::ProcFds;
use super::plan::{FdPlacement, FdSource, FdWhat, ImageFacts, RESERVED_FDS};
use dmtcp_proto::image::socket_inet::{INET_PENDING, INET_REUSEADDR, INET_REUSEPORT, INET_V6ONLY};
use dmtcp_proto::image::socket_unix::{SHUT_RCV, SHUT_SEND, SOCK_DGRAM};
use dmtcp_proto::image::{InetAddr, InetSocketRecord, SockState, UnixSocketRecord};
use nix::sys::socket::{self as ns, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn, SockaddrIn6};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// One socket (or connected pair) to make for a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockPlan {
    /// `socketpair(AF_UNIX, ty)`: end 0 and end 1.
    UnixPair { ty: u8 },
    /// `socket(AF_UNIX, ty)`, named again by the process.
    UnixLone { ty: u8 },
    /// A TCP connection between the old addresses: end 0 the server side, end 1 the client.
    TcpPair { server: InetSocketRecord, client: InetSocketRecord },
    /// A TCP listener, an idle TCP socket or a UDP socket, made as the record says.
    Inet(InetSocketRecord),
}

/// The socket records of one image: (fd, record).
enum Rec {
    Unix(UnixSocketRecord),
    Inet(InetSocketRecord),
}

fn socks(img: &ImageFacts) -> impl Iterator<Item = (RawFd, Rec)> + '_ {
    img.fds.iter().filter_map(|f| match f.what {
        FdWhat::UnixSocket(r) => Some((f.fd, Rec::Unix(r))),
        FdWhat::InetSocket(r) => Some((f.fd, Rec::Inet(r))),
        _ => None,
    })
}

/// Text of an address, for messages.
pub fn show(a: &InetAddr) -> String {
    match a.as_v4() {
        Some(v) => SocketAddrV4::new(Ipv4Addr::from(v), a.port).to_string(),
        None => SocketAddrV6::new(Ipv6Addr::from(a.addr), a.port, 0, 0).to_string(),
    }
}

/// Where each socket (by kind and old inode) went: (plan index, end).
#[derive(Default)]
struct Assigned {
    unix: Vec<(u64, usize, u8)>,
    inet: Vec<(u32, usize, u8)>,
}

impl Assigned {
    fn unix(&self, ino: u64) -> Option<(usize, u8)> {
        self.unix.iter().find(|u| u.0 == ino).map(|u| (u.1, u.2))
    }
    fn inet(&self, ino: u32) -> Option<(usize, u8)> {
        self.inet.iter().find(|u| u.0 == ino).map(|u| (u.1, u.2))
    }
}

/// Plans the sockets of the computation (`members`: every image, in order); returns the sockets to
/// make, what each member gets, and warnings (connections to peers outside the computation).
pub fn plan(members: &[&ImageFacts]) -> (Vec<SockPlan>, Vec<ProcFds>, Vec<String>) {
    let mut plans = Vec::new();
    let mut warnings = Vec::new();
    let mut at = Assigned::default();
    let all_unix: Vec<UnixSocketRecord> = members
        .iter()
        .flat_map(|m| socks(m))
        .filter_map(|(_, r)| if let Rec::Unix(u) = r { Some(u) } else { None })
        .collect();
    let all_inet: Vec<InetSocketRecord> = members
        .iter()
        .flat_map(|m| socks(m))
        .filter_map(|(_, r)| if let Rec::Inet(i) = r { Some(i) } else { None })
        .collect();

    // TCP connections first (their order in the plan is the order they are made in).
    for r in &all_inet {
        if at.inet(r.inode).is_some() || r.sock_type != 1 || r.state != SockState::Connected {
            continue;
        }
        let Some(q) = all_inet.iter().find(|q| {
            q.inode != r.inode
                && q.sock_type == 1
                && q.state == SockState::Connected
                && q.local == r.peer
                && q.peer == r.local
                && at.inet(q.inode).is_none()
        }) else {
            continue;
        };
        let listens_on = |x: &InetSocketRecord| {
            all_inet.iter().any(|l| l.state == SockState::Listening && l.sock_type == 1 && l.local.port == x.local.port)
        };
        let (server, client) = if !listens_on(r) && listens_on(q) { (*q, *r) } else { (*r, *q) };
        at.inet.push((server.inode, plans.len(), 0));
        at.inet.push((client.inode, plans.len(), 1));
        plans.push(SockPlan::TcpPair { server, client });
    }
    for r in &all_unix {
        if at.unix(r.inode).is_some() {
            continue;
        }
        let mutual = all_unix.iter().find(|q| {
            q.inode != r.inode && r.peer != 0 && q.inode == r.peer && q.peer == r.inode && at.unix(q.inode).is_none()
        });
        if let Some(q) = mutual.filter(|_| r.state == SockState::Connected) {
            at.unix.push((r.inode, plans.len(), 0));
            at.unix.push((q.inode, plans.len(), 1));
            plans.push(SockPlan::UnixPair { ty: r.sock_type });
        } else if r.state == SockState::Connected && r.sock_type != SOCK_DGRAM {
            at.unix.push((r.inode, plans.len(), 0));
            plans.push(SockPlan::UnixPair { ty: r.sock_type });
        } else {
            at.unix.push((r.inode, plans.len(), 0));
            plans.push(SockPlan::UnixLone { ty: r.sock_type });
        }
    }
    for r in &all_inet {
        if at.inet(r.inode).is_some() || (r.sock_type == 1 && r.state == SockState::Connected) {
            continue;
        }
        at.inet.push((r.inode, plans.len(), 0));
        plans.push(SockPlan::Inet(*r));
    }

    let mut warned: Vec<(u64, bool)> = Vec::new();
    let per_member = members
        .iter()
        .map(|img| {
            let mut fds = ProcFds::default();
            let mut spares: Vec<(usize, u8)> = Vec::new();
            // An outside socket at 0-2 stays dmtcp_restart's own stdio there, and a copy of it
            // at a higher fd becomes a copy of that stdio fd (as `pipes` does).
            let inode_of = |r: &Rec| match r {
                Rec::Unix(u) => (u.inode, true),
                Rec::Inet(i) => (i.inode as u64, false),
            };
            let outside = |r: &Rec| match r {
                Rec::Unix(u) => at.unix(u.inode).is_some_and(|(sock, _)| {
                    matches!(plans[sock], SockPlan::UnixPair { .. })
                        && at.unix.iter().filter(|a| a.1 == sock).count() == 1
                }),
                Rec::Inet(i) => at.inet(i.inode).is_none(),
            };
            let stdio_of = |key: (u64, bool)| {
                socks(img).find(|(fd, r)| (0..=2).contains(fd) && inode_of(r) == key && outside(r)).map(|(fd, _)| fd)
            };
            for (fd, rec) in socks(img) {
                let (placed, pending, key) = match &rec {
                    Rec::Unix(u) => (at.unix(u.inode), u.pending > 0, (u.inode, true)),
                    Rec::Inet(i) => (at.inet(i.inode), i.flags & INET_PENDING != 0, (i.inode as u64, false)),
                };
                if outside(&rec) {
                    if let Some(k) = stdio_of(key) {
                        if fd > 2 && !RESERVED_FDS.contains(&fd) {
                            fds.placed.push(FdPlacement { fd, source: FdSource::Stdio(k) });
                        }
                        continue;
                    }
                }
                let Some((sock, end)) = placed else {
                    if let Rec::Inet(i) = &rec {
                        if !warned.contains(&key) && !to_a_listener(i, &all_inet) {
                            warned.push(key);
                            warnings.push(format!(
                                "{}: fd {fd} is a TCP connection from {} to {}, outside the computation: \
                                 after the restart it fails as if reset by its peer",
                                img.path.display(),
                                show(&i.local),
                                show(&i.peer)
                            ));
                        }
                    }
                    continue;
                };
                if let (Rec::Unix(u), SockPlan::UnixPair { .. }) = (&rec, &plans[sock]) {
                    let orphan = at.unix.iter().filter(|a| a.1 == sock).count() == 1;
                    // No peer inode and no shutdown: the peer waited in a listener's accept
                    // queue, and the process connects to it again (the library's
                    // `connect_again`); a peer that closed left both shutdown bits.
                    let queued = u.peer == 0 && u.shutdown == 0;
                    if orphan && !queued && u.shutdown != SHUT_RCV | SHUT_SEND && !warned.contains(&key) {
                        warned.push(key);
                        warnings.push(format!(
                            "{}: fd {fd} is a UNIX socket connected to a peer outside the computation: \
                             after the restart it reads end-of-file",
                            img.path.display()
                        ));
                    }
                }
                if RESERVED_FDS.contains(&fd) || fd < 0 {
                    fds.skipped.push(fd);
                    continue;
                }
                fds.placed.push(FdPlacement { fd, source: FdSource::Socket { sock, end } });
                let paired = matches!(plans[sock], SockPlan::UnixPair { .. } | SockPlan::TcpPair { .. });
                if pending && paired {
                    spares.push((sock, 1 - end));
                }
            }
            // The other end for refilling, where this process does not hold it itself.
            for (sock, end) in spares {
                let holds = fds.placed.iter().any(|p| p.source == FdSource::Socket { sock, end });
                if holds {
                    continue;
                }
                let used = |n: RawFd| {
                    img.fds.iter().any(|f| f.fd == n)
                        || fds.placed.iter().any(|p| p.fd == n)
                        || RESERVED_FDS.contains(&n)
                };
                let spare = (3..).find(|&n| !used(n)).expect("a free fd number");
                fds.placed.push(FdPlacement { fd: spare, source: FdSource::Socket { sock, end } });
            }
            fds
        })
        .collect();
    (plans, per_member, warnings)
}

/// Whether the unpaired connection `c` leads to a listener of the computation (its own
/// address, or a wildcard one on its port): it waited in that listener's accept queue, and the
/// process connects to it again after the restart (the library's `connect_again`), so it is not
/// an outside peer.
fn to_a_listener(c: &InetSocketRecord, all: &[InetSocketRecord]) -> bool {
    all.iter().any(|l| {
        l.state == SockState::Listening
            && l.sock_type == 1
            && l.local.port == c.peer.port
            && (l.local == c.peer || l.local.addr == [0; 16] || l.local.as_v4() == Some([0; 4]))
    })
}

/// How long `check_ports` waits for closing connections to leave a port (the kernel's
/// TIME_WAIT lasts 60 s).
const CLOSING_WAIT: std::time::Duration = std::time::Duration::from_secs(65);

/// Whether the TCP sockets on local port `port` are all closing ones (FIN_WAIT1/2, TIME_WAIT,
/// CLOSE, LAST_ACK, CLOSING), and there is at least one: no live socket, which would hold
/// the port for good.
fn only_closing_on(port: u16) -> bool {
    let mut states = Vec::new();
    for t in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(t) {
            states.extend(states_on_port(&text, port));
        }
    }
    !states.is_empty() && states.iter().all(|s| matches!(s, 0x04 | 0x05 | 0x06 | 0x07 | 0x09 | 0x0B))
}

/// The states (`st` column) of the sockets whose local port is `port`, in /proc/net/tcp form.
fn states_on_port(text: &str, port: u16) -> Vec<u8> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local = f.get(1)?;
            let p = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
            (p == port).then(|| u8::from_str_radix(f.get(3)?, 16).ok()).flatten()
        })
        .collect()
}

/// A listener's address, program and image, for `check_ports`.
pub struct Listener<'a> {
    pub image: &'a ImageFacts,
    pub program: String,
    pub rec: InetSocketRecord,
}

/// Tries every TCP listener's port before anything is made: a port that another program holds
/// now is an error naming the port and the program.
pub fn check_ports(listeners: &[Listener<'_>]) -> Result<(), String> {
    for l in listeners {
        if l.rec.state != SockState::Listening || l.rec.sock_type != 1 {
            continue;
        }
        let try_bind = || {
            new_inet(&l.rec).and_then(|s| {
                bind_to(&s, l.rec.family, &l.rec.local)?;
                Ok(s)
            })
        };
        let mut s = try_bind();
        // A program without SO_REUSEADDR cannot bind its listener again while connections that
        // were closed on its port (before the kill, or by a kill of another kind than ours) sit
        // in TIME_WAIT: the kernel drops them within a minute, so we wait for that, saying so.
        let deadline = std::time::Instant::now() + CLOSING_WAIT;
        let mut told = false;
        while matches!(s, Err(nix::errno::Errno::EADDRINUSE))
            && std::time::Instant::now() < deadline
            && only_closing_on(l.rec.local.port)
        {
            if !told {
                log::warn!(
                    "TCP port {} of {} is held by closed connections of the killed run (TIME_WAIT); \
                     waiting for the kernel to drop them (at most a minute)",
                    l.rec.local.port,
                    l.program
                );
                told = true;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
            s = try_bind();
        }
        if let Err(e) = s {
            // Our `--kill` resets connections; after another kind of end, the old ones may sit
            // in TIME_WAIT on the port for a minute.
            let hint = if e == nix::errno::Errno::EADDRINUSE {
                " (a program already listening there, or connections of the killed run in \
                 TIME_WAIT, which the kernel drops within a minute)"
            } else {
                ""
            };
            return Err(format!(
                "{}: {} listened on TCP port {} ({}), which is not free now: {}{hint}",
                l.image.path.display(),
                l.program,
                l.rec.local.port,
                show(&l.rec.local),
                e.desc()
            ));
        }
    }
    Ok(())
}

/// The computation's sockets, made by `dmtcp_restart`: index = `FdSource::Socket::sock`.
pub struct Made {
    socks: Vec<(OwnedFd, Option<OwnedFd>)>,
}

fn family(f: u8) -> AddressFamily {
    if f == 4 {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

fn sock_type(t: u8) -> SockType {
    match t {
        1 => SockType::Stream,
        5 => SockType::SeqPacket,
        _ => SockType::Datagram,
    }
}

/// A socket of the record's family and type with the options that must precede bind.
fn new_inet(r: &InetSocketRecord) -> nix::Result<OwnedFd> {
    let s = ns::socket(family(r.family), sock_type(r.sock_type), SockFlag::SOCK_CLOEXEC, None)?;
    if r.flags & INET_REUSEADDR != 0 || r.sock_type == 1 {
        ns::setsockopt(&s, sockopt::ReuseAddr, &true)?;
    }
    if r.flags & INET_REUSEPORT != 0 {
        ns::setsockopt(&s, sockopt::ReusePort, &true)?;
    }
    if r.family == 6 {
        ns::setsockopt(&s, sockopt::Ipv6V6Only, &(r.flags & INET_V6ONLY != 0))?;
    }
    Ok(s)
}

fn bind_to(s: &OwnedFd, fam: u8, a: &InetAddr) -> nix::Result<()> {
    if fam == 4 {
        let v4 = a.as_v4().unwrap_or([0; 4]);
        ns::bind(s.as_raw_fd(), &SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::from(v4), a.port)))
    } else {
        ns::bind(s.as_raw_fd(), &SockaddrIn6::from(SocketAddrV6::new(Ipv6Addr::from(a.addr), a.port, 0, 0)))
    }
}

fn connect_to(s: &OwnedFd, fam: u8, a: &InetAddr) -> nix::Result<()> {
    if fam == 4 {
        let v4 = a.as_v4().unwrap_or([0; 4]);
        ns::connect(s.as_raw_fd(), &SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::from(v4), a.port)))
    } else {
        ns::connect(s.as_raw_fd(), &SockaddrIn6::from(SocketAddrV6::new(Ipv6Addr::from(a.addr), a.port, 0, 0)))
    }
}

fn backlog(n: u32) -> ns::Backlog {
    ns::Backlog::new(n.clamp(1, libc::SOMAXCONN as u32) as i32).unwrap_or(ns::Backlog::MAXCONN)
}

/// The server address a client reaches: the server's own, or loopback for a wildcard.
fn reach(server: &InetSocketRecord) -> InetAddr {
    let a = server.local;
    if a.addr == [0; 16] {
        InetAddr { addr: Ipv6Addr::LOCALHOST.octets(), port: a.port }
    } else if a.as_v4() == Some([0; 4]) {
        InetAddr::v4([127, 0, 0, 1], a.port)
    } else {
        a
    }
}

/// Binds `s` to `a`, or, when the old port is still held by what is left of the old
/// connection (an end without SO_REUSEADDR lingering in TIME_WAIT or FIN_WAIT after the kill),
/// to another port of the same address: the connection is made all the same (the library finds
/// the ends by their new addresses), with a warning.
fn bind_or_move(s: &OwnedFd, fam: u8, a: &InetAddr) -> nix::Result<()> {
    match bind_to(s, fam, a) {
        Err(nix::errno::Errno::EADDRINUSE) => {
            log::warn!("TCP {} is still held by the old connection: the restarted one uses another port", show(a));
            bind_to(s, fam, &InetAddr { port: 0, ..*a })
        }
        r => r,
    }
}

fn tcp_pair(server: &InetSocketRecord, client: &InetSocketRecord) -> nix::Result<(OwnedFd, OwnedFd)> {
    let l = new_inet(server)?;
    bind_or_move(&l, server.family, &server.local)?;
    ns::listen(&l, backlog(8))?;
    let to = local_of(&l, server)?;
    let c = new_inet(client)?;
    bind_or_move(&c, client.family, &client.local)?;
    connect_to(&c, client.family, &reach(&to))?;
    let a = ns::accept4(&l, SockFlag::SOCK_CLOEXEC)?;
    Ok((a, c))
}

/// `r` with the local address `s` is bound to now.
fn local_of(s: &OwnedFd, r: &InetSocketRecord) -> nix::Result<InetSocketRecord> {
    let a: ns::SockaddrStorage = ns::getsockname(s.as_raw_fd())?;
    let local = if let Some(v4) = a.as_sockaddr_in() {
        InetAddr::v4(v4.ip().octets(), v4.port())
    } else if let Some(v6) = a.as_sockaddr_in6() {
        InetAddr { addr: v6.ip().octets(), port: v6.port() }
    } else {
        r.local
    };
    Ok(InetSocketRecord { local, ..*r })
}

/// Makes the sockets of `plans` (close-on-exec): connections first, then the rest.
pub fn make(plans: &[SockPlan]) -> Result<Made, String> {
    let mut made: Vec<Option<(OwnedFd, Option<OwnedFd>)>> = (0..plans.len()).map(|_| None).collect();
    for (i, p) in plans.iter().enumerate() {
        if let SockPlan::TcpPair { server, client } = p {
            let (a, c) = tcp_pair(server, client).map_err(|e| {
                format!("cannot connect TCP {} to {} again: {}", show(&client.local), show(&server.local), e.desc())
            })?;
            made[i] = Some((a, Some(c)));
        }
    }
    for (i, p) in plans.iter().enumerate() {
        let m = match p {
            SockPlan::TcpPair { .. } => continue,
            SockPlan::UnixPair { ty } => {
                let (a, b) = ns::socketpair(AddressFamily::Unix, sock_type(*ty), None, SockFlag::SOCK_CLOEXEC)
                    .map_err(|e| format!("socketpair: {}", e.desc()))?;
                (a, Some(b))
            }
            SockPlan::UnixLone { ty } => {
                let s = ns::socket(AddressFamily::Unix, sock_type(*ty), SockFlag::SOCK_CLOEXEC, None)
                    .map_err(|e| format!("socket: {}", e.desc()))?;
                (s, None)
            }
            SockPlan::Inet(r) => (make_inet(r)?, None),
        };
        made[i] = Some(m);
    }
    Ok(Made { socks: made.into_iter().map(|m| m.expect("every socket made")).collect() })
}

fn make_inet(r: &InetSocketRecord) -> Result<OwnedFd, String> {
    let what = if r.sock_type == 1 { "TCP" } else { "UDP" };
    let s = new_inet(r).map_err(|e| format!("{what} socket: {}", e.desc()))?;
    if r.local.port != 0 {
        bind_to(&s, r.family, &r.local)
            .map_err(|e| format!("cannot bind {what} {} again: {}", show(&r.local), e.desc()))?;
    }
    if r.state == SockState::Listening {
        ns::listen(&s, backlog(r.backlog))
            .map_err(|e| format!("cannot listen on TCP {} again: {}", show(&r.local), e.desc()))?;
    } else if r.state == SockState::Connected && r.sock_type != 1 {
        connect_to(&s, r.family, &r.peer)
            .map_err(|e| format!("cannot connect UDP {} to {} again: {}", show(&r.local), show(&r.peer), e.desc()))?;
    }
    if r.flags & INET_REUSEADDR == 0 {
        // Set only to bind again beside the old connections: the program's value back.
        let _ = ns::setsockopt(&s, sockopt::ReuseAddr, &false);
    }
    Ok(s)
}

impl Made {
    /// Closes this process's copies of every socket (raw: the fds stay owned by `self`, whose
    /// drop then only gets EBADF; a forked process that ends with `_exit` never drops it). Only
    /// for a process whose children already hold what they need.
    pub fn close_copies(&self) {
        for (a, b) in &self.socks {
            let _ = nix::unistd::close(a.as_raw_fd());
            if let Some(b) = b {
                let _ = nix::unistd::close(b.as_raw_fd());
            }
        }
    }

    /// The fd of one end of socket `sock` (end 1 of a lone socket is the socket itself).
    pub fn fd(&self, sock: usize, end: u8) -> RawFd {
        let (a, b) = &self.socks[sock];
        match (end, b) {
            (1, Some(b)) => b.as_raw_fd(),
            _ => a.as_raw_fd(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn states_on_a_port_are_read_from_proc_net_tcp_lines() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1E73 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 11 1
   1: 0100007F:1E73 0100007F:9C40 06 00000000:00000000 00:00000000 00000000  1001        0 12 1
   2: 0100007F:9C40 0100007F:1E73 05 00000000:00000000 00:00000000 00000000  1000        0 13 1";
        assert_eq!(states_on_port(text, 0x1E73), vec![0x0A, 0x06]);
        assert_eq!(states_on_port(text, 0x9C40), vec![0x05]);
        assert!(states_on_port(text, 1).is_empty());
    }

    /// The case `check_ports` waits out: the server end of a closed connection in TIME_WAIT on
    /// the port of a listener without SO_REUSEADDR, which is gone. The port cannot be bound,
    /// and only closing sockets hold it.
    #[test]
    fn a_listener_port_held_by_time_wait_is_seen_as_only_closing() {
        // std's listeners set SO_REUSEADDR: this one is made without, as a C program's.
        let raw = ns::socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).unwrap();
        bind_to(&raw, 4, &InetAddr::v4([127, 0, 0, 1], 0)).unwrap();
        ns::listen(&raw, nix::sys::socket::Backlog::new(4).unwrap()).unwrap();
        let l = std::net::TcpListener::from(raw);
        let port = l.local_addr().unwrap().port();
        let c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (a, _) = l.accept().unwrap();
        drop(a); // the server end closes first: it goes to TIME_WAIT, on the listener's port
        let mut buf = [0u8; 1];
        let _ = (&c).read(&mut buf);
        drop(c);
        drop(l);
        assert!(
            only_closing_on(port),
            "{:?}",
            states_on_port(&std::fs::read_to_string("/proc/net/tcp").unwrap(), port)
        );
        let again = ns::socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).unwrap();
        let r = bind_to(&again, 4, &InetAddr::v4([127, 0, 0, 1], port));
        assert_eq!(r, Err(nix::errno::Errno::EADDRINUSE), "the port was free at once");
    }

    /// Regression: the old client end (no SO_REUSEADDR) lingering in TIME_WAIT after the kill
    /// made `dmtcp_restart` fail with "Address already in use"; the connection is made on
    /// another port instead.
    #[test]
    fn a_connection_is_made_again_while_its_old_client_port_lingers_in_time_wait() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let sport = l.local_addr().unwrap().port();
        let c = std::net::TcpStream::connect(("127.0.0.1", sport)).unwrap();
        let cport = c.local_addr().unwrap().port();
        let (a, _) = l.accept().unwrap();
        drop(c); // the client closes first: its end goes to TIME_WAIT
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(a);
        drop(l);
        std::thread::sleep(std::time::Duration::from_millis(50));
        let rec = |local: u16, peer: u16, inode: u32| InetSocketRecord {
            family: 4,
            sock_type: 1,
            state: SockState::Connected,
            flags: 0,
            inode,
            local: InetAddr::v4([127, 0, 0, 1], local),
            peer: InetAddr::v4([127, 0, 0, 1], peer),
            backlog: 0,
        };
        let (server, client) = tcp_pair(&rec(sport, cport, 1), &rec(cport, sport, 2)).unwrap();
        let mut s = std::fs::File::from(server);
        let mut c = std::fs::File::from(client);
        c.write_all(b"ping").unwrap();
        let mut got = [0u8; 4];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");
    }
}
