//! Start-up: the constructor (an `.init_array` entry; glibc passes it argc, argv, envp). A
//! program image that an exec or spawn of a registered process started takes over the
//! registration handed to it (`DMTCP_COORD_HANDOVER`, see `children`); others register anew.
//!
//! Rules: the constructor runs while the process is single-threaded, before the program's own
//! constructors; it may call libc freely (setenv, dlopen, socket, pthread_create) but must
//! return promptly (it waits only for the bounded handshake) and leave errno as it found it.
use crate::config;
use crate::cstr::CArray;
use crate::sys;
use core::ffi::{c_char, c_int};
use dmtcp_proto::env;
use dmtcp_proto::handover::Handover;

type InitFn = extern "C" fn(c_int, *const *const c_char, *const *const c_char);

#[used]
#[link_section = ".init_array"]
static INIT: InitFn = dmtcp_init;

extern "C" fn dmtcp_init(argc: c_int, argv: *const *const c_char, envp: *const *const c_char) {
    sys::keep_errno(|| {
        // SAFETY: glibc passes the process's argv and envp arrays, NULL-terminated and valid
        // for the life of the process (we copy what we keep before the program can change
        // them).
        let (argv, envp) = unsafe { (CArray::new(argv), CArray::new(envp)) };
        let argv0 = if argc > 0 { argv.get(0).map(|s| s.to_bytes()) } else { None };
        // SAFETY: the constructor runs single-threaded, as `config::load` requires.
        if !unsafe { config::load(envp, argv0) } {
            return; // not under dmtcp: do nothing at all
        }
        // Read before it leaves the environment.
        let handover = envp.env_value(env::COORD_HANDOVER.as_bytes()).and_then(Handover::parse);
        if let Some(v) = envp.env_value(env::SEM_UNDO.as_bytes()) {
            crate::resources::sem_undo::adopt(v);
        }
        hide_from_environment(envp);
        let c = config::get();
        crate::dlsym::init(c.own_dlsym_offset());
        crate::real::resolve_all();
        if config::is_dmtcp_tool(c.progname.bytes()) {
            trace!("{} is a dmtcp tool; not registering it", crate::log::Bytes(c.progname.bytes()));
            return;
        }
        if !crate::children::install() {
            trace!("pthread_atfork failed; forked children will not join the computation");
        }
        find_rseq();
        if !crate::signals::install(c.ckpt_signal()) {
            error!("cannot install the checkpoint signal handler; the program runs without checkpoints");
            return;
        }
        match handover {
            Some(h) if crate::children::adopt_handover(h) => start_thread(),
            _ => join(c.interval),
        }
    })
}

/// glibc's rseq area of each thread is at the thread pointer plus `__rseq_offset`; a restored
/// thread must register it again (glibc 2.35 and later).
fn find_rseq() {
    use core::sync::atomic::Ordering::Relaxed;
    if let Some((off, size)) = sys::glibc_rseq() {
        crate::threads::RSEQ_OFFSET.store(off, Relaxed);
        crate::threads::RSEQ_SIZE.store(size, Relaxed);
    }
}

/// Registers with the coordinator and starts the background thread.
pub fn join(interval: u32) {
    let c = config::get();
    if !crate::coord::connect_and_register(c, interval) {
        return;
    }
    start_thread();
}

/// Registered: exec'd and forked children join the computation too from now on.
fn start_thread() {
    config::set_active(true);
    if !crate::ckpt_thread::start() {
        crate::coord::disconnect();
    }
}

/// The program must not see our library in `LD_PRELOAD`: put back the user's own value (or
/// none), as DMTCP's restoreUserLDPRELOAD does. The interval is sent to the coordinator once;
/// like DMTCP we drop it so that exec'd programs do not reset a changed interval.
fn hide_from_environment(envp: CArray) {
    let orig = envp.env_value_c(env::ORIG_LD_PRELOAD.as_bytes());
    // Single-threaded: the constructor (see the module rules).
    sys::set_env(c"LD_PRELOAD", orig);
    sys::set_env(cstr_of(env::CHECKPOINT_INTERVAL).as_cstr(), None);
    // The handed-over connection is ours alone (read above): an exec'd program never sees it.
    sys::set_env(cstr_of(env::COORD_HANDOVER).as_cstr(), None);
    sys::set_env(cstr_of(env::SEM_UNDO).as_cstr(), None);
}

/// The NUL-terminated form of one of the `env` names (all shorter than 64 bytes).
fn cstr_of(name: &str) -> crate::cstr::Fixed<64> {
    let mut f = crate::cstr::Fixed::<64>::new();
    f.set(name.as_bytes());
    f
}
