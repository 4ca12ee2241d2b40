//! The background thread: blocks on the coordinator connection and obeys its messages. It is
//! the seed of the checkpoint thread (it will run the checkpoint sequence on `DoCheckpoint`).
//!
//! Rules: created with the real `pthread_create`, detached, with every signal blocked so the
//! program's signals never land here; no allocation; it alone reads and writes `COORD_FD` after
//! the handshake.
use crate::coord::{self, ReadError};
use crate::log::Bytes;
use crate::sys;
use core::ffi::c_void;
use dmtcp_proto::{Kind, Msg, WorkerState, MSG_SIZE};

const STACK_SIZE: usize = 256 * 1024;

/// Starts the thread. Returns false (after one stderr line) if it could not be created.
pub fn start() -> bool {
    let Some(create) = crate::real::pthread_create() else {
        error!("cannot find pthread_create; the program runs without checkpoints");
        return false;
    };
    // SAFETY: an all-zero pthread_attr_t is storage for pthread_attr_init to initialize.
    let mut attr: libc::pthread_attr_t = unsafe { core::mem::zeroed() };
    let mut tid: libc::pthread_t = 0;
    // Block every signal while creating, so the new thread starts (and stays) with all blocked.
    let old = sys::set_sigmask(&sys::full_sigset());
    // SAFETY: attr is initialized before use and destroyed after; tid is valid storage;
    // `create` is libc's pthread_create; thread_main matches the start-routine prototype and
    // ignores its argument.
    let r = unsafe {
        libc::pthread_attr_init(&mut attr);
        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        libc::pthread_attr_setstacksize(&mut attr, STACK_SIZE);
        let r = create(&mut tid, &attr, thread_main, core::ptr::null_mut());
        libc::pthread_attr_destroy(&mut attr);
        r
    };
    sys::set_sigmask(&old);
    if r != 0 {
        error!(
            "cannot start the dmtcp thread ({}); the program runs without checkpoints",
            Bytes(sys::strerror(r))
        );
        return false;
    }
    true
}

extern "C" fn thread_main(_: *mut c_void) -> *mut c_void {
    run();
    core::ptr::null_mut()
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
                if !refuse_checkpoint() {
                    return;
                }
            }
            _ => trace!("ignoring unexpected {:?} from the coordinator", m.kind),
        }
    }
}

/// This build cannot checkpoint yet: say so, so that the coordinator fails the checkpoint
/// cleanly instead of waiting for us.
fn refuse_checkpoint() -> bool {
    let mut m = Msg::new(Kind::CkptFailed);
    m.state = WorkerState::Running as u32;
    m.pid = sys::getpid();
    m.vpid = coord::VPID.load(core::sync::atomic::Ordering::Relaxed);
    match coord::send(&m, b"checkpointing is not implemented in this build") {
        Ok(()) => true,
        Err(e) => {
            lost(ReadError::Io(e));
            false
        }
    }
}

fn lost(e: ReadError) {
    if let ReadError::Io(e) = e {
        trace!("coordinator connection error: {}", Bytes(sys::strerror(e)));
    }
    error!("lost contact with the coordinator; the program goes on without checkpoints");
    coord::disconnect();
}
