//! Process-wide signal state: the actions of all 64 signals (with the kernel's own struct, so
//! glibc's internal SIGCANCEL and SIGSETXID handlers come back too) and the signals pending for
//! the whole process. Per-thread masks and pending signals belong to `threads`.
//!
//! Rules: hooks run in the checkpoint thread with every other thread stopped; no allocation.
//! `process_pending` is also read by restored threads in the checkpoint signal's handler
//! (an atomic: async-signal-safe).
use super::{Hooks, Phase, NONE};
use crate::cell::Exclusive;
use crate::sys::{self, KernelSigaction, KERNEL_SIGACTION_SIZE, MAX_SIGNAL};
use core::ffi::c_int;
use core::sync::atomic::{AtomicU64, Ordering::*};

pub const HOOKS: Hooks = Hooks { name: "signal state", save, restore, resume, ..NONE };

/// Index = signal number (0 unused).
static ACTIONS: Exclusive<[KernelSigaction; MAX_SIGNAL as usize + 1]> =
    Exclusive::new([[0; KERNEL_SIGACTION_SIZE]; MAX_SIGNAL as usize + 1]);

static PROCESS_PENDING: AtomicU64 = AtomicU64::new(0);

/// Process-wide pending signals at the last checkpoint (bit n-1 for signal n).
pub fn process_pending() -> u64 {
    PROCESS_PENDING.load(Acquire)
}

/// Takes `sig` out of the process-wide signals to raise again after a restart, for a kind that
/// raises it itself in its own way (timers: as the timer's SI_TIMER signal). True if it was
/// pending at the checkpoint.
pub fn take_process_pending(sig: c_int) -> bool {
    let bit = 1u64 << (sig - 1);
    PROCESS_PENDING.fetch_and(!bit, AcqRel) & bit != 0
}

/// Signals whose action can be read and set (not SIGKILL, SIGSTOP).
fn settable() -> impl Iterator<Item = c_int> {
    (1..=MAX_SIGNAL).filter(|&s| s != libc::SIGKILL && s != libc::SIGSTOP)
}

fn save() {
    ACTIONS.with(|actions| {
        for sig in settable() {
            let mut buf = [0u8; KERNEL_SIGACTION_SIZE];
            if sys::kernel_sigaction(sig, None, Some(&mut buf)).is_ok() {
                actions[sig as usize] = buf;
            }
        }
    });
    // The checkpoint thread has every signal blocked and none of its own pending: what
    // rt_sigpending shows here is the process's.
    PROCESS_PENDING.store(sys::sigpending(), Release);
}

fn restore() {
    ACTIONS.with(|actions| {
        for sig in settable() {
            if let Err(e) = sys::kernel_sigaction(sig, Some(&actions[sig as usize]), None) {
                trace!(
                    "after restart: cannot set the action of signal {}: {}",
                    sig,
                    crate::log::Bytes(sys::strerror(e))
                );
            }
        }
    });
}

/// After a restart, re-raises the process-wide signals that were pending at checkpoint time
/// (the checkpoint signal itself excepted).
fn resume(phase: Phase) {
    if phase != Phase::Restarted {
        return;
    }
    let pending = process_pending();
    let ours = crate::threads::CKPT_SIGNAL.load(Relaxed);
    for n in 1..MAX_SIGNAL {
        if pending & (1u64 << (n - 1)) != 0 && n != ours {
            if let Err(e) = sys::kill(sys::getpid(), n) {
                trace!("after restart: cannot raise pending signal {}: {}", n, crate::log::Bytes(sys::strerror(e)));
            }
        }
    }
}
