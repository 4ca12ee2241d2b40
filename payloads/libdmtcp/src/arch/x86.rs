//! i686: the resume stubs, TLS registers and the execl trampolines (see `arch`).
//!
//! Rules: as `arch`; every execl argument is on the stack.
use super::Tls;

/// Where `mtcp_restart` for this architecture lives during a restart.
pub const RESTORER_BASE: u64 = dmtcp_proto::RESTORER_BASE_I686;

/// Slots of the register array (`dmtcp_proto::image::thread::REGS`) that the restorer loads:
/// ebx, esi, edi, ebp, esp, eip.
const EBX: usize = 0;
const ESP: usize = 4;
const EIP: usize = 5;

/// The checkpoint thread's start routine (given to pthread_create): saves the callee-saved
/// registers on its stack, hands `body` that frame's address (the base where a restart resumes
/// the thread) on a 16-byte aligned stack, and returns null when `body` returns.
#[unsafe(naked)]
pub extern "C" fn ckpt_thread_start(_arg: *mut core::ffi::c_void) -> *mut core::ffi::c_void {
    core::arch::naked_asm!(
        "push ebp",
        "push ebx",
        "push esi",
        "push edi",
        "mov esi, esp",
        "and esp, -16",
        "sub esp, 12",
        "push esi",
        "call {body}",
        "mov esp, esi",
        "pop edi",
        "pop esi",
        "pop ebx",
        "pop ebp",
        "xor eax, eax",
        "ret",
        body = sym crate::ckpt_thread::thread_body,
    )
}

/// Where the restorer resumes the checkpoint thread, with esp = the base `ckpt_thread_start`
/// handed its body: calls `ckpt_thread::restarted` below the base, then leaves exactly as
/// `ckpt_thread_start` does.
#[unsafe(naked)]
extern "C" fn ckpt_resume() {
    core::arch::naked_asm!(
        "mov esi, esp",
        "and esp, -16",
        "call {restarted}",
        "mov esp, esi",
        "pop edi",
        "pop esi",
        "pop ebx",
        "pop ebp",
        "xor eax, eax",
        "ret",
        restarted = sym crate::ckpt_thread::restarted,
    )
}

/// Where the restorer resumes a user thread stopped in the checkpoint signal's handler, with
/// ebx = its slot and esp below the kernel's signal frame: calls `threads::restarted(slot)`,
/// which returns the stack pointer rt_sigreturn expects, and returns from the signal through
/// the kernel.
#[unsafe(naked)]
extern "C" fn thread_resume() {
    core::arch::naked_asm!(
        "and esp, -16",
        "sub esp, 12",
        "push ebx",
        "call {restarted}",
        "mov esp, eax",
        "mov eax, {nr}",
        "int 0x80",
        "ud2",
        restarted = sym crate::threads::restarted,
        nr = const libc::SYS_rt_sigreturn,
    )
}

/// See `arch`: the checkpoint thread resumes in `ckpt_resume` at `base`.
pub fn ckpt_resume_regs(base: usize) -> [u64; 16] {
    let mut regs = [0u64; 16];
    regs[ESP] = base as u64;
    regs[EIP] = ckpt_resume as *const () as usize as u64;
    regs
}

/// See `arch`: a user thread resumes in `thread_resume` with its slot number, below its signal
/// frame. On i686 the frame is `{ pretcode, sig, pinfo, puc, info, uc, ... }`: `info` (the
/// siginfo the kernel handed the handler) is 16 bytes into it, and rt_sigreturn wants esp just
/// past `pretcode` (the kernel takes the frame at esp - 4).
pub fn thread_resume_regs(slot: usize, info: usize, _uc: usize) -> ([u64; 16], usize) {
    let mut regs = [0u64; 16];
    let frame = info - 16;
    regs[EBX] = slot as u64;
    regs[ESP] = ((frame - 256) & !15) as u64;
    regs[EIP] = thread_resume as *const () as usize as u64;
    (regs, frame + 4)
}

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
