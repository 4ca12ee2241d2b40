//! memfds the program holds open (memfd_create; often passed to children over fork), and fds
//! held open on a deleted /dev/shm file, which are the same thing to us (`takes`): each one
//! is listed in the image's fd table (`FD_MEMFD`, named by its (device, inode)), and
//! `dmtcp_restart` makes one memfd per object (`src/restart/shm.rs`, the same object as the
//! mappings of it) and puts it at the old fd in every process that had it. The contents: in
//! `save` the process maps each memfd it holds read-only and shared, so that the memory writer
//! stores its pages once, as any shared memory (`shm` elects one process per object); the
//! restorer maps and fills it like the program's own mappings, and `restore` unmaps it again
//! and gives the fd its file position and flags. While the program runs, nothing of ours is
//! left: `refill` unmaps it after the image is written.
//! Seals (F_ADD_SEALS) come back too: `dmtcp_restart` makes every memfd sealable; `restore`
//! makes the read-only shared mappings of a memfd sealed against writing again through a
//! read-only fd (the restorer's count as writable), and `resume(Restarted)` adds the seals,
//! after every process has done so. A process that maps such a memfd without holding an fd to
//! it keeps the restorer's mapping, and the seal then fails (reported).
//!
//! Rules: hooks run in the checkpoint thread with every other thread stopped; no allocation
//! (fixed table in .bss), no unsafe (`sys` wrappers).
use super::{report, FdRecord, Hooks, RecordSink, NONE};
use crate::cell::Exclusive;
use crate::log::Bytes;
use crate::sys;
use core::ffi::c_int;
use dmtcp_proto::image::{FdBody, MemfdRecord};

pub const HOOKS: Hooks = Hooks { name: "memfd", save, records, write_records, refill, restore, resume, ..NONE };

const MAX_MEMFDS: usize = 256;
const PAGE: usize = 4096;
/// Status flags given back after a restart (the new memfd is read-write).
const RESTORED_FLAGS: c_int = libc::O_APPEND | libc::O_NONBLOCK;

/// Whether an fd link names a memfd ("/memfd:NAME (deleted)").
pub fn is_memfd(link: &[u8]) -> bool {
    link.starts_with(b"/memfd:")
}

/// Whether this kind takes the fd whose link is `link`: a memfd, or a /dev/shm file deleted
/// while held open (a shm_open segment already unlinked, as Open MPI's are): both are shared
/// memory only the kernel holds, whose content goes into the image and which is made again
/// at restart (as a memfd); `files` could only give such a file a placeholder.
pub fn takes(link: &[u8]) -> bool {
    is_memfd(link) || (link.starts_with(b"/dev/shm/") && link.ends_with(b" (deleted)"))
}

#[derive(Clone, Copy)]
struct Entry {
    fd: c_int,
    flags: c_int,
    cloexec: bool,
    rec: MemfdRecord,
    /// Our read-only view of its pages while the image is written (0: none, e.g. an earlier
    /// fd of the same memfd has it, or it is empty).
    view: usize,
    view_len: usize,
}

struct Table {
    e: [Entry; MAX_MEMFDS],
    n: usize,
}

const EMPTY: Entry = Entry {
    fd: -1,
    flags: 0,
    cloexec: false,
    rec: MemfdRecord { seals: 0, dev: 0, inode: 0, size: 0, pos: 0 },
    view: 0,
    view_len: 0,
};

static TABLE: Exclusive<Table> = Exclusive::new(Table { e: [EMPTY; MAX_MEMFDS], n: 0 });

fn save() {
    TABLE.with(|t| {
        t.n = 0;
        super::for_each_program_fd(|fd| {
            let mut buf = [0u8; 300];
            if !super::fd_target(fd, &mut buf).is_some_and(takes) {
                return;
            }
            let Ok((dev, inode, size)) = sys::object_of(fd) else { return };
            if t.n == MAX_MEMFDS {
                warn!("more than {} memfds are open; the memfd at fd {} is not restored", MAX_MEMFDS, fd);
                return;
            }
            let mut e = EMPTY;
            e.fd = fd;
            e.flags = sys::fcntl(fd, libc::F_GETFL, 0).unwrap_or(libc::O_RDWR);
            e.cloexec = sys::fcntl(fd, libc::F_GETFD, 0).is_ok_and(|f| f & libc::FD_CLOEXEC != 0);
            let seals = sys::fcntl(fd, libc::F_GET_SEALS, 0).unwrap_or(0) as u32;
            let pos = sys::tell(fd).unwrap_or(0).max(0) as u64;
            e.rec = MemfdRecord { seals, dev, inode, size, pos };
            let seen = t.e[..t.n].iter().any(|o| o.rec.dev == dev && o.rec.inode == inode && o.view != 0);
            if size > 0 && !seen {
                let len = (size as usize).div_ceil(PAGE) * PAGE;
                match sys::map_shared_readonly(fd, len) {
                    Ok(a) => {
                        e.view = a;
                        e.view_len = len;
                    }
                    Err(err) => warn!(
                        "cannot map the memfd at fd {} to save its {} bytes: {}; it comes back empty",
                        fd,
                        size,
                        Bytes(sys::strerror(err))
                    ),
                }
            }
            t.e[t.n] = e;
            t.n += 1;
        });
    });
}

fn records() -> usize {
    TABLE.with(|t| t.n)
}

fn write_records(put: &mut RecordSink<'_>) {
    TABLE.with(|t| {
        for e in &t.e[..t.n] {
            put(&FdRecord {
                fd: e.fd,
                fd_flags: if e.cloexec { libc::FD_CLOEXEC as u32 } else { 0 },
                status: e.flags as u32,
                body: FdBody::Memfd(e.rec),
            });
        }
    });
}

/// Drops our views (after the image is written, or the checkpoint dropped); the table still
/// says where they were in the image, for `restore`.
fn refill() {
    TABLE.with(|t| {
        for e in &mut t.e[..t.n] {
            if e.view != 0 {
                report("unmapping the saved view of a memfd", e.fd, sys::unmap(e.view, e.view_len));
                e.view = 0;
            }
        }
    });
}

fn restore() {
    TABLE.with(|t| {
        for e in &mut t.e[..t.n] {
            if e.view != 0 {
                // The restorer mapped it back (and filled the new memfd through it).
                report("unmapping the saved view of a memfd", e.fd, sys::unmap(e.view, e.view_len));
                e.view = 0;
            }
            let mut buf = [0u8; 300];
            if !super::fd_target(e.fd, &mut buf).is_some_and(is_memfd) {
                warn!("the memfd at fd {} was not recreated (restart it with dmtcp_restart)", e.fd);
                continue;
            }
            let cloexec = if e.cloexec { libc::FD_CLOEXEC } else { 0 };
            report("setting close-on-exec", e.fd, sys::fcntl(e.fd, libc::F_SETFD, cloexec).map(|_| ()));
            let fl = e.flags & RESTORED_FLAGS;
            if fl != 0 {
                report("setting status flags", e.fd, sys::fcntl(e.fd, libc::F_SETFL, fl).map(|_| ()));
            }
            if e.rec.pos > 0 {
                report("seeking", e.fd, sys::seek_to(e.fd, e.rec.pos as i64));
            }
            if e.rec.seals & WRITE_SEALS != 0 {
                read_only_mappings_again(e.fd);
            }
        }
    });
}

/// The seals that forbid writable shared mappings: F_SEAL_WRITE and F_SEAL_FUTURE_WRITE.
const WRITE_SEALS: u32 = 0x0008 | 0x0010;

/// The restorer mapped the new memfd through its read-write fd, so even a read-only mapping
/// of it counts as writable and F_SEAL_WRITE would fail (EBUSY): each read-only shared mapping
/// of the memfd at `fd` is made again through a read-only open of it.
fn read_only_mappings_again(fd: c_int) {
    let Ok((dev, inode, _)) = sys::object_of(fd) else { return };
    let Ok(mut maps) = sys::Mapping::new(8 << 20) else { return };
    let n = sys::read_file(c"/proc/self/maps", maps.bytes()).unwrap_or(0);
    let Ok(ro) = sys::open(super::fd_link_path(fd).as_cstr(), libc::O_RDONLY | libc::O_CLOEXEC) else { return };
    for line in maps.as_slice()[..n].split(|&c| c == b'\n') {
        let Some(m) = crate::writer::parse_line(line) else { continue };
        if m.dev != dev || m.inode != inode || m.perms.get(3) != Some(&b's') || m.perms.get(1) == Some(&b'w') {
            continue;
        }
        let prot = (if m.perms.first() == Some(&b'r') { libc::PROT_READ } else { 0 })
            | (if m.perms.get(2) == Some(&b'x') { libc::PROT_EXEC } else { 0 });
        let len = (m.end - m.start) as usize;
        report(
            "mapping a sealed memfd read-only again",
            fd,
            sys::remap_shared_fixed(m.start as usize, len, prot, ro, m.offset),
        );
    }
    sys::close(ro);
}

/// After DMT:Restart, once every process has made its mappings of the memfds read-only again
/// (`restore`): the seals, all at once (F_SEAL_SEAL forbids adding more). The first process of
/// those holding a memfd adds them; the others find them there.
fn resume(phase: super::Phase) {
    if phase != super::Phase::Restarted {
        return;
    }
    TABLE.with(|t| {
        for e in &t.e[..t.n] {
            if e.rec.seals == 0 {
                continue;
            }
            let have = sys::fcntl(e.fd, libc::F_GET_SEALS, 0).unwrap_or(0) as u32;
            if have != e.rec.seals {
                report(
                    "adding the memfd's seals",
                    e.fd,
                    sys::fcntl(e.fd, libc::F_ADD_SEALS, e.rec.seals as c_int).map(|_| ()),
                );
            }
        }
    });
}
