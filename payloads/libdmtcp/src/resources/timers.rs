//! Timers and clocks: the three interval timers (`alarm` is ITIMER_REAL), the process's POSIX
//! timers with their kernel ids, and the clocks at checkpoint that the restart's time namespace
//! continues from (`src/restart/timens.rs` on the tool side).
//!
//! Rules: hooks run in the checkpoint thread with every other thread stopped; no allocation
//! (fixed table and text buffer in .bss, through `cell::Exclusive`); system calls through
//! `sys::timers`.
//!
//! # Design
//! Discovered from the kernel, never shadowed: `getitimer` for the interval timers,
//! `/proc/self/timers` for the POSIX timers (ID, signal and sigval, notification with its
//! target thread, clock) and `timer_gettime` for what each has left and its interval. glibc's
//! `timer_t` needs no care: for SIGEV_SIGNAL/SIGEV_NONE/SIGEV_THREAD_ID it is the kernel id, and
//! for SIGEV_THREAD it points at glibc's own record (in memory, so in the image) holding the
//! kernel id of a SIGEV_THREAD_ID timer aimed at glibc's helper thread, which comes back with
//! its tid; what must come back exactly is the kernel id.
//!
//! After a restart the timers are created again with the same ids: with
//! prctl(PR_TIMER_CREATE_RESTORE_IDS) (Linux 6.16; CRIU uses it) timer_create takes the id it
//! is given. Without it, ids are handed out in increasing order from 0 in a new process, so
//! timers are created in id order and the ones that come out below the wanted id deleted again
//! (CRIU's older way; bounded, and a timer that cannot get its id is reported by id).
//! Thread-directed timers need the thread's old tid, which the private pid namespace gives.
//!
//! A timer that was disarmed stays disarmed. Overrun counts start again from 0.
//!
//! glibc's SIGEV_THREAD: the kernel timer is a SIGEV_THREAD_ID one (signal 32) aimed at
//! glibc's helper thread, which comes back with its tid like any other thread; that helper
//! blocks every signal but SIGSETXID, so `threads` stops it with SIGSETXID (our handler in
//! front of glibc's, `signals::install_setxid`).
//!
//! # Time during a checkpoint
//! Real-time timers (ITIMER_REAL, POSIX timers on CLOCK_REALTIME/MONOTONIC/BOOTTIME/...) run on
//! during a checkpoint: time passes for the program as it does (its signals wait, blocked, until
//! the threads run again). CPU-time timers would count our own work (the checkpoint thread's
//! CPU time, the system time of writing the image), so ITIMER_VIRTUAL and ITIMER_PROF are
//! paused from `save` to `resume` (setitimer returns what was left, which is put back). POSIX
//! timers on CPU clocks are not paused: since Linux 6.13 re-arming a timer drops its queued
//! expiry signal, which would lose an expiry; they count the checkpoint thread's few
//! milliseconds.
//!
//! # Order
//! First in `KINDS`: `save` reads the clocks and pauses the CPU-time timers before the other
//! kinds spend CPU time. At a restart the ids are made in `restore` (no timer runs yet) and
//! every timer is armed in `resume(Restarted)`, the last step before the threads run, so that
//! the remaining times start counting when the program does (after the DMT:Restart barrier,
//! which waits for every process of the computation). Signals cannot land early whatever the
//! order: the checkpoint thread blocks every signal, and the program's threads wait inside the
//! checkpoint signal's handler with every signal blocked until `resume_all`; so arming before
//! `signal_state` re-raises the signals pending at checkpoint only decides which becomes pending
//! first, and its actions (restored in `restore`) are in place before anything is delivered.
//! One thing does need `timers` before `signal_state` in `resume`: a timer's signal pending at
//! checkpoint is taken out of `signal_state`'s set and queued again as the timer's
//! (`requeue_pending`) before `signal_state` raises the rest with kill.
//!
//! # Clocks
//! `save` reads CLOCK_MONOTONIC and CLOCK_BOOTTIME as this process sees them; the writer puts
//! them in the image header, and `dmtcp_restart` starts the restored computation in a time
//! namespace whose offsets make these clocks go on from there. CLOCK_REALTIME is the real time.
//! The process and thread CPU clocks are the kernel's own counts for the new process and
//! threads: after a restart they start again near zero (plus the restore's own work), like
//! a new process's; intervals measured on them within one run stay right.
use super::{Hooks, Phase, NONE};
use crate::cell::Exclusive;
use crate::log::Bytes;
use crate::sys::timers::{self as t, Itimerspec, Itimerval, Sigevent};
use crate::sys::{self, strerror};
use core::ffi::c_int;
use dmtcp_proto::image::Clocks;

pub const HOOKS: Hooks = Hooks { name: "timers", save, restore, resume, ..NONE };

/// POSIX timers kept (the kernel allows more; what is beyond is reported).
const MAX_TIMERS: usize = 512;
/// /proc/self/timers text: about 90 bytes a timer.
const TEXT_LEN: usize = 64 * 1024;
/// Create/delete rounds allowed to reach the ids without PR_TIMER_CREATE_RESTORE_IDS.
const LINEAR_BUDGET: u32 = 1 << 18;

const ITIMERS: [c_int; 3] = [libc::ITIMER_REAL, libc::ITIMER_VIRTUAL, libc::ITIMER_PROF];

/// One POSIX timer as /proc/self/timers and timer_gettime show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PosixTimer {
    pub id: c_int,
    pub clock: c_int,
    pub signo: c_int,
    /// SIGEV_SIGNAL, SIGEV_NONE or SIGEV_THREAD_ID.
    pub notify: c_int,
    /// Target thread of SIGEV_THREAD_ID (its tid), else the process.
    pub target: c_int,
    pub sigval: u64,
    pub spec: Itimerspec,
}

impl PosixTimer {
    const EMPTY: PosixTimer =
        PosixTimer { id: 0, clock: 0, signo: 0, notify: 0, target: 0, sigval: 0, spec: Itimerspec::ZERO };
}

struct Saved {
    clocks: Option<Clocks>,
    /// REAL, VIRTUAL, PROF as they were at `save` (VIRTUAL and PROF are paused until resume).
    itimers: [Itimerval; 3],
    timers: [PosixTimer; MAX_TIMERS],
    n: usize,
    /// Whether each timer exists again after a restart (made in `restore`).
    made: [bool; MAX_TIMERS],
    text: [u8; TEXT_LEN],
}

static SAVED: Exclusive<Saved> = Exclusive::new(Saved {
    clocks: None,
    itimers: [Itimerval::ZERO; 3],
    timers: [PosixTimer::EMPTY; MAX_TIMERS],
    n: 0,
    made: [false; MAX_TIMERS],
    text: [0; TEXT_LEN],
});

/// The clocks read at the last checkpoint, for the image header.
pub fn clocks_at_checkpoint() -> Option<Clocks> {
    SAVED.with(|s| s.clocks)
}

fn save() {
    SAVED.with(|s| {
        let monotonic_ns = t::clock_ns(libc::CLOCK_MONOTONIC);
        let boottime_ns = t::clock_ns(libc::CLOCK_BOOTTIME);
        s.clocks = Clocks::decode(monotonic_ns, boottime_ns).ok().flatten();
        s.itimers[0] = t::getitimer(libc::ITIMER_REAL).unwrap_or(Itimerval::ZERO);
        // Paused: what the checkpoint costs in CPU time is not the program's.
        for (saved, &which) in s.itimers.iter_mut().zip(&ITIMERS).skip(1) {
            *saved = t::setitimer(which, &Itimerval::ZERO).unwrap_or(Itimerval::ZERO);
        }
        save_posix_timers(s);
    });
}

fn save_posix_timers(s: &mut Saved) {
    s.n = 0;
    let len = sys::read_file(c"/proc/self/timers", &mut s.text).unwrap_or(0);
    if len == TEXT_LEN {
        warn!("more POSIX timers than fit in {} bytes of /proc/self/timers; the rest are not kept", TEXT_LEN);
    }
    let (text, timers, n) = (&s.text[..len], &mut s.timers, &mut s.n);
    let mut dropped = 0;
    parse_proc_timers(text, |mut pt| {
        match t::timer_gettime(pt.id) {
            Ok(spec) => pt.spec = spec,
            // Deleted since the listing: nothing to keep.
            Err(_) => return,
        }
        if *n < MAX_TIMERS {
            timers[*n] = pt;
            *n += 1;
        } else {
            dropped += 1;
        }
    });
    if dropped > 0 {
        warn!("{} POSIX timers beyond the first {} are not kept", dropped, MAX_TIMERS);
    }
    trace!("saved {} POSIX timers", *n);
}

/// Calls `f` for each complete entry of /proc/<pid>/timers text:
/// ```text
/// ID: 3
/// signal: 14/00000000deadbeef
/// notify: signal/tid.1234      (signal/pid.N, none/pid.N, signal/tid.N)
/// ClockID: 1
/// ```
/// `spec` is left zero. An entry with a line it cannot read is skipped.
pub fn parse_proc_timers(text: &[u8], mut f: impl FnMut(PosixTimer)) {
    let mut cur = PosixTimer::EMPTY;
    let mut seen = 0u8;
    for line in text.split(|&c| c == b'\n') {
        let Some(colon) = line.iter().position(|&c| c == b':') else { continue };
        let (key, val) = (&line[..colon], line[colon + 1..].trim_ascii());
        match key {
            b"ID" => {
                cur = PosixTimer::EMPTY;
                seen = 0;
                if let Some(id) = parse_i64(val) {
                    cur.id = id as c_int;
                    seen |= 1;
                }
            }
            b"signal" => {
                let mut parts = val.splitn(2, |&c| c == b'/');
                let sig = parts.next().and_then(parse_i64);
                let v = parts.next().and_then(parse_hex);
                if let (Some(sig), Some(v)) = (sig, v) {
                    cur.signo = sig as c_int;
                    cur.sigval = v;
                    seen |= 2;
                }
            }
            b"notify" => {
                // "<how>/<pid|tid>.<n>"
                let slash = val.iter().position(|&c| c == b'/').unwrap_or(val.len());
                let dot = val.iter().position(|&c| c == b'.').unwrap_or(val.len());
                let how = &val[..slash];
                let whom = val.get(slash + 1..dot).unwrap_or(b"");
                let n = val.get(dot + 1..).and_then(parse_i64);
                let base = match how {
                    b"signal" => Some(t::SIGEV_SIGNAL),
                    b"none" => Some(t::SIGEV_NONE),
                    _ => None,
                };
                if let (Some(base), Some(n)) = (base, n) {
                    cur.notify = if whom == b"tid" { base | t::SIGEV_THREAD_ID } else { base };
                    cur.target = n as c_int;
                    seen |= 4;
                }
            }
            b"ClockID" => {
                if let Some(c) = parse_i64(val) {
                    cur.clock = c as c_int;
                    if seen == 7 {
                        f(cur);
                    }
                }
                seen = 0;
            }
            _ => {}
        }
    }
}

fn parse_i64(s: &[u8]) -> Option<i64> {
    match s {
        [b'-', rest @ ..] => crate::cstr::parse_u64(rest).map(|v| -(v as i64)),
        _ => crate::cstr::parse_u64(s).map(|v| v as i64),
    }
}

fn parse_hex(s: &[u8]) -> Option<u64> {
    let s = s.strip_prefix(b"0x").unwrap_or(s);
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    let mut v = 0u64;
    for &c in s {
        v = v << 4 | (c as char).to_digit(16)? as u64;
    }
    Some(v)
}

/// After a restart: the POSIX timers again, with their ids, disarmed (armed in `resume`).
fn restore() {
    SAVED.with(|s| {
        s.made = [false; MAX_TIMERS];
        if s.n == 0 {
            return;
        }
        match t::timer_restore_ids(true) {
            Ok(()) => {
                for i in 0..s.n {
                    s.made[i] = make_with_id(&s.timers[i]);
                }
                if let Err(e) = t::timer_restore_ids(false) {
                    warn!("cannot turn PR_TIMER_CREATE_RESTORE_IDS off again: {}", Bytes(strerror(e)));
                }
            }
            Err(e) => {
                trace!("no PR_TIMER_CREATE_RESTORE_IDS here ({}): making POSIX timer ids in order", Bytes(strerror(e)));
                make_in_order(s);
            }
        }
    });
}

fn sigevent(pt: &PosixTimer) -> Sigevent {
    let tid = if pt.notify & t::SIGEV_THREAD_ID != 0 { pt.target } else { 0 };
    Sigevent::new(pt.sigval as usize, pt.signo, pt.notify, tid)
}

fn report_create(pt: &PosixTimer, e: sys::Errno) {
    if pt.notify & t::SIGEV_THREAD_ID != 0 {
        warn!(
            "after restart: cannot recreate POSIX timer {} (clock {}, signal {} to thread {}): {}",
            pt.id,
            pt.clock,
            pt.signo,
            pt.target,
            Bytes(strerror(e))
        );
    } else {
        warn!(
            "after restart: cannot recreate POSIX timer {} (clock {}, signal {}): {}",
            pt.id,
            pt.clock,
            pt.signo,
            Bytes(strerror(e))
        );
    }
}

/// timer_create asking for `pt.id` (PR_TIMER_CREATE_RESTORE_IDS on).
fn make_with_id(pt: &PosixTimer) -> bool {
    match t::timer_create(pt.clock, &sigevent(pt), pt.id) {
        Ok(id) if id == pt.id => true,
        Ok(id) => {
            let _ = t::timer_delete(id);
            warn!("after restart: POSIX timer {} came back as {}; deleted", pt.id, id);
            false
        }
        Err(e) => {
            report_create(pt, e);
            false
        }
    }
}

/// Without the prctl: a new process hands out ids 0, 1, 2, ... in order; create in id order,
/// deleting what comes out below the wanted id.
fn make_in_order(s: &mut Saved) {
    let n = s.n;
    s.timers[..n].sort_unstable_by_key(|pt| pt.id);
    let mut budget = LINEAR_BUDGET;
    for i in 0..n {
        let pt = s.timers[i];
        let ev = sigevent(&pt);
        loop {
            if budget == 0 {
                warn!("after restart: POSIX timer {} is too far in id order to be made again", pt.id);
                break;
            }
            budget -= 1;
            match t::timer_create(pt.clock, &ev, pt.id) {
                Ok(id) if id == pt.id => {
                    s.made[i] = true;
                    break;
                }
                Ok(id) if id < pt.id => {
                    let _ = t::timer_delete(id);
                }
                Ok(id) => {
                    let _ = t::timer_delete(id);
                    warn!("after restart: POSIX timer {} cannot get its id back (the kernel gave {})", pt.id, id);
                    break;
                }
                Err(e) => {
                    report_create(&pt, e);
                    break;
                }
            }
        }
    }
}

fn resume(phase: Phase) {
    SAVED.with(|s| {
        if phase == Phase::Restarted {
            // ITIMER_REAL too: it starts counting its remaining time now.
            if let Some(v) = to_rearm(&s.itimers[0]) {
                set_itimer(0, &v);
            }
            requeue_pending(s);
            for i in 0..s.n {
                let pt = &s.timers[i];
                if s.made[i] && pt.spec.armed() {
                    if let Err(e) = t::timer_settime(pt.id, &pt.spec) {
                        warn!("after restart: cannot arm POSIX timer {} again: {}", pt.id, Bytes(strerror(e)));
                    }
                }
            }
        }
        // The paused CPU-time timers, after a checkpoint and after a restart alike.
        for k in 1..3 {
            if let Some(v) = to_rearm(&s.itimers[k]) {
                set_itimer(k, &v);
            }
        }
    });
}

/// What to give setitimer for a saved interval timer, or None to leave it disarmed. A periodic
/// ITIMER_REAL whose SIGALRM is pending reads as value 0 with its interval: the kernel re-arms
/// it only when the signal is taken (dequeue_signal), which a checkpoint holds back. Its
/// pending SIGALRM is raised again (`signal_state`), and the timer goes on one interval from
/// now, as taking the signal would have made it do.
fn to_rearm(v: &Itimerval) -> Option<Itimerval> {
    if v.armed() {
        Some(*v)
    } else if v.interval_sec != 0 || v.interval_usec != 0 {
        Some(Itimerval { value_sec: v.interval_sec, value_usec: v.interval_usec, ..*v })
    } else {
        None
    }
}

/// A process-directed timer signal pending at checkpoint is queued again as that timer's
/// (SI_TIMER, its id and sigval) instead of by `signal_state` (a plain kill, which would give
/// a handler that dispatches on si_value a null pointer). Which timer a pending signal came
/// from is known only when one timer alone sends it; otherwise `signal_state` raises it.
/// Thread-directed timers' pending signals stay with `threads` (raised with tgkill, without the
/// timer's sigval).
fn requeue_pending(s: &Saved) {
    let timers = &s.timers[..s.n];
    for (i, pt) in timers.iter().enumerate() {
        let signo = pt.signo;
        if pt.notify != t::SIGEV_SIGNAL || !(1..=64).contains(&signo) || !s.made[i] {
            continue;
        }
        let senders = timers.iter().filter(|o| o.signo == signo && o.notify == t::SIGEV_SIGNAL).count();
        if senders == 1 && super::signal_state::take_process_pending(signo) {
            if let Err(e) = t::queue_timer_signal(signo, pt.id, pt.sigval as usize) {
                warn!("after restart: cannot raise timer {}'s pending signal {}: {}", pt.id, signo, Bytes(strerror(e)));
            }
        }
    }
}

fn set_itimer(k: usize, v: &Itimerval) {
    if let Err(e) = t::setitimer(ITIMERS[k], v) {
        let name = ["ITIMER_REAL", "ITIMER_VIRTUAL", "ITIMER_PROF"][k];
        warn!("cannot arm {} again: {}", name, Bytes(strerror(e)));
    }
}
