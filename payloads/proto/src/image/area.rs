//! One memory area (mapping) of the process: 512 bytes in the area table.
use super::error::need;
use super::{ImageError, Record, Text, AREA_SIZE, PAGE_SIZE};
use crate::le::{get_u32, get_u64, put_u32, put_u64};

// Field offsets (the layout `AreaRecord` encodes; direct use outside this module is for the
// preload library's writer until it moves to `AreaRecord::encode`).
pub const START: usize = 0; // u64
pub const END: usize = 8; // u64
pub const OFFSET: usize = 16; // u64 file offset of a file mapping
pub const PROT: usize = 24; // u32 PROT_*
pub const FLAGS: usize = 28; // u32 AREA_* below
pub const DEV: usize = 32; // u64
pub const INODE: usize = 40; // u64
pub const DATA_PAGES: usize = 48; // u64 pages stored in the data section (for inspection)
pub const VM: usize = 56; // u32 AREA_VM_* below (2.1; zero in 2.0 images)
pub const NAME: usize = 64; // [448] /proc/self/maps name (a path for file mappings)
pub const NAME_LEN: usize = 448;

pub const AREA_SHARED: u32 = 1; // MAP_SHARED (contents live in the file; no data stored)
pub const AREA_FILE: u32 = 2; // backed by a file that existed at checkpoint
pub const AREA_STACK: u32 = 4; // the main stack (grows down)
pub const AREA_HEAP: u32 = 8; // [heap]
/// MAP_SHARED memory that only the kernel holds (2.1): anonymous shared memory inherited over
/// fork ("/dev/zero (deleted)"), a memfd, a deleted /dev/shm or other file. `dev` and `inode`
/// name the object: areas of several images with the same pair are one object, which
/// `dmtcp_restart` makes once (a memfd) and every restorer maps shared. Its data is in the image
/// of one process only (the one elected at checkpoint). Never with AREA_FILE.
pub const AREA_SHM: u32 = 16;
const AREA_FLAGS: u32 = AREA_SHARED | AREA_FILE | AREA_STACK | AREA_HEAP | AREA_SHM;

// The kernel's flags of the mapping (smaps "VmFlags"), 2.1. `AREA_VM_KNOWN` says that the writer
// read them; without it (2.0 images) the restorer keeps its 2.0 behaviour.
/// VM_NORESERVE ("nr"): no swap space reserved (MAP_NORESERVE).
pub const AREA_VM_NORESERVE: u32 = 1;
/// VM_GROWSDOWN ("gd"): a stack that grows down (MAP_GROWSDOWN).
pub const AREA_VM_GROWSDOWN: u32 = 2;
/// VM_LOCKED ("lo"): mlock'ed.
pub const AREA_VM_LOCKED: u32 = 4;
/// VM_LOCKONFAULT ("lf"): mlock2(MLOCK_ONFAULT).
pub const AREA_VM_LOCKONFAULT: u32 = 8;
/// VM_DONTCOPY ("dc"): MADV_DONTFORK.
pub const AREA_VM_DONTFORK: u32 = 16;
/// VM_WIPEONFORK ("wf"): MADV_WIPEONFORK.
pub const AREA_VM_WIPEONFORK: u32 = 32;
/// VM_DONTDUMP ("dd"): MADV_DONTDUMP.
pub const AREA_VM_DONTDUMP: u32 = 64;
/// VM_HUGEPAGE ("hg"): MADV_HUGEPAGE.
pub const AREA_VM_HUGEPAGE: u32 = 128;
/// VM_NOHUGEPAGE ("nh"): MADV_NOHUGEPAGE.
pub const AREA_VM_NOHUGEPAGE: u32 = 256;
/// VM_HUGETLB ("ht"): MAP_HUGETLB memory (2 MiB pages unless AREA_VM_HUGE_1G).
pub const AREA_VM_HUGETLB: u32 = 512;
/// With AREA_VM_HUGETLB: 1 GiB pages.
pub const AREA_VM_HUGE_1G: u32 = 1024;
/// VM_ACCOUNT ("ac"): the kernel counts it against the commit limit.
pub const AREA_VM_ACCOUNT: u32 = 2048;
/// VM_MAYWRITE ("mw"): may be made writable (a shared file mapping opened for writing).
pub const AREA_VM_MAYWRITE: u32 = 4096;
/// The writer read the VmFlags (every 2.1 image).
pub const AREA_VM_KNOWN: u32 = 1 << 31;
const AREA_VM_FLAGS: u32 = ((AREA_VM_MAYWRITE << 1) - 1) | AREA_VM_KNOWN;
/// PROT_READ | PROT_WRITE | PROT_EXEC.
const PROT_ALL: u32 = 7;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AreaRecord {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    /// PROT_READ (1) | PROT_WRITE (2) | PROT_EXEC (4).
    pub prot: u32,
    /// AREA_* bits.
    pub flags: u32,
    pub dev: u64,
    pub inode: u64,
    pub data_pages: u64,
    /// AREA_VM_* bits (2.1; 0 in 2.0 images).
    pub vm: u32,
    pub name: Text<NAME_LEN>,
}

impl AreaRecord {
    pub const EMPTY: AreaRecord = AreaRecord {
        start: 0,
        end: 0,
        offset: 0,
        prot: 0,
        flags: 0,
        dev: 0,
        inode: 0,
        data_pages: 0,
        vm: 0,
        name: Text::EMPTY,
    };

    pub fn len(&self) -> u64 {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
    pub fn is_shared(&self) -> bool {
        self.flags & AREA_SHARED != 0
    }
    /// Shared memory that only the kernel held (`AREA_SHM`): made anew as a memfd at restart.
    pub fn is_shm(&self) -> bool {
        self.flags & AREA_SHM != 0
    }
    /// Whether the writer read the kernel's flags of the mapping (2.1).
    pub fn vm_known(&self) -> bool {
        self.vm & AREA_VM_KNOWN != 0
    }
    pub fn has_vm(&self, bit: u32) -> bool {
        self.vm & bit != 0
    }

    pub fn encode(&self, b: &mut [u8; AREA_SIZE]) {
        b.fill(0);
        put_u64(b, START, self.start);
        put_u64(b, END, self.end);
        put_u64(b, OFFSET, self.offset);
        put_u32(b, PROT, self.prot);
        put_u32(b, FLAGS, self.flags);
        put_u64(b, DEV, self.dev);
        put_u64(b, INODE, self.inode);
        put_u64(b, DATA_PAGES, self.data_pages);
        put_u32(b, VM, self.vm);
        self.name.write(b, NAME);
    }

    /// Reads and checks an area record: a nonempty, page-aligned range, known protection and
    /// flag bits.
    pub fn decode(b: &[u8]) -> Result<AreaRecord, ImageError> {
        need(b, AREA_SIZE, Record::Area)?;
        let bad = |field, value| Err(ImageError::BadField { record: Record::Area, field, value });
        let a = AreaRecord {
            start: get_u64(b, START),
            end: get_u64(b, END),
            offset: get_u64(b, OFFSET),
            prot: get_u32(b, PROT),
            flags: get_u32(b, FLAGS),
            dev: get_u64(b, DEV),
            inode: get_u64(b, INODE),
            data_pages: get_u64(b, DATA_PAGES),
            vm: get_u32(b, VM),
            name: Text::read(b, NAME),
        };
        if !a.start.is_multiple_of(PAGE_SIZE) {
            return bad("start", a.start);
        }
        if a.end <= a.start || !a.end.is_multiple_of(PAGE_SIZE) {
            return bad("end", a.end);
        }
        // mmap takes page-aligned file offsets only (and /proc/self/maps shows no other).
        if !a.offset.is_multiple_of(PAGE_SIZE) {
            return bad("file offset", a.offset);
        }
        if a.prot & !PROT_ALL != 0 {
            return bad("protection", a.prot.into());
        }
        if a.flags & !AREA_FLAGS != 0 {
            return bad("flags", a.flags.into());
        }
        if a.is_shm() && (a.flags & AREA_SHARED == 0 || a.flags & AREA_FILE != 0) {
            return bad("flags", a.flags.into());
        }
        if a.vm & !AREA_VM_FLAGS != 0 {
            return bad("vm flags", a.vm.into());
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AreaRecord {
        AreaRecord {
            start: 0x7f00_0000_0000,
            end: 0x7f00_0002_1000,
            offset: 0x3000,
            prot: 5,
            flags: AREA_FILE | AREA_SHARED,
            dev: 0x803,
            inode: 123456,
            data_pages: 7,
            vm: 0,
            name: Text::new(b"/usr/lib/libc.so.6"),
        }
    }

    #[test]
    fn area_round_trips_at_the_version_2_offsets() {
        let a = sample();
        let mut b = [0xffu8; AREA_SIZE];
        a.encode(&mut b);
        assert_eq!(AreaRecord::decode(&b), Ok(a));
        assert_eq!(get_u64(&b, 0), 0x7f00_0000_0000);
        assert_eq!(get_u64(&b, 8), 0x7f00_0002_1000);
        assert_eq!(get_u32(&b, 24), 5);
        assert_eq!(get_u32(&b, 28), 3);
        assert_eq!(&b[64..83], b"/usr/lib/libc.so.6\0");
        assert!(b[56..64].iter().all(|&c| c == 0), "a 2.0 record has no vm flags and zero padding");
        assert_eq!(a.len(), 0x21000);
    }

    #[test]
    fn area_vm_flags_and_shm_round_trip_at_offset_56() {
        let a = AreaRecord {
            flags: AREA_SHARED | AREA_SHM,
            vm: AREA_VM_KNOWN | AREA_VM_NORESERVE | AREA_VM_LOCKED | AREA_VM_MAYWRITE,
            name: Text::new(b"/dev/zero (deleted)"),
            ..sample()
        };
        let mut b = [0u8; AREA_SIZE];
        a.encode(&mut b);
        assert_eq!(get_u32(&b, 56), 0x8000_1005);
        assert!(b[60..64].iter().all(|&c| c == 0), "padding is zero");
        let d = AreaRecord::decode(&b).unwrap();
        assert_eq!(d, a);
        assert!(d.is_shm() && d.is_shared() && d.vm_known() && d.has_vm(AREA_VM_NORESERVE));
        assert!(!d.has_vm(AREA_VM_GROWSDOWN));
    }

    #[test]
    fn area_refuses_bad_values() {
        let mut b = [0u8; AREA_SIZE];
        let check = |a: AreaRecord, field: &str| {
            let mut b = [0u8; AREA_SIZE];
            a.encode(&mut b);
            match AreaRecord::decode(&b) {
                Err(ImageError::BadField { record: Record::Area, field: f, .. }) => assert_eq!(f, field),
                r => panic!("{field}: {r:?}"),
            }
        };
        check(AreaRecord { start: 0x1001, ..sample() }, "start");
        check(AreaRecord { end: 0x7f00_0002_1800, ..sample() }, "end");
        check(AreaRecord { end: 0x7f00_0000_0000, ..sample() }, "end");
        check(AreaRecord { end: 0x1000, ..sample() }, "end");
        check(AreaRecord { offset: 0x3004, ..sample() }, "file offset");
        check(AreaRecord { prot: 8, ..sample() }, "protection");
        check(AreaRecord { flags: 32, ..sample() }, "flags");
        check(AreaRecord { flags: AREA_SHM, ..sample() }, "flags");
        check(AreaRecord { flags: AREA_SHM | AREA_SHARED | AREA_FILE, ..sample() }, "flags");
        check(AreaRecord { vm: 1 << 20, ..sample() }, "vm flags");
        sample().encode(&mut b);
        assert_eq!(AreaRecord::decode(&b[..511]), Err(ImageError::Short { record: Record::Area, len: 511 }));
    }
}
