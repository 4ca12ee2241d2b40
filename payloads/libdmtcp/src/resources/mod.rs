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
//! `KINDS` lists the kinds; every phase runs them in that order: signal state, process, tty,
//! pty, files, pipes. The checkpoint thread calls the phases in this sequence:
//!
//! ```text
//! checkpoint:  DMT:SUSPEND, stop threads, DMT:CHECKPOINT
//!              save       collect the state (pipes: elect the drainer with F_SETOWN)
//!              DMT:Drain  (every process of the computation has saved and voted)
//!              drain      take data out of the kernel (pipes: the bytes in flight)
//!              records    count and write the image's records (while writing the image)
//!              refill     put the data back (after the image, or when the checkpoint is dropped)
//!              DMT:WriteCkpt
//!              resume(Checkpointed), then the threads run
//! restart:     (restorer, threads back) restore  give the kernel the state back (files
//!              reopened, pipes' flags and bytes)
//!              DMT:Restart
//!              resume(Restarted) (signal state: raise the pending signals), then the threads run
//! ```
pub mod files;
pub mod pipes;
pub mod process;
pub mod pty;
pub mod signal_state;
pub mod tty;

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

/// The registry, in the documented order (module docs).
/// `tty` and `pty` come before `files`: they save the user's terminal's fds and the pty ends
/// first, which `files` then skips (and `pty` leaves the user's terminal to `tty`).
pub static KINDS: [&Hooks; 6] =
    [&signal_state::HOOKS, &process::HOOKS, &tty::HOOKS, &pty::HOOKS, &files::HOOKS, &pipes::HOOKS];

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
/// and the restart-info fd, left out).
pub fn for_each_program_fd(mut f: impl FnMut(c_int)) {
    crate::sys::for_each_numbered_entry(c"/proc/self/fd", |fd, dir| {
        let fd = fd as c_int;
        if fd != dir && fd != dmtcp_proto::COORD_FD && fd != dmtcp_proto::env::RESTART_INFO_FD {
            f(fd);
        }
    });
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
