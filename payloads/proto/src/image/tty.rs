//! The body of an fd record of kind `FD_PTY`: one end of a pseudo-terminal pair that the
//! computation made (posix_openpt, openpty, forkpty), so that `dmtcp_restart` can make each
//! pair once (pairs are named by their old pty number, `index`) and put its ends at the same fd
//! numbers in every process that had them. The pty's settings (termios, window size, packet
//! mode) and the bytes in flight are not here: the processes keep them in their memory and give
//! them back themselves after the restart. The user's own terminal has no record (kind tag
//! `FD_TERMINAL` is reserved): each process opens its new one itself.
use super::{ImageError, Record, FD_SIZE};
use crate::le::{get_u32, put_u32};

// Body field offsets within the 64-byte fd record (the common part is in `fd`).
pub const PTY_END: usize = 8; // u32 PTY_MASTER or PTY_SLAVE
pub const PTY_INDEX: usize = 20; // u32 the pty's number at checkpoint (/dev/pts/<index>)
pub const PTY_FLAGS: usize = 24; // u32 PTY_CTTY

pub const PTY_MASTER: u32 = 0;
pub const PTY_SLAVE: u32 = 1;
/// Flag: the slave is the controlling terminal of the session this process leads.
pub const PTY_CTTY: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PtyEnd {
    Master,
    Slave,
}

impl PtyEnd {
    pub fn as_u32(self) -> u32 {
        match self {
            PtyEnd::Master => PTY_MASTER,
            PtyEnd::Slave => PTY_SLAVE,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PtyRecord {
    pub end: PtyEnd,
    pub index: u32,
    pub flags: u32,
}

impl PtyRecord {
    /// The kind tag of this body.
    pub const KIND: u32 = super::FD_PTY;

    pub(crate) fn encode_body(&self, b: &mut [u8; FD_SIZE]) {
        put_u32(b, PTY_END, self.end.as_u32());
        put_u32(b, PTY_INDEX, self.index);
        put_u32(b, PTY_FLAGS, self.flags);
    }

    pub(crate) fn decode_body(b: &[u8]) -> Result<PtyRecord, ImageError> {
        let end = match get_u32(b, PTY_END) {
            PTY_MASTER => PtyEnd::Master,
            PTY_SLAVE => PtyEnd::Slave,
            v => return Err(ImageError::BadField { record: Record::Fd, field: "pty end", value: v.into() }),
        };
        let flags = get_u32(b, PTY_FLAGS);
        if flags & !PTY_CTTY != 0 {
            return Err(ImageError::BadField { record: Record::Fd, field: "pty flags", value: flags.into() });
        }
        Ok(PtyRecord { end, index: get_u32(b, PTY_INDEX), flags })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{FdBody, FdRecord, FD_PTY};
    use super::*;
    use crate::le::get_i32;

    #[test]
    fn pty_record_round_trips_at_its_offsets() {
        for (end, flags) in [(PtyEnd::Master, 0), (PtyEnd::Slave, PTY_CTTY)] {
            let r = FdRecord { fd: 5, fd_flags: 1, status: 2, body: FdBody::Pty(PtyRecord { end, index: 17, flags }) };
            let mut b = [0xaau8; FD_SIZE];
            r.encode(&mut b);
            assert_eq!(FdRecord::decode(&b), Ok(r));
            assert_eq!(get_i32(&b, 0), 5);
            assert_eq!(get_u32(&b, 4), FD_PTY);
            assert_eq!(get_u32(&b, PTY_END), end.as_u32());
            assert_eq!(get_u32(&b, PTY_INDEX), 17);
            assert_eq!(get_u32(&b, PTY_FLAGS), flags);
            assert!(b[28..].iter().all(|&c| c == 0));
            assert_eq!(r.pty().map(|p| p.end), Some(end));
            assert_eq!(r.pipe(), None);
        }
    }

    #[test]
    fn pty_record_refuses_unknown_end_and_flags() {
        let r = FdRecord {
            fd: 5,
            fd_flags: 0,
            status: 2,
            body: FdBody::Pty(PtyRecord { end: PtyEnd::Slave, index: 3, flags: 0 }),
        };
        let mut b = [0u8; FD_SIZE];
        r.encode(&mut b);
        let mut e = b;
        put_u32(&mut e, PTY_END, 2);
        assert_eq!(FdRecord::decode(&e), Err(ImageError::BadField { record: Record::Fd, field: "pty end", value: 2 }));
        let mut f = b;
        put_u32(&mut f, PTY_FLAGS, 6);
        assert_eq!(
            FdRecord::decode(&f),
            Err(ImageError::BadField { record: Record::Fd, field: "pty flags", value: 6 })
        );
    }
}
