//! The body of an fd record of kind `FD_INET_SOCKET`: one TCP or UDP socket over IPv4 or IPv6
//! the process held at checkpoint time. The two ends of a TCP connection are matched by their
//! address pair (this end's local address and port are the other's peer address and port), not
//! by an inode, so that ends in two images, even of two hosts, can be paired by whoever sees
//! both records (today `dmtcp_restart`; later the coordinator). IPv4 addresses are stored as
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`). The inode names the socket among the
//! processes that share it over fork. Options other than the ones needed before `bind` (and the
//! bytes in flight) stay in the process's own memory.
use super::socket_unix::{SockState, SHUT_RCV, SHUT_SEND};
use super::{ImageError, Record, FD_SIZE};
use crate::le::{get_u32, put_u32};

pub const FAMILY: usize = 8; // u8 4 or 6
pub const TYPE: usize = 9; // u8 SOCK_STREAM (1) or SOCK_DGRAM (2)
pub const STATE: usize = 10; // u8 SockState
pub const FLAGS: usize = 11; // u8 INET_* and SHUT_* bits
pub const INODE: usize = 20; // u32 the socket's inode (socket inodes are 32-bit)
pub const LOCAL_ADDR: usize = 24; // [u8; 16]
pub const PEER_ADDR: usize = 40; // [u8; 16]
pub const LOCAL_PORT: usize = 56; // u16 (host order, little-endian in the record)
pub const PEER_PORT: usize = 58; // u16
pub const BACKLOG: usize = 60; // u32 listen backlog

/// Flag bits (the SHUT_* bits of `socket_unix` are bits 0 and 1 here too).
pub const INET_REUSEPORT: u8 = 4;
pub const INET_V6ONLY: u8 = 8;
/// This process saved bytes of the socket's receive queue.
pub const INET_PENDING: u8 = 16;
/// SO_REUSEADDR was set.
pub const INET_REUSEADDR: u8 = 32;
const INET_FLAGS: u8 = SHUT_RCV | SHUT_SEND | INET_REUSEPORT | INET_V6ONLY | INET_PENDING | INET_REUSEADDR;

/// One side of a socket's address: an IPv6 (or IPv4-mapped) address and a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InetAddr {
    pub addr: [u8; 16],
    pub port: u16,
}

impl InetAddr {
    pub const UNSPECIFIED: InetAddr = InetAddr { addr: [0; 16], port: 0 };

    /// `a.b.c.d:port` as an IPv4-mapped address.
    pub fn v4(ip: [u8; 4], port: u16) -> InetAddr {
        let mut addr = [0u8; 16];
        addr[10] = 0xff;
        addr[11] = 0xff;
        addr[12..].copy_from_slice(&ip);
        InetAddr { addr, port }
    }

    /// The IPv4 address, if this is an IPv4-mapped one.
    pub fn as_v4(&self) -> Option<[u8; 4]> {
        if self.addr[..10].iter().all(|&b| b == 0) && self.addr[10] == 0xff && self.addr[11] == 0xff {
            Some([self.addr[12], self.addr[13], self.addr[14], self.addr[15]])
        } else {
            None
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InetSocketRecord {
    /// 4 or 6: the socket's address family (an IPv6 socket may hold IPv4-mapped addresses).
    pub family: u8,
    pub sock_type: u8,
    pub state: SockState,
    pub flags: u8,
    pub inode: u32,
    pub local: InetAddr,
    pub peer: InetAddr,
    pub backlog: u32,
}

impl InetSocketRecord {
    pub const KIND: u32 = super::FD_INET_SOCKET;

    pub(crate) fn encode_body(&self, b: &mut [u8; FD_SIZE]) {
        b[FAMILY] = self.family;
        b[TYPE] = self.sock_type;
        b[STATE] = self.state.as_u8();
        b[FLAGS] = self.flags;
        put_u32(b, INODE, self.inode);
        b[LOCAL_ADDR..LOCAL_ADDR + 16].copy_from_slice(&self.local.addr);
        b[PEER_ADDR..PEER_ADDR + 16].copy_from_slice(&self.peer.addr);
        b[LOCAL_PORT..LOCAL_PORT + 2].copy_from_slice(&self.local.port.to_le_bytes());
        b[PEER_PORT..PEER_PORT + 2].copy_from_slice(&self.peer.port.to_le_bytes());
        put_u32(b, BACKLOG, self.backlog);
    }

    pub(crate) fn decode_body(b: &[u8]) -> Result<InetSocketRecord, ImageError> {
        let bad = |field, value: u8| ImageError::BadField { record: Record::Fd, field, value: value.into() };
        if b[FAMILY] != 4 && b[FAMILY] != 6 {
            return Err(bad("socket family", b[FAMILY]));
        }
        if b[TYPE] != 1 && b[TYPE] != 2 {
            return Err(bad("socket type", b[TYPE]));
        }
        let state = SockState::from_u8(b[STATE]).ok_or(bad("socket state", b[STATE]))?;
        if b[FLAGS] & !INET_FLAGS != 0 {
            return Err(bad("socket flags", b[FLAGS]));
        }
        let addr = |off: usize, port: usize| {
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[off..off + 16]);
            InetAddr { addr: a, port: u16::from_le_bytes([b[port], b[port + 1]]) }
        };
        Ok(InetSocketRecord {
            family: b[FAMILY],
            sock_type: b[TYPE],
            state,
            flags: b[FLAGS],
            inode: get_u32(b, INODE),
            local: addr(LOCAL_ADDR, LOCAL_PORT),
            peer: addr(PEER_ADDR, PEER_PORT),
            backlog: get_u32(b, BACKLOG),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{FdBody, FdRecord, FD_INET_SOCKET};
    use super::*;

    fn sample() -> InetSocketRecord {
        InetSocketRecord {
            family: 6,
            sock_type: 1,
            state: SockState::Connected,
            flags: INET_V6ONLY | SHUT_SEND | INET_PENDING,
            inode: 0xdead_beef,
            local: InetAddr { addr: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], port: 8080 },
            peer: InetAddr::v4([127, 0, 0, 1], 40000),
            backlog: 0,
        }
    }

    #[test]
    fn inet_socket_record_round_trips_at_its_offsets() {
        let r = FdRecord { fd: 4, fd_flags: 0, status: 2, body: FdBody::InetSocket(sample()) };
        let mut b = [0x55u8; FD_SIZE];
        r.encode(&mut b);
        assert_eq!(FdRecord::decode(&b), Ok(r));
        assert_eq!(get_u32(&b, 4), FD_INET_SOCKET);
        assert_eq!((b[8], b[9], b[10], b[11]), (6, 1, 1, INET_V6ONLY | SHUT_SEND | INET_PENDING));
        assert_eq!(get_u32(&b, 20), 0xdead_beef);
        assert_eq!(b[39], 1);
        assert_eq!(&b[50..56], &[0xff, 0xff, 127, 0, 0, 1]);
        assert_eq!(u16::from_le_bytes([b[56], b[57]]), 8080);
        assert_eq!(u16::from_le_bytes([b[58], b[59]]), 40000);
        assert_eq!(r.inet_socket(), Some(&sample()));
    }

    #[test]
    fn inet_socket_record_refuses_unknown_family_type_state_and_flags() {
        let mut b = [0u8; FD_SIZE];
        FdRecord { fd: 3, fd_flags: 0, status: 2, body: FdBody::InetSocket(sample()) }.encode(&mut b);
        for (off, v, field) in [
            (FAMILY, 2u8, "socket family"),
            (TYPE, 5, "socket type"),
            (STATE, 9, "socket state"),
            (FLAGS, 64, "socket flags"),
        ] {
            let mut c = b;
            c[off] = v;
            assert_eq!(FdRecord::decode(&c), Err(ImageError::BadField { record: Record::Fd, field, value: v.into() }));
        }
    }

    #[test]
    fn ipv4_addresses_are_mapped_and_back() {
        let a = InetAddr::v4([10, 1, 2, 3], 5);
        assert_eq!(a.as_v4(), Some([10, 1, 2, 3]));
        assert_eq!(sample().local.as_v4(), None);
        assert_eq!(InetAddr::UNSPECIFIED.as_v4(), None);
    }
}
