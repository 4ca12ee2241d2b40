//! The body of an fd record of kind `FD_MEMFD`: a memfd (memfd_create) the process held open,
//! possibly passed to its children over fork. The object is named by its (device, inode) at
//! checkpoint, as the shared memory areas (`AREA_SHM`) of the same object are, so that
//! `dmtcp_restart` makes one memfd for the object and puts it both at this fd and under every
//! mapping of it. Its pages come back through a mapping the process adds while it checkpoints
//! (libdmtcp `resources/memfd.rs`): they are stored once, as an `AREA_SHM` area.
use super::{ImageError, Record, FD_SIZE};
use crate::le::{get_u32, get_u64, put_u32, put_u64};

// Body field offsets within the 64-byte fd record (the common part is in `fd`).
pub const SEALS: usize = 8; // u32 F_GET_SEALS (informational)
pub const DEV: usize = 24; // u64 (major << 32 | minor) of the object, as /proc/self/maps shows it
pub const INODE: usize = 32; // u64
pub const SIZE: usize = 40; // u64 bytes
pub const POS: usize = 48; // u64 the file position of this fd
/// The memfd's name is not here: a memfd's mapping shows it ("/memfd:NAME (deleted)"), and the
/// restart names the new one after it.
pub const MEMFD_BODY_END: usize = 56;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemfdRecord {
    pub seals: u32,
    pub dev: u64,
    pub inode: u64,
    pub size: u64,
    pub pos: u64,
}

impl MemfdRecord {
    /// The kind tag of this body.
    pub const KIND: u32 = super::FD_MEMFD;

    pub(crate) fn encode_body(&self, b: &mut [u8; FD_SIZE]) {
        put_u32(b, SEALS, self.seals);
        put_u64(b, DEV, self.dev);
        put_u64(b, INODE, self.inode);
        put_u64(b, SIZE, self.size);
        put_u64(b, POS, self.pos);
    }

    pub(crate) fn decode_body(b: &[u8]) -> Result<MemfdRecord, ImageError> {
        let r = MemfdRecord {
            seals: get_u32(b, SEALS),
            dev: get_u64(b, DEV),
            inode: get_u64(b, INODE),
            size: get_u64(b, SIZE),
            pos: get_u64(b, POS),
        };
        if r.inode == 0 {
            return Err(ImageError::BadField { record: Record::Fd, field: "memfd inode", value: 0 });
        }
        if r.size > i64::MAX as u64 {
            return Err(ImageError::BadField { record: Record::Fd, field: "memfd size", value: r.size });
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{FdBody, FdRecord, FD_MEMFD};
    use super::*;
    use crate::le::get_i32;

    fn sample() -> FdRecord {
        FdRecord {
            fd: 9,
            fd_flags: 0,
            status: 2,
            body: FdBody::Memfd(MemfdRecord { seals: 1, dev: 1, inode: 4242, size: 3 << 20, pos: 17 }),
        }
    }

    #[test]
    fn memfd_record_round_trips_at_its_offsets() {
        let r = sample();
        let mut b = [0x77u8; FD_SIZE];
        r.encode(&mut b);
        assert_eq!(FdRecord::decode(&b), Ok(r));
        assert_eq!(get_i32(&b, 0), 9);
        assert_eq!(get_u32(&b, 4), FD_MEMFD);
        assert_eq!(FD_MEMFD, 13);
        assert_eq!(get_u32(&b, 8), 1);
        assert_eq!((get_u64(&b, 24), get_u64(&b, 32), get_u64(&b, 40), get_u64(&b, 48)), (1, 4242, 3 << 20, 17));
        assert!(b[MEMFD_BODY_END..].iter().all(|&c| c == 0) && b[20..24].iter().all(|&c| c == 0));
        assert_eq!(r.memfd().map(|m| m.inode), Some(4242));
        assert_eq!(r.pipe(), None);
    }

    #[test]
    fn memfd_record_refuses_no_inode_and_a_huge_size() {
        let mut b = [0u8; FD_SIZE];
        sample().encode(&mut b);
        let mut z = b;
        put_u64(&mut z, INODE, 0);
        assert!(matches!(FdRecord::decode(&z), Err(ImageError::BadField { field: "memfd inode", .. })));
        let mut s = b;
        put_u64(&mut s, SIZE, u64::MAX);
        assert!(matches!(FdRecord::decode(&s), Err(ImageError::BadField { field: "memfd size", .. })));
    }
}
