//! The inotify wrappers: `inotify_init`, `inotify_init1`, `inotify_add_watch` and
//! `inotify_rm_watch`, which make the same system calls and note, for each watch, the path the
//! program gave (made absolute) and its mask, in a fixed table (`WATCHES`).
//!
//! Why a wrapper here, when the other event kinds are discovered from the kernel: an inotify
//! watch is on an inode, and the kernel tells which (`/proc/self/fdinfo`: wd, inode, device,
//! mask, and a file handle that only CAP_DAC_READ_SEARCH may open), but not by which path; a
//! restart must add the watch again by path. So the wrapper notes the path, and
//! `resources::inotify` takes the watches that exist, their masks and numbers from the kernel at
//! checkpoint and the path from this table, checked against the watch's inode. The wrappers
//! also note the highest watch descriptor each instance handed out, so the next one after a
//! restart is the one the program would have got.
//!
//! Rules: C-ABI entry points, callable from any thread and before our constructor. While a
//! wrapper uses the table it blocks every signal (the checkpoint signal included, so no thread
//! is stopped while it holds the table, and no handler of the program re-enters it) and holds a
//! spin lock against other threads; the checkpoint thread reads the table only while every
//! other thread is stopped (`with_watches`). errno is the system call's, as from the C library.
use crate::cell::Exclusive;
use crate::cstr::Fixed;
use crate::sys::{self, events as ev};
use core::ffi::{c_char, c_int, CStr};
use core::sync::atomic::{AtomicBool, Ordering};

pub const MAX_WATCHES: usize = 1024;
pub const MAX_INSTANCES: usize = 64;
pub const PATH_LEN: usize = 512;

pub struct Watch {
    pub used: bool,
    /// The inotify fd it was added through.
    pub fd: c_int,
    pub wd: c_int,
    /// The mask the program gave (flags such as IN_DONT_FOLLOW included).
    pub mask: u32,
    /// The absolute path; empty if it did not fit.
    pub path: Fixed<PATH_LEN>,
}

/// The highest watch descriptor the instance at `fd` handed out.
#[derive(Clone, Copy)]
pub struct Instance {
    pub fd: c_int,
    pub last_wd: c_int,
}

pub struct Watches {
    pub w: [Watch; MAX_WATCHES],
    pub inst: [Instance; MAX_INSTANCES],
    /// Watches that did not fit in the table (reported at checkpoint).
    pub overflow: usize,
}

static WATCHES: Exclusive<Watches> = Exclusive::new(Watches {
    w: [const { Watch { used: false, fd: -1, wd: -1, mask: 0, path: Fixed::new() } }; MAX_WATCHES],
    inst: [Instance { fd: -1, last_wd: 0 }; MAX_INSTANCES],
    overflow: 0,
});
static LOCK: AtomicBool = AtomicBool::new(false);

/// Runs `f` on the table with every signal blocked and the lock held.
fn locked<R>(f: impl FnOnce(&mut Watches) -> R) -> R {
    let old = sys::set_sigmask(&sys::full_sigset());
    while LOCK.swap(true, Ordering::Acquire) {
        core::hint::spin_loop();
    }
    let r = WATCHES.with(f);
    LOCK.store(false, Ordering::Release);
    sys::set_sigmask(&old);
    r
}

/// The table, for the checkpoint thread while every other thread is stopped (and after a
/// restart, before they run).
pub fn with_watches<R>(f: impl FnOnce(&mut Watches) -> R) -> R {
    WATCHES.with(f)
}

impl Watches {
    /// A new instance at `fd`: what was noted for an older one at that number goes.
    fn forget_fd(&mut self, fd: c_int) {
        for w in self.w.iter_mut().filter(|w| w.used && w.fd == fd) {
            w.used = false;
        }
        for i in self.inst.iter_mut().filter(|i| i.fd == fd) {
            i.fd = -1;
        }
    }

    fn note(&mut self, fd: c_int, wd: c_int, mask: u32, path: &[u8]) {
        match self.inst.iter_mut().find(|i| i.fd == fd) {
            Some(i) => i.last_wd = i.last_wd.max(wd),
            None => {
                if let Some(i) = self.inst.iter_mut().find(|i| i.fd < 0) {
                    *i = Instance { fd, last_wd: wd };
                }
            }
        }
        let slot = match self.w.iter().position(|w| w.used && w.fd == fd && w.wd == wd) {
            Some(k) => {
                // The same inode again: the kernel replaced (or, with IN_MASK_ADD, extended) its
                // mask; the kernel's mask is read at checkpoint, only the flags count here.
                self.w[k].mask = mask;
                return;
            }
            None => self.w.iter().position(|w| !w.used),
        };
        let Some(k) = slot else {
            self.overflow += 1;
            return;
        };
        let w = &mut self.w[k];
        *w = Watch { used: true, fd, wd, mask, path: Fixed::new() };
        if path.first() != Some(&b'/') {
            let mut cwd = [0u8; PATH_LEN];
            if let Ok(n) = sys::getcwd(&mut cwd) {
                w.path.push(&cwd[..n]);
                if n > 1 {
                    w.path.push(b"/");
                }
            }
        }
        if !w.path.push(path) || path.is_empty() {
            w.path.clear();
        }
    }

    fn forget(&mut self, fd: c_int, wd: c_int) {
        for w in self.w.iter_mut().filter(|w| w.used && w.fd == fd && w.wd == wd) {
            w.used = false;
        }
    }
}

fn ret(r: Result<c_int, sys::Errno>) -> c_int {
    match r {
        Ok(v) => v,
        Err(e) => {
            sys::set_errno(e);
            -1
        }
    }
}

#[no_mangle]
pub extern "C" fn inotify_init() -> c_int {
    inotify_init1(0)
}

#[no_mangle]
pub extern "C" fn inotify_init1(flags: c_int) -> c_int {
    let r = ev::inotify_init1(flags);
    if let Ok(fd) = r {
        sys::keep_errno(|| locked(|t| t.forget_fd(fd)));
    }
    ret(r)
}

/// # Safety
/// `path` is a NUL-terminated string, as for inotify_add_watch(2).
#[no_mangle]
pub unsafe extern "C" fn inotify_add_watch(fd: c_int, path: *const c_char, mask: u32) -> c_int {
    if path.is_null() {
        sys::set_errno(libc::EFAULT);
        return -1;
    }
    // SAFETY: the caller passes a NUL-terminated string (inotify_add_watch(2)).
    let p = unsafe { CStr::from_ptr(path) };
    let old = sys::set_sigmask(&sys::full_sigset());
    // The call and the note under one mask, so that no checkpoint falls between them.
    let r = ev::inotify_add_watch(fd, p, mask);
    if let Ok(wd) = r {
        sys::keep_errno(|| locked(|t| t.note(fd, wd, mask, p.to_bytes())));
    }
    sys::set_sigmask(&old);
    ret(r)
}

#[no_mangle]
pub extern "C" fn inotify_rm_watch(fd: c_int, wd: c_int) -> c_int {
    let old = sys::set_sigmask(&sys::full_sigset());
    let r = ev::inotify_rm_watch(fd, wd);
    if r.is_ok() {
        sys::keep_errno(|| locked(|t| t.forget(fd, wd)));
    }
    sys::set_sigmask(&old);
    ret(r.map(|()| 0))
}
