//! The C library's real `dlsym`, found without calling `dlsym` (seed doc multi-arch.txt §B):
//! `real_dlsym = &dlinfo + offset`, where the launcher measured `offset = dlsym - dlinfo` in the
//! 64-bit and the 32-bit libc of this host. A program or library that wraps `dlsym` itself
//! therefore cannot make us recurse or misresolve. The address is checked with `dladdr` (same
//! object as `dlinfo`, symbol named `dlsym`); if the offset is missing or wrong we ask libc's
//! own handle for `dlsym@GLIBC_2.34` with `dlvsym` instead.
//!
//! Rules: resolution may call dladdr/dlopen and so runs in the constructor, or lazily from a
//! wrapper called by the program (never from a signal handler); afterwards `get` is one atomic
//! load.
use crate::log::Bytes;
use crate::sys::dl;
use core::ffi::CStr;
use core::sync::atomic::{AtomicUsize, Ordering};

static REAL_DLSYM: AtomicUsize = AtomicUsize::new(0);

/// Resolves the real dlsym with `offset` (0 = unknown). Called by the constructor.
pub fn init(offset: u64) {
    let addr = resolve(offset);
    REAL_DLSYM.store(addr, Ordering::Release);
}

/// The real dlsym's address, resolving it on first use when the constructor did not (library
/// preloaded outside dmtcp, or a wrapper called before our constructor ran); 0 if not found.
fn get() -> usize {
    let mut a = REAL_DLSYM.load(Ordering::Acquire);
    if a == 0 {
        let offset = crate::sys::keep_errno(env_offset);
        a = resolve(offset);
        REAL_DLSYM.store(a, Ordering::Release);
    }
    a
}

/// `real_dlsym(RTLD_NEXT, name)`: the next definition after this library, as an address.
pub fn next(name: &CStr) -> usize {
    match get() {
        0 => 0,
        // `resolve` checked that the address is libc's dlsym.
        a => crate::real::call_dlsym_next(a, name),
    }
}

fn env_offset() -> u64 {
    let name: &CStr = if cfg!(target_pointer_width = "32") { c"DMTCP_DLSYM_OFFSET_M32" } else { c"DMTCP_DLSYM_OFFSET" };
    dl::with_env(name, |v| v.and_then(crate::cstr::parse_u64).unwrap_or(0))
}

fn resolve(offset: u64) -> usize {
    let base = dl::dlinfo_addr();
    if offset != 0 && offset < (1 << 24) {
        let cand = base.wrapping_add(offset as usize);
        if is_libc_dlsym(cand, base) {
            trace!("real dlsym at {:#x} (dlinfo {:#x} + offset {:#x})", cand, base, offset);
            return cand;
        }
        trace!("dlsym offset {:#x} does not lead to libc's dlsym; using dlvsym", offset);
    } else {
        trace!("no dlsym offset known; using dlvsym");
    }
    let a = by_dlvsym();
    if a == 0 {
        error!("cannot find the C library's dlsym; dmtcp cannot wrap this program");
    }
    a
}

/// True if `addr` is the start of the symbol `dlsym` in the same object as `dlinfo_addr`.
fn is_libc_dlsym(addr: usize, dlinfo_addr: usize) -> bool {
    let (Some(a), Some(b)) = (dl::dladdr(addr), dl::dladdr(dlinfo_addr)) else {
        return false;
    };
    a.saddr == addr && a.fbase == b.fbase && a.sname == Some(b"dlsym".as_slice())
}

/// `dlvsym(<libc handle>, "dlsym", "GLIBC_2.34")`. Asking libc's own handle (not
/// RTLD_DEFAULT) keeps a `dlsym` defined by the program out of the lookup.
fn by_dlvsym() -> usize {
    let a = dl::libc_dlvsym(c"dlsym", c"GLIBC_2.34");
    if a != 0 {
        trace!("real dlsym at {:#x} via dlvsym", a);
    } else {
        trace!("dlvsym(libc, dlsym, GLIBC_2.34) failed: {}", Bytes(b"not found"));
    }
    a
}
