//! Only the owner: a coordinator serves the user who started it. On this host the kernel tells
//! who opened the other end of a TCP connection: the client's socket is a line of
//! /proc/net/tcp (or tcp6) whose local address is the peer address we accepted from and whose
//! remote address is ours, with the uid that created it (shown in the reader's user namespace:
//! the real uid, also for processes restarted inside our own user namespace). A connection
//! from another uid is refused before the computation hears of it. A connection from another
//! host has no such line; it is accepted as before (a later change adds a secret token for
//! those, which `--coord-host` needs).
//!
//! This reads a text table instead of asking the kernel's socket diagnostics (NETLINK_SOCK_DIAG)
//! for the one socket: one accept costs one pass over the host's TCP sockets, which stays small
//! next to the connection's own work, and the parsing is plain and unit-tested here.
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
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            if let Some(uid) = uid_in(&text, peer, local) {
                return Peer::Local(uid);
            }
        }
    }
    Peer::Remote
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

/// The socket inode of that line (for `stopped::client_pid`).
pub fn inode_in(text: &str, peer: SocketAddr, local: SocketAddr) -> Option<u64> {
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
