//! `libdmtcp.so`: the preload library that `dmtcp launch` puts into every process of a
//! computation (built for x86_64 and i686).
//!
//! What it does today: at load time it hides itself from the program's environment, finds the
//! C library's real `dlsym` without going through any `dlsym` the program may wrap, registers the
//! process with the coordinator on fd 821, and starts the background thread that will become the
//! checkpoint thread. Its `exec*`/`posix_spawn*` wrappers put the library of the *target's*
//! architecture back into the new program's `LD_PRELOAD` and hand the process's registration
//! over to the new image, and fork handlers register every child as a worker of its own before
//! it exists (`children`).
//!
//! Rules for all code in this crate, which runs inside other people's programs:
//! - Small; no Rust std, no allocation (no `alloc`); no panics in practice (panic = abort).
//! - Never call the application's `malloc` from code that may run while threads are stopped or
//!   in a signal handler; memory that must be allocated comes from `mmap`. Calling libc
//!   (socket, connect, getenv, setenv, pthread_create, dlopen, ...) is fine in the constructor.
//! - Async-signal-safe where a signal can land.
//! - Silent: the program must behave exactly as without dmtcp (arguments, environment, exit
//!   status, stdio, signals, errno). Only real problems go to stderr, one line each, prefixed
//!   `dmtcp[<pid>]: `; detail only with `DMTCP_LOG_LEVEL=trace` (or `3`).
//! - `unsafe` is denied at the crate root and allowed only in these modules (each block
//!   carries a `// SAFETY:` line); every other module calls their typed wrappers:
//!   - `sys` (with `sys/thread`, `sys/dl`): every libc call and raw system call.
//!   - `arch` (`arch/x86_64.rs`, `arch/x86.rs`): asm: the threads' resume stubs after a
//!     restart, TLS registers, the C-variadic execl trampolines.
//!   - `cell`: the run-time-checked `Exclusive` cell for static tables.
//!   - `real`: turns the addresses dlsym gives into typed function pointers.
//!   - `threads`: the per-thread slot table filled from the checkpoint signal's handler, the
//!     siginfo the kernel hands that handler, and the checkpoint thread's own slot.
//!   - `config`: the settings global, written only while single-threaded.
//!   - `writer`: the image writer's clone and scratch memory.
//!   - `cstr`: reads the NULL-terminated C string arrays the program hands in (argv, envp).
//!   - C-ABI entry points, which take raw pointers from the program or export symbols:
//!     `init` (the `.init_array` constructor), `exec` (exec*/posix_spawn*), `execl` (the
//!     trampolines' variadic list), `shell` (system/popen/pclose and their fork child),
//!     `signals` (sigaction, signal masks, sleeps), `inotify_calls` (the inotify wrappers that
//!     note each watch's path), `interrupt` (the calls a checkpoint must not interrupt: poll,
//!     select, epoll_wait, sigtimedwait, ...), `fds` (close, dup2, close_range, ... kept off our
//!     coordinator fd).
//!     `api` (DMTCP's C API of dmtcp.h: writes through the program's out-pointers),
//!     `tty_owner` (chown and its kin on terminals, for the ids our user namespace cannot map).
//!
//!   The resource kinds (`resources/`), `coord`, `children`, `ckpt_thread`, `dlsym`, `log` and
//!   the protocol code have none.
#![no_std]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[macro_use]
mod log;
// The C API of dmtcp.h (exported functions taking the program's out-pointers).
#[allow(unsafe_code)]
mod api;
#[allow(unsafe_code)]
mod arch;
#[allow(unsafe_code)]
mod cell;
mod children;
mod ckpt_thread;
#[allow(unsafe_code)]
mod config;
mod coord;
#[allow(unsafe_code)]
mod cstr;
mod dirty;
mod dlsym;
#[allow(unsafe_code)]
mod exec;
#[allow(unsafe_code)]
mod execl;
#[allow(unsafe_code)]
mod fds;
#[allow(unsafe_code)]
mod init;
// Image write progress for the coordinator (no unsafe).
#[allow(unsafe_code)]
mod inotify_calls;
#[allow(unsafe_code)]
mod interrupt;
mod progress;
#[allow(unsafe_code)]
mod real;
mod resources;
#[allow(unsafe_code)]
mod sem_calls;
#[allow(unsafe_code)]
mod shell;
#[allow(unsafe_code)]
mod signals;
#[allow(unsafe_code)]
mod sys;
#[allow(unsafe_code)]
mod threads;
#[allow(unsafe_code)]
mod tty_owner;
#[allow(unsafe_code)]
mod writer;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // Never expected: every slice access is bounds-checked by construction. Say so and stop
    // rather than spin inside the user's program.
    log::raw_error(b"internal error (panic) in libdmtcp.so; aborting");
    sys::abort()
}
