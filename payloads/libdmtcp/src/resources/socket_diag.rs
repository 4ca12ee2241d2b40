//! Asking the kernel about a UNIX socket through its socket diagnostics (NETLINK_SOCK_DIAG,
//! `unix_diag`): the inode of its peer (UNIX_DIAG_PEER, the only way to learn which socket is
//! the other end of a socketpair without wrapping `socketpair`), its shutdown bits and, for a
//! listener, its backlog. Unprivileged; the same kernel interface `ss -x` uses.
//!
//! Rules: the `resources` rules (no allocation: the request and the answer are on the stack).
use crate::sys::socket::sock_diag;
use core::ffi::c_int;

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_HDRLEN: usize = 16;
const UDIAG_SHOW_PEER: u32 = 4;
const UDIAG_SHOW_RQLEN: u32 = 0x10;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_RQLEN: u16 = 4;
const UNIX_DIAG_SHUTDOWN: u16 = 6;

/// What the kernel says about one UNIX socket.
#[derive(Clone, Copy, Default)]
pub struct UnixInfo {
    /// The peer's inode (0: none).
    pub peer: u64,
    /// `sk_shutdown`: RCV_SHUTDOWN (1) | SEND_SHUTDOWN (2).
    pub shutdown: u8,
    /// For a listener, the backlog it was given (`sk_max_ack_backlog`).
    pub backlog: u32,
}

/// The diagnostics of the UNIX socket with inode `ino`.
pub fn unix_info(ino: u64) -> Result<UnixInfo, c_int> {
    let mut req = [0u8; NLMSG_HDRLEN + 24];
    let len = req.len() as u32;
    req[0..4].copy_from_slice(&len.to_ne_bytes());
    req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    // struct unix_diag_req: family, protocol, pad, states, ino, show, cookie[2].
    req[16] = libc::AF_UNIX as u8;
    req[20..24].copy_from_slice(&u32::MAX.to_ne_bytes());
    req[24..28].copy_from_slice(&(ino as u32).to_ne_bytes());
    req[28..32].copy_from_slice(&(UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN).to_ne_bytes());
    req[32..40].fill(0xff); // INET_DIAG_NOCOOKIE
    let mut reply = [0u8; 512];
    let n = sock_diag(&req, &mut reply)?;
    parse(&reply[..n])
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_ne_bytes([b[off], b[off + 1]])
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Reads one `unix_diag_msg` answer and its attributes.
fn parse(b: &[u8]) -> Result<UnixInfo, c_int> {
    if b.len() < NLMSG_HDRLEN + 4 {
        return Err(libc::EPROTO);
    }
    let total = (u32_at(b, 0) as usize).min(b.len());
    if u16_at(b, 4) == NLMSG_ERROR {
        let e = u32_at(b, NLMSG_HDRLEN) as i32;
        return Err(if e < 0 { -e } else { libc::EPROTO });
    }
    if u16_at(b, 4) != SOCK_DIAG_BY_FAMILY || total < NLMSG_HDRLEN + 16 {
        return Err(libc::EPROTO);
    }
    let mut info = UnixInfo::default();
    let mut off = NLMSG_HDRLEN + 16;
    while off + 4 <= total {
        let len = u16_at(b, off) as usize;
        let ty = u16_at(b, off + 2);
        if len < 4 || off + len > total {
            break;
        }
        let data = &b[off + 4..off + len];
        match ty {
            UNIX_DIAG_PEER if data.len() >= 4 => info.peer = u32_at(data, 0).into(),
            UNIX_DIAG_RQLEN if data.len() >= 8 => info.backlog = u32_at(data, 4),
            UNIX_DIAG_SHUTDOWN if !data.is_empty() => info.shutdown = data[0] & 3,
            _ => {}
        }
        off += (len + 3) & !3;
    }
    Ok(info)
}

/// The inode of the TCP socket whose local address is `src` and whose peer is `dst` (raw
/// `sockaddr_in`/`sockaddr_in6` bytes), if it is on this host: `inet_diag` exact lookup, first
/// as an IPv4 socket (for IPv4 or IPv4-mapped addresses), then as an IPv6 one.
pub fn tcp_inode(src: &dmtcp_proto::image::InetAddr, dst: &dmtcp_proto::image::InetAddr) -> Option<u64> {
    tcp_socket(src, dst).map(|t| t.inode)
}

/// What `inet_diag` says about one TCP socket.
#[derive(Clone, Copy)]
pub struct TcpInfo {
    pub inode: u64,
    /// Bytes it sent that its peer has not acknowledged, and bytes not sent yet (`idiag_wqueue`).
    pub wqueue: u32,
    /// Bytes in its receive queue (`idiag_rqueue`).
    pub rqueue: u32,
}

/// The TCP socket whose local address is `src` and whose peer is `dst`, if it is on this host
/// (`tcp_inode`).
pub fn tcp_socket(src: &dmtcp_proto::image::InetAddr, dst: &dmtcp_proto::image::InetAddr) -> Option<TcpInfo> {
    let mut families = [0 as c_int; 2];
    let n = if src.as_v4().is_some() && dst.as_v4().is_some() {
        families = [libc::AF_INET, libc::AF_INET6];
        2
    } else {
        families[0] = libc::AF_INET6;
        1
    };
    families[..n].iter().find_map(|&f| tcp_inode_in(f, src, dst))
}

fn tcp_inode_in(
    family: c_int,
    src: &dmtcp_proto::image::InetAddr,
    dst: &dmtcp_proto::image::InetAddr,
) -> Option<TcpInfo> {
    const IPPROTO_TCP: u8 = 6;
    let mut req = [0u8; NLMSG_HDRLEN + 56];
    let len = req.len() as u32;
    req[0..4].copy_from_slice(&len.to_ne_bytes());
    req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    // struct inet_diag_req_v2: family, protocol, ext, pad, states, then inet_diag_sockid.
    req[16] = family as u8;
    req[17] = IPPROTO_TCP;
    req[20..24].copy_from_slice(&u32::MAX.to_ne_bytes());
    let id = 24;
    req[id..id + 2].copy_from_slice(&src.port.to_be_bytes());
    req[id + 2..id + 4].copy_from_slice(&dst.port.to_be_bytes());
    if family == libc::AF_INET {
        req[id + 4..id + 8].copy_from_slice(&src.as_v4()?);
        req[id + 20..id + 24].copy_from_slice(&dst.as_v4()?);
    } else {
        req[id + 4..id + 20].copy_from_slice(&src.addr);
        req[id + 20..id + 36].copy_from_slice(&dst.addr);
    }
    req[id + 40..id + 48].fill(0xff); // INET_DIAG_NOCOOKIE
    let mut reply = [0u8; 512];
    let n = sock_diag(&req, &mut reply).ok()?;
    let b = &reply[..n];
    // struct inet_diag_msg: family, state, timer, retrans, sockid (48), expires, rqueue,
    // wqueue, uid, inode.
    if b.len() < NLMSG_HDRLEN + 72 || u16_at(b, 4) != SOCK_DIAG_BY_FAMILY {
        return None;
    }
    Some(TcpInfo {
        inode: u32_at(b, NLMSG_HDRLEN + 68).into(),
        wqueue: u32_at(b, NLMSG_HDRLEN + 60),
        rqueue: u32_at(b, NLMSG_HDRLEN + 56),
    })
}

/// Whether a process we can see (in our pid namespace, the computation's) holds the socket
/// with inode `ino`.
pub fn held_by_a_process(ino: u64) -> bool {
    holder(ino).is_some()
}

/// Whether the socket with inode `ino` is held by a process we can see that runs under
/// checkpoint control (has this library mapped; not, say, a command started with
/// `dmtcp_nocheckpoint`): such a holder takes part in the drain of its end. The processes we
/// see are those of our pid namespace, the computation's; where `dmtcp_launch` ran without
/// namespaces (they were unavailable) a process of another computation on this host would be
/// taken for one of ours.
pub fn held_under_checkpoint(ino: u64) -> bool {
    holder(ino).is_some_and(runs_libdmtcp)
}

/// Whether /proc/PID/maps names this library.
fn runs_libdmtcp(pid: u64) -> bool {
    const NAME: &[u8] = b"/libdmtcp.so";
    let mut path = crate::cstr::Fixed::<48>::new();
    let mut n = [0u8; 20];
    path.push(b"/proc/");
    path.push(crate::cstr::fmt_u64(pid, &mut n));
    path.push(b"/maps");
    let Ok(fd) = crate::sys::open_read(path.as_cstr()) else { return false };
    // Read in chunks, keeping the last NAME.len() bytes so that a name cut in two is seen.
    let mut buf = [0u8; 4096];
    let (mut keep, mut found) = (0, false);
    while !found {
        match crate::sys::read_some(fd, &mut buf[keep..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => {
                let end = keep + k;
                found = buf[..end].windows(NAME.len()).any(|w| w == NAME);
                keep = end.min(NAME.len());
                buf.copy_within(end - keep..end, 0);
            }
        }
    }
    crate::sys::close(fd);
    found
}

/// The pid of a process we can see that holds the socket with inode `ino`.
fn holder(ino: u64) -> Option<u64> {
    let mut want = crate::cstr::Fixed::<32>::new();
    let mut num = [0u8; 20];
    want.push(b"socket:[");
    want.push(crate::cstr::fmt_u64(ino, &mut num));
    want.push(b"]");
    let mut found = false;
    let mut who = None;
    crate::sys::for_each_numbered_entry(c"/proc", |pid, _| {
        if found {
            return;
        }
        let mut dir = crate::cstr::Fixed::<64>::new();
        let mut n = [0u8; 20];
        dir.push(b"/proc/");
        dir.push(crate::cstr::fmt_u64(pid, &mut n));
        dir.push(b"/fd");
        crate::sys::for_each_numbered_entry(dir.as_cstr(), |fd, _| {
            if found {
                return;
            }
            let mut link = crate::cstr::Fixed::<64>::new();
            let mut m = [0u8; 20];
            link.push(dir.bytes());
            link.push(b"/");
            link.push(crate::cstr::fmt_u64(fd, &mut m));
            let mut buf = [0u8; 64];
            if let Ok(k) = crate::sys::readlink(link.as_cstr(), &mut buf) {
                found = &buf[..k.min(64)] == want.bytes();
            }
        });
        if found {
            who = Some(pid);
        }
    });
    who
}
