//! Saving a thread's resume point: `save_context` stores the callee-saved registers, the stack
//! pointer and the return address (a setjmp without the signal mask) into 16 u64 slots, in the
//! layout of `dmtcp_proto::image::thread::REGS`, and returns 0. The restorer later resumes the
//! thread there with 1 as the return value.
//!
//! Rules (those of setjmp): the function that calls `save_context` must still be running when
//! the memory is captured and when the thread is resumed, and it must not read, after the call,
//! a local that it changed after the call. Registers are saved by the asm below only.
use core::arch::global_asm;

#[cfg(target_arch = "x86_64")]
global_asm!(
    ".globl dmtcp_save_context",
    ".hidden dmtcp_save_context",
    ".type dmtcp_save_context,@function",
    "dmtcp_save_context:",
    "mov [rdi], rbx",
    "mov [rdi + 8], rbp",
    "mov [rdi + 16], r12",
    "mov [rdi + 24], r13",
    "mov [rdi + 32], r14",
    "mov [rdi + 40], r15",
    "lea rdx, [rsp + 8]",
    "mov [rdi + 48], rdx",
    "mov rdx, [rsp]",
    "mov [rdi + 56], rdx",
    "xor eax, eax",
    "ret",
);

#[cfg(target_arch = "x86")]
global_asm!(
    ".globl dmtcp_save_context",
    ".hidden dmtcp_save_context",
    ".type dmtcp_save_context,@function",
    "dmtcp_save_context:",
    "mov eax, [esp + 4]",
    "mov [eax], ebx",
    "mov [eax + 8], esi",
    "mov [eax + 16], edi",
    "mov [eax + 24], ebp",
    "lea ecx, [esp + 4]",
    "mov [eax + 32], ecx",
    "mov ecx, [esp]",
    "mov [eax + 40], ecx",
    "xor eax, eax",
    "ret",
);

extern "C" {
    /// Returns 0 after saving; 1 when the restorer resumes the thread here.
    fn dmtcp_save_context(regs: *mut u64) -> usize;
}

/// See the module rules. `regs` must be zeroed (the i686 version fills only the low halves).
#[inline(always)]
pub fn save_context(regs: &mut [u64; 16]) -> usize {
    // SAFETY: writes 64 bytes into `regs` and returns; the resume path is the restorer's,
    // under the module rules.
    unsafe { dmtcp_save_context(regs.as_mut_ptr()) }
}
