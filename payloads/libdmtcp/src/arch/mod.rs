//! Per-architecture code, one file per architecture behind one typed API: the threads' resume
//! points after a restart (`ckpt_thread_start`, `ckpt_resume_regs`, `thread_resume_regs`),
//! reading the thread's TLS registers (`capture_tls`), where the restorer lives
//! (`RESTORER_BASE`), and the C-variadic `execl`/`execlp`/`execle` trampolines
//! (which hand their argument list to `crate::execl::execl_impl`).
//!
//! Rules: only asm and architecture-specific system calls live here (and in `x86_64.rs`,
//! `x86.rs`); each item has the same signature on both architectures. Every unsafe block has a
//! `// SAFETY:` line.
//!
//! The resume point (design): no Rust function returns twice. At a checkpoint nothing is saved
//! by asm; each thread's slot gets a register array (layout of
//! `dmtcp_proto::image::thread::REGS`) that names a fixed asm stub and a stack pointer that
//! depends only on the C ABI and the kernel's signal frame, never on a Rust frame:
//! - the checkpoint thread starts in `ckpt_thread_start` (asm), which pushes the callee-saved
//!   registers and hands the Rust body that frame's address, its *base*. A restart resumes it
//!   in `ckpt_resume` with the stack pointer at the base: the stub calls a fresh
//!   `ckpt_thread::restarted` below it, then pops what `ckpt_thread_start` pushed and returns
//!   null to the C library's thread start, exactly as the first run would have.
//! - a user thread stops inside the checkpoint signal's handler. A restart resumes it in
//!   `thread_resume` below the kernel's signal frame (found from the handler's `uc`/`info`
//!   arguments, the kernel's rt_sigframe layout), with its slot number in a callee-saved
//!   register: the stub calls a fresh `threads::restarted(slot)`, which returns the stack
//!   pointer rt_sigreturn wants, and the stub makes that system call: every register and the
//!   signal mask come back from the frame, as if the handler had returned.
//!
//! The frames of the code that ran between (handler, `stop_here`, the writer) are dead memory
//! after a restart; whatever the compiler inlined or kept in registers there cannot matter.
//! This is MTCP's and CRIU's way (CRIU's restorer returns into each thread through
//! rt_sigreturn on a frame it built; ours is the one the kernel built at the checkpoint).

#[cfg(target_arch = "x86")]
mod x86;
#[cfg(target_arch = "x86")]
pub use x86::{capture_tls, ckpt_resume_regs, ckpt_thread_start, thread_resume_regs, RESTORER_BASE};
#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::{capture_tls, ckpt_resume_regs, ckpt_thread_start, thread_resume_regs, RESTORER_BASE};

/// A thread's TLS registers as the image stores them.
pub struct Tls {
    /// x86_64: fs base in the first 8 bytes; i686: struct user_desc.
    pub tls: [u8; 16],
    /// x86_64: gs base; i686: the %gs selector.
    pub gs: u64,
    /// The thread pointer (fs base; on i686 the base address of the %gs segment).
    pub thread_pointer: usize,
}
