//! Stopping and resuming the program's threads around a checkpoint, and each thread's own part
//! of a restart.
//!
//! The checkpoint thread sends the checkpoint signal to every other thread (found in
//! /proc/self/task); a thread that blocks it but not glibc's SIGSETXID (glibc's SIGEV_THREAD
//! helper blocks everything else) gets SIGSETXID instead, which our handler takes only when
//! the checkpoint thread aimed it at that thread (`SETXID_TARGETS`) and passes on to glibc's
//! otherwise. Each one, in `on_signal`, records what the kernel keeps per thread (TLS,
//! the clear-child-tid address, the robust futex list, rseq, the alternate signal stack, its
//! name, pending signals) in a slot, with its resume point (`arch::thread_resume_regs`: an asm
//! stub below the kernel's signal frame, see `arch`), and waits on a futex. After a checkpoint
//! the checkpoint thread bumps `RESUME_GEN` and they return from the handler. After a restart
//! the restorer resumes each one in that stub, which calls `restarted`: it gives the kernel its
//! per-thread state back, checks in, waits for the same release, does what the handler would
//! have done on its way out, and the stub returns from the signal with rt_sigreturn on the
//! kernel's frame (every register and the signal mask). No Rust frame is resumed.
//!
//! Rules: everything in `on_signal` and `restarted` is async-signal-safe: raw system calls and
//! atomics, no locks, no allocation, errno preserved. Slots live in .bss; each thread writes
//! only its own.
use crate::{arch, sys::thread};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize, Ordering::*};

pub const MAX_THREADS: usize = 1024;

/// What one thread leaves for the image and for its own restart.
#[repr(C)]
pub struct Slot {
    pub regs: [u64; 16],
    pub tid: i32,
    pub flags: u32,
    /// x86_64: fs base in the first 8 bytes; i686: struct user_desc.
    pub tls: [u8; 16],
    /// x86_64: gs base; i686: the %gs selector.
    pub gs: u64,
    pub tid_addr: usize,
    pub robust_head: usize,
    pub robust_len: usize,
    pub altstack: libc::stack_t,
    pub rseq_area: usize,
    pub comm: [u8; 16],
    pub pending: u64,
    /// capget data (effective, permitted, inheritable for two 32-bit words).
    pub caps: [u32; 6],
    /// After a restart (user threads): the stack pointer rt_sigreturn wants, the handler's
    /// ucontext, when it was entered (for `interrupt::after_checkpoint`, when `mark`), the
    /// program's errno, and the release generation the thread waits out.
    pub sigret_sp: usize,
    pub uc: usize,
    pub entered_ns: u64,
    pub mark: bool,
    pub errno: i32,
    pub gen: u32,
}

impl Slot {
    const EMPTY: Slot = Slot {
        regs: [0; 16],
        tid: 0,
        flags: 0,
        tls: [0; 16],
        gs: 0,
        tid_addr: 0,
        robust_head: 0,
        robust_len: 0,
        altstack: libc::stack_t { ss_sp: core::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 },
        rseq_area: 0,
        comm: [0; 16],
        pending: 0,
        caps: [0; 6],
        sigret_sp: 0,
        uc: 0,
        entered_ns: 0,
        mark: false,
        errno: 0,
        gen: 0,
    };
}

struct Slots(UnsafeCell<[Slot; MAX_THREADS + 1]>);
// SAFETY: slot i is written only by the thread that took index i (fetch_add on NEXT) or, for
// the last slot, by the checkpoint thread; it is read by the checkpoint thread only after that
// thread has announced itself through SUSPENDED (release/acquire).
unsafe impl Sync for Slots {}
static SLOTS: Slots = Slots(UnsafeCell::new([const { Slot::EMPTY }; MAX_THREADS + 1]));

/// Index of the checkpoint thread's own slot.
pub const CKPT_SLOT: usize = MAX_THREADS;

/// Slot `i`, to read: by the checkpoint thread once the thread has stopped (SUSPENDED), or by
/// a thread its own slot after a restart. Nobody writes it meanwhile (see `Slots`).
pub fn slot(i: usize) -> &'static Slot {
    // SAFETY: see `Slots` and above: no writer runs while a reader holds this.
    unsafe { &(*SLOTS.0.get())[i] }
}

/// Slot `i`, to fill.
///
/// # Safety
/// Only the thread that owns index `i` (its fetch_add on NEXT, or the checkpoint thread for
/// CKPT_SLOT), before it announces itself; no reference from `slot(i)` is alive.
#[allow(clippy::mut_from_ref)]
unsafe fn slot_mut(i: usize) -> &'static mut Slot {
    // SAFETY: per the contract, this is the only reference to slot i.
    unsafe { &mut (*SLOTS.0.get())[i] }
}

/// The checkpoint signal, once installed (0 before).
pub static CKPT_SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Tid of the checkpoint thread, which never stops itself.
pub static CKPT_TID: AtomicI32 = AtomicI32::new(0);
/// True while the checkpoint thread is stopping threads: only then is the signal ours.
static SUSPENDING: AtomicU32 = AtomicU32::new(0);
/// Next free slot.
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// How many threads have stopped (futex word).
static SUSPENDED: AtomicU32 = AtomicU32::new(0);
/// How many threads have checked in after a restart (futex word).
static RESTORED: AtomicU32 = AtomicU32::new(0);
/// Bumped to release stopped threads (futex word).
static RESUME_GEN: AtomicU32 = AtomicU32::new(0);
/// Bumped at each checkpoint, so sleep wrappers can tell our interruption from others.
pub static EPOCH: AtomicU32 = AtomicU32::new(0);
/// glibc's rseq registration (`__rseq_offset`, `__rseq_size`), found at start-up; 0 = none.
pub static RSEQ_OFFSET: AtomicUsize = AtomicUsize::new(0);
pub static RSEQ_SIZE: AtomicU32 = AtomicU32::new(0);

pub use crate::sys::thread::gettid;
use crate::sys::thread::{futex_wait, futex_wait_ms, futex_wake, tgkill};

/// Records this thread's kernel state in `s` (TLS, tid address, robust list, rseq, altstack,
/// name, pending signals). Async-signal-safe.
pub fn capture_thread(s: &mut Slot) {
    s.tid = gettid();
    s.regs = [0; 16];
    let tls = arch::capture_tls();
    s.tls = tls.tls;
    s.gs = tls.gs;
    s.tid_addr = thread::get_tid_address();
    (s.robust_head, s.robust_len) = thread::get_robust_list();
    thread::get_altstack(&mut s.altstack);
    s.comm = [0; 16];
    thread::get_name(&mut s.comm);
    s.pending = crate::sys::sigpending();
    thread::capget(&mut s.caps);
    let off = RSEQ_OFFSET.load(Relaxed);
    s.rseq_area = if RSEQ_SIZE.load(Relaxed) > 0 { tls.thread_pointer.wrapping_add(off) } else { 0 };
}

/// Gives the kernel this thread's state back after a restart. Async-signal-safe.
pub fn restore_thread(s: &Slot) {
    // Every address comes from the same thread's state at checkpoint time, in memory that the
    // restorer mapped back at the same addresses.
    if s.tid_addr != 0 {
        thread::set_tid_address(s.tid_addr);
    }
    if s.robust_head != 0 {
        thread::set_robust_list(s.robust_head, s.robust_len);
    }
    if s.rseq_area != 0 {
        let size = RSEQ_SIZE.load(Relaxed);
        let len = if size <= 32 { 32 } else { (size + 31) & !31 };
        if let Err(e) = thread::rseq_register(s.rseq_area, len, thread::RSEQ_SIG) {
            trace!("thread {}: cannot register rseq again: {}", s.tid, crate::log::Bytes(crate::sys::strerror(e)));
        }
    }
    if s.altstack.ss_flags & libc::SS_DISABLE == 0 {
        let ss = libc::stack_t { ss_sp: s.altstack.ss_sp, ss_flags: 0, ss_size: s.altstack.ss_size };
        thread::set_altstack(&ss);
    }
    thread::set_name(&s.comm);
    // Back to the capabilities this thread had; this also drops the CAP_CHECKPOINT_RESTORE
    // that the restorer needed. Ambient capabilities are not carried over.
    thread::clear_ambient_caps();
    thread::capset(&s.caps);
}

/// How a thread came into `on_signal`, for its way out after a restart: the handler's
/// arguments, and when the checkpoint signal's handler was entered (None for SIGSETXID, whose
/// handler does not call `interrupt::after_checkpoint`).
pub struct Entry {
    pub info: *const libc::siginfo_t,
    pub uc: *mut core::ffi::c_void,
    pub entered_ns: Option<u64>,
}

/// The checkpoint signal's handler, in every thread. Returns true when the signal was ours.
pub fn on_signal(e: Entry) -> bool {
    let errno = crate::sys::errno();
    let info = e.info;
    if SUSPENDING.load(Acquire) == 0 || gettid() == CKPT_TID.load(Relaxed) {
        return false;
    }
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let (code, pid) = unsafe { ((*info).si_code, (*info).si_pid()) };
    if code != libc::SI_TKILL || pid != crate::sys::getpid() {
        return false;
    }
    let gen = RESUME_GEN.load(Acquire);
    let idx = NEXT.fetch_add(1, AcqRel);
    if idx >= MAX_THREADS {
        SUSPENDED.fetch_add(1, Release);
        futex_wake(&SUSPENDED);
        while RESUME_GEN.load(Acquire) == gen {
            futex_wait(&RESUME_GEN, gen);
        }
        return true;
    }
    stop_here(idx, gen, &e, errno);
    true
}

/// Threads that block the checkpoint signal and were sent SIGSETXID instead (0 = free).
static SETXID_TARGETS: [AtomicI32; 64] = [const { AtomicI32::new(0) }; 64];

/// glibc's SIGSETXID in our handler: ours only if the checkpoint thread sent it to this very
/// thread in place of the checkpoint signal (glibc's own setxid signals go on to glibc).
pub fn on_setxid(info: *const libc::siginfo_t, uc: *mut core::ffi::c_void) -> bool {
    let me = gettid();
    let took = SETXID_TARGETS.iter().any(|t| t.compare_exchange(me, 0, AcqRel, Relaxed).is_ok());
    took && on_signal(Entry { info, uc, entered_ns: None })
}

/// The mask of blocked signals of thread `tid` (SigBlk in /proc/self/task/<tid>/status), or 0.
fn blocked_signals(tid: i32) -> u64 {
    let mut path = crate::cstr::Fixed::<64>::new();
    let mut num = [0u8; 20];
    path.push(b"/proc/self/task/");
    path.push(crate::cstr::fmt_u64(tid as u64, &mut num));
    path.push(b"/status");
    let Ok(fd) = crate::sys::open_read(path.as_cstr()) else { return 0 };
    let mut buf = [0u8; 4096];
    let mut n = 0;
    while n < buf.len() {
        match crate::sys::read_some(fd, &mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    crate::sys::close(fd);
    let line = buf[..n].split(|&c| c == b'\n').find_map(|l| l.strip_prefix(b"SigBlk:"));
    let hex = line.map(|l| l.trim_ascii()).unwrap_or(b"");
    hex.iter().try_fold(0u64, |v, &c| Some(v << 4 | (c as char).to_digit(16)? as u64)).unwrap_or(0)
}

/// The signal that stops thread `tid`: the checkpoint signal, or SIGSETXID (registered in
/// SETXID_TARGETS) when the thread blocks ours but not that one, as glibc's SIGEV_THREAD
/// helper does.
fn stop_signal(tid: i32, sig: i32) -> i32 {
    let setxid = crate::signals::SIGSETXID;
    let blocked = blocked_signals(tid);
    if blocked & (1u64 << (sig - 1)) == 0 || blocked & (1u64 << (setxid - 1)) != 0 {
        return sig;
    }
    for t in &SETXID_TARGETS {
        if t.compare_exchange(0, tid, AcqRel, Relaxed).is_ok() {
            return setxid;
        }
    }
    sig
}

/// Records this thread and its resume point in slot `idx`, then waits for the release.
fn stop_here(idx: usize, gen: u32, e: &Entry, errno: i32) {
    // SAFETY: idx came from this thread's fetch_add on NEXT: the slot is ours alone until we
    // announce ourselves through SUSPENDED.
    let s = unsafe { slot_mut(idx) };
    capture_thread(s);
    (s.regs, s.sigret_sp) = arch::thread_resume_regs(idx, e.info as usize, e.uc as usize);
    s.uc = e.uc as usize;
    s.entered_ns = e.entered_ns.unwrap_or(0);
    s.mark = e.entered_ns.is_some();
    s.errno = errno;
    s.gen = gen;
    SUSPENDED.fetch_add(1, Release);
    futex_wake(&SUSPENDED);
    while RESUME_GEN.load(Acquire) == gen {
        futex_wait(&RESUME_GEN, gen);
    }
}

/// A user thread after a restart, called by the `arch` resume stub on a fresh stack below its
/// signal frame (the restorer recreated it with its old tid and TLS): gives the kernel its
/// state back, checks in, waits for the release, leaves the handler's mark and the program's
/// errno, and returns the stack pointer for the stub's rt_sigreturn.
pub extern "C" fn restarted(idx: usize) -> usize {
    let s = slot(idx);
    restore_thread(s);
    raise_own_pending(s);
    RESTORED.fetch_add(1, Release);
    futex_wake(&RESTORED);
    while RESUME_GEN.load(Acquire) == s.gen {
        futex_wait(&RESUME_GEN, s.gen);
    }
    if s.mark {
        crate::interrupt::after_checkpoint(s.entered_ns, s.uc as *const core::ffi::c_void);
    }
    crate::sys::set_errno(s.errno);
    s.sigret_sp
}

/// Pending signals of this thread alone (not the process's) at checkpoint time are raised
/// again; they stay pending until the thread's own mask allows them.
fn raise_own_pending(s: &Slot) {
    let process = crate::resources::signal_state::process_pending();
    let sig = CKPT_SIGNAL.load(Relaxed);
    for n in 1..64 {
        if s.pending & (1u64 << (n - 1)) != 0 && process & (1u64 << (n - 1)) == 0 && n != sig {
            tgkill(crate::sys::getpid(), s.tid, n);
        }
    }
}

/// Lists this process's tids into `out`; returns how many.
fn list_tasks(out: &mut [i32]) -> usize {
    let mut n = 0;
    crate::sys::for_each_numbered_entry(c"/proc/self/task", |t, _| {
        if n < out.len() {
            out[n] = t as i32;
            n += 1;
        }
    });
    n
}

/// Stops every other thread. Returns how many stopped, or Err with a reason.
pub fn suspend_all() -> Result<usize, &'static str> {
    let me = gettid();
    let pid = crate::sys::getpid();
    let sig = CKPT_SIGNAL.load(Relaxed);
    crate::signals::install_setxid();
    NEXT.store(0, Relaxed);
    SUSPENDED.store(0, Relaxed);
    EPOCH.fetch_add(1, Relaxed);
    SUSPENDING.store(1, Release);
    let mut signaled = [0i32; MAX_THREADS];
    let mut n_sig = 0usize;
    let mut tasks = [0i32; MAX_THREADS + 8];
    let start = crate::sys::now_ms();
    loop {
        let n = list_tasks(&mut tasks);
        if n > MAX_THREADS {
            return Err("too many threads (more than 1024)");
        }
        let mut new = 0;
        for &t in &tasks[..n] {
            if t == me || signaled[..n_sig].contains(&t) {
                continue;
            }
            if tgkill(pid, t, stop_signal(t, sig)) {
                signaled[n_sig] = t;
                n_sig += 1;
                new += 1;
            }
        }
        // Threads that died after being signaled are not waited for.
        let alive_signaled = tasks[..n].iter().filter(|t| signaled[..n_sig].contains(t)).count();
        let done = SUSPENDED.load(Acquire) as usize;
        if new == 0 && done >= alive_signaled {
            break;
        }
        if crate::sys::now_ms() - start > 20_000 {
            return Err("a thread did not stop within 20 s (is the checkpoint signal blocked?)");
        }
        futex_wait_ms(&SUSPENDED, done as u32, 5);
    }
    let n = NEXT.load(Acquire);
    if n > MAX_THREADS {
        return Err("too many threads (more than 1024)");
    }
    Ok(n)
}

/// Releases every stopped thread.
pub fn resume_all() {
    SUSPENDING.store(0, Release);
    // Targets that never took their SIGSETXID (they ended): never ours again.
    for t in &SETXID_TARGETS {
        t.store(0, Relaxed);
    }
    RESUME_GEN.fetch_add(1, AcqRel);
    futex_wake(&RESUME_GEN);
}

/// After a restart: waits until `n` user threads have given the kernel their state back.
pub fn wait_restored(n: usize) {
    loop {
        let r = RESTORED.load(Acquire);
        if r as usize >= n {
            return;
        }
        futex_wait_ms(&RESTORED, r, 100);
    }
}

pub fn reset_restored() {
    RESTORED.store(0, Release);
}

/// Fills the checkpoint thread's own slot: its kernel state, and the resume point at `base`
/// (the frame of `arch::ckpt_thread_start`; a restart calls `ckpt_thread::restarted` there).
pub fn record_ckpt_thread(base: usize) {
    // SAFETY: only the checkpoint thread calls this, and it reads its slot only afterwards.
    let s = unsafe { slot_mut(CKPT_SLOT) };
    capture_thread(s);
    s.flags = dmtcp_proto::image::THREAD_CKPT;
    s.regs = arch::ckpt_resume_regs(base);
}
