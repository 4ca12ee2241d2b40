//! Only the owner: a coordinator serves the user who started it. On this host the kernel tells
//! who opened the other end of a TCP connection: the client's socket is a line of
//! /proc/net/tcp (or tcp6) whose local address is the peer address we accepted from and whose
//! remote address is ours, with the uid that created it (shown in the reader's user namespace:
//! the real uid, also for processes restarted inside our own user namespace). A connection
//! from another uid is refused before the computation hears of it. A connection from another
//! host has no such line; it is accepted as before (a later change adds a secret token for
//! those, which `--coord-host` needs).
//!
//! The socket is looked up with the kernel's socket diagnostics (NETLINK_SOCK_DIAG, an exact
//! `inet_diag` lookup by address pair, the interface `ss` uses): tens of microseconds whatever
//! the number of sockets on the host, where reading /proc/net/tcp cost one pass over every TCP
//! socket of the host on each accept (26 ms with a few thousand of them in TIME_WAIT, which
//! made fork+exec under dmtcp slow). Where netlink is unavailable (a kernel without
//! `inet_diag`), the text tables are read as before.
use std::net::{IpAddr, SocketAddr};

/// Who is at the other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// A process of this host with this uid.
    Local(u32),
    /// No socket of this host has that address pair: another host.
    Remote,
}

/// Looks up who opened the connection from `peer` to our `local` address.
pub fn peer(peer: SocketAddr, local: SocketAddr) -> Peer {
    match lookup(peer, local) {
        Some((uid, _)) => Peer::Local(uid),
        None => Peer::Remote,
    }
}

/// The uid and socket inode of this host's socket whose local address is `peer` and remote
/// address `local` (the client end of a connection we accepted), if there is one.
pub fn lookup(peer: SocketAddr, local: SocketAddr) -> Option<(u32, u64)> {
    match diag::find(peer, local) {
        Ok(found) => found,
        Err(e) => {
            log::debug!("socket diagnostics unavailable ({e}); reading /proc/net/tcp");
            ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|t| {
                let text = std::fs::read_to_string(t).ok()?;
                Some((uid_in(&text, peer, local)?, inode_in(&text, peer, local)?))
            })
        }
    }
}

/// The exact `inet_diag` lookup (SOCK_DIAG_BY_FAMILY without NLM_F_DUMP), as plain bytes
/// through nix's netlink socket: no `unsafe` here.
mod diag {
    use super::unmapped;
    use nix::sys::socket::{self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType};
    use std::net::{IpAddr, SocketAddr};
    use std::os::fd::AsRawFd;

    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLM_F_REQUEST: u16 = 1;
    const NLMSG_ERROR: u16 = 2;
    const HDR: usize = 16;
    /// nlmsghdr + inet_diag_req_v2 (family, protocol, ext, pad, states, inet_diag_sockid).
    pub const REQ_LEN: usize = HDR + 56;

    /// The request for the socket whose local end is `src` and remote end `dst`. IPv4 peers
    /// (also seen as ::ffff:a.b.c.d by a dual-stack listener) are asked for as AF_INET: a v6
    /// socket connected to a mapped address lives in the IPv4 tables too.
    pub fn request(src: SocketAddr, dst: SocketAddr) -> [u8; REQ_LEN] {
        let (s, d) = (unmapped(src.ip()), unmapped(dst.ip()));
        let mut r = [0u8; REQ_LEN];
        r[0..4].copy_from_slice(&(REQ_LEN as u32).to_ne_bytes());
        r[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        r[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        r[8..12].copy_from_slice(&1u32.to_ne_bytes());
        let family = if s.is_ipv4() && d.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
        r[HDR] = family as u8;
        r[HDR + 1] = libc::IPPROTO_TCP as u8;
        r[HDR + 4..HDR + 8].copy_from_slice(&u32::MAX.to_ne_bytes());
        // inet_diag_sockid: sport, dport (network order), src[4], dst[4], if, cookie[2].
        let id = HDR + 8;
        r[id..id + 2].copy_from_slice(&src.port().to_be_bytes());
        r[id + 2..id + 4].copy_from_slice(&dst.port().to_be_bytes());
        let octets = |ip: IpAddr| -> Vec<u8> {
            match (ip, family) {
                (IpAddr::V4(v4), libc::AF_INET) => v4.octets().to_vec(),
                (IpAddr::V4(v4), _) => v4.to_ipv6_mapped().octets().to_vec(),
                (IpAddr::V6(v6), _) => v6.octets().to_vec(),
            }
        };
        let (so, dob) = (octets(s), octets(d));
        r[id + 4..id + 4 + so.len()].copy_from_slice(&so);
        r[id + 20..id + 20 + dob.len()].copy_from_slice(&dob);
        r[id + 40..id + 48].fill(0xff); // INET_DIAG_NOCOOKIE
        r
    }

    /// Reads the answer: Some((uid, inode)) for an `inet_diag_msg`, None when the kernel says
    /// there is no such socket (ENOENT), Err for anything else.
    pub fn parse(b: &[u8]) -> Result<Option<(u32, u64)>, String> {
        if b.len() < HDR + 4 {
            return Err(format!("short answer ({} bytes)", b.len()));
        }
        let kind = u16::from_ne_bytes([b[4], b[5]]);
        if kind == NLMSG_ERROR {
            let errno = -i32::from_ne_bytes([b[HDR], b[HDR + 1], b[HDR + 2], b[HDR + 3]]);
            return if errno == libc::ENOENT {
                Ok(None)
            } else {
                Err(std::io::Error::from_raw_os_error(errno).to_string())
            };
        }
        // inet_diag_msg: family, state, timer, retrans, sockid (48), expires, rqueue, wqueue,
        // uid, inode.
        let at = |off: usize| u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]]);
        if kind != SOCK_DIAG_BY_FAMILY || b.len() < HDR + 72 {
            return Err(format!("unexpected answer (type {kind}, {} bytes)", b.len()));
        }
        Ok(Some((at(HDR + 64), at(HDR + 68).into())))
    }

    pub fn find(src: SocketAddr, dst: SocketAddr) -> Result<Option<(u32, u64)>, String> {
        let sock = socket::socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkSockDiag,
        )
        .map_err(|e| format!("netlink socket: {e}"))?;
        let tv = nix::sys::time::TimeVal::new(1, 0);
        socket::setsockopt(&sock, socket::sockopt::ReceiveTimeout, &tv).map_err(|e| e.to_string())?;
        socket::sendto(sock.as_raw_fd(), &request(src, dst), &NetlinkAddr::new(0, 0), MsgFlags::empty())
            .map_err(|e| format!("netlink send: {e}"))?;
        let mut buf = [0u8; 1024];
        let n =
            socket::recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()).map_err(|e| format!("netlink recv: {e}"))?;
        parse(&buf[..n])
    }
}

/// Whether a connection from `peer` (as `peer()` found it) may use a coordinator owned by
/// `owner`; a loopback peer with no socket line (it closed at once) is refused too.
pub fn allowed(found: Peer, addr: SocketAddr, owner: u32) -> bool {
    match found {
        Peer::Local(uid) => uid == owner,
        Peer::Remote => !unmapped(addr.ip()).is_loopback(),
    }
}

/// The text a refused client gets.
pub fn refusal(found: Peer, owner: u32) -> String {
    let name = nix::unistd::User::from_uid(owner.into()).ok().flatten().map(|u| u.name).unwrap_or_default();
    match found {
        Peer::Local(uid) => {
            format!("this coordinator belongs to user {name} (uid {owner}); connections from uid {uid} are refused")
        }
        Peer::Remote => format!("this coordinator belongs to user {name} (uid {owner}); it cannot tell who you are"),
    }
}

/// An IPv4 address inside an IPv6 one (a dual-stack listener's view) as the IPv4 it is.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// How /proc/net/tcp{,6} prints an address: each 32-bit word of the address in network
/// order, printed as a host-order (little-endian) hex number, then the port in hex.
fn proc_form(ip: IpAddr, port: u16) -> String {
    let octets: Vec<u8> = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    let mut s: String =
        octets.chunks(4).map(|c| format!("{:08X}", u32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect();
    s.push_str(&format!(":{port:04X}"));
    s
}

/// The uid of the socket whose local address is `peer` and remote address `local`, in one
/// /proc/net/tcp-format table. An IPv4 client of a dual-stack listener may be in the IPv4
/// table with the plain addresses or in the IPv6 one as ::ffff:a.b.c.d: both are tried.
fn uid_in(text: &str, peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    field_in(text, peer, local, 7)?.parse().ok()
}

/// The socket inode of that line.
fn inode_in(text: &str, peer: SocketAddr, local: SocketAddr) -> Option<u64> {
    field_in(text, peer, local, 9)?.parse().ok().filter(|&i| i != 0)
}

/// Field `n` of the line whose local address is `peer` and remote address `local`.
fn field_in(text: &str, peer: SocketAddr, local: SocketAddr, n: usize) -> Option<&str> {
    let (pi, li) = (unmapped(peer.ip()), unmapped(local.ip()));
    let mut pairs = vec![(proc_form(pi, peer.port()), proc_form(li, local.port()))];
    if let (IpAddr::V4(p), IpAddr::V4(l)) = (pi, li) {
        pairs.push((
            proc_form(IpAddr::V6(p.to_ipv6_mapped()), peer.port()),
            proc_form(IpAddr::V6(l.to_ipv6_mapped()), local.port()),
        ));
    }
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (loc, rem, value) = (f.get(1)?, f.get(2)?, f.get(n)?);
        pairs.iter().any(|(p, l)| loc == p && rem == l).then_some(*value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1E73 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 11 1
   1: 0100007F:9C40 0100007F:1E73 01 00000000:00000000 00:00000000 00000000  1001        0 12 1
   2: 0100007F:1E73 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 13 1";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:A000 00000000000000000000000001000000:1E73 01 00000000:00000000 00:00000000 00000000     0        0 14 1
   1: 0000000000000000FFFF00000100007F:A001 0000000000000000FFFF00000100007F:1E73 01 00000000:00000000 00:00000000 00000000   33        0 15 1";

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_client_socket_names_its_uid_by_address_pair() {
        // The client end (local 127.0.0.1:40000 -> 127.0.0.1:7795), not our own end.
        assert_eq!(uid_in(TCP, a("127.0.0.1:40000"), a("127.0.0.1:7795")), Some(1001));
        assert_eq!(uid_in(TCP, a("127.0.0.1:40001"), a("127.0.0.1:7795")), None);
        assert_eq!(uid_in(TCP6, a("[::1]:40960"), a("[::1]:7795")), Some(0));
        // A dual-stack listener sees ::ffff:127.0.0.1; the client may be in either table.
        assert_eq!(uid_in(TCP, a("[::ffff:127.0.0.1]:40000"), a("[::ffff:127.0.0.1]:7795")), Some(1001));
        assert_eq!(uid_in(TCP6, a("127.0.0.1:40961"), a("127.0.0.1:7795")), Some(33));
        assert_eq!(proc_form(a("10.1.2.3:80").ip(), 80), "0302010A:0050");
        assert_eq!(inode_in(TCP, a("127.0.0.1:40000"), a("127.0.0.1:7795")), Some(12));
        assert_eq!(inode_in(TCP6, a("127.0.0.1:40961"), a("127.0.0.1:7795")), Some(15));
    }

    #[test]
    fn the_diag_request_names_the_client_end_and_its_family() {
        let r = diag::request(a("127.0.0.1:40000"), a("127.0.0.1:7795"));
        assert_eq!(r[16], libc::AF_INET as u8);
        assert_eq!(&r[24..28], &[0x9c, 0x40, 0x1e, 0x73], "ports in network order");
        assert_eq!(&r[28..32], &[127, 0, 0, 1]);
        assert_eq!(&r[44..48], &[127, 0, 0, 1]);
        assert_eq!(&r[64..72], &[0xff; 8]);
        // A dual-stack listener's view of an IPv4 client is asked for as IPv4.
        assert_eq!(diag::request(a("[::ffff:127.0.0.1]:1"), a("[::ffff:127.0.0.1]:2"))[16], libc::AF_INET as u8);
        let r6 = diag::request(a("[::1]:1"), a("[::1]:2"));
        assert_eq!(r6[16], libc::AF_INET6 as u8);
        assert_eq!(r6[43], 1);
        assert_eq!(r6[59], 1);
    }

    #[test]
    fn the_diag_answer_gives_uid_and_inode_or_none() {
        let mut b = [0u8; 88];
        b[4] = 20;
        b[80..84].copy_from_slice(&1001u32.to_ne_bytes());
        b[84..88].copy_from_slice(&77u32.to_ne_bytes());
        assert_eq!(diag::parse(&b), Ok(Some((1001, 77))));
        let mut e = [0u8; 36];
        e[4] = 2;
        e[16..20].copy_from_slice(&(-libc::ENOENT).to_ne_bytes());
        assert_eq!(diag::parse(&e), Ok(None));
        e[16..20].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
        assert!(diag::parse(&e).is_err());
        assert!(diag::parse(&b[..40]).is_err());
    }

    /// The real kernel, both families: a connection we make is found with our uid and the
    /// inode /proc/self/fd names, and an address pair nobody has is not.
    #[test]
    fn the_kernel_finds_our_own_client_socket() {
        use std::os::fd::AsRawFd;
        for host in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(l) = std::net::TcpListener::bind(host) else { continue };
            let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (_s, from) = l.accept().unwrap();
            let found = diag::find(from, l.local_addr().unwrap()).expect("netlink answers");
            let (uid, inode) = found.expect("our client socket");
            assert_eq!(uid, nix::unistd::geteuid().as_raw());
            let link = std::fs::read_link(format!("/proc/self/fd/{}", c.as_raw_fd())).unwrap();
            assert_eq!(link.to_str().unwrap(), format!("socket:[{inode}]"));
            let mut other = from;
            other.set_port(if from.port() == 1 { 2 } else { 1 });
            assert_eq!(diag::find(other, l.local_addr().unwrap()), Ok(None));
        }
    }

    #[test]
    fn only_the_owner_and_other_hosts_are_allowed() {
        let lo = a("127.0.0.1:40000");
        assert!(allowed(Peer::Local(1000), lo, 1000));
        assert!(!allowed(Peer::Local(1001), lo, 1000));
        assert!(!allowed(Peer::Remote, lo, 1000), "a loopback peer we cannot find is refused");
        assert!(!allowed(Peer::Remote, a("[::ffff:127.0.0.1]:1"), 1000));
        assert!(allowed(Peer::Remote, a("10.0.0.2:5000"), 1000));
        assert!(refusal(Peer::Local(1001), 1000).contains("connections from uid 1001 are refused"));
    }
}
