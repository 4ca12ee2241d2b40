//! inotify instances: their watches are added again by path with their masks, and each keeps
//! the watch descriptor the program holds.
//!
//! Design: the kernel says which watches exist (`/proc/self/fdinfo`: `inotify wd:.. ino:..
//! mask:..`), not by which path: the paths come from the wrappers of `inotify_calls` (its
//! module docs say why a wrapper), checked at checkpoint against the watch's inode; a watch
//! whose path is unknown or now names another file is reported and left out. The kernel hands
//! out watch descriptors cyclically (1, 2, 3, ... never reusing one until it wraps), so a
//! restart adds the watches in the order of their numbers into a new instance and uses up
//! (adds and removes a watch on a spare folder: `burn`) every number in between, and after the
//! last one up to the highest number the instance had handed out, so that the next
//! `inotify_add_watch` returns the number it would have. The IN_IGNORED events of the burnt
//! numbers are read out before the program runs.
//!
//! Gap: events queued but not yet read at checkpoint are not delivered after a restart (the
//! kernel has no way to queue an event by hand, and delivering them from our memory would mean
//! wrapping every read of the fd); the checkpoint does not touch them, so a checkpoint without a
//! restart loses nothing. A restart warns with the number of bytes lost.
//!
//! Rules: hooks run in the checkpoint thread with every other thread stopped; no allocation
//! (fixed tables in .bss); system calls only through the typed wrappers of `sys::events`.
use super::events::{fd_flags, kind_of, place, place_dup, same_as, with_fdinfo, word, EventKind};
use super::{report, FdRecord, Hooks, RecordSink, NONE};
use crate::cell::Exclusive;
use crate::inotify_calls::{with_watches, Watches, MAX_WATCHES};
use crate::log::Bytes;
use crate::sys::{self, events as ev};
use core::ffi::c_int;
use dmtcp_proto::image::{FdBody, InotifyRecord};

pub const HOOKS: Hooks = Hooks { name: "inotify", save, records, write_records, restore, ..NONE };

const MAX_FDS: usize = 64;
/// Flags of a watch the kernel's fdinfo does not show (they act when the path is looked up).
const LOOKUP_FLAGS: u32 = libc::IN_DONT_FOLLOW | libc::IN_ONLYDIR;
const IN_MASK_CREATE: u32 = 0x1000_0000;
/// Folders to burn watch numbers on: the first one this instance does not watch yet.
const BURNERS: [&core::ffi::CStr; 5] = [c"/", c"/proc", c"/dev", c"/sys", c"/etc"];
/// More numbers than this to burn means a broken count; stop there.
const MAX_BURN: c_int = 1 << 22;

#[derive(Clone, Copy)]
struct Saved {
    /// The instance's fd and the watch's descriptor.
    fd: c_int,
    wd: c_int,
    mask: u32,
    /// Its slot in `inotify_calls`' table, which holds the path.
    slot: usize,
}

struct Table {
    recs: [FdRecord; MAX_FDS],
    n: usize,
    watches: [Saved; MAX_WATCHES],
    nw: usize,
}

const EMPTY: FdRecord = FdRecord {
    fd: -1,
    fd_flags: 0,
    status: 0,
    body: FdBody::Inotify(InotifyRecord { same_as: -1, watches: 0, last_wd: 0, queued: 0 }),
};

static TABLE: Exclusive<Table> = Exclusive::new(Table {
    recs: [EMPTY; MAX_FDS],
    n: 0,
    watches: [Saved { fd: -1, wd: 0, mask: 0, slot: 0 }; MAX_WATCHES],
    nw: 0,
});

fn save() {
    with_watches(|noted| {
        TABLE.with(|t| {
            t.n = 0;
            t.nw = 0;
            if noted.overflow > 0 {
                warn!("{} inotify watches were added beyond our table; they are not restored", noted.overflow);
            }
            let mut live = [false; MAX_WATCHES];
            super::for_each_program_fd(|fd| {
                if kind_of(fd) != Some(EventKind::Inotify) {
                    return;
                }
                if t.n == MAX_FDS {
                    warn!("more than {} inotify fds; fd {} is not saved", MAX_FDS, fd);
                    return;
                }
                let same = same_as(fd, t.recs[..t.n].iter().map(|r| r.fd));
                let (fd_flags, status) = fd_flags(fd);
                let mut body = InotifyRecord { same_as: same, watches: 0, last_wd: 0, queued: 0 };
                if same < 0 {
                    body = save_instance(fd, t, noted, &mut live);
                }
                t.recs[t.n] = FdRecord { fd, fd_flags, status, body: FdBody::Inotify(body) };
                t.n += 1;
            });
            // What the table noted for watches that are gone (removed by the kernel, or their
            // instance closed) is forgotten.
            for (w, &l) in noted.w.iter_mut().zip(live.iter()) {
                w.used &= l;
            }
            // Restored in the order of their numbers, per instance.
            let ws = &mut t.watches[..t.nw];
            ws.sort_unstable_by_key(|s| (s.fd, s.wd));
        });
    });
}

/// The watches of the instance at `fd` into `t.watches`; its record.
fn save_instance(fd: c_int, t: &mut Table, noted: &mut Watches, live: &mut [bool; MAX_WATCHES]) -> InotifyRecord {
    let mut rec = InotifyRecord { same_as: -1, watches: 0, last_wd: 0, queued: 0 };
    // The fds the wrappers saw for this instance: this one and its dups.
    let mine = |other: c_int| other == fd || ev::same_file(other, fd);
    for i in noted.inst.iter().filter(|i| i.fd >= 0 && mine(i.fd)) {
        rec.last_wd = rec.last_wd.max(i.last_wd);
    }
    rec.queued = sys::readable_bytes(fd).unwrap_or(0) as u64;
    with_fdinfo(fd, |info| {
        let Some(info) = info else {
            warn!("cannot read the watches of the inotify fd {}; they are not restored", fd);
            return;
        };
        for line in info.split(|&c| c == b'\n').filter(|l| l.starts_with(b"inotify ")) {
            let (Some(wd), Some(ino), Some(mask)) =
                (word(line, b"wd:", 16), word(line, b"ino:", 16), word(line, b"mask:", 16))
            else {
                continue;
            };
            let (wd, mask) = (wd as c_int, mask as u32);
            rec.last_wd = rec.last_wd.max(wd);
            let slot = noted.w.iter().position(|w| w.used && w.wd == wd && mine(w.fd));
            let Some(slot) = slot else {
                warn!("inotify fd {}: watch {} was not added through inotify_add_watch; it is not restored", fd, wd);
                continue;
            };
            let w = &noted.w[slot];
            let follow = w.mask & libc::IN_DONT_FOLLOW == 0;
            if w.path.is_empty() || ev::inode_of(w.path.as_cstr(), follow) != Ok(ino) {
                warn!(
                    "inotify fd {}: watch {} ({}) no longer names the file it watches; it is not restored",
                    fd,
                    wd,
                    Bytes(w.path.bytes())
                );
                continue;
            }
            if t.nw == MAX_WATCHES {
                warn!("inotify fd {}: more than {} watches; watch {} is not restored", fd, MAX_WATCHES, wd);
                continue;
            }
            live[slot] = true;
            t.watches[t.nw] = Saved { fd, wd, mask: mask | (w.mask & LOOKUP_FLAGS), slot };
            t.nw += 1;
            rec.watches += 1;
        }
    });
    rec
}

fn records() -> usize {
    TABLE.with(|t| t.n)
}

fn write_records(put: &mut RecordSink<'_>) {
    TABLE.with(|t| t.recs[..t.n].iter().for_each(put));
}

fn restore() {
    with_watches(|noted| {
        TABLE.with(|t| {
            for r in &t.recs[..t.n] {
                let FdBody::Inotify(b) = r.body else { continue };
                if b.same_as >= 0 {
                    place_dup(r.fd, b.same_as, r.fd_flags, "inotify instance");
                    continue;
                }
                let tmp = match ev::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) {
                    Ok(fd) => fd,
                    Err(e) => {
                        warn!("cannot make the inotify instance of fd {} again: {}", r.fd, Bytes(sys::strerror(e)));
                        continue;
                    }
                };
                // Non-blocking until its queue is emptied of our own events (below).
                if !place(tmp, r.fd, r.fd_flags, r.status | libc::O_NONBLOCK as u32, "inotify instance") {
                    continue;
                }
                let watches = t.watches[..t.nw].iter().filter(|s| s.fd == r.fd);
                add_again(r.fd, watches, b.last_wd, noted);
                drain(r.fd);
                let fl = sys::fcntl(r.fd, libc::F_GETFL, 0).unwrap_or(0);
                let want = (fl & !libc::O_NONBLOCK) | (r.status as c_int & libc::O_NONBLOCK);
                report("setting the status flags", r.fd, sys::fcntl(r.fd, libc::F_SETFL, want).map(|_| ()));
                if b.queued > 0 {
                    warn!(
                        "inotify fd {}: {} bytes of events queued at checkpoint are not delivered after restart",
                        r.fd, b.queued
                    );
                }
            }
        });
    });
}

/// Adds the watches (in the order of their numbers) to the fresh instance at `fd`, using up the
/// numbers between them and up to `last_wd` (module docs).
fn add_again<'a>(fd: c_int, watches: impl Iterator<Item = &'a Saved>, last_wd: c_int, noted: &Watches) {
    let mut next: c_int = 1;
    for s in watches {
        let path = &noted.w[s.slot].path;
        while next < s.wd {
            match burn(fd) {
                Some(b) if b >= next => next = b + 1,
                _ => break,
            }
        }
        match ev::inotify_add_watch(fd, path.as_cstr(), s.mask) {
            Ok(wd) if wd == s.wd => next = wd + 1,
            Ok(wd) => {
                warn!(
                    "inotify fd {}: the watch on {} came back as {} instead of {}",
                    fd,
                    Bytes(path.bytes()),
                    wd,
                    s.wd
                );
                next = next.max(wd + 1);
            }
            Err(e) => {
                warn!("inotify fd {}: cannot watch {} again: {}", fd, Bytes(path.bytes()), Bytes(sys::strerror(e)))
            }
        }
    }
    while next <= last_wd && next < MAX_BURN {
        match burn(fd) {
            Some(b) if b >= next => next = b + 1,
            _ => break,
        }
    }
}

/// Adds and removes one watch on a folder the instance does not watch: its number is used up.
fn burn(fd: c_int) -> Option<c_int> {
    for p in BURNERS {
        match ev::inotify_add_watch(fd, p, libc::IN_ATTRIB | IN_MASK_CREATE) {
            Ok(wd) => {
                let _ = ev::inotify_rm_watch(fd, wd);
                return Some(wd);
            }
            Err(libc::EEXIST) => continue,
            Err(e) => {
                trace!("inotify fd {}: cannot use a watch number up on {:?}: {}", fd, p, Bytes(sys::strerror(e)));
            }
        }
    }
    warn!("inotify fd {}: cannot keep the watch numbers after restart", fd);
    None
}

/// Reads out the IN_IGNORED events that burning queued.
fn drain(fd: c_int) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = sys::read_some(fd, &mut buf) {
        if n == 0 {
            break;
        }
    }
}
