//! One thread of the process: 256 bytes in the thread table. Registers are the callee-saved set
//! plus sp and ip of the point where the thread stopped inside the preload library (x86_64: rbx
//! rbp r12 r13 r14 r15 rsp rip; i686: ebx esi edi ebp esp eip, zero-extended), enough to resume
//! it there. `regs` in memory is the array the restorer's `resume` loads.
use super::error::need;
use super::{ImageError, Record, THREAD_SIZE};
use crate::le::{get_i32, get_u32, get_u64, put_i32, put_u32, put_u64};

// Field offsets (the layout `ThreadRecord` encodes; direct use outside this module is for the
// preload library's writer until it moves to `ThreadRecord::encode`).
pub const TID: usize = 0; // i32
pub const FLAGS: usize = 4; // u32 (THREAD_MAIN, THREAD_CKPT)
pub const REGS: usize = 8; // u64 x 16
pub const TLS: usize = 136; // x86_64: fs base (u64); i686: struct user_desc (16 bytes)
pub const GS: usize = 152; // u64 x86_64 gs base; i686 %gs selector
pub const COMM: usize = 160; // [16]
pub const NUM_REGS: usize = 16;

pub const THREAD_MAIN: u32 = 1;
pub const THREAD_CKPT: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct ThreadRecord {
    pub regs: [u64; NUM_REGS],
    pub tid: i32,
    /// THREAD_* bits.
    pub flags: u32,
    /// x86_64: fs base in the first 8 bytes; i686: the thread's struct user_desc.
    pub tls: [u8; 16],
    pub gs: u64,
    pub comm: [u8; 16],
}

impl ThreadRecord {
    pub const EMPTY: ThreadRecord =
        ThreadRecord { regs: [0; NUM_REGS], tid: 0, flags: 0, tls: [0; 16], gs: 0, comm: [0; 16] };

    pub fn is_main(&self) -> bool {
        self.flags & THREAD_MAIN != 0
    }
    /// The fs base (x86_64).
    pub fn fs_base(&self) -> u64 {
        get_u64(&self.tls, 0)
    }
    /// Word `i` of the user_desc (i686).
    pub fn tls_word(&self, i: usize) -> u32 {
        get_u32(&self.tls, 4 * i)
    }

    pub fn encode(&self, b: &mut [u8; THREAD_SIZE]) {
        b.fill(0);
        put_i32(b, TID, self.tid);
        put_u32(b, FLAGS, self.flags);
        for (i, r) in self.regs.iter().enumerate() {
            put_u64(b, REGS + 8 * i, *r);
        }
        b[TLS..TLS + 16].copy_from_slice(&self.tls);
        put_u64(b, GS, self.gs);
        b[COMM..COMM + 16].copy_from_slice(&self.comm);
    }

    /// Reads and checks a thread record: known flag bits.
    pub fn decode(b: &[u8]) -> Result<ThreadRecord, ImageError> {
        need(b, THREAD_SIZE, Record::Thread)?;
        let mut t = ThreadRecord::EMPTY;
        t.tid = get_i32(b, TID);
        t.flags = get_u32(b, FLAGS);
        for (i, r) in t.regs.iter_mut().enumerate() {
            *r = get_u64(b, REGS + 8 * i);
        }
        t.tls.copy_from_slice(&b[TLS..TLS + 16]);
        t.gs = get_u64(b, GS);
        t.comm.copy_from_slice(&b[COMM..COMM + 16]);
        if t.flags & !(THREAD_MAIN | THREAD_CKPT) != 0 {
            return Err(ImageError::BadField { record: Record::Thread, field: "flags", value: t.flags.into() });
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_round_trips_at_the_version_2_offsets() {
        let mut t = ThreadRecord::EMPTY;
        t.tid = 4321;
        t.flags = THREAD_MAIN;
        for (i, r) in t.regs.iter_mut().enumerate() {
            *r = 0x1000 * i as u64 + 1;
        }
        t.tls = core::array::from_fn(|i| i as u8 + 1);
        t.gs = 0x33;
        t.comm[..5].copy_from_slice(b"work\0");
        let mut b = [0xaau8; THREAD_SIZE];
        t.encode(&mut b);
        assert_eq!(ThreadRecord::decode(&b), Ok(t));
        assert_eq!(get_i32(&b, 0), 4321);
        assert_eq!(get_u64(&b, 8 + 8 * 15), 0xf001);
        assert_eq!(b[136], 1);
        assert_eq!(get_u64(&b, 152), 0x33);
        assert_eq!(&b[160..164], b"work");
        assert!(b[176..].iter().all(|&c| c == 0));
        assert!(t.is_main());
        assert_eq!(t.fs_base(), u64::from_le_bytes([1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(t.tls_word(3), u32::from_le_bytes([13, 14, 15, 16]));
    }

    #[test]
    fn thread_refuses_unknown_flags_and_short_input() {
        let mut t = ThreadRecord::EMPTY;
        t.flags = 4;
        let mut b = [0u8; THREAD_SIZE];
        t.encode(&mut b);
        assert_eq!(
            ThreadRecord::decode(&b),
            Err(ImageError::BadField { record: Record::Thread, field: "flags", value: 4 })
        );
        assert_eq!(ThreadRecord::decode(&b[..10]), Err(ImageError::Short { record: Record::Thread, len: 10 }));
    }
}
