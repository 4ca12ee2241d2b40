//! The checkpoint image format, one definition for every architecture and every reader (the
//! preload library that writes it, `dmtcp_restart` and `dmtcp write-image` that check it,
//! `mtcp_restart` that restores it). All fields fixed-width little-endian.
//!
//! ```text
//! +--------------------------------------------+  offset 0
//! | Header (4096 bytes, own checksum)           |  header.rs
//! +--------------------------------------------+  4096
//! | num_areas   x AreaRecord   (512 bytes)      |  area.rs   every mapping, known before any
//! | num_threads x ThreadRecord (256 bytes)      |  thread.rs data: the restorer sees the map first
//! | num_fds     x FdRecord     (64 bytes)       |  fd.rs     kind tag + per-kind body (pipe.rs)
//! +--------------------------------------------+
//! | data: Chunk header (32 bytes) + bytes, ...  |  chunk.rs  only pages that hold data;
//! |       ... Chunk::End                        |            untouched and zero pages left out
//! +--------------------------------------------+
//! | Trailer (32 bytes): magic, length, checksum |  trailer.rs, checksum.rs: checksum of
//! +--------------------------------------------+  everything before the trailer
//! ```
//!
//! The process that is checkpointed sends the trailer with checksum 0: `dmtcp write-image`
//! checks the length, computes the checksum of the bytes it received and writes the real
//! trailer into the file. So a stream cut short never becomes an image, and an image corrupted
//! on disk later fails its checksum.
//!
//! The whole stream may be wrapped in one zstd frame (compressed images); `dmtcp_restart` tells
//! the two apart by the first four bytes.
//!
//! Every record has a typed `encode(&self, &mut [u8; SIZE])` (fills a fixed buffer, so that a
//! writer without allocation keeps it on its stack) and `decode(&[u8]) -> Result<Self,
//! ImageError>`, which checks the size and every value it can check on its own (magic, version,
//! checksum, counts against their caps, enum values, flag bits) and names the problem. Checks
//! that need more than one record (a chunk inside its area) belong to the reader.
//!
//! # Version rule
//!
//! The header's `version` field (u32 at offset 8) holds `major | minor << 16`, so the version-2
//! images written before the rule existed read as 2.0. A reader of version `M.m`:
//! - refuses any other major (a newer major changes the layout; older majors, before the fd
//!   table of 2.0, are no longer supported: `MIN_MAJOR` = 2);
//! - reads the same major with a minor up to its own (`image.minor <= m`): a minor adds what an
//!   older reader lacks (a header field in reserved space, a new record kind), and a newer reader
//!   still knows what every older minor meant;
//! - refuses a newer minor of its own major: what it added (say a resource record kind) changes
//!   what a correct restore must do, and silently ignoring it would restore a process that is not
//!   the one that was checkpointed.
//!
//! `FormatVersion::check` implements it; the tests run every pairing.
//!
//! The offset modules (`hdr`, `area`, `thread`, `fdrec`, `chunk`) and the free functions
//! `seal_header`, `trailer` are the layout the typed records use. Every writer and reader goes
//! through the records; outside this module the offsets serve only field sizes (`NAME_LEN`)
//! and the tests that damage an image at a chosen byte on purpose.
#![forbid(unsafe_code)]

pub mod area;
pub mod chain;
pub mod checksum;
pub mod chunk;
pub mod error;
pub mod events;
pub mod fd;
pub mod file;
pub mod file_data;
pub mod header;
pub mod memfd;
pub mod mqueue;
pub mod pipe;
pub mod socket_inet;
pub mod socket_unix;
pub mod sysv;
pub mod text;
pub mod thread;
pub mod trailer;
pub mod tty;
pub mod version;

pub use area::{AreaRecord, AREA_FILE, AREA_HEAP, AREA_SHARED, AREA_SHM, AREA_STACK};
pub use chain::Chain;
pub use checksum::{checksum, Checksum, CHECKSUM_SEED};
pub use chunk::{Chunk, END_CHUNK};
pub use error::{ImageError, Record, Table};
pub use events::{EpollRecord, EventfdRecord, InotifyRecord, SignalfdRecord, TimerfdRecord};
pub use fd::{
    FdBody, FdRecord, FD_EPOLL, FD_EVENTFD, FD_INET_SOCKET, FD_INOTIFY, FD_MEMFD, FD_MQUEUE, FD_PIPE, FD_PTY,
    FD_SHARED, FD_SIGNALFD, FD_SYSV, FD_TERMINAL, FD_TIMERFD, FD_UNIX_SOCKET,
};
pub use file::{
    FileRecord, FileWhat, PathPiece, PlaceholderRecord, FD_FILE, FD_PATH, FD_PLACEHOLDER, MAX_PATH, PATH_PIECE,
    PLACEHOLDER_TEXT,
};
pub use file_data::{FileBytes, FileDataRecord, DATA_OVERWRITE, DATA_PIECE, MAX_SAVED_FILE, MAX_SAVED_PROCESS};
pub use header::{hdr, Arch, Clocks, Header, Span};
pub use memfd::MemfdRecord;
pub use mqueue::{MqueueRecord, MQ_HOLDER, MQ_UNLINKED};
pub use pipe::{PipeEnd, PipeRecord, FD_READ, FD_WRITE};
pub use socket_inet::{InetAddr, InetSocketRecord};
pub use socket_unix::{SockState, UnixSocketRecord};
pub use sysv::{SysvKind, SysvRecord};
pub use text::Text;
pub use thread::{ThreadRecord, THREAD_CKPT, THREAD_MAIN};
pub use trailer::Trailer;
pub use tty::{PtyEnd, PtyRecord, PTY_CTTY, PTY_MASTER, PTY_SLAVE};
pub use version::FormatVersion;

/// The fd table's offsets (common part in `fd`, pipe body in `pipe`), under their old name.
pub mod fdrec {
    pub use super::fd::{FD, FD_FLAGS, KIND, STATUS};
    pub use super::pipe::{END, ID, PENDING, PIPE_SIZE};
}

pub const IMAGE_MAGIC: [u8; 8] = *b"DMTCPIMG";
pub const TRAILER_MAGIC: [u8; 8] = *b"DMTCPEND";
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// The raw version field this build writes (`FormatVersion::CURRENT`). 2.0: the fd table
/// (`num_fds` FdRecords after the thread table). 2.1: new fd kinds (files reopened by path with
/// their shared descriptions and path pieces, placeholders, event fds, memfds, ptys), the areas'
/// kernel flags (`AreaRecord::vm`) and shared memory held only by the kernel (`AREA_SHM`),
/// and the clocks at checkpoint in the header (`hdr::CLOCK_MONOTONIC`, `hdr::CLOCK_BOOTTIME`).
/// 2.3: a process's SEM_UNDO adjustments (`FD_SYSV` records of kind `SYSV_SEM_UNDO`);
/// incremental images: the header's chain field (`chain`) and `Chunk::Zero`.
/// 2.4: eventfds shared across processes: the FD_SHARED flag of the common fd flags and the
/// eventfd's description key (`EventfdRecord::desc`).
/// 2.5: the saved contents of open regular files (`--checkpoint-open-files`: `FD_FILE_DATA`
/// and `FD_FILE_BYTES` records after a file's path, `file_data.rs`).
pub const IMAGE_VERSION: u32 = FormatVersion::CURRENT.to_u32();
pub const HEADER_SIZE: usize = 4096;
pub const AREA_SIZE: usize = 512;
pub const THREAD_SIZE: usize = 256;
pub const FD_SIZE: usize = 64;
pub const CHUNK_SIZE: usize = 32;
pub const TRAILER_SIZE: usize = 32;
pub const MAX_AREAS: u32 = 1 << 20;
pub const MAX_THREADS: u32 = 1 << 16;
pub const MAX_FDS: u32 = 1 << 16;
/// Pages are 4 KiB on both architectures; areas start and end on page boundaries.
pub const PAGE_SIZE: u64 = 4096;

pub const ARCH_X86_64: u32 = Arch::X86_64 as u32;
pub const ARCH_I686: u32 = Arch::I686 as u32;

/// The name of a raw architecture value ("unknown" for anything else).
pub fn arch_name(a: u32) -> &'static str {
    Arch::from_u32(a).map_or("unknown", Arch::name)
}

/// Checks a header (see `Header::decode`); returns its architecture's raw value.
pub fn check_header(h: &[u8]) -> Result<u32, ImageError> {
    Header::decode(h).map(|h| h.arch as u32)
}

/// Seals a header written field by field: writes its checksum. Used by the preload library's
/// writer until it moves to `Header::encode`, which seals by itself.
pub fn seal_header(h: &mut [u8]) {
    header::seal(h)
}

/// The trailer for a stream of `len` bytes with checksum `sum`.
pub fn trailer(len: u64, sum: u64) -> [u8; TRAILER_SIZE] {
    let mut t = [0u8; TRAILER_SIZE];
    Trailer { len, checksum: sum }.encode(&mut t);
    t
}

/// Parses a trailer into (length, checksum).
pub fn parse_trailer(t: &[u8]) -> Option<(u64, u64)> {
    Trailer::decode(t).ok().map(|t| (t.len, t.checksum))
}
