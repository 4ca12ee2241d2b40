//! `execl`, `execlp` and `execle`: glibc implements them with its internal execve, which our
//! `exec` wrappers never see, so a program that runs a child with `execl` would start it without
//! the library. Rust cannot define C-variadic functions on stable, so a small trampoline per
//! architecture (`crate::arch`) lays the variadic arguments out as an array and calls
//! `execl_impl`, which builds argv (in an anonymous mapping: no malloc) and goes through our
//! `execve`/`execvp` wrappers.
//!
//! x86_64: the first five list entries arrive in rsi, rdx, rcx, r8, r9 (saved to the stack by
//! the trampoline), the rest on the stack after the return address. i686: everything is on the
//! stack. Rules: as `exec`; errno on return is the real exec's.
use crate::real::CStrArray;
use core::ffi::{c_char, c_int};

pub const EXECL: usize = 0;
pub const EXECLP: usize = 1;
pub const EXECLE: usize = 2;
/// Longest argument list accepted (ARG_MAX allows more, no real program passes more this way).
const MAX_ARGS: usize = 1 << 16;

/// The list entry `i`: the first `nregs` come from `regs`, the others from `stack`.
///
/// # Safety
/// `regs` holds `nregs` words and `stack` the caller's further variadic words, up to and
/// including the terminating NULL (and, for execle, the envp after it).
unsafe fn entry(regs: *const usize, nregs: usize, stack: *const usize, i: usize) -> usize {
    // SAFETY: per the contract, i is within the caller's argument list.
    unsafe {
        if i < nregs {
            *regs.add(i)
        } else {
            *stack.add(i - nregs)
        }
    }
}

pub extern "C" fn execl_impl(
    path: *const c_char,
    regs: *const usize,
    nregs: usize,
    stack: *const usize,
    kind: usize,
) -> c_int {
    // SAFETY: the trampoline passes the C caller's variadic list, NULL-terminated as execl(3)
    // requires; we read up to the NULL (and the envp after it for execle).
    unsafe {
        let mut n = 0;
        while n < MAX_ARGS && entry(regs, nregs, stack, n) != 0 {
            n += 1;
        }
        if n == MAX_ARGS {
            crate::sys::set_errno(libc::E2BIG);
            return -1;
        }
        let envp =
            if kind == EXECLE { entry(regs, nregs, stack, n + 1) as CStrArray } else { libc::environ as CStrArray };
        let ptr = core::mem::size_of::<usize>();
        let mut map = match crate::sys::Mapping::new(((n + 1) * ptr + 4095) & !4095) {
            Ok(m) => m,
            Err(e) => {
                crate::sys::set_errno(e);
                return -1;
            }
        };
        let bytes = map.bytes();
        for i in 0..n {
            bytes[i * ptr..(i + 1) * ptr].copy_from_slice(&entry(regs, nregs, stack, i).to_ne_bytes());
        }
        let argv = bytes.as_ptr() as CStrArray;
        if kind == EXECLP {
            crate::exec::execvp(path, argv)
        } else {
            crate::exec::execve(path, argv, envp)
        }
    }
}
