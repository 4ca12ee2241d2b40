//! `Exclusive<T>`: static state that one thread at a time may use, checked at run time, so that
//! the library's fixed tables in .bss are reached through a safe API instead of `&'static mut`.
//!
//! Rules: async-signal-safe (one atomic swap per access, no locks, no allocation). A second,
//! overlapping access (another thread, or re-entry from a signal handler) is a bug: it prints
//! one line and aborts rather than alias the data.
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

pub struct Exclusive<T> {
    busy: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through `with`, which holds `busy` for the whole access, so
// no two threads ever hold a reference to it at once; T: Send because it moves between threads.
unsafe impl<T: Send> Sync for Exclusive<T> {}

impl<T> Exclusive<T> {
    pub const fn new(v: T) -> Self {
        Exclusive { busy: AtomicBool::new(false), value: UnsafeCell::new(v) }
    }

    /// Runs `f` with the value. Never nest two `with` on the same cell.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        if self.busy.swap(true, Ordering::Acquire) {
            crate::log::raw_error(b"internal error: overlapping use of a libdmtcp table; aborting");
            crate::sys::abort();
        }
        // SAFETY: `busy` was false and is now ours: nobody else holds a reference to the value
        // until we clear it below.
        let r = f(unsafe { &mut *self.value.get() });
        self.busy.store(false, Ordering::Release);
        r
    }
}
