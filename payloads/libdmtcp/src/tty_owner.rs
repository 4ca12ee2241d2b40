//! `chown`, `lchown`, `fchown` and `fchownat` on terminals, as without the tool.
//!
//! The computation runs in a user namespace of its own that maps only the user's own uid and
//! gid (`common::ns` in the tools): an unprivileged user cannot map more (newuidmap and
//! /etc/subgid are setuid business we do not depend on). So a program that gives its pty to the
//! `tty` group, as `screen` does as root (`chown(pty, uid, tty)`), gets EINVAL ("the id is not
//! valid here") instead of what it would get outside: success for root, EPERM for a user who
//! is not in that group. `screen` stops on the former ("chown tty: Invalid argument") and goes
//! on after the latter when it is not root.
//!
//! Choice: only when the call failed with EINVAL and its object is a terminal device, we do
//! what can be done (the same call with the ids that are not mapped left unchanged, -1) and
//! answer as the system would outside: success when we are root (whose chown would have
//! succeeded; the terminal keeps our own group, which every process of the computation has,
//! and its mode is still the program's to set with chmod), EPERM otherwise. Every other chown
//! is the C library's, untouched. The program never sees EINVAL for a group it named
//! correctly, and its errno is the outside one.
//!
//! Rules: C-ABI wrappers in normal program context (never while threads are stopped); no
//! allocation; the caller's pointers go unchanged to the C library.
use crate::real;
use crate::sys::{self, tty};
use core::ffi::{c_char, c_int, CStr};

/// Whether a device number is a terminal's: pty slaves (majors 136-143), ttys and consoles
/// (4), /dev/tty, /dev/console and /dev/ptmx (5).
fn is_terminal_dev((major, _): tty::Dev) -> bool {
    matches!(major, 4 | 5 | 136..=143)
}

/// What the call answers after the C library's answer `r` (see the module docs); `retry`
/// makes the call again with other ids, `is_terminal` says whether the object is one.
fn outside_answer(
    r: c_int,
    uid: libc::uid_t,
    gid: libc::gid_t,
    is_terminal: impl FnOnce() -> bool,
    retry: impl FnOnce(libc::uid_t, libc::gid_t) -> c_int,
) -> c_int {
    if r == 0 || sys::errno() != libc::EINVAL || !is_terminal() {
        return r;
    }
    let saved = sys::errno();
    let mapped = |id: u32, ok: bool| if ok { id } else { u32::MAX };
    // An id is mapped here if it is ours (the only ones the namespace maps) or "unchanged".
    let uid_ok = uid == u32::MAX || uid == sys::geteuid();
    let gid_ok = gid == u32::MAX || gid == sys::getegid();
    if uid_ok && gid_ok {
        // EINVAL for another reason: not ours to change.
        sys::set_errno(saved);
        return r;
    }
    if retry(mapped(uid, uid_ok), mapped(gid, gid_ok)) != 0 {
        return -1;
    }
    if sys::geteuid() == 0 {
        0
    } else {
        sys::set_errno(libc::EPERM);
        -1
    }
}

fn path_is_terminal(path: *const c_char, follow: bool) -> bool {
    if path.is_null() {
        return false;
    }
    // SAFETY: the caller gave a NUL-terminated path (the C prototype's contract); the C
    // library call above has already read it.
    let path = unsafe { CStr::from_ptr(path) };
    tty::path_device(path, follow).is_some_and(is_terminal_dev)
}

fn missing() -> c_int {
    sys::set_errno(libc::ENOSYS);
    -1
}

/// # Safety
/// C caller: `path` is a NUL-terminated string, as for chown(2).
#[no_mangle]
pub unsafe extern "C" fn chown(path: *const c_char, uid: libc::uid_t, gid: libc::gid_t) -> c_int {
    let Some(f) = real::chown() else { return missing() };
    // SAFETY: the C library's chown with the caller's arguments.
    let r = unsafe { f(path, uid, gid) };
    // SAFETY: as above, with ids we chose.
    outside_answer(r, uid, gid, || path_is_terminal(path, true), |u, g| unsafe { f(path, u, g) })
}

/// # Safety
/// C caller: `path` is a NUL-terminated string, as for lchown(2).
#[no_mangle]
pub unsafe extern "C" fn lchown(path: *const c_char, uid: libc::uid_t, gid: libc::gid_t) -> c_int {
    let Some(f) = real::lchown() else { return missing() };
    // SAFETY: the C library's lchown with the caller's arguments.
    let r = unsafe { f(path, uid, gid) };
    // SAFETY: as above, with ids we chose.
    outside_answer(r, uid, gid, || path_is_terminal(path, false), |u, g| unsafe { f(path, u, g) })
}

/// # Safety
/// C caller: as for fchown(2).
#[no_mangle]
pub unsafe extern "C" fn fchown(fd: c_int, uid: libc::uid_t, gid: libc::gid_t) -> c_int {
    let Some(f) = real::fchown() else { return missing() };
    // SAFETY: the C library's fchown with the caller's arguments.
    let r = unsafe { f(fd, uid, gid) };
    // SAFETY: as above, with ids we chose.
    outside_answer(r, uid, gid, || tty::char_device(fd).is_some_and(is_terminal_dev), |u, g| unsafe { f(fd, u, g) })
}

/// # Safety
/// C caller: `path` is a NUL-terminated string, as for fchownat(2).
#[no_mangle]
pub unsafe extern "C" fn fchownat(
    dirfd: c_int,
    path: *const c_char,
    uid: libc::uid_t,
    gid: libc::gid_t,
    flags: c_int,
) -> c_int {
    let Some(f) = real::fchownat() else { return missing() };
    // SAFETY: the C library's fchownat with the caller's arguments.
    let r = unsafe { f(dirfd, path, uid, gid, flags) };
    // SAFETY: path is NULL or NUL-terminated (the C prototype's contract), read by the call.
    let first = if path.is_null() { 0 } else { unsafe { *path } };
    let is_terminal = || {
        if first == 0 && flags & libc::AT_EMPTY_PATH != 0 {
            tty::char_device(dirfd).is_some_and(is_terminal_dev)
        } else if first != 0 && (dirfd == libc::AT_FDCWD || first == b'/' as c_char) {
            path_is_terminal(path, flags & libc::AT_SYMLINK_NOFOLLOW == 0)
        } else {
            false
        }
    };
    // SAFETY: as above, with ids we chose.
    outside_answer(r, uid, gid, is_terminal, |u, g| unsafe { f(dirfd, path, u, g, flags) })
}
