//! Process-wide attributes: resource limits, umask and the working folder (the program name and
//! capabilities are per thread: `threads`).
//!
//! Rules: hooks run in the checkpoint thread with every other thread stopped; no allocation
//! (fixed buffers in .bss).
use super::{Hooks, NONE};
use crate::cell::Exclusive;
use crate::cstr::Fixed;
use crate::log::Bytes;
use crate::sys::{self, Rlimit};

pub const HOOKS: Hooks = Hooks { name: "process attributes", save, restore, ..NONE };

/// RLIMIT_CPU .. RLIMIT_RTTIME: every resource Linux has.
const N_RLIMITS: usize = 16;
/// Longest working folder kept (PATH_MAX and some).
const CWD_LEN: usize = 4200;
/// The umask used to read the umask (umask(2) can only be read by setting it).
const PROBE_UMASK: u32 = 0o022;

struct Saved {
    rlimits: [Option<Rlimit>; N_RLIMITS],
    umask: u32,
    cwd: Fixed<CWD_LEN>,
}

static SAVED: Exclusive<Saved> =
    Exclusive::new(Saved { rlimits: [None; N_RLIMITS], umask: PROBE_UMASK, cwd: Fixed::new() });

/// Calls `f` with the working folder saved at the last checkpoint (for the image header).
pub fn with_saved_cwd<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    SAVED.with(|s| f(s.cwd.bytes()))
}

fn save() {
    SAVED.with(|s| {
        for (r, lim) in s.rlimits.iter_mut().enumerate() {
            *lim = sys::getrlimit(r).ok();
        }
        let m = sys::umask(PROBE_UMASK);
        sys::umask(m);
        s.umask = m;
        let mut cwd = [0u8; CWD_LEN];
        if let Ok(n) = sys::getcwd(&mut cwd) {
            s.cwd.set(&cwd[..n]);
        }
    });
}

/// The restart-info line DMTCP_RESTART_CWD (path virtualisation, `src/restart/pathvirt.rs`):
/// the working folder to return to instead of the saved one.
pub fn restart_info(text: &[u8]) {
    for line in text.split(|&b| b == b'\n') {
        if let Some(v) = crate::cstr::env_match(line, dmtcp_proto::env::RESTART_CWD.as_bytes()) {
            SAVED.with(|s| {
                if v.len() < CWD_LEN {
                    s.cwd.set(v);
                } else {
                    warn!("the working folder {} is too long; keeping {}", Bytes(v), Bytes(s.cwd.bytes()));
                }
            });
        }
    }
}

fn restore() {
    SAVED.with(|s| {
        for (r, lim) in s.rlimits.iter().enumerate() {
            if let Some(lim) = lim {
                if let Err(e) = sys::setrlimit(r, lim) {
                    trace!("after restart: cannot set resource limit {}: {}", r, Bytes(sys::strerror(e)));
                }
            }
        }
        sys::umask(s.umask);
        if !s.cwd.is_empty() && sys::chdir(s.cwd.as_cstr()).is_err() {
            warn!("cannot return to the working folder {}", Bytes(s.cwd.bytes()));
        }
    });
}
