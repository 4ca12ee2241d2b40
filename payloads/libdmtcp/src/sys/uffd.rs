//! userfaultfd write-protection and the PAGEMAP_SCAN ioctl of /proc/self/pagemap (Linux 6.7),
//! typed for `crate::dirty`. The structures are all u64 fields, one layout on both
//! architectures; Debian 12's headers lack the newer constants, so they are spelled here from
//! the kernel's `include/uapi/linux/{userfaultfd,fs}.h`.
//!
//! Rules: raw system calls and ioctls on our own descriptors, no allocation, async-signal-safe.
use super::Errno;
use core::ffi::c_int;

const UFFD_API: u64 = 0xAA;
const UFFD_USER_MODE_ONLY: c_int = 1;
/// Write faults are resolved by the kernel itself (no message, nothing the program sees).
pub const FEATURE_WP_ASYNC: u64 = 1 << 15;
/// Pages never touched are write-protected too (a first write to them is seen).
pub const FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
const UFFDIO_API: u64 = 0xC018_AA3F;
const UFFDIO_REGISTER: u64 = 0xC020_AA00;
const UFFDIO_WRITEPROTECT: u64 = 0xC018_AA06;
const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1;
const PAGEMAP_SCAN: u64 = 0xC060_6610;

/// Page categories of PAGEMAP_SCAN.
pub const PAGE_IS_WRITTEN: u64 = 1 << 1;
pub const PAGE_IS_PRESENT: u64 = 1 << 3;
pub const PAGE_IS_SWAPPED: u64 = 1 << 4;
/// Scan flags: write-protect the pages that match; fail (EPERM) on an area not registered
/// for asynchronous write-protection.
pub const PM_SCAN_WP_MATCHING: u64 = 1 << 0;
pub const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;

/// One answer of PAGEMAP_SCAN: the pages `[start, end)` share `categories`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct PageRegion {
    pub start: u64,
    pub end: u64,
    pub categories: u64,
}

fn ret(r: libc::c_long) -> Result<libc::c_long, Errno> {
    if r < 0 {
        Err(super::errno())
    } else {
        Ok(r)
    }
}

fn ioctl<T>(fd: c_int, req: u64, arg: &mut T) -> Result<libc::c_long, Errno> {
    // SAFETY: `arg` is the structure the request `req` reads and writes, of its exact size
    // (the size is part of the request number); the kernel touches nothing else.
    ret(unsafe { libc::syscall(libc::SYS_ioctl, fd, req as libc::c_ulong, arg as *mut T) })
}

/// A userfaultfd for user-mode faults only (needs no privilege), close-on-exec, with the
/// features asked for; returns (fd, features the kernel granted).
pub fn open(features: u64) -> Result<c_int, Errno> {
    // SAFETY: userfaultfd takes only flags.
    let fd = ret(unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | UFFD_USER_MODE_ONLY) })? as c_int;
    let mut api = [UFFD_API, features, 0u64];
    if let Err(e) = ioctl(fd, UFFDIO_API, &mut api) {
        super::close(fd);
        return Err(e);
    }
    Ok(fd)
}

/// Registers `[start, start + len)` for write-protection.
pub fn register_wp(fd: c_int, start: u64, len: u64) -> Result<(), Errno> {
    let mut reg = [start, len, UFFDIO_REGISTER_MODE_WP, 0u64];
    ioctl(fd, UFFDIO_REGISTER, &mut reg).map(|_| ())
}

/// Write-protects (or, `on` false, unprotects) `[start, start + len)`.
pub fn write_protect(fd: c_int, start: u64, len: u64, on: bool) -> Result<(), Errno> {
    let mut wp = [start, len, if on { UFFDIO_WRITEPROTECT_MODE_WP } else { 0 }];
    ioctl(fd, UFFDIO_WRITEPROTECT, &mut wp).map(|_| ())
}

/// What one PAGEMAP_SCAN asks.
#[derive(Clone, Copy)]
pub struct Scan {
    pub flags: u64,
    pub inverted: u64,
    pub mask: u64,
    pub anyof: u64,
    pub ret: u64,
}

/// Scans `[start, end)` of this process (`pagemap`: /proc/self/pagemap open for reading) into
/// `out`; returns (regions filled, where the walk ended: below `end` when `out` was full).
pub fn pagemap_scan(
    pagemap: c_int,
    start: u64,
    end: u64,
    s: Scan,
    out: &mut [PageRegion],
) -> Result<(usize, u64), Errno> {
    let mut arg = [
        12 * 8,
        s.flags,
        start,
        end,
        0,
        out.as_mut_ptr() as usize as u64,
        out.len() as u64,
        0,
        s.inverted,
        s.mask,
        s.anyof,
        s.ret,
    ];
    let n = ioctl(pagemap, PAGEMAP_SCAN, &mut arg)?;
    Ok((n as usize, arg[4]))
}

/// A table of `PageRegion`s in a mapping of its own (never the program's malloc), unmapped on
/// drop.
pub struct Regions {
    map: super::Mapping,
}

impl Regions {
    pub fn new(n: usize) -> Result<Regions, Errno> {
        Ok(Regions { map: super::Mapping::new(n * core::mem::size_of::<PageRegion>())? })
    }
    pub fn all(&mut self) -> &mut [PageRegion] {
        let b = self.map.bytes();
        let n = b.len() / core::mem::size_of::<PageRegion>();
        // SAFETY: the mapping is page-aligned (so aligned for u64), n whole PageRegions long,
        // and PageRegion is plain u64s, valid for any bits (zero from mmap).
        unsafe { core::slice::from_raw_parts_mut(b.as_mut_ptr().cast::<PageRegion>(), n) }
    }
}
