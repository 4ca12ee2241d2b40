//! Wire formats shared by the 64-bit `dmtcp` tools, the preload library `libdmtcp.so` and the
//! restorer `mtcp_restart`, for both x86_64 and i686.
//!
//! Rule: `#![no_std]`, no allocation, no `unsafe`. Every field is fixed-width little-endian and
//! every record has one layout on every architecture (unlike the C++ DMTCP, whose records differ
//! between i386 and x86_64), so that any of our programs can read what any other wrote.
#![no_std]
#![forbid(unsafe_code)]

pub mod barrier;
pub mod env;
pub mod handover;
pub mod image;
pub mod msg;
pub mod shared;

pub use msg::*;

/// Version of the product, carried into every build of every payload.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The file descriptor at which the preload library keeps its coordinator connection. High, like
/// DMTCP's protected fds (820..842), so that ordinary programs never collide with it.
pub const COORD_FD: i32 = 821;

/// Default coordinator port, as in DMTCP.
pub const DEFAULT_PORT: u16 = 7779;

/// Where the restorer `mtcp_restart` lives (it is linked there, not position-independent): far
/// from where the kernel puts programs, libraries, heaps and stacks, so that it does not collide
/// with the areas it restores. It refuses an image with an area in this range, and the preload
/// library unmaps whatever the restorer left there once the program runs again.
pub const RESTORER_BASE_X86_64: u64 = 0x0000_1000_0000_0000;
pub const RESTORER_BASE_I686: u64 = 0x2000_0000;
/// Size of the restorer's range: its code, data, stack and scratch.
pub const RESTORER_SPAN: u64 = 0x0400_0000;

/// Little-endian field helpers over byte slices; panics only on a programming error (offset out
/// of the fixed record), never on input data, because every record has a fixed size.
pub mod le {
    pub fn get_u32(b: &[u8], off: usize) -> u32 {
        let mut a = [0u8; 4];
        a.copy_from_slice(&b[off..off + 4]);
        u32::from_le_bytes(a)
    }
    pub fn get_i32(b: &[u8], off: usize) -> i32 {
        get_u32(b, off) as i32
    }
    pub fn get_u64(b: &[u8], off: usize) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[off..off + 8]);
        u64::from_le_bytes(a)
    }
    pub fn put_u32(b: &mut [u8], off: usize, v: u32) {
        b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
    pub fn put_i32(b: &mut [u8], off: usize, v: i32) {
        put_u32(b, off, v as u32)
    }
    pub fn put_u64(b: &mut [u8], off: usize, v: u64) {
        b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    }
    /// Copies `s` into a fixed field, truncating, always leaving a NUL terminator.
    pub fn put_str(b: &mut [u8], off: usize, len: usize, s: &[u8]) {
        let field = &mut b[off..off + len];
        field.fill(0);
        let n = core::cmp::min(s.len(), len - 1);
        field[..n].copy_from_slice(&s[..n]);
    }
    /// The bytes of a NUL-terminated fixed field, without the terminator.
    pub fn get_str(b: &[u8], off: usize, len: usize) -> &[u8] {
        let field = &b[off..off + len];
        let n = field.iter().position(|&c| c == 0).unwrap_or(len);
        &field[..n]
    }
}
