//! Typed wrappers for the timer and clock system calls that `resources::timers` uses: the
//! interval timers (getitimer/setitimer), the kernel's POSIX timers by their *kernel* id (raw
//! timer_create/timer_gettime/timer_settime/timer_delete, not glibc's `timer_t`, which for
//! SIGEV_THREAD timers is a pointer to glibc's own record), the prctl that lets timer_create
//! take the id it is given, and clock_gettime.
//!
//! Rules: raw system calls only (no libc state, no allocation): async-signal-safe. Each passes
//! only pointers derived from Rust references of the size the kernel reads or writes. On i686
//! the timer calls are the 64-bit-time ones (timer_gettime64/timer_settime64, Linux 5.1), so
//! that both architectures share one `Itimerspec` layout.
use super::{errno, Errno};
use core::ffi::{c_int, c_long};

/// `struct __kernel_itimerspec`: interval (s, ns), then value (s, ns), 64-bit on both arches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Itimerspec {
    pub interval_sec: i64,
    pub interval_nsec: i64,
    pub value_sec: i64,
    pub value_nsec: i64,
}

impl Itimerspec {
    pub const ZERO: Itimerspec = Itimerspec { interval_sec: 0, interval_nsec: 0, value_sec: 0, value_nsec: 0 };

    /// Armed: a value that is not zero (a zero value disarms, whatever the interval).
    pub fn armed(&self) -> bool {
        self.value_sec != 0 || self.value_nsec != 0
    }
}

/// `struct itimerval` of getitimer/setitimer: interval (s, µs), then value (s, µs), in the
/// architecture's `long`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Itimerval {
    pub interval_sec: c_long,
    pub interval_usec: c_long,
    pub value_sec: c_long,
    pub value_usec: c_long,
}

impl Itimerval {
    pub const ZERO: Itimerval = Itimerval { interval_sec: 0, interval_usec: 0, value_sec: 0, value_usec: 0 };

    pub fn armed(&self) -> bool {
        self.value_sec != 0 || self.value_usec != 0
    }
}

/// Notification kinds of `struct sigevent` (the kernel's; glibc's SIGEV_THREAD never reaches
/// the kernel: glibc turns it into SIGEV_THREAD_ID to its helper thread).
pub const SIGEV_SIGNAL: c_int = 0;
pub const SIGEV_NONE: c_int = 1;
pub const SIGEV_THREAD_ID: c_int = 4;

/// The kernel's `struct sigevent` (64 bytes on both arches): sigval (pointer-sized), signal,
/// notification, then the union whose first int is the target tid of SIGEV_THREAD_ID.
#[repr(C)]
pub struct Sigevent {
    pub value: usize,
    pub signo: c_int,
    pub notify: c_int,
    pub tid: c_int,
    pad: [c_int; (52 - core::mem::size_of::<usize>()) / 4],
}

const _: () = assert!(core::mem::size_of::<Sigevent>() == 64);

impl Sigevent {
    pub fn new(value: usize, signo: c_int, notify: c_int, tid: c_int) -> Sigevent {
        Sigevent { value, signo, notify, tid, pad: [0; (52 - core::mem::size_of::<usize>()) / 4] }
    }
}

#[cfg(target_arch = "x86_64")]
mod nr {
    use core::ffi::c_long;
    pub const TIMER_CREATE: c_long = 222;
    pub const TIMER_SETTIME: c_long = 223;
    pub const TIMER_GETTIME: c_long = 224;
    pub const TIMER_DELETE: c_long = 226;
}

#[cfg(target_arch = "x86")]
mod nr {
    use core::ffi::c_long;
    pub const TIMER_CREATE: c_long = 259;
    pub const TIMER_DELETE: c_long = 263;
    /// timer_gettime64 / timer_settime64 (the y2038 calls, struct __kernel_itimerspec).
    pub const TIMER_GETTIME: c_long = 408;
    pub const TIMER_SETTIME: c_long = 409;
}

/// prctl(2) option (linux/prctl.h, Linux 6.16): while on, timer_create takes the timer id to
/// create from the value its id pointer points at (CRIU's restore of exact ids).
const PR_TIMER_CREATE_RESTORE_IDS: c_int = 77;

fn check(r: c_long) -> Result<c_long, Errno> {
    if r < 0 {
        Err(errno())
    } else {
        Ok(r)
    }
}

/// getitimer(which): ITIMER_REAL, ITIMER_VIRTUAL or ITIMER_PROF.
pub fn getitimer(which: c_int) -> Result<Itimerval, Errno> {
    let mut v = Itimerval::ZERO;
    // SAFETY: the kernel writes one struct itimerval (four longs) into `v`.
    check(unsafe { libc::syscall(libc::SYS_getitimer, which, &mut v as *mut Itimerval) }).map(|_| v)
}

/// setitimer(which, v): sets the timer and returns what it was, in one step.
pub fn setitimer(which: c_int, v: &Itimerval) -> Result<Itimerval, Errno> {
    let mut old = Itimerval::ZERO;
    // SAFETY: the kernel reads one struct itimerval from `v` and writes one into `old`.
    check(unsafe { libc::syscall(libc::SYS_setitimer, which, v as *const Itimerval, &mut old as *mut Itimerval) })
        .map(|_| old)
}

/// Turns timer_create's "create the id I give" mode on or off. Err(EINVAL) on kernels without
/// it (before 6.16).
pub fn timer_restore_ids(on: bool) -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe {
        libc::syscall(
            libc::SYS_prctl,
            PR_TIMER_CREATE_RESTORE_IDS,
            c_long::from(on),
            0 as c_long,
            0 as c_long,
            0 as c_long,
        )
    })
    .map(|_| ())
}

/// timer_create(clock, ev) as the raw system call. `want` is the id to ask for: the kernel
/// reads it only while `timer_restore_ids(true)` is in force. Returns the id it created.
pub fn timer_create(clock: c_int, ev: &Sigevent, want: c_int) -> Result<c_int, Errno> {
    let mut id: c_int = want;
    // SAFETY: the kernel reads one struct sigevent (64 bytes) from `ev` and reads/writes one
    // int (the kernel's timer_t) at `id`.
    check(unsafe { libc::syscall(nr::TIMER_CREATE, clock, ev as *const Sigevent, &mut id as *mut c_int) })?;
    Ok(id)
}

/// timer_gettime(id): what is left until the next expiry and the interval.
pub fn timer_gettime(id: c_int) -> Result<Itimerspec, Errno> {
    let mut v = Itimerspec::ZERO;
    // SAFETY: the kernel writes one struct __kernel_itimerspec (four i64) into `v`.
    check(unsafe { libc::syscall(nr::TIMER_GETTIME, id, &mut v as *mut Itimerspec) }).map(|_| v)
}

/// timer_settime(id, 0, v): relative value; the old value is not asked for.
pub fn timer_settime(id: c_int, v: &Itimerspec) -> Result<(), Errno> {
    // SAFETY: the kernel reads one struct __kernel_itimerspec; the old-value pointer is NULL.
    check(unsafe {
        libc::syscall(nr::TIMER_SETTIME, id, 0 as c_int, v as *const Itimerspec, core::ptr::null_mut::<Itimerspec>())
    })
    .map(|_| ())
}

pub fn timer_delete(id: c_int) -> Result<(), Errno> {
    // SAFETY: a system call with an integer argument.
    check(unsafe { libc::syscall(nr::TIMER_DELETE, id) }).map(|_| ())
}

/// `clock`'s time in nanoseconds (0 if it cannot be read).
#[allow(clippy::unnecessary_cast)] // time_t is 32-bit on i686
pub fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid timespec to fill (the vDSO or the system call).
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `si_code` of a POSIX timer's expiry signal.
const SI_TIMER: c_int = -2;

/// Queues `sig` to this process as the expiry of timer `id` would (rt_sigqueueinfo with
/// SI_TIMER, the timer's id and sigval, no overrun), so that a handler that reads si_value or
/// si_timerid sees what the timer sends. A process may queue any negative si_code to itself.
pub fn queue_timer_signal(sig: c_int, id: c_int, value: usize) -> Result<(), Errno> {
    // siginfo_t: si_signo, si_errno, si_code, then the union (at 16 on x86_64, after padding;
    // at 12 on i686), whose _timer member is: int tid, int overrun, sigval.
    const UNION: usize = if core::mem::size_of::<usize>() == 8 { 16 } else { 12 };
    let mut info = [0u8; 128];
    info[0..4].copy_from_slice(&sig.to_ne_bytes());
    info[8..12].copy_from_slice(&SI_TIMER.to_ne_bytes());
    info[UNION..UNION + 4].copy_from_slice(&id.to_ne_bytes());
    info[UNION + 8..UNION + 8 + core::mem::size_of::<usize>()].copy_from_slice(&value.to_ne_bytes());
    // SAFETY: the kernel reads one 128-byte siginfo from `info`.
    check(unsafe { libc::syscall(libc::SYS_rt_sigqueueinfo, super::getpid(), sig, info.as_ptr()) }).map(|_| ())
}
