//! The checkpoint signal (DMTCP_SIGCKPT, default SIGUSR2): our handler, and the wrappers that
//! keep a program from taking it over or blocking it, as DMTCP does. A program's own handler for
//! that signal is kept and still called for signals that did not come from our checkpoint
//! thread. Also the sleep wrappers (with, on i686, the 64-bit-time `__nanosleep64` and
//! `__clock_nanosleep_time64`): a sleep interrupted by a checkpoint goes on sleeping for the
//! time it had left, while a signal of the program's still ends it (`interrupt` tells the two
//! apart, and holds the other calls a checkpoint must not interrupt).
//! And our handler in front of glibc's SIGSETXID one, to stop the threads that block every
//! other signal (`install_setxid`).
//!
//! Rules: the handler is async-signal-safe (atomics, raw system calls); wrappers may run
//! before our constructor and outside dmtcp, where they pass everything straight through.
use crate::threads::{self, CKPT_SIGNAL};
use core::cell::UnsafeCell;
use core::ffi::{c_int, c_uint, c_void};
use core::sync::atomic::Ordering::*;

struct AppAction(UnsafeCell<libc::sigaction>);
// SAFETY: written by the sigaction/signal wrappers (the program's calls for our signal) and
// read by the handler; a torn read could only mix two handlers the program installed, which a
// program racing its own sigaction calls against the signal accepts anyway.
unsafe impl Sync for AppAction {}
// SAFETY: an all-zero sigaction is SIG_DFL with an empty mask.
static APP_ACTION: AppAction = AppAction(UnsafeCell::new(unsafe { core::mem::zeroed() }));

use crate::real::{
    clock_nanosleep as real_clock_nanosleep, nanosleep as real_nanosleep, pthread_sigmask as real_pthread_sigmask,
    sigaction as real_sigaction, sigprocmask as real_sigprocmask,
};

extern "C" fn handler(sig: c_int, info: *mut libc::siginfo_t, uc: *mut c_void) {
    crate::sys::keep_errno(|| {
        let entered = crate::interrupt::now_ns();
        if threads::on_signal(threads::Entry { info, uc, entered_ns: Some(entered) }) {
            crate::interrupt::after_checkpoint(entered, uc);
            return;
        }
        // Not ours: the program's own handler for this signal, if it set one.
        // SAFETY: reading the saved action; see `AppAction`.
        let app = unsafe { *APP_ACTION.0.get() };
        let h = app.sa_sigaction;
        if h == libc::SIG_DFL || h == libc::SIG_IGN {
            return;
        }
        // SAFETY: the program installed `h` for this signal with these flags; we call it as the
        // kernel would have.
        unsafe {
            if app.sa_flags & libc::SA_SIGINFO != 0 {
                let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) = core::mem::transmute(h);
                f(sig, info, uc);
            } else {
                let f: extern "C" fn(c_int) = core::mem::transmute(h);
                f(sig);
            }
        }
    })
}

/// glibc's internal signal for setuid and friends across threads (SIGSETXID). Some threads of
/// glibc's own (the helper of SIGEV_THREAD timers) block every signal but this one; the
/// checkpoint thread stops them with it (`threads::suspend_all`).
pub const SIGSETXID: c_int = 33;

/// glibc's handler for SIGSETXID, which ours calls for every SIGSETXID that is not ours.
static GLIBC_SETXID: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

extern "C" fn setxid_handler(sig: c_int, info: *mut libc::siginfo_t, uc: *mut c_void) {
    crate::sys::keep_errno(|| {
        if threads::on_setxid(info, uc) {
            return;
        }
        let h = GLIBC_SETXID.load(Acquire);
        if h > 1 {
            // SAFETY: glibc installed `h` as an SA_SIGINFO handler for this signal (checked in
            // `install_setxid`); we call it as the kernel would have.
            unsafe {
                let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) = core::mem::transmute(h);
                f(sig, info, uc);
            }
        }
    })
}

/// Puts our handler in front of glibc's SIGSETXID handler (kernel action: same flags and
/// restorer, our handler, every signal blocked while it runs). Only when glibc has an
/// SA_SIGINFO handler there; otherwise threads that block the checkpoint signal stay unstoppable.
/// glibc installs its handler at the first pthread_create (our checkpoint thread's), so this
/// runs at the start of each checkpoint (`threads::suspend_all`); once ours is there it does
/// nothing (one rt_sigaction read).
pub fn install_setxid() {
    use crate::sys::{kernel_sigaction, KERNEL_SIGACTION_SIZE};
    const W: usize = core::mem::size_of::<usize>();
    let mut old = [0u8; KERNEL_SIGACTION_SIZE];
    if kernel_sigaction(SIGSETXID, None, Some(&mut old)).is_err() {
        return;
    }
    let word = |b: &[u8], i: usize| {
        let mut w = [0u8; W];
        w.copy_from_slice(&b[i * W..(i + 1) * W]);
        usize::from_ne_bytes(w)
    };
    let (h, flags) = (word(&old, 0), word(&old, 1));
    if h <= 1 || h == setxid_handler as *const () as usize || flags & libc::SA_SIGINFO as usize == 0 {
        return;
    }
    GLIBC_SETXID.store(h, Release);
    let mut new = old;
    new[..W].copy_from_slice(&(setxid_handler as *const () as usize).to_ne_bytes());
    // struct sigaction of the kernel: handler, flags, restorer, then the 64-bit mask.
    new[3 * W..3 * W + 8].fill(0xff);
    if kernel_sigaction(SIGSETXID, Some(&new), None).is_err() {
        GLIBC_SETXID.store(0, Release);
    }
}

/// Installs the checkpoint signal's handler (from the constructor). Returns false on failure.
pub fn install(sig: c_int) -> bool {
    let Some(sa) = real_sigaction() else { return false };
    // SAFETY: a zeroed sigaction filled in field by field; the old action is stored for the
    // program (it is normally SIG_DFL this early).
    unsafe {
        let mut act: libc::sigaction = core::mem::zeroed();
        act.sa_sigaction = handler as *const () as usize;
        act.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigfillset(&mut act.sa_mask);
        if sa(sig, &act, APP_ACTION.0.get()) != 0 {
            return false;
        }
    }
    CKPT_SIGNAL.store(sig, Release);
    true
}

fn ours(sig: c_int) -> bool {
    let s = CKPT_SIGNAL.load(Relaxed);
    s != 0 && s == sig
}

/// The program's view of our signal's action.
#[no_mangle]
pub unsafe extern "C" fn sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int {
    if ours(sig) {
        // SAFETY: the caller passes valid pointers or null, as for sigaction(2).
        unsafe {
            let saved = *APP_ACTION.0.get();
            if !act.is_null() {
                *APP_ACTION.0.get() = *act;
            }
            if !old.is_null() {
                *old = saved;
            }
        }
        return 0;
    }
    match real_sigaction() {
        // SAFETY: forwarding the caller's arguments unchanged.
        Some(f) => unsafe { f(sig, act, old) },
        None => {
            crate::sys::set_errno(libc::ENOSYS);
            -1
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn signal(sig: c_int, h: libc::sighandler_t) -> libc::sighandler_t {
    // SAFETY: building a sigaction like glibc's signal() (BSD semantics: SA_RESTART).
    unsafe {
        let mut act: libc::sigaction = core::mem::zeroed();
        act.sa_sigaction = h;
        act.sa_flags = libc::SA_RESTART;
        let mut old: libc::sigaction = core::mem::zeroed();
        if sigaction(sig, &act, &mut old) != 0 {
            return libc::SIG_ERR;
        }
        old.sa_sigaction
    }
}

/// A copy of `set` without our signal, when the call would block it.
fn filtered(how: c_int, set: *const libc::sigset_t, buf: &mut libc::sigset_t) -> *const libc::sigset_t {
    let sig = CKPT_SIGNAL.load(Relaxed);
    if set.is_null() || sig == 0 || how == libc::SIG_UNBLOCK {
        return set;
    }
    // SAFETY: `set` is the caller's valid sigset; `buf` is ours.
    unsafe {
        *buf = *set;
        libc::sigdelset(buf, sig);
    }
    buf
}

#[no_mangle]
pub unsafe extern "C" fn sigprocmask(how: c_int, set: *const libc::sigset_t, old: *mut libc::sigset_t) -> c_int {
    // SAFETY: an all-zero sigset_t is valid storage.
    let mut buf: libc::sigset_t = unsafe { core::mem::zeroed() };
    let set = filtered(how, set, &mut buf);
    match real_sigprocmask() {
        // SAFETY: forwarding valid pointers.
        Some(f) => unsafe { f(how, set, old) },
        None => {
            crate::sys::set_errno(libc::ENOSYS);
            -1
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_sigmask(how: c_int, set: *const libc::sigset_t, old: *mut libc::sigset_t) -> c_int {
    // SAFETY: an all-zero sigset_t is valid storage.
    let mut buf: libc::sigset_t = unsafe { core::mem::zeroed() };
    let set = filtered(how, set, &mut buf);
    match real_pthread_sigmask() {
        // SAFETY: forwarding valid pointers.
        Some(f) => unsafe { f(how, set, old) },
        None => libc::ENOSYS,
    }
}

/// Sleeps for `req`, going on with the time left when a checkpoint interrupted the sleep.
fn sleep_through(req: libc::timespec, rem: *mut libc::timespec) -> c_int {
    let Some(f) = real_nanosleep() else {
        crate::sys::set_errno(libc::ENOSYS);
        return -1;
    };
    let mut cur = req;
    let saved = crate::sys::errno();
    loop {
        let epoch = crate::interrupt::mark();
        let mut left = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: valid timespec pointers.
        let r = unsafe { f(&cur, &mut left) };
        if r == 0 {
            return 0;
        }
        if crate::sys::errno() == libc::EINTR && crate::interrupt::by_checkpoint(epoch) {
            // The program's errno stays what it was: the EINTR was ours.
            crate::sys::set_errno(saved);
            cur = left;
            continue;
        }
        if !rem.is_null() {
            // SAFETY: the caller's rem pointer, as for nanosleep(2).
            unsafe { *rem = left };
        }
        return r;
    }
}

#[no_mangle]
pub unsafe extern "C" fn nanosleep(req: *const libc::timespec, rem: *mut libc::timespec) -> c_int {
    if req.is_null() {
        crate::sys::set_errno(libc::EFAULT);
        return -1;
    }
    // SAFETY: non-null request from the caller.
    sleep_through(unsafe { *req }, rem)
}

#[no_mangle]
pub unsafe extern "C" fn clock_nanosleep(
    clk: libc::clockid_t,
    flags: c_int,
    req: *const libc::timespec,
    rem: *mut libc::timespec,
) -> c_int {
    let Some(f) = real_clock_nanosleep() else { return libc::ENOSYS };
    if req.is_null() {
        return libc::EFAULT;
    }
    // SAFETY: non-null request from the caller.
    let mut cur = unsafe { *req };
    loop {
        let epoch = crate::interrupt::mark();
        let mut left = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: valid pointers.
        let r = unsafe { f(clk, flags, &cur, &mut left) };
        if r == libc::EINTR && crate::interrupt::by_checkpoint(epoch) {
            if flags & libc::TIMER_ABSTIME == 0 {
                cur = left;
            }
            continue;
        }
        if r == libc::EINTR && !rem.is_null() && flags & libc::TIMER_ABSTIME == 0 {
            // SAFETY: the caller's rem pointer.
            unsafe { *rem = left };
        }
        return r;
    }
}

#[no_mangle]
pub extern "C" fn sleep(secs: c_uint) -> c_uint {
    let mut left = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    let req = libc::timespec { tv_sec: secs as _, tv_nsec: 0 };
    if sleep_through(req, &mut left) == 0 {
        return 0;
    }
    (left.tv_sec as c_uint) + u32::from(left.tv_nsec > 0)
}

#[no_mangle]
pub extern "C" fn usleep(us: libc::useconds_t) -> c_int {
    let req = libc::timespec { tv_sec: (us / 1_000_000) as _, tv_nsec: ((us % 1_000_000) * 1000) as _ };
    sleep_through(req, core::ptr::null_mut())
}

#[cfg(target_pointer_width = "32")]
use crate::interrupt::Timespec64;

#[cfg(target_pointer_width = "32")]
#[no_mangle]
pub unsafe extern "C" fn __nanosleep64(req: *const Timespec64, rem: *mut Timespec64) -> c_int {
    let Some(f) = crate::real::nanosleep64() else {
        crate::sys::set_errno(libc::ENOSYS);
        return -1;
    };
    if req.is_null() {
        crate::sys::set_errno(libc::EFAULT);
        return -1;
    }
    // SAFETY: non-null request from the caller.
    let mut cur = unsafe { *req };
    let saved = crate::sys::errno();
    loop {
        let epoch = crate::interrupt::mark();
        let mut left = Timespec64::ZERO;
        // SAFETY: valid timespec pointers.
        let r = unsafe { f(&cur, &mut left) };
        if r == 0 {
            return 0;
        }
        if crate::sys::errno() == libc::EINTR && crate::interrupt::by_checkpoint(epoch) {
            crate::sys::set_errno(saved);
            cur = left;
            continue;
        }
        if !rem.is_null() {
            // SAFETY: the caller's rem pointer, as for nanosleep(2).
            unsafe { *rem = left };
        }
        return r;
    }
}

#[cfg(target_pointer_width = "32")]
#[no_mangle]
pub unsafe extern "C" fn __clock_nanosleep_time64(
    clk: libc::clockid_t,
    flags: c_int,
    req: *const Timespec64,
    rem: *mut Timespec64,
) -> c_int {
    let Some(f) = crate::real::clock_nanosleep64() else { return libc::ENOSYS };
    if req.is_null() {
        return libc::EFAULT;
    }
    // SAFETY: non-null request from the caller.
    let mut cur = unsafe { *req };
    loop {
        let epoch = crate::interrupt::mark();
        let mut left = Timespec64::ZERO;
        // SAFETY: valid pointers.
        let r = unsafe { f(clk, flags, &cur, &mut left) };
        if r == libc::EINTR && crate::interrupt::by_checkpoint(epoch) {
            if flags & libc::TIMER_ABSTIME == 0 {
                cur = left;
            }
            continue;
        }
        if r == libc::EINTR && !rem.is_null() && flags & libc::TIMER_ABSTIME == 0 {
            // SAFETY: the caller's rem pointer.
            unsafe { *rem = left };
        }
        return r;
    }
}
