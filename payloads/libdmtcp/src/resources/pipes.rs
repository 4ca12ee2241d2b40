//! Pipes stay pipes (design notes). Every pipe end is listed in the image's fd table (one
//! `FD_PIPE` record per end), and `dmtcp_restart` recreates each pipe of the computation once,
//! with its ends at the same fd numbers in every process that had them. The bytes in flight are
//! read out at checkpoint by one process per pipe (the drainer: elected, like DMTCP, by every
//! holder of a read end setting itself as the end's F_SETOWN owner in `save`, before the
//! DMT:Drain barrier; the last one wins and the owner is put back in `refill`), kept in an
//! anonymous mapping (so they are in the image) and written back, through a write end opened by
//! /proc/self/fd, before the program resumes: after the image is written, or after a restart.
//!
//! Rules: hooks run in the checkpoint thread with every other thread stopped; no allocation
//! (fixed table in .bss; drained bytes in mmap'ed memory, never malloc).
use super::{report, Hooks, RecordSink, NONE};
use crate::cell::Exclusive;
use crate::log::Bytes;
use crate::sys::{self, Mapping, OwnerEx};
use core::ffi::c_int;

pub const HOOKS: Hooks = Hooks { name: "pipes", save, drain, records, write_records, refill, restore, ..NONE };

const MAX_PIPE_ENDS: usize = 512;
/// Room for "pipe:[<inode>]".
const LINK_LEN: usize = 64;
/// Status flags given back to a recreated end (the others are fixed by pipe2 or the access).
const RESTORED_FLAGS: c_int = libc::O_NONBLOCK | libc::O_DIRECT;

struct End {
    fd: c_int,
    /// F_GETFL at checkpoint.
    flags: c_int,
    cloexec: bool,
    /// The pipe's inode number: the same pipe in every process.
    pipe_id: u64,
    pipe_size: u32,
    /// F_GETOWN_EX of a read end before the election.
    owner: OwnerEx,
    /// Bytes drained from the pipe by this process, to write back, and how many.
    held: Option<Mapping>,
    held_len: usize,
}

impl End {
    fn is_read_end(&self) -> bool {
        self.flags & libc::O_ACCMODE == libc::O_RDONLY
    }
}

struct Table {
    ends: [End; MAX_PIPE_ENDS],
    n: usize,
}

static TABLE: Exclusive<Table> = Exclusive::new(Table {
    ends: [const {
        End { fd: -1, flags: 0, cloexec: false, pipe_id: 0, pipe_size: 0, owner: [0, 0], held: None, held_len: 0 }
    }; MAX_PIPE_ENDS],
    n: 0,
});

/// The inode of a pipe from its /proc/self/fd link ("pipe:[12345]").
pub fn pipe_id(link: &[u8]) -> Option<u64> {
    link.strip_prefix(b"pipe:[").and_then(|r| r.strip_suffix(b"]")).and_then(crate::cstr::parse_u64)
}

fn is_pipe(fd: c_int) -> bool {
    sys::fstat(fd).is_ok_and(|st| st.mode & libc::S_IFMT == libc::S_IFIFO)
}

/// Finds the pipe ends and, for each read end, votes to be its drainer.
fn save() {
    TABLE.with(|t| {
        t.n = 0;
        let me = sys::getpid();
        super::for_each_program_fd(|fd| {
            if !is_pipe(fd) {
                return;
            }
            let mut buf = [0u8; LINK_LEN];
            let Some(id) = super::fd_target(fd, &mut buf).and_then(pipe_id) else { return };
            if t.n == MAX_PIPE_ENDS {
                trace!("more than {} pipe ends; fd {} is not saved", MAX_PIPE_ENDS, fd);
                return;
            }
            let e = &mut t.ends[t.n];
            e.fd = fd;
            e.flags = sys::fcntl(fd, libc::F_GETFL, 0).unwrap_or(-1);
            e.cloexec = sys::fcntl(fd, libc::F_GETFD, 0).is_ok_and(|f| f & libc::FD_CLOEXEC != 0);
            e.pipe_id = id;
            e.pipe_size = sys::fcntl(fd, libc::F_GETPIPE_SZ, 0).unwrap_or(0) as u32;
            e.owner = [0, 0];
            e.held = None;
            e.held_len = 0;
            if e.is_read_end() {
                e.owner = sys::get_owner_ex(fd).unwrap_or([0, 0]);
                // The election: whoever sets the owner last drains (see the module docs).
                if let Err(err) = sys::fcntl(fd, libc::F_SETOWN, me) {
                    trace!("cannot vote to drain the pipe at fd {}: {}", fd, Bytes(sys::strerror(err)));
                }
            }
            t.n += 1;
        });
    });
}

/// After the DMT:Drain barrier, every other process stopped: reads out the bytes in flight of
/// each pipe whose elected drainer we are (once per pipe) into anonymous memory.
fn drain() {
    TABLE.with(|t| {
        let me = sys::getpid();
        for i in 0..t.n {
            let (fd, id) = (t.ends[i].fd, t.ends[i].pipe_id);
            if !t.ends[i].is_read_end() || t.ends[..i].iter().any(|o| o.is_read_end() && o.pipe_id == id) {
                continue;
            }
            if sys::fcntl(fd, libc::F_GETOWN, 0).ok() != Some(me) {
                continue;
            }
            let len = match sys::readable_bytes(fd) {
                Ok(n) if n > 0 => n,
                _ => continue,
            };
            // A fresh anonymous mapping (part of the image), ours until `refill` drops it.
            let Ok(mut map) = Mapping::new(len) else {
                warn!("cannot hold the {} bytes in flight in the pipe at fd {}; they stay in the pipe", len, fd);
                continue;
            };
            let buf = map.bytes();
            let mut got = 0;
            while got < len {
                match sys::read_some(fd, &mut buf[got..len]) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => got += k,
                }
            }
            t.ends[i].held = Some(map);
            t.ends[i].held_len = got;
            trace!("drained {} bytes from the pipe at fd {}", got, fd);
        }
    });
}

fn records() -> usize {
    TABLE.with(|t| t.n)
}

fn write_records(put: &mut RecordSink<'_>) {
    use dmtcp_proto::image::{FdBody, FdRecord, PipeEnd, PipeRecord};
    TABLE.with(|t| {
        for e in &t.ends[..t.n] {
            put(&FdRecord {
                fd: e.fd,
                fd_flags: if e.cloexec { libc::FD_CLOEXEC as u32 } else { 0 },
                status: e.flags as u32,
                body: FdBody::Pipe(PipeRecord {
                    end: if e.is_read_end() { PipeEnd::Read } else { PipeEnd::Write },
                    pipe_size: e.pipe_size,
                    id: e.pipe_id,
                    pending: e.held_len as u64,
                }),
            });
        }
    });
}

/// Writes the drained bytes back into their pipes and gives the read ends their owners back.
/// At checkpoint: after the image is written, before the DMT:WriteCkpt barrier (nobody runs
/// yet); after a restart: at the end of `restore`, before the DMT:Restart barrier.
fn refill() {
    TABLE.with(|t| {
        for e in t.ends[..t.n].iter_mut() {
            if let Some(map) = e.held.take() {
                if !write_back(e.fd, &map.as_slice()[..e.held_len]) {
                    warn!("lost {} bytes in flight in the pipe at fd {}", e.held_len, e.fd);
                }
                e.held_len = 0;
                // `map` is unmapped here.
            }
            if e.is_read_end() {
                report("restoring the owner", e.fd, sys::set_owner_ex(e.fd, &e.owner));
            }
        }
    });
}

/// Writes `bytes` into the pipe whose read end is `fd`, through a write end of our own.
fn write_back(fd: c_int, bytes: &[u8]) -> bool {
    if bytes.is_empty() {
        return true;
    }
    if !is_pipe(fd) {
        return false;
    }
    let Ok(w) = sys::open(super::fd_link_path(fd).as_cstr(), libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC)
    else {
        return false;
    };
    let ok = sys::write_all(w, bytes).is_ok();
    sys::close(w);
    ok
}

/// After a restart: dmtcp_restart put a pipe at each end's number (if it was one between
/// processes of the computation); give it its flags back, then the bytes in flight.
fn restore() {
    TABLE.with(|t| {
        for e in &t.ends[..t.n] {
            if is_pipe(e.fd) {
                report(
                    "setting close-on-exec",
                    e.fd,
                    sys::fcntl(e.fd, libc::F_SETFD, if e.cloexec { libc::FD_CLOEXEC } else { 0 }).map(|_| ()),
                );
                report(
                    "setting the status flags",
                    e.fd,
                    sys::fcntl(e.fd, libc::F_SETFL, e.flags & RESTORED_FLAGS).map(|_| ()),
                );
            } else if e.fd > 2 {
                trace!("pipe fd {} is not restored", e.fd);
            }
        }
    });
    refill();
}
