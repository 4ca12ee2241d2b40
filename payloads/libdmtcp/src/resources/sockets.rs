//! Sockets: UNIX (stream, datagram, seqpacket) and TCP/UDP over IPv4 and IPv6. Other families
//! (netlink, packet, ...) are not taken here (`takes` says no) and stay with the other kinds.
//!
//! # Discover, do not wrap
//! Nothing here shadows `socket`, `connect`, `accept` or `socketpair`: everything is read from
//! the kernel at checkpoint time, so that sockets made before the library was loaded, by raw
//! system calls or inherited over exec are handled the same as the others, and a program pays
//! nothing between checkpoints. The kernel tells: the socket's inode (the /proc/self/fd link),
//! family, type, listening or not (`getsockopt` SO_DOMAIN, SO_TYPE, SO_ACCEPTCONN), its names
//! (`getsockname`, `getpeername`), its options (`getsockopt`), for TCP its state and a
//! listener's backlog (TCP_INFO), and for UNIX sockets, through the socket diagnostics
//! (NETLINK_SOCK_DIAG `unix_diag`, unprivileged: `socket_diag.rs`), the inode of the peer (the
//! only way to tell which socket is the other end of a socketpair), the shutdown bits and a
//! listener's backlog. This is the choice of DMTCP's recent socket rework and of CRIU.
//!
//! # Checkpoint
//! `save` fills the table (one entry per fd) and votes, like `pipes`, for the drainer of each
//! socket: every holder sets itself as its F_SETOWN owner, the last one wins; the owner is put
//! back afterwards. `drain` (after DMT:Drain, everyone stopped): the elected holder *peeks* at
//! the receive queue (MSG_PEEK with SO_PEEK_OFF, so datagram and seqpacket messages are read
//! one by one with their boundaries, and nothing is taken out of the kernel: the running
//! program finds its bytes where they were, and `refill` only drops the copy). The copy lives in
//! an anonymous mapping, so it is in the image. The image gets one record per fd
//! (`FD_UNIX_SOCKET`, `FD_INET_SOCKET`) with what `dmtcp_restart` needs to make each socket once
//! and pair its ends (UNIX: inode and peer inode; TCP: the address pair).
//!
//! # Restart
//! `dmtcp_restart` (src/restart/sockets.rs) made the sockets before the processes existed and
//! put them at their old numbers: socketpairs for UNIX pairs, TCP connections between the same
//! addresses, listeners bound and listening, UDP sockets bound and connected. Where it made a
//! pair for a socket whose receive queue this process copied, it also gave this process the
//! other end at a spare fd. `restore` then: binds and listens UNIX sockets again by name (one
//! holder wins, the others see it bound), gives back options (but the send buffer), status
//! flags and close-on-exec, writes the copied bytes into the other end (found by the peer's
//! inode or address, its send buffer raised to hold them), and closes that spare fd. A connection whose peer was not in the computation has no socket at its
//! number: it gets one in a failed state (a TCP connection reset by its peer, or a UNIX socket
//! whose peer is gone), so the program's next read sees ECONNRESET or end-of-file and its next
//! write EPIPE, as after a network failure. `resume(Restarted)`, after every process has
//! refilled (DMT:Restart), gives back the send buffer sizes and applies the shutdowns (either
//! one earlier would refuse or cut short a peer's refill).
//!
//! # Draining a TCP connection completely
//! A peek sees only the receiver's window; the bytes its peer's kernel still holds in its send
//! queue (MiB behind a full window) appear only as the receiver reads. A TCP connection whose
//! both ends are held under checkpoint control, established and not shut down, is therefore
//! drained by an exchange on the connection itself (`socket_drain`: a mark after each end's
//! pending bytes, each end reads to the other's mark and sends back what it read, each end
//! writes its own unread bytes again); after a restart each end writes those bytes into the
//! new connection itself, so the image's record has no pending bytes for it. UNIX stream and
//! seqpacket sockets need no such thing: a UNIX sender has no send queue (its bytes go straight
//! to the receiver's queue, charged to its send buffer), so the peek sees them all.
//!
//! # A connection in a listener's accept queue
//! A client connected to a listener of the computation whose server has not accepted it yet
//! has a peer no process holds (inet_diag finds it with inode 0; unix_diag names no peer inode,
//! and no shutdown). If the client sent nothing yet (SIOCOUTQ, and the unaccepted end's receive
//! queue), `resume(Restarted)`, once every listener listens again, connects a new socket from
//! the same address to the same listener address and puts it at the client's fd
//! (`connect_again`): the client is connected and the server's accept() returns it. A client
//! that already sent bytes, which only the unaccepted end holds, is refused: a warning at
//! checkpoint, a reset connection after restart.
//!
//! Limits: a client in an accept queue shared by several processes after fork is connected
//! again by each of them (not one socket shared); a TCP connection to a peer outside the computation or in another launch (another
//! pid namespace: its holder is not seen) is peeked only, so what the peer's kernel held back
//! is not seen; bytes queued on an unconnected UDP socket are not kept; file descriptors in
//! flight on a UNIX socket (SCM_RIGHTS, sent and not yet received) are not kept: `save` finds
//! them with a peek that takes the descriptors (and closes them at once), and the checkpoint
//! reports the socket like any fd that cannot be restored (`for_each_unsupported`: a warning,
//! or with --strict a failed checkpoint); the bytes that carried them come back without them.
//!
//! Rules: hooks run in the checkpoint thread with every other thread stopped; no allocation
//! (fixed table in .bss; copied bytes in mmap'ed memory).
use super::socket_diag;
use super::socket_drain::{self, Conn, MAX_CONNS};
use super::{report, Hooks, RecordSink};
use crate::cell::Exclusive;
use crate::log::Bytes;
use crate::sys::socket::{self as so, ADDR_LEN};
use crate::sys::{self, Mapping, OwnerEx};
use core::ffi::c_int;
use dmtcp_proto::image::socket_inet::{INET_PENDING, INET_REUSEADDR, INET_REUSEPORT, INET_V6ONLY};
use dmtcp_proto::image::socket_unix::{SHUT_RCV, SHUT_SEND, UNIX_BOUND};
use dmtcp_proto::image::{InetAddr, InetSocketRecord, SockState, UnixSocketRecord};

pub const HOOKS: Hooks = Hooks { name: "sockets", save, drain, records, write_records, refill, restore, resume };

const MAX_SOCKETS: usize = 256;
const LINK_LEN: usize = 64;
/// Status flags given back (the others are fixed by the socket).
const RESTORED_FLAGS: c_int = libc::O_NONBLOCK | libc::O_ASYNC;

/// The options a program sets that come back: (level, name). IPV6_V6ONLY and SO_REUSEPORT
/// must be set before bind: `dmtcp_restart` does that from the record; here they are only
/// compared.
const OPTIONS: [(c_int, c_int); 16] = [
    (libc::SOL_SOCKET, libc::SO_REUSEADDR),
    (libc::SOL_SOCKET, libc::SO_REUSEPORT),
    (libc::SOL_SOCKET, libc::SO_KEEPALIVE),
    (libc::SOL_SOCKET, libc::SO_RCVBUF),
    (libc::SOL_SOCKET, libc::SO_SNDBUF),
    (libc::SOL_SOCKET, libc::SO_LINGER),
    (libc::SOL_SOCKET, libc::SO_RCVTIMEO),
    (libc::SOL_SOCKET, libc::SO_SNDTIMEO),
    (libc::SOL_SOCKET, libc::SO_PASSCRED),
    (libc::SOL_SOCKET, libc::SO_OOBINLINE),
    (libc::SOL_SOCKET, libc::SO_BROADCAST),
    (libc::IPPROTO_TCP, libc::TCP_NODELAY),
    (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE),
    (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL),
    (libc::IPPROTO_TCP, libc::TCP_KEEPCNT),
    (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY),
];

#[derive(Clone, Copy)]
struct Opt {
    len: u8,
    val: [u8; 16],
}

struct Sock {
    fd: c_int,
    family: c_int,
    ty: c_int,
    state: SockState,
    inode: u64,
    /// UNIX: the peer's inode (0: none).
    peer_ino: u64,
    /// SHUT_RCV | SHUT_SEND.
    shutdown: u8,
    flags: c_int,
    cloexec: bool,
    backlog: u32,
    name: [u8; ADDR_LEN],
    name_len: usize,
    peer: [u8; ADDR_LEN],
    peer_len: usize,
    opts: [Opt; OPTIONS.len()],
    owner: OwnerEx,
    /// The receive queue as copied by `drain` (stream: the bytes; datagram: u32 length, bytes).
    held: Option<Mapping>,
    held_len: usize,
    /// A TCP connection whose peer is held under checkpoint control and that is established and
    /// not shut down: drained completely by the exchange of `socket_drain` (module docs).
    exchange: bool,
    /// UNIX: file descriptors in flight (SCM_RIGHTS) in the receive queue, as a peek saw them.
    rights: usize,
    /// A connection waiting in a listener's accept queue (the other end not accepted yet, and
    /// nothing sent to it): made again by connecting to the same address after a restart.
    queued: bool,
}

struct Table {
    socks: [Sock; MAX_SOCKETS],
    n: usize,
    /// The exchanges this process ran as elected drainer (`socket_drain`), by fd.
    conns: [Conn; MAX_CONNS],
    nconn: usize,
}

const EMPTY: Sock = Sock {
    fd: -1,
    family: 0,
    ty: 0,
    state: SockState::Idle,
    inode: 0,
    peer_ino: 0,
    shutdown: 0,
    flags: 0,
    cloexec: false,
    backlog: 0,
    name: [0; ADDR_LEN],
    name_len: 0,
    peer: [0; ADDR_LEN],
    peer_len: 0,
    opts: [Opt { len: 0, val: [0; 16] }; OPTIONS.len()],
    owner: [0, 0],
    held: None,
    held_len: 0,
    exchange: false,
    rights: 0,
    queued: false,
};

static TABLE: Exclusive<Table> = Exclusive::new(Table {
    socks: [const { EMPTY }; MAX_SOCKETS],
    n: 0,
    conns: [const { socket_drain::IDLE }; MAX_CONNS],
    nconn: 0,
});

/// The inode of a socket from its /proc/self/fd link ("socket:[12345]").
pub fn socket_id(link: &[u8]) -> Option<u64> {
    link.strip_prefix(b"socket:[").and_then(|r| r.strip_suffix(b"]")).and_then(crate::cstr::parse_u64)
}

fn is_socket(fd: c_int) -> bool {
    sys::fstat(fd).is_ok_and(|st| st.mode & libc::S_IFMT == libc::S_IFSOCK)
}

fn inode_of(fd: c_int) -> Option<u64> {
    let mut buf = [0u8; LINK_LEN];
    super::fd_target(fd, &mut buf).and_then(socket_id)
}

/// (family, type) of a socket this kind takes: UNIX stream/datagram/seqpacket, TCP, UDP.
fn family_and_type(fd: c_int) -> Option<(c_int, c_int)> {
    let family = so::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_DOMAIN).ok()?;
    let ty = so::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TYPE).ok()?;
    let proto = so::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_PROTOCOL).unwrap_or(0);
    let ok = match family {
        libc::AF_UNIX => matches!(ty, libc::SOCK_STREAM | libc::SOCK_DGRAM | libc::SOCK_SEQPACKET),
        libc::AF_INET | libc::AF_INET6 => {
            (ty == libc::SOCK_STREAM && proto == libc::IPPROTO_TCP)
                || (ty == libc::SOCK_DGRAM && proto == libc::IPPROTO_UDP)
        }
        _ => false,
    };
    ok.then_some((family, ty))
}

/// Whether this kind takes `fd` (the `files` kind leaves those alone): a socket of a family
/// we restore, unless it is a placeholder `files` put in for an fd no kind restores.
pub fn takes(fd: c_int) -> bool {
    is_socket(fd)
        && family_and_type(fd).is_some()
        && !crate::sys::fstat(fd).is_ok_and(|st| super::files::is_placeholder(fd, st.ino))
}

/// Called as the process exits because the computation is killed: every connected TCP socket
/// gets SO_LINGER {on, 0}, so that its close resets the connection instead of leaving an end
/// in TIME_WAIT (which keeps a listener's port from being bound again without SO_REUSEADDR, by
/// the restarted program). The program is gone a moment later; nobody sees the option.
pub fn reset_connections() {
    // struct linger { int l_onoff; int l_linger; }: on, 0 s.
    let mut linger = [0u8; 8];
    linger[..4].copy_from_slice(&1i32.to_ne_bytes());
    super::for_each_program_fd(|fd| {
        if is_socket(fd)
            && matches!(family_and_type(fd), Some((libc::AF_INET | libc::AF_INET6, libc::SOCK_STREAM)))
            && so::peername(fd, &mut [0u8; ADDR_LEN]).is_ok()
        {
            let _ = so::setsockopt(fd, libc::SOL_SOCKET, libc::SO_LINGER, &linger);
        }
    });
}

/// The address in raw `sockaddr_in`/`sockaddr_in6` bytes, IPv4 mapped into IPv6.
fn inet_addr(raw: &[u8]) -> InetAddr {
    if raw.len() < 8 {
        return InetAddr::UNSPECIFIED;
    }
    let port = u16::from_be_bytes([raw[2], raw[3]]);
    let family = u16::from_ne_bytes([raw[0], raw[1]]) as c_int;
    if family == libc::AF_INET {
        InetAddr::v4([raw[4], raw[5], raw[6], raw[7]], port)
    } else if family == libc::AF_INET6 && raw.len() >= 24 {
        let mut addr = [0u8; 16];
        addr.copy_from_slice(&raw[8..24]);
        InetAddr { addr, port }
    } else {
        InetAddr::UNSPECIFIED
    }
}

/// Writes `a` as text (for messages).
struct ShowAddr(InetAddr);
impl core::fmt::Display for ShowAddr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0.as_v4() {
            Some(v) => write!(f, "{}.{}.{}.{}:{}", v[0], v[1], v[2], v[3], self.0.port),
            None => {
                f.write_str("[")?;
                for (i, pair) in self.0.addr.chunks(2).enumerate() {
                    if i > 0 {
                        f.write_str(":")?;
                    }
                    write!(f, "{:x}", u16::from_be_bytes([pair[0], pair[1]]))?;
                }
                write!(f, "]:{}", self.0.port)
            }
        }
    }
}

/// A TCP socket's kernel state (TCP_INFO: tcpi_state) and, for a listener, its backlog.
fn tcp_state(fd: c_int) -> (u8, u32) {
    let mut info = [0u8; 104];
    match so::getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_INFO, &mut info) {
        Ok(n) if n >= 32 => (info[0], u32::from_ne_bytes([info[28], info[29], info[30], info[31]])),
        _ => (0, 0),
    }
}

fn save() {
    TABLE.with(|t| {
        t.n = 0;
        for c in t.conns[..t.nconn].iter_mut() {
            c.clear();
        }
        t.nconn = 0;
        let me = sys::getpid();
        super::for_each_program_fd(|fd| {
            if !is_socket(fd) {
                return;
            }
            let Some((family, ty)) = family_and_type(fd) else { return };
            let Some(inode) = inode_of(fd) else { return };
            if t.n == MAX_SOCKETS {
                warn!("more than {} sockets; socket at fd {} is not saved", MAX_SOCKETS, fd);
                return;
            }
            let s = &mut t.socks[t.n];
            *s = EMPTY;
            s.fd = fd;
            s.family = family;
            s.ty = ty;
            s.inode = inode;
            s.flags = sys::fcntl(fd, libc::F_GETFL, 0).unwrap_or(0);
            s.cloexec = sys::fcntl(fd, libc::F_GETFD, 0).is_ok_and(|f| f & libc::FD_CLOEXEC != 0);
            s.name_len = so::sockname(fd, &mut s.name).unwrap_or(0);
            s.peer_len = so::peername(fd, &mut s.peer).unwrap_or(0);
            let listening = so::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN).unwrap_or(0) != 0;
            s.state = if listening {
                SockState::Listening
            } else if s.peer_len > 0 {
                SockState::Connected
            } else {
                SockState::Idle
            };
            if family == libc::AF_UNIX {
                match socket_diag::unix_info(inode) {
                    Ok(info) => {
                        s.peer_ino = info.peer;
                        s.shutdown = info.shutdown;
                        s.backlog = info.backlog;
                    }
                    Err(e) => warn!("socket diagnostics of fd {}: {}", fd, Bytes(sys::strerror(e))),
                }
                if s.peer_ino != 0 && s.state == SockState::Idle {
                    s.state = SockState::Connected;
                }
                if !listening {
                    s.rights = rights_in_flight(fd);
                }
                // A stream client whose peer has no inode and did not shut down: the peer is
                // still in the listener's accept queue (`accept_queue` in the module docs).
                if s.state == SockState::Connected
                    && ty != libc::SOCK_DGRAM
                    && s.peer_ino == 0
                    && s.shutdown == 0
                    && s.peer_len > 2
                {
                    s.queued = nothing_sent(s, 0);
                }
            } else if ty == libc::SOCK_STREAM {
                let (st, backlog) = tcp_state(fd);
                if listening {
                    s.backlog = backlog;
                }
                // FIN_WAIT1/2, CLOSING, TIME_WAIT: we shut our sending side; CLOSE_WAIT,
                // LAST_ACK: the peer shut its own.
                s.shutdown = match st {
                    4 | 5 | 7 | 11 => SHUT_SEND,
                    8 | 9 => SHUT_RCV,
                    _ => 0,
                };
                // ESTABLISHED, and the other end will take part in the exchange (it decides
                // the same way about us).
                if st == 1 && s.state == SockState::Connected {
                    let (local, peer) = (inet_addr(&s.name[..s.name_len]), inet_addr(&s.peer[..s.peer_len]));
                    match socket_diag::tcp_socket(&peer, &local) {
                        Some(p) if p.inode == 0 => s.queued = nothing_sent(s, p.rqueue as usize),
                        Some(p) => s.exchange = socket_diag::held_under_checkpoint(p.inode),
                        None => {}
                    }
                }
            }
            warn_if_outside(s, me);
            for (i, &(level, name)) in OPTIONS.iter().enumerate() {
                let mut v = [0u8; 16];
                if let Ok(n) = so::getsockopt(fd, level, name, &mut v) {
                    s.opts[i] = Opt { len: n.min(16) as u8, val: v };
                }
            }
            if s.state != SockState::Listening {
                s.owner = sys::get_owner_ex(fd).unwrap_or([0, 0]);
                // The election: whoever sets the owner last copies the queue (module docs).
                if let Err(e) = sys::fcntl(fd, libc::F_SETOWN, me) {
                    trace!("cannot vote to drain the socket at fd {}: {}", fd, Bytes(sys::strerror(e)));
                }
            }
            t.n += 1;
        });
    });
}

/// Whether a client whose connection waits in a listener's accept queue sent nothing yet
/// (`theirs`: bytes the unaccepted end holds, for TCP). Bytes it sent are in a socket no
/// process holds, which nothing can read: the connection then fails after a restart, with a
/// warning now.
fn nothing_sent(s: &Sock, theirs: usize) -> bool {
    let sent = theirs + so::unsent_bytes(s.fd).unwrap_or(0);
    if sent > 0 {
        warn!(
            "fd {} is a connection that waits in a listener's accept queue with {} bytes sent to it: they cannot \
             be kept, and after a restart it fails as if reset",
            s.fd, sent
        );
    }
    sent == 0
}

/// How many file descriptors ride in the receive queue of the UNIX socket `fd` (0 if none),
/// from a peek at the whole queue (each message once, by SO_PEEK_OFF). A descriptor sent with
/// bytes a stream peek reads in two pieces is counted twice: only none or some matters.
fn rights_in_flight(fd: c_int) -> usize {
    if sys::readable_bytes(fd).unwrap_or(0) == 0 {
        return 0;
    }
    let old_off = so::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_PEEK_OFF).unwrap_or(-1);
    if so::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_PEEK_OFF, 0).is_err() {
        return 0;
    }
    let mut buf = [0u8; 16384];
    let mut fds = 0;
    // Bounded: a queue holds at most its receive buffer's worth of messages.
    for _ in 0..1_000_000 {
        match so::peek_rights(fd, &mut buf, 0) {
            Ok((0, n)) => {
                fds += n;
                break;
            }
            Ok((_, n)) => fds += n,
            Err(_) => break,
        }
    }
    let _ = so::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_PEEK_OFF, old_off);
    fds
}

/// Calls `f(text)` for each UNIX socket with file descriptors in flight: they are not restored
/// (the bytes that carried them are), so the checkpoint reports the fd like any other that
/// cannot be restored (a warning, or with --strict a failed checkpoint).
pub fn for_each_unsupported(mut f: impl FnMut(&[u8])) {
    TABLE.with(|t| {
        let mut num = [0u8; 20];
        for s in t.socks[..t.n].iter().filter(|s| s.rights > 0) {
            let mut line = crate::cstr::Fixed::<160>::new();
            line.push(b"fd ");
            line.push(crate::cstr::fmt_u64(s.fd as u64, &mut num));
            line.push(b" (UNIX socket with file descriptors in flight, SCM_RIGHTS: the bytes come back, the descriptors do not)");
            f(line.bytes());
        }
    });
}

/// A connection whose peer no process of the computation holds (not on this host, or held by
/// a process outside our pid namespace): the checkpoint goes on and says so; after a restart
/// the fd is a failed socket (module docs).
fn warn_if_outside(s: &Sock, me: i32) {
    if s.state != SockState::Connected || s.ty == libc::SOCK_DGRAM || s.exchange || s.queued {
        return;
    }
    let prog = crate::config::get().progname.bytes();
    if s.family == libc::AF_UNIX {
        if s.peer_ino != 0 && !socket_diag::held_by_a_process(s.peer_ino) {
            warn!(
                "{} (pid {}): fd {} is a UNIX socket connected to {} (socket {}), outside the computation: \
                 after a restart it reads end-of-file",
                Bytes(prog),
                me,
                s.fd,
                Bytes(if s.peer_len > 2 { &s.peer[2..s.peer_len] } else { b"an unnamed socket" }),
                s.peer_ino
            );
        }
        return;
    }
    let (local, peer) = (inet_addr(&s.name[..s.name_len]), inet_addr(&s.peer[..s.peer_len]));
    let inside = socket_diag::tcp_inode(&peer, &local).is_some_and(socket_diag::held_by_a_process);
    if !inside {
        warn!(
            "{} (pid {}): fd {} is a TCP connection from {} to {}, outside the computation: after a restart \
             it fails as if reset by its peer",
            Bytes(prog),
            me,
            s.fd,
            ShowAddr(local),
            ShowAddr(peer)
        );
    }
}

/// Copies the receive queue of each socket whose elected drainer we are (once per socket); an
/// exchanged TCP connection is drained completely (`socket_drain`), all of them at once.
fn drain() {
    TABLE.with(|t| {
        let me = sys::getpid();
        t.nconn = 0;
        for i in 0..t.n {
            let (fd, ino) = (t.socks[i].fd, t.socks[i].inode);
            if t.socks[i].state == SockState::Listening || t.socks[..i].iter().any(|o| o.inode == ino) {
                continue;
            }
            if t.socks[i].family != libc::AF_UNIX && t.socks[i].ty != libc::SOCK_STREAM {
                continue; // UDP: datagrams queued on it are not kept (module docs).
            }
            if sys::fcntl(fd, libc::F_GETOWN, 0).ok() != Some(me) {
                continue;
            }
            if t.socks[i].exchange && t.nconn < MAX_CONNS {
                let s = &t.socks[i];
                let (local, peer) = (inet_addr(&s.name[..s.name_len]), inet_addr(&s.peer[..s.peer_len]));
                let theirs = socket_diag::tcp_socket(&peer, &local).map_or(0, |p| p.wqueue as usize);
                let mine = sys::readable_bytes(fd).unwrap_or(0);
                t.conns[t.nconn] = Conn::start(fd, theirs + mine);
                t.nconn += 1;
                continue;
            }
            let (held, len) = peek_queue(fd, t.socks[i].ty == libc::SOCK_STREAM);
            if len > 0 {
                trace!("copied {} bytes in flight to the socket at fd {}", len, fd);
            }
            t.socks[i].held = held;
            t.socks[i].held_len = len;
        }
        let conns = &mut t.conns[..t.nconn];
        if conns.is_empty() {
            return;
        }
        socket_drain::exchange(conns);
        // The bytes fit where they were (the same buffers): what does not within a second
        // goes in `resume`, while the receivers run.
        socket_drain::write_back(conns, 1000, 2000);
        for c in conns.iter().filter(|c| !c.failed && c.out_len > 0) {
            trace!("drained {} bytes in flight from the TCP connection at fd {}", c.out_len, c.fd);
        }
    });
}

/// Peeks at the whole receive queue of `fd` without taking it out; returns the copy and its
/// length (datagrams as u32 length + bytes).
fn peek_queue(fd: c_int, stream: bool) -> (Option<Mapping>, usize) {
    // Stream and seqpacket: every byte queued; datagram: the first datagram's size (a queue of
    // empty datagrams only is not kept).
    let queued = sys::readable_bytes(fd).unwrap_or(0);
    if queued == 0 {
        return (None, 0);
    }
    let rcvbuf = so::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF).unwrap_or(0).max(0) as usize;
    // Untouched pages cost nothing, in memory or in the image.
    let room = if stream { queued } else { 4 * rcvbuf + (1 << 20) };
    let Ok(mut map) = Mapping::new(room) else {
        warn!("cannot hold the bytes in flight to the socket at fd {}; they are lost at restart", fd);
        return (None, 0);
    };
    let old_off = so::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_PEEK_OFF).unwrap_or(-1);
    if so::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_PEEK_OFF, 0).is_err() {
        warn!("cannot peek at the socket at fd {}; its bytes in flight are lost at restart", fd);
        return (None, 0);
    }
    let buf = map.bytes();
    let mut got = 0;
    let flags = libc::MSG_PEEK | libc::MSG_DONTWAIT;
    if stream {
        while got < room {
            match so::recv(fd, &mut buf[got..room], flags) {
                Ok(0) | Err(_) => break,
                Ok(k) => got += k,
            }
        }
    } else {
        while got + 4 < room {
            let (head, rest) = buf[got..room].split_at_mut(4);
            match so::recv(fd, rest, flags | libc::MSG_TRUNC) {
                Ok(k) if k <= rest.len() => {
                    head.copy_from_slice(&(k as u32).to_ne_bytes());
                    got += 4 + k;
                }
                Ok(_) => {
                    warn!("a datagram queued on the socket at fd {} is too large to keep", fd);
                    break;
                }
                Err(_) => break,
            }
        }
    }
    let _ = so::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_PEEK_OFF, old_off);
    (Some(map), got)
}

fn records() -> usize {
    TABLE.with(|t| t.n)
}

fn write_records(put: &mut RecordSink<'_>) {
    use dmtcp_proto::image::{FdBody, FdRecord};
    TABLE.with(|t| {
        for s in &t.socks[..t.n] {
            let body = if s.family == libc::AF_UNIX {
                FdBody::UnixSocket(UnixSocketRecord {
                    sock_type: s.ty as u8,
                    state: s.state,
                    shutdown: s.shutdown,
                    flags: if s.name_len > 2 { UNIX_BOUND } else { 0 },
                    inode: s.inode,
                    peer: s.peer_ino,
                    pending: s.held_len as u64,
                })
            } else {
                let on = |i: usize| s.opts[i].len >= 4 && s.opts[i].val[..4] != [0; 4];
                let mut flags = s.shutdown;
                if on(0) {
                    flags |= INET_REUSEADDR;
                }
                if on(1) {
                    flags |= INET_REUSEPORT;
                }
                if on(15) {
                    flags |= INET_V6ONLY;
                }
                if s.held_len > 0 {
                    flags |= INET_PENDING;
                }
                FdBody::InetSocket(InetSocketRecord {
                    family: if s.family == libc::AF_INET { 4 } else { 6 },
                    sock_type: s.ty as u8,
                    state: s.state,
                    flags,
                    inode: s.inode as u32,
                    local: inet_addr(&s.name[..s.name_len]),
                    peer: inet_addr(&s.peer[..s.peer_len]),
                    backlog: s.backlog,
                })
            };
            put(&FdRecord {
                fd: s.fd,
                fd_flags: if s.cloexec { libc::FD_CLOEXEC as u32 } else { 0 },
                status: s.flags as u32,
                body,
            });
        }
    });
}

/// After the image is written: the queues were only peeked at, so drop the copies and give
/// the owners back (the exchanged connections were refilled in `drain`; what they still owe
/// goes in `resume`).
fn refill() {
    TABLE.with(|t| {
        for s in t.socks[..t.n].iter_mut() {
            s.held = None;
            s.held_len = 0;
            if s.state != SockState::Listening {
                report("restoring the owner", s.fd, sys::set_owner_ex(s.fd, &s.owner));
            }
        }
    });
}

/// After a restart (module docs): names, listeners, options, flags, failed sockets for
/// outside peers, and the bytes in flight.
fn restore() {
    TABLE.with(|t| {
        let me = &t.socks[..t.n];
        for s in me {
            let ours = is_socket(s.fd) && family_and_type(s.fd) == Some((s.family, s.ty));
            if s.fd <= 2 && !ours {
                // A socket to the outside at 0-2: the process has dmtcp_restart's own instead.
                continue;
            }
            if !is_socket(s.fd) {
                make_failed(s);
            } else if !ours {
                trace!("fd {} is not the socket it was; left alone", s.fd);
                continue;
            } else if s.family == libc::AF_UNIX {
                rename_unix(s);
            }
            restore_options(s, Opts::BeforeRefill);
            report(
                "setting close-on-exec",
                s.fd,
                sys::fcntl(s.fd, libc::F_SETFD, if s.cloexec { libc::FD_CLOEXEC } else { 0 }).map(|_| ()),
            );
            report(
                "setting the status flags",
                s.fd,
                sys::fcntl(s.fd, libc::F_SETFL, s.flags & RESTORED_FLAGS).map(|_| ()),
            );
            if s.state != SockState::Listening {
                report("restoring the owner", s.fd, sys::set_owner_ex(s.fd, &s.owner));
            }
        }
        // The exchanged connections: each end writes its own unread sends again.
        let conns = &mut t.conns[..t.nconn];
        for c in conns.iter_mut() {
            c.rewind();
        }
        socket_drain::write_back(conns, 500, 1000);
        for i in 0..t.n {
            if let Some(map) = t.socks[i].held.take() {
                let s = &t.socks[i];
                if !put_back(s, &map.as_slice()[..s.held_len], &t.socks[..t.n]) {
                    warn!("lost {} bytes in flight to the socket at fd {}", s.held_len, s.fd);
                }
                t.socks[i].held_len = 0;
            }
        }
    });
}

/// A connection that waited in a listener's accept queue at checkpoint: after DMT:Restart
/// (every listener of the computation listens again), a new socket from the same local address
/// (another port if the old one lingers) connects to the same listener address, and takes the
/// fd, with the options and flags of the old one. If the listener is not there, the fd keeps
/// its failed socket and the program sees a reset connection.
fn connect_again(s: &Sock) {
    let r = (|| {
        let fd = so::socket(s.family, s.ty | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0)?;
        let made = (|| {
            if s.family != libc::AF_UNIX {
                let _ = so::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1);
                if so::bind(fd, &s.name[..s.name_len]).is_err() {
                    let mut any = s.name;
                    any[2..4].fill(0); // the port, in sockaddr_in and sockaddr_in6 alike
                    so::bind(fd, &any[..s.name_len])?;
                }
                let reuse = s.opts[0].len >= 4 && s.opts[0].val[..4] != [0; 4];
                let _ = so::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, reuse as c_int);
            }
            match so::connect(fd, &s.peer[..s.peer_len]) {
                Ok(()) => {}
                Err(libc::EINPROGRESS) => {
                    if !matches!(sys::poll_one(fd, libc::POLLOUT, 2000), Ok(r) if r != 0) {
                        return Err(libc::ETIMEDOUT);
                    }
                    match so::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR) {
                        Ok(0) => {}
                        Ok(e) => return Err(e),
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
            sys::dup3(fd, s.fd, if s.cloexec { libc::O_CLOEXEC } else { 0 })
        })();
        sys::close(fd);
        made
    })();
    match r {
        Ok(()) => {
            restore_options(s, Opts::BeforeRefill);
            restore_options(s, Opts::SendBuffer);
            report(
                "setting the status flags",
                s.fd,
                sys::fcntl(s.fd, libc::F_SETFL, s.flags & RESTORED_FLAGS).map(|_| ()),
            );
            report("restoring the owner", s.fd, sys::set_owner_ex(s.fd, &s.owner));
            trace!("fd {} waited in an accept queue: connected to its listener again", s.fd);
        }
        Err(e) => warn!(
            "fd {} waited in a listener's accept queue; cannot connect to it again ({}): it fails as if reset",
            s.fd,
            Bytes(sys::strerror(e))
        ),
    }
}

/// A socket whose peer was outside the computation: one in a failed state at its number.
fn make_failed(s: &Sock) {
    let made = if s.family == libc::AF_UNIX {
        so::socketpair(s.ty | libc::SOCK_CLOEXEC).map(|[a, b]| {
            sys::close(b);
            a
        })
    } else if s.ty == libc::SOCK_STREAM {
        reset_connection(s.family).or_else(|_| reset_connection(libc::AF_INET))
    } else {
        so::socket(s.family, s.ty | libc::SOCK_CLOEXEC, 0)
    };
    match made {
        Ok(fd) => {
            if fd != s.fd {
                report("placing a failed socket", s.fd, sys::dup3(fd, s.fd, libc::O_CLOEXEC));
                sys::close(fd);
            }
            trace!("socket fd {} had its peer outside the computation: it is a failed socket now", s.fd);
        }
        Err(e) => warn!("cannot make a failed socket for fd {}: {}", s.fd, Bytes(sys::strerror(e))),
    }
}

/// A TCP socket whose connection its peer reset (over loopback): reads see ECONNRESET, then
/// end-of-file; writes see EPIPE.
fn reset_connection(family: c_int) -> Result<c_int, c_int> {
    let mut addr = [0u8; ADDR_LEN];
    addr[..2].copy_from_slice(&(family as u16).to_ne_bytes());
    let len = if family == libc::AF_INET {
        addr[4..8].copy_from_slice(&[127, 0, 0, 1]);
        16
    } else {
        addr[23] = 1;
        28
    };
    let l = so::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0)?;
    let r = (|| {
        so::bind(l, &addr[..len])?;
        so::listen(l, 1)?;
        let mut name = [0u8; ADDR_LEN];
        let n = so::sockname(l, &mut name)?;
        let c = so::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0)?;
        if let Err(e) = so::connect(c, &name[..n]) {
            sys::close(c);
            return Err(e);
        }
        match so::accept(l) {
            Ok(a) => {
                let linger: [c_int; 2] = [1, 0];
                let mut b = [0u8; 8];
                b[..4].copy_from_slice(&linger[0].to_ne_bytes());
                b[4..].copy_from_slice(&linger[1].to_ne_bytes());
                let _ = so::setsockopt(a, libc::SOL_SOCKET, libc::SO_LINGER, &b);
                sys::close(a);
                let _ = sys::poll_one(c, libc::POLLIN, 1000);
                Ok(c)
            }
            Err(e) => {
                sys::close(c);
                Err(e)
            }
        }
    })();
    sys::close(l);
    r
}

/// Binds (and listens) a UNIX socket again by the name it had. The socket is shared by every
/// holder: the first one binds it, the others find it bound.
fn rename_unix(s: &Sock) {
    if s.name_len > 2 && s.state != SockState::Connected {
        let mut now = [0u8; ADDR_LEN];
        let bound = so::sockname(s.fd, &mut now).is_ok_and(|n| n > 2);
        if !bound {
            let name = &s.name[..s.name_len];
            if name[2] != 0 {
                // A path: the file of the old socket is still there; take it away.
                let mut path = crate::cstr::Fixed::<112>::new();
                let end = name[2..].iter().position(|&c| c == 0).map_or(name.len(), |p| p + 2);
                path.set(&name[2..end]);
                if sys::stat(path.as_cstr()).is_ok_and(|st| st.mode & libc::S_IFMT == libc::S_IFSOCK) {
                    let _ = so::unlink(path.as_cstr());
                }
            }
            match so::bind(s.fd, name) {
                Ok(()) | Err(libc::EINVAL) => {}
                Err(e) => warn!("cannot bind the UNIX socket at fd {} again: {}", s.fd, Bytes(sys::strerror(e))),
            }
        }
    }
    if s.state == SockState::Listening {
        report("listening again", s.fd, so::listen(s.fd, s.backlog.max(1) as c_int));
    } else if s.state == SockState::Connected && s.ty == libc::SOCK_DGRAM && s.peer_len > 2 {
        // Connected to a named socket (outside, or a server of the computation): again.
        let mut now = [0u8; ADDR_LEN];
        if so::peername(s.fd, &mut now).is_err() {
            report("connecting again", s.fd, so::connect(s.fd, &s.peer[..s.peer_len]));
        }
    }
}

/// Which options `restore_options` gives back.
#[derive(Clone, Copy, PartialEq)]
enum Opts {
    /// All but SO_SNDBUF: in `restore`, while the processes refill each other's sockets.
    BeforeRefill,
    /// Only SO_SNDBUF: in `resume(Restarted)`, once every process has refilled (DMT:Restart).
    /// A refill raises the send buffer of the other end, which may be another process's
    /// socket: setting that process's recorded size back while the refill is under way took
    /// the room it was writing into (and lost MiB in flight), so the size comes back after.
    SendBuffer,
}

/// Gives back each option (of `which`) that differs from the fresh socket's (a buffer size
/// only if changed, so that TCP keeps its autotuning otherwise).
fn restore_options(s: &Sock, which: Opts) {
    for (i, &(level, name)) in OPTIONS.iter().enumerate() {
        let o = &s.opts[i];
        if o.len == 0 || name == libc::IPV6_V6ONLY && level == libc::IPPROTO_IPV6 {
            continue;
        }
        if (name == libc::SO_SNDBUF && level == libc::SOL_SOCKET) != (which == Opts::SendBuffer) {
            continue;
        }
        let mut now = [0u8; 16];
        let Ok(n) = so::getsockopt(s.fd, level, name, &mut now) else { continue };
        let want = &o.val[..o.len as usize];
        if &now[..n.min(16)] == want {
            continue;
        }
        let r = if name == libc::SO_RCVBUF || name == libc::SO_SNDBUF {
            // The kernel doubles what it is given.
            let v = c_int::from_ne_bytes([want[0], want[1], want[2], want[3]]);
            so::setsockopt_int(s.fd, level, name, v / 2)
        } else {
            so::setsockopt(s.fd, level, name, want)
        };
        report("restoring a socket option", s.fd, r);
    }
}

/// Writes the copied receive queue of `s` into the other end of its connection: an fd of ours
/// (the program's own, or the spare one `dmtcp_restart` gave us for this) that is the peer of
/// `s` now; a spare one is closed afterwards. A bound datagram socket without a peer (a
/// server's) gets its datagrams sent to its name from a socket of ours (their sender's name is
/// lost). The other end's send buffer is raised while it holds them (they were charged to the
/// old one), and no write waits long: a refill never hangs the restart.
fn put_back(s: &Sock, bytes: &[u8], mine: &[Sock]) -> bool {
    if bytes.is_empty() {
        return true;
    }
    let stream = s.ty == libc::SOCK_STREAM;
    let Some(w) = other_end(s) else {
        if s.family == libc::AF_UNIX && s.ty == libc::SOCK_DGRAM && s.name_len > 2 {
            let Ok(tmp) = so::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) else { return false };
            let ok = send_queue(tmp, false, bytes, Some(&s.name[..s.name_len]));
            sys::close(tmp);
            return ok;
        }
        trace!("no other end of the socket at fd {} to refill it through", s.fd);
        return false;
    };
    // Its holder (this process or another) gives its own size back in `resume(Restarted)`,
    // after every refill (`Opts::SendBuffer`); a spare end nobody holds keeps the raised one.
    let _ = so::setsockopt_int(w, libc::SOL_SOCKET, libc::SO_SNDBUF, c_int::MAX / 2);
    let ok = send_queue(w, stream, bytes, None);
    if !mine.iter().any(|o| o.fd == w) {
        sys::close(w);
    }
    ok
}

/// Sends `bytes` (a stream, or datagrams as u32 length + bytes) through `w`, to `to` if given,
/// waiting at most two seconds whenever the socket is full.
fn send_queue(w: c_int, stream: bool, bytes: &[u8], to: Option<&[u8]>) -> bool {
    let send = |b: &[u8]| loop {
        let r = match to {
            Some(a) => so::send_to(w, b, libc::MSG_DONTWAIT, a),
            None => so::send(w, b, libc::MSG_DONTWAIT),
        };
        match r {
            Err(libc::EAGAIN) => {
                if !matches!(sys::poll_one(w, libc::POLLOUT, 2000), Ok(r) if r != 0) {
                    return Err(libc::EAGAIN);
                }
            }
            r => return r,
        }
    };
    let mut off = 0;
    while off < bytes.len() {
        if stream {
            match send(&bytes[off..]) {
                Ok(n) if n > 0 => off += n,
                _ => return false,
            }
        } else {
            if off + 4 > bytes.len() {
                return false;
            }
            let k = u32::from_ne_bytes([bytes[off], bytes[off + 1], bytes[off + 2], bytes[off + 3]]) as usize;
            let end = (off + 4 + k).min(bytes.len());
            if !matches!(send(&bytes[off + 4..end]), Ok(n) if n == end - off - 4) {
                return false;
            }
            off = end;
        }
    }
    true
}

/// The fd of ours that is now the other end of `s`'s connection.
fn other_end(s: &Sock) -> Option<c_int> {
    let mut found = None;
    if s.family == libc::AF_UNIX {
        let now = inode_of(s.fd)?;
        let peer = socket_diag::unix_info(now).ok()?.peer;
        if peer == 0 {
            return None;
        }
        super::for_each_program_fd(|fd| {
            if found.is_none() && is_socket(fd) && inode_of(fd) == Some(peer) {
                found = Some(fd);
            }
        });
    } else {
        let (mut me, mut them) = ([0u8; ADDR_LEN], [0u8; ADDR_LEN]);
        let n = so::sockname(s.fd, &mut me).ok()?;
        let my = inet_addr(&me[..n]);
        let n = so::peername(s.fd, &mut them).ok()?;
        let their = inet_addr(&them[..n]);
        super::for_each_program_fd(|fd| {
            if found.is_some() || fd == s.fd || !is_socket(fd) {
                return;
            }
            let (mut a, mut b) = ([0u8; ADDR_LEN], [0u8; ADDR_LEN]);
            let (Ok(na), Ok(nb)) = (so::sockname(fd, &mut a), so::peername(fd, &mut b)) else { return };
            if inet_addr(&a[..na]) == their && inet_addr(&b[..nb]) == my {
                found = Some(fd);
            }
        });
    }
    found
}

/// The rest of the exchanged connections' bytes (the receivers run now: there is room as they
/// read), then, after DMT:Restart (every process has refilled): the shutdowns come back.
fn resume(phase: super::Phase) {
    TABLE.with(|t| {
        let conns = &mut t.conns[..t.nconn];
        if !socket_drain::write_back(conns, 2000, 5000) {
            for c in conns.iter().filter(|c| c.owes()) {
                warn!(
                    "{} bytes in flight on the TCP connection at fd {} could not be written back: lost",
                    c.out_len - c.out_written,
                    c.fd
                );
            }
        }
        for c in conns.iter_mut() {
            c.clear();
        }
        t.nconn = 0;
    });
    if phase != super::Phase::Restarted {
        return;
    }
    TABLE.with(|t| {
        for s in t.socks[..t.n].iter().filter(|s| !s.queued && family_and_type(s.fd) == Some((s.family, s.ty))) {
            // The same sockets `restore` gave their options to.
            restore_options(s, Opts::SendBuffer);
        }
        for s in t.socks[..t.n].iter().filter(|s| s.queued) {
            connect_again(s);
        }
    });
    TABLE.with(|t| {
        for s in &t.socks[..t.n] {
            let how = match (s.shutdown & SHUT_RCV != 0, s.shutdown & SHUT_SEND != 0) {
                (true, true) => libc::SHUT_RDWR,
                (true, false) => libc::SHUT_RD,
                (false, true) => libc::SHUT_WR,
                (false, false) => continue,
            };
            // At 0-2 the socket may be dmtcp_restart's own stdio (an outside peer's): not ours.
            if s.state == SockState::Connected && s.fd > 2 && family_and_type(s.fd) == Some((s.family, s.ty)) {
                let _ = so::shutdown(s.fd, how);
            }
        }
    });
}
