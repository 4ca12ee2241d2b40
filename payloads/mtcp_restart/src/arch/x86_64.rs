//! x86_64: `_start` and the `syscall` instruction.
#![allow(unsafe_code)]
use core::arch::{asm, global_asm};

// The kernel starts us with argc at [rsp], then argv[], NULL, envp[], NULL, auxv.
// Hand that pointer to `restorer_main` on a 16-byte aligned stack.
global_asm!(
    ".globl _start",
    "_start:",
    "xor ebp, ebp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {main}",
    "ud2",
    main = sym crate::restorer_main,
);

pub const SYS_WRITE: usize = 1;
pub const SYS_EXIT_GROUP: usize = 231;

/// Raw three-argument system call.
pub fn syscall3(nr: usize, a: usize, b: usize, c: usize) -> isize {
    let ret: isize;
    // SAFETY: the `syscall` instruction clobbers only rcx and r11 (declared) and rax (the
    // result); callers pass arguments whose memory they own for the call's duration.
    unsafe {
        asm!("syscall", inlateout("rax") nr as isize => ret, in("rdi") a, in("rsi") b, in("rdx") c,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}
