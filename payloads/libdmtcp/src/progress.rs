//! Progress of this process's image while the writer streams it, for the coordinator (which
//! sums the processes' figures for `dmtcp_command --bcheckpoint` and its own summary line).
//!
//! Design: the writer calls `start` before the header, `note` after each piece it puts into
//! the stream, and `finish` once `dmtcp write-image` has stored the file. `note` sends a
//! `CkptProgress` at most every `EVERY_MS`, so a small image costs one message and a large one a
//! few per second. The total is an estimate made before the stream starts: the resident memory
//! (/proc/self/statm), which is what the writer stores of private memory; it only grows to the
//! bytes written if these pass it.
//!
//! Rules: runs in the checkpoint thread inside the writer, while every other thread is stopped:
//! no allocation (messages on the stack), no locks; only this thread uses the coordinator fd.
use crate::sys;
use core::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use dmtcp_proto::{Kind, Msg, Progress, WorkerState};

const EVERY_MS: i64 = 200;
const PAGE: u64 = 4096;

static TOTAL: AtomicU64 = AtomicU64::new(0);
static LAST_MS: AtomicI64 = AtomicI64::new(0);

/// The image is about to be streamed: estimate its size and say so.
pub fn start() {
    let mut buf = [0u8; 128];
    let resident = match sys::read_file(c"/proc/self/statm", &mut buf) {
        Ok(n) => buf[..n].split(|&b| b == b' ').nth(1).and_then(crate::cstr::parse_u64).unwrap_or(0),
        Err(_) => 0,
    };
    TOTAL.store(resident * PAGE, Relaxed);
    LAST_MS.store(sys::now_ms(), Relaxed);
    send(Progress { written: 0, total: resident * PAGE, ..Progress::default() });
}

/// `written` bytes of the stream are out.
pub fn note(written: u64) {
    let now = sys::now_ms();
    if now - LAST_MS.load(Relaxed) < EVERY_MS {
        return;
    }
    LAST_MS.store(now, Relaxed);
    let total = TOTAL.load(Relaxed).max(written);
    send(Progress { written, total, ..Progress::default() });
}

/// The image at `path` is stored: `written` stream bytes, and what the file takes.
pub fn finish(written: u64, path: &core::ffi::CStr) {
    let stored = sys::stat(path).map(|s| s.size).unwrap_or(0);
    send(Progress { written, total: written, stored, done: 1, elapsed_ms: 0 });
}

fn send(p: Progress) {
    let mut m = Msg::new(Kind::CkptProgress);
    m.state = WorkerState::Checkpointing as u32;
    m.pid = sys::getpid();
    m.vpid = crate::coord::VPID.load(Relaxed);
    // A lost progress message costs nothing; the checkpoint's own messages report failures.
    let _ = crate::coord::send(&m, &p.encode());
}
