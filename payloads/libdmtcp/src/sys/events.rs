//! Typed wrappers for the event kinds (`resources/{events,inotify,epoll}.rs`): eventfd,
//! signalfd, timerfd, epoll and inotify calls, kcmp, and the few reads those kinds need. Raw
//! system calls where the C library's function is one (so that a program's own wrapper of, say,
//! `inotify_add_watch` never sees our calls).
//!
//! Rules: as `sys`: no allocation, async-signal-safe, errors as the errno value.
use super::{check, errno, Errno};
use core::ffi::{c_int, c_long, CStr};

fn check_long(r: c_long) -> Result<c_int, Errno> {
    if r < 0 {
        Err(errno())
    } else {
        Ok(r as c_int)
    }
}

/// `eventfd(0, flags)`, then the counter set to `count` (a write adds it to 0).
pub fn eventfd(count: u64, flags: c_int) -> Result<c_int, Errno> {
    // SAFETY: plain system call with integer arguments.
    let fd = check(unsafe { libc::eventfd(0, flags | libc::EFD_NONBLOCK) })?;
    if count > 0 {
        if let Err(e) = super::write_all(fd, &count.to_ne_bytes()) {
            super::close(fd);
            return Err(e);
        }
    }
    Ok(fd)
}

/// `signalfd4(-1, mask, flags)` with the kernel's 64-bit mask (bit n-1 for signal n).
pub fn signalfd(mask: u64, flags: c_int) -> Result<c_int, Errno> {
    // SAFETY: the kernel reads 8 bytes of mask.
    check_long(unsafe { libc::syscall(libc::SYS_signalfd4, -1 as c_int, &mask as *const u64, 8usize, flags) })
}

pub fn timerfd_create(clock: c_int, flags: c_int) -> Result<c_int, Errno> {
    // SAFETY: plain system call with integer arguments.
    check(unsafe { libc::timerfd_create(clock, flags) })
}

#[allow(clippy::unnecessary_cast)] // time_t and c_long are 32-bit on i686
fn timespec(ns: u64) -> libc::timespec {
    libc::timespec { tv_sec: (ns / 1_000_000_000) as libc::time_t, tv_nsec: (ns % 1_000_000_000) as c_long }
}

/// `timerfd_settime(fd, flags, {interval, value})`, times in nanoseconds.
pub fn timerfd_settime(fd: c_int, flags: c_int, value_ns: u64, interval_ns: u64) -> Result<(), Errno> {
    let t = libc::itimerspec { it_interval: timespec(interval_ns), it_value: timespec(value_ns) };
    // SAFETY: t is a valid itimerspec; no old value asked for.
    check(unsafe { libc::timerfd_settime(fd, flags, &t, core::ptr::null_mut()) }).map(|_| ())
}

/// `TFD_IOC_SET_TICKS`: sets the expirations a read will return (kernels with
/// CONFIG_CHECKPOINT_RESTORE; 64-bit processes only, as the kernel has no compat handler).
pub fn timerfd_set_ticks(fd: c_int, ticks: u64) -> Result<(), Errno> {
    const TFD_IOC_SET_TICKS: u32 = 1 << 30 | 8 << 16 | (b'T' as u32) << 8; // _IOW('T', 0, u64)
                                                                           // SAFETY: the ioctl reads one u64.
    check(unsafe { libc::ioctl(fd, TFD_IOC_SET_TICKS as _, &ticks as *const u64) }).map(|_| ())
}

/// CLOCK_REALTIME in nanoseconds since the epoch.
#[allow(clippy::unnecessary_cast)] // time_t is 32-bit on i686
pub fn realtime_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    (ts.tv_sec as i64).max(0) as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub fn epoll_create1(flags: c_int) -> Result<c_int, Errno> {
    // SAFETY: plain system call with integer arguments.
    check(unsafe { libc::epoll_create1(flags) })
}

/// `epoll_ctl(ep, EPOLL_CTL_ADD, fd, {events, data})`.
pub fn epoll_add(ep: c_int, fd: c_int, events: u32, data: u64) -> Result<(), Errno> {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: ev is a valid epoll_event.
    check(unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) }).map(|_| ())
}

/// The raw `inotify_init1` system call (the C library's name is our own wrapper's).
pub fn inotify_init1(flags: c_int) -> Result<c_int, Errno> {
    // SAFETY: plain system call with integer arguments.
    check_long(unsafe { libc::syscall(libc::SYS_inotify_init1, flags) })
}

/// The raw `inotify_add_watch` system call (never a wrapper, ours or the program's).
pub fn inotify_add_watch(fd: c_int, path: &CStr, mask: u32) -> Result<c_int, Errno> {
    // SAFETY: path is NUL-terminated.
    check_long(unsafe { libc::syscall(libc::SYS_inotify_add_watch, fd, path.as_ptr(), mask) })
}

/// The raw `inotify_rm_watch` system call.
pub fn inotify_rm_watch(fd: c_int, wd: c_int) -> Result<(), Errno> {
    // SAFETY: plain system call with integer arguments.
    check_long(unsafe { libc::syscall(libc::SYS_inotify_rm_watch, fd, wd) }).map(|_| ())
}

/// Whether the fds `a` and `b` of this process share one open file description
/// (kcmp KCMP_FILE); false when the kernel cannot tell.
pub fn same_file(a: c_int, b: c_int) -> bool {
    const KCMP_FILE: c_int = 0;
    let me = super::getpid();
    // SAFETY: plain system call with integer arguments.
    unsafe { libc::syscall(libc::SYS_kcmp, me, me, KCMP_FILE, a as c_long, b as c_long) == 0 }
}

/// The inode number of `path` (`follow`: of what a symbolic link points at).
pub fn inode_of(path: &CStr, follow: bool) -> Result<u64, Errno> {
    // SAFETY: an all-zero stat64 is a valid value of this plain C struct.
    let mut st: libc::stat64 = unsafe { core::mem::zeroed() };
    // SAFETY: path is NUL-terminated, st is a valid stat64 to fill.
    check(unsafe {
        if follow {
            libc::stat64(path.as_ptr(), &mut st)
        } else {
            libc::lstat64(path.as_ptr(), &mut st)
        }
    })?;
    Ok(st.st_ino)
}

/// Whether the fd `tfd` of this process is the file that the epoll at `ep` watches as `tfd`
/// (kcmp KCMP_EPOLL_TFD); None when the kernel cannot tell.
pub fn epoll_target_is(ep: c_int, tfd: c_int) -> Option<bool> {
    const KCMP_EPOLL_TFD: c_int = 7;
    #[repr(C)]
    struct Slot {
        efd: u32,
        tfd: u32,
        toff: u32,
    }
    let slot = Slot { efd: ep as u32, tfd: tfd as u32, toff: 0 };
    let me = super::getpid();
    // SAFETY: the kernel reads one struct kcmp_epoll_slot through the pointer.
    let r = unsafe { libc::syscall(libc::SYS_kcmp, me, me, KCMP_EPOLL_TFD, tfd as c_long, &slot as *const Slot) };
    match r {
        0 => Some(true),
        r if r > 0 => Some(false),
        _ if errno() == libc::EBADF || errno() == libc::ENOENT => Some(false),
        _ => None,
    }
}
