//! The checkpoint thread: blocks on the coordinator connection and obeys its messages. On
//! `DoCheckpoint` it runs the barrier sequence (DMT:SUSPEND, stop the threads, DMT:CHECKPOINT,
//! elect pipe drainers, DMT:Drain, drain, write the image, refill the pipes, DMT:WriteCkpt,
//! report the file or the failure, resume). After a restart the restorer resumes it in
//! `restarted` (through `arch::ckpt_thread_start`'s frame, see `arch`), which gives the process
//! its kernel state back (`after_restart`), passes DMT:Restart, releases the program and goes
//! on obeying the coordinator.
//!
//! Rules: created with the real `pthread_create`, detached, with every signal blocked so the
//! program's signals never land here; no allocation; it alone reads and writes `COORD_FD` after
//! the handshake.
// `writer::Failure` carries its message inline (no allocation): large Results by design.
#![allow(clippy::result_large_err)]
use crate::coord::{self, ReadError};
use crate::log::Bytes;
use crate::resources::{self, Phase};
use crate::sys;
use crate::{threads, writer};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering::Relaxed};
use dmtcp_proto::barrier::Barrier;
use dmtcp_proto::{Kind, Msg, WorkerState, MSG_SIZE};

const STACK_SIZE: usize = 256 * 1024;

/// Starts the thread. Returns false (after one stderr line) if it could not be created.
pub fn start() -> bool {
    let Some(create) = crate::real::pthread_create() else {
        error!("cannot find pthread_create; the program runs without checkpoints");
        return false;
    };
    // Block every signal while creating, so the new thread starts (and stays) with all blocked.
    let old = sys::set_sigmask(&sys::full_sigset());
    let r = sys::thread::spawn_detached(create, STACK_SIZE, crate::arch::ckpt_thread_start);
    sys::set_sigmask(&old);
    if let Err(r) = r {
        error!("cannot start the dmtcp thread ({}); the program runs without checkpoints", Bytes(sys::strerror(r)));
        return false;
    }
    true
}

/// The base of `arch::ckpt_thread_start`'s frame, where a restart resumes this thread.
static BASE: AtomicUsize = AtomicUsize::new(0);

/// The thread's body, called by `arch::ckpt_thread_start` with the base of its frame.
pub extern "C" fn thread_body(base: usize) {
    BASE.store(base, Relaxed);
    crate::threads::CKPT_TID.store(crate::threads::gettid(), Relaxed);
    run();
}

/// The thread after a restart, called by the `arch` resume stub on the stack below `BASE`:
/// the restart's part, then the coordinator's orders as before.
pub extern "C" fn restarted() {
    crate::api::restarted();
    let going_on = after_restart();
    // The checkpoint's frames (`run` → `checkpoint`) were left behind in the image: what they
    // would have done on the way out is done here. The API's hold on the round ends, and the
    // gate for forks, execs and spawns opens again.
    crate::api::round_over();
    crate::children::open_after_checkpoint();
    if going_on {
        run();
    }
}

fn run() {
    loop {
        let mut hdr = [0u8; MSG_SIZE];
        if let Err(e) = coord::read_exact(&mut hdr) {
            lost(e);
            return;
        }
        let m = match Msg::decode(&hdr) {
            Ok(m) => m,
            Err(e) => {
                error!("bad message from the coordinator ({}); the program goes on without checkpoints", e);
                coord::disconnect();
                return;
            }
        };
        if let Err(e) = coord::discard(m.extra_len as usize) {
            lost(e);
            return;
        }
        trace!("coordinator says {:?}", m.kind);
        match m.kind {
            Kind::KillPeer => killed(),
            Kind::DoCheckpoint => {
                // No process or program image is made while the checkpoint runs (`children`).
                crate::children::close_for_checkpoint();
                let going_on = checkpoint(&m);
                crate::children::open_after_checkpoint();
                if !going_on {
                    return;
                }
            }
            Kind::Minded => STOP_SIGNAL.store(m.cmd_status, Relaxed),
            _ => trace!("ignoring unexpected {:?} from the coordinator", m.kind),
        }
    }
}

/// Why a barrier was not passed.
enum BarrierError {
    Lost(ReadError),
}

fn send_state(kind: Kind, state: WorkerState, payload: &[u8]) -> Result<(), BarrierError> {
    let mut m = Msg::new(kind);
    m.state = state as u32;
    m.pid = sys::getpid();
    m.vpid = coord::VPID.load(Relaxed);
    coord::send(&m, payload).map_err(|e| BarrierError::Lost(ReadError::Io(e)))
}

/// Announces a global barrier and waits for the coordinator to release it.
fn barrier(b: Barrier, state: WorkerState) -> Result<Msg, BarrierError> {
    let name = b.name();
    let mut m = Msg::new(Kind::Barrier).with_name(name);
    m.state = state as u32;
    m.pid = sys::getpid();
    m.vpid = coord::VPID.load(Relaxed);
    coord::send(&m, b"").map_err(|e| BarrierError::Lost(ReadError::Io(e)))?;
    loop {
        let mut hdr = [0u8; MSG_SIZE];
        coord::read_exact(&mut hdr).map_err(BarrierError::Lost)?;
        let r = Msg::decode(&hdr).map_err(|_| BarrierError::Lost(ReadError::Eof))?;
        coord::discard(r.extra_len as usize).map_err(BarrierError::Lost)?;
        match r.kind {
            Kind::KillPeer => killed(),
            Kind::BarrierReleased if r.name_bytes() == name => return Ok(r),
            Kind::Minded => STOP_SIGNAL.store(r.cmd_status, Relaxed),
            k => trace!("ignoring {:?} while waiting at barrier {}", k, crate::log::Bytes(name)),
        }
    }
}

static LAST_THREADS: AtomicUsize = AtomicUsize::new(0);

/// The signal that had stopped this process (group stop) when a checkpoint came and the
/// coordinator minded it (`Kind::Minded`; see the coordinator's `stopped`), 0 when it ran. In
/// .bss, so the image records it: a restart puts the process back into that stop.
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);
/// The program's threads are still stopped in the checkpoint signal's handler from the last
/// checkpoint (or restart): the process went back into its stop before releasing them, and the
/// next checkpoint came while it was stopped. That checkpoint takes them as they are.
static PARKED: AtomicBool = AtomicBool::new(false);

/// After a checkpoint or restart of a process that was stopped: goes back into the stop
/// before the program's threads run. `minded`: the coordinator traces us, and our SIGSTOP is
/// only its doorbell (it detaches, the kernel puts every thread back into the old stop and
/// the parent hears nothing); otherwise (after a restart) the stop is a real one, with the old
/// signal so that the parent's view of it is the same (its default action taken here, with
/// the program's own disposition put back afterwards). Returns when the process is continued:
/// by the shell's `fg` (the threads are released) or by the minder of the next checkpoint,
/// whose DoCheckpoint is then waiting (the threads stay where they are, `PARKED`).
#[inline(never)]
fn stop_again(minded: bool) {
    let sig = STOP_SIGNAL.load(Relaxed);
    let (pid, me) = (sys::getpid(), threads::gettid());
    trace!("going back into the stop (signal {})", sig);
    if minded || !matches!(sig, libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU) {
        sys::thread::tgkill(pid, me, libc::SIGSTOP);
    } else {
        let dfl = sys::default_action();
        let mut old_action = sys::default_action();
        sys::sigaction(sig, &dfl, Some(&mut old_action));
        sys::thread::tgkill(pid, me, sig);
        // Taken (and the whole group stopped) on the way out of this call.
        let old_mask = sys::set_sigmask(&sys::full_sigset_but(sig));
        sys::set_sigmask(&old_mask);
        sys::sigaction(sig, &old_action, None);
    }
    STOP_SIGNAL.store(0, Relaxed);
    let waiting = sys::poll_one(crate::fds::coord(), libc::POLLIN, 0).is_ok_and(|r| r != 0);
    if waiting {
        trace!("continued for the next checkpoint; the threads stay stopped");
        PARKED.store(true, Relaxed);
    } else {
        threads::resume_all();
    }
}

/// `after_restart`'s end for a process that was stopped: report, stop, then release.
#[inline(never)]
fn stopped_after_restart(result: Result<Msg, BarrierError>) -> bool {
    let r = result.and_then(|_| send_state(Kind::WorkerResuming, WorkerState::Running, b""));
    stop_again(false);
    if !PARKED.load(Relaxed) {
        resources::tty::after_restart_resumed();
    }
    match r {
        Ok(()) => true,
        Err(BarrierError::Lost(e)) => {
            lost(e);
            false
        }
    }
}

/// Runs one checkpoint. Returns false when the coordinator is gone (the thread ends).
fn checkpoint(m: &Msg) -> bool {
    let exit_after = m.flags & dmtcp_proto::FLAG_EXIT_AFTER_CKPT != 0;
    let req_base = (m.comp_id, m.generation, m.num_peers);
    // The C API's dmtcp_disable_ckpt sections: wait for them to end before stopping anyone.
    let _hold = crate::api::hold(m.generation);
    resources::shm::set_checkpoint(m.comp_id, m.generation);
    if let Err(BarrierError::Lost(e)) = barrier(Barrier::Suspend, WorkerState::Presuspend) {
        lost(e);
        return false;
    }
    let stopped = if PARKED.swap(false, Relaxed) { Ok(LAST_THREADS.load(Relaxed)) } else { threads::suspend_all() };
    let state = if stopped.is_ok() { WorkerState::Suspended } else { WorkerState::Running };
    if let Err(BarrierError::Lost(e)) = barrier(Barrier::Checkpoint, state) {
        threads::resume_all();
        error!("lost contact with the coordinator during a checkpoint; the program goes on");
        lost_quiet(e);
        return false;
    }
    let outcome = match stopped {
        Ok(n) => {
            LAST_THREADS.store(n, Relaxed);
            resources::save();
            report_unsupported();
            // Every process has saved its resources (and voted for pipe drainers).
            let released = match barrier(Barrier::Drain, WorkerState::Checkpointing) {
                Ok(r) => r,
                Err(BarrierError::Lost(e)) => {
                    resources::refill();
                    threads::resume_all();
                    error!("lost contact with the coordinator during a checkpoint; the program goes on");
                    lost_quiet(e);
                    return false;
                }
            };
            if released.flags & dmtcp_proto::FLAG_CKPT_ABANDONED != 0 {
                // --strict and an fd that cannot be restored: nobody writes an image; the
                // coordinator reports why once every process passed DMT:WriteCkpt.
                return abandoned();
            }
            resources::drain();
            let req = writer::Request {
                comp_id: req_base.0,
                generation: req_base.1,
                num_peers: req_base.2,
                vpid: coord::VPID.load(Relaxed),
                n_threads: n,
                image_flags: m.flags & (dmtcp_proto::FLAG_INCREMENTAL | dmtcp_proto::FLAG_FULL),
            };
            crate::api::writing();
            threads::record_ckpt_thread(BASE.load(Relaxed));
            writer::write_image(&req)
        }
        Err(why) => Err(writer::Failure({
            // Keep step with the others' barriers; this process has nothing to drain.
            let _ = barrier(Barrier::Drain, WorkerState::Running);
            let mut f = crate::cstr::Fixed::<512>::new();
            f.set(why.as_bytes());
            f
        })),
    };
    crate::api::outcome(outcome.is_ok());
    // The bytes drained from pipes go back before anyone runs again.
    resources::refill();
    let passed = barrier(Barrier::WriteCkpt, WorkerState::Checkpointed);
    let report = match &outcome {
        Ok(()) => writer::with_image_path(|p| send_state(Kind::CkptFilename, WorkerState::Checkpointed, p)),
        Err(f) => {
            warn!("checkpoint failed: {}; the program goes on", crate::log::Bytes(f.0.bytes()));
            send_state(Kind::CkptFailed, WorkerState::Running, f.0.bytes())
        }
    };
    if exit_after && outcome.is_ok() && passed.is_ok() && report.is_ok() {
        killed();
    }
    resources::resume(Phase::Checkpointed);
    let minded = STOP_SIGNAL.load(Relaxed) != 0;
    if !minded {
        threads::resume_all();
    }
    if let Err(BarrierError::Lost(e)) = passed.and(report.map(|_| Msg::new(Kind::WorkerResuming))) {
        if minded {
            threads::resume_all();
        }
        error!("lost contact with the coordinator during a checkpoint; the program goes on");
        lost_quiet(e);
        return false;
    }
    let r = send_state(Kind::WorkerResuming, WorkerState::Running, b"");
    if minded {
        stop_again(true);
    }
    if let Err(BarrierError::Lost(e)) = r {
        lost(e);
        return false;
    }
    true
}

/// Sends the coordinator one FdWarning per fd that no kind restores (before DMT:Drain, so that
/// it knows of them all when it releases that barrier).
fn report_unsupported() {
    let strict = crate::config::get().strict;
    resources::for_each_unsupported(|text| {
        trace!("cannot be restored: {}", Bytes(text));
        let mut m = Msg::new(Kind::FdWarning);
        m.state = WorkerState::Checkpointing as u32;
        m.pid = sys::getpid();
        m.vpid = coord::VPID.load(Relaxed);
        if strict {
            m.flags |= dmtcp_proto::FLAG_STRICT;
        }
        if let Err(e) = coord::send(&m, text) {
            trace!("cannot send a warning to the coordinator: {}", Bytes(sys::strerror(e)));
        }
    });
}

/// The rest of a checkpoint the coordinator abandoned at DMT:Drain: put back what `save` took,
/// pass DMT:WriteCkpt with the others, and go on. Returns false when the coordinator is gone.
fn abandoned() -> bool {
    resources::refill();
    let passed = barrier(Barrier::WriteCkpt, WorkerState::Running);
    trace!("checkpoint abandoned by the coordinator; the program goes on");
    resources::resume(Phase::Checkpointed);
    let minded = STOP_SIGNAL.load(Relaxed) != 0;
    if !minded {
        threads::resume_all();
    }
    let r = passed.and_then(|_| send_state(Kind::WorkerResuming, WorkerState::Running, b""));
    if minded {
        stop_again(true);
    }
    if let Err(BarrierError::Lost(e)) = r {
        lost(e);
        return false;
    }
    true
}

/// The restart path: we are in a new process made from the image; the restorer resumed this
/// thread in `restarted`. Returns false when the coordinator is gone.
fn after_restart() -> bool {
    let own = threads::slot(threads::CKPT_SLOT);
    threads::restore_thread(own);
    crate::threads::CKPT_TID.store(crate::threads::gettid(), Relaxed);
    crate::config::read_restart_info();
    // Before any fd of the program's is restored: the connection leaves COORD_FD if it was elsewhere.
    crate::fds::after_restart();
    threads::wait_restored(LAST_THREADS.load(Relaxed));
    // The restorer's range (code, stack, scratch) is no longer in use by any thread.
    if let Err(e) = sys::unmap_restorer() {
        trace!("cannot unmap the restorer: {}", Bytes(sys::strerror(e)));
    }
    resources::restore();
    // Incremental checkpoints: the restored memory is protected again before anyone writes it.
    crate::dirty::after_restart();
    crate::config::set_active(true);
    let result = barrier(Barrier::Restart, WorkerState::Restarting);
    resources::resume(Phase::Restarted);
    threads::reset_restored();
    if STOP_SIGNAL.load(Relaxed) != 0 {
        return stopped_after_restart(result);
    }
    threads::resume_all();
    // The terminal's SIGWINCH waits for the program's threads to be back in their calls.
    resources::tty::after_restart_resumed();
    match result.and_then(|_| send_state(Kind::WorkerResuming, WorkerState::Running, b"")) {
        Ok(()) => true,
        Err(BarrierError::Lost(e)) => {
            lost(e);
            false
        }
    }
}

fn lost_quiet(e: ReadError) {
    if let ReadError::Io(e) = e {
        trace!("coordinator connection error: {}", Bytes(sys::strerror(e)));
    }
    coord::disconnect();
}

fn lost(e: ReadError) {
    if let ReadError::Io(e) = e {
        trace!("coordinator connection error: {}", Bytes(sys::strerror(e)));
    }
    error!("lost contact with the coordinator; the program goes on without checkpoints");
    coord::disconnect();
}

/// The computation is being killed (`--kill`, or exit after a checkpoint). TCP connections are
/// reset rather than closed, so that no end is left in TIME_WAIT on a listener's port: a program
/// that did not set SO_REUSEADDR could not listen there again, and a restart right after the
/// kill would find its port taken (module `resources::sockets`).
fn killed() -> ! {
    resources::sockets::reset_connections();
    sys::exit_now(0)
}
