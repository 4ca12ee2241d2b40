//! The body of an fd record of kind `FD_UNIX_SOCKET`: one UNIX-domain socket (stream, datagram
//! or seqpacket) the process held at checkpoint time. Only what `dmtcp_restart` needs to make
//! the socket once and pair it with its peer is here: the socket's old inode (the same socket in
//! every process that shares it over fork), its peer's inode (from the kernel's socket
//! diagnostics, `UNIX_DIAG_PEER`), the type, whether it was connected or listening, and whether
//! this process holds bytes of its receive queue to put back. The name it was bound to, its
//! options and its bytes in flight stay in the process's own memory (the library restores them).
use super::{ImageError, Record, FD_SIZE};
use crate::le::{get_u64, put_u64};

// Body field offsets within the 64-byte fd record (the common part is in `fd`).
pub const TYPE: usize = 8; // u8 SOCK_STREAM (1), SOCK_DGRAM (2), SOCK_SEQPACKET (5)
pub const STATE: usize = 9; // u8 SockState
pub const SHUTDOWN: usize = 10; // u8 SHUT_RCV | SHUT_SEND of this end
pub const FLAGS: usize = 11; // u8 UNIX_BOUND
pub const INODE: usize = 24; // u64 the socket's inode at checkpoint time
pub const PEER: usize = 32; // u64 its peer's inode (0: none)
pub const PENDING: usize = 40; // u64 bytes of its receive queue this process saved

/// This end no longer receives (`shutdown(SHUT_RD)`, or the peer shut its sending side).
pub const SHUT_RCV: u8 = 1;
/// This end no longer sends.
pub const SHUT_SEND: u8 = 2;
/// Bound to a name (a path or an abstract name).
pub const UNIX_BOUND: u8 = 1;

/// The socket types the format knows (the kernel's SOCK_* values).
pub const SOCK_STREAM: u8 = 1;
pub const SOCK_DGRAM: u8 = 2;
pub const SOCK_SEQPACKET: u8 = 5;

/// What a socket was doing at checkpoint time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockState {
    /// Neither connected nor listening (maybe bound).
    Idle,
    /// Connected to a peer (a socketpair end, an accepted or a connected socket).
    Connected,
    /// Listening for connections.
    Listening,
}

impl SockState {
    pub fn as_u8(self) -> u8 {
        match self {
            SockState::Idle => 0,
            SockState::Connected => 1,
            SockState::Listening => 2,
        }
    }
    pub fn from_u8(v: u8) -> Option<SockState> {
        match v {
            0 => Some(SockState::Idle),
            1 => Some(SockState::Connected),
            2 => Some(SockState::Listening),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnixSocketRecord {
    pub sock_type: u8,
    pub state: SockState,
    pub shutdown: u8,
    pub flags: u8,
    pub inode: u64,
    pub peer: u64,
    pub pending: u64,
}

impl UnixSocketRecord {
    /// The kind tag of this body.
    pub const KIND: u32 = super::FD_UNIX_SOCKET;

    pub(crate) fn encode_body(&self, b: &mut [u8; FD_SIZE]) {
        b[TYPE] = self.sock_type;
        b[STATE] = self.state.as_u8();
        b[SHUTDOWN] = self.shutdown;
        b[FLAGS] = self.flags;
        put_u64(b, INODE, self.inode);
        put_u64(b, PEER, self.peer);
        put_u64(b, PENDING, self.pending);
    }

    pub(crate) fn decode_body(b: &[u8]) -> Result<UnixSocketRecord, ImageError> {
        let bad = |field, value: u8| ImageError::BadField { record: Record::Fd, field, value: value.into() };
        let sock_type = b[TYPE];
        if ![SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET].contains(&sock_type) {
            return Err(bad("socket type", sock_type));
        }
        let state = SockState::from_u8(b[STATE]).ok_or(bad("socket state", b[STATE]))?;
        if b[SHUTDOWN] & !(SHUT_RCV | SHUT_SEND) != 0 {
            return Err(bad("socket shutdown", b[SHUTDOWN]));
        }
        if b[FLAGS] & !UNIX_BOUND != 0 {
            return Err(bad("socket flags", b[FLAGS]));
        }
        Ok(UnixSocketRecord {
            sock_type,
            state,
            shutdown: b[SHUTDOWN],
            flags: b[FLAGS],
            inode: get_u64(b, INODE),
            peer: get_u64(b, PEER),
            pending: get_u64(b, PENDING),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{FdBody, FdRecord, FD_UNIX_SOCKET};
    use super::*;
    use crate::le::get_u32;

    fn sample() -> UnixSocketRecord {
        UnixSocketRecord {
            sock_type: SOCK_SEQPACKET,
            state: SockState::Connected,
            shutdown: SHUT_SEND,
            flags: UNIX_BOUND,
            inode: 0x1234_5678_9abc,
            peer: 77,
            pending: 4096,
        }
    }

    #[test]
    fn unix_socket_record_round_trips_at_its_offsets() {
        let r = FdRecord { fd: 9, fd_flags: 1, status: 0o4002, body: FdBody::UnixSocket(sample()) };
        let mut b = [0x55u8; FD_SIZE];
        r.encode(&mut b);
        assert_eq!(FdRecord::decode(&b), Ok(r));
        assert_eq!(get_u32(&b, 4), FD_UNIX_SOCKET);
        assert_eq!((b[8], b[9], b[10], b[11]), (5, 1, 2, 1));
        assert_eq!(get_u64(&b, 24), 0x1234_5678_9abc);
        assert_eq!(get_u64(&b, 32), 77);
        assert_eq!(get_u64(&b, 40), 4096);
        assert!(b[48..].iter().all(|&c| c == 0) && b[20..24].iter().all(|&c| c == 0));
        assert_eq!(r.unix_socket(), Some(&sample()));
        assert_eq!(r.pipe(), None);
    }

    #[test]
    fn unix_socket_record_refuses_unknown_type_state_and_bits() {
        let mut b = [0u8; FD_SIZE];
        FdRecord { fd: 3, fd_flags: 0, status: 2, body: FdBody::UnixSocket(sample()) }.encode(&mut b);
        for (off, v, field) in [
            (TYPE, 3u8, "socket type"),
            (STATE, 3, "socket state"),
            (SHUTDOWN, 4, "socket shutdown"),
            (FLAGS, 2, "socket flags"),
        ] {
            let mut c = b;
            c[off] = v;
            assert_eq!(
                FdRecord::decode(&c),
                Err(ImageError::BadField { record: Record::Fd, field, value: v.into() }),
                "{field}"
            );
        }
        for st in [SockState::Idle, SockState::Connected, SockState::Listening] {
            assert_eq!(SockState::from_u8(st.as_u8()), Some(st));
        }
    }
}
