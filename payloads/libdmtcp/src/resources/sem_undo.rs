//! SEM_UNDO adjustments: what the kernel adds to each semaphore when this process exits, for
//! the semop calls it made with SEM_UNDO (its "semadj" values, semop(2)). After a restart the
//! new process has none, so a lock taken with SEM_UNDO would never be given back when its holder
//! ends; this kind makes the kernel hold the same adjustments again.
//!
//! # Design: noted by the semop wrappers, since the kernel cannot be asked
//! No system call, /proc file or netlink message reads a process's semadj (CRIU cannot either:
//! it dumps only the namespace's sets). So the wrappers of semop, semtimedop and, on i686,
//! `__semtimedop64` (`interrupt.rs`, through `sem_calls::noted`) add, after a call that
//! succeeded, `-sem_op` of each operation flagged SEM_UNDO to this process's entry for (set,
//! semaphore), exactly as the kernel does; the `semctl` wrappers (`sem_calls`) forget the
//! entries the kernel forgets: of one semaphore on SETVAL, of the set on SETALL and IPC_RMID. A
//! forked child starts with none (`forget_all`, from the fork handler: semadj is not inherited);
//! an exec keeps them (the kernel keeps them across execve), handed to the new image in
//! `DMTCP_SEM_UNDO` (`handover_value` / `adopt`).
//!
//! At checkpoint `save` takes the entries that are not zero and whose set still exists into the
//! image (`FD_SYSV` records of kind `SemUndo`). At restart `resume(Restarted)` (after DMT:Restart:
//! every set is made again and every value put back, since SETALL would clear adjustments) gives
//! each one back with one semop of two operations, applied by the kernel atomically: `+v` then
//! `-v`, the one flagged SEM_UNDO being `-adj`; the positive one first, so the value never goes
//! below its own and the call never waits (IPC_NOWAIT besides). The value is the same after it,
//! the adjustment is the old one.
//!
//! The table is a fixed array of atomics in .bss (it is in the image and comes back with it):
//! a slot is claimed by compare-and-swap of its key and its adjustment changed with fetch-add,
//! so any thread may note at any time, also from a signal handler, with no lock. When every slot
//! is taken, a slot whose adjustment is zero is taken over (in the rare case that another thread
//! notes the old key at that instant, its change lands in the new key's slot).
//!
//! Not exact: an adjustment made by a semop that the checkpoint signal interrupts between the
//! kernel's return and the note is missed (a window of a few instructions; DMTCP's sysvipc
//! wrappers have it too); a SETVAL or SETALL made by another process (which clears this
//! process's adjustment in the kernel) is not seen; semop made with the raw system call, not
//! through the C library, is not noted.
//!
//! Rules: `note`, `forget` and `forget_all` are async-signal-safe (atomics only); the hooks run
//! in the checkpoint thread with every other thread stopped, no allocation, no unsafe.
use super::{FdRecord, Hooks, Phase, RecordSink, NONE};
use crate::cell::Exclusive;
use crate::log::Bytes;
use crate::sys::{self, ipc};
use core::ffi::c_int;
use core::sync::atomic::{AtomicI32, AtomicU64, Ordering::*};
use dmtcp_proto::image::{FdBody, SysvKind, SysvRecord};

pub const HOOKS: Hooks = Hooks { name: "sem_undo", save, records, write_records, resume, ..NONE };

const SLOTS: usize = 1024;
/// SEM_UNDO in a sembuf's sem_flg.
pub const SEM_UNDO: i16 = 0x1000;

struct Slot {
    /// `USED | id << 16 | num`; 0: free.
    key: AtomicU64,
    adj: AtomicI32,
}

static TABLE: [Slot; SLOTS] = [const { Slot { key: AtomicU64::new(0), adj: AtomicI32::new(0) } }; SLOTS];

const USED: u64 = 1 << 63;

fn key(id: c_int, num: u16) -> u64 {
    USED | (id as u32 as u64) << 16 | num as u64
}

fn parts(k: u64) -> (c_int, u16) {
    ((k >> 16) as u32 as c_int, k as u16)
}

/// The slot of (id, num), claimed if it has none; None when the table is full.
fn slot(k: u64) -> Option<&'static Slot> {
    let start = (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize % SLOTS;
    for i in 0..SLOTS {
        let s = &TABLE[(start + i) % SLOTS];
        let cur = s.key.load(Acquire);
        if cur == k {
            return Some(s);
        }
        if cur == 0 {
            match s.key.compare_exchange(0, k, AcqRel, Acquire) {
                Ok(_) => return Some(s),
                Err(now) if now == k => return Some(s),
                Err(_) => continue,
            }
        }
    }
    // Full: take over a slot whose adjustment is zero.
    for i in 0..SLOTS {
        let s = &TABLE[(start + i) % SLOTS];
        let cur = s.key.load(Acquire);
        if s.adj.load(Acquire) == 0 && s.key.compare_exchange(cur, k, AcqRel, Acquire).is_ok() {
            return Some(s);
        }
    }
    None
}

/// A semop on set `id` succeeded with these (sem_num, sem_op, sem_flg) operations: the kernel
/// changed our adjustment of each one flagged SEM_UNDO by `-sem_op`.
pub fn note(id: c_int, ops: impl Iterator<Item = (u16, i16, i16)>) {
    for (num, op, flg) in ops {
        if flg & SEM_UNDO == 0 || op == 0 {
            continue;
        }
        if let Some(s) = slot(key(id, num)) {
            s.adj.fetch_sub(i32::from(op), AcqRel);
        }
    }
}

/// The kernel dropped our adjustments of set `id` (IPC_RMID, SETALL) or of one semaphore of it
/// (SETVAL).
pub fn forget(id: c_int, num: Option<u16>) {
    for s in &TABLE {
        let k = s.key.load(Acquire);
        if k == 0 {
            continue;
        }
        let (kid, knum) = parts(k);
        if kid == id && num.is_none_or(|n| n == knum) {
            s.adj.store(0, Release);
        }
    }
}

/// In a forked child, single-threaded: a child inherits no adjustments.
pub fn forget_all() {
    for s in &TABLE {
        s.adj.store(0, Relaxed);
        s.key.store(0, Relaxed);
    }
}

/// Most adjustments handed to an exec'd image (`handover_value`).
pub const MAX_HANDED: usize = 128;
/// Room for the value of `DMTCP_SEM_UNDO`: `id.num.adj,` each at most 11+1+5+1+6+1 bytes.
pub const HANDOVER_LEN: usize = MAX_HANDED * 25;

/// The value of `DMTCP_SEM_UNDO` for an exec'd image: `id.num.adj` entries separated by commas
/// (empty when there are none). Called by the exec wrapper, with no allocation.
pub fn handover_value(out: &mut [u8; HANDOVER_LEN]) -> usize {
    let mut at = 0;
    let mut n = 0;
    for s in &TABLE {
        let k = s.key.load(Acquire);
        let adj = s.adj.load(Acquire);
        if k == 0 || adj == 0 || n == MAX_HANDED {
            continue;
        }
        let (id, num) = parts(k);
        let mut d = [0u8; 20];
        let mut put = |b: &[u8], at: &mut usize| {
            out[*at..*at + b.len()].copy_from_slice(b);
            *at += b.len();
        };
        if n > 0 {
            put(b",", &mut at);
        }
        put(crate::cstr::fmt_u64(id as u32 as u64, &mut d), &mut at);
        put(b".", &mut at);
        put(crate::cstr::fmt_u64(u64::from(num), &mut d), &mut at);
        put(b".", &mut at);
        if adj < 0 {
            put(b"-", &mut at);
        }
        put(crate::cstr::fmt_u64(u64::from(adj.unsigned_abs()), &mut d), &mut at);
        n += 1;
    }
    at
}

/// In a new image that an exec of ours started (the constructor): the adjustments the kernel
/// kept across execve, from `DMTCP_SEM_UNDO`.
pub fn adopt(value: &[u8]) {
    for e in value.split(|&c| c == b',') {
        let mut f = e.splitn(3, |&c| c == b'.');
        let (Some(id), Some(num), Some(adj)) = (f.next(), f.next(), f.next()) else { continue };
        let (neg, digits) = match adj.first() {
            Some(b'-') => (true, &adj[1..]),
            _ => (false, adj),
        };
        let (Some(id), Some(num), Some(a)) =
            (crate::cstr::parse_u64(id), crate::cstr::parse_u64(num), crate::cstr::parse_u64(digits))
        else {
            continue;
        };
        let (Ok(num), Ok(a)) = (u16::try_from(num), i32::try_from(a)) else { continue };
        if let Some(s) = slot(key(id as u32 as c_int, num)) {
            s.adj.fetch_add(if neg { -a } else { a }, AcqRel);
        }
    }
}

/// What the image holds: the adjustments at checkpoint.
struct Saved {
    e: [(c_int, u16, i32); SLOTS],
    n: usize,
}

static SAVED: Exclusive<Saved> = Exclusive::new(Saved { e: [(0, 0, 0); SLOTS], n: 0 });

fn save() {
    SAVED.with(|t| {
        t.n = 0;
        for s in &TABLE {
            let k = s.key.load(Acquire);
            let adj = s.adj.load(Acquire);
            if k == 0 || adj == 0 {
                continue;
            }
            let (id, num) = parts(k);
            // A set removed since (by another process) took our adjustments with it.
            if ipc::sem_getpid(id, c_int::from(num)).is_err() {
                continue;
            }
            t.e[t.n] = (id, num, adj);
            t.n += 1;
        }
    });
}

fn records() -> usize {
    SAVED.with(|t| t.n)
}

fn write_records(put: &mut RecordSink<'_>) {
    SAVED.with(|t| {
        for &(id, num, adj) in &t.e[..t.n] {
            let rec = SysvRecord {
                kind: SysvKind::SemUndo,
                contents: false,
                key: adj,
                id,
                mode: 0,
                uid: 0,
                gid: 0,
                size: u64::from(num),
                count: 0,
            };
            put(&FdRecord { fd: 0, fd_flags: 0, status: 0, body: FdBody::Sysv(rec) });
        }
    });
}

/// After DMT:Restart: the kernel holds each adjustment again (module docs).
fn resume(phase: Phase) {
    if phase != Phase::Restarted {
        return;
    }
    SAVED.with(|t| {
        for &(id, num, adj) in &t.e[..t.n] {
            if let Err(e) = ipc::sem_adjust(id, num, adj) {
                warn!(
                    "after restart: cannot give System V semaphore set {} semaphore {} its SEM_UNDO adjustment {} \
                     again: {}",
                    id,
                    num,
                    adj,
                    Bytes(sys::strerror(e))
                );
            }
        }
    });
}
