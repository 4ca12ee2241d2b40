//! x86_64: `_start`, raw system calls, starting a restored thread and resuming a saved context.
//! This file and `x86.rs` hold the restorer's architecture-specific `unsafe`.
#![allow(unsafe_code)]
use core::arch::{asm, global_asm};

// The kernel starts us with argc at [rsp], then argv[], NULL, envp[], NULL, auxv. Keep that
// pointer, move onto our own stack in .bss (the kernel's stack may sit where the program we
// restore had memory, so it is unmapped later), and call `restorer_main(initial_sp)`.
global_asm!(
    ".globl _start",
    "_start:",
    "xor ebp, ebp",
    "mov rdi, rsp",
    "lea rsp, [rip + {stack} + {size}]",
    "and rsp, -16",
    "call {main}",
    "ud2",
    main = sym crate::restorer_main,
    stack = sym crate::STACK,
    size = const crate::STACK_SIZE,
);

use dmtcp_proto::image::ThreadRecord;

pub const ARCH: dmtcp_proto::image::Arch = dmtcp_proto::image::Arch::X86_64;
pub const RESTORER_BASE: usize = dmtcp_proto::RESTORER_BASE_X86_64 as usize;

pub mod nr {
    pub const READ: usize = 0;
    pub const WRITE: usize = 1;
    pub const CLOSE: usize = 3;
    pub const MMAP: usize = 9;
    pub const MPROTECT: usize = 10;
    pub const MUNMAP: usize = 11;
    pub const RT_SIGPROCMASK: usize = 14;
    pub const MREMAP: usize = 25;
    pub const GETPID: usize = 39;
    pub const PRCTL: usize = 157;
    pub const ARCH_PRCTL: usize = 158;
    pub const EXIT_GROUP: usize = 231;
    pub const OPENAT: usize = 257;
    pub const CLONE3: usize = 435;
    pub const MADVISE: usize = 28;
    pub const MLOCK2: usize = 325;
    pub const KILL: usize = 62;
    pub const FTRUNCATE: usize = 77;
    pub const FCHMOD: usize = 91;
    pub const FALLOCATE: usize = 285;
}

/// Raw system call with up to six arguments; returns the kernel's value (negative errno).
#[inline(always)]
pub fn syscall6(n: usize, a: usize, b: usize, c: usize, d: usize, e: usize, f: usize) -> isize {
    let ret: isize;
    // SAFETY: the `syscall` instruction clobbers only rcx and r11 (declared) and rax (the
    // result). Whether a call is memory-safe depends on its arguments; every caller in `sys`
    // passes memory it owns for the call's duration.
    unsafe {
        asm!("syscall", inlateout("rax") n as isize => ret, in("rdi") a, in("rsi") b, in("rdx") c,
             in("r10") d, in("r8") e, in("r9") f, lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

/// mmap takes its offset in bytes here.
/// fallocate(fd, 0, 0, len).
pub fn fallocate(fd: usize, len: u64) -> isize {
    syscall6(nr::FALLOCATE, fd, 0, 0, len as usize, 0, 0)
}

/// ftruncate(fd, len).
pub fn ftruncate(fd: usize, len: u64) -> isize {
    syscall6(nr::FTRUNCATE, fd, len as usize, 0, 0, 0, 0)
}

pub fn mmap(addr: usize, len: usize, prot: usize, flags: usize, fd: usize, off: u64) -> isize {
    syscall6(nr::MMAP, addr, len, prot, flags, fd, off as usize)
}

/// Sets this thread's TLS from a thread record (fs base; gs base is left to the program).
pub fn set_tls(rec: &ThreadRecord) -> isize {
    const ARCH_SET_FS: usize = 0x1002;
    let fs = rec.fs_base() as usize;
    syscall6(nr::ARCH_PRCTL, ARCH_SET_FS, fs, 0, 0, 0, 0)
}

/// The `tls` argument of clone3 for a thread record.
pub fn clone_tls(rec: &ThreadRecord) -> u64 {
    rec.fs_base()
}

/// Resumes a saved context: callee-saved registers, stack pointer, and a jump to the saved
/// instruction pointer (one of the preload library's resume stubs, `libdmtcp::arch`, which
/// take their arguments from the callee-saved registers).
///
/// # Safety
/// `regs` must hold a context the preload library recorded (`arch::*_resume_regs`) in memory that is
/// mapped again; nothing of the current stack is used afterwards.
pub unsafe fn resume(regs: *const u64) -> ! {
    // SAFETY: per the function contract; loads every register from `regs` and never returns.
    unsafe {
        asm!(
            "mov rbx, [rdi]",
            "mov rbp, [rdi + 8]",
            "mov r12, [rdi + 16]",
            "mov r13, [rdi + 24]",
            "mov r14, [rdi + 32]",
            "mov r15, [rdi + 40]",
            "mov rcx, [rdi + 56]",
            "mov rsp, [rdi + 48]",
            "mov eax, 1",
            "jmp rcx",
            in("rdi") regs,
            options(noreturn),
        )
    }
}

/// clone3 for a restored thread: the child runs `crate::thread_entry(start)` on the stack given
/// in `args` and never returns here; the parent gets the child's tid or a negative errno.
///
/// # Safety
/// `args` must point to a valid `clone_args` of `size` bytes whose stack is mapped and
/// unused, and `start` must stay valid until the child has resumed.
pub unsafe fn clone3_thread(args: *const u64, size: usize, start: usize) -> isize {
    let ret: isize;
    // SAFETY: per the function contract. The child starts on its own stack with r12 = start
    // and calls `thread_entry`, which never returns; the parent path returns normally.
    unsafe {
        asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov rdi, r12",
            "and rsp, -16",
            "call {entry}",
            "ud2",
            "2:",
            entry = sym crate::thread_entry,
            inlateout("rax") nr::CLONE3 as isize => ret,
            in("rdi") args, in("rsi") size, in("r12") start,
            lateout("rcx") _, lateout("r11") _,
        );
    }
    ret
}
