//! x86_64: context saving, TLS registers and the execl trampolines (see `arch`).
//!
//! Rules: as `arch`; the first five variadic list entries of execl arrive in rsi, rdx, rcx,
//! r8, r9 (saved to the stack by the trampoline), the rest on the stack after the return
//! address.
use super::Tls;
use core::arch::global_asm;

/// Where `mtcp_restart` for this architecture lives during a restart.
pub const RESTORER_BASE: u64 = dmtcp_proto::RESTORER_BASE_X86_64;

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

/// arch_prctl codes (asm/prctl.h).
const ARCH_GET_FS: libc::c_int = 0x1003;
const ARCH_GET_GS: libc::c_int = 0x1004;

/// This thread's fs and gs bases; the thread pointer is the fs base.
pub fn capture_tls() -> Tls {
    let mut fs: u64 = 0;
    let mut gs: u64 = 0;
    // SAFETY: ARCH_GET_FS/GS write one u64 each into valid locals.
    unsafe {
        libc::syscall(libc::SYS_arch_prctl, ARCH_GET_FS, &mut fs as *mut u64);
        libc::syscall(libc::SYS_arch_prctl, ARCH_GET_GS, &mut gs as *mut u64);
    }
    let mut tls = [0; 16];
    tls[..8].copy_from_slice(&fs.to_le_bytes());
    Tls { tls, gs, thread_pointer: fs as usize }
}

macro_rules! trampoline {
    ($name:ident, $kind:expr) => {
        /// See `crate::execl`: a C-variadic entry point written as a naked trampoline.
        #[no_mangle]
        #[unsafe(naked)]
        pub extern "C" fn $name() {
            core::arch::naked_asm!(
                "sub rsp, 56",
                "mov [rsp], rsi",
                "mov [rsp + 8], rdx",
                "mov [rsp + 16], rcx",
                "mov [rsp + 24], r8",
                "mov [rsp + 32], r9",
                "mov rsi, rsp",
                "mov edx, 5",
                "lea rcx, [rsp + 64]",
                "mov r8d, {kind}",
                "call {imp}",
                "add rsp, 56",
                "ret",
                kind = const $kind,
                imp = sym crate::execl::execl_impl,
            )
        }
    };
}

trampoline!(execl, crate::execl::EXECL);
trampoline!(execlp, crate::execl::EXECLP);
trampoline!(execle, crate::execl::EXECLE);
