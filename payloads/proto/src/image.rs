//! The checkpoint image format, one definition for every architecture and every reader (the
//! preload library that writes it, `dmtcp_restart` that checks it, `mtcp_restart` that restores
//! it). All fields fixed-width little-endian.
//!
//! ```text
//! +--------------------------------------------+  offset 0
//! | Header (4096 bytes, own checksum)           |
//! +--------------------------------------------+  4096
//! | num_areas   x AreaRecord   (512 bytes)      |  every mapping, known before any data:
//! | num_threads x ThreadRecord (256 bytes)      |  the restorer sees the whole map first
//! | num_fds     x FdRecord     (64 bytes)       |  pipes, for dmtcp_restart (version 2)
//! +--------------------------------------------+
//! | data: Chunk header (32 bytes) + bytes, ...  |  only pages that hold data; untouched
//! |       ... Chunk{area = END_CHUNK}           |  and all-zero pages are left out
//! +--------------------------------------------+
//! | Trailer (32 bytes): magic, length, checksum |  checksum of everything before it
//! +--------------------------------------------+
//!
//! The process that is checkpointed sends the trailer with checksum 0: `dmtcp write-image`
//! checks the length, computes the checksum of the bytes it received and writes the real
//! trailer into the file. So a stream cut short never becomes an image, and an image corrupted
//! on disk later fails its checksum.
//! ```
//!
//! The whole stream may be wrapped in one zstd frame (compressed images); `dmtcp_restart` tells
//! the two apart by the first four bytes. A reader refuses a different magic, a newer format
//! version, an unknown architecture, a bad header checksum, a short file or a trailer that does
//! not match, each with its own error.
use crate::le::*;

pub const IMAGE_MAGIC: [u8; 8] = *b"DMTCPIMG";
pub const TRAILER_MAGIC: [u8; 8] = *b"DMTCPEND";
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// 2: the fd table (`num_fds` FdRecords after the thread table; header NUM_FDS).
pub const IMAGE_VERSION: u32 = 2;
pub const HEADER_SIZE: usize = 4096;
pub const AREA_SIZE: usize = 512;
pub const THREAD_SIZE: usize = 256;
pub const FD_SIZE: usize = 64;
pub const CHUNK_SIZE: usize = 32;
pub const TRAILER_SIZE: usize = 32;
pub const END_CHUNK: u32 = u32::MAX;
pub const MAX_AREAS: u32 = 1 << 20;
pub const MAX_THREADS: u32 = 1 << 16;
pub const MAX_FDS: u32 = 1 << 16;

pub const ARCH_X86_64: u32 = 1;
pub const ARCH_I686: u32 = 2;

pub fn arch_name(a: u32) -> &'static str {
    match a {
        ARCH_X86_64 => "x86_64",
        ARCH_I686 => "i686",
        _ => "unknown",
    }
}

/// Header field offsets.
pub mod hdr {
    pub const MAGIC: usize = 0; // [8]
    pub const VERSION: usize = 8; // u32
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
    pub const MM_START_CODE: usize = 144; // u64 x 10, the kernel's mm fields for PR_SET_MM_MAP:
                                          // start_code end_code start_data end_data start_stack arg_start arg_end env_start env_end
                                          // (the tenth slot is reserved)
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
    pub const CHECKSUM: usize = 4088; // u64 of bytes [0, 4088)
    pub const PROGNAME_LEN: usize = 256;
    pub const PATH_LEN: usize = 1024;
    pub const HOSTNAME_LEN: usize = 64;
    pub const AUXV_MAX: usize = 512;
}

/// Area record field offsets.
pub mod area {
    pub const START: usize = 0; // u64
    pub const END: usize = 8; // u64
    pub const OFFSET: usize = 16; // u64 file offset of a file mapping
    pub const PROT: usize = 24; // u32 PROT_*
    pub const FLAGS: usize = 28; // u32 AREA_* below
    pub const DEV: usize = 32; // u64
    pub const INODE: usize = 40; // u64
    pub const DATA_PAGES: usize = 48; // u64 pages stored in the data section (for inspection)
    pub const NAME: usize = 64; // [448] /proc/self/maps name (a path for file mappings)
    pub const NAME_LEN: usize = 448;
}

pub const AREA_SHARED: u32 = 1; // MAP_SHARED (contents live in the file; no data stored)
pub const AREA_FILE: u32 = 2; // backed by a file that existed at checkpoint
pub const AREA_STACK: u32 = 4; // the main stack (grows down)
pub const AREA_HEAP: u32 = 8; // [heap]

/// Thread record field offsets. Registers are the callee-saved set plus sp and ip of the point
/// where the thread stopped inside the preload library (x86_64: rbx rbp r12 r13 r14 r15 rsp rip;
/// i686: ebx esi edi ebp esp eip, zero-extended), enough to resume it there.
pub mod thread {
    pub const TID: usize = 0; // i32
    pub const FLAGS: usize = 4; // u32 (THREAD_MAIN, THREAD_CKPT)
    pub const REGS: usize = 8; // u64 x 16
    pub const TLS: usize = 136; // x86_64: fs base (u64); i686: struct user_desc (16 bytes)
    pub const GS: usize = 152; // u64 x86_64 gs base; i686 %gs selector
    pub const COMM: usize = 160; // [16]
    pub const NUM_REGS: usize = 16;
}

pub const THREAD_MAIN: u32 = 1;
pub const THREAD_CKPT: u32 = 2;

/// Fd record field offsets: one per pipe end the process held at checkpoint time, so that
/// `dmtcp_restart` can recreate each pipe once (pipes are named by their old inode, `ID`) and
/// put its ends at the same fd numbers in every process that had them. The bytes that were in
/// flight are not here: the process that drained them keeps them in its memory and writes them
/// back itself after the restart.
pub mod fdrec {
    pub const FD: usize = 0; // i32 the fd number
    pub const KIND: usize = 4; // u32 FD_PIPE
    pub const END: usize = 8; // u32 FD_READ or FD_WRITE
    pub const FD_FLAGS: usize = 12; // u32 F_GETFD (FD_CLOEXEC)
    pub const STATUS: usize = 16; // u32 F_GETFL (access mode, O_NONBLOCK, ...)
    pub const PIPE_SIZE: usize = 20; // u32 F_GETPIPE_SZ (0 = unknown)
    pub const ID: usize = 24; // u64 the pipe's inode at checkpoint time
    pub const PENDING: usize = 32; // u64 bytes this process drained from it (informational)
}

pub const FD_PIPE: u32 = 1;
pub const FD_READ: u32 = 0;
pub const FD_WRITE: u32 = 1;

/// Chunk header: `len` bytes follow, for area `area` at `start + offset`.
pub mod chunk {
    pub const AREA: usize = 0; // u32
    pub const OFFSET: usize = 8; // u64
    pub const LEN: usize = 16; // u64
}

/// Why an image was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    NotAnImage,
    Version(u32),
    Arch(u32),
    HeaderChecksum,
    BadCounts,
}

impl core::fmt::Display for ImageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ImageError::NotAnImage => write!(f, "not a dmtcp checkpoint image (bad magic)"),
            ImageError::Version(v) => {
                write!(f, "image format version {v} is not supported (this build reads version {IMAGE_VERSION})")
            }
            ImageError::Arch(a) => write!(f, "unknown architecture {a} in image"),
            ImageError::HeaderChecksum => write!(f, "image header is corrupt (checksum mismatch)"),
            ImageError::BadCounts => write!(f, "image header is corrupt (impossible counts)"),
        }
    }
}

/// Checks a header; returns its architecture.
pub fn check_header(h: &[u8]) -> Result<u32, ImageError> {
    if h.len() < HEADER_SIZE || h[..8] != IMAGE_MAGIC {
        return Err(ImageError::NotAnImage);
    }
    let v = get_u32(h, hdr::VERSION);
    if v != IMAGE_VERSION {
        return Err(ImageError::Version(v));
    }
    if get_u64(h, hdr::CHECKSUM) != checksum(CHECKSUM_SEED, &h[..hdr::CHECKSUM]) {
        return Err(ImageError::HeaderChecksum);
    }
    let arch = get_u32(h, hdr::ARCH);
    if arch != ARCH_X86_64 && arch != ARCH_I686 {
        return Err(ImageError::Arch(arch));
    }
    if get_u32(h, hdr::NUM_AREAS) > MAX_AREAS
        || get_u32(h, hdr::NUM_THREADS) > MAX_THREADS
        || get_u32(h, hdr::NUM_THREADS) == 0
        || get_u32(h, hdr::NUM_FDS) > MAX_FDS
        || get_u32(h, hdr::HEADER_SIZE) as usize != HEADER_SIZE
    {
        return Err(ImageError::BadCounts);
    }
    Ok(arch)
}

/// Seals a header: writes its checksum.
pub fn seal_header(h: &mut [u8]) {
    let c = checksum(CHECKSUM_SEED, &h[..hdr::CHECKSUM]);
    put_u64(h, hdr::CHECKSUM, c);
}

/// Size of the tables that follow the header.
pub fn tables_len(h: &[u8]) -> usize {
    get_u32(h, hdr::NUM_AREAS) as usize * AREA_SIZE
        + get_u32(h, hdr::NUM_THREADS) as usize * THREAD_SIZE
        + get_u32(h, hdr::NUM_FDS) as usize * FD_SIZE
}

pub const CHECKSUM_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// Incremental 64-bit checksum of a byte stream, fast enough to run over every byte of an
/// image as it is written (four independent multiply-rotate lanes over 32-byte blocks). Not
/// cryptographic: it catches corruption and truncation, not tampering.
#[derive(Clone, Copy, Debug)]
pub struct Checksum {
    lanes: [u64; 4],
    tail: [u8; 32],
    tail_len: usize,
    total: u64,
}

const P1: u64 = 0x9e37_79b1_85eb_ca87;
const P2: u64 = 0xc2b2_ae3d_27d4_eb4f;

#[inline(always)]
fn round(acc: u64, w: u64) -> u64 {
    (acc ^ w.wrapping_mul(P2)).rotate_left(31).wrapping_mul(P1)
}

impl Checksum {
    pub const fn new(seed: u64) -> Checksum {
        Checksum { lanes: [seed, seed ^ P1, seed ^ P2, seed.wrapping_add(P1)], tail: [0; 32], tail_len: 0, total: 0 }
    }

    fn block(&mut self, b: &[u8]) {
        for (i, lane) in self.lanes.iter_mut().enumerate() {
            *lane = round(*lane, get_u64(b, i * 8));
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.total = self.total.wrapping_add(data.len() as u64);
        if self.tail_len > 0 {
            let n = core::cmp::min(32 - self.tail_len, data.len());
            self.tail[self.tail_len..self.tail_len + n].copy_from_slice(&data[..n]);
            self.tail_len += n;
            data = &data[n..];
            if self.tail_len < 32 {
                return;
            }
            let t = self.tail;
            self.block(&t);
            self.tail_len = 0;
        }
        let mut chunks = data.chunks_exact(32);
        for c in &mut chunks {
            self.block(c);
        }
        let rest = chunks.remainder();
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
    }

    pub fn finish(&self) -> u64 {
        let mut h = self.lanes[0].rotate_left(1)
            ^ self.lanes[1].rotate_left(7)
            ^ self.lanes[2].rotate_left(12)
            ^ self.lanes[3].rotate_left(18);
        for &b in &self.tail[..self.tail_len] {
            h = round(h, u64::from(b));
        }
        h = round(h, self.total);
        h ^= h >> 29;
        h = h.wrapping_mul(P1);
        h ^ (h >> 32)
    }
}

pub fn checksum(seed: u64, data: &[u8]) -> u64 {
    let mut c = Checksum::new(seed);
    c.update(data);
    c.finish()
}

/// The trailer for a stream of `len` bytes with checksum `sum`.
pub fn trailer(len: u64, sum: u64) -> [u8; TRAILER_SIZE] {
    let mut t = [0u8; TRAILER_SIZE];
    t[..8].copy_from_slice(&TRAILER_MAGIC);
    put_u64(&mut t, 8, len);
    put_u64(&mut t, 16, sum);
    t
}

/// Parses a trailer into (length, checksum).
pub fn parse_trailer(t: &[u8]) -> Option<(u64, u64)> {
    if t.len() != TRAILER_SIZE || t[..8] != TRAILER_MAGIC {
        return None;
    }
    Some((get_u64(t, 8), get_u64(t, 16)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_is_incremental() {
        let data: [u8; 1000] = core::array::from_fn(|i| (i * 7 + 3) as u8);
        let whole = checksum(1, &data);
        for split in [0, 1, 31, 32, 33, 500, 999, 1000] {
            let mut c = Checksum::new(1);
            c.update(&data[..split]);
            c.update(&data[split..]);
            assert_eq!(c.finish(), whole, "split {split}");
        }
        let mut other = data;
        other[500] ^= 1;
        assert_ne!(checksum(1, &other), whole);
        assert_ne!(checksum(1, &data[..999]), whole);
    }

    #[test]
    fn header_checks() {
        let mut h = [0u8; HEADER_SIZE];
        h[..8].copy_from_slice(&IMAGE_MAGIC);
        put_u32(&mut h, hdr::VERSION, IMAGE_VERSION);
        put_u32(&mut h, hdr::ARCH, ARCH_I686);
        put_u32(&mut h, hdr::HEADER_SIZE, HEADER_SIZE as u32);
        put_u32(&mut h, hdr::NUM_THREADS, 1);
        seal_header(&mut h);
        assert_eq!(check_header(&h), Ok(ARCH_I686));
        let mut bad = h;
        bad[100] ^= 1;
        assert_eq!(check_header(&bad), Err(ImageError::HeaderChecksum));
        let mut bad = h;
        put_u32(&mut bad, hdr::VERSION, 9);
        assert_eq!(check_header(&bad), Err(ImageError::Version(9)));
        let mut bad = h;
        bad[0] = b'X';
        assert_eq!(check_header(&bad), Err(ImageError::NotAnImage));
        assert_eq!(check_header(&h[..100]), Err(ImageError::NotAnImage));
    }
}
