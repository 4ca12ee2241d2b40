//! Per-architecture code, one file per architecture behind one typed API: saving a thread's
//! resume point (`save_context`), reading the thread's TLS registers (`capture_tls`), where the
//! restorer lives (`RESTORER_BASE`), and the C-variadic `execl`/`execlp`/`execle` trampolines
//! (which hand their argument list to `crate::execl::execl_impl`).
//!
//! Rules: only asm and architecture-specific system calls live here (and in `x86_64.rs`,
//! `x86.rs`); each item has the same signature on both architectures. Every unsafe block has a
//! `// SAFETY:` line.
//!
//! `save_context` stores the callee-saved registers, the stack pointer and the return address
//! (a setjmp without the signal mask) into 16 u64 slots, in the layout of
//! `dmtcp_proto::image::thread::REGS`, and returns 0. The restorer later resumes the thread
//! there with 1 as the return value. Its rules are those of setjmp: the function that calls
//! `save_context` must still be running when the memory is captured and when the thread is
//! resumed, and it must not read, after the call, a local that it changed after the call.
//! Registers are saved by the asm only.

#[cfg(target_arch = "x86")]
mod x86;
#[cfg(target_arch = "x86")]
pub use x86::{capture_tls, RESTORER_BASE};
#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::{capture_tls, RESTORER_BASE};

/// A thread's TLS registers as the image stores them.
pub struct Tls {
    /// x86_64: fs base in the first 8 bytes; i686: struct user_desc.
    pub tls: [u8; 16],
    /// x86_64: gs base; i686: the %gs selector.
    pub gs: u64,
    /// The thread pointer (fs base; on i686 the base address of the %gs segment).
    pub thread_pointer: usize,
}

extern "C" {
    /// Returns 0 after saving; 1 when the restorer resumes the thread here (defined by the
    /// `global_asm!` of the architecture file).
    fn dmtcp_save_context(regs: *mut u64) -> usize;
}

/// See the module rules. `regs` must be zeroed (the i686 version fills only the low halves).
#[inline(always)]
pub fn save_context(regs: &mut [u64; 16]) -> usize {
    // SAFETY: writes 64 bytes into `regs` and returns; the resume path is the restorer's,
    // under the module rules.
    unsafe { dmtcp_save_context(regs.as_mut_ptr()) }
}
