//! No EINTR from a checkpoint: wrappers for the calls that a signal handler interrupts even under
//! SA_RESTART (signal(7), "Interruption of system calls and library functions by signal
//! handlers"): poll, ppoll, select, pselect, epoll_wait, epoll_pwait, epoll_pwait2,
//! sigtimedwait, sigwaitinfo, sigsuspend, pause, msgrcv, msgsnd, semop, semtimedop, and the socket
//! calls that fail with EINTR when a timeout is set (recv, recvfrom, recvmsg, send, sendto,
//! sendmsg, accept, accept4), with the fortified `__poll_chk`/`__ppoll_chk` and, on i686, the
//! 64-bit-time symbols (`__ppoll64`, `__select64`, `__pselect64`, `__epoll_pwait2_time64`,
//! `__sigtimedwait64`, `__semtimedop64`, `__recvmsg64`) a program built with `_TIME_BITS=64`
//! calls. The sleeps are in `signals`. The semop wrappers also note SEM_UNDO adjustments
//! (`sem_calls::noted`, `resources::sem_undo`).
//!
//! Design. A call that fails with EINTR is called again when the interruption was our
//! checkpoint's and no signal of the program's came with it; its timeout then goes on with the
//! time it had left, counting only the program's own time (the time from the call to the
//! checkpoint signal; the checkpoint and, after a restart, the time the computation was down do
//! not count), the rule the sleep wrappers follow. To tell ours from the program's, the
//! checkpoint signal's handler leaves a mark for its thread (`after_checkpoint`): a count of the
//! checkpoint signals it took, the monotonic time it was entered, and whether a signal the program
//! handles is pending and unblocked in the interrupted context, so that it runs as soon as our
//! handler returns (a signal of the thread's own, from /proc/thread-self/status; a signal of the
//! process's counts for the first thread that claims it, as the kernel gives it to one thread).
//! A wrapper that sees EINTR, a count that moved during the call and no such signal calls again;
//! otherwise the program gets its EINTR exactly as without dmtcp. Not exact in two rare cases: a
//! program signal delivered in the same instant as ours but before it (its frame is set up
//! first, so it is no longer pending when our handler looks) is taken for ours, and a
//! process-directed one that arrives during the checkpoint may be counted for another thread
//! than the one the kernel gives it to, when several threads leave it unblocked.
//!
//! Sets and masks the program passes (sigtimedwait's set, the masks of ppoll, pselect,
//! epoll_pwait and sigsuspend) lose the checkpoint signal, as `signals` does for sigprocmask, so
//! that a program can neither wait for it nor block it. errno is what it was before the call
//! when a call is made again, so a checkpoint never changes it.
//!
//! Marks live in a fixed table in .bss keyed by `pthread_self()` (no system call on the wrappers'
//! path; linear probing; the entry of a thread that has exited is taken over). Each entry is
//! written only by its own thread's signal handler and read by the same thread's wrappers; a
//! thread that finds no entry (more than `MARKS` live threads) sees the EINTR as without the
//! wrappers. The count, not the global checkpoint epoch, is what tells: a call that began after
//! the checkpoint thread bumped the epoch but before its signal came is still interrupted by it.
//!
//! Rules: a C-ABI entry point module (raw pointers from the program); everything here is
//! async-signal-safe (atomics, raw system calls, clock_gettime); wrappers may run before the
//! constructor or outside dmtcp, where they pass everything through (the epoch never moves).
use crate::real;
use crate::sys::{self, thread::gettid};
use crate::threads::{CKPT_SIGNAL, EPOCH};
use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};

const MARKS: usize = 1024;

struct Mark {
    /// The owning thread's `pthread_self()` (0: free): found without a system call.
    key: AtomicUsize,
    tid: AtomicI32,
    /// Bumped by each checkpoint signal the thread took.
    seq: AtomicU32,
    entered_ns: AtomicU64,
    app_signal: AtomicU32,
}

static TABLE: [Mark; MARKS] = [const {
    Mark {
        key: AtomicUsize::new(0),
        tid: AtomicI32::new(0),
        seq: AtomicU32::new(0),
        entered_ns: AtomicU64::new(0),
        app_signal: AtomicU32::new(0),
    }
}; MARKS];

/// Monotonic nanoseconds (vDSO clock_gettime: async-signal-safe).
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

fn alive(tid: i32) -> bool {
    // SAFETY: signal 0 to a thread of this process only checks that it exists.
    tid > 0 && unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, 0) == 0 }
}

fn self_key() -> usize {
    // SAFETY: pthread_self reads the thread pointer; no failure, async-signal-safe in glibc.
    unsafe { libc::pthread_self() as usize }
}

/// This thread's entry; with `claim`, takes a free one (or one of an exited thread).
fn entry(claim: bool) -> Option<&'static Mark> {
    let me = self_key();
    let start = ((me as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as usize % MARKS;
    for i in 0..MARKS {
        let m = &TABLE[(start + i) % MARKS];
        let k = m.key.load(Acquire);
        if k == me {
            return Some(m);
        }
        if !claim {
            if k == 0 {
                return None;
            }
            continue;
        }
        if (k == 0 || !alive(m.tid.load(Acquire))) && m.key.compare_exchange(k, me, AcqRel, Acquire).is_ok() {
            return Some(m);
        }
    }
    None
}

/// This thread's checkpoint-signal count, to take before a call (see `by_checkpoint`).
pub fn mark() -> u32 {
    entry(false).map(|m| m.seq.load(Acquire)).unwrap_or(0)
}

/// The first 64 signals of a `sigset_t` as the kernel's mask.
fn mask_bits(set: &libc::sigset_t) -> u64 {
    let p = set as *const libc::sigset_t as *const u32;
    // SAFETY: a sigset_t is at least 8 bytes (glibc: 128), read as two u32 words (i686 alignment).
    unsafe { u64::from(*p) | (u64::from(*p.add(1)) << 32) }
}

/// True if `sig` has a handler of the program's (not SIG_DFL/SIG_IGN).
fn handled(sig: c_int) -> bool {
    let mut old = [0usize; 8];
    // SAFETY: rt_sigaction with no new action only writes the old one (the kernel's
    // struct sigaction: handler, flags, restorer, 8-byte mask; 32 bytes is enough).
    let r =
        unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, core::ptr::null::<c_void>(), old.as_mut_ptr(), 8usize) };
    r == 0 && old[0] != libc::SIG_DFL && old[0] != libc::SIG_IGN
}

/// Called by the checkpoint signal's handler in a program thread once the checkpoint (or the
/// restart) is over and the thread is about to go on: leaves this thread's mark. `entered_ns`
/// is when the handler was entered, `uc` its ucontext.
pub fn after_checkpoint(entered_ns: u64, uc: *const c_void) {
    let ours = CKPT_SIGNAL.load(Relaxed);
    let epoch = EPOCH.load(Acquire);
    let mut app = 0u32;
    if !uc.is_null() {
        // SAFETY: the kernel passes the interrupted context to an SA_SIGINFO handler.
        let back_to = mask_bits(unsafe { &(*(uc as *const libc::ucontext_t)).uc_sigmask });
        // Everything is blocked in our handler, so every pending signal shows here.
        let waiting = sys::sigpending() & !back_to;
        let own = if waiting != 0 { thread_pending() } else { 0 };
        for n in 1..=64 {
            let bit = 1u64 << (n - 1);
            if n == ours || n == libc::SIGKILL || n == libc::SIGSTOP || waiting & bit == 0 || !handled(n) {
                continue;
            }
            // A signal of this thread's own is delivered here; one of the process's goes to one
            // thread only: the first thread that claims it in this epoch counts it.
            if own & bit != 0 || claim(epoch, bit) {
                app = 1;
                break;
            }
        }
    }
    let Some(m) = entry(true) else { return };
    m.tid.store(gettid(), Release);
    m.entered_ns.store(entered_ns, Relaxed);
    m.app_signal.store(app, Relaxed);
    m.seq.fetch_add(1, Release);
}

/// Process-directed signals already counted by a thread in epoch `CLAIM_EPOCH`.
static CLAIMED: AtomicU64 = AtomicU64::new(0);
static CLAIM_EPOCH: AtomicU32 = AtomicU32::new(0);

fn claim(epoch: u32, bit: u64) -> bool {
    let seen = CLAIM_EPOCH.load(Acquire);
    if seen != epoch && CLAIM_EPOCH.compare_exchange(seen, epoch, AcqRel, Acquire).is_ok() {
        CLAIMED.store(0, Release);
    }
    CLAIMED.fetch_or(bit, AcqRel) & bit == 0
}

/// This thread's own pending signals (SigPnd in /proc/thread-self/status), 0 if unreadable.
fn thread_pending() -> u64 {
    let mut buf = [0u8; 2048];
    let Ok(n) = sys::read_file(c"/proc/thread-self/status", &mut buf) else { return 0 };
    let text = &buf[..n];
    let key = b"SigPnd:";
    let Some(at) = text.windows(key.len()).position(|w| w == key) else { return 0 };
    let mut v = 0u64;
    for &c in text[at + key.len()..].iter().skip_while(|c| c.is_ascii_whitespace()) {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => break,
        };
        v = (v << 4) | u64::from(d);
    }
    v
}

/// After EINTR from a call that began with this thread's `mark()` at `seq0`, at `t0`: Some(ns
/// the call ran before our signal) when the interruption was our checkpoint's alone, None when
/// the program must see it (no checkpoint signal came during the call, or one of its own came
/// with it).
fn ours(seq0: u32, t0: u64) -> Option<u64> {
    let m = entry(false)?;
    if m.seq.load(Acquire) == seq0 || m.app_signal.load(Relaxed) != 0 {
        return None;
    }
    Some(m.entered_ns.load(Relaxed).saturating_sub(t0))
}

/// True when an EINTR seen after a call that began at `mark()` = `seq0` was our checkpoint's
/// alone (for the sleeps, whose time left the kernel reports).
pub fn by_checkpoint(seq0: u32) -> bool {
    ours(seq0, 0).is_some()
}

/// What the wrapped calls return: -1 means failure (errno set).
trait Ret: Copy {
    fn failed(self) -> bool;
}
impl Ret for c_int {
    fn failed(self) -> bool {
        self == -1
    }
}
impl Ret for isize {
    fn failed(self) -> bool {
        self == -1
    }
}

/// Runs `call(left)` until it ends other than by our checkpoint's EINTR. `left` is the timeout
/// in nanoseconds (None: none), less the time already spent at each new call.
fn again<R: Ret>(mut left: Option<i64>, mut call: impl FnMut(Option<i64>) -> R) -> R {
    let saved = sys::errno();
    loop {
        let seq0 = mark();
        let t0 = now_ns();
        let r = call(left);
        if !r.failed() || sys::errno() != libc::EINTR {
            return r;
        }
        let Some(spent) = ours(seq0, t0) else { return r };
        if let Some(l) = left.as_mut() {
            *l = (*l - spent.min(i64::MAX as u64) as i64).max(0);
        }
        sys::set_errno(saved);
    }
}

fn no_real<R: From<i8>>() -> R {
    sys::set_errno(libc::ENOSYS);
    R::from(-1)
}

// ---------------------------------------------------------------------------------------------
// Timeouts.

fn ms_to_ns(ms: c_int) -> Option<i64> {
    (ms >= 0).then(|| i64::from(ms) * 1_000_000)
}

/// Rounded up, so that a call made again never ends before its time.
fn ns_to_ms(ns: Option<i64>) -> c_int {
    match ns {
        None => -1,
        Some(n) => ((n + 999_999) / 1_000_000).min(i64::from(c_int::MAX)) as c_int,
    }
}

// i64::from: the fields are i32 on i686.
#[allow(clippy::useless_conversion)]
fn ts_to_ns(ts: *const libc::timespec) -> Option<i64> {
    if ts.is_null() {
        return None;
    }
    // SAFETY: the caller's non-null timespec.
    let t = unsafe { *ts };
    Some(i64::from(t.tv_sec).saturating_mul(1_000_000_000).saturating_add(i64::from(t.tv_nsec)))
}

fn ns_to_ts(ns: i64) -> libc::timespec {
    libc::timespec { tv_sec: (ns / 1_000_000_000) as _, tv_nsec: (ns % 1_000_000_000) as _ }
}

/// The timespec to pass for `left`: the caller's own when the call was never interrupted (so
/// that the C library and the kernel see exactly what the program passed), else `buf`.
fn ts_arg(orig: *const libc::timespec, left: Option<i64>, buf: &mut libc::timespec) -> *const libc::timespec {
    match left {
        None => orig,
        Some(n) if Some(n) == ts_to_ns(orig) => orig,
        Some(n) => {
            *buf = ns_to_ts(n);
            buf
        }
    }
}

/// glibc's `struct __timespec64` on i686: 64-bit seconds, 32-bit nanoseconds and padding.
#[cfg_attr(target_pointer_width = "64", allow(dead_code))]
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Timespec64 {
    pub sec: i64,
    pub nsec: i32,
    pub pad: i32,
}

#[cfg_attr(target_pointer_width = "64", allow(dead_code))]
impl Timespec64 {
    pub const ZERO: Timespec64 = Timespec64 { sec: 0, nsec: 0, pad: 0 };
}

#[cfg(target_pointer_width = "32")]
fn ts64_to_ns(ts: *const Timespec64) -> Option<i64> {
    if ts.is_null() {
        return None;
    }
    // SAFETY: the caller's non-null timespec.
    let t = unsafe { *ts };
    Some(t.sec.saturating_mul(1_000_000_000).saturating_add(i64::from(t.nsec)))
}

#[cfg(target_pointer_width = "32")]
fn ts64_arg(orig: *const Timespec64, left: Option<i64>, buf: &mut Timespec64) -> *const Timespec64 {
    match left {
        None => orig,
        Some(n) if Some(n) == ts64_to_ns(orig) => orig,
        Some(n) => {
            *buf = Timespec64 { sec: n / 1_000_000_000, nsec: (n % 1_000_000_000) as i32, pad: 0 };
            buf
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Signal sets: never wait for, nor block, the checkpoint signal.

/// A copy of `set` without the checkpoint signal (or `set` itself when it has none).
fn without_ours(set: *const libc::sigset_t, buf: &mut libc::sigset_t) -> *const libc::sigset_t {
    let sig = CKPT_SIGNAL.load(Relaxed);
    // SAFETY: `set` is the caller's sigset or null.
    if set.is_null() || sig == 0 || unsafe { libc::sigismember(set, sig) } != 1 {
        return set;
    }
    // SAFETY: copying the caller's valid sigset into ours.
    unsafe {
        *buf = *set;
        libc::sigdelset(buf, sig);
    }
    buf
}

fn empty_set() -> libc::sigset_t {
    // SAFETY: an all-zero sigset_t is the empty set.
    unsafe { core::mem::zeroed() }
}

// ---------------------------------------------------------------------------------------------
// fd multiplexing.

#[no_mangle]
pub unsafe extern "C" fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) -> c_int {
    let Some(f) = real::poll() else { return no_real() };
    // SAFETY: forwarding the caller's arguments; only the timeout changes.
    again(ms_to_ns(timeout), |left| unsafe { f(fds, n, ns_to_ms(left)) })
}

#[no_mangle]
pub unsafe extern "C" fn __poll_chk(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int, len: usize) -> c_int {
    let Some(f) = real::poll_chk() else { return no_real() };
    // SAFETY: forwarding the caller's arguments (the C library checks `len`).
    again(ms_to_ns(timeout), |left| unsafe { f(fds, n, ns_to_ms(left), len) })
}

#[no_mangle]
pub unsafe extern "C" fn ppoll(
    fds: *mut libc::pollfd,
    n: libc::nfds_t,
    ts: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    let Some(f) = real::ppoll() else { return no_real() };
    let mut set = empty_set();
    let mask = without_ours(mask, &mut set);
    let mut buf = ns_to_ts(0);
    // SAFETY: forwarding the caller's arguments with our timeout and mask copies.
    again(ts_to_ns(ts), |left| unsafe { f(fds, n, ts_arg(ts, left, &mut buf), mask) })
}

#[no_mangle]
pub unsafe extern "C" fn __ppoll_chk(
    fds: *mut libc::pollfd,
    n: libc::nfds_t,
    ts: *const libc::timespec,
    mask: *const libc::sigset_t,
    len: usize,
) -> c_int {
    let Some(f) = real::ppoll_chk() else { return no_real() };
    let mut set = empty_set();
    let mask = without_ours(mask, &mut set);
    let mut buf = ns_to_ts(0);
    // SAFETY: as ppoll.
    again(ts_to_ns(ts), |left| unsafe { f(fds, n, ts_arg(ts, left, &mut buf), mask, len) })
}

#[cfg(target_pointer_width = "32")]
#[no_mangle]
pub unsafe extern "C" fn __ppoll64(
    fds: *mut libc::pollfd,
    n: libc::nfds_t,
    ts: *const Timespec64,
    mask: *const libc::sigset_t,
) -> c_int {
    let Some(f) = real::ppoll64() else { return no_real() };
    let mut set = empty_set();
    let mask = without_ours(mask, &mut set);
    let mut buf = Timespec64::ZERO;
    // SAFETY: as ppoll.
    again(ts64_to_ns(ts), |left| unsafe { f(fds, n, ts64_arg(ts, left, &mut buf), mask) })
}

/// select's timeout: Linux writes the time left into it, so a call made again gets the time
/// left written there by us.
#[allow(clippy::useless_conversion)]
fn tv_to_ns(tv: *const libc::timeval) -> Option<i64> {
    if tv.is_null() {
        return None;
    }
    // SAFETY: the caller's non-null timeval.
    let t = unsafe { *tv };
    Some(i64::from(t.tv_sec).saturating_mul(1_000_000_000).saturating_add(i64::from(t.tv_usec) * 1000))
}

fn set_tv(tv: *mut libc::timeval, left: Option<i64>) {
    if let (false, Some(n)) = (tv.is_null(), left) {
        if Some(n) != tv_to_ns(tv) {
            // SAFETY: the caller's non-null timeval, which select may write.
            unsafe {
                *tv = libc::timeval { tv_sec: (n / 1_000_000_000) as _, tv_usec: ((n % 1_000_000_000) / 1000) as _ }
            };
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn select(
    n: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    tv: *mut libc::timeval,
) -> c_int {
    let Some(f) = real::select() else { return no_real() };
    // The sets are rewritten by the kernel only on success, so a call made again sees the
    // program's own sets.
    again(tv_to_ns(tv), |left| {
        set_tv(tv, left);
        // SAFETY: forwarding the caller's arguments.
        unsafe { f(n, r, w, e, tv) }
    })
}

/// glibc's `struct __timeval64` on i686.
#[cfg_attr(target_pointer_width = "64", allow(dead_code))]
#[repr(C)]
pub struct Timeval64 {
    sec: i64,
    usec: i64,
}

#[cfg(target_pointer_width = "32")]
#[no_mangle]
pub unsafe extern "C" fn __select64(
    n: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    tv: *mut Timeval64,
) -> c_int {
    let Some(f) = real::select64() else { return no_real() };
    // SAFETY: the caller's timeval or null.
    let total = (!tv.is_null()).then(|| unsafe { (*tv).sec.saturating_mul(1_000_000_000) + (*tv).usec * 1000 });
    again(total, |left| {
        if let (false, Some(l)) = (tv.is_null(), left) {
            if Some(l) != total {
                // SAFETY: the caller's non-null timeval, which select may write.
                unsafe { *tv = Timeval64 { sec: l / 1_000_000_000, usec: (l % 1_000_000_000) / 1000 } };
            }
        }
        // SAFETY: forwarding the caller's arguments.
        unsafe { f(n, r, w, e, tv) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn pselect(
    n: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    ts: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    let Some(f) = real::pselect() else { return no_real() };
    let mut set = empty_set();
    let mask = without_ours(mask, &mut set);
    let mut buf = ns_to_ts(0);
    // SAFETY: forwarding the caller's arguments with our timeout and mask copies.
    again(ts_to_ns(ts), |left| unsafe { f(n, r, w, e, ts_arg(ts, left, &mut buf), mask) })
}

#[cfg(target_pointer_width = "32")]
#[no_mangle]
pub unsafe extern "C" fn __pselect64(
    n: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    ts: *const Timespec64,
    mask: *const libc::sigset_t,
) -> c_int {
    let Some(f) = real::pselect64() else { return no_real() };
    let mut set = empty_set();
    let mask = without_ours(mask, &mut set);
    let mut buf = Timespec64::ZERO;
    // SAFETY: as pselect.
    again(ts64_to_ns(ts), |left| unsafe { f(n, r, w, e, ts64_arg(ts, left, &mut buf), mask) })
}

#[no_mangle]
pub unsafe extern "C" fn epoll_wait(ep: c_int, ev: *mut libc::epoll_event, max: c_int, timeout: c_int) -> c_int {
    let Some(f) = real::epoll_wait() else { return no_real() };
    // SAFETY: forwarding the caller's arguments; only the timeout changes.
    again(ms_to_ns(timeout), |left| unsafe { f(ep, ev, max, ns_to_ms(left)) })
}

#[no_mangle]
pub unsafe extern "C" fn epoll_pwait(
    ep: c_int,
    ev: *mut libc::epoll_event,
    max: c_int,
    timeout: c_int,
    mask: *const libc::sigset_t,
) -> c_int {
    let Some(f) = real::epoll_pwait() else { return no_real() };
    let mut set = empty_set();
    let mask = without_ours(mask, &mut set);
    // SAFETY: forwarding the caller's arguments with our timeout and mask.
    again(ms_to_ns(timeout), |left| unsafe { f(ep, ev, max, ns_to_ms(left), mask) })
}

#[no_mangle]
pub unsafe extern "C" fn epoll_pwait2(
    ep: c_int,
    ev: *mut libc::epoll_event,
    max: c_int,
    ts: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    let Some(f) = real::epoll_pwait2() else { return no_real() };
    let mut set = empty_set();
    let mask = without_ours(mask, &mut set);
    let mut buf = ns_to_ts(0);
    // SAFETY: forwarding the caller's arguments with our timeout and mask copies.
    again(ts_to_ns(ts), |left| unsafe { f(ep, ev, max, ts_arg(ts, left, &mut buf), mask) })
}

#[cfg(target_pointer_width = "32")]
#[no_mangle]
pub unsafe extern "C" fn __epoll_pwait2_time64(
    ep: c_int,
    ev: *mut libc::epoll_event,
    max: c_int,
    ts: *const Timespec64,
    mask: *const libc::sigset_t,
) -> c_int {
    let Some(f) = real::epoll_pwait2_time64() else { return no_real() };
    let mut set = empty_set();
    let mask = without_ours(mask, &mut set);
    let mut buf = Timespec64::ZERO;
    // SAFETY: as epoll_pwait2.
    again(ts64_to_ns(ts), |left| unsafe { f(ep, ev, max, ts64_arg(ts, left, &mut buf), mask) })
}

// ---------------------------------------------------------------------------------------------
// Waiting for signals.

#[no_mangle]
pub unsafe extern "C" fn sigtimedwait(
    set: *const libc::sigset_t,
    info: *mut libc::siginfo_t,
    ts: *const libc::timespec,
) -> c_int {
    let Some(f) = real::sigtimedwait() else { return no_real() };
    let mut s = empty_set();
    let set = without_ours(set, &mut s);
    let mut buf = ns_to_ts(0);
    // SAFETY: forwarding the caller's arguments with our set and timeout copies.
    again(ts_to_ns(ts), |left| unsafe { f(set, info, ts_arg(ts, left, &mut buf)) })
}

#[cfg(target_pointer_width = "32")]
#[no_mangle]
pub unsafe extern "C" fn __sigtimedwait64(
    set: *const libc::sigset_t,
    info: *mut libc::siginfo_t,
    ts: *const Timespec64,
) -> c_int {
    let Some(f) = real::sigtimedwait64() else { return no_real() };
    let mut s = empty_set();
    let set = without_ours(set, &mut s);
    let mut buf = Timespec64::ZERO;
    // SAFETY: as sigtimedwait.
    again(ts64_to_ns(ts), |left| unsafe { f(set, info, ts64_arg(ts, left, &mut buf)) })
}

#[no_mangle]
pub unsafe extern "C" fn sigwaitinfo(set: *const libc::sigset_t, info: *mut libc::siginfo_t) -> c_int {
    let Some(f) = real::sigwaitinfo() else { return no_real() };
    let mut s = empty_set();
    let set = without_ours(set, &mut s);
    // SAFETY: forwarding the caller's arguments with our set copy.
    again(None, |_| unsafe { f(set, info) })
}

#[no_mangle]
pub unsafe extern "C" fn sigsuspend(mask: *const libc::sigset_t) -> c_int {
    let Some(f) = real::sigsuspend() else { return no_real() };
    let mut s = empty_set();
    let mask = without_ours(mask, &mut s);
    // SAFETY: forwarding the caller's mask, with our signal left unblocked.
    again(None, |_| unsafe { f(mask) })
}

#[no_mangle]
pub extern "C" fn pause() -> c_int {
    let Some(f) = real::pause() else { return no_real() };
    // SAFETY: no arguments.
    again(None, |_| unsafe { f() })
}

// ---------------------------------------------------------------------------------------------
// System V IPC.

#[no_mangle]
pub unsafe extern "C" fn msgrcv(id: c_int, buf: *mut c_void, size: usize, typ: libc::c_long, flags: c_int) -> isize {
    let Some(f) = real::msgrcv() else { return no_real() };
    // SAFETY: forwarding the caller's arguments.
    again(None, |_| unsafe { f(id, buf, size, typ, flags) })
}

#[no_mangle]
pub unsafe extern "C" fn msgsnd(id: c_int, buf: *const c_void, size: usize, flags: c_int) -> c_int {
    let Some(f) = real::msgsnd() else { return no_real() };
    // SAFETY: forwarding the caller's arguments.
    again(None, |_| unsafe { f(id, buf, size, flags) })
}

#[no_mangle]
pub unsafe extern "C" fn semop(id: c_int, ops: *mut libc::sembuf, n: usize) -> c_int {
    let Some(f) = real::semop() else { return no_real() };
    // SAFETY: forwarding the caller's arguments.
    let r = again(None, |_| unsafe { f(id, ops, n) });
    if r == 0 {
        // SAFETY: the n sembufs the kernel accepted.
        unsafe { crate::sem_calls::noted(id, ops, n) };
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn semtimedop(id: c_int, ops: *mut libc::sembuf, n: usize, ts: *const libc::timespec) -> c_int {
    let Some(f) = real::semtimedop() else { return no_real() };
    let mut buf = ns_to_ts(0);
    // SAFETY: forwarding the caller's arguments with our timeout copy.
    let r = again(ts_to_ns(ts), |left| unsafe { f(id, ops, n, ts_arg(ts, left, &mut buf)) });
    if r == 0 {
        // SAFETY: the n sembufs the kernel accepted.
        unsafe { crate::sem_calls::noted(id, ops, n) };
    }
    r
}

#[cfg(target_pointer_width = "32")]
#[no_mangle]
pub unsafe extern "C" fn __semtimedop64(id: c_int, ops: *mut libc::sembuf, n: usize, ts: *const Timespec64) -> c_int {
    let Some(f) = real::semtimedop64() else { return no_real() };
    let mut buf = Timespec64::ZERO;
    // SAFETY: as semtimedop.
    let r = again(ts64_to_ns(ts), |left| unsafe { f(id, ops, n, ts64_arg(ts, left, &mut buf)) });
    if r == 0 {
        // SAFETY: the n sembufs the kernel accepted.
        unsafe { crate::sem_calls::noted(id, ops, n) };
    }
    r
}

// ---------------------------------------------------------------------------------------------
// Sockets with a timeout (SO_RCVTIMEO/SO_SNDTIMEO): the kernel fails them with EINTR instead of
// restarting them. A call made again waits its whole socket timeout again (the timeout is a
// socket option, not an argument).

#[no_mangle]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, len: usize, flags: c_int) -> isize {
    let Some(f) = real::recv() else { return no_real() };
    // SAFETY: forwarding the caller's arguments.
    again(None, |_| unsafe { f(fd, buf, len, flags) })
}

#[no_mangle]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    len: usize,
    flags: c_int,
    addr: *mut libc::sockaddr,
    alen: *mut libc::socklen_t,
) -> isize {
    let Some(f) = real::recvfrom() else { return no_real() };
    // SAFETY: forwarding the caller's arguments.
    again(None, |_| unsafe { f(fd, buf, len, flags, addr, alen) })
}

#[no_mangle]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> isize {
    let Some(f) = real::recvmsg() else { return no_real() };
    // SAFETY: forwarding the caller's arguments.
    again(None, |_| unsafe { f(fd, msg, flags) })
}

#[cfg(target_pointer_width = "32")]
#[no_mangle]
pub unsafe extern "C" fn __recvmsg64(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> isize {
    let Some(f) = real::recvmsg64() else { return no_real() };
    // SAFETY: forwarding the caller's arguments.
    again(None, |_| unsafe { f(fd, msg, flags) })
}

#[no_mangle]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, len: usize, flags: c_int) -> isize {
    let Some(f) = real::send() else { return no_real() };
    // SAFETY: forwarding the caller's arguments.
    again(None, |_| unsafe { f(fd, buf, len, flags) })
}

#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    len: usize,
    flags: c_int,
    addr: *const libc::sockaddr,
    alen: libc::socklen_t,
) -> isize {
    let Some(f) = real::sendto() else { return no_real() };
    // SAFETY: forwarding the caller's arguments.
    again(None, |_| unsafe { f(fd, buf, len, flags, addr, alen) })
}

#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> isize {
    let Some(f) = real::sendmsg() else { return no_real() };
    // SAFETY: forwarding the caller's arguments.
    again(None, |_| unsafe { f(fd, msg, flags) })
}

#[no_mangle]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut libc::sockaddr, alen: *mut libc::socklen_t) -> c_int {
    let Some(f) = real::accept() else { return no_real() };
    // SAFETY: forwarding the caller's arguments.
    again(None, |_| unsafe { f(fd, addr, alen) })
}

#[no_mangle]
pub unsafe extern "C" fn accept4(fd: c_int, addr: *mut libc::sockaddr, alen: *mut libc::socklen_t, fl: c_int) -> c_int {
    let Some(f) = real::accept4() else { return no_real() };
    // SAFETY: forwarding the caller's arguments.
    again(None, |_| unsafe { f(fd, addr, alen, fl) })
}
