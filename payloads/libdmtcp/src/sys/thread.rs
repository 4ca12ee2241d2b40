//! Typed wrappers for the per-thread kernel state that `threads` saves and gives back (tid
//! address, robust futex list, rseq, alternate signal stack, name, capabilities), and the futex
//! and tgkill calls it stops and releases threads with.
//!
//! Rules: raw system calls only (no libc state, no allocation), so every function here is
//! async-signal-safe; each passes only pointers derived from Rust references of the right size.
//! Every unsafe block has a `// SAFETY:` line.
use super::{errno, Errno};
use core::ffi::{c_int, c_long, c_void};
use core::sync::atomic::AtomicU32;

/// prctl(2) option (linux/prctl.h), not in every libc crate version.
const PR_GET_TID_ADDRESS: c_int = 40;
/// `_LINUX_CAPABILITY_VERSION_3` (linux/capability.h): two 32-bit data words.
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
/// The signature word that precedes rseq abort handlers; glibc registers with this value.
pub const RSEQ_SIG: u32 = 0x5305_3053;

/// Sleeps while `*word == val` (FUTEX_WAIT, private, no timeout; may return early).
pub fn futex_wait(word: &AtomicU32, val: u32) {
    futex_wait_until(word, val, core::ptr::null());
}

/// As `futex_wait`, for at most `ms` milliseconds.
pub fn futex_wait_ms(word: &AtomicU32, val: u32, ms: i64) {
    let ts = libc::timespec { tv_sec: (ms / 1000) as _, tv_nsec: ((ms % 1000) * 1_000_000) as _ };
    futex_wait_until(word, val, &ts);
}

/// FUTEX_WAIT with a relative timeout, or none when `ts` is null.
fn futex_wait_until(word: &AtomicU32, val: u32, ts: *const libc::timespec) {
    // SAFETY: FUTEX_WAIT on a valid, aligned u32 that the reference keeps alive; `ts` is null or
    // points at a timespec of the caller's that outlives the call.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG, val, ts);
    }
}

/// Wakes every waiter on `word`.
pub fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a valid u32; wakes every waiter.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, i32::MAX);
    }
}

/// This thread's `pthread_self()`: the same in a forked child as in the parent's forking
/// thread (the child's one thread keeps its descriptor), unlike the tid.
pub fn self_id() -> usize {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::pthread_self() as usize }
}

pub fn gettid() -> i32 {
    // SAFETY: no arguments.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// Sends `sig` to thread `tid` of process `pid`; true on success.
pub fn tgkill(pid: i32, tid: i32, sig: c_int) -> bool {
    // SAFETY: plain system call with integer arguments.
    unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, sig) == 0 }
}

/// This thread's clear-child-tid address (PR_GET_TID_ADDRESS; 0 if none or unknown).
pub fn get_tid_address() -> usize {
    let mut addr: usize = 0;
    // SAFETY: the kernel writes one pointer-sized word into `addr`.
    unsafe { libc::prctl(PR_GET_TID_ADDRESS, &mut addr as *mut usize) };
    addr
}

/// `set_tid_address(addr)`: the address is only stored by the kernel, written at thread exit.
pub fn set_tid_address(addr: usize) {
    // SAFETY: the kernel stores the address; the caller passes the thread's own address from
    // before the checkpoint, mapped back at the same place.
    unsafe { libc::syscall(libc::SYS_set_tid_address, addr) };
}

/// This thread's robust futex list: (head, length); (0, 0) if none.
pub fn get_robust_list() -> (usize, usize) {
    let mut head: usize = 0;
    let mut len: usize = 0;
    // SAFETY: the kernel writes one word into each of `head` and `len`.
    unsafe { libc::syscall(libc::SYS_get_robust_list, 0 as c_long, &mut head as *mut usize, &mut len as *mut usize) };
    (head, len)
}

/// `set_robust_list(head, len)`: the kernel stores the address and walks it at thread exit.
pub fn set_robust_list(head: usize, len: usize) {
    // SAFETY: the kernel only stores the address; the caller passes the thread's own list from
    // before the checkpoint, mapped back at the same place.
    unsafe { libc::syscall(libc::SYS_set_robust_list, head, len) };
}

/// Registers `area` (of `len` bytes) as this thread's rseq area.
pub fn rseq_register(area: usize, len: u32, sig: u32) -> Result<(), Errno> {
    // SAFETY: the kernel stores the address and later writes the cpu id into it; the caller
    // passes the area glibc registered for this thread before the checkpoint, mapped back at
    // the same place.
    if unsafe { libc::syscall(libc::SYS_rseq, area, len, 0, sig) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// An alternate signal stack as sigaltstack(2) describes it.
pub type AltStack = libc::stack_t;

/// This thread's alternate signal stack (ss_flags has SS_DISABLE if none).
pub fn get_altstack(out: &mut AltStack) {
    // SAFETY: the kernel writes one stack_t into `out`.
    unsafe { libc::sigaltstack(core::ptr::null(), out) };
}

/// Installs `ss` as this thread's alternate signal stack.
pub fn set_altstack(ss: &AltStack) {
    // SAFETY: the kernel reads one stack_t; the memory it names is the caller's concern (the
    // thread's own stack from before the checkpoint, mapped back at the same place).
    unsafe { libc::sigaltstack(ss, core::ptr::null_mut()) };
}

/// This thread's name (PR_GET_NAME writes at most 16 bytes, NUL included).
pub fn get_name(out: &mut [u8; 16]) {
    // SAFETY: the kernel writes at most 16 bytes into `out`.
    unsafe { libc::prctl(libc::PR_GET_NAME, out.as_mut_ptr()) };
}

/// Sets this thread's name (PR_SET_NAME reads at most 16 bytes).
pub fn set_name(name: &[u8; 16]) {
    // SAFETY: the kernel reads at most 16 bytes from `name`.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
}

/// This thread's capabilities (capget, version 3: effective, permitted, inheritable for two
/// 32-bit words).
pub fn capget(out: &mut [u32; 6]) {
    let header: [u32; 2] = [LINUX_CAPABILITY_VERSION_3, 0];
    // SAFETY: the kernel reads the 8-byte header and writes two 12-byte data structs (24 bytes).
    unsafe { libc::syscall(libc::SYS_capget, header.as_ptr(), out.as_mut_ptr()) };
}

/// Sets this thread's capabilities (the layout of `capget`).
pub fn capset(caps: &[u32; 6]) {
    let header: [u32; 2] = [LINUX_CAPABILITY_VERSION_3, 0];
    // SAFETY: the kernel reads the 8-byte header and two 12-byte data structs (24 bytes).
    unsafe { libc::syscall(libc::SYS_capset, header.as_ptr(), caps.as_ptr()) };
}

/// Clears this thread's ambient capability set.
pub fn clear_ambient_caps() {
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
}

/// Starts `start` on a new detached thread with a stack of `stack_size` bytes, through
/// `create` (the C library's real pthread_create). The new thread inherits the caller's signal
/// mask. Returns the pthread error number on failure.
pub fn spawn_detached(
    create: crate::real::PthreadCreateFn,
    stack_size: usize,
    start: extern "C" fn(*mut c_void) -> *mut c_void,
) -> Result<(), Errno> {
    // SAFETY: an all-zero pthread_attr_t is storage for pthread_attr_init to initialize.
    let mut attr: libc::pthread_attr_t = unsafe { core::mem::zeroed() };
    let mut tid: libc::pthread_t = 0;
    // SAFETY: attr is initialized before use and destroyed after; tid is valid storage;
    // `create` is libc's pthread_create; `start` matches the start-routine prototype and gets
    // a null argument.
    let r = unsafe {
        libc::pthread_attr_init(&mut attr);
        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        libc::pthread_attr_setstacksize(&mut attr, stack_size);
        let r = create(&mut tid, &attr, start, core::ptr::null_mut());
        libc::pthread_attr_destroy(&mut attr);
        r
    };
    if r == 0 {
        Ok(())
    } else {
        Err(r)
    }
}
