//! The process's resources that the kernel keeps outside memory, one module per kind, each
//! holding its checkpoint side and its in-process restore side (CRIU's `pipes.c`/`eventfd.c`
//! shape) behind one table of hooks named after DMTCP's (`src/plugin/connection.h`: drain,
//! preCkpt, refill, resume, postRestart).
//!
//! Rules: every hook runs in the checkpoint thread while every other thread of the program is
//! stopped: no allocation (state goes into each kind's fixed table in .bss, reached through
//! `cell::Exclusive`), no locks, no unsafe (system calls through `sys`). The kind's state is in
//! this library's own memory, so it is in the image and comes back with it.
//!
//! # The order
//! `KINDS` lists the kinds; every phase runs them in that order: timers, signal state,
//! process, tty, pty, sockets, files, pipes, memfd, shm, eventfd/signalfd/timerfd, inotify, and
//! epoll last (its entries name the other fds). The checkpoint thread calls the phases in this
//! sequence:
//!
//! ```text
//! checkpoint:  DMT:SUSPEND, stop threads, DMT:CHECKPOINT
//!              save       collect the state (pipes: elect the drainer with F_SETOWN)
//!              (the checkpoint thread reports the fds no kind takes to the coordinator)
//!              DMT:Drain  (every process of the computation has saved and voted; with
//!                         --strict and an unsupported fd, the checkpoint stops here)
//!              drain      take data out of the kernel (pipes: the bytes in flight; files:
//!                         the keys of shared descriptions, with kcmp)
//!              records    count and write the image's records (while writing the image)
//!              refill     put the data back (after the image, or when the checkpoint is dropped)
//!              DMT:WriteCkpt
//!              resume(Checkpointed), then the threads run
//! restart:     (restorer, threads back) restore  give the kernel the state back (files'
//!              close-on-exec flags, pipes' flags and bytes)
//!              DMT:Restart
//!              resume(Restarted) (signal state: raise the pending signals), then the threads run
//! ```
pub mod epoll;
pub mod events;
pub mod files;
pub mod inotify;
pub mod memfd;
pub mod mqueue;
pub mod pipes;
pub mod process;
pub mod pty;
pub mod sem_undo;
pub mod shm;
pub mod signal_state;
pub mod socket_diag;
pub mod socket_drain;
pub mod sockets;
pub mod sysv;
pub mod timers;
pub mod tty;
pub mod zombies;

use core::ffi::c_int;

/// One record of the image's fd table; the writer encodes it.
pub use dmtcp_proto::image::FdRecord;

/// Where a kind's records go (`put(&record)`, once per record).
pub type RecordSink<'a> = dyn FnMut(&FdRecord) + 'a;

/// Which way the program goes on after the last barrier.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The image was written (or the checkpoint failed); the same process goes on.
    Checkpointed,
    /// A new process made from the image.
    Restarted,
}

/// The hooks of one resource kind. A kind leaves out what it does not need (`NONE`).
pub struct Hooks {
    pub name: &'static str,
    /// Threads stopped, before DMT:Drain: collect the kind's state (DMTCP preCkpt, CRIU dump).
    pub save: fn(),
    /// After DMT:Drain: take out of the kernel what must be in the image (DMTCP drain).
    pub drain: fn(),
    /// How many fd-table records the image gets from this kind.
    pub records: fn() -> usize,
    /// Writes exactly `records()` records, in order.
    pub write_records: fn(&mut RecordSink<'_>),
    /// After the image is written (or the checkpoint abandoned): give the kernel back what
    /// `drain` took (DMTCP refill).
    pub refill: fn(),
    /// After a restart, before DMT:Restart: give the kernel the saved state (DMTCP
    /// postRestart/refill, CRIU open).
    pub restore: fn(),
    /// Last step before the program's threads run again (DMTCP resume).
    pub resume: fn(Phase),
}

fn nothing() {}
fn no_records() -> usize {
    0
}
fn write_nothing(_: &mut RecordSink<'_>) {}
fn resume_nothing(_: Phase) {}

/// The hooks of a kind that does nothing; kinds start from it (`..NONE`).
pub const NONE: Hooks = Hooks {
    name: "",
    save: nothing,
    drain: nothing,
    records: no_records,
    write_records: write_nothing,
    refill: nothing,
    restore: nothing,
    resume: resume_nothing,
};

/// The registry, in the documented order (module docs). `timers` comes first: its `save`
/// pauses the CPU-time timers and reads the clocks before the other kinds spend CPU time (its
/// own docs explain why the restart order is safe). `tty` and `pty` save the user's terminal's
/// fds and the pty ends before the fd kinds that skip them (`pty` leaves the user's terminal
/// to `tty`). `sockets` restores before `files`: it closes the spare fds `dmtcp_restart` gave
/// it for refilling, at numbers a file of the program may be put at. memfd maps each memfd for
/// the image in save, so it comes before shm, which elects one writer per shared mapping it
/// finds then. The event kinds come after the fd kinds they do not depend on; epoll comes last
/// of all, as its interest list names fds of every other kind, which must be back at their
/// numbers (and refilled) before it adds them. `sysv` holds no fds and depends on no other
/// kind; it comes after `shm` so that its restore finds the memory the restorer mapped (its
/// attaches go over the restored areas) with every fd kind done. `mqueue` opens its queues
/// again at numbers no other kind uses, and before epoll, which may watch them.
pub static KINDS: [&Hooks; 17] = [
    &timers::HOOKS,
    &signal_state::HOOKS,
    &process::HOOKS,
    &tty::HOOKS,
    &pty::HOOKS,
    &sockets::HOOKS,
    &files::HOOKS,
    &pipes::HOOKS,
    &memfd::HOOKS,
    &shm::HOOKS,
    &sysv::HOOKS,
    // After sysv: its records follow the sets' in the image; it gives the adjustments back in
    // resume, once every set exists with its values again (SETALL would clear them).
    &sem_undo::HOOKS,
    &mqueue::HOOKS,
    &events::HOOKS,
    &inotify::HOOKS,
    &epoll::HOOKS,
    // Ended children are made again after every other kind is back (see its module).
    &zombies::HOOKS,
];

pub fn save() {
    for k in KINDS {
        trace!("saving {}", k.name);
        (k.save)();
    }
}

pub fn drain() {
    for k in KINDS {
        (k.drain)();
    }
}

/// Number of fd-table records of the image.
pub fn records() -> usize {
    KINDS.iter().map(|k| (k.records)()).sum()
}

/// Writes every kind's records, in registry order.
pub fn write_records(put: &mut RecordSink<'_>) {
    for k in KINDS {
        (k.write_records)(put);
    }
}

pub fn refill() {
    for k in KINDS {
        (k.refill)();
    }
}

pub fn restore() {
    for k in KINDS {
        trace!("restoring {}", k.name);
        (k.restore)();
    }
}

pub fn resume(phase: Phase) {
    for k in KINDS {
        (k.resume)(phase);
    }
}

// ---------------------------------------------------------------------------------------------
// Shared by the fd kinds.

/// Calls `f(fd)` for each of the program's open descriptors (ours, the coordinator connection
/// and the userfaultfd of incremental checkpoints (`fds::hidden`), left out; the restart-info fd is closed long before any checkpoint, so a program's fd 820 is
/// the program's).
pub fn for_each_program_fd(mut f: impl FnMut(c_int)) {
    crate::sys::for_each_numbered_entry(c"/proc/self/fd", |fd, dir| {
        let fd = fd as c_int;
        if fd != dir && fd != crate::fds::coord() && !crate::fds::is_hidden(fd) {
            f(fd);
        }
    });
}

/// Whether a kind other than `files` takes `fd` (`mode`: its st_mode, `link`: its
/// /proc/self/fd link). This is the one place that decides what is unsupported: `files` records
/// every program fd no other kind takes, as a file it reopens by path or, when it cannot, as
/// unsupported (a warning at checkpoint, a placeholder after restart). A kind that takes fds
/// adds its predicate here, so that they are neither reopened nor reported.
pub fn taken_by_another_kind(fd: c_int, mode: u32, link: Option<&[u8]>) -> bool {
    let fifo = mode & libc::S_IFMT == libc::S_IFIFO;
    // pipes: every anonymous pipe end ("pipe:[...]"; a named FIFO has a path).
    (fifo && link.and_then(pipes::pipe_id).is_some())
        // events, inotify, epoll: their anon_inode links.
        || link.is_some_and(events::is_event_link)
        // tty, pty: the user's terminal and the ptys of the computation.
        || tty::takes(fd)
        || pty::takes(fd)
        // sockets: the families it restores (not the placeholders files put in).
        || (mode & libc::S_IFMT == libc::S_IFSOCK && sockets::takes(fd))
        // mqueue: POSIX message queues (their links look like paths: "/name").
        || (mode & libc::S_IFMT == libc::S_IFREG && mqueue::takes(fd))
}

/// Calls `f(text)` once for each fd that no kind restores, naming it ("fd 5 (netlink socket,
/// socket:[123])"): the checkpoint thread sends each to the coordinator before DMT:Drain.
pub fn for_each_unsupported(mut f: impl FnMut(&[u8])) {
    files::for_each_unsupported(&mut f);
    // sockets: file descriptors in flight on UNIX sockets (SCM_RIGHTS).
    sockets::for_each_unsupported(f)
}

/// `/proc/self/fd/<fd>`, NUL-terminated.
pub fn fd_link_path(fd: c_int) -> crate::cstr::Fixed<64> {
    let mut link = crate::cstr::Fixed::<64>::new();
    let mut num = [0u8; 20];
    link.push(b"/proc/self/fd/");
    link.push(crate::cstr::fmt_u64(fd as u64, &mut num));
    link
}

/// What `fd` points at (the /proc/self/fd link), in `buf`; None if unreadable or too long.
pub fn fd_target(fd: c_int, buf: &mut [u8]) -> Option<&[u8]> {
    match crate::sys::readlink(fd_link_path(fd).as_cstr(), buf) {
        Ok(n) if n < buf.len() => Some(&buf[..n]),
        _ => None,
    }
}

/// Reports a failed system call of the restore path (one trace line; the restart goes on).
pub fn report(what: &str, fd: c_int, r: Result<(), crate::sys::Errno>) {
    if let Err(e) = r {
        trace!("after restart: {} on fd {} failed: {}", what, fd, crate::log::Bytes(crate::sys::strerror(e)));
    }
}
