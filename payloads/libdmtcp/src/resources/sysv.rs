//! System V IPC objects of the computation: shared memory segments (shmget/shmat), semaphore
//! sets (semget/semop) and message queues (msgget/msgsnd). After a restart the program's ids
//! and keys name the same objects, with their contents, and every attach is at its old address.
//!
//! # Design: exact ids in a private IPC namespace, no virtual ids
//! `dmtcp_restart` gives each group (one launch) an IPC namespace of its own, made with its user
//! namespace, and recreates there every object the images list with its old id, by writing
//! `/proc/sys/kernel/{shm,sem,msg}_next_id` before the get call (the owner of the namespace may
//! choose the next id; CRIU's `ipc_ns.c` does the same), its key, mode and owner
//! (`src/restart/ipc.rs`). The ids the program holds in its memory are then simply right: no
//! wrapper of any IPC call, no table of virtual ids. A launch keeps the machine's IPC namespace
//! (a launched program may share keyed objects or X's MIT-SHM segments with programs outside,
//! as it would without us); only a restarted computation is on its own.
//!
//! # Which objects are the computation's
//! The kernel lists every object of the namespace in /proc/sysvipc/{shm,sem,msg}. An object
//! belongs to the computation when
//! - our IPC namespace is the computation's own (owned by the user namespace we run in: the one
//!   `dmtcp_restart` made): every object in it; otherwise
//! - a segment that this process has attached, or whose creator or last attacher (cpid, lpid) is
//!   a process of the computation; a semaphore set one of whose semaphores a process of the
//!   computation changed last (semctl GETPID; semop, SETVAL and SETALL set it); a queue a
//!   process of the computation sent to or received from last (lspid, lrpid).
//!
//! "A process of the computation" is a pid the kernel shows us at all: it translates those pids
//! into our pid namespace, and a launch runs in a pid namespace of its own, so a pid outside it
//! reads as 0. Without a pid namespace (DMTCP_PIDNS=0) only our own pid counts. What the rule
//! misses: a keyed set or queue created but never used by the computation, and objects other
//! programs made that the computation only reads by id (they are not its to bring back).
//!
//! # Contents, stored once
//! Each process that counts an object writes one `FD_SYSV` record for it; one process per
//! object is elected (exclusive creation of a lock file next to the images, as `shm` does) to
//! hold its contents: in `save` it copies them into an anonymous mapping of its own, which is
//! in its image (segment pages; semaphore values, GETALL; queued messages, copied in order with
//! MSG_COPY, which leaves them in the queue). The pages of an attach are not written by the
//! processes that have it (`takes_segment`, asked by the writer): the copy has them. After
//! restart, `restore` attaches each segment again at its old address (shmat SHM_REMAP over
//! what the restorer left there, with the old protections), and the elected process puts the
//! contents back (pages, SETALL, msgsnd of each message with its type); a segment marked for
//! removal (SHM_DEST) is removed again in `resume`, once every process has attached it.
//!
//! SEM_UNDO adjustments are `sem_undo`'s (noted by the semop wrappers, as the kernel offers no
//! way to read them). Not restored: the times and last pids of the objects, a queue's byte limit above the namespace default,
//! an attach a process later cut with munmap (the whole segment is attached again).
//!
//! Rules: hooks run in the checkpoint thread with every other thread stopped; no allocation
//! (fixed table in .bss, /proc files read into mappings of our own); no unsafe (`sys::ipc`).
use super::{FdRecord, Hooks, RecordSink, NONE};
use crate::cell::Exclusive;
use crate::cstr::Fixed;
use crate::log::Bytes;
use crate::sys::{self, ipc, Mapping};
use core::ffi::c_int;
use dmtcp_proto::image::{FdBody, SysvKind, SysvRecord};

pub const HOOKS: Hooks = Hooks { name: "sysv", save, records, write_records, refill, restore, resume, ..NONE };

const MAX_OBJECTS: usize = 256;
const MAX_ATTACHES: usize = 256;
const PAGE: usize = 4096;
/// Room for one of /proc/sysvipc's files or /proc/self/maps.
const PROC_LEN: usize = 8 << 20;
/// SHM_DEST in a segment's mode: removed, alive while attached.
const SHM_DEST: u32 = 0o1000;

struct Object {
    rec: SysvRecord,
    /// The contents, when this process holds them: pages, u16 values, or messages (each a u64
    /// text length, the C long type, the text, padded to 8 bytes).
    copy: Option<Mapping>,
    /// The lock file of the election is ours to remove.
    won: bool,
}

/// One line of /proc/self/maps of an attached segment.
#[derive(Clone, Copy)]
struct Attach {
    id: c_int,
    start: usize,
    end: usize,
    offset: usize,
    prot: c_int,
}

struct Table {
    o: [Option<Object>; MAX_OBJECTS],
    n: usize,
    a: [Attach; MAX_ATTACHES],
    na: usize,
}

static TABLE: Exclusive<Table> = Exclusive::new(Table {
    o: [const { None }; MAX_OBJECTS],
    n: 0,
    a: [Attach { id: 0, start: 0, end: 0, offset: 0, prot: 0 }; MAX_ATTACHES],
    na: 0,
});

fn kind_name(k: SysvKind) -> &'static str {
    match k {
        SysvKind::Shm => "System V shared memory",
        SysvKind::Sem => "System V semaphore set",
        SysvKind::Msg => "System V message queue",
        SysvKind::SemUndo => "SEM_UNDO adjustment",
    }
}

/// Whether the writer leaves out the pages of an attach of segment `id` (the elected process's
/// copy has them). Asked while the image is written.
pub fn takes_segment(id: u64) -> bool {
    TABLE.with(|t| t.o[..t.n].iter().flatten().any(|o| o.rec.kind == SysvKind::Shm && o.rec.id as u64 == id))
}

fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let v = crate::cstr::parse_u64(digits)? as i64;
    Some(if neg { -v } else { v })
}

fn parse_octal(s: &[u8]) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    let mut v = 0u32;
    for &c in s {
        if !(b'0'..=b'7').contains(&c) {
            return None;
        }
        v = v.checked_mul(8)?.checked_add((c - b'0') as u32)?;
    }
    Some(v)
}

/// The whitespace-separated fields of a /proc/sysvipc line, as numbers (the third, perms, in
/// octal); None for the header line.
fn fields(line: &[u8], out: &mut [i64; 16]) -> Option<usize> {
    let mut n = 0;
    for (i, f) in line.split(|c| c.is_ascii_whitespace()).filter(|f| !f.is_empty()).enumerate() {
        if n == out.len() {
            break;
        }
        out[n] = if i == 2 { parse_octal(f)? as i64 } else { parse_i64(f)? };
        n += 1;
    }
    Some(n)
}

/// Reads a whole /proc file into `buf`; the bytes read.
fn read_proc(path: &core::ffi::CStr, buf: &mut Mapping) -> usize {
    sys::read_file(path, buf.bytes()).unwrap_or(0)
}

/// Whether we run in a pid namespace below the machine's (a launch makes one): then every pid
/// the kernel shows us is of the computation.
fn nested_pidns() -> bool {
    let mut b = [0u8; 4096];
    let Ok(n) = sys::read_file(c"/proc/self/status", &mut b) else { return false };
    b[..n]
        .split(|&c| c == b'\n')
        .find(|l| l.starts_with(b"NSpid:"))
        .is_some_and(|l| l[6..].split(|c| c.is_ascii_whitespace()).filter(|f| !f.is_empty()).count() > 1)
}

/// The election's lock file for object (kind, id) of this checkpoint.
fn lock_path(kind: SysvKind, id: c_int, p: &mut Fixed<4200>) -> bool {
    let k: &[u8] = match kind {
        SysvKind::Shm => b"-shm-",
        SysvKind::Sem => b"-sem-",
        SysvKind::Msg => b"-msg-",
        SysvKind::SemUndo => b"-undo-",
    };
    super::shm::lock_prefix(b"sysv", p) && p.push(k) && super::shm::push_hex(p, id as u32 as u64)
}

/// Whether this process holds the contents of (kind, id): it created the lock file. Ok(false):
/// another process did. Err: no lock file can be made there (this process holds them then).
fn elect(kind: SysvKind, id: c_int) -> Result<bool, ()> {
    let mut path = Fixed::<4200>::new();
    if !lock_path(kind, id, &mut path) {
        return Err(());
    }
    match sys::create_exclusive(path.as_cstr()) {
        Ok(won) => Ok(won),
        Err(e) => {
            warn!(
                "cannot create {} ({}); this process stores the object",
                Bytes(path.bytes()),
                Bytes(sys::strerror(e))
            );
            Err(())
        }
    }
}

fn round_up(n: usize) -> usize {
    n.div_ceil(PAGE).max(1) * PAGE
}

/// The contents of object `rec` now, in a mapping of ours (None: it cannot be read, said).
fn copy_contents(rec: &mut SysvRecord) -> Option<Mapping> {
    let what = kind_name(rec.kind);
    let failed = |e| {
        warn!("{} {}: cannot read its contents ({}); it comes back empty", what, rec.id, Bytes(sys::strerror(e)));
        None
    };
    match rec.kind {
        SysvKind::Shm => {
            let len = rec.size as usize;
            let Ok(mut m) = Mapping::new(round_up(len)) else { return failed(libc::ENOMEM) };
            let view = match ipc::shm_view(rec.id, len) {
                Ok(v) => v,
                Err(e) => return failed(e),
            };
            m.bytes()[..len].copy_from_slice(view);
            let _ = ipc::shmdt(view.as_ptr() as usize);
            Some(m)
        }
        SysvKind::Sem => {
            let n = rec.size as usize;
            let Ok(mut m) = Mapping::new(round_up(2 * n)) else { return failed(libc::ENOMEM) };
            if let Err(e) = ipc::sem_getall(rec.id, n, m.bytes()) {
                return failed(e);
            }
            Some(m)
        }
        SysvKind::Msg => {
            // rec.count messages, rec.size bytes of text in all (from /proc/sysvipc/msg), and
            // room for one more of the largest size the kernel allows, in case one came in.
            let qnum = rec.count as usize;
            let room = rec.size as usize + qnum * (16 + ipc::MTYPE_LEN) + 16 + ipc::MTYPE_LEN + (64 << 10);
            let Ok(mut m) = Mapping::new(round_up(room)) else { return failed(libc::ENOMEM) };
            let b = m.bytes();
            let mut at = 0;
            let mut got = 0;
            for i in 0..qnum {
                match ipc::msg_copy(rec.id, i, &mut b[at + 8..]) {
                    Ok(len) => {
                        b[at..at + 8].copy_from_slice(&(len as u64).to_ne_bytes());
                        at += 8 + (ipc::MTYPE_LEN + len).div_ceil(8) * 8;
                        got += 1;
                    }
                    Err(libc::ENOMSG) => break,
                    Err(e) => return failed(e),
                }
            }
            rec.count = got;
            Some(m)
        }
        // Not an object (`sem_undo` writes those records): nothing to copy.
        SysvKind::SemUndo => None,
    }
}

/// Adds the object of one /proc/sysvipc line if it is the computation's (the module docs).
fn consider(t: &mut Table, rec: SysvRecord, ours: bool) {
    if !ours {
        return;
    }
    if t.n == MAX_OBJECTS {
        warn!("more than {} System V objects; {} {} is not restored", MAX_OBJECTS, kind_name(rec.kind), rec.id);
        return;
    }
    let mut rec = rec;
    let (contents, won) = match elect(rec.kind, rec.id) {
        Ok(w) => (w, w),
        Err(()) => (true, false),
    };
    let copy = if contents { copy_contents(&mut rec) } else { None };
    rec.contents = copy.is_some();
    t.o[t.n] = Some(Object { rec, copy, won });
    t.n += 1;
}

fn save() {
    let (Ok(mut buf), Ok(mut maps)) = (Mapping::new(PROC_LEN), Mapping::new(PROC_LEN)) else {
        warn!("cannot map memory to read /proc/sysvipc; System V objects are not checkpointed");
        return;
    };
    let own_ns = ipc::ipc_ns_is_ours();
    let nested = nested_pidns();
    let me = sys::getpid() as i64;
    let of_ours = |pid: i64| pid != 0 && (nested || pid == me);
    let nmaps = read_proc(c"/proc/self/maps", &mut maps);
    TABLE.with(|t| {
        t.n = 0;
        t.na = 0;
        for line in maps.as_slice()[..nmaps].split(|&c| c == b'\n') {
            let Some(m) = crate::writer::parse_line(line) else { continue };
            if !m.name.starts_with(b"/SYSV") {
                continue;
            }
            if t.na == MAX_ATTACHES {
                warn!("more than {} System V attaches; the one at {:#x} is not restored", MAX_ATTACHES, m.start);
                continue;
            }
            let p = m.perms;
            let prot = (if p.first() == Some(&b'r') { libc::PROT_READ } else { 0 })
                | (if p.get(1) == Some(&b'w') { libc::PROT_WRITE } else { 0 })
                | (if p.get(2) == Some(&b'x') { libc::PROT_EXEC } else { 0 });
            t.a[t.na] = Attach {
                id: m.inode as c_int,
                start: m.start as usize,
                end: m.end as usize,
                offset: m.offset as usize,
                prot,
            };
            t.na += 1;
        }
        let mut f = [0i64; 16];
        // key shmid perms size cpid lpid nattch uid gid cuid cgid ...
        let n = read_proc(c"/proc/sysvipc/shm", &mut buf);
        for line in buf.as_slice()[..n].split(|&c| c == b'\n') {
            if fields(line, &mut f).is_none_or(|k| k < 9) {
                continue;
            }
            let id = f[1] as c_int;
            let attached = t.a[..t.na].iter().any(|a| a.id == id);
            let rec = SysvRecord {
                kind: SysvKind::Shm,
                contents: false,
                key: f[0] as i32,
                id,
                mode: f[2] as u32 & 0o3777,
                uid: f[7] as u32,
                gid: f[8] as u32,
                size: f[3] as u64,
                count: f[6] as u64,
            };
            consider(t, rec, own_ns || attached || of_ours(f[4]) || of_ours(f[5]));
        }
        // key semid perms nsems uid gid cuid cgid otime ctime
        let n = read_proc(c"/proc/sysvipc/sem", &mut buf);
        for line in buf.as_slice()[..n].split(|&c| c == b'\n') {
            if fields(line, &mut f).is_none_or(|k| k < 6) {
                continue;
            }
            let id = f[1] as c_int;
            let nsems = f[3] as c_int;
            let used = own_ns || (0..nsems).any(|i| ipc::sem_getpid(id, i).is_ok_and(|p| of_ours(p.into())));
            let rec = SysvRecord {
                kind: SysvKind::Sem,
                contents: false,
                key: f[0] as i32,
                id,
                mode: f[2] as u32 & 0o777,
                uid: f[4] as u32,
                gid: f[5] as u32,
                size: f[3] as u64,
                count: 0,
            };
            consider(t, rec, used);
        }
        // key msqid perms cbytes qnum lspid lrpid uid gid cuid cgid ...
        let n = read_proc(c"/proc/sysvipc/msg", &mut buf);
        for line in buf.as_slice()[..n].split(|&c| c == b'\n') {
            if fields(line, &mut f).is_none_or(|k| k < 9) {
                continue;
            }
            let rec = SysvRecord {
                kind: SysvKind::Msg,
                contents: false,
                key: f[0] as i32,
                id: f[1] as c_int,
                mode: f[2] as u32 & 0o777,
                uid: f[7] as u32,
                gid: f[8] as u32,
                size: f[3] as u64,
                count: f[4] as u64,
            };
            consider(t, rec, own_ns || of_ours(f[5]) || of_ours(f[6]));
        }
    });
}

fn records() -> usize {
    TABLE.with(|t| t.n)
}

fn write_records(put: &mut RecordSink<'_>) {
    TABLE.with(|t| {
        for o in t.o[..t.n].iter().flatten() {
            put(&FdRecord { fd: 0, fd_flags: 0, status: 0, body: FdBody::Sysv(o.rec) });
        }
    });
}

/// The image is written (or the checkpoint dropped): our copies and lock files go.
fn refill() {
    TABLE.with(|t| {
        for o in t.o[..t.n].iter_mut().flatten() {
            o.copy = None;
            if o.won {
                let mut path = Fixed::<4200>::new();
                if lock_path(o.rec.kind, o.rec.id, &mut path) {
                    let _ = sys::unlink(path.as_cstr());
                }
                o.won = false;
            }
        }
    });
}

/// Puts the contents of `o` back into its new object.
fn put_back(o: &Object, copy: &Mapping) -> Result<(), sys::Errno> {
    let r = &o.rec;
    match r.kind {
        SysvKind::Shm => {
            let len = r.size as usize;
            let view = ipc::shm_view_mut(r.id, len)?;
            view.copy_from_slice(&copy.as_slice()[..len]);
            ipc::shmdt(view.as_ptr() as usize)
        }
        SysvKind::Sem => ipc::sem_setall(r.id, r.size as usize, copy.as_slice()),
        SysvKind::Msg => {
            let b = copy.as_slice();
            let mut at = 0;
            for _ in 0..r.count {
                let mut l = [0u8; 8];
                l.copy_from_slice(&b[at..at + 8]);
                let len = u64::from_ne_bytes(l) as usize;
                ipc::msg_send(r.id, &b[at + 8..], len)?;
                at += 8 + (ipc::MTYPE_LEN + len).div_ceil(8) * 8;
            }
            Ok(())
        }
        SysvKind::SemUndo => Ok(()),
    }
}

/// After a restart: every attach at its old address, then the contents this process holds.
fn restore() {
    TABLE.with(|t| {
        for i in 0..t.na {
            let a = t.a[i];
            let base = a.start - a.offset;
            // One shmat per attach (its maps lines share the id and base).
            let first = !t.a[..i].iter().any(|b| b.id == a.id && b.start - b.offset == base);
            let lines = t.a[..t.na].iter().filter(|b| b.id == a.id && b.start - b.offset == base);
            let writable = lines.clone().any(|b| b.prot & libc::PROT_WRITE != 0);
            let exec = lines.clone().any(|b| b.prot & libc::PROT_EXEC != 0);
            // What shmat gives the whole attach; a line the program mprotect'ed differs.
            let given =
                libc::PROT_READ | if writable { libc::PROT_WRITE } else { 0 } | if exec { libc::PROT_EXEC } else { 0 };
            if first {
                let flags = libc::SHM_REMAP
                    | if writable { 0 } else { libc::SHM_RDONLY }
                    | if exec { libc::SHM_EXEC } else { 0 };
                if let Err(e) = ipc::shmat(a.id, base, flags) {
                    warn!(
                        "after restart: cannot attach System V shared memory {} at {:#x} again: {}",
                        a.id,
                        base,
                        Bytes(sys::strerror(e))
                    );
                    continue;
                }
            }
            if a.prot != given {
                if let Err(e) = ipc::mprotect(a.start, a.end - a.start, a.prot) {
                    warn!(
                        "after restart: mprotect of System V shared memory at {:#x}: {}",
                        a.start,
                        Bytes(sys::strerror(e))
                    );
                }
            }
        }
        for o in t.o[..t.n].iter_mut().flatten() {
            let Some(copy) = o.copy.take() else { continue };
            if let Err(e) = put_back(o, &copy) {
                warn!(
                    "after restart: cannot put the contents of {} {} back: {}",
                    kind_name(o.rec.kind),
                    o.rec.id,
                    Bytes(sys::strerror(e))
                );
            }
        }
    });
}

/// After DMT:Restart (every process has attached): a segment the program had removed goes
/// again, as it was, alive until its last detach.
fn resume(phase: super::Phase) {
    if phase != super::Phase::Restarted {
        return;
    }
    TABLE.with(|t| {
        for o in t.o[..t.n].iter().flatten() {
            if o.rec.kind == SysvKind::Shm && o.rec.contents && o.rec.mode & SHM_DEST != 0 {
                let _ = ipc::shm_remove(o.rec.id);
            }
        }
    });
}
