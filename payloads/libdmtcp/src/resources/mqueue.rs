//! POSIX message queues (mq_open): each descriptor comes back at its number, open on a queue
//! of the same name, attributes (maxmsg, msgsize), mode and access, with the messages that
//! were queued at checkpoint, in order and with their priorities.
//!
//! Design: the process itself opens the queue again after restart (mq_open with O_CREAT: the
//! first process of the computation to get there makes it, the others open it), so
//! `dmtcp_restart` only has to give the group an IPC namespace of its own (a queue lives in its
//! IPC namespace's mqueue fs; the record says so, `src/restart/ipc.rs`), where no queue of the
//! killed run is in the way. The name, read from the descriptor's /proc/self/fd link, stays in
//! this kind's table, which is in the image. The messages: one process per queue (the first
//! of the computation to create a lock file named after the queue's inode, as `shm` elects)
//! takes them all out in `drain` into a mapping of its own (so they are in its image) and
//! sends them back in `refill`; after a restart it sends them to the new queue in `restore`.
//! Taking them out and sending them back keeps their order: a queue gives its messages highest
//! priority first, oldest first within a priority, and queues them the same way again. A queue
//! whose name was unlinked is made under its name and unlinked again in `resume`, once every
//! process holds it. A queue of an outside program's is brought back the same way (the
//! computation's view of it); the outside program does not share it after a restart.
//!
//! Not restored: mq_notify registrations (the kernel does not show them to us beyond
//! /proc/self/fdinfo's NOTIFY_PID, and a registration is another process's), the sharing of one
//! open description between processes (each opens its own, with the same flags).
//!
//! Rules: hooks run in the checkpoint thread with every other thread stopped; no allocation
//! (fixed table in .bss, messages in mappings of our own); no unsafe (`sys::ipc`).
use super::{report, FdRecord, Hooks, RecordSink};
use crate::cell::Exclusive;
use crate::cstr::Fixed;
use crate::log::Bytes;
use crate::sys::{self, ipc, Mapping};
use core::ffi::c_int;
use dmtcp_proto::image::{FdBody, MqueueRecord, MQ_HOLDER, MQ_UNLINKED};

pub const HOOKS: Hooks = Hooks { name: "mqueue", save, drain, records, write_records, refill, restore, resume };

const MAX_QUEUES: usize = 64;
const NAME_MAX: usize = 256;
const PAGE: usize = 4096;

struct Entry {
    fd: c_int,
    status: c_int,
    cloexec: bool,
    /// The queue's name as mq_open takes it ("/name"), NUL-terminated.
    name: Fixed<NAME_MAX>,
    rec: MqueueRecord,
    /// This process made the lock file and removes it.
    won: bool,
    /// The messages this process took out (holder): each a u64 length, a u32 priority, 4
    /// bytes of padding and the text padded to 8 bytes.
    msgs: Option<Mapping>,
    count: usize,
}

struct Table {
    e: [Option<Entry>; MAX_QUEUES],
    n: usize,
}

static TABLE: Exclusive<Table> = Exclusive::new(Table { e: [const { None }; MAX_QUEUES], n: 0 });

/// Whether `fd` is a message queue this kind restores (`files` skips it).
pub fn takes(fd: c_int) -> bool {
    ipc::is_mqueue(fd)
}

fn lock_path(inode: u64, p: &mut Fixed<4200>) -> bool {
    super::shm::lock_prefix(b"mq", p) && p.push(b"-") && super::shm::push_hex(p, inode)
}

fn save() {
    TABLE.with(|t| {
        t.n = 0;
        super::for_each_program_fd(|fd| {
            if !ipc::is_mqueue(fd) {
                return;
            }
            if t.n == MAX_QUEUES {
                warn!("more than {} message queue descriptors; fd {} is not restored", MAX_QUEUES, fd);
                return;
            }
            let mut link = [0u8; NAME_MAX + 16];
            let Some(l) = super::fd_target(fd, &mut link) else { return };
            let (l, unlinked) = match l.strip_suffix(b" (deleted)") {
                Some(base) => (base, true),
                None => (l, false),
            };
            let mut name = Fixed::<NAME_MAX>::new();
            if !name.set(l) {
                return;
            }
            let Ok(info) = sys::fstat(fd) else { return };
            let Ok((maxmsg, msgsize, curmsgs)) = ipc::mq_getattr(fd) else { return };
            let seen = t.e[..t.n].iter().flatten().any(|o| o.rec.inode == info.ino);
            let (holder, won) = if seen {
                (false, false)
            } else {
                let mut path = Fixed::<4200>::new();
                match lock_path(info.ino, &mut path).then(|| sys::create_exclusive(path.as_cstr())) {
                    Some(Ok(w)) => (w, w),
                    Some(Err(e)) => {
                        warn!(
                            "cannot create {} ({}); this process keeps the messages of {}",
                            Bytes(path.bytes()),
                            Bytes(sys::strerror(e)),
                            Bytes(l)
                        );
                        (true, false)
                    }
                    None => (true, false),
                }
            };
            let mut flags = if unlinked { MQ_UNLINKED } else { 0 };
            if holder {
                flags |= MQ_HOLDER;
            }
            t.e[t.n] = Some(Entry {
                fd,
                status: sys::fcntl(fd, libc::F_GETFL, 0).unwrap_or(libc::O_RDWR),
                cloexec: sys::fcntl(fd, libc::F_GETFD, 0).is_ok_and(|f| f & libc::FD_CLOEXEC != 0),
                name,
                rec: MqueueRecord { mode: info.mode & 0o7777, flags, maxmsg, msgsize, curmsgs, inode: info.ino },
                won,
                msgs: None,
                count: 0,
            });
            t.n += 1;
        });
    });
}

/// A descriptor of the queue at `fd` open for `mode` (O_RDONLY or O_WRONLY), non-blocking.
fn reopen(fd: c_int, mode: c_int) -> Result<c_int, sys::Errno> {
    sys::open(super::fd_link_path(fd).as_cstr(), mode | libc::O_NONBLOCK | libc::O_CLOEXEC)
}

/// Every process has elected (past DMT:Drain): each holder takes its queue's messages out.
fn drain() {
    TABLE.with(|t| {
        for e in t.e[..t.n].iter_mut().flatten() {
            if e.rec.flags & MQ_HOLDER == 0 {
                continue;
            }
            let (maxmsg, msgsize, cur) = ipc::mq_getattr(e.fd).unwrap_or((e.rec.maxmsg, e.rec.msgsize, 0));
            e.rec.curmsgs = cur;
            if cur == 0 {
                continue;
            }
            let slot = 16 + (msgsize as usize).div_ceil(8) * 8;
            let Ok(mut m) = Mapping::new((slot * maxmsg as usize).div_ceil(PAGE) * PAGE) else {
                warn!("cannot map memory for the messages of {}; they are not checkpointed", Bytes(e.name.bytes()));
                continue;
            };
            let rd = match reopen(e.fd, libc::O_RDONLY) {
                Ok(fd) => fd,
                Err(err) => {
                    warn!("cannot read the messages of {}: {}", Bytes(e.name.bytes()), Bytes(sys::strerror(err)));
                    continue;
                }
            };
            let b = m.bytes();
            let (mut at, mut count) = (0, 0);
            while at + slot <= b.len() {
                match ipc::mq_receive_now(rd, &mut b[at + 16..at + slot]) {
                    Ok((len, prio)) => {
                        b[at..at + 8].copy_from_slice(&(len as u64).to_ne_bytes());
                        b[at + 8..at + 12].copy_from_slice(&prio.to_ne_bytes());
                        at += 16 + len.div_ceil(8) * 8;
                        count += 1;
                    }
                    Err(_) => break,
                }
            }
            sys::close(rd);
            e.rec.curmsgs = count as u64;
            e.count = count;
            e.msgs = Some(m);
        }
    });
}

fn records() -> usize {
    TABLE.with(|t| t.n)
}

fn write_records(put: &mut RecordSink<'_>) {
    TABLE.with(|t| {
        for e in t.e[..t.n].iter().flatten() {
            put(&FdRecord {
                fd: e.fd,
                fd_flags: if e.cloexec { libc::FD_CLOEXEC as u32 } else { 0 },
                status: e.status as u32,
                body: FdBody::Mqueue(e.rec),
            });
        }
    });
}

/// Sends the messages `e` holds to the queue at `fd` (a descriptor open for writing).
fn send_back(e: &Entry, fd: c_int) {
    let Some(m) = &e.msgs else { return };
    let b = m.as_slice();
    let mut at = 0;
    for _ in 0..e.count {
        let mut l = [0u8; 8];
        l.copy_from_slice(&b[at..at + 8]);
        let len = u64::from_ne_bytes(l) as usize;
        let prio = u32::from_ne_bytes([b[at + 8], b[at + 9], b[at + 10], b[at + 11]]);
        if let Err(err) = ipc::mq_send_now(fd, &b[at + 16..at + 16 + len], prio) {
            warn!("cannot put a message back into {}: {}", Bytes(e.name.bytes()), Bytes(sys::strerror(err)));
            return;
        }
        at += 16 + len.div_ceil(8) * 8;
    }
}

/// The image is written (or the checkpoint dropped): the messages go back, the lock files go.
fn refill() {
    TABLE.with(|t| {
        for e in t.e[..t.n].iter_mut().flatten() {
            if e.msgs.is_some() {
                match reopen(e.fd, libc::O_WRONLY) {
                    Ok(wr) => {
                        send_back(e, wr);
                        sys::close(wr);
                    }
                    Err(err) => warn!(
                        "cannot put the messages of {} back: {}",
                        Bytes(e.name.bytes()),
                        Bytes(sys::strerror(err))
                    ),
                }
                e.msgs = None;
                e.count = 0;
            }
            if e.won {
                let mut path = Fixed::<4200>::new();
                if lock_path(e.rec.inode, &mut path) {
                    let _ = sys::unlink(path.as_cstr());
                }
                e.won = false;
            }
        }
    });
}

/// After a restart: each descriptor opened again at its number; the holder's messages sent.
fn restore() {
    TABLE.with(|t| {
        for e in t.e[..t.n].iter_mut().flatten() {
            let access = e.status & libc::O_ACCMODE;
            let oflag = access | (e.status & libc::O_NONBLOCK) | libc::O_CLOEXEC;
            let fd = match ipc::mq_create(e.name.as_cstr(), oflag, e.rec.mode, e.rec.maxmsg, e.rec.msgsize) {
                Ok(fd) => fd,
                Err(err) => {
                    warn!(
                        "after restart: cannot open the message queue {} again (fd {}): {}",
                        Bytes(e.name.bytes()),
                        e.fd,
                        Bytes(sys::strerror(err))
                    );
                    continue;
                }
            };
            let _ = ipc::fchmod(fd, e.rec.mode);
            if fd == e.fd {
                // Its number was the lowest free one: it is in place already.
                let cloexec = if e.cloexec { libc::FD_CLOEXEC } else { 0 };
                report("setting close-on-exec", e.fd, sys::fcntl(e.fd, libc::F_SETFD, cloexec).map(|_| ()));
            } else {
                let flags = if e.cloexec { libc::O_CLOEXEC } else { 0 };
                report("placing a message queue", e.fd, sys::dup3(fd, e.fd, flags));
                sys::close(fd);
            }
            if e.msgs.is_some() {
                match ipc::mq_create(
                    e.name.as_cstr(),
                    libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
                    e.rec.mode,
                    e.rec.maxmsg,
                    e.rec.msgsize,
                ) {
                    Ok(wr) => {
                        send_back(e, wr);
                        sys::close(wr);
                    }
                    Err(err) => warn!(
                        "after restart: cannot put the messages of {} back: {}",
                        Bytes(e.name.bytes()),
                        Bytes(sys::strerror(err))
                    ),
                }
                e.msgs = None;
                e.count = 0;
            }
        }
    });
}

/// After DMT:Restart (every process holds its queues): a queue whose name had been unlinked
/// loses it again.
fn resume(phase: super::Phase) {
    if phase != super::Phase::Restarted {
        return;
    }
    TABLE.with(|t| {
        for e in t.e[..t.n].iter().flatten() {
            if e.rec.flags & (MQ_UNLINKED | MQ_HOLDER) == MQ_UNLINKED | MQ_HOLDER {
                let _ = ipc::mq_unlink(e.name.as_cstr());
            }
        }
    });
}
