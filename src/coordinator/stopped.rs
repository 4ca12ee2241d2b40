//! Workers in group stop (a job stopped with Ctrl-Z, a process stopped by SIGSTOP): every thread
//! of such a process is stopped, our checkpoint thread too, so it can never answer a checkpoint.
//! The coordinator notices (a worker still RUNNING 100 ms after DoCheckpoint whose threads are
//! all in state T), finds the process that holds the other end of its connection, and MINDS it
//! for the checkpoint with ptrace, so that nobody else can tell:
//!
//! - every thread is seized (PTRACE_SEIZE re-traps a stopped thread without waking it; the trap
//!   tells the stop signal, SIGTSTP, SIGSTOP, SIGTTIN, ...); the worker is told it is minded
//!   and by which signal it stopped (`Kind::Minded`, the signal in `cmd_status`);
//! - only the checkpoint thread is let go (it is the one whose mask blocks every signal: our
//!   wrappers keep the checkpoint signal deliverable in every thread of the program; after a
//!   checkpoint that left the process stopped, the program's threads still wait in our
//!   handler, with every signal blocked too, and are let go with it: they only wait on); the
//!   program's threads stay trapped until the checkpoint signal is pending for them, so they
//!   go straight into its handler and never run the program's code; every signal delivery is
//!   passed on as it came;
//! - when the image is written the checkpoint thread rings (it sends itself SIGSTOP, which
//!   the minder sees and suppresses) and the minder detaches every thread: the kernel puts a
//!   detached thread of a group in stop back into that stop (`__ptrace_unlink` reinstates
//!   JOBCTL_STOP_PENDING) without a new report to the parent.
//!
//! Why ptrace and not SIGCONT and a new stop: SIGCONT wakes the whole group at once (the
//! program's threads would run before the checkpoint signal reaches them, a reader of the
//! terminal in the background would stop again on SIGTTIN), and the parent would get SIGCHLD
//! twice with a CLD_CONTINUED and a CLD_STOPPED report (a shell's `jobs` would show the new
//! signal). With ptrace the parent gets nothing and the program runs no code of its own; what
//! remains visible is TracerPid (0 from inside our pid namespace: the coordinator is outside
//! it) and the 't' state in /proc while minded. DMTCP cannot checkpoint a stopped process at
//! all (its checkpoint thread stops with the rest); CRIU seizes stopped tasks the same way and
//! leaves them in stop when it detaches.
//!
//! Limits: only a worker on this host (its connection's other end must be a socket of this
//! host); the checkpoint signal must be a standard signal (1..31); a thread the program
//! created while it was minded is not traced (it cannot be: the program runs no code then).
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The pids (in our namespace) of the processes holding the client ends of the connections
/// `(peer, local)` (our own end's address is `local`), in one pass over /proc: None for one of
/// another host, or gone. Only this user's processes can be read; ours are among them.
pub fn client_pids(conns: &[(SocketAddr, SocketAddr)]) -> Vec<Option<i32>> {
    let wanted: Vec<Option<String>> = conns
        .iter()
        .map(|&(p, l)| {
            let (_, inode) = super::owner::lookup(p, l)?;
            Some(format!("socket:[{inode}]"))
        })
        .collect();
    let mut found: Vec<Option<i32>> = vec![None; conns.len()];
    if wanted.iter().all(Option::is_none) {
        return found;
    }
    let Ok(procs) = std::fs::read_dir("/proc") else { return found };
    for e in procs.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(e.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            let Ok(link) = std::fs::read_link(fd.path()) else { continue };
            for (i, w) in wanted.iter().enumerate() {
                if found[i].is_none() && w.as_deref().is_some_and(|w| link.as_os_str() == w) {
                    found[i] = Some(pid);
                }
            }
        }
        if found.iter().zip(&wanted).all(|(f, w)| f.is_some() || w.is_none()) {
            break;
        }
    }
    found
}

/// The state letter of one /proc/<pid>/task/<tid>/stat (after the command's closing paren).
fn state_of(stat: &str) -> Option<char> {
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// The threads of `pid` (empty when it is gone).
fn threads(pid: i32) -> Vec<i32> {
    let mut v: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Whether every thread of `pid` is in group stop (state T; a traced thread shows t).
pub fn group_stopped(pid: i32) -> bool {
    let t = threads(pid);
    !t.is_empty()
        && t.iter().all(|tid| {
            std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).is_ok_and(|s| state_of(&s) == Some('T'))
        })
}

/// A line `Name:\thex` of /proc/.../status as a number.
fn status_mask(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|l| u64::from_str_radix(l.strip_prefix(name)?.trim(), 16).ok())
}

/// Whether a thread's mask blocks every signal but the two glibc keeps for itself (32, 33)
/// and the two nobody can block: our checkpoint thread's mask.
fn blocks_everything(mask: u64) -> bool {
    const UNBLOCKABLE: u64 = (1 << (libc::SIGKILL - 1)) | (1 << (libc::SIGSTOP - 1)) | (3 << 31);
    mask | UNBLOCKABLE == u64::MAX
}

/// A minder at work: the stop signal it found, and the word to let the checkpoint thread go.
pub struct Minded {
    pub stop_signal: i32,
    pub go: mpsc::Sender<()>,
}

/// Seizes every thread of `pid` in a thread of our own (the tracer must stay the thread that
/// seized), and answers once they are all trapped. The caller tells the worker, then sends
/// `go`; the minder lets the checkpoint thread run and ends when it rang or after `limit`.
pub fn mind(pid: i32, limit: Duration) -> Result<Minded, String> {
    let (tx, rx) = mpsc::sync_channel(1);
    let (go_tx, go_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(format!("mind-{pid}"))
        .spawn(move || minder(pid, limit, tx, go_rx))
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Ok(stop_signal)) => Ok(Minded { stop_signal, go: go_tx }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("the process's threads did not trap within 5 s".into()),
    }
}

fn detach_all(tids: &[i32]) {
    for &t in tids {
        let _ = ptrace::detach(Pid::from_raw(t), None);
    }
}

fn minder(pid: i32, limit: Duration, tx: mpsc::SyncSender<Result<i32, String>>, go: mpsc::Receiver<()>) {
    let mut seized = Vec::new();
    for t in threads(pid) {
        match ptrace::seize(Pid::from_raw(t), ptrace::Options::empty()) {
            Ok(()) => seized.push(t),
            Err(e) => {
                detach_all(&seized);
                let _ = tx.send(Err(format!("cannot trace thread {t}: {e}")));
                return;
            }
        }
    }
    // Each seized thread of a stopped group re-traps at once; the trap names the stop signal.
    let mut stop_signal = libc::SIGSTOP;
    // (1..=31: `Signal` has no real-time signals, and stop signals are not.)
    for &t in &seized {
        if let Ok(WaitStatus::PtraceEvent(_, sig, libc::PTRACE_EVENT_STOP)) =
            waitpid(Pid::from_raw(t), Some(WaitPidFlag::__WALL))
        {
            stop_signal = sig as i32;
        }
    }
    // Let go: the threads whose mask blocks everything, i.e. our checkpoint thread and, when
    // the process went back into its stop after an earlier checkpoint, the program's threads
    // still waiting in the checkpoint signal's handler (they only wait on).
    let free: Vec<i32> = seized
        .iter()
        .copied()
        .filter(|t| {
            std::fs::read_to_string(format!("/proc/{pid}/task/{t}/status"))
                .ok()
                .and_then(|s| status_mask(&s, "SigBlk:"))
                // A checkpoint thread that went back into the stop after a restart was stopped
                // by the stop signal, which it had unblocked for that.
                .is_some_and(|m| blocks_everything(m | 1 << (stop_signal - 1)))
        })
        .collect();
    if free.is_empty() {
        detach_all(&seized);
        let _ = tx.send(Err("no thread looks like the checkpoint thread".into()));
        return;
    }
    if tx.send(Ok(stop_signal)).is_err() || go.recv_timeout(Duration::from_secs(5)).is_err() {
        detach_all(&seized);
        return;
    }
    let mut trapped: Vec<i32> = seized.iter().copied().filter(|t| !free.contains(t)).collect();
    let mut live = seized.clone();
    for &t in &free {
        if ptrace::cont(Pid::from_raw(t), None).is_err() {
            detach_all(&seized);
            return;
        }
    }
    let end = Instant::now() + limit;
    while Instant::now() < end && !live.is_empty() {
        let mut busy = false;
        // A trapped program thread goes once a signal is pending for it: the checkpoint
        // signal, which it then takes first (thread-directed signals come before shared ones).
        trapped.retain(|&t| {
            let pending = std::fs::read_to_string(format!("/proc/{pid}/task/{t}/status"))
                .ok()
                .and_then(|s| status_mask(&s, "SigPnd:"))
                .unwrap_or(0);
            if pending != 0 && ptrace::cont(Pid::from_raw(t), None).is_ok() {
                busy = true;
                return false;
            }
            true
        });
        let mut gone = Vec::new();
        for &t in &live {
            match waitpid(Pid::from_raw(t), Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => {}
                Ok(WaitStatus::Stopped(_, Signal::SIGSTOP)) if free.contains(&t) => {
                    // The doorbell: the image is written; back into the stop, silently (the
                    // ringing thread last).
                    let others: Vec<i32> = live.iter().copied().filter(|&x| x != t).collect();
                    detach_all(&others);
                    detach_all(&[t]);
                    return;
                }
                Ok(WaitStatus::Stopped(_, sig)) => {
                    busy = true;
                    let _ = ptrace::cont(Pid::from_raw(t), Some(sig));
                }
                Ok(WaitStatus::PtraceEvent(..)) => {
                    busy = true;
                    let _ = ptrace::cont(Pid::from_raw(t), None);
                }
                Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) | Err(_) => gone.push(t),
                Ok(_) => {}
            }
        }
        live.retain(|t| !gone.contains(t));
        trapped.retain(|t| !gone.contains(t));
        if !busy {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    detach_all(&live);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_letter_follows_the_last_paren_of_the_name() {
        assert_eq!(state_of("12 (a) b) T 1 12"), Some('T'));
        assert_eq!(state_of("12 (sleep) S 1"), Some('S'));
        assert_eq!(state_of("garbage"), None);
    }

    #[test]
    fn only_a_full_mask_is_the_checkpoint_threads() {
        // glibc's sigfillset as the kernel shows it.
        assert!(blocks_everything(0xfffffffe7ffbfeff));
        // A program thread: our wrappers keep SIGUSR2 (12) deliverable.
        assert!(!blocks_everything(0xfffffffe7ffbfeff & !(1 << 11)));
        assert!(!blocks_everything(0));
        assert_eq!(status_mask("Name:\tx\nSigBlk:\t0000000000000800\n", "SigBlk:"), Some(0x800));
    }
}
