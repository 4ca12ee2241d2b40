//! DMTCP's C API (`include/dmtcp.h`): the functions a program calls to know it runs under
//! checkpoint control, to checkpoint itself and to keep checkpoints out of a critical section.
//! A program declares them weak (the header does), so that it also runs without the tool: then
//! every call site sees a null address and the header's macros give `DMTCP_NOT_PRESENT`.
//!
//! Semantics follow DMTCP's `src/dmtcpplugin.cpp`:
//! - `dmtcp_is_enabled`: 1 while this process is under a coordinator's control.
//! - `dmtcp_checkpoint`: asks the coordinator for a checkpoint of the whole computation (as
//!   `dmtcp_command --checkpoint` does, on a connection of its own) and returns once this
//!   process has been checkpointed (`DMTCP_AFTER_CHECKPOINT`) or, in a process restarted from
//!   that image, `DMTCP_AFTER_RESTART`; -1 when the checkpoint failed or no coordinator answers.
//! - `dmtcp_disable_ckpt` / `dmtcp_enable_ckpt`: while any thread holds the section (a count,
//!   so nesting and several threads work), a checkpoint does not start: the checkpoint thread
//!   waits in `hold` before it stops any thread, then goes on; it never fails for this.
//! - `dmtcp_get_local_status`: checkpoints and restarts of this process; `dmtcp_get_generation`
//!   the generation of its last image (0 before the first); `dmtcp_get_coordinator_status` the
//!   coordinator's peer count and whether the computation runs; `dmtcp_get_ckpt_filename` the
//!   path this process's image has (or will have).
//!
//! Design. The counters are atomics in our .bss, so the image carries them: a checkpoint counts
//! itself before the memory is written (`writing`, undone by `outcome` on failure), a restart
//! counts itself before any program thread runs again (`restarted`), and each round that ends
//! (written, failed, abandoned) bumps `ROUNDS`, which `dmtcp_checkpoint` waits on. The critical
//! section is a Dekker pair (`DISABLED`, `HOLDING`, sequentially consistent): the checkpoint
//! thread raises `HOLDING` and waits for `DISABLED` to fall to 0; a thread entering the section
//! raises `DISABLED` and, if it then sees `HOLDING`, backs out and waits for the round to end.
//! Our own connection to the coordinator is made inside the section, so no checkpoint ever
//! sees (and saves) that socket.
//!
//! Rules: C-ABI entry points called by program threads (errno kept, no allocation, no locks a
//! checkpoint could find held); `hold`, `writing`, `restarted` and `outcome` run in the
//! checkpoint thread. Unsafe only to write through the out-pointers the program hands in and to
//! hand back a pointer to our static path buffer.
use crate::cell::Exclusive;
use crate::cstr::Fixed;
use crate::sys::{self, thread::futex_wait_ms, thread::futex_wake};
use core::ffi::{c_char, c_int};
use core::sync::atomic::{AtomicU32, Ordering::SeqCst};
use dmtcp_proto::{msg::status, Cmd, Kind, Msg, MSG_SIZE};

pub const DMTCP_AFTER_CHECKPOINT: c_int = 1;
pub const DMTCP_AFTER_RESTART: c_int = 2;
pub const DMTCP_NOT_PRESENT: c_int = 3;
pub const DMTCP_IS_PRESENT: c_int = 4;
/// What a failed `dmtcp_checkpoint` returns (DMTCP: "<= 0 on error").
pub const DMTCP_ERROR: c_int = -1;

static DISABLED: AtomicU32 = AtomicU32::new(0);
static HOLDING: AtomicU32 = AtomicU32::new(0);
static ROUNDS: AtomicU32 = AtomicU32::new(0);
static CHECKPOINTS: AtomicU32 = AtomicU32::new(0);
static RESTARTS: AtomicU32 = AtomicU32::new(0);
static GENERATION: AtomicU32 = AtomicU32::new(0);
/// While an image is being written: the generation before it (+1), so `outcome` can undo.
static WRITING: AtomicU32 = AtomicU32::new(0);
static PENDING_GEN: AtomicU32 = AtomicU32::new(0);

const CONNECT_MS: c_int = 10_000;
/// How often a waiting thread looks again (futex waits are woken earlier when the word moves).
const POLL_MS: i64 = 100;

// ---- checkpoint thread side ---------------------------------------------------------------

/// Held by the checkpoint thread for one checkpoint round; dropping it ends the round.
pub struct Hold(());

/// Called by the checkpoint thread on DoCheckpoint, before it stops any thread: waits until no
/// program thread is inside a `dmtcp_disable_ckpt` section, and keeps new ones out until the
/// round ends.
pub fn hold(generation: u32) -> Hold {
    PENDING_GEN.store(generation, SeqCst);
    HOLDING.store(1, SeqCst);
    let mut said = false;
    loop {
        let d = DISABLED.load(SeqCst);
        if d == 0 {
            break;
        }
        if !said {
            trace!("checkpoint waits: the program disabled checkpoints (dmtcp_disable_ckpt)");
            said = true;
        }
        futex_wait_ms(&DISABLED, d, POLL_MS);
    }
    Hold(())
}

impl Drop for Hold {
    fn drop(&mut self) {
        round_over();
    }
}

/// The checkpoint round is over: sections may begin again. `Hold`'s drop in a process that
/// wrote its image; the checkpoint thread's restart entry in a restarted one (whose `Hold` was
/// on a frame the restart leaves behind).
pub fn round_over() {
    HOLDING.store(0, SeqCst);
    ROUNDS.fetch_add(1, SeqCst);
    futex_wake(&HOLDING);
    futex_wake(&ROUNDS);
}

/// The image is about to be written: count it, so that the image holds the new count.
pub fn writing() {
    WRITING.store(GENERATION.load(SeqCst).wrapping_add(1), SeqCst);
    GENERATION.store(PENDING_GEN.load(SeqCst), SeqCst);
    CHECKPOINTS.fetch_add(1, SeqCst);
}

/// The round's result in the process that wrote (or failed to write) its image.
pub fn outcome(ok: bool) {
    let w = WRITING.swap(0, SeqCst);
    if w != 0 && !ok {
        GENERATION.store(w.wrapping_sub(1), SeqCst);
        CHECKPOINTS.fetch_sub(1, SeqCst);
    }
}

/// In a process restarted from an image, before any program thread runs.
pub fn restarted() {
    WRITING.store(0, SeqCst);
    RESTARTS.fetch_add(1, SeqCst);
}

// ---- program side ---------------------------------------------------------------------------

fn enter_section() {
    loop {
        DISABLED.fetch_add(1, SeqCst);
        if HOLDING.load(SeqCst) == 0 {
            return;
        }
        // A checkpoint is starting: let it, and come back once its round is over.
        DISABLED.fetch_sub(1, SeqCst);
        futex_wake(&DISABLED);
        while HOLDING.load(SeqCst) != 0 {
            futex_wait_ms(&HOLDING, 1, POLL_MS);
        }
    }
}

fn leave_section() {
    // Never below zero: an unmatched enable is ignored, as DMTCP's lock ignores it.
    let _ = DISABLED.fetch_update(SeqCst, SeqCst, |d| d.checked_sub(1));
    futex_wake(&DISABLED);
}

#[no_mangle]
pub extern "C" fn dmtcp_is_enabled() -> c_int {
    crate::config::active() as c_int
}

#[no_mangle]
pub extern "C" fn dmtcp_disable_ckpt() -> c_int {
    if !crate::config::active() {
        return DMTCP_NOT_PRESENT;
    }
    sys::keep_errno(enter_section);
    1
}

#[no_mangle]
pub extern "C" fn dmtcp_enable_ckpt() -> c_int {
    if !crate::config::active() {
        return DMTCP_NOT_PRESENT;
    }
    sys::keep_errno(leave_section);
    1
}

/// DMTCP's internal names for the same section (its plugins' DMTCP_PLUGIN_DISABLE_CKPT).
#[no_mangle]
pub extern "C" fn dmtcp_plugin_disable_ckpt() -> c_int {
    dmtcp_disable_ckpt()
}

#[no_mangle]
pub extern "C" fn dmtcp_plugin_enable_ckpt() {
    dmtcp_enable_ckpt();
}

/// One user command on a connection of our own, inside the section (see the module doc).
/// Returns the coordinator's reply header.
fn user_command(cmd: Cmd) -> Result<Msg, ()> {
    enter_section();
    let r = user_command_in_section(cmd);
    leave_section();
    r
}

fn user_command_in_section(cmd: Cmd) -> Result<Msg, ()> {
    let c = crate::config::get();
    let fd = sys::tcp_connect(c.coord_ip, c.coord_port, CONNECT_MS).map_err(|_| ())?;
    let mut m = Msg::new(Kind::UserCmd);
    m.cmd = cmd as u32;
    m.interval = dmtcp_proto::INTERVAL_UNCHANGED;
    m.pid = sys::getpid();
    let r = sys::write_all(fd, &m.encode()).map_err(|_| ()).and_then(|()| {
        let mut hdr = [0u8; MSG_SIZE];
        let mut got = 0;
        while got < hdr.len() {
            match sys::read_some(fd, &mut hdr[got..]) {
                Ok(0) | Err(_) => return Err(()),
                Ok(n) => got += n,
            }
        }
        let reply = Msg::decode(&hdr).map_err(|_| ())?;
        if reply.kind == Kind::UserCmdResult {
            Ok(reply)
        } else {
            Err(())
        }
    });
    sys::close(fd);
    r
}

#[no_mangle]
pub extern "C" fn dmtcp_checkpoint() -> c_int {
    if !crate::config::active() {
        return DMTCP_NOT_PRESENT;
    }
    sys::keep_errno(checkpoint)
}

fn checkpoint() -> c_int {
    let (rounds, restarts, ckpts) = loop {
        let before = (ROUNDS.load(SeqCst), RESTARTS.load(SeqCst), CHECKPOINTS.load(SeqCst));
        match user_command(Cmd::Checkpoint) {
            Err(()) => {
                warn!("dmtcp_checkpoint: the coordinator did not take the request; no checkpoint");
                return DMTCP_ERROR;
            }
            // Another checkpoint or a restart is under way: ask again, as DMTCP does.
            Ok(r) if r.cmd_status == status::NOT_RUNNING => {
                sys::thread::futex_wait_ms(&ROUNDS, before.0, POLL_MS);
            }
            Ok(r) if r.cmd_status != status::SUCCESS => {
                warn!("dmtcp_checkpoint: the coordinator refused the checkpoint (status {})", r.cmd_status);
                return DMTCP_ERROR;
            }
            Ok(_) => break before,
        }
    };
    loop {
        if RESTARTS.load(SeqCst) != restarts {
            return DMTCP_AFTER_RESTART;
        }
        let now = ROUNDS.load(SeqCst);
        if now != rounds {
            return if CHECKPOINTS.load(SeqCst) != ckpts { DMTCP_AFTER_CHECKPOINT } else { DMTCP_ERROR };
        }
        if !crate::config::active() {
            return DMTCP_ERROR;
        }
        futex_wait_ms(&ROUNDS, now, POLL_MS);
    }
}

/// # Safety
/// Each pointer is null or valid for writing one int (the C API's contract).
#[no_mangle]
pub unsafe extern "C" fn dmtcp_get_coordinator_status(num_peers: *mut c_int, is_running: *mut c_int) -> c_int {
    if !crate::config::active() {
        return DMTCP_NOT_PRESENT;
    }
    let (n, running) = match sys::keep_errno(|| user_command(Cmd::Status)) {
        Ok(r) => (r.num_peers as c_int, (r.running != 0) as c_int),
        // DMTCP leaves them as they are when the coordinator cannot be asked; we say "none".
        Err(()) => (0, 0),
    };
    // SAFETY: the caller's pointers, checked for null, valid for one int each (contract).
    unsafe {
        if !num_peers.is_null() {
            *num_peers = n;
        }
        if !is_running.is_null() {
            *is_running = running;
        }
    }
    DMTCP_IS_PRESENT
}

/// # Safety
/// Each pointer is null or valid for writing one int (the C API's contract).
#[no_mangle]
pub unsafe extern "C" fn dmtcp_get_local_status(num_checkpoints: *mut c_int, num_restarts: *mut c_int) -> c_int {
    if !crate::config::active() {
        return DMTCP_NOT_PRESENT;
    }
    // SAFETY: the caller's pointers, checked for null, valid for one int each (contract).
    unsafe {
        if !num_checkpoints.is_null() {
            *num_checkpoints = CHECKPOINTS.load(SeqCst) as c_int;
        }
        if !num_restarts.is_null() {
            *num_restarts = RESTARTS.load(SeqCst) as c_int;
        }
    }
    DMTCP_IS_PRESENT
}

#[no_mangle]
pub extern "C" fn dmtcp_get_generation() -> u32 {
    GENERATION.load(SeqCst)
}

/// 1 when the coordinator has asked for a checkpoint that has not finished in this process.
#[no_mangle]
pub extern "C" fn checkpoint_is_pending() -> c_int {
    HOLDING.load(SeqCst) as c_int
}

static PATH: Exclusive<Fixed<4200>> = Exclusive::new(Fixed::new());
static CKPT_DIR: Exclusive<Fixed<4200>> = Exclusive::new(Fixed::new());
/// Program threads may ask for the paths at the same time: they take turns here, so that the
/// `Exclusive` cells never see two at once (which they would abort on).
static PATHS_BUSY: AtomicU32 = AtomicU32::new(0);

fn one_at_a_time<R>(f: impl FnOnce() -> R) -> R {
    while PATHS_BUSY.swap(1, SeqCst) != 0 {
        futex_wait_ms(&PATHS_BUSY, 1, POLL_MS);
    }
    let r = f();
    PATHS_BUSY.store(0, SeqCst);
    futex_wake(&PATHS_BUSY);
    r
}

/// The path of this process's image: the file its last checkpoint wrote, or the next one
/// gets. The text stays as it is while the path does (it is the same for the process's life).
#[no_mangle]
pub extern "C" fn dmtcp_get_ckpt_filename() -> *const c_char {
    if !crate::config::active() {
        return core::ptr::null();
    }
    let comp = crate::coord::COMP_ID.load(core::sync::atomic::Ordering::Relaxed);
    let vpid = crate::coord::VPID.load(core::sync::atomic::Ordering::Relaxed);
    let mut now = Fixed::<4200>::new();
    if !sys::keep_errno(|| crate::writer::image_path_for(comp, vpid, &mut now)) {
        return core::ptr::null();
    }
    stable(&PATH, now.bytes())
}

/// The text of `cell` once it holds `text`: written only when it differs, so that a pointer
/// handed out earlier (to any thread) keeps reading the same bytes.
fn stable(cell: &Exclusive<Fixed<4200>>, text: &[u8]) -> *const c_char {
    one_at_a_time(|| {
        cell.with(|p| {
            if p.bytes() != text {
                p.set(text);
            }
            p.as_cstr().as_ptr()
        })
    })
}

/// The folder images go to.
#[no_mangle]
pub extern "C" fn dmtcp_get_ckpt_dir() -> *const c_char {
    if !crate::config::active() {
        return core::ptr::null();
    }
    stable(&CKPT_DIR, crate::config::get().ckpt_dir())
}
