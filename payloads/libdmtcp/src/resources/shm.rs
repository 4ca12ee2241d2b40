//! Shared memory at checkpoint: which process of the computation writes the pages of each shared
//! mapping into its image, so that an object mapped by several processes (anonymous shared
//! memory inherited over fork, a memfd, a /dev/shm file, a shared file mapping) is stored once.
//!
//! Design: an election by exclusive creation of a lock file, like DMTCP's "one writer per
//! shared area" (it uses the coordinator's name service; we need no round trip). In `save`
//! (every process, before the DMT:Drain barrier) each shared mapping of the process tries to
//! create `<checkpoint folder>/.dmtcp-shm-<computation>-<generation>-<dev>-<inode>-<offset>-<length>`
//! with O_EXCL; the one process that creates it writes the pages (`elected`, asked by the
//! writer). An object is named by the kernel's (device, inode) of the mapping, which is the same
//! in every process that shares it (/proc/self/maps: "/dev/zero (deleted)" of a shared
//! anonymous mapping has its own shmem inode). Mappings of different ranges of one object are
//! separate elections (each range is stored by one process). The files are removed in `refill`,
//! after the DMT:Drain barrier: every process has voted by then. If the folder cannot take the
//! file, the process stores its pages anyway (twice is better than never) and says so.
//!
//! The restart side is `src/restart/shm.rs` (one memfd per object, made before the processes)
//! and the restorer (maps it shared at the old address, the elected image fills it).
//!
//! Rules: hooks run in the checkpoint thread with every other thread stopped; no allocation
//! (fixed table in .bss; /proc/self/maps read into an mmap'ed buffer); no unsafe.
use super::{Hooks, NONE};
use crate::cell::Exclusive;
use crate::cstr::Fixed;
use crate::log::Bytes;
use crate::sys::{self, Mapping};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

pub const HOOKS: Hooks = Hooks { name: "shm", save, refill, ..NONE };

const MAX_WON: usize = 1024;
const MAPS_LEN: usize = 8 << 20;

#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    dev: u64,
    inode: u64,
    offset: u64,
    len: u64,
}

struct Table {
    won: [Key; MAX_WON],
    /// Whether the writer has stored `won[k]` already (a range mapped twice is stored once).
    stored: [bool; MAX_WON],
    n: usize,
    /// The folder could not take a lock file: this process stores every shared mapping.
    store_all: bool,
}

static TABLE: Exclusive<Table> = Exclusive::new(Table {
    won: [Key { dev: 0, inode: 0, offset: 0, len: 0 }; MAX_WON],
    stored: [false; MAX_WON],
    n: 0,
    store_all: false,
});

static COMP_ID: AtomicU64 = AtomicU64::new(0);
static GENERATION: AtomicU32 = AtomicU32::new(0);

/// The computation and checkpoint generation of the checkpoint that starts (names the lock
/// files, so that a stale one of an earlier checkpoint never wins).
pub fn set_checkpoint(comp_id: u64, generation: u32) {
    COMP_ID.store(comp_id, Relaxed);
    GENERATION.store(generation, Relaxed);
}

/// Whether this process writes the pages of the shared mapping (dev, inode, offset, len) now:
/// it won the election and has not stored this range yet (the writer asks once per area).
pub fn elected(dev: u64, inode: u64, offset: u64, len: u64) -> bool {
    let k = Key { dev, inode, offset, len };
    TABLE.with(|t| {
        if t.store_all {
            return true;
        }
        match t.won[..t.n].iter().position(|w| *w == k) {
            Some(i) if !t.stored[i] => {
                t.stored[i] = true;
                true
            }
            _ => false,
        }
    })
}

pub(super) fn push_hex(p: &mut Fixed<4200>, v: u64) -> bool {
    let mut h = [0u8; 16];
    let mut n = 0;
    let mut started = false;
    for i in (0..16).rev() {
        let d = ((v >> (4 * i)) & 0xf) as u8;
        if d != 0 || started || i == 0 {
            started = true;
            h[n] = if d < 10 { b'0' + d } else { b'a' + d - 10 };
            n += 1;
        }
    }
    p.push(&h[..n])
}

/// `<checkpoint folder>/.dmtcp-<tag>-<computation>-<generation>`: the start of the election's
/// lock file names of this checkpoint, for every kind that elects one writer per object
/// (`shm`, `mqueue`, `sysv`); each appends its object's name.
pub(super) fn lock_prefix(tag: &[u8], p: &mut Fixed<4200>) -> bool {
    let c = crate::config::get();
    p.clear();
    let dir = c.ckpt_dir();
    if dir.is_empty() {
        let mut cwd = [0u8; 4096];
        match sys::getcwd(&mut cwd) {
            Ok(n) => p.push(&cwd[..n]),
            Err(_) => return false,
        };
    } else {
        p.push(dir);
    }
    p.push(b"/.dmtcp-")
        && p.push(tag)
        && p.push(b"-")
        && push_hex(p, COMP_ID.load(Relaxed))
        && p.push(b"-")
        && push_hex(p, GENERATION.load(Relaxed).into())
}

/// The lock file of `k` for this checkpoint.
fn lock_path(k: &Key, p: &mut Fixed<4200>) -> bool {
    lock_prefix(b"shm", p)
        && p.push(b"-")
        && push_hex(p, k.dev)
        && p.push(b"-")
        && push_hex(p, k.inode)
        && p.push(b"-")
        && push_hex(p, k.offset)
        && p.push(b"-")
        && push_hex(p, k.len)
}

fn save() {
    let Ok(mut buf) = Mapping::new(MAPS_LEN) else {
        TABLE.with(|t| t.store_all = true);
        warn!("cannot map memory to read /proc/self/maps; shared memory is stored by every process");
        return;
    };
    let n = {
        let b = buf.bytes();
        let Ok(fd) = sys::open_read(c"/proc/self/maps") else { return };
        let mut n = 0;
        while n < b.len() {
            match sys::read_some(fd, &mut b[n..]) {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k,
            }
        }
        sys::close(fd);
        n
    };
    TABLE.with(|t| {
        t.n = 0;
        t.store_all = false;
        for line in buf.as_slice()[..n].split(|&c| c == b'\n') {
            let Some(m) = crate::writer::parse_line(line) else { continue };
            if m.perms.get(3) != Some(&b's') || m.inode == 0 {
                continue;
            }
            let k = Key { dev: m.dev, inode: m.inode, offset: m.offset, len: m.end - m.start };
            if t.won[..t.n].contains(&k) {
                continue; // the same range mapped twice in this process: stored once
            }
            let mut path = Fixed::<4200>::new();
            if !lock_path(&k, &mut path) {
                t.store_all = true;
                continue;
            }
            match sys::create_exclusive(path.as_cstr()) {
                Ok(true) if t.n < MAX_WON => {
                    t.won[t.n] = k;
                    t.stored[t.n] = false;
                    t.n += 1;
                }
                Ok(true) => {
                    let _ = sys::unlink(path.as_cstr());
                    t.store_all = true;
                }
                Ok(false) => {}
                Err(e) => {
                    if !t.store_all {
                        warn!(
                            "cannot create {} ({}); this process stores every shared mapping it has",
                            Bytes(path.bytes()),
                            Bytes(sys::strerror(e))
                        );
                    }
                    t.store_all = true;
                }
            }
        }
    });
}

/// Every process has voted (we are past DMT:Drain): the lock files go.
fn refill() {
    TABLE.with(|t| {
        for k in &t.won[..t.n] {
            let mut path = Fixed::<4200>::new();
            if lock_path(k, &mut path) {
                let _ = sys::unlink(path.as_cstr());
            }
        }
        t.n = 0;
    });
}
