//! i686: `_start` and `int 0x80`.
#![allow(unsafe_code)]
use core::arch::{asm, global_asm};

// The kernel starts us with argc at [esp]; pass that pointer as the one cdecl argument of
// `restorer_main`, keeping the stack 16-byte aligned at the call.
global_asm!(
    ".globl _start",
    "_start:",
    "xor ebp, ebp",
    "mov eax, esp",
    "and esp, -16",
    "sub esp, 12",
    "push eax",
    "call {main}",
    "ud2",
    main = sym crate::restorer_main,
);

pub const SYS_WRITE: usize = 4;
pub const SYS_EXIT_GROUP: usize = 252;

/// Raw three-argument system call.
pub fn syscall3(nr: usize, a: usize, b: usize, c: usize) -> isize {
    let ret: isize;
    // SAFETY: `int 0x80` preserves every register but eax (the result); callers pass
    // arguments whose memory they own for the call's duration.
    unsafe {
        asm!("int 0x80", inlateout("eax") nr as isize => ret, in("ebx") a, in("ecx") b, in("edx") c,
             options(nostack));
    }
    ret
}
