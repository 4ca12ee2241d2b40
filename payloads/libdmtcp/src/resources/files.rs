//! Open descriptors no other kind takes (`super::taken_by_another_kind` decides: pipes, event fds): regular files,
//! folders, block devices and the stateless character devices (/dev/null, /dev/zero, /dev/full,
//! /dev/random, /dev/urandom) are recorded with their path, status flags,
//! close-on-exec flag and offset, and `dmtcp_restart` opens them again (`src/restart/files.rs`)
//! once per open file description; everything else is unsupported: it is reported at
//! checkpoint (to the coordinator, which warns or, with `--strict`, abandons the checkpoint)
//! and recorded as a placeholder, which `dmtcp_restart` puts at its number.
//! A terminal at fd 0-2 gets no record: the restored process uses dmtcp_restart's own.
//!
//! # Shared descriptions
//! An fd inherited over fork (or dup'ed) shares one open file description with the others:
//! one offset, one set of status flags. Each process names each of its descriptions by a key
//! that every holder computes alike: the lowest pid that holds it, and that process's lowest fd
//! of it. The holders are found with kcmp(KCMP_FILE) in `drain` (after DMT:Drain, when every
//! process of the computation is stopped, so no fd table changes under the scan): first against
//! our own earlier fds (a dup), then against every fd of every process with a lower pid in
//! /proc. kcmp only compares, so the program sees nothing (an F_SETOWN election, as `pipes`
//! uses, would have to put back an owner the program may have set on the shared description,
//! and cannot know which holder saw the program's own owner). Where kcmp is refused (a kernel
//! without it, a process we may not inspect) the description is keyed by our own pid and fd:
//! it is opened for this process alone, as before (never wrongly merged with another).
//!
//! # Saved contents (`--checkpoint-open-files`, DMTCP_CKPT_OPEN_FILES=1)
//! The bytes of each regular file held open go into the fd table after its path
//! (`dmtcp_proto::image::file_data`), once per file per process: by the fd that is the key of
//! its description (so one description shared by several processes is saved by one of them),
//! and only the first description of a (device, inode) in this process. Bounded by
//! `MAX_SAVED_FILE` per file and `MAX_SAVED_PROCESS` per process; a file over either is not
//! saved (a warning names it) and is opened again as it is at restart. The bytes are read in
//! `write_records` with pread, which moves no offset; through the fd itself when it can read,
//! else through a read-only open of /proc/self/fd/N, closed at once. dmtcp_restart puts the
//! contents back before the processes exist (`src/restart/files.rs`).
//!
//! # Paths
//! A path of any length up to PATH_MAX is kept here (in .bss, so in the image) and written
//! into the fd table as the file record and its FD_PATH pieces (`dmtcp_proto::image::file`).
//!
//! Rules: hooks run in the checkpoint thread with every other thread stopped; no allocation
//! (fixed table in .bss; /proc read with getdents).
use super::{report, Hooks, RecordSink, NONE};
use crate::cell::Exclusive;
use crate::cstr::Fixed;
use crate::log::Bytes;
use crate::sys;
use core::ffi::c_int;
use dmtcp_proto::image::{
    FdBody, FdRecord, FileBytes, FileDataRecord, FileRecord, FileWhat, PathPiece, PlaceholderRecord, Text,
    DATA_OVERWRITE, DATA_PIECE, MAX_PATH, MAX_SAVED_FILE, MAX_SAVED_PROCESS,
};

pub const HOOKS: Hooks = Hooks { name: "files", save, drain, records, write_records, restore, ..NONE };

const MAX_FDS: usize = 512;
const PATH_LEN: usize = MAX_PATH as usize + 1;
const WHAT_LEN: usize = 128;
/// What readlink shows after the name of a file that was removed.
const DELETED: &[u8] = b" (deleted)";
/// The character devices that are the same thing when opened again (stateless). Any other one
/// (a tun device, /dev/fuse, a sound card) would be a fresh, different object: unsupported.
const REOPENABLE_DEVICES: [&[u8]; 5] = [b"/dev/null", b"/dev/zero", b"/dev/full", b"/dev/random", b"/dev/urandom"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Opened again by path after a restart.
    File(FileWhat),
    /// No kind restores it: reported, and a placeholder after a restart.
    Unsupported,
}

struct Entry {
    fd: c_int,
    class: Class,
    /// F_GETFL.
    flags: c_int,
    cloexec: bool,
    offset: i64,
    mode: u32,
    dev: u64,
    ino: u64,
    /// st_size at checkpoint.
    size: u64,
    /// Whether its contents go into the image (module docs).
    saved: bool,
    /// The description's key (module docs).
    desc: (i32, i32),
    path: Fixed<PATH_LEN>,
    /// For an unsupported fd: what it is, for messages ("netlink socket, socket:[123]").
    what: Fixed<WHAT_LEN>,
}

struct Table {
    fds: [Entry; MAX_FDS],
    n: usize,
    /// Descriptors beyond the table's capacity.
    overflow: usize,
}

/// The placeholders dmtcp_restart put in (fd, inode, what the fd was), so that the next
/// checkpoint names an fd by what it was rather than as the placeholder socket it is now. A
/// table of its own: `sockets` asks `is_placeholder` while `files` holds its own table.
struct Held {
    held: [(c_int, u64, Fixed<WHAT_LEN>); MAX_FDS],
    n_held: usize,
}

static HELD: Exclusive<Held> = Exclusive::new(Held { held: [const { (-1, 0, Fixed::new()) }; MAX_FDS], n_held: 0 });

/// Whether `fd` (inode `ino`) is a placeholder this library's restore found: a socket that
/// only stands for an fd no kind restores (the `sockets` kind must not take it).
pub fn is_placeholder(fd: c_int, ino: u64) -> bool {
    HELD.with(|h| h.held[..h.n_held].iter().any(|x| x.0 == fd && x.1 == ino))
}

static TABLE: Exclusive<Table> = Exclusive::new(Table {
    fds: [const {
        Entry {
            fd: -1,
            class: Class::Unsupported,
            flags: 0,
            cloexec: false,
            offset: 0,
            mode: 0,
            dev: 0,
            ino: 0,
            size: 0,
            saved: false,
            desc: (0, 0),
            path: Fixed::new(),
            what: Fixed::new(),
        }
    }; MAX_FDS],
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
                let e = &mut t.fds[t.n];
                if e.mode & libc::S_IFMT == libc::S_IFSOCK {
                    HELD.with(|h| {
                        if let Some((_, _, what)) = h.held[..h.n_held].iter().find(|x| x.0 == fd && x.1 == e.ino) {
                            e.what.set(what.bytes());
                        }
                    });
                }
                t.n += 1;
            }
        });
    });
}

/// Records `fd` unless another kind takes it, it is a terminal at 0-2, or it is gone.
fn save_fd(e: &mut Entry, fd: c_int) -> bool {
    let Ok(info) = sys::fstat(fd) else { return false };
    let mut target = [0u8; PATH_LEN];
    let link = super::fd_target(fd, &mut target);
    if super::taken_by_another_kind(fd, info.mode, link) {
        return false;
    }
    if link.is_some_and(super::memfd::takes) {
        return false; // memfd owns those (and deleted /dev/shm files)
    }
    let tty = sys::isatty(fd);
    if tty && fd <= 2 {
        return false;
    }
    e.fd = fd;
    e.flags = sys::fcntl(fd, libc::F_GETFL, 0).unwrap_or(0);
    e.cloexec = sys::fcntl(fd, libc::F_GETFD, 0).is_ok_and(|f| f & libc::FD_CLOEXEC != 0);
    e.offset = sys::tell(fd).unwrap_or(0).max(0);
    e.mode = info.mode;
    e.dev = info.dev;
    e.ino = info.ino;
    e.size = info.size;
    e.saved = false;
    e.desc = (sys::getpid(), fd);
    e.path.clear();
    e.what.clear();
    let what = match info.mode & libc::S_IFMT {
        libc::S_IFREG => Some(FileWhat::Regular),
        libc::S_IFDIR => Some(FileWhat::Folder),
        libc::S_IFCHR | libc::S_IFBLK if !tty => Some(FileWhat::Device),
        _ => None,
    };
    let chr = info.mode & libc::S_IFMT == libc::S_IFCHR;
    match (what, link) {
        (Some(w), Some(p))
            if p.starts_with(b"/")
                && !p.ends_with(DELETED)
                && (!chr || REOPENABLE_DEVICES.contains(&p))
                && e.path.set(p) =>
        {
            e.class = Class::File(w)
        }
        _ => {
            e.class = Class::Unsupported;
            describe(&mut e.what, fd, info.mode, tty, link);
        }
    }
    true
}

/// "netlink socket, socket:[123]", "deleted file, /tmp/x (deleted)", ...
fn describe(out: &mut Fixed<WHAT_LEN>, fd: c_int, mode: u32, tty: bool, link: Option<&[u8]>) {
    let link = link.unwrap_or(b"");
    let kind: &[u8] = match mode & libc::S_IFMT {
        libc::S_IFSOCK => match sys::socket_domain(fd) {
            Ok(libc::AF_UNIX) => b"UNIX socket",
            Ok(libc::AF_INET) => b"IPv4 socket",
            Ok(libc::AF_INET6) => b"IPv6 socket",
            Ok(libc::AF_NETLINK) => b"netlink socket",
            Ok(libc::AF_PACKET) => b"packet socket",
            _ => b"socket",
        },
        _ if tty => b"terminal",
        _ if link.starts_with(b"anon_inode:") => b"anonymous inode",
        libc::S_IFIFO => b"named pipe",
        _ if link.ends_with(DELETED) => b"deleted file",
        _ if link.is_empty() => b"file whose path cannot be read",
        libc::S_IFCHR => b"device that cannot be opened again",
        _ => b"file of a kind that cannot be reopened",
    };
    out.clear();
    out.push(kind);
    if !link.is_empty() {
        out.push(b", ");
        let room = WHAT_LEN - 1 - out.bytes().len();
        out.push(&link[..link.len().min(room)]);
    }
}

/// After DMT:Drain: the key of each file's description (module docs).
fn drain() {
    TABLE.with(|t| {
        let me = sys::getpid();
        let mut kcmp = true;
        for i in 0..t.n {
            if !matches!(t.fds[i].class, Class::File(_)) {
                continue;
            }
            let fd = t.fds[i].fd;
            t.fds[i].desc = (me, fd);
            if !kcmp {
                continue;
            }
            let mut dup_of = None;
            for o in t.fds[..i].iter().filter(|o| matches!(o.class, Class::File(_))) {
                match sys::same_file_description(me, o.fd, me, fd) {
                    Ok(true) => {
                        dup_of = Some(o.desc);
                        break;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        trace!("kcmp: {}; shared files are reopened per process", Bytes(sys::strerror(e)));
                        kcmp = false;
                        break;
                    }
                }
            }
            if let Some(d) = dup_of {
                t.fds[i].desc = d;
            } else if kcmp {
                if let Some(d) = lowest_holder(me, fd) {
                    t.fds[i].desc = d;
                }
            }
        }
        if crate::config::get().ckpt_open_files() {
            choose_saved(t, me);
        }
    });
}

/// Which files' contents go into the image (module docs).
fn choose_saved(t: &mut Table, me: i32) {
    let mut total = 0u64;
    for i in 0..t.n {
        let e = &t.fds[i];
        if e.class != Class::File(FileWhat::Regular) || e.desc != (me, e.fd) {
            continue;
        }
        if t.fds[..i].iter().any(|o| o.saved && o.dev == e.dev && o.ino == e.ino) {
            continue;
        }
        if e.size > MAX_SAVED_FILE || total + e.size > MAX_SAVED_PROCESS {
            warn!(
                "{} ({} bytes) is not saved in the image: open files are saved up to {} bytes each and {} per process; it is opened again as it is at restart",
                Bytes(e.path.bytes()),
                e.size,
                MAX_SAVED_FILE,
                MAX_SAVED_PROCESS
            );
            continue;
        }
        total += e.size;
        t.fds[i].saved = true;
    }
}

/// The lowest (pid, fd) below our pid that is our `fd`'s description, if any.
pub(super) fn lowest_holder(me: i32, fd: c_int) -> Option<(i32, i32)> {
    let mut best: Option<(i32, i32)> = None;
    sys::for_each_numbered_entry(c"/proc", |pid, _| {
        let pid = pid as i32;
        if pid >= me || best.is_some_and(|b| b.0 < pid) {
            return;
        }
        let mut path = Fixed::<32>::new();
        let mut num = [0u8; 20];
        path.push(b"/proc/");
        path.push(crate::cstr::fmt_u64(pid as u64, &mut num));
        path.push(b"/fd");
        let mut refused = false;
        sys::for_each_numbered_entry(path.as_cstr(), |other, _| {
            if refused || best.is_some_and(|b| b.0 == pid) {
                return;
            }
            match sys::same_file_description(me, fd, pid, other as c_int) {
                Ok(true) => best = Some((pid, other as i32)),
                Ok(false) | Err(libc::EBADF) => {}
                Err(_) => refused = true,
            }
        });
    });
    best
}

/// The records after a file's own: its path pieces, and its saved contents if any.
fn pieces(e: &Entry) -> usize {
    match e.class {
        Class::File(_) => e.path.bytes().len().div_ceil(dmtcp_proto::image::PATH_PIECE) + data_records(e),
        Class::Unsupported => 0,
    }
}

fn path_pieces(e: &Entry) -> usize {
    e.path.bytes().len().div_ceil(dmtcp_proto::image::PATH_PIECE)
}

/// The FD_FILE_DATA record and its FD_FILE_BYTES pieces.
fn data_records(e: &Entry) -> usize {
    if e.saved {
        1 + dmtcp_proto::image::file_data::data_pieces(e.size) as usize
    } else {
        0
    }
}

/// Pieces read per pread.
const BATCH: usize = 93;

/// Writes the saved contents of `e` (module docs): exactly `data_records(e)` records, the
/// bytes that cannot be read (a file shortened from outside meanwhile) as zeros.
fn write_contents(e: &Entry, fd_flags: u32, put: &mut RecordSink<'_>) {
    let overwrite = if crate::config::get().allow_file_overwrite() { DATA_OVERWRITE } else { 0 };
    let data = FileDataRecord { mode: e.mode & 0o7777, flags: overwrite, size: e.size };
    put(&FdRecord { fd: e.fd, fd_flags, status: 0, body: FdBody::FileData(data) });
    let mut own = -1;
    let src = if e.flags & libc::O_ACCMODE != libc::O_WRONLY {
        e.fd
    } else {
        let mut p = Fixed::<32>::new();
        let mut num = [0u8; 20];
        p.push(b"/proc/self/fd/");
        p.push(crate::cstr::fmt_u64(e.fd as u64, &mut num));
        match sys::open_read(p.as_cstr()) {
            Ok(fd) => {
                own = fd;
                fd
            }
            Err(err) => {
                warn!("cannot read {} to save it: {}", Bytes(e.path.bytes()), Bytes(sys::strerror(err)));
                -1
            }
        }
    };
    let mut buf = [0u8; BATCH * DATA_PIECE];
    let n_pieces = data.pieces();
    let mut index = 0u64;
    while index < n_pieces {
        let off = index * DATA_PIECE as u64;
        let want = (e.size - off).min(buf.len() as u64) as usize;
        buf.fill(0);
        let mut got = 0;
        while src >= 0 && got < want {
            match sys::pread(src, &mut buf[got..want], off + got as u64) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        for chunk in buf[..want].chunks(DATA_PIECE) {
            let mut bytes = [0u8; DATA_PIECE];
            bytes[..chunk.len()].copy_from_slice(chunk);
            put(&FdRecord {
                fd: e.fd,
                fd_flags,
                status: 0,
                body: FdBody::FileBytes(FileBytes { index: index as u32, bytes }),
            });
            index += 1;
        }
    }
    if own >= 0 {
        sys::close(own);
    }
}

fn records() -> usize {
    TABLE.with(|t| t.fds[..t.n].iter().map(|e| 1 + pieces(e)).sum())
}

fn write_records(put: &mut RecordSink<'_>) {
    TABLE.with(|t| {
        for e in &t.fds[..t.n] {
            let fd_flags = if e.cloexec { libc::FD_CLOEXEC as u32 } else { 0 };
            let body = match e.class {
                Class::File(what) => FdBody::File(FileRecord {
                    what,
                    path_len: e.path.bytes().len() as u32,
                    desc_pid: e.desc.0,
                    desc_fd: e.desc.1,
                    offset: e.offset as u64,
                    dev: e.dev,
                    ino: e.ino,
                }),
                Class::Unsupported => {
                    FdBody::Placeholder(PlaceholderRecord { mode: e.mode, what: Text::new(e.what.bytes()) })
                }
            };
            put(&FdRecord { fd: e.fd, fd_flags, status: e.flags as u32, body });
            if e.class == Class::Unsupported {
                continue;
            }
            for i in 0..path_pieces(e) {
                let piece = PathPiece::of(e.path.bytes(), i as u32);
                put(&FdRecord { fd: e.fd, fd_flags, status: 0, body: FdBody::Path(piece) });
            }
            if e.saved {
                write_contents(e, fd_flags, put);
            }
        }
    });
}

/// Calls `f` with the text naming each unsupported fd (see `super::for_each_unsupported`).
pub fn for_each_unsupported(mut f: impl FnMut(&[u8])) {
    TABLE.with(|t| {
        let mut line = Fixed::<{ WHAT_LEN + 32 }>::new();
        let mut num = [0u8; 20];
        for e in t.fds[..t.n].iter().filter(|e| e.class == Class::Unsupported) {
            line.set(b"fd ");
            line.push(crate::cstr::fmt_u64(e.fd as u64, &mut num));
            line.push(b" (");
            line.push(e.what.bytes());
            line.push(b")");
            f(line.bytes());
        }
        if t.overflow > 0 {
            line.set(crate::cstr::fmt_u64(t.overflow as u64, &mut num));
            line.push(b" fds beyond the first 512 of the process (not recorded)");
            f(line.bytes());
        }
    });
}

/// The numbers dmtcp_restart hands the restorer its own fds at (restart facts, coordinator,
/// image): it cannot put a program's file there, so a file the program kept at one of them is
/// opened again here, once those fds are gone (the connection has moved back where it was at
/// checkpoint, `fds::after_restart`), alone rather than shared with other processes.
const DMTCP_FDS: [c_int; 3] = [dmtcp_proto::env::RESTART_INFO_FD, dmtcp_proto::COORD_FD, dmtcp_proto::COORD_FD + 1];

/// Opens `e` by its path at its number, with its status flags and offset (see `DMTCP_FDS`).
fn reopen_here(e: &Entry) -> bool {
    let flags = e.flags & (libc::O_ACCMODE | libc::O_APPEND | libc::O_NONBLOCK | libc::O_DIRECTORY | libc::O_SYNC);
    let tmp = match sys::open(e.path.as_cstr(), flags | libc::O_CLOEXEC) {
        Ok(fd) => fd,
        Err(err) => {
            warn!("cannot open {} again as fd {}: {}", Bytes(e.path.bytes()), e.fd, Bytes(sys::strerror(err)));
            return false;
        }
    };
    let moved = sys::dup3(tmp, e.fd, if e.cloexec { libc::O_CLOEXEC } else { 0 });
    sys::close(tmp);
    if let Err(err) = moved {
        warn!("cannot put {} at fd {}: {}", Bytes(e.path.bytes()), e.fd, Bytes(sys::strerror(err)));
        return false;
    }
    if e.offset > 0 {
        report("seeking", e.fd, sys::seek_to(e.fd, e.offset));
    }
    true
}

/// After a restart: dmtcp_restart put each file (or a placeholder) at its number, opened with
/// its status flags and at its offset; give each fd its close-on-exec flag back.
fn restore() {
    TABLE.with(|t| {
        let mut lost = t.overflow;
        HELD.with(|h| h.n_held = 0);
        for e in &t.fds[..t.n] {
            if DMTCP_FDS.contains(&e.fd) && matches!(e.class, Class::File(_)) && !reopen_here(e) {
                lost += 1;
                continue;
            }
            let Ok(now) = sys::fstat(e.fd) else {
                lost += 1;
                trace!("fd {} ({}) is not restored", e.fd, Bytes(e.path.bytes()));
                continue;
            };
            if now.mode & libc::S_IFMT == libc::S_IFSOCK {
                HELD.with(|held| {
                    let h = &mut held.held[held.n_held];
                    h.0 = e.fd;
                    h.1 = now.ino;
                    match e.class {
                        Class::File(_) => {
                            trace!(
                                "fd {} ({}) could not be opened again: it holds a placeholder",
                                e.fd,
                                Bytes(e.path.bytes())
                            );
                            h.2.set(b"file that could not be opened again, ");
                            h.2.push(&e.path.bytes()[..e.path.bytes().len().min(WHAT_LEN - 40)]);
                        }
                        Class::Unsupported => {
                            h.2.set(e.what.bytes());
                        }
                    }
                    held.n_held += 1;
                });
            }
            report(
                "setting close-on-exec",
                e.fd,
                sys::fcntl(e.fd, libc::F_SETFD, if e.cloexec { libc::FD_CLOEXEC } else { 0 }).map(|_| ()),
            );
        }
        if lost > 0 {
            trace!("{} file descriptors could not be restored", lost);
        }
    });
}
