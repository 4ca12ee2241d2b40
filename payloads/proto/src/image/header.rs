//! The image header: 4096 bytes at offset 0, with its own checksum over its first 4088 bytes.
use super::chain::Chain;
use super::error::need;
use super::{checksum, FormatVersion, ImageError, Record, Table, Text, CHECKSUM_SEED, HEADER_SIZE, IMAGE_MAGIC};
use super::{AREA_SIZE, FD_SIZE, MAX_AREAS, MAX_FDS, MAX_THREADS, PAGE_SIZE, THREAD_SIZE};
use crate::le::{get_i32, get_u32, get_u64, put_i32, put_u32, put_u64};

/// Header field offsets (the layout `Header` encodes; direct use outside this module is for the
/// preload library's writer until it moves to `Header::encode`).
pub mod hdr {
    pub const MAGIC: usize = 0; // [8]
    pub const VERSION: usize = 8; // u32 FormatVersion: major | minor << 16
    pub const ARCH: usize = 12; // u32
    pub const HEADER_SIZE: usize = 16; // u32
    pub const NUM_AREAS: usize = 20; // u32
    pub const NUM_THREADS: usize = 24; // u32
    pub const FLAGS: usize = 28; // u32
    pub const PID: usize = 32; // i32
    pub const PPID: usize = 36; // i32
    pub const PGID: usize = 40; // i32
    pub const SID: usize = 44; // i32
    pub const COMP_ID: usize = 48; // u64
    pub const GENERATION: usize = 56; // u32
    pub const NUM_PEERS: usize = 60; // u32
    pub const START_BRK: usize = 64; // u64
    pub const BRK: usize = 72; // u64
    pub const VDSO_START: usize = 80; // u64
    pub const VDSO_END: usize = 88; // u64
    pub const VVAR_START: usize = 96; // u64
    pub const VVAR_END: usize = 104; // u64
    pub const VCLOCK_START: usize = 112; // u64 ([vvar_vclock], newer kernels)
    pub const VCLOCK_END: usize = 120; // u64
    pub const CKPT_TIME: usize = 128; // u64, unix seconds
    pub const UID: usize = 136; // u32
    pub const VPID: usize = 140; // i32 coordinator's virtual pid of the process
    /// u64 x 10, the kernel's mm fields for PR_SET_MM_MAP: start_code end_code start_data
    /// end_data start_stack arg_start arg_end env_start env_end (the tenth slot is reserved).
    pub const MM_START_CODE: usize = 144;
    pub const AUXV_LEN: usize = 224; // u32 number of bytes of auxv
    pub const AUXV: usize = 232; // [512] saved auxv (arch word size)
    pub const PROGNAME: usize = 744; // [256]
    pub const EXE: usize = 1000; // [1024]
    pub const CWD: usize = 2024; // [1024]
    pub const HOSTNAME: usize = 3048; // [64]
    pub const PIDNS: usize = 3112; // u64 inode of the pid namespace the process ran in
    pub const PARENT_PID: usize = 3120; // i32 pid of the parent inside that namespace
    pub const IS_ROOT: usize = 3124; // u32 1 for the process dmtcp_launch started
    pub const COMPRESSED: usize = 3128; // u32 1 if the writer asked for compression
    pub const NUM_FDS: usize = 3132; // u32 records in the fd table (version 2)
                                     // [3136, 4072) reserved, zero, but for the chain field of
                                     // 2.3 (`chain`: [3712, 3996)).
    /// u64 CLOCK_MONOTONIC at checkpoint, in ns, as the process read it (2.1; 0 = not recorded,
    /// as in every 2.0 image). The restart's time namespace continues from it.
    pub const CLOCK_MONOTONIC: usize = 4072;
    /// u64 CLOCK_BOOTTIME at checkpoint, in ns, as the process read it (2.1; 0 = not recorded).
    pub const CLOCK_BOOTTIME: usize = 4080;
    pub const CHECKSUM: usize = 4088; // u64 of bytes [0, 4088)
    pub const PROGNAME_LEN: usize = 256;
    pub const PATH_LEN: usize = 1024;
    pub const HOSTNAME_LEN: usize = 64;
    pub const AUXV_MAX: usize = 512;
    pub const MM_SLOTS: usize = 10;
}

/// The architecture an image was taken on (the restorer must be the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Arch {
    X86_64 = 1,
    I686 = 2,
}

impl Arch {
    /// The architecture of this build.
    pub const NATIVE: Arch = if cfg!(target_pointer_width = "64") { Arch::X86_64 } else { Arch::I686 };

    /// Bytes of a machine word.
    pub const fn word(self) -> usize {
        match self {
            Arch::X86_64 => 8,
            Arch::I686 => 4,
        }
    }

    /// The end of user address space: 47 bits on x86_64 (4-level paging), 4 GiB for a 32-bit
    /// process on a 64-bit kernel.
    pub const fn user_limit(self) -> u64 {
        match self {
            Arch::X86_64 => 1 << 47,
            Arch::I686 => 1 << 32,
        }
    }

    pub fn from_u32(v: u32) -> Option<Arch> {
        match v {
            1 => Some(Arch::X86_64),
            2 => Some(Arch::I686),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::I686 => "i686",
        }
    }
}

/// A range of addresses `[start, end)`; `start == 0` means absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub start: u64,
    pub end: u64,
}

impl Span {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// The header, typed. `encode` writes the magic, `FormatVersion::CURRENT`, the header size
/// and the checksum itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// As read (decode); `encode` always writes `FormatVersion::CURRENT`.
    pub version: FormatVersion,
    pub arch: Arch,
    pub num_areas: u32,
    pub num_threads: u32,
    pub num_fds: u32,
    pub flags: u32,
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    pub comp_id: u64,
    pub generation: u32,
    pub num_peers: u32,
    pub start_brk: u64,
    pub brk: u64,
    pub vdso: Span,
    pub vvar: Span,
    pub vclock: Span,
    pub ckpt_time: u64,
    pub uid: u32,
    pub vpid: i32,
    /// start_code end_code start_data end_data start_stack arg_start arg_end env_start env_end,
    /// and a reserved slot.
    pub mm: [u64; hdr::MM_SLOTS],
    /// The first `auxv_len` bytes of `auxv` are the saved auxiliary vector.
    pub auxv_len: u32,
    pub auxv: [u8; hdr::AUXV_MAX],
    pub progname: Text<{ hdr::PROGNAME_LEN }>,
    pub exe: Text<{ hdr::PATH_LEN }>,
    pub cwd: Text<{ hdr::PATH_LEN }>,
    pub hostname: Text<{ hdr::HOSTNAME_LEN }>,
    pub pidns: u64,
    pub parent_pid: i32,
    pub is_root: bool,
    pub compressed: bool,
    /// CLOCK_MONOTONIC and CLOCK_BOOTTIME at checkpoint (ns, as the process saw them), or
    /// None when the image does not have them (2.0). Both or neither.
    pub clocks: Option<Clocks>,
    /// Where the image stands in a chain of incremental images (2.3; `Chain::NONE`: a full
    /// image of its own, as every older image).
    pub chain: Chain,
    /// As read (decode); `encode` computes it.
    pub checksum: u64,
}

impl Header {
    /// An empty header of this version for `arch`, one thread, no areas.
    pub const fn new(arch: Arch) -> Header {
        Header {
            version: FormatVersion::CURRENT,
            arch,
            num_areas: 0,
            num_threads: 1,
            num_fds: 0,
            flags: 0,
            pid: 0,
            ppid: 0,
            pgid: 0,
            sid: 0,
            comp_id: 0,
            generation: 0,
            num_peers: 0,
            start_brk: 0,
            brk: 0,
            vdso: Span { start: 0, end: 0 },
            vvar: Span { start: 0, end: 0 },
            vclock: Span { start: 0, end: 0 },
            ckpt_time: 0,
            uid: 0,
            vpid: 0,
            mm: [0; hdr::MM_SLOTS],
            auxv_len: 0,
            auxv: [0; hdr::AUXV_MAX],
            progname: Text::EMPTY,
            exe: Text::EMPTY,
            cwd: Text::EMPTY,
            hostname: Text::EMPTY,
            pidns: 0,
            parent_pid: 0,
            is_root: false,
            compressed: false,
            clocks: None,
            chain: Chain::NONE,
            checksum: 0,
        }
    }

    /// The saved auxiliary vector.
    pub fn auxv(&self) -> &[u8] {
        &self.auxv[..core::cmp::min(self.auxv_len as usize, hdr::AUXV_MAX)]
    }

    /// Bytes of the tables after the header (areas, threads, fds).
    pub fn tables_len(&self) -> usize {
        self.num_areas as usize * AREA_SIZE + self.num_threads as usize * THREAD_SIZE + self.num_fds as usize * FD_SIZE
    }

    /// Writes the whole header, sealed, into `b` (every byte: reserved ones become zero).
    pub fn encode(&self, b: &mut [u8; HEADER_SIZE]) {
        b.fill(0);
        b[..8].copy_from_slice(&IMAGE_MAGIC);
        put_u32(b, hdr::VERSION, FormatVersion::CURRENT.to_u32());
        put_u32(b, hdr::ARCH, self.arch as u32);
        put_u32(b, hdr::HEADER_SIZE, HEADER_SIZE as u32);
        put_u32(b, hdr::NUM_AREAS, self.num_areas);
        put_u32(b, hdr::NUM_THREADS, self.num_threads);
        put_u32(b, hdr::FLAGS, self.flags);
        put_i32(b, hdr::PID, self.pid);
        put_i32(b, hdr::PPID, self.ppid);
        put_i32(b, hdr::PGID, self.pgid);
        put_i32(b, hdr::SID, self.sid);
        put_u64(b, hdr::COMP_ID, self.comp_id);
        put_u32(b, hdr::GENERATION, self.generation);
        put_u32(b, hdr::NUM_PEERS, self.num_peers);
        put_u64(b, hdr::START_BRK, self.start_brk);
        put_u64(b, hdr::BRK, self.brk);
        for (span, s, e) in [
            (self.vdso, hdr::VDSO_START, hdr::VDSO_END),
            (self.vvar, hdr::VVAR_START, hdr::VVAR_END),
            (self.vclock, hdr::VCLOCK_START, hdr::VCLOCK_END),
        ] {
            put_u64(b, s, span.start);
            put_u64(b, e, span.end);
        }
        put_u64(b, hdr::CKPT_TIME, self.ckpt_time);
        put_u32(b, hdr::UID, self.uid);
        put_i32(b, hdr::VPID, self.vpid);
        for (i, v) in self.mm.iter().enumerate() {
            put_u64(b, hdr::MM_START_CODE + 8 * i, *v);
        }
        put_u32(b, hdr::AUXV_LEN, self.auxv_len);
        b[hdr::AUXV..hdr::AUXV + hdr::AUXV_MAX].copy_from_slice(&self.auxv);
        self.progname.write(b, hdr::PROGNAME);
        self.exe.write(b, hdr::EXE);
        self.cwd.write(b, hdr::CWD);
        self.hostname.write(b, hdr::HOSTNAME);
        put_u64(b, hdr::PIDNS, self.pidns);
        put_i32(b, hdr::PARENT_PID, self.parent_pid);
        put_u32(b, hdr::IS_ROOT, u32::from(self.is_root));
        put_u32(b, hdr::COMPRESSED, u32::from(self.compressed));
        put_u32(b, hdr::NUM_FDS, self.num_fds);
        if let Some(c) = self.clocks {
            put_u64(b, hdr::CLOCK_MONOTONIC, c.monotonic_ns);
            put_u64(b, hdr::CLOCK_BOOTTIME, c.boottime_ns);
        }
        self.chain.encode(b);
        seal(b);
    }

    /// Reads and checks a header: magic, version (see the version rule), checksum, header
    /// size, architecture, table counts against their caps (and at least one thread), the
    /// auxv length (whole pairs), no unknown flags, at least one peer, the vdso/vvar/vclock
    /// spans and the heap bounds (what the restorer acts on), and the boolean fields.
    pub fn decode(b: &[u8]) -> Result<Header, ImageError> {
        if b.len() < IMAGE_MAGIC.len() || b[..8] != IMAGE_MAGIC {
            return Err(ImageError::NotAnImage);
        }
        need(b, HEADER_SIZE, Record::Header)?;
        let version = FormatVersion::from_u32(get_u32(b, hdr::VERSION));
        FormatVersion::check(version)?;
        let sum = get_u64(b, hdr::CHECKSUM);
        if sum != checksum(CHECKSUM_SEED, &b[..hdr::CHECKSUM]) {
            return Err(ImageError::HeaderChecksum);
        }
        let size = get_u32(b, hdr::HEADER_SIZE);
        if size as usize != HEADER_SIZE {
            return Err(ImageError::HeaderSize(size));
        }
        let raw_arch = get_u32(b, hdr::ARCH);
        let arch = Arch::from_u32(raw_arch).ok_or(ImageError::Arch(raw_arch))?;
        let count = |off: usize, table: Table, max: u32| {
            let count = get_u32(b, off);
            if count > max {
                return Err(ImageError::TooMany { table, count });
            }
            Ok(count)
        };
        let num_areas = count(hdr::NUM_AREAS, Table::Areas, MAX_AREAS)?;
        let num_threads = count(hdr::NUM_THREADS, Table::Threads, MAX_THREADS)?;
        let num_fds = count(hdr::NUM_FDS, Table::Fds, MAX_FDS)?;
        if num_threads == 0 {
            return Err(ImageError::NoThreads);
        }
        let auxv_len = get_u32(b, hdr::AUXV_LEN);
        if auxv_len as usize > hdr::AUXV_MAX {
            return Err(ImageError::BadField { record: Record::Header, field: "auxv length", value: auxv_len.into() });
        }
        let flag = |off: usize, field: &'static str| match get_u32(b, off) {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(ImageError::BadField { record: Record::Header, field, value: v.into() }),
        };
        let bad = |field: &'static str, value: u64| ImageError::BadField { record: Record::Header, field, value };
        // Header flags: none defined yet; a set bit is a newer writer's or corruption.
        let flags = get_u32(b, hdr::FLAGS);
        if flags != 0 {
            return Err(bad("flags", flags.into()));
        }
        let num_peers = get_u32(b, hdr::NUM_PEERS);
        if num_peers == 0 {
            return Err(bad("number of peers", 0));
        }
        // The auxiliary vector is whole (type, value) pairs of the architecture's word.
        if !(auxv_len as usize).is_multiple_of(2 * arch.word()) {
            return Err(bad("auxv length", auxv_len.into()));
        }
        // What the restorer hands to mremap and brk: spans absent (0..0) or page-aligned,
        // nonempty and inside the architecture's user space (above the kernel's default
        // vm.mmap_min_addr); the heap's start not above its end.
        let limit = arch.user_limit();
        let span = |field: &'static str, s: usize, e: usize| {
            let sp = Span { start: get_u64(b, s), end: get_u64(b, e) };
            let absent = sp.start == 0 && sp.end == 0;
            let sound = sp.start >= LOWEST_MAP
                && sp.start < sp.end
                && sp.end <= limit
                && (sp.start | sp.end).is_multiple_of(PAGE_SIZE);
            if absent || sound {
                Ok(sp)
            } else {
                Err(bad(field, sp.start))
            }
        };
        let (start_brk, brk) = (get_u64(b, hdr::START_BRK), get_u64(b, hdr::BRK));
        if start_brk > brk || brk > limit {
            return Err(bad("heap start", start_brk));
        }
        let (vdso, vvar, vclock) = (
            span("vdso", hdr::VDSO_START, hdr::VDSO_END)?,
            span("vvar", hdr::VVAR_START, hdr::VVAR_END)?,
            span("vclock", hdr::VCLOCK_START, hdr::VCLOCK_END)?,
        );
        let mut mm = [0u64; hdr::MM_SLOTS];
        for (i, v) in mm.iter_mut().enumerate() {
            *v = get_u64(b, hdr::MM_START_CODE + 8 * i);
        }
        let mut auxv = [0u8; hdr::AUXV_MAX];
        auxv.copy_from_slice(&b[hdr::AUXV..hdr::AUXV + hdr::AUXV_MAX]);
        let clocks = Clocks::decode(get_u64(b, hdr::CLOCK_MONOTONIC), get_u64(b, hdr::CLOCK_BOOTTIME))?;
        Ok(Header {
            version,
            arch,
            num_areas,
            num_threads,
            num_fds,
            flags,
            pid: get_i32(b, hdr::PID),
            ppid: get_i32(b, hdr::PPID),
            pgid: get_i32(b, hdr::PGID),
            sid: get_i32(b, hdr::SID),
            comp_id: get_u64(b, hdr::COMP_ID),
            generation: get_u32(b, hdr::GENERATION),
            num_peers,
            start_brk,
            brk,
            vdso,
            vvar,
            vclock,
            ckpt_time: get_u64(b, hdr::CKPT_TIME),
            uid: get_u32(b, hdr::UID),
            vpid: get_i32(b, hdr::VPID),
            mm,
            auxv_len,
            auxv,
            progname: Text::read(b, hdr::PROGNAME),
            exe: Text::read(b, hdr::EXE),
            cwd: Text::read(b, hdr::CWD),
            hostname: Text::read(b, hdr::HOSTNAME),
            pidns: get_u64(b, hdr::PIDNS),
            parent_pid: get_i32(b, hdr::PARENT_PID),
            is_root: flag(hdr::IS_ROOT, "is_root")?,
            compressed: flag(hdr::COMPRESSED, "compressed")?,
            clocks,
            chain: Chain::decode(b)?,
            checksum: sum,
        })
    }
}

/// The lowest address a mapping may have (Linux's default vm.mmap_min_addr).
const LOWEST_MAP: u64 = 0x10000;
/// The clocks that a time namespace keeps across a restart, as the process read them at the
/// checkpoint, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clocks {
    pub monotonic_ns: u64,
    pub boottime_ns: u64,
}

impl Clocks {
    /// The kernel keeps clock values below KTIME_MAX (i64 nanoseconds) and a time namespace's
    /// clocks below half of it; a larger value is damage.
    pub const MAX_NS: u64 = i64::MAX as u64 / 2;

    /// From the header's two fields: both zero = not recorded (a 2.0 image); one of them zero,
    /// or either beyond `MAX_NS`, is a bad header. CLOCK_BOOTTIME can read below
    /// CLOCK_MONOTONIC inside a time namespace with such offsets, so that is not checked.
    pub fn decode(monotonic_ns: u64, boottime_ns: u64) -> Result<Option<Clocks>, ImageError> {
        let bad = |field, value: u64| ImageError::BadField { record: Record::Header, field, value };
        match (monotonic_ns, boottime_ns) {
            (0, 0) => Ok(None),
            (0, b) => Err(bad("monotonic clock (boottime recorded without it)", b)),
            (m, 0) => Err(bad("boottime clock (monotonic recorded without it)", m)),
            (m, _) if m > Clocks::MAX_NS => Err(bad("monotonic clock", m)),
            (_, b) if b > Clocks::MAX_NS => Err(bad("boottime clock", b)),
            (m, b) => Ok(Some(Clocks { monotonic_ns: m, boottime_ns: b })),
        }
    }
}

/// Writes the checksum of a header's first 4088 bytes into its last 8.
pub(crate) fn seal(h: &mut [u8]) {
    let c = checksum(CHECKSUM_SEED, &h[..hdr::CHECKSUM]);
    put_u64(h, hdr::CHECKSUM, c);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        let mut h = Header::new(Arch::I686);
        h.num_areas = 3;
        h.num_threads = 2;
        h.num_fds = 4;
        h.pid = 1234;
        h.ppid = 1;
        h.pgid = 1234;
        h.sid = 99;
        h.comp_id = 0x1122_3344_5566_7788;
        h.generation = 5;
        h.num_peers = 3;
        h.start_brk = 0x5000_0000;
        h.brk = 0x5002_1000;
        h.vdso = Span { start: 0xf7f0_0000, end: 0xf7f0_2000 };
        h.vvar = Span { start: 0xf7ef_c000, end: 0xf7f0_0000 };
        h.ckpt_time = 1_700_000_000;
        h.uid = 1000;
        h.vpid = 40001;
        for (i, v) in h.mm.iter_mut().enumerate() {
            *v = 0x0804_8000 + i as u64 * 0x100;
        }
        h.auxv_len = 16;
        h.auxv[..5].copy_from_slice(&[1, 2, 3, 4, 5]);
        h.progname.set(b"sleep");
        h.exe.set(b"/usr/bin/sleep");
        h.cwd.set(b"/home/tester");
        h.hostname.set(b"box");
        h.pidns = 4026531836;
        h.parent_pid = 1;
        h.is_root = true;
        h.compressed = true;
        h.clocks = Some(Clocks { monotonic_ns: 123_456_789_012, boottime_ns: 223_456_789_012 });
        h
    }

    fn encoded(h: &Header) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        h.encode(&mut b);
        b
    }

    #[test]
    fn header_round_trips() {
        let h = sample();
        let b = encoded(&h);
        let d = Header::decode(&b).unwrap();
        assert_eq!(Header { checksum: d.checksum, ..h }, d);
        assert_eq!(d.checksum, checksum(CHECKSUM_SEED, &b[..hdr::CHECKSUM]));
        assert_eq!(d.auxv(), &[1, 2, 3, 4, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(d.exe.as_bytes(), b"/usr/bin/sleep");
        assert_eq!(d.tables_len(), 3 * AREA_SIZE + 2 * THREAD_SIZE + 4 * FD_SIZE);
    }

    /// The typed encoder writes the fields where the version-2 layout has them (the preload
    /// library still writes them by offset, and images on disk have them there).
    #[test]
    fn header_fields_sit_at_the_version_2_offsets() {
        let b = encoded(&sample());
        assert_eq!(&b[..8], b"DMTCPIMG");
        assert_eq!(get_u32(&b, 8), 2 | 5 << 16, "version 2.5");
        assert_eq!(get_u32(&b, 12), 2);
        assert_eq!(get_u32(&b, 16), 4096);
        assert_eq!(get_u32(&b, 20), 3);
        assert_eq!(get_u32(&b, 24), 2);
        assert_eq!(get_i32(&b, 32), 1234);
        assert_eq!(get_u64(&b, 48), 0x1122_3344_5566_7788);
        assert_eq!(get_u64(&b, 80), 0xf7f0_0000);
        assert_eq!(get_i32(&b, 140), 40001);
        assert_eq!(get_u64(&b, 144 + 8 * 9), 0x0804_8900);
        assert_eq!(get_u32(&b, 224), 16);
        assert_eq!(b[232 + 4], 5);
        assert_eq!(&b[744..750], b"sleep\0");
        assert_eq!(&b[1000..1015], b"/usr/bin/sleep\0");
        assert_eq!(&b[2024..2037], b"/home/tester\0");
        assert_eq!(&b[3048..3052], b"box\0");
        assert_eq!(get_u64(&b, 3112), 4026531836);
        assert_eq!(get_u32(&b, 3124), 1);
        assert_eq!(get_u32(&b, 3128), 1);
        assert_eq!(get_u32(&b, 3132), 4);
        assert!(b[3136..4072].iter().all(|&c| c == 0));
        assert_eq!(get_u64(&b, 4072), 123_456_789_012);
        assert_eq!(get_u64(&b, 4080), 223_456_789_012);
    }

    /// A header written field by field and sealed (as the preload library does) decodes.
    #[test]
    fn header_written_by_offsets_decodes() {
        let mut b = [0u8; HEADER_SIZE];
        b[..8].copy_from_slice(&IMAGE_MAGIC);
        put_u32(&mut b, hdr::VERSION, super::super::IMAGE_VERSION);
        put_u32(&mut b, hdr::ARCH, super::super::ARCH_X86_64);
        put_u32(&mut b, hdr::HEADER_SIZE, HEADER_SIZE as u32);
        put_u32(&mut b, hdr::NUM_THREADS, 1);
        put_i32(&mut b, hdr::PID, 77);
        put_u32(&mut b, hdr::NUM_PEERS, 1);
        crate::le::put_str(&mut b, hdr::PROGNAME, hdr::PROGNAME_LEN, b"prog");
        seal(&mut b);
        let h = Header::decode(&b).unwrap();
        assert_eq!((h.arch, h.pid, h.progname.as_bytes()), (Arch::X86_64, 77, &b"prog"[..]));
        assert_eq!(super::super::check_header(&b), Ok(super::super::ARCH_X86_64));
    }

    /// A 2.0 image has zeros where 2.1 keeps the clocks: it reads as "no clocks recorded".
    #[test]
    fn header_of_2_0_without_clocks_reads_as_none() {
        let mut h = sample();
        h.clocks = None;
        let b = resealed(encoded(&h), |b| put_u32(b, hdr::VERSION, FormatVersion::new(2, 0).to_u32()));
        let d = Header::decode(&b).unwrap();
        assert_eq!((d.version, d.clocks), (FormatVersion::new(2, 0), None));
    }

    fn resealed(mut b: [u8; HEADER_SIZE], f: impl FnOnce(&mut [u8; HEADER_SIZE])) -> [u8; HEADER_SIZE] {
        f(&mut b);
        seal(&mut b);
        b
    }

    #[test]
    fn header_refuses_bad_magic_and_short_input() {
        let b = encoded(&sample());
        let mut bad = b;
        bad[0] = b'X';
        assert_eq!(Header::decode(&bad), Err(ImageError::NotAnImage));
        assert_eq!(Header::decode(&b[..7]), Err(ImageError::NotAnImage));
        assert_eq!(Header::decode(&b[..100]), Err(ImageError::Short { record: Record::Header, len: 100 }));
    }

    #[test]
    fn header_refuses_other_versions() {
        let b = encoded(&sample());
        let next = FormatVersion::new(FormatVersion::CURRENT.major, FormatVersion::CURRENT.minor + 1);
        for v in [FormatVersion::new(3, 0), next, FormatVersion::new(1, 0)] {
            let bad = resealed(b, |b| put_u32(b, hdr::VERSION, v.to_u32()));
            assert_eq!(Header::decode(&bad), Err(ImageError::Version(v.to_u32())), "{v}");
        }
    }

    #[test]
    fn header_refuses_a_flipped_bit_anywhere() {
        let b = encoded(&sample());
        for i in [8usize, 12, 20, 33, 744, 2024, 3132, 3500, 4087, 4088, 4095] {
            let mut bad = b;
            bad[i] ^= 0x04;
            let e = Header::decode(&bad).unwrap_err();
            // A flipped version bit may be reported as a version first; anything else is the
            // checksum.
            assert!(e == ImageError::HeaderChecksum || matches!(e, ImageError::Version(_)), "byte {i}: {e:?}");
        }
    }

    #[test]
    fn header_refuses_each_count_at_its_cap_plus_one() {
        let b = encoded(&sample());
        for (off, table, max) in [
            (hdr::NUM_AREAS, Table::Areas, MAX_AREAS),
            (hdr::NUM_THREADS, Table::Threads, MAX_THREADS),
            (hdr::NUM_FDS, Table::Fds, MAX_FDS),
        ] {
            let at_cap = resealed(b, |b| put_u32(b, off, max));
            assert!(Header::decode(&at_cap).is_ok(), "{table:?} at its cap");
            let over = resealed(b, |b| put_u32(b, off, max + 1));
            assert_eq!(Header::decode(&over), Err(ImageError::TooMany { table, count: max + 1 }));
        }
        let none = resealed(b, |b| put_u32(b, hdr::NUM_THREADS, 0));
        assert_eq!(Header::decode(&none), Err(ImageError::NoThreads));
    }

    #[test]
    fn header_refuses_bad_field_values() {
        let b = encoded(&sample());
        let arch = resealed(b, |b| put_u32(b, hdr::ARCH, 7));
        assert_eq!(Header::decode(&arch), Err(ImageError::Arch(7)));
        let size = resealed(b, |b| put_u32(b, hdr::HEADER_SIZE, 2048));
        assert_eq!(Header::decode(&size), Err(ImageError::HeaderSize(2048)));
        let auxv = resealed(b, |b| put_u32(b, hdr::AUXV_LEN, 513));
        assert_eq!(
            Header::decode(&auxv),
            Err(ImageError::BadField { record: Record::Header, field: "auxv length", value: 513 })
        );
        let half = resealed(b, |b| put_u64(b, hdr::CLOCK_BOOTTIME, 0));
        assert!(
            matches!(Header::decode(&half), Err(ImageError::BadField { record: Record::Header, .. })),
            "one clock without the other"
        );
        let huge = resealed(b, |b| put_u64(b, hdr::CLOCK_MONOTONIC, u64::MAX));
        assert_eq!(
            Header::decode(&huge),
            Err(ImageError::BadField { record: Record::Header, field: "monotonic clock", value: u64::MAX })
        );
        let root = resealed(b, |b| put_u32(b, hdr::IS_ROOT, 2));
        assert_eq!(
            Header::decode(&root),
            Err(ImageError::BadField { record: Record::Header, field: "is_root", value: 2 })
        );
    }

    /// What the restorer hands to mremap and brk, and the fields no writer sets, are checked
    /// here (found by the image mutation test in tests/mutations.rs).
    #[test]
    fn header_refuses_spans_heap_flags_peers_and_partial_auxv_the_restorer_would_act_on() {
        let b = encoded(&sample());
        let field = |b: &[u8; HEADER_SIZE]| match Header::decode(b) {
            Err(ImageError::BadField { field, .. }) => field,
            other => panic!("not refused: {other:?}"),
        };
        type Edit = fn(&mut [u8; HEADER_SIZE]);
        let cases: [(&str, Edit); 10] = [
            ("flags", |b| put_u32(b, hdr::FLAGS, 0x10)),
            ("number of peers", |b| put_u32(b, hdr::NUM_PEERS, 0)),
            ("auxv length", |b| put_u32(b, hdr::AUXV_LEN, 12)),
            ("vdso", |b| put_u64(b, hdr::VDSO_START, 0xf7f0_2000)),
            ("vdso", |b| put_u64(b, hdr::VDSO_START, 0xf7f0_0001)),
            ("vdso", |b| put_u64(b, hdr::VDSO_END, 0x1_0000_1000)),
            ("vvar", |b| put_u64(b, hdr::VVAR_END, 0)),
            ("vclock", |b| put_u64(b, hdr::VCLOCK_END, 0x1000)),
            ("heap start", |b| put_u64(b, hdr::START_BRK, 0x5002_2000)),
            ("heap start", |b| put_u64(b, hdr::BRK, 1 << 33)),
        ];
        for (want, f) in cases {
            assert_eq!(field(&resealed(b, f)), want);
        }
        // Absent spans (0..0) are fine, as on a kernel without a vclock.
        let none = resealed(b, |b| {
            put_u64(b, hdr::VDSO_START, 0);
            put_u64(b, hdr::VDSO_END, 0);
        });
        assert!(Header::decode(&none).is_ok());
    }
}
