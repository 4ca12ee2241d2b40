//! The body of an fd record of kind `FD_MQUEUE`: a POSIX message queue descriptor (mq_open).
//! The queue's name and its messages are not here: the process keeps them in its own memory,
//! which is in its image (libdmtcp `resources/mqueue.rs`), and opens the queue again itself
//! after restart. The record tells `dmtcp_restart` that the group needs an IPC namespace of its
//! own (a queue lives in its IPC namespace's mqueue fs), and what the queue was.
use super::{ImageError, Record, FD_SIZE};
use crate::le::{get_u32, get_u64, put_u32, put_u64};

// Body field offsets within the 64-byte fd record.
pub const MODE: usize = 8; // u32 permission bits
pub const FLAGS: usize = 20; // u32 MQ_UNLINKED | MQ_HOLDER
pub const MAXMSG: usize = 24; // u64 mq_maxmsg
pub const MSGSIZE: usize = 32; // u64 mq_msgsize
pub const CURMSGS: usize = 40; // u64 messages queued at checkpoint
pub const INODE: usize = 48; // u64 the queue's inode at checkpoint
pub const MQUEUE_BODY_END: usize = 56;

/// The queue's name was unlinked (it is made again under its name, then unlinked).
pub const MQ_UNLINKED: u32 = 1;
/// This process holds the queue's messages and sends them again.
pub const MQ_HOLDER: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MqueueRecord {
    pub mode: u32,
    pub flags: u32,
    pub maxmsg: u64,
    pub msgsize: u64,
    pub curmsgs: u64,
    pub inode: u64,
}

impl MqueueRecord {
    /// The kind tag of this body.
    pub const KIND: u32 = super::FD_MQUEUE;

    pub(crate) fn encode_body(&self, b: &mut [u8; FD_SIZE]) {
        put_u32(b, MODE, self.mode);
        put_u32(b, FLAGS, self.flags);
        put_u64(b, MAXMSG, self.maxmsg);
        put_u64(b, MSGSIZE, self.msgsize);
        put_u64(b, CURMSGS, self.curmsgs);
        put_u64(b, INODE, self.inode);
    }

    pub(crate) fn decode_body(b: &[u8]) -> Result<MqueueRecord, ImageError> {
        let bad = |field, value| Err(ImageError::BadField { record: Record::Fd, field, value });
        let r = MqueueRecord {
            mode: get_u32(b, MODE),
            flags: get_u32(b, FLAGS),
            maxmsg: get_u64(b, MAXMSG),
            msgsize: get_u64(b, MSGSIZE),
            curmsgs: get_u64(b, CURMSGS),
            inode: get_u64(b, INODE),
        };
        if r.mode & !0o7777 != 0 {
            return bad("message queue mode", r.mode as u64);
        }
        if r.flags & !(MQ_UNLINKED | MQ_HOLDER) != 0 {
            return bad("message queue flags", r.flags as u64);
        }
        // The kernel's hard limits (HARD_MSGMAX, HARD_MSGSIZEMAX).
        if r.maxmsg == 0 || r.maxmsg > 65536 {
            return bad("message queue maxmsg", r.maxmsg);
        }
        if r.msgsize == 0 || r.msgsize > 16 << 20 {
            return bad("message queue msgsize", r.msgsize);
        }
        if r.curmsgs > r.maxmsg {
            return bad("message queue curmsgs", r.curmsgs);
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{FdBody, FdRecord, FD_MQUEUE};
    use super::*;

    fn sample() -> FdRecord {
        FdRecord {
            fd: 5,
            fd_flags: 1,
            status: 0o4002,
            body: FdBody::Mqueue(MqueueRecord {
                mode: 0o640,
                flags: MQ_HOLDER,
                maxmsg: 10,
                msgsize: 128,
                curmsgs: 3,
                inode: 777,
            }),
        }
    }

    #[test]
    fn mqueue_record_round_trips_at_its_offsets() {
        let r = sample();
        let mut b = [0x33u8; FD_SIZE];
        r.encode(&mut b);
        assert_eq!(FdRecord::decode(&b), Ok(r));
        assert_eq!(get_u32(&b, 4), FD_MQUEUE);
        assert_eq!(get_u32(&b, MODE), 0o640);
        assert_eq!(get_u64(&b, MSGSIZE), 128);
        assert_eq!(get_u64(&b, INODE), 777);
        assert!(b[MQUEUE_BODY_END..].iter().all(|&c| c == 0));
    }

    #[test]
    fn mqueue_record_refuses_values_no_kernel_gives() {
        let mut b = [0u8; FD_SIZE];
        sample().encode(&mut b);
        for (off, v, field) in [
            (MAXMSG, 0u64, "message queue maxmsg"),
            (MSGSIZE, 0, "message queue msgsize"),
            (CURMSGS, 11, "message queue curmsgs"),
        ] {
            let mut c = b;
            put_u64(&mut c, off, v);
            assert!(
                matches!(FdRecord::decode(&c), Err(ImageError::BadField { field: f, .. }) if f == field),
                "{field}"
            );
        }
        let mut c = b;
        put_u32(&mut c, FLAGS, 4);
        assert!(matches!(FdRecord::decode(&c), Err(ImageError::BadField { field: "message queue flags", .. })));
    }
}
