//! dmtcp's own descriptors, kept out of the program's way: a program that closes every fd it
//! does not know (`close_range(3, ~0U)`, `closefrom`, a loop of `close` up to the limit, reading
//! /proc/self/fd and closing each) or that puts a file at any number it likes (`dup2`, `dup3`,
//! `fcntl(F_DUPFD)`) neither cuts its process off from the coordinator nor makes us talk to one
//! of its files.
//!
//! Design. The one descriptor we keep while the program runs is the coordinator connection. It
//! lives at `COORD_FD` (821), or the lowest free number above it, far above the numbers a
//! program gets from open/socket/pipe (lowest free first), and is close-on-exec. Its number is
//! held here (`coord()`) and every user reads it from here. The wrappers make it look closed to
//! the program: `close`, `fcntl`, `dup`, `dup2`, `dup3` on it fail with EBADF as they would
//! without dmtcp; `close_range` and `closefrom` close the ranges around it. When the program
//! asks for its number (`dup2`/`dup3` onto it, or `dup`/`fcntl(F_DUPFD)` whose lowest free answer
//! would be it without us), the connection first moves to another free number above
//! `COORD_FD` and the program gets the number it asked for. The restart-info fd (820) is open
//! only between the restorer and the checkpoint thread's reading of it, while no program thread
//! runs; the image writer's pipes only while every program thread is stopped. Only the process
//! that made the connection treats the number as ours: a vfork child (our memory, its own fd
//! table) may do what it likes with its copy, and a fork child drops its copy in our fork
//! handler before it registers on a connection of its own.
//!
//! The userfaultfd of incremental checkpoints (`dirty`) is the second descriptor kept this way
//! (`hide`, `hidden`): same rules, at `HIDDEN_MIN` or above; a restart does not bring it back
//! (`dirty::after_restart` makes a new one).
//!
//! Restart side: `dmtcp_restart` always hands the connection over at `COORD_FD`; `after_restart`
//! moves it back to the number it had at checkpoint time, which the program's fds (restored
//! afterwards) never use, so a program fd at 821 comes back at 821.
//!
//! What is unavoidable, and documented: the connection shows in /proc/self/fd; a program with
//! more than 820 fds open sees a gap at our number from open/socket/pipe; a program that calls
//! the close_range system call directly (not the C library's function) closes it, and the
//! process goes on without checkpoints (the coordinator sees it leave); the checkpoint thread
//! reads the number before each call, so a program's dup2 onto it in the same instant could in
//! theory race with that one call.
//!
//! Rules: a C-ABI entry point module (exports close, close_range, closefrom, dup, dup2, dup3,
//! fcntl, fcntl64 and, on i686, __fcntl_time64); our own descriptor operations are raw system
//! calls, never through these wrappers; wrappers are async-signal-safe and pass everything
//! through before the constructor or outside dmtcp (no number of ours then).
use crate::real;
use crate::sys::{self, Errno};
use core::ffi::{c_int, c_uint};
use core::sync::atomic::{AtomicI32, Ordering::*};
use dmtcp_proto::COORD_FD;

/// The coordinator connection's number (-1: none).
static COORD: AtomicI32 = AtomicI32::new(-1);
/// The process whose connection it is. A vfork child shares our memory but has its own fd
/// table: what it does with that number is its own business and must not move ours.
static OWNER: AtomicI32 = AtomicI32::new(0);

/// The coordinator connection's number, or -1.
pub fn coord() -> c_int {
    COORD.load(Acquire)
}

/// The other hidden descriptor (the userfaultfd of `dirty`), -1: none; and its process.
static HIDDEN: AtomicI32 = AtomicI32::new(-1);
static HIDDEN_OWNER: AtomicI32 = AtomicI32::new(0);
/// Where the hidden descriptor goes (above the coordinator's number and the restart's fds).
const HIDDEN_MIN: c_int = COORD_FD + 4;

fn is_coord(fd: c_int) -> bool {
    fd >= 0 && fd == COORD.load(Acquire) && sys::getpid() == OWNER.load(Acquire)
}

/// Whether `fd` is the hidden descriptor of this process (not the coordinator connection).
pub fn is_hidden(fd: c_int) -> bool {
    fd >= 0 && fd == HIDDEN.load(Acquire) && sys::getpid() == HIDDEN_OWNER.load(Acquire)
}

/// The hidden descriptor of this process, or -1.
pub fn hidden() -> c_int {
    let fd = HIDDEN.load(Acquire);
    if is_hidden(fd) {
        fd
    } else {
        -1
    }
}

fn ours(fd: c_int) -> bool {
    is_coord(fd) || is_hidden(fd)
}

/// Takes `fd` as the hidden descriptor: moved to `HIDDEN_MIN` or the lowest free number above
/// it, close-on-exec. Returns the number.
pub fn hide(fd: c_int) -> Result<c_int, Errno> {
    let r = raw_dup_above(fd, HIDDEN_MIN);
    raw_close(fd);
    let n = r?;
    HIDDEN_OWNER.store(sys::getpid(), Release);
    HIDDEN.store(n, Release);
    Ok(n)
}

/// After a restart: the hidden descriptor of the checkpoint was not restored; its number may be
/// the program's now.
pub fn forget_hidden() {
    HIDDEN.store(-1, Release);
}

/// In a fork child: closes the copy of the parent's hidden descriptor.
pub fn drop_inherited_hidden() {
    let fd = HIDDEN.load(Acquire);
    if fd >= 0 && HIDDEN_OWNER.load(Acquire) != sys::getpid() {
        HIDDEN.store(-1, Release);
        raw_close(fd);
    }
}

/// Our descriptors of this process inside `[first, last]`, lowest first (-1: none).
fn ours_in(first: c_uint, last: c_uint) -> [c_int; 2] {
    let mut v = [-1, -1];
    let mut n = 0;
    let (c, h) = (coord(), hidden());
    let c = if is_coord(c) { c } else { -1 };
    let (lo, hi) = if c >= 0 && h >= 0 && h < c {
        (h, c)
    } else if c >= 0 {
        (c, h)
    } else {
        (h, -1)
    };
    for fd in [lo, hi] {
        if fd >= 0 && (fd as c_uint) >= first && (fd as c_uint) <= last {
            v[n] = fd;
            n += 1;
        }
    }
    v
}

fn set_coord(fd: c_int) {
    OWNER.store(sys::getpid(), Release);
    COORD.store(fd, Release);
}

fn raw(r: libc::c_long) -> Result<c_int, Errno> {
    if r < 0 {
        Err(sys::errno())
    } else {
        Ok(r as c_int)
    }
}

fn raw_close(fd: c_int) {
    // SAFETY: closing one of our own descriptor numbers.
    unsafe { libc::syscall(libc::SYS_close, fd) };
}

/// The lowest free number at or above `min`, close-on-exec, for a copy of `fd`.
fn raw_dup_above(fd: c_int, min: c_int) -> Result<c_int, Errno> {
    // SAFETY: plain descriptor operation.
    raw(unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_DUPFD_CLOEXEC, min) })
}

fn raw_dup3(old: c_int, new: c_int, flags: c_int) -> Result<c_int, Errno> {
    // SAFETY: plain descriptor operation.
    raw(unsafe { libc::syscall(libc::SYS_dup3, old, new, flags) })
}

fn set_cloexec(fd: c_int) {
    // SAFETY: plain descriptor operation on our own fd.
    unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_SETFD, libc::FD_CLOEXEC) };
}

/// Takes a fresh coordinator connection `fd`: moves it to `COORD_FD`, or the lowest free number
/// above it (never over a descriptor of the program's), close-on-exec. Returns the number.
pub fn adopt_coord(fd: c_int) -> Result<c_int, Errno> {
    let n = if fd >= COORD_FD {
        set_cloexec(fd);
        fd
    } else {
        let r = raw_dup_above(fd, COORD_FD);
        raw_close(fd);
        r?
    };
    set_coord(n);
    Ok(n)
}

/// True if this process made (or took over) the connection it holds: not a vfork-style child
/// that shares our memory with its own descriptor table.
pub fn owned() -> bool {
    ours(coord())
}

/// Moves a fresh connection made for another process or image (see `coord::preregister`) to
/// the lowest free number at or above `COORD_FD`, close-on-exec. It is not ours: the wrappers
/// do not hide it, and the caller hands it over or closes it within its call.
pub fn park_above(fd: c_int) -> Result<c_int, Errno> {
    if fd >= COORD_FD {
        set_cloexec(fd);
        return Ok(fd);
    }
    let r = raw_dup_above(fd, COORD_FD);
    raw_close(fd);
    r
}

/// Lets `fd` (ours or a parked one) survive the coming exec (`on`), or makes it close-on-exec
/// again.
pub fn set_inheritable(fd: c_int, on: bool) {
    let flags = if on { 0 } else { libc::FD_CLOEXEC };
    // SAFETY: plain descriptor operation on our own fd.
    unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_SETFD, flags) };
}

/// Closes a parked descriptor (`park_above`) without going through the program's view.
pub fn close_parked(fd: c_int) {
    if fd >= 0 && fd != coord() {
        raw_close(fd);
    }
}

/// In a forked child: the parent's connection (inherited) is closed and `fd`, the connection
/// registered for this child, takes its number, close-on-exec, so the child's descriptors look
/// as its parent's did.
pub fn adopt_in_child(fd: c_int) -> Result<c_int, Errno> {
    let was = COORD.swap(-1, AcqRel);
    if was >= 0 && was != fd {
        if raw_dup3(fd, was, libc::O_CLOEXEC).is_ok() {
            raw_close(fd);
            set_coord(was);
            return Ok(was);
        }
        raw_close(was);
    }
    adopt_coord(fd)
}

/// Closes the coordinator connection (gone, or inherited over fork from the parent).
pub fn drop_coord() {
    let fd = COORD.swap(-1, AcqRel);
    OWNER.store(0, Release);
    if fd >= 0 {
        raw_close(fd);
    }
}

/// After a restart: the restorer handed the connection over at `COORD_FD`; put it back at the
/// number it had at checkpoint time (held in this restored memory), where no fd of the program
/// will be restored, and make it close-on-exec again.
pub fn after_restart() {
    let was = COORD.load(Acquire);
    if was >= 0 && was != COORD_FD && raw_dup3(COORD_FD, was, libc::O_CLOEXEC).is_ok() {
        raw_close(COORD_FD);
        set_coord(was);
        return;
    }
    set_cloexec(COORD_FD);
    set_coord(COORD_FD);
}

/// If `fd` is ours, moves our connection to another number so the program can have `fd`.
/// Our old copy stays at `fd` until the caller's call replaces or closes it.
fn make_room(fd: c_int) -> Result<(), Errno> {
    if is_hidden(fd) {
        let n = raw_dup_above(fd, HIDDEN_MIN)?;
        HIDDEN.store(n, Release);
        return Ok(());
    }
    if !is_coord(fd) {
        return Ok(());
    }
    let n = raw_dup_above(fd, COORD_FD)?;
    set_coord(n);
    Ok(())
}

fn fail(e: Errno) -> c_int {
    sys::set_errno(e);
    -1
}

/// Gives the program `want` (which our connection held) instead of `got`, the number the C
/// library gave it: `got` moves to `want` with `flags` (O_CLOEXEC or 0).
fn give(want: c_int, got: c_int, flags: c_int) -> c_int {
    if make_room(want).is_err() {
        return got;
    }
    match raw_dup3(got, want, flags) {
        Ok(_) => {
            raw_close(got);
            want
        }
        Err(_) => {
            // Our old copy is still at `want` and the connection is at its new number.
            raw_close(want);
            got
        }
    }
}

/// `got` came from a call that returns the lowest free number at or above `min`: if our
/// connection took the number the program would have got without us, the program gets it.
fn lowest_free(min: c_int, got: c_int, flags: c_int) -> c_int {
    if got <= 0 || min >= got {
        return got;
    }
    match ours_in(min.max(0) as c_uint, (got - 1) as c_uint)[0] {
        o if o >= 0 => give(o, got, flags),
        _ => got,
    }
}

#[no_mangle]
pub extern "C" fn close(fd: c_int) -> c_int {
    if ours(fd) {
        return fail(libc::EBADF);
    }
    let Some(f) = real::close() else { return fail(libc::ENOSYS) };
    // SAFETY: forwarding the caller's descriptor.
    unsafe { f(fd) }
}

#[no_mangle]
pub extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    let Some(f) = real::close_range() else { return fail(libc::ENOSYS) };
    let inside = if first > last { [-1, -1] } else { ours_in(first, last) };
    if inside[0] < 0 {
        // SAFETY: forwarding the caller's arguments.
        return unsafe { f(first, last, flags) };
    }
    // The parts of the caller's range around our fds (lowest first).
    let mut from = first;
    let mut r = 0;
    for o in inside.into_iter().filter(|&o| o >= 0) {
        let o = o as c_uint;
        if r == 0 && o > from {
            // SAFETY: a part of the caller's range below one of our fds.
            r = unsafe { f(from, o - 1, flags) };
        }
        from = o + 1;
    }
    if r == 0 && from > first && from <= last {
        // SAFETY: the part of the caller's range above our last fd.
        r = unsafe { f(from, last, flags) };
    }
    r
}

#[no_mangle]
pub extern "C" fn closefrom(low: c_int) {
    if ours_in(low.max(0) as c_uint, c_uint::MAX)[0] >= 0 && hidden() >= 0 {
        close_range(low.max(0) as c_uint, c_uint::MAX, 0);
        return;
    }
    let o = coord();
    if o >= 0 && o >= low {
        if o > low.max(0) {
            close_range(low.max(0) as c_uint, c_uint::MAX, 0);
        } else if let Some(f) = real::closefrom() {
            // SAFETY: every number above our fd.
            unsafe { f(o + 1) };
        }
        return;
    }
    if let Some(f) = real::closefrom() {
        // SAFETY: forwarding the caller's argument.
        unsafe { f(low) };
    }
}

#[no_mangle]
pub extern "C" fn dup(old: c_int) -> c_int {
    if ours(old) {
        return fail(libc::EBADF);
    }
    let Some(f) = real::dup() else { return fail(libc::ENOSYS) };
    // SAFETY: forwarding the caller's descriptor.
    let got = unsafe { f(old) };
    lowest_free(0, got, 0)
}

fn dup_onto(old: c_int, new: c_int, call: impl FnOnce() -> c_int) -> c_int {
    if ours(old) {
        return fail(libc::EBADF);
    }
    if old != new && ours(new) {
        if let Err(e) = make_room(new) {
            return fail(e);
        }
        let r = call();
        if r < 0 {
            // The program's number stays free, as it was without us.
            sys::keep_errno(|| raw_close(new));
        }
        return r;
    }
    call()
}

#[no_mangle]
pub extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    let Some(f) = real::dup2() else { return fail(libc::ENOSYS) };
    // SAFETY: forwarding the caller's descriptors.
    dup_onto(old, new, || unsafe { f(old, new) })
}

#[no_mangle]
pub extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    let Some(f) = real::dup3() else { return fail(libc::ENOSYS) };
    // SAFETY: forwarding the caller's arguments.
    dup_onto(old, new, || unsafe { f(old, new, flags) })
}

fn fcntl_with(f: Option<real::FcntlFn>, fd: c_int, cmd: c_int, arg: usize) -> c_int {
    if ours(fd) {
        return fail(libc::EBADF);
    }
    let Some(f) = f else { return fail(libc::ENOSYS) };
    // SAFETY: forwarding the caller's arguments; `arg` is the word the caller passed (read by
    // the C library only for the commands that take it).
    let got = unsafe { f(fd, cmd, arg) };
    match cmd {
        libc::F_DUPFD => lowest_free(arg as c_int, got, 0),
        libc::F_DUPFD_CLOEXEC => lowest_free(arg as c_int, got, libc::O_CLOEXEC),
        _ => got,
    }
}

#[no_mangle]
pub extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    fcntl_with(real::fcntl(), fd, cmd, arg)
}

#[no_mangle]
pub extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    fcntl_with(real::fcntl64(), fd, cmd, arg)
}

#[cfg(target_pointer_width = "32")]
#[no_mangle]
pub extern "C" fn __fcntl_time64(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    fcntl_with(real::fcntl_time64(), fd, cmd, arg)
}
