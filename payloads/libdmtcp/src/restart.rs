//! Process state that the kernel keeps outside memory, saved at checkpoint into this library's
//! own (checkpointed) memory and given back after a restart by the checkpoint thread before it
//! releases the program's threads: open files (reopened by path, with flags and offsets),
//! signal actions (all 64, with the kernel's own struct, so glibc's internal SIGCANCEL and
//! SIGSETXID handlers come back too), process-wide pending signals, resource limits, umask and
//! the working folder. stdin, stdout and stderr that were a terminal, a pipe or a socket are not
//! reopened: the restored process uses dmtcp_restart's own.
//!
//! Pipes stay pipes (design notes): every pipe end is listed in the image's fd table, and
//! `dmtcp_restart` recreates each pipe of the computation once, with its ends at the same fd
//! numbers in every process that had them. The bytes in flight are read out at checkpoint by
//! one process per pipe (the drainer: elected, like DMTCP, by every holder of a read end setting
//! itself as the end's F_SETOWN owner before the DMT:Drain barrier; the last one wins and the
//! owner is put back afterwards), kept in an anonymous mapping (so they are in the image) and
//! written back, through a write end opened by /proc/self/fd, before the program resumes:
//! after the image is written, or after a restart.
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
    /// One end of a pipe (inode in `pipe_id`): recreated by dmtcp_restart.
    Pipe,
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
    pipe_id: u64,
    pipe_size: u32,
    /// F_GETOWN_EX of a read end before the election ([type, pid]).
    owner: [c_int; 2],
    /// Bytes drained from the pipe by this process (an anonymous mapping), to write back.
    held: usize,
    held_len: usize,
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
    fds: [const {
        FdEntry {
            fd: -1,
            kind: FdKind::Other,
            flags: 0,
            cloexec: false,
            offset: 0,
            path: Fixed::new(),
            pipe_id: 0,
            pipe_size: 0,
            owner: [0, 0],
            held: 0,
            held_len: 0,
        }
    }; MAX_FDS],
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
    sys::for_each_numbered_entry(c"/proc/self/fd", |fd, dir| {
        let fd = fd as c_int;
        if fd == dir || fd == dmtcp_proto::COORD_FD || fd == dmtcp_proto::env::RESTART_INFO_FD {
            return;
        }
        if s.n_fds == MAX_FDS {
            s.lost_fds += 1;
            return;
        }
        if save_fd(&mut s.fds[s.n_fds], fd) {
            s.n_fds += 1;
        }
    });
}

fn save_fd(e: &mut FdEntry, fd: c_int) -> bool {
    let Ok(info) = sys::fstat(fd) else { return false };
    // SAFETY: fcntl and lseek on an fd of ours; isatty only queries.
    let (flags, fdflags, offset, tty) = unsafe {
        (
            libc::fcntl(fd, libc::F_GETFL),
            libc::fcntl(fd, libc::F_GETFD),
            libc::lseek64(fd, 0, libc::SEEK_CUR),
            libc::isatty(fd) == 1,
        )
    };
    let fmt = info.mode & libc::S_IFMT;
    let by_path =
        !tty && (fmt == libc::S_IFREG || fmt == libc::S_IFDIR || fmt == libc::S_IFCHR || fmt == libc::S_IFBLK);
    e.fd = fd;
    e.flags = flags;
    e.cloexec = fdflags >= 0 && fdflags & libc::FD_CLOEXEC != 0;
    e.offset = if offset < 0 { 0 } else { offset };
    e.kind = if by_path { FdKind::Path } else { FdKind::Other };
    e.path.clear();
    e.pipe_id = 0;
    e.held = 0;
    e.held_len = 0;
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
    if fmt == libc::S_IFIFO {
        if let Some(id) =
            e.path.bytes().strip_prefix(b"pipe:[").and_then(|r| r.strip_suffix(b"]")).and_then(crate::cstr::parse_u64)
        {
            e.kind = FdKind::Pipe;
            e.pipe_id = id;
            // SAFETY: fcntl queries on our fd; the owner struct is two ints.
            unsafe {
                e.pipe_size = core::cmp::max(libc::fcntl(fd, libc::F_GETPIPE_SZ), 0) as u32;
                e.owner = [0, 0];
                if flags & libc::O_ACCMODE == libc::O_RDONLY {
                    libc::fcntl(fd, F_GETOWN_EX, e.owner.as_mut_ptr());
                    // The election: whoever sets the owner last drains (see the module docs).
                    libc::fcntl(fd, libc::F_SETOWN, sys::getpid());
                }
            }
        }
    }
    true
}

const F_SETOWN_EX: c_int = 15;
const F_GETOWN_EX: c_int = 16;

fn is_read_end(e: &FdEntry) -> bool {
    e.kind == FdKind::Pipe && e.flags & libc::O_ACCMODE == libc::O_RDONLY
}

/// After the DMT:Drain barrier, every other process stopped: reads out the bytes in flight of
/// each pipe whose elected drainer we are (once per pipe) into anonymous memory.
pub fn drain() {
    let s = saved();
    let me = sys::getpid();
    for i in 0..s.n_fds {
        let (fd, id) = (s.fds[i].fd, s.fds[i].pipe_id);
        if !is_read_end(&s.fds[i]) || s.fds[..i].iter().any(|o| is_read_end(o) && o.pipe_id == id) {
            continue;
        }
        // SAFETY: fcntl query on our fd.
        if unsafe { libc::fcntl(fd, libc::F_GETOWN) } != me {
            continue;
        }
        let mut n: c_int = 0;
        // SAFETY: FIONREAD writes one int.
        if unsafe { libc::ioctl(fd, libc::FIONREAD as _, &mut n as *mut c_int) } != 0 || n <= 0 {
            continue;
        }
        let len = n as usize;
        // A fresh anonymous mapping (part of the image), ours until `refill` unmaps it.
        let Ok(p) = sys::map_anon(len) else {
            warn!("cannot hold the {} bytes in flight in the pipe at fd {}; they stay in the pipe", len, fd);
            continue;
        };
        // SAFETY: the mapping is len writable bytes.
        let buf = unsafe { core::slice::from_raw_parts_mut(p.cast::<u8>(), len) };
        let mut got = 0;
        while got < len {
            match sys::read_some(fd, &mut buf[got..]) {
                Ok(0) | Err(_) => break,
                Ok(k) => got += k,
            }
        }
        s.fds[i].held = p as usize;
        s.fds[i].held_len = got;
        trace!("drained {} bytes from the pipe at fd {}", got, fd);
    }
}

/// Writes the drained bytes back into their pipes and gives the read ends their owners back.
/// At checkpoint: after the image is written, before the DMT:WriteCkpt barrier (nobody runs
/// yet); after a restart: before the DMT:Restart barrier.
pub fn refill() {
    let s = saved();
    for e in s.fds[..s.n_fds].iter_mut() {
        if e.kind != FdKind::Pipe {
            continue;
        }
        if e.held != 0 {
            // SAFETY: the mapping made by `drain`, of at least held_len bytes.
            let bytes = unsafe { core::slice::from_raw_parts(e.held as *const u8, e.held_len) };
            if !write_back(e.fd, bytes) {
                warn!("lost {} bytes in flight in the pipe at fd {}", e.held_len, e.fd);
            }
            // SAFETY: unmapping our own mapping; the length rounds up to whole pages as mmap did.
            unsafe { libc::munmap(e.held as *mut core::ffi::c_void, core::cmp::max(e.held_len, 1)) };
            e.held = 0;
            e.held_len = 0;
        }
        if is_read_end(e) {
            // SAFETY: F_SETOWN_EX with the two ints saved by F_GETOWN_EX.
            unsafe { libc::fcntl(e.fd, F_SETOWN_EX, e.owner.as_ptr()) };
        }
    }
}

/// Writes `bytes` into the pipe whose read end is `fd`, through a write end of our own.
fn write_back(fd: c_int, bytes: &[u8]) -> bool {
    if bytes.is_empty() {
        return true;
    }
    if !sys::fstat(fd).is_ok_and(|st| st.mode & libc::S_IFMT == libc::S_IFIFO) {
        return false;
    }
    let mut link = Fixed::<64>::new();
    let mut num = [0u8; 20];
    link.push(b"/proc/self/fd/");
    link.push(crate::cstr::fmt_u64(fd as u64, &mut num));
    // SAFETY: open with a NUL-terminated path; the fd is closed below.
    let w = unsafe { libc::open(link.as_cstr().as_ptr(), libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC) };
    if w < 0 {
        return false;
    }
    let ok = sys::write_all(w, bytes).is_ok();
    sys::close(w);
    ok
}

/// Number of fd-table records for the image (one per pipe end held).
pub fn fd_records() -> usize {
    let s = saved();
    s.fds[..s.n_fds].iter().filter(|e| e.kind == FdKind::Pipe).count()
}

/// Fills the fd-table records, in order; `put` is called once per record.
pub fn for_each_fd_record(mut put: impl FnMut(&[u8; dmtcp_proto::image::FD_SIZE])) {
    use dmtcp_proto::image::{self, fdrec};
    use dmtcp_proto::le::{put_i32, put_u32, put_u64};
    let s = saved();
    for e in s.fds[..s.n_fds].iter().filter(|e| e.kind == FdKind::Pipe) {
        let mut r = [0u8; image::FD_SIZE];
        put_i32(&mut r, fdrec::FD, e.fd);
        put_u32(&mut r, fdrec::KIND, image::FD_PIPE);
        put_u32(&mut r, fdrec::END, if is_read_end(e) { image::FD_READ } else { image::FD_WRITE });
        put_u32(&mut r, fdrec::FD_FLAGS, if e.cloexec { libc::FD_CLOEXEC as u32 } else { 0 });
        put_u32(&mut r, fdrec::STATUS, e.flags as u32);
        put_u32(&mut r, fdrec::PIPE_SIZE, e.pipe_size);
        put_u64(&mut r, fdrec::ID, e.pipe_id);
        put_u64(&mut r, fdrec::PENDING, e.held_len as u64);
        put(&r);
    }
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
        if e.kind == FdKind::Pipe {
            // dmtcp_restart put a pipe here (if it was one between processes of the
            // computation); give it its flags back.
            if sys::fstat(e.fd).is_ok_and(|st| st.mode & libc::S_IFMT == libc::S_IFIFO) {
                // SAFETY: fcntl on the program's fd with its saved flags.
                unsafe {
                    libc::fcntl(e.fd, libc::F_SETFD, if e.cloexec { libc::FD_CLOEXEC } else { 0 });
                    libc::fcntl(e.fd, libc::F_SETFL, e.flags & (libc::O_NONBLOCK | libc::O_DIRECT));
                }
            } else if e.fd > 2 {
                lost += 1;
                trace!("pipe fd {} is not restored", e.fd);
            }
            continue;
        }
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
    refill();
}

fn reopen(e: &FdEntry) -> bool {
    let keep = libc::O_ACCMODE
        | libc::O_APPEND
        | libc::O_NONBLOCK
        | libc::O_DIRECTORY
        | libc::O_NOFOLLOW
        | libc::O_SYNC
        | libc::O_DSYNC;
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
