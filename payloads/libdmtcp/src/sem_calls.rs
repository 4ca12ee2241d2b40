//! The semctl wrappers (`semctl`, and on i686 the 64-bit-time `__semctl64`), and `noted`, which
//! the semop wrappers (`interrupt`) call after a semop that succeeded: they keep
//! `resources::sem_undo`'s table of this process's SEM_UNDO adjustments as the kernel keeps
//! them (that module says why a wrapper is needed: the kernel cannot be asked).
//!
//! semctl is variadic in C; its one optional argument (union semun: an int or a pointer) is
//! passed in one word on x86_64 and i386 alike, so the wrapper takes it as a `usize` and hands
//! it on unchanged (read by the C library only for the commands that take one).
//!
//! Rules: C-ABI entry points, callable from any thread, from signal handlers and before our
//! constructor; atomics only (no lock, no allocation); errno is the real call's.
use crate::real;
use crate::resources::sem_undo;
use core::ffi::c_int;

/// After semop(id, ops, n) succeeded: note its SEM_UNDO operations.
///
/// # Safety
/// `ops` points to `n` sembufs (the ones the kernel just accepted).
pub unsafe fn noted(id: c_int, ops: *const libc::sembuf, n: usize) {
    if ops.is_null() {
        return;
    }
    // SAFETY: the caller's promise; the kernel read the same n sembufs.
    let ops = unsafe { core::slice::from_raw_parts(ops, n) };
    sem_undo::note(id, ops.iter().map(|o| (o.sem_num, o.sem_op, o.sem_flg)));
}

/// What the kernel forgot after a semctl that succeeded.
fn after(id: c_int, num: c_int, cmd: c_int) {
    match cmd {
        libc::IPC_RMID | libc::SETALL => sem_undo::forget(id, None),
        libc::SETVAL => {
            if let Ok(n) = u16::try_from(num) {
                sem_undo::forget(id, Some(n));
            }
        }
        _ => {}
    }
}

fn no_real() -> c_int {
    crate::sys::set_errno(libc::ENOSYS);
    -1
}

/// # Safety
/// C caller: as for semctl(2), `arg` the union semun the command takes (if any).
#[no_mangle]
pub unsafe extern "C" fn semctl(id: c_int, num: c_int, cmd: c_int, arg: usize) -> c_int {
    let Some(f) = real::semctl() else { return no_real() };
    // SAFETY: forwarding the caller's arguments.
    let r = unsafe { f(id, num, cmd, arg) };
    if r >= 0 {
        after(id, num, cmd);
    }
    r
}

/// # Safety
/// C caller: as for semctl(2) built with 64-bit time (i686).
#[cfg(target_pointer_width = "32")]
#[no_mangle]
pub unsafe extern "C" fn __semctl64(id: c_int, num: c_int, cmd: c_int, arg: usize) -> c_int {
    let Some(f) = real::semctl64() else { return no_real() };
    // SAFETY: forwarding the caller's arguments.
    let r = unsafe { f(id, num, cmd, arg) };
    if r >= 0 {
        after(id, num, cmd);
    }
    r
}
