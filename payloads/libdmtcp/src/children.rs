//! New processes and new program images stay in the computation, and a checkpoint never misses
//! one (issue 13: a child that registered after every other process had stopped was left out
//! of the checkpoint, and its parent's waitpid failed with ECHILD after the restart).
//!
//! Design, after DMTCP's fork and exec wrappers (createNewConnectionBeforeFork, the socket kept
//! across exec, DMT_UPDATE_PROCESS_INFO_AFTER_INIT_OR_EXEC, the wrapper-execution lock):
//! - A registration exists before the process or image it is for. `fork`: our prepare handler
//!   registers the child with the coordinator (`coord::preregister`) before the child exists;
//!   the child handler takes that connection over in place of its parent's. `exec*`: the
//!   process keeps its own connection open across the exec and names it in
//!   `DMTCP_COORD_HANDOVER`. `posix_spawn*` (which glibc runs with a clone that neither our
//!   fork handlers nor our exec wrappers see): the parent registers the child before the call
//!   and hands the connection over the same way. The new image's library adopts it
//!   (`adopt_handover`) and sends `UpdateAfterExec`; the coordinator counts it as the same
//!   worker, and if a checkpoint began meanwhile it sends `DoCheckpoint` again. `vfork` is
//!   `fork` (as in DMTCP): a vfork child shares our memory, where no registration can be kept.
//!   `system` and `popen` go through `fork` (see `shell`).
//! - The gate. Making a process or an image is a *passage*: fork from our prepare handler to
//!   the parent or child handler, exec from the wrapper to the exec, posix_spawn around the C
//!   library's call. The checkpoint thread closes the gate when `DoCheckpoint` arrives and
//!   waits for the passages in progress to end before it announces DMT:SUSPEND
//!   (`close_for_checkpoint`); a thread that comes to a closed gate waits there until the
//!   checkpoint is over (the checkpoint signal stops it there as anywhere else). So every
//!   pre-registration reaches the coordinator before this process's SUSPEND, while the
//!   coordinator still takes joiners into the checkpoint, and an exec never replaces an image
//!   that is being checkpointed (an exec'd image that read the `DoCheckpoint` meant for the
//!   old one answers the coordinator's resend).
//! - One passage at a time holds `LOCK`: while it runs, a descriptor of ours is inheritable
//!   (our connection across exec, a child's connection across posix_spawn), and no other
//!   thread's exec or spawn may carry it into another program.
//!
//! Rules: the fork handlers and wrappers run in the program's threads in normal context (never
//! in a signal handler, never while threads are stopped); they keep errno; the child handler
//! allocates nothing itself. Atomics and futexes only; no unsafe here.
use crate::config;
use crate::coord;
use crate::fds;
use crate::log::Bytes;
use crate::sys::{self, thread};
use core::ffi::c_int;
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};
use dmtcp_proto::handover::{self, Handover};
use dmtcp_proto::INTERVAL_UNCHANGED;

// ---------------------------------------------------------------------------------------------
// The gate.

/// 1 while a checkpoint is being taken (from `DoCheckpoint` to the resume).
static CLOSED: AtomicU32 = AtomicU32::new(0);
/// Passages in progress.
static IN_FLIGHT: AtomicU32 = AtomicU32::new(0);
/// How long the checkpoint thread waits for passages to end (a pre-registration's handshake
/// is bounded by 10 s); then the checkpoint goes on and says why.
const GATE_WAIT_MS: i64 = 30_000;

/// Begins a passage: waits while a checkpoint is being taken.
fn enter() {
    loop {
        while CLOSED.load(SeqCst) != 0 {
            thread::futex_wait_ms(&CLOSED, 1, 200);
        }
        IN_FLIGHT.fetch_add(1, SeqCst);
        if CLOSED.load(SeqCst) == 0 {
            return;
        }
        // The checkpoint thread closed the gate in the meantime: let it go first.
        leave();
    }
}

fn leave() {
    IN_FLIGHT.fetch_sub(1, SeqCst);
    thread::futex_wake(&IN_FLIGHT);
}

/// The checkpoint thread, on `DoCheckpoint`: no new passage begins, and the ones in progress
/// end, before the checkpoint goes on.
pub fn close_for_checkpoint() {
    CLOSED.store(1, SeqCst);
    let deadline = sys::now_ms() + GATE_WAIT_MS;
    loop {
        let n = IN_FLIGHT.load(SeqCst);
        if n == 0 {
            return;
        }
        if sys::now_ms() > deadline {
            warn!(
                "{} fork, exec or spawn calls did not finish within {} s; the checkpoint goes on without waiting",
                n,
                GATE_WAIT_MS / 1000
            );
            return;
        }
        thread::futex_wait_ms(&IN_FLIGHT, n, 50);
    }
}

/// The checkpoint thread, once the checkpoint is over (resumed, restarted, or failed).
pub fn open_after_checkpoint() {
    CLOSED.store(0, SeqCst);
    thread::futex_wake(&CLOSED);
}

// ---------------------------------------------------------------------------------------------
// The lock over inheritable descriptors: 0 free, 1 held, 2 held with waiters.

static LOCK: AtomicU32 = AtomicU32::new(0);

fn lock() {
    if LOCK.compare_exchange(0, 1, Acquire, Relaxed).is_ok() {
        return;
    }
    while LOCK.swap(2, Acquire) != 0 {
        thread::futex_wait(&LOCK, 2);
    }
}

fn unlock() {
    if LOCK.swap(0, Release) == 2 {
        thread::futex_wake(&LOCK);
    }
}

// ---------------------------------------------------------------------------------------------
// exec and posix_spawn.

/// A registration being handed to the next program image (see the module notes).
pub struct Handing {
    h: Handover,
    /// A connection made for a spawned child (closed here afterwards), not our own.
    spawned: bool,
}

impl Handing {
    /// An exec of this process: our own connection survives it. None if this process does
    /// not hold its own connection (a child that shares our memory).
    pub fn exec() -> Option<Handing> {
        if !fds::owned() {
            return None;
        }
        enter();
        lock();
        let fd = fds::coord();
        let h = Handover { fd, vpid: coord::VPID.load(Relaxed), comp_id: coord::COMP_ID.load(Relaxed) };
        if fd < 0 || h.vpid <= 0 || h.comp_id == 0 {
            unlock();
            leave();
            return None;
        }
        fds::set_inheritable(fd, true);
        Some(Handing { h, spawned: false })
    }

    /// A child spawned to run program `prog`: registered now, its connection inheritable
    /// during the call. None if it cannot be registered (the child then registers itself).
    pub fn spawn(prog: &[u8]) -> Option<Handing> {
        if !fds::owned() {
            return None;
        }
        enter();
        lock();
        match coord::preregister(prog) {
            Some(h) => {
                fds::set_inheritable(h.fd, true);
                Some(Handing { h, spawned: true })
            }
            None => {
                unlock();
                leave();
                None
            }
        }
    }

    /// The value of `DMTCP_COORD_HANDOVER` for the new image.
    pub fn value<'a>(&self, out: &'a mut [u8; handover::MAX_LEN]) -> &'a [u8] {
        self.h.format(out)
    }

    /// The exec failed or the spawn returned: our connection is close-on-exec again, a
    /// spawned child's copy of its connection is the child's alone. Keeps errno.
    pub fn end(self) {
        sys::keep_errno(|| {
            if self.spawned {
                fds::close_parked(self.h.fd);
            } else {
                fds::set_inheritable(self.h.fd, false);
            }
            unlock();
            leave();
        })
    }
}

/// In a new program image (the constructor): takes over the registration handed over by the
/// exec, if the descriptor is still the coordinator connection. False: register anew.
pub fn adopt_handover(h: Handover) -> bool {
    let c = config::get();
    if !coord::is_coordinator_connection(c, h.fd) {
        trace!("fd {} is no longer the coordinator connection; registering anew", h.fd);
        return false;
    }
    if let Err(e) = fds::adopt_coord(h.fd) {
        trace!("cannot take over the coordinator connection at fd {}: {}", h.fd, Bytes(sys::strerror(e)));
        return false;
    }
    if coord::adopt(h, c.progname.bytes()) {
        return true;
    }
    fds::drop_coord();
    false
}

// ---------------------------------------------------------------------------------------------
// fork.

/// The fork in progress (one at a time: `LOCK`): the forking thread's `pthread_self`, and the
/// registration made for its child.
static FORKER: AtomicUsize = AtomicUsize::new(0);
static CHILD_FD: AtomicI32 = AtomicI32::new(-1);
static CHILD_VPID: AtomicI32 = AtomicI32::new(0);
static CHILD_COMP: AtomicU64 = AtomicU64::new(0);

/// Registers the fork handlers (the constructor; ours run last before the fork and first
/// after it, around the program's own).
pub fn install() -> bool {
    sys::atfork(prepare, parent, child)
}

extern "C" fn prepare() {
    sys::keep_errno(|| {
        if !config::active() || !fds::owned() {
            return;
        }
        enter();
        lock();
        FORKER.store(thread::self_id(), Relaxed);
        let h = coord::preregister(config::get().progname.bytes());
        CHILD_FD.store(h.map_or(-1, |h| h.fd), Relaxed);
        CHILD_VPID.store(h.map_or(0, |h| h.vpid), Relaxed);
        CHILD_COMP.store(h.map_or(0, |h| h.comp_id), Relaxed);
    })
}

extern "C" fn parent() {
    sys::keep_errno(|| {
        if FORKER.load(Relaxed) != thread::self_id() {
            return;
        }
        FORKER.store(0, Relaxed);
        fds::close_parked(CHILD_FD.swap(-1, Relaxed));
        unlock();
        leave();
    })
}

/// In a forked child: never share the parent's connection; take over the one registered for
/// this child (or register anew) and start the background thread again.
extern "C" fn child() {
    sys::keep_errno(|| {
        let forked_here = FORKER.swap(0, Relaxed) == thread::self_id();
        let fd = CHILD_FD.swap(-1, Relaxed);
        // A forked child inherits no SEM_UNDO adjustments (semop(2)).
        crate::resources::sem_undo::forget_all();
        // One thread now: no passage of another thread goes on, nobody else holds the lock, and
        // the parent's checkpoint (if it closed the gate meanwhile) is not this process's.
        IN_FLIGHT.store(0, SeqCst);
        LOCK.store(0, SeqCst);
        CLOSED.store(0, SeqCst);
        // The parent's userfaultfd (incremental checkpoints) is for the parent's memory.
        fds::drop_inherited_hidden();
        if !config::active() {
            return;
        }
        config::set_active(false);
        if forked_here && fd >= 0 {
            let h = Handover { fd, vpid: CHILD_VPID.load(Relaxed), comp_id: CHILD_COMP.load(Relaxed) };
            // (On failure `adopt_in_child` has closed `fd`.)
            if fds::adopt_in_child(fd).is_ok() && coord::adopt(h, b"") {
                config::set_active(true);
                if !crate::ckpt_thread::start() {
                    coord::disconnect();
                }
                return;
            }
        }
        fds::drop_coord();
        crate::init::join(INTERVAL_UNCHANGED);
    })
}

/// `vfork` under dmtcp: see the module notes.
pub fn vfork_as_fork() -> c_int {
    sys::fork()
}
