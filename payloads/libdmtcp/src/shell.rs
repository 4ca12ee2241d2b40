//! `system`, `popen` and `pclose`. glibc runs their shell with its internal posix_spawn (a
//! `clone` plus its internal `execve`), which neither our exec wrappers nor our fork handler
//! see, so the shell would start without the library and never join the computation. Here they
//! are done with `fork` (our fork handler makes the child a worker) and our own `execve`
//! wrapper (the shell gets `LD_PRELOAD`), with the POSIX semantics:
//! - `system(NULL)` is nonzero if `/bin/sh` can be run; `system(cmd)` ignores SIGINT and
//!   SIGQUIT (process-wide, counted across concurrent callers as glibc does) and blocks SIGCHLD
//!   (in the calling thread) while it waits; the child gets the caller's dispositions and mask
//!   back. It returns the wait status, -1 with errno if fork or wait fails; a shell that cannot
//!   be run exits with status 127.
//! - `popen(cmd, "r"|"w"[+"e"])` returns a `FILE*` made with `fdopen` on our end of a pipe;
//!   the child closes the pipes of every other stream popen'ed and not yet pclose'd (a small
//!   fixed table FILE* -> pid, fd, behind a mutex held across the fork, so the child sees it
//!   consistent). `pclose` closes the stream and waits for that child; unknown streams go to
//!   the C library's pclose.
//! - Not registered (`config::active` false): the C library's functions.
//!
//! Differences from glibc: the program's own `pthread_atfork` handlers run in the child (we
//! fork instead of spawning); a thread cancelled inside `system` leaves SIGINT/SIGQUIT ignored.
//!
//! Rules: these run in normal program context (never while threads are stopped or in a signal
//! handler), so libc's `fdopen`/`fclose` may allocate. The child between fork and exec touches
//! only descriptors, signal state and our exec wrapper (no malloc).
use crate::config;
use crate::real::{self, CStrArray};
use crate::sys;
use core::cell::UnsafeCell;
use core::ffi::{c_char, c_int};
use core::ptr::null;

const SHELL: &core::ffi::CStr = c"/bin/sh";
/// Streams popen'ed at once (glibc has no limit; a program with more gets EMFILE).
const MAX_STREAMS: usize = 128;

#[derive(Clone, Copy)]
struct Entry {
    fp: usize,
    pid: libc::pid_t,
    fd: c_int,
}

const FREE: Entry = Entry { fp: 0, pid: 0, fd: -1 };

/// State behind a pthread mutex.
struct Locked<T> {
    mutex: UnsafeCell<libc::pthread_mutex_t>,
    data: UnsafeCell<T>,
}

// SAFETY: `data` is only reached through `with`, which holds the mutex.
unsafe impl<T> Sync for Locked<T> {}

impl<T> Locked<T> {
    const fn new(v: T) -> Self {
        Locked { mutex: UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER), data: UnsafeCell::new(v) }
    }
    /// Runs `f` on the data with the mutex held: the only way to reach it.
    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: a statically initialized mutex that lives forever.
        unsafe { libc::pthread_mutex_lock(self.mutex.get()) };
        // SAFETY: the mutex is held, so no other thread reaches the data until we unlock; `f`
        // cannot keep the reference beyond this call.
        let r = f(unsafe { &mut *self.data.get() });
        // SAFETY: as above; this thread locked it.
        unsafe { libc::pthread_mutex_unlock(self.mutex.get()) };
        r
    }
}

static STREAMS: Locked<[Entry; MAX_STREAMS]> = Locked::new([FREE; MAX_STREAMS]);

struct SavedSignals {
    users: usize,
    int: libc::sigaction,
    quit: libc::sigaction,
}

// SAFETY: an all-zero sigaction is a valid (SIG_DFL) action.
const NO_ACTION: libc::sigaction = unsafe { core::mem::zeroed() };
static SYSTEM_SIGNALS: Locked<SavedSignals> = Locked::new(SavedSignals { users: 0, int: NO_ACTION, quit: NO_ACTION });

// ---------------------------------------------------------------------------------------------
// The exported wrappers.

/// # Safety
/// C caller: `cmd` is NULL or a NUL-terminated string, as for system(3).
#[no_mangle]
pub unsafe extern "C" fn system(cmd: *const c_char) -> c_int {
    if !config::active() {
        return match real::system() {
            // SAFETY: the C library's system with the caller's argument.
            Some(f) => unsafe { f(cmd) },
            None => missing(-1),
        };
    }
    if cmd.is_null() {
        return c_int::from(sys::can_execute(SHELL));
    }
    run_system(cmd)
}

/// # Safety
/// C caller: `cmd` and `mode` are NUL-terminated strings, as for popen(3).
#[no_mangle]
pub unsafe extern "C" fn popen(cmd: *const c_char, mode: *const c_char) -> *mut libc::FILE {
    if !config::active() || cmd.is_null() || mode.is_null() {
        return match real::popen() {
            // SAFETY: the C library's popen with the caller's arguments.
            Some(f) => unsafe { f(cmd, mode) },
            None => missing(core::ptr::null_mut()),
        };
    }
    // SAFETY: per the contract, mode is a valid C string.
    let mode = unsafe { core::ffi::CStr::from_ptr(mode) }.to_bytes();
    // As glibc: letters r, w (exactly one of them) and e, nothing else.
    let read = mode.contains(&b'r');
    let cloexec = mode.contains(&b'e');
    if read == mode.contains(&b'w') || mode.iter().any(|c| !b"rwe".contains(c)) {
        sys::set_errno(libc::EINVAL);
        return core::ptr::null_mut();
    }
    run_popen(cmd, read, cloexec)
}

/// # Safety
/// C caller: `fp` is a stream returned by popen, as for pclose(3).
#[no_mangle]
pub unsafe extern "C" fn pclose(fp: *mut libc::FILE) -> c_int {
    let entry = STREAMS
        .with(|table| table.iter_mut().find(|e| e.fp != 0 && e.fp == fp as usize).map(|e| core::mem::replace(e, FREE)));
    let Some(entry) = entry else {
        return match real::pclose() {
            // SAFETY: not one of ours: the C library's pclose with the caller's stream.
            Some(f) => unsafe { f(fp) },
            None => missing(-1),
        };
    };
    // SAFETY: fp is the stream we made with fdopen and handed out; it is closed once.
    unsafe { libc::fclose(fp) };
    wait_for(entry.pid)
}

fn missing<T>(v: T) -> T {
    error!("cannot find the C library's system/popen/pclose");
    sys::set_errno(libc::ENOSYS);
    v
}

// ---------------------------------------------------------------------------------------------

/// `waitpid(pid, 0)`, retried on EINTR: the status, or -1 with errno.
fn wait_for(pid: libc::pid_t) -> c_int {
    loop {
        match sys::waitpid(pid) {
            Ok((r, status)) if r == pid => return status,
            Err(e) if e != libc::EINTR => return -1,
            _ => {}
        }
    }
}

/// In a forked child: `/bin/sh -c cmd` through our execve wrapper (the shell gets the library),
/// or exit 127.
fn exec_shell(cmd: *const c_char) -> ! {
    let argv: [*const c_char; 4] = [c"sh".as_ptr(), c"-c".as_ptr(), cmd, null()];
    // SAFETY: a NULL-terminated argv of valid C strings (cmd is the caller's), the process's
    // environ.
    unsafe { crate::exec::execve(SHELL.as_ptr(), argv.as_ptr() as CStrArray, libc::environ as CStrArray) };
    sys::exit_now(127)
}

fn run_system(cmd: *const c_char) -> c_int {
    let ignore = sys::ignore_action();
    let s = &SYSTEM_SIGNALS;
    // The actions to give the child back, copied while the count is held (> 0 until we return).
    let (int, quit) = s.with(|d| {
        if d.users == 0 {
            sys::sigaction(libc::SIGINT, &ignore, Some(&mut d.int));
            sys::sigaction(libc::SIGQUIT, &ignore, Some(&mut d.quit));
        }
        d.users += 1;
        (d.int, d.quit)
    });
    let old_mask = sys::block_signal(libc::SIGCHLD);

    // SAFETY: fork; the child only restores signal state and execs (or _exits).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        sys::sigaction(libc::SIGINT, &int, None);
        sys::sigaction(libc::SIGQUIT, &quit, None);
        sys::restore_mask(&old_mask);
        exec_shell(cmd);
    }
    let status = if pid < 0 { -1 } else { wait_for(pid) };

    sys::keep_errno(|| {
        s.with(|d| {
            d.users -= 1;
            if d.users == 0 {
                sys::sigaction(libc::SIGINT, &d.int, None);
                sys::sigaction(libc::SIGQUIT, &d.quit, None);
            }
        });
        sys::restore_mask(&old_mask);
    });
    status
}

fn run_popen(cmd: *const c_char, read: bool, cloexec: bool) -> *mut libc::FILE {
    let Ok(fds) = sys::pipe2(libc::O_CLOEXEC) else {
        return core::ptr::null_mut();
    };
    // The child's end becomes its stdout ("r") or stdin ("w").
    let (ours, theirs, target) = if read { (fds[0], fds[1], 1) } else { (fds[1], fds[0], 0) };
    // The stream first: nothing to undo in a child if fdopen fails.
    let fmode = if read { c"r" } else { c"w" };
    // SAFETY: ours is an open descriptor; fmode a valid mode string.
    let fp = unsafe { libc::fdopen(ours, fmode.as_ptr()) };
    if fp.is_null() {
        sys::keep_errno(|| {
            sys::close(ours);
            sys::close(theirs);
        });
        return fp;
    }
    // Fork with the table locked: the child sees it consistent and only reads it.
    let forked = STREAMS.with(|table| {
        let Some(slot) = table.iter().position(|e| e.fp == 0) else {
            return Err(libc::EMFILE);
        };
        // SAFETY: fork; the child only closes fds, places its end and execs (or _exits).
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            for e in table.iter().filter(|e| e.fp != 0) {
                sys::close(e.fd);
            }
            if theirs == target {
                // Already in place (stdin/stdout were closed): only drop close-on-exec.
                let _ = sys::fcntl(theirs, libc::F_SETFD, 0);
            } else {
                // dup3 with no flags is dup2 for two different descriptors.
                if sys::dup3(theirs, target, 0).is_err() {
                    sys::exit_now(127);
                }
                sys::close(theirs);
            }
            exec_shell(cmd);
        }
        if pid < 0 {
            return Err(0);
        }
        table[slot] = Entry { fp: fp as usize, pid, fd: ours };
        Ok(())
    });
    if let Err(e) = forked {
        close_stream(fp, theirs);
        if e != 0 {
            sys::set_errno(e);
        }
        return core::ptr::null_mut();
    }
    sys::keep_errno(|| {
        sys::close(theirs);
        if !cloexec {
            let _ = sys::fcntl(ours, libc::F_SETFD, 0);
        }
    });
    fp
}

/// Undoes a popen that failed after fdopen; errno is kept.
fn close_stream(fp: *mut libc::FILE, theirs: c_int) {
    sys::keep_errno(|| {
        // SAFETY: fp is the stream we just made and nobody else has seen.
        unsafe { libc::fclose(fp) };
        sys::close(theirs);
    });
}
