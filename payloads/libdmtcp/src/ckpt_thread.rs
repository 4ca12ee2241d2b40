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
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};
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
    if after_restart() {
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
            Kind::KillPeer => sys::exit_now(0),
            Kind::DoCheckpoint => {
                if !checkpoint(&m) {
                    return;
                }
            }
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
            Kind::KillPeer => sys::exit_now(0),
            Kind::BarrierReleased if r.name_bytes() == name => return Ok(r),
            k => trace!("ignoring {:?} while waiting at barrier {}", k, crate::log::Bytes(name)),
        }
    }
}

static LAST_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Runs one checkpoint. Returns false when the coordinator is gone (the thread ends).
fn checkpoint(m: &Msg) -> bool {
    let exit_after = m.flags & dmtcp_proto::FLAG_EXIT_AFTER_CKPT != 0;
    let req_base = (m.comp_id, m.generation, m.num_peers);
    resources::shm::set_checkpoint(m.comp_id, m.generation);
    if let Err(BarrierError::Lost(e)) = barrier(Barrier::Suspend, WorkerState::Presuspend) {
        lost(e);
        return false;
    }
    let stopped = threads::suspend_all();
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
            };
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
        sys::exit_now(0);
    }
    resources::resume(Phase::Checkpointed);
    threads::resume_all();
    if let Err(BarrierError::Lost(e)) = passed.and(report.map(|_| Msg::new(Kind::WorkerResuming))) {
        error!("lost contact with the coordinator during a checkpoint; the program goes on");
        lost_quiet(e);
        return false;
    }
    if let Err(BarrierError::Lost(e)) = send_state(Kind::WorkerResuming, WorkerState::Running, b"") {
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
    threads::resume_all();
    let r = passed.and_then(|_| send_state(Kind::WorkerResuming, WorkerState::Running, b""));
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
    crate::config::set_active(true);
    let result = barrier(Barrier::Restart, WorkerState::Restarting);
    resources::resume(Phase::Restarted);
    threads::reset_restored();
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
