//! x86_64: the resume stubs, TLS registers and the execl trampolines (see `arch`).
//!
//! Rules: as `arch`; the first five variadic list entries of execl arrive in rsi, rdx, rcx,
//! r8, r9 (saved to the stack by the trampoline), the rest on the stack after the return
//! address.
use super::Tls;

/// Where `mtcp_restart` for this architecture lives during a restart.
pub const RESTORER_BASE: u64 = dmtcp_proto::RESTORER_BASE_X86_64;

/// Slots of the register array (`dmtcp_proto::image::thread::REGS`) that the restorer loads:
/// rbx, rbp, r12, r13, r14, r15, rsp, rip.
const RBX: usize = 0;
const RSP: usize = 6;
const RIP: usize = 7;

/// The checkpoint thread's start routine (given to pthread_create): saves the callee-saved
/// registers on its stack, hands `body` that frame's address (the base where a restart resumes
/// the thread) on a 16-byte aligned stack, and returns null when `body` returns.
#[unsafe(naked)]
pub extern "C" fn ckpt_thread_start(_arg: *mut core::ffi::c_void) -> *mut core::ffi::c_void {
    core::arch::naked_asm!(
        "push rbp",
        "push rbx",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        "mov rdi, rsp",
        "mov rbx, rsp",
        "and rsp, -16",
        "call {body}",
        "mov rsp, rbx",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop rbx",
        "pop rbp",
        "xor eax, eax",
        "ret",
        body = sym crate::ckpt_thread::thread_body,
    )
}

/// Where the restorer resumes the checkpoint thread, with rsp = the base `ckpt_thread_start`
/// handed its body: calls `ckpt_thread::restarted` on the stack below the base, then leaves
/// exactly as `ckpt_thread_start` does (restores the registers pushed there, returns null to
/// the C library's thread start).
#[unsafe(naked)]
extern "C" fn ckpt_resume() {
    core::arch::naked_asm!(
        "mov rbx, rsp",
        "and rsp, -16",
        "call {restarted}",
        "mov rsp, rbx",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop rbx",
        "pop rbp",
        "xor eax, eax",
        "ret",
        restarted = sym crate::ckpt_thread::restarted,
    )
}

/// Where the restorer resumes a user thread stopped in the checkpoint signal's handler, with
/// rbx = its slot and rsp below the kernel's signal frame: calls `threads::restarted(slot)`,
/// which returns the stack pointer rt_sigreturn expects (the frame's ucontext), and returns
/// from the signal through the kernel (rt_sigreturn restores every register and the mask).
#[unsafe(naked)]
extern "C" fn thread_resume() {
    core::arch::naked_asm!(
        "mov rdi, rbx",
        "and rsp, -16",
        "call {restarted}",
        "mov rsp, rax",
        "mov eax, {nr}",
        "syscall",
        "ud2",
        restarted = sym crate::threads::restarted,
        nr = const libc::SYS_rt_sigreturn,
    )
}

/// See `arch`: the checkpoint thread resumes in `ckpt_resume` at `base`.
pub fn ckpt_resume_regs(base: usize) -> [u64; 16] {
    let mut regs = [0u64; 16];
    regs[RSP] = base as u64;
    regs[RIP] = ckpt_resume as *const () as usize as u64;
    regs
}

/// See `arch`: a user thread resumes in `thread_resume` with its slot number, on the stack
/// below its signal frame. `uc` is the ucontext the kernel handed the handler; on x86_64 the
/// frame is `{ pretcode, uc, info }`, so rt_sigreturn wants rsp = `uc` and the frame starts
/// 8 bytes below it.
pub fn thread_resume_regs(slot: usize, _info: usize, uc: usize) -> ([u64; 16], usize) {
    let mut regs = [0u64; 16];
    let frame = uc - 8;
    regs[RBX] = slot as u64;
    // Below the frame (and a red zone's worth more): the handler's own frames, dead after a
    // restart.
    regs[RSP] = ((frame - 256) & !15) as u64;
    regs[RIP] = thread_resume as *const () as usize as u64;
    (regs, uc)
}

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
