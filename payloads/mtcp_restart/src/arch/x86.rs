//! i686: `_start`, raw system calls through `int 0x80`, starting a restored thread and resuming a
//! saved context. `esi` and `ebp` cannot be asm operands here, so system calls load their
//! arguments from a block in memory (as rustix's arch/x86.rs does).
#![allow(unsafe_code)]
use core::arch::{asm, global_asm};

// The kernel starts us with argc at [esp]. Keep that pointer, move onto our own stack in .bss
// and call `restorer_main(initial_sp)` (cdecl, stack 16-byte aligned at the call).
global_asm!(
    ".globl _start",
    "_start:",
    "xor ebp, ebp",
    "mov eax, esp",
    "lea esp, [{stack} + {size}]",
    "and esp, -16",
    "sub esp, 12",
    "push eax",
    "call {main}",
    "ud2",
    main = sym crate::restorer_main,
    stack = sym crate::STACK,
    size = const crate::STACK_SIZE,
);

use dmtcp_proto::image::ThreadRecord;

pub const ARCH: dmtcp_proto::image::Arch = dmtcp_proto::image::Arch::I686;
pub const RESTORER_BASE: usize = dmtcp_proto::RESTORER_BASE_I686 as usize;

pub mod nr {
    pub const READ: usize = 3;
    pub const WRITE: usize = 4;
    pub const CLOSE: usize = 6;
    pub const GETPID: usize = 20;
    pub const MUNMAP: usize = 91;
    pub const MPROTECT: usize = 125;
    pub const RT_SIGPROCMASK: usize = 175;
    pub const MREMAP: usize = 163;
    pub const PRCTL: usize = 172;
    pub const MMAP2: usize = 192;
    pub const SET_THREAD_AREA: usize = 243;
    pub const EXIT_GROUP: usize = 252;
    pub const OPENAT: usize = 295;
    pub const CLONE3: usize = 435;
    pub const MADVISE: usize = 219;
    pub const MLOCK2: usize = 376;
    pub const KILL: usize = 37;
    pub const FCHMOD: usize = 94;
    pub const FTRUNCATE64: usize = 194;
    pub const FALLOCATE: usize = 324;
}

/// Raw system call with up to six arguments; returns the kernel's value (negative errno).
#[inline(always)]
pub fn syscall6(n: usize, a: usize, b: usize, c: usize, d: usize, e: usize, f: usize) -> isize {
    let block = [n, a, b, c, d, e, f];
    let ret: isize;
    // SAFETY: saves and restores ebx, esi, edi and ebp around `int 0x80`; eax returns the
    // result and ecx/edx are declared clobbered. Whether a call is memory-safe depends on its
    // arguments; every caller in `sys` passes memory it owns for the call's duration.
    unsafe {
        asm!(
            "push ebp",
            "push ebx",
            "push esi",
            "push edi",
            "mov ebx, [eax + 4]",
            "mov ecx, [eax + 8]",
            "mov edx, [eax + 12]",
            "mov esi, [eax + 16]",
            "mov edi, [eax + 20]",
            "mov ebp, [eax + 24]",
            "mov eax, [eax]",
            "int 0x80",
            "pop edi",
            "pop esi",
            "pop ebx",
            "pop ebp",
            inlateout("eax") block.as_ptr() => ret,
            lateout("ecx") _, lateout("edx") _,
        );
    }
    ret
}

/// mmap2 takes its offset in pages.
pub fn mmap(addr: usize, len: usize, prot: usize, flags: usize, fd: usize, off: u64) -> isize {
    syscall6(nr::MMAP2, addr, len, prot, flags, fd, (off / 4096) as usize)
}

/// fallocate(fd, 0, 0, len): i386 passes each 64-bit argument as two registers (low first).
pub fn fallocate(fd: usize, len: u64) -> isize {
    syscall6(nr::FALLOCATE, fd, 0, 0, 0, len as u32 as usize, (len >> 32) as usize)
}

/// ftruncate64(fd, len), the length as two registers (low first).
pub fn ftruncate(fd: usize, len: u64) -> isize {
    syscall6(nr::FTRUNCATE64, fd, len as u32 as usize, (len >> 32) as usize, 0, 0, 0)
}

/// Sets this thread's TLS from a thread record: the GDT entry, then %gs.
pub fn set_tls(rec: &ThreadRecord) -> isize {
    let mut desc = [0u32; 4];
    for (i, d) in desc.iter_mut().enumerate() {
        *d = rec.tls_word(i);
    }
    let r = syscall6(nr::SET_THREAD_AREA, desc.as_mut_ptr() as usize, 0, 0, 0, 0, 0);
    if r < 0 {
        return r;
    }
    let gs = rec.gs as u32;
    // SAFETY: loads the selector of the GDT entry just installed for this thread.
    unsafe { asm!("mov gs, {0:x}", in(reg) gs as u16) };
    0
}

/// The `tls` argument of clone3 for a thread record: a pointer to its user_desc, which the
/// kernel reads during the clone3 call (the record outlives it).
pub fn clone_tls(rec: &ThreadRecord) -> u64 {
    rec.tls.as_ptr() as usize as u64
}

/// Resumes a saved context (ebx esi edi ebp esp eip as u64 slots), with 1 in eax.
///
/// # Safety
/// `regs` must hold a context the preload library recorded (`arch::*_resume_regs`) in memory that is
/// mapped again; nothing of the current stack is used afterwards.
pub unsafe fn resume(regs: *const u64) -> ! {
    // SAFETY: per the function contract; loads every register from `regs` and never returns.
    unsafe {
        asm!(
            "mov ebx, [eax]",
            "mov esi, [eax + 8]",
            "mov edi, [eax + 16]",
            "mov ebp, [eax + 24]",
            "mov ecx, [eax + 40]",
            "mov esp, [eax + 32]",
            "mov eax, 1",
            "jmp ecx",
            in("eax") regs,
            options(noreturn),
        )
    }
}

/// clone3 for a restored thread; see the x86_64 version. The child must also load %gs with its
/// selector, which `thread_entry` does through `set_tls`-free code: the kernel installed the
/// GDT entry (CLONE_SETTLS), `thread_entry` loads the selector.
///
/// # Safety
/// As for x86_64: valid `clone_args`, an unused mapped stack, `start` valid until resumed.
pub unsafe fn clone3_thread(args: *const u64, size: usize, start: usize) -> isize {
    let ret: isize;
    // SAFETY: per the function contract. ebx is saved on the parent's stack; the child gets a
    // fresh stack from clone3, finds `start` in edi and calls `thread_entry`, never returning.
    unsafe {
        asm!(
            "push ebx",
            "mov ebx, {args}",
            "int 0x80",
            "test eax, eax",
            "jnz 2f",
            "and esp, -16",
            "sub esp, 12",
            "push edi",
            "call {entry}",
            "ud2",
            "2:",
            "pop ebx",
            entry = sym crate::thread_entry,
            args = in(reg) args,
            inlateout("eax") nr::CLONE3 as isize => ret,
            in("ecx") size, in("edi") start,
            lateout("edx") _,
        );
    }
    ret
}

/// Loads %gs with a selector (after CLONE_SETTLS installed the entry).
pub fn load_gs(sel: u32) {
    // SAFETY: the selector names this thread's TLS entry in the GDT.
    unsafe { asm!("mov gs, {0:x}", in(reg) sel as u16) };
}
