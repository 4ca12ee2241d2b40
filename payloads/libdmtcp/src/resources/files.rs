//! Open descriptors other than pipes: regular files, folders and devices that are not terminals
//! are reopened by path after a restart, with their status flags, close-on-exec flag and offset.
//! Terminals, sockets, named FIFOs and deleted files are not: for 0-2 the restored process uses
//! dmtcp_restart's own, the others are lost (counted in a trace line). The image gets no record
//! for them (the library alone restores them).
//!
//! Rules: hooks run in the checkpoint thread with every other thread stopped; no allocation
//! (fixed table in .bss).
use super::{report, Hooks, NONE};
use crate::cell::Exclusive;
use crate::cstr::Fixed;
use crate::log::Bytes;
use crate::sys;
use core::ffi::c_int;

pub const HOOKS: Hooks = Hooks { name: "files", save, restore, ..NONE };

const MAX_FDS: usize = 512;
const PATH_LEN: usize = 1024;
/// What readlink shows after the name of a file that was removed.
const DELETED: &[u8] = b" (deleted)";
/// Status flags given back when reopening (the others are the open's own or not settable).
const KEPT_FLAGS: c_int = libc::O_ACCMODE
    | libc::O_APPEND
    | libc::O_NONBLOCK
    | libc::O_DIRECTORY
    | libc::O_NOFOLLOW
    | libc::O_SYNC
    | libc::O_DSYNC;

struct Entry {
    fd: c_int,
    /// Reopened by path; else lost after a restart.
    by_path: bool,
    flags: c_int,
    cloexec: bool,
    offset: i64,
    path: Fixed<PATH_LEN>,
}

struct Table {
    fds: [Entry; MAX_FDS],
    n: usize,
    /// Descriptors beyond the table's capacity.
    overflow: usize,
}

static TABLE: Exclusive<Table> = Exclusive::new(Table {
    fds: [const { Entry { fd: -1, by_path: false, flags: 0, cloexec: false, offset: 0, path: Fixed::new() } }; MAX_FDS],
    n: 0,
    overflow: 0,
});

fn save() {
    TABLE.with(|t| {
        t.n = 0;
        t.overflow = 0;
        super::for_each_program_fd(|fd| {
            if t.n == MAX_FDS {
                t.overflow += 1;
                return;
            }
            if save_fd(&mut t.fds[t.n], fd) {
                t.n += 1;
            }
        });
    });
}

/// Records `fd` unless it is a pipe (`pipes` owns those) or gone.
fn save_fd(e: &mut Entry, fd: c_int) -> bool {
    let Ok(info) = sys::fstat(fd) else { return false };
    let fmt = info.mode & libc::S_IFMT;
    let mut target = [0u8; PATH_LEN];
    let link = super::fd_target(fd, &mut target);
    if fmt == libc::S_IFIFO && link.and_then(super::pipes::pipe_id).is_some() {
        return false;
    }
    if super::tty::takes(fd) || super::pty::takes(fd) {
        return false;
    }
    let tty = sys::isatty(fd);
    e.fd = fd;
    e.flags = sys::fcntl(fd, libc::F_GETFL, 0).unwrap_or(-1);
    e.cloexec = sys::fcntl(fd, libc::F_GETFD, 0).is_ok_and(|f| f & libc::FD_CLOEXEC != 0);
    e.offset = sys::tell(fd).unwrap_or(0);
    e.by_path = !tty && (fmt == libc::S_IFREG || fmt == libc::S_IFDIR || fmt == libc::S_IFCHR || fmt == libc::S_IFBLK);
    e.path.clear();
    match link {
        Some(p) => {
            e.path.set(p);
        }
        None => e.by_path = false,
    }
    if e.path.bytes().ends_with(DELETED) {
        e.by_path = false;
    }
    true
}

fn restore() {
    TABLE.with(|t| {
        let mut lost = t.overflow;
        for e in &t.fds[..t.n] {
            if !e.by_path {
                if e.fd > 2 {
                    lost += 1;
                    trace!("fd {} ({}) is not restored", e.fd, Bytes(e.path.bytes()));
                }
                continue;
            }
            if !reopen(e) {
                lost += 1;
            }
        }
        if lost > 0 {
            trace!("{} file descriptors could not be restored", lost);
        }
    });
}

fn cannot_reopen(e: &Entry, err: c_int) -> bool {
    warn!("cannot reopen {} as fd {} after restart: {}", Bytes(e.path.bytes()), e.fd, Bytes(sys::strerror(err)));
    false
}

fn reopen(e: &Entry) -> bool {
    let flags = (e.flags & KEPT_FLAGS) | libc::O_CLOEXEC;
    let tmp = match sys::open(e.path.as_cstr(), flags) {
        Ok(fd) => fd,
        Err(err) => return cannot_reopen(e, err),
    };
    // Move our descriptor to the program's number and give it its flags and offset back.
    if tmp != e.fd {
        let moved = sys::dup3(tmp, e.fd, if e.cloexec { libc::O_CLOEXEC } else { 0 });
        sys::close(tmp);
        if let Err(err) = moved {
            return cannot_reopen(e, err);
        }
    } else if !e.cloexec {
        report("clearing close-on-exec", e.fd, sys::fcntl(e.fd, libc::F_SETFD, 0).map(|_| ()));
    }
    if e.offset > 0 {
        report("seeking", e.fd, sys::seek_to(e.fd, e.offset));
    }
    true
}
