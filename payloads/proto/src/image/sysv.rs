//! The body of a record of kind `FD_SYSV`: one System V IPC object of the computation (a shared
//! memory segment, a semaphore set or a message queue), which is no fd: the record's fd field
//! is 0 and means nothing. Every process that counts the object as the computation's writes one
//! (libdmtcp `resources/sysv.rs` says which objects those are); the one process elected for the
//! object (`SYSV_CONTENTS`) holds its contents in its own memory, so they are in its image once.
//! `dmtcp_restart` makes each object of a group once, with its old id and key, in the group's
//! own IPC namespace (`src/restart/ipc.rs`); the elected process fills it again.
//!
//! Since 2.3 the same tag also carries a process's SEM_UNDO adjustment of one semaphore
//! (`SysvKind::SemUndo`, libdmtcp `resources/sem_undo.rs`): no object to make, a value the
//! process gives the kernel again after restart. Its fields are read differently: `id` is the
//! set, `size` the semaphore's number in it, `key` the adjustment (the kernel's semadj, what
//! it adds to the semaphore when the process exits), and `contents` is false.
use super::{ImageError, Record, FD_SIZE};
use crate::le::{get_i32, get_u32, get_u64, put_i32, put_u32, put_u64};

// Body field offsets within the 64-byte fd record.
pub const WHAT: usize = 8; // u32 SYSV_SHM | SYSV_SEM | SYSV_MSG, or'ed with SYSV_CONTENTS
pub const KEY: usize = 20; // i32 the key (0: IPC_PRIVATE)
pub const ID: usize = 24; // i32 the id the program holds
pub const MODE: usize = 28; // u32 permission bits and the kernel's SHM_DEST / SHM_LOCKED flags
pub const UID: usize = 32; // u32 owner
pub const GID: usize = 36; // u32
pub const SIZE: usize = 40; // u64 segment bytes, semaphores in the set, or the queue's byte limit
pub const COUNT: usize = 48; // u64 attaches of a segment, messages of a queue (informational)
                             // For SYSV_SEM_UNDO: KEY holds the adjustment (i32), SIZE the semaphore's number in set ID.
pub const SYSV_BODY_END: usize = 56;

pub const SYSV_SHM: u32 = 1;
pub const SYSV_SEM: u32 = 2;
pub const SYSV_MSG: u32 = 3;
/// A SEM_UNDO adjustment of this process (2.3).
pub const SYSV_SEM_UNDO: u32 = 4;
/// This process holds the object's contents (pages, values, messages) and puts them back.
pub const SYSV_CONTENTS: u32 = 0x100;

/// Permission bits, SHM_DEST (0o1000) and SHM_LOCKED (0o2000).
const MODE_BITS: u32 = 0o3777;
/// The kernel's own limits (SEMMSL is at most 32000; a segment fits an i64 for ftruncate).
const MAX_SEMS: u64 = 32000;
/// SEMAEM, the kernel's bound on an adjustment's magnitude (SEMVMX).
pub const MAX_SEM_ADJ: i32 = 32767;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SysvKind {
    Shm,
    Sem,
    Msg,
    /// A SEM_UNDO adjustment of this process (no object; see the module docs).
    SemUndo,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysvRecord {
    pub kind: SysvKind,
    /// This process holds the contents.
    pub contents: bool,
    pub key: i32,
    pub id: i32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub count: u64,
}

impl SysvRecord {
    /// The kind tag of this body.
    pub const KIND: u32 = super::FD_SYSV;

    pub(crate) fn encode_body(&self, b: &mut [u8; FD_SIZE]) {
        let what = match self.kind {
            SysvKind::Shm => SYSV_SHM,
            SysvKind::Sem => SYSV_SEM,
            SysvKind::Msg => SYSV_MSG,
            SysvKind::SemUndo => SYSV_SEM_UNDO,
        } | if self.contents { SYSV_CONTENTS } else { 0 };
        put_u32(b, WHAT, what);
        put_i32(b, KEY, self.key);
        put_i32(b, ID, self.id);
        put_u32(b, MODE, self.mode);
        put_u32(b, UID, self.uid);
        put_u32(b, GID, self.gid);
        put_u64(b, SIZE, self.size);
        put_u64(b, COUNT, self.count);
    }

    pub(crate) fn decode_body(b: &[u8]) -> Result<SysvRecord, ImageError> {
        let bad = |field, value| Err(ImageError::BadField { record: Record::Fd, field, value });
        let what = get_u32(b, WHAT);
        let kind = match what & !SYSV_CONTENTS {
            SYSV_SHM => SysvKind::Shm,
            SYSV_SEM => SysvKind::Sem,
            SYSV_MSG => SysvKind::Msg,
            SYSV_SEM_UNDO => SysvKind::SemUndo,
            _ => return bad("System V object kind", what as u64),
        };
        let r = SysvRecord {
            kind,
            contents: what & SYSV_CONTENTS != 0,
            key: get_i32(b, KEY),
            id: get_i32(b, ID),
            mode: get_u32(b, MODE),
            uid: get_u32(b, UID),
            gid: get_u32(b, GID),
            size: get_u64(b, SIZE),
            count: get_u64(b, COUNT),
        };
        // The kernel's ids are nonnegative ints (an index and a sequence number).
        if r.id < 0 {
            return bad("System V id", r.id as u32 as u64);
        }
        if r.mode & !MODE_BITS != 0 {
            return bad("System V mode", r.mode as u64);
        }
        let size_ok = match kind {
            SysvKind::Shm => r.size > 0 && r.size <= i64::MAX as u64,
            SysvKind::Sem => r.size > 0 && r.size <= MAX_SEMS,
            SysvKind::Msg => r.size <= i32::MAX as u64,
            SysvKind::SemUndo => r.size < MAX_SEMS,
        };
        if !size_ok {
            return bad("System V size", r.size);
        }
        if kind == SysvKind::SemUndo && (r.contents || r.key == 0 || r.key.abs() > MAX_SEM_ADJ) {
            return bad("SEM_UNDO adjustment", r.key as u32 as u64);
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{FdBody, FdRecord, FD_SYSV};
    use super::*;

    fn sample(kind: SysvKind, size: u64) -> FdRecord {
        FdRecord {
            fd: 0,
            fd_flags: 0,
            status: 0,
            body: FdBody::Sysv(SysvRecord {
                kind,
                contents: true,
                key: -138930720,
                id: 32769,
                mode: 0o1640,
                uid: 1000,
                gid: 100,
                size,
                count: 3,
            }),
        }
    }

    #[test]
    fn sysv_record_round_trips_at_its_offsets() {
        for (kind, what, size) in
            [(SysvKind::Shm, SYSV_SHM, 1 << 20), (SysvKind::Sem, SYSV_SEM, 4), (SysvKind::Msg, SYSV_MSG, 16384)]
        {
            let r = sample(kind, size);
            let mut b = [0x77u8; FD_SIZE];
            r.encode(&mut b);
            assert_eq!(FdRecord::decode(&b), Ok(r));
            assert_eq!(get_u32(&b, 4), FD_SYSV);
            assert_eq!(get_u32(&b, WHAT), what | SYSV_CONTENTS);
            assert_eq!(get_i32(&b, KEY), -138930720);
            assert_eq!(get_i32(&b, ID), 32769);
            assert_eq!(get_u32(&b, MODE), 0o1640);
            assert_eq!(get_u64(&b, SIZE), size);
            assert!(b[SYSV_BODY_END..].iter().all(|&c| c == 0));
        }
    }

    #[test]
    fn sysv_record_refuses_unknown_kinds_ids_modes_and_sizes() {
        let mut b = [0u8; FD_SIZE];
        sample(SysvKind::Sem, 4).encode(&mut b);
        let refuses = |edit: &dyn Fn(&mut [u8; FD_SIZE]), field: &str| {
            let mut c = b;
            edit(&mut c);
            match FdRecord::decode(&c) {
                Err(ImageError::BadField { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        };
        refuses(&|c| put_u32(c, WHAT, 5), "System V object kind");
        refuses(&|c| put_u32(c, WHAT, 0), "System V object kind");
        refuses(&|c| put_i32(c, ID, -1), "System V id");
        refuses(&|c| put_u32(c, MODE, 0o10000), "System V mode");
        refuses(&|c| put_u64(c, SIZE, 0), "System V size");
        refuses(&|c| put_u64(c, SIZE, 32001), "System V size");
        let mut shm = [0u8; FD_SIZE];
        sample(SysvKind::Shm, 0).encode(&mut shm);
        assert!(FdRecord::decode(&shm).is_err(), "an empty segment");
    }

    fn undo(adj: i32, num: u64) -> FdRecord {
        FdRecord {
            fd: 0,
            fd_flags: 0,
            status: 0,
            body: FdBody::Sysv(SysvRecord {
                kind: SysvKind::SemUndo,
                contents: false,
                key: adj,
                id: 98304,
                mode: 0,
                uid: 0,
                gid: 0,
                size: num,
                count: 0,
            }),
        }
    }

    #[test]
    fn sem_undo_record_round_trips_with_its_adjustment_and_number() {
        for (adj, num) in [(1, 0), (-3, 7), (MAX_SEM_ADJ, 31999), (-MAX_SEM_ADJ, 1)] {
            let r = undo(adj, num);
            let mut b = [0u8; FD_SIZE];
            r.encode(&mut b);
            assert_eq!(get_u32(&b, WHAT), SYSV_SEM_UNDO);
            assert_eq!(get_i32(&b, KEY), adj);
            assert_eq!(get_u64(&b, SIZE), num);
            assert_eq!(FdRecord::decode(&b), Ok(r));
        }
    }

    #[test]
    fn sem_undo_record_refuses_a_zero_or_too_large_adjustment_or_number() {
        for (adj, num, field) in [
            (0, 0, "SEM_UNDO adjustment"),
            (MAX_SEM_ADJ + 1, 0, "SEM_UNDO adjustment"),
            (-MAX_SEM_ADJ - 1, 0, "SEM_UNDO adjustment"),
            (1, 32000, "System V size"),
        ] {
            let mut b = [0u8; FD_SIZE];
            undo(adj, num).encode(&mut b);
            match FdRecord::decode(&b) {
                Err(ImageError::BadField { field: f, .. }) => assert_eq!(f, field, "{adj} {num}"),
                other => panic!("{adj} {num}: {other:?}"),
            }
        }
        let mut b = [0u8; FD_SIZE];
        undo(1, 0).encode(&mut b);
        put_u32(&mut b, WHAT, SYSV_SEM_UNDO | SYSV_CONTENTS);
        assert!(FdRecord::decode(&b).is_err(), "an adjustment has no contents");
    }
}
