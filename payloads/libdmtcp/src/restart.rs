//! Process state that the kernel keeps outside memory, saved at checkpoint into this library's
//! own (checkpointed) memory and given back after a restart by the checkpoint thread before it
//! releases the program's threads: open files (reopened by path, with flags and offsets),
//! signal actions (all 64, with the kernel's own struct, so glibc's internal SIGCANCEL and
//! SIGSETXID handlers come back too), process-wide pending signals, resource limits, umask and
//! the working folder. stdin, stdout and stderr that were a terminal, a pipe or a socket are not
//! reopened: the restored process uses dmtcp_restart's own.
//!
//! Rules: runs in the checkpoint thread while every other thread is stopped: no allocation, no
//! locks; fixed tables in .bss.
use crate::cstr::Fixed;
use crate::sys;
use core::cell::UnsafeCell;
use core::ffi::c_int;
use core::sync::atomic::{AtomicU64, Ordering::*};

const MAX_FDS: usize = 512;
const PATH_LEN: usize = 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum FdKind {
    /// Reopened by path (regular files, folders, devices that are not terminals).
    Path,
    /// Terminal, pipe, socket or anything else: for 0-2 the restart's own; otherwise lost.
    Other,
}

struct FdEntry {
    fd: c_int,
    kind: FdKind,
    flags: c_int,
    cloexec: bool,
    offset: i64,
    path: Fixed<PATH_LEN>,
}

struct Saved {
    fds: [FdEntry; MAX_FDS],
    n_fds: usize,
    actions: [[u8; 32]; 65],
    rlimits: [libc::rlimit; 16],
    umask: u32,
    cwd: Fixed<4200>,
    lost_fds: usize,
}

struct Global(UnsafeCell<Saved>);
// SAFETY: used only by the checkpoint thread (at checkpoint and after restart), while the other
// threads are stopped.
unsafe impl Sync for Global {}

static SAVED: Global = Global(UnsafeCell::new(Saved {
    fds: [const { FdEntry { fd: -1, kind: FdKind::Other, flags: 0, cloexec: false, offset: 0, path: Fixed::new() } }; MAX_FDS],
    n_fds: 0,
    actions: [[0; 32]; 65],
    rlimits: [libc::rlimit { rlim_cur: 0, rlim_max: 0 }; 16],
    umask: 0o022,
    cwd: Fixed::new(),
    lost_fds: 0,
}));

static PROCESS_PENDING: AtomicU64 = AtomicU64::new(0);

fn saved() -> &'static mut Saved {
    // SAFETY: see `Global`.
    unsafe { &mut *SAVED.0.get() }
}

/// Process-wide pending signals at the last checkpoint.
pub fn process_pending() -> u64 {
    PROCESS_PENDING.load(Acquire)
}

/// The working folder at the last checkpoint.
pub fn saved_cwd() -> &'static [u8] {
    saved().cwd.bytes()
}

fn kernel_sigaction(sig: c_int, new: Option<&[u8; 32]>, old: Option<&mut [u8; 32]>) -> bool {
    let np = new.map(|b| b.as_ptr()).unwrap_or(core::ptr::null());
    let op = old.map(|b| b.as_mut_ptr()).unwrap_or(core::ptr::null_mut());
    // SAFETY: rt_sigaction reads/writes the kernel's struct sigaction (at most 32 bytes on
    // either architecture) through our buffers; sigsetsize 8.
    unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, np, op, 8usize) == 0 }
}

/// Saves what the kernel keeps outside memory. Called with every other thread stopped.
pub fn prepare() {
    let s = saved();
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let mut buf = [0u8; 32];
        if kernel_sigaction(sig, None, Some(&mut buf)) {
            s.actions[sig as usize] = buf;
        }
    }
    // SAFETY: plain system calls with our own buffers.
    unsafe {
        for (r, lim) in s.rlimits.iter_mut().enumerate() {
            libc::getrlimit(r as _, lim);
        }
        let m = libc::umask(0o022);
        libc::umask(m);
        s.umask = m as u32;
        let mut cwd = [0u8; 4200];
        if !libc::getcwd(cwd.as_mut_ptr().cast(), cwd.len()).is_null() {
            let n = cwd.iter().position(|&b| b == 0).unwrap_or(0);
            s.cwd.set(&cwd[..n]);
        }
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::syscall(libc::SYS_rt_sigpending, &mut set as *mut libc::sigset_t, 8usize);
        PROCESS_PENDING.store(*(&set as *const libc::sigset_t as *const u64), Release);
    }
    save_fds(s);
}

fn save_fds(s: &mut Saved) {
    s.n_fds = 0;
    s.lost_fds = 0;
    // SAFETY: open on a constant path.
    let dir = unsafe { libc::open(c"/proc/self/fd".as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if dir < 0 {
        return;
    }
    let mut buf = [0u8; 8192];
    loop {
        // SAFETY: getdents64 writes at most buf.len() bytes.
        let r = unsafe { libc::syscall(libc::SYS_getdents64, dir, buf.as_mut_ptr(), buf.len()) };
        if r <= 0 {
            break;
        }
        let mut off = 0usize;
        while off < r as usize {
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            let name = &buf[off + 19..off + reclen];
            let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())];
            off += reclen;
            let Some(fd) = crate::cstr::parse_u64(name) else { continue };
            let fd = fd as c_int;
            if fd == dir || fd == dmtcp_proto::COORD_FD || fd == dmtcp_proto::env::RESTART_INFO_FD {
                continue;
            }
            if s.n_fds == MAX_FDS {
                s.lost_fds += 1;
                continue;
            }
            if save_fd(&mut s.fds[s.n_fds], fd) {
                s.n_fds += 1;
            }
        }
    }
    sys::close(dir);
}

fn save_fd(e: &mut FdEntry, fd: c_int) -> bool {
    let Ok(info) = sys::fstat(fd) else { return false };
    // SAFETY: fcntl and lseek on an fd of ours; isatty only queries.
    let (flags, fdflags, offset, tty) = unsafe {
        (libc::fcntl(fd, libc::F_GETFL), libc::fcntl(fd, libc::F_GETFD), libc::lseek64(fd, 0, libc::SEEK_CUR), libc::isatty(fd) == 1)
    };
    let fmt = info.mode & libc::S_IFMT;
    let by_path = !tty && (fmt == libc::S_IFREG || fmt == libc::S_IFDIR || fmt == libc::S_IFCHR || fmt == libc::S_IFBLK);
    e.fd = fd;
    e.flags = flags;
    e.cloexec = fdflags >= 0 && fdflags & libc::FD_CLOEXEC != 0;
    e.offset = if offset < 0 { 0 } else { offset };
    e.kind = if by_path { FdKind::Path } else { FdKind::Other };
    e.path.clear();
    let mut link = Fixed::<64>::new();
    let mut num = [0u8; 20];
    link.push(b"/proc/self/fd/");
    link.push(crate::cstr::fmt_u64(fd as u64, &mut num));
    let mut p = [0u8; PATH_LEN];
    match sys::readlink(link.as_cstr(), &mut p) {
        Ok(n) if n < PATH_LEN => {
            e.path.set(&p[..n]);
        }
        _ => e.kind = FdKind::Other,
    }
    if e.path.bytes().ends_with(b" (deleted)") {
        e.kind = FdKind::Other;
    }
    true
}

/// After a restart, before the program's threads run again: files, signal actions, limits,
/// umask, folder. Problems are reported, not fatal.
pub fn after_restart() {
    let s = saved();
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let a = s.actions[sig as usize];
        kernel_sigaction(sig, Some(&a), None);
    }
    // SAFETY: plain system calls with our own saved values.
    unsafe {
        for (r, lim) in s.rlimits.iter().enumerate() {
            libc::setrlimit(r as _, lim);
        }
        libc::umask(s.umask as libc::mode_t);
        if !s.cwd.is_empty() && libc::chdir(s.cwd.as_cstr().as_ptr()) != 0 {
            warn!("cannot return to the working folder {}", crate::log::Bytes(s.cwd.bytes()));
        }
    }
    let mut lost = s.lost_fds;
    for e in &s.fds[..s.n_fds] {
        if e.kind == FdKind::Other {
            if e.fd > 2 {
                lost += 1;
                trace!("fd {} ({}) is not restored", e.fd, crate::log::Bytes(e.path.bytes()));
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
}

fn reopen(e: &FdEntry) -> bool {
    let keep = libc::O_ACCMODE | libc::O_APPEND | libc::O_NONBLOCK | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_SYNC | libc::O_DSYNC;
    let flags = (e.flags & keep) | libc::O_CLOEXEC;
    // SAFETY: open with a NUL-terminated path; the new fd is ours until moved into place.
    let tmp = unsafe { libc::open(e.path.as_cstr().as_ptr(), flags) };
    if tmp < 0 {
        warn!(
            "cannot reopen {} as fd {} after restart: {}",
            crate::log::Bytes(e.path.bytes()),
            e.fd,
            crate::log::Bytes(sys::strerror(sys::errno()))
        );
        return false;
    }
    // SAFETY: moving our fd into the program's number and restoring its flags and offset.
    unsafe {
        if tmp != e.fd {
            libc::dup3(tmp, e.fd, if e.cloexec { libc::O_CLOEXEC } else { 0 });
            libc::close(tmp);
        } else if !e.cloexec {
            libc::fcntl(tmp, libc::F_SETFD, 0);
        }
        if e.offset > 0 {
            libc::lseek64(e.fd, e.offset, libc::SEEK_SET);
        }
    }
    true
}

/// Re-raises the process-wide signals that were pending at checkpoint time.
pub fn raise_process_pending() {
    let pending = process_pending();
    let sig = crate::threads::CKPT_SIGNAL.load(Relaxed);
    for n in 1..64 {
        if pending & (1u64 << (n - 1)) != 0 && n != sig {
            // SAFETY: kill(2) to ourselves.
            unsafe { libc::kill(sys::getpid(), n) };
        }
    }
}

/// Reads and closes the restart-info fd that dmtcp_restart gave us, applying its settings.
pub fn read_restart_info() {
    let fd = dmtcp_proto::env::RESTART_INFO_FD;
    let mut buf = [0u8; 16384];
    let mut n = 0;
    // SAFETY: pread from offset 0 of the memfd dmtcp_restart left at this fd (if any).
    loop {
        match sys::pread(fd, &mut buf[n..], n as u64) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
        if n == buf.len() {
            break;
        }
    }
    sys::close(fd);
    if n == 0 {
        warn!("dmtcp_restart gave no restart information; keeping the old settings");
        return;
    }
    // SAFETY: the other threads are stopped (see config::apply_restart_info).
    unsafe { crate::config::apply_restart_info(&buf[..n]) };
}
