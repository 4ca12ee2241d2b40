//! Typed wrappers over the raw system calls the restorer makes. No libc: each returns the
//! kernel's result as `Result<usize, Errno>`.
use crate::arch::{self, nr, syscall6};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

pub const EEXIST: i32 = 17;
pub const EPERM: i32 = 1;

pub type R = Result<usize, Errno>;

fn res(r: isize) -> R {
    if (-4095..0).contains(&r) {
        Err(Errno(-r as i32))
    } else {
        Ok(r as usize)
    }
}

pub const PROT_READ: usize = 1;
pub const PROT_WRITE: usize = 2;
pub const MAP_SHARED: usize = 0x01;
pub const MAP_PRIVATE: usize = 0x02;
pub const MAP_ANONYMOUS: usize = 0x20;
pub const MAP_GROWSDOWN: usize = 0x100;
pub const MAP_NORESERVE: usize = 0x4000;
pub const MAP_HUGETLB: usize = 0x40000;
/// log2 of the huge page size, in the MAP_HUGE_SHIFT bits.
pub const MAP_HUGE_2MB: usize = 21 << 26;
pub const MAP_HUGE_1GB: usize = 30 << 26;
pub const MAP_FIXED_NOREPLACE: usize = 0x100000;
pub const MADV_DONTNEED: usize = 4;
pub const MADV_DONTFORK: usize = 10;
pub const MADV_HUGEPAGE: usize = 14;
pub const MADV_NOHUGEPAGE: usize = 15;
pub const MADV_DONTDUMP: usize = 16;
pub const MADV_WIPEONFORK: usize = 18;
pub const MLOCK_ONFAULT: usize = 1;
pub const EFAULT: i32 = 14;
pub const MREMAP_MAYMOVE: usize = 1;
pub const MREMAP_FIXED: usize = 2;
pub const O_RDONLY: usize = 0;
pub const O_RDWR: usize = 2;
pub const O_CLOEXEC: usize = 0o2000000;
pub const O_CREAT: usize = 0o100;
pub const O_EXCL: usize = 0o200;
pub const ENOENT: i32 = 2;
pub const SIGKILL: usize = 9;
#[cfg(target_arch = "x86")]
pub const O_LARGEFILE: usize = 0o100000;
#[cfg(not(target_arch = "x86"))]
pub const O_LARGEFILE: usize = 0;
const AT_FDCWD: isize = -100;

pub fn read(fd: usize, buf: *mut u8, len: usize) -> R {
    res(syscall6(nr::READ, fd, buf as usize, len, 0, 0, 0))
}

pub fn write(fd: usize, buf: &[u8]) -> R {
    res(syscall6(nr::WRITE, fd, buf.as_ptr() as usize, buf.len(), 0, 0, 0))
}

pub fn close(fd: usize) -> R {
    res(syscall6(nr::CLOSE, fd, 0, 0, 0, 0, 0))
}

/// Opens a NUL-terminated path.
pub fn open(path: &[u8], flags: usize) -> R {
    debug_assert!(path.last() == Some(&0));
    res(syscall6(nr::OPENAT, AT_FDCWD as usize, path.as_ptr() as usize, flags | O_CLOEXEC | O_LARGEFILE, 0, 0, 0))
}

/// Creates a NUL-terminated path that must not exist yet (O_CREAT | O_EXCL), read-write, with
/// `mode` (less the umask; see `fchmod`).
pub fn create_excl(path: &[u8], mode: u32) -> R {
    debug_assert!(path.last() == Some(&0));
    let flags = O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_LARGEFILE;
    res(syscall6(nr::OPENAT, AT_FDCWD as usize, path.as_ptr() as usize, flags, mode as usize, 0, 0))
}

pub fn fchmod(fd: usize, mode: u32) -> R {
    res(syscall6(nr::FCHMOD, fd, mode as usize, 0, 0, 0, 0))
}

/// Allocates `len` bytes of the file from its start (fallocate mode 0).
pub fn fallocate(fd: usize, len: u64) -> R {
    res(arch::fallocate(fd, len))
}

pub fn ftruncate(fd: usize, len: u64) -> R {
    res(arch::ftruncate(fd, len))
}

/// kill(2); `pid` -1 is every process this one may signal (in a pid namespace: all of it).
pub fn kill(pid: isize, sig: usize) -> R {
    res(syscall6(nr::KILL, pid as usize, sig, 0, 0, 0, 0))
}

pub fn mmap(addr: usize, len: usize, prot: usize, flags: usize, fd: usize, off: u64) -> R {
    res(arch::mmap(addr, len, prot, flags, fd, off))
}

pub fn munmap(addr: usize, len: usize) -> R {
    res(syscall6(nr::MUNMAP, addr, len, 0, 0, 0, 0))
}

pub fn mprotect(addr: usize, len: usize, prot: usize) -> R {
    res(syscall6(nr::MPROTECT, addr, len, prot, 0, 0, 0))
}

pub fn madvise(addr: usize, len: usize, advice: usize) -> R {
    res(syscall6(nr::MADVISE, addr, len, advice, 0, 0, 0))
}

pub fn mlock2(addr: usize, len: usize, flags: usize) -> R {
    res(syscall6(nr::MLOCK2, addr, len, flags, 0, 0, 0))
}

pub fn mremap_fixed(old: usize, len: usize, new: usize) -> R {
    res(syscall6(nr::MREMAP, old, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, new, 0))
}

pub fn prctl(opt: usize, a: usize, b: usize, c: usize, d: usize) -> R {
    res(syscall6(nr::PRCTL, opt, a, b, c, d, 0))
}

pub fn getpid() -> usize {
    syscall6(nr::GETPID, 0, 0, 0, 0, 0, 0) as usize
}

/// Blocks every signal in this thread (restored threads inherit it; each thread's own mask
/// comes back from its signal frame when it returns from the checkpoint handler).
pub fn block_all_signals() {
    let all: u64 = !0;
    syscall6(nr::RT_SIGPROCMASK, 0, &all as *const u64 as usize, 0, 8, 0, 0);
}

pub fn exit(code: usize) -> ! {
    loop {
        syscall6(nr::EXIT_GROUP, code, 0, 0, 0, 0, 0);
    }
}
