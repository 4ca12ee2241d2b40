//! Children that ended and were not reaped yet at checkpoint time. Such a child has left the
//! computation (its library's connection closed with it), so no image brings it back; without
//! it, the restarted parent's waitpid for it would fail with ECHILD (issue 13's endurance test:
//! `system`, `posix_spawn` and fork+exec children caught between their exit and their parent's
//! wait). `save` notes each one's pid and how it ended (waitid with WNOWAIT, which leaves it
//! waitable), in a table of this library's memory that the image carries; after a restart
//! `restore` makes each one again with its old pid (clone3 with set_tid, as `dmtcp_restart`
//! makes the processes) and lets it end the same way, before the program runs: its parent
//! reaps it with the same status.
//!
//! Rules: hooks run in the checkpoint thread with every other thread stopped; no allocation;
//! the table is a fixed array in .bss. Last in the registry: the recreated child inherits the
//! descriptors and signal state every other kind has restored, and ends at once.
use super::{Hooks, NONE};
use crate::cell::Exclusive;
use crate::cstr::{fmt_u64, parse_u64, Fixed};
use crate::log::Bytes;
use crate::sys;

pub const HOOKS: Hooks = Hooks { name: "ended children", save, restore, ..NONE };

/// Ended children kept per process (more are reported and not made again).
const MAX: usize = 64;

#[derive(Clone, Copy)]
struct Ended {
    pid: i32,
    code: i32,
    status: i32,
}

struct Table {
    n: usize,
    ended: [Ended; MAX],
}

static TABLE: Exclusive<Table> = Exclusive::new(Table { n: 0, ended: [Ended { pid: 0, code: 0, status: 0 }; MAX] });

/// How long `save` waits for a child that is exiting (its connection, and with it its part in
/// this checkpoint, may be gone before it has become a zombie).
const EXITING_WAIT_MS: i64 = 2000;

fn save() {
    TABLE.with(|t| {
        t.n = 0;
        for_each_child(|pid| {
            let mut ended = sys::ended_child(pid);
            if ended.is_none() && exiting(pid) {
                let deadline = sys::now_ms() + EXITING_WAIT_MS;
                while ended.is_none() && sys::now_ms() < deadline {
                    sys::sleep_ms(1);
                    ended = sys::ended_child(pid);
                }
            }
            if let Some((code, status)) = ended {
                if t.n < MAX {
                    t.ended[t.n] = Ended { pid, code, status };
                    t.n += 1;
                } else {
                    warn!("more than {} children ended unreaped; child {} will be missing after a restart", MAX, pid);
                }
            }
        });
    });
}

fn restore() {
    TABLE.with(|t| {
        for e in &t.ended[..t.n] {
            match sys::remake_ended_child(e.pid, e.code, e.status) {
                Ok(()) => trace!("child {} made again, ended as at checkpoint", e.pid),
                Err(err) => warn!(
                    "cannot make ended child {} again ({}): its parent's wait for it fails with ECHILD",
                    e.pid,
                    Bytes(sys::strerror(err))
                ),
            }
        }
    });
}

/// True if `pid` is on its way out (PF_EXITING in the flags of /proc/<pid>/stat).
fn exiting(pid: i32) -> bool {
    const PF_EXITING: u64 = 0x4;
    let mut path = Fixed::<64>::new();
    let mut num = [0u8; 20];
    path.push(b"/proc/");
    path.push(fmt_u64(pid as u64, &mut num));
    path.push(b"/stat");
    let mut buf = [0u8; 1024];
    let Ok(n) = sys::read_file(path.as_cstr(), &mut buf) else { return false };
    let text = &buf[..n];
    // After the command name's closing parenthesis: state ppid pgrp session tty tpgid flags.
    let Some(close) = text.iter().rposition(|&c| c == b')') else { return false };
    let flags = text[close + 1..].split(|&c| c == b' ').filter(|f| !f.is_empty()).nth(6);
    flags.and_then(parse_u64).is_some_and(|f| f & PF_EXITING != 0)
}

/// Calls `f` with the pid of every child of every thread of this process.
fn for_each_child(mut f: impl FnMut(i32)) {
    sys::for_each_numbered_entry(c"/proc/self/task", |tid, _| {
        let mut path = Fixed::<64>::new();
        let mut num = [0u8; 20];
        path.push(b"/proc/self/task/");
        path.push(fmt_u64(tid, &mut num));
        path.push(b"/children");
        let mut buf = [0u8; 4096];
        let Ok(n) = sys::read_file(path.as_cstr(), &mut buf) else { return };
        for p in buf[..n].split(|&c| c == b' ' || c == b'\n').filter(|p| !p.is_empty()) {
            if let Some(pid) = parse_u64(p).filter(|&p| p > 0 && p <= i32::MAX as u64) {
                f(pid as i32);
            }
        }
    });
}
