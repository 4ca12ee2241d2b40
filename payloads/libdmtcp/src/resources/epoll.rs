//! epoll instances: their interest lists come back (each watched fd with its events, EPOLLET,
//! EPOLLONESHOT, EPOLLEXCLUSIVE and its data), nested epolls included.
//!
//! Design: discover, do not shadow. `save` reads each instance's interest list from the kernel
//! (`/proc/self/fdinfo`: `tfd: .. events: .. data: ..`, where `events` holds the flags too; a
//! one-shot entry that fired shows its flags only, and comes back as disarmed), checking with
//! kcmp(KCMP_EPOLL_TFD) that the fd number still holds the file that was added (an entry whose
//! fd was closed and its number reused is reported and left out). `restore` makes every
//! instance again at its number first, then adds every entry, so that an epoll watching another
//! epoll finds it there.
//!
//! The order: epoll is the last kind of `KINDS`, because its entries name fds of every other
//! kind (pipes, files, sockets, ptys, eventfds, timerfds, inotify, other epolls), which must be
//! back at their numbers, with their data refilled, before they are added.
//!
//! Readiness: adding an entry makes the kernel check its fd's readiness at once, so what was
//! ready at checkpoint (bytes in a pipe, an eventfd count, an expired timer) is reported again
//! by the next epoll_wait, level- and edge-triggered alike. An edge-triggered entry whose event
//! the program had already taken may be reported once more (an edge-triggered program reads
//! until EAGAIN, so one more report is harmless).
//!
//! Rules: hooks run in the checkpoint thread with every other thread stopped; no allocation
//! (fixed tables in .bss); system calls only through the typed wrappers of `sys::events`.
use super::events::{fd_flags, kind_of, place, place_dup, same_as, with_fdinfo, word, EventKind};
use super::{FdRecord, Hooks, RecordSink, NONE};
use crate::cell::Exclusive;
use crate::log::Bytes;
use crate::sys::{self, events as ev};
use core::ffi::c_int;
use dmtcp_proto::image::{EpollRecord, FdBody};

pub const HOOKS: Hooks = Hooks { name: "epoll", save, records, write_records, restore, ..NONE };

const MAX_FDS: usize = 128;
const MAX_ENTRIES: usize = 4096;

#[derive(Clone, Copy)]
struct Entry {
    /// The epoll's fd, the watched fd, its events and flags, its data.
    ep: c_int,
    tfd: c_int,
    events: u32,
    data: u64,
}

struct Table {
    recs: [FdRecord; MAX_FDS],
    n: usize,
    entries: [Entry; MAX_ENTRIES],
    ne: usize,
}

const EMPTY: FdRecord =
    FdRecord { fd: -1, fd_flags: 0, status: 0, body: FdBody::Epoll(EpollRecord { same_as: -1, entries: 0 }) };

static TABLE: Exclusive<Table> = Exclusive::new(Table {
    recs: [EMPTY; MAX_FDS],
    n: 0,
    entries: [Entry { ep: -1, tfd: -1, events: 0, data: 0 }; MAX_ENTRIES],
    ne: 0,
});

fn save() {
    TABLE.with(|t| {
        t.n = 0;
        t.ne = 0;
        super::for_each_program_fd(|fd| {
            if kind_of(fd) != Some(EventKind::Epoll) {
                return;
            }
            if t.n == MAX_FDS {
                warn!("more than {} epoll fds; fd {} is not saved", MAX_FDS, fd);
                return;
            }
            let same = same_as(fd, t.recs[..t.n].iter().map(|r| r.fd));
            let (fd_flags, status) = fd_flags(fd);
            let entries = if same < 0 { save_entries(fd, t) } else { 0 };
            t.recs[t.n] =
                FdRecord { fd, fd_flags, status, body: FdBody::Epoll(EpollRecord { same_as: same, entries }) };
            t.n += 1;
        });
    });
}

/// The interest list of the epoll at `ep` into `t.entries`; how many.
fn save_entries(ep: c_int, t: &mut Table) -> u32 {
    let mut n = 0;
    with_fdinfo(ep, |info| {
        let Some(info) = info else {
            warn!("cannot read the interest list of the epoll fd {}; it is not saved", ep);
            return;
        };
        for line in info.split(|&c| c == b'\n').filter(|l| l.starts_with(b"tfd:")) {
            let (Some(tfd), Some(events), Some(data)) =
                (word(line, b"tfd:", 10), word(line, b"events:", 16), word(line, b"data:", 16))
            else {
                warn!("epoll fd {}: cannot read the entry {}", ep, Bytes(line));
                continue;
            };
            let tfd = tfd as c_int;
            if ev::epoll_target_is(ep, tfd) == Some(false) {
                warn!(
                    "epoll fd {}: the file it watches as fd {} is no longer at that number; it is not restored",
                    ep, tfd
                );
                continue;
            }
            if t.ne == MAX_ENTRIES {
                warn!("more than {} epoll entries; fd {} of epoll fd {} is not restored", MAX_ENTRIES, tfd, ep);
                continue;
            }
            t.entries[t.ne] = Entry { ep, tfd, events: events as u32, data };
            t.ne += 1;
            n += 1;
        }
    });
    n
}

fn records() -> usize {
    TABLE.with(|t| t.n)
}

fn write_records(put: &mut RecordSink<'_>) {
    TABLE.with(|t| t.recs[..t.n].iter().for_each(put));
}

fn restore() {
    TABLE.with(|t| {
        // Every instance first (nested epolls), then every entry.
        for r in &t.recs[..t.n] {
            let FdBody::Epoll(b) = r.body else { continue };
            if b.same_as >= 0 {
                place_dup(r.fd, b.same_as, r.fd_flags, "epoll instance");
                continue;
            }
            match ev::epoll_create1(libc::EPOLL_CLOEXEC) {
                Ok(tmp) => {
                    place(tmp, r.fd, r.fd_flags, r.status, "epoll instance");
                }
                Err(e) => warn!("cannot make the epoll instance of fd {} again: {}", r.fd, Bytes(sys::strerror(e))),
            }
        }
        for e in &t.entries[..t.ne] {
            if let Err(err) = ev::epoll_add(e.ep, e.tfd, e.events, e.data) {
                warn!(
                    "epoll fd {}: cannot watch fd {} again after restart: {}",
                    e.ep,
                    e.tfd,
                    Bytes(sys::strerror(err))
                );
            }
        }
    });
}
