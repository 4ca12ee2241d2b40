//! i686: context saving, TLS registers and the execl trampolines (see `arch`).
//!
//! Rules: as `arch`; every execl argument is on the stack.
use super::Tls;
use core::arch::global_asm;

/// Where `mtcp_restart` for this architecture lives during a restart.
pub const RESTORER_BASE: u64 = dmtcp_proto::RESTORER_BASE_I686;

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

/// This thread's %gs selector and the user_desc of its GDT entry; the thread pointer is the
/// entry's base address.
pub fn capture_tls() -> Tls {
    let sel: u16;
    // SAFETY: reads the %gs selector.
    unsafe { core::arch::asm!("mov {0:x}, gs", out(reg) sel) };
    let mut desc = [0u32; 4];
    desc[0] = u32::from(sel >> 3);
    // SAFETY: get_thread_area fills the 16-byte user_desc for entry desc[0].
    unsafe { libc::syscall(libc::SYS_get_thread_area, desc.as_mut_ptr()) };
    let mut tls = [0; 16];
    for (i, d) in desc.iter().enumerate() {
        tls[i * 4..i * 4 + 4].copy_from_slice(&d.to_le_bytes());
    }
    Tls { tls, gs: u64::from(sel), thread_pointer: desc[1] as usize }
}

macro_rules! trampoline {
    ($name:ident, $kind:expr) => {
        /// See `crate::execl`: a C-variadic entry point written as a naked trampoline.
        #[no_mangle]
        #[unsafe(naked)]
        pub extern "C" fn $name() {
            core::arch::naked_asm!(
                "mov eax, [esp + 4]",
                "lea ecx, [esp + 8]",
                "sub esp, 8",
                "push {kind}",
                "push ecx",
                "push 0",
                "push ecx",
                "push eax",
                "call {imp}",
                "add esp, 28",
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
