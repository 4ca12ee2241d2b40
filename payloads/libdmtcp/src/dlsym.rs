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
use core::ffi::{c_char, c_int, c_void, CStr};
use core::sync::atomic::{AtomicUsize, Ordering};

pub type DlsymFn = unsafe extern "C" fn(*mut c_void, *const c_char) -> *mut c_void;

extern "C" {
    // Only its address is used: since glibc 2.34 it lives in libc.so.6 next to dlsym.
    fn dlinfo(handle: *mut c_void, request: c_int, arg: *mut c_void) -> c_int;
    fn dlvsym(handle: *mut c_void, symbol: *const c_char, version: *const c_char) -> *mut c_void;
}

static REAL_DLSYM: AtomicUsize = AtomicUsize::new(0);

/// Resolves the real dlsym with `offset` (0 = unknown). Called by the constructor.
pub fn init(offset: u64) {
    let addr = resolve(offset);
    REAL_DLSYM.store(addr, Ordering::Release);
}

/// The real dlsym, resolving it on first use when the constructor did not (library preloaded
/// outside dmtcp, or a wrapper called before our constructor ran).
pub fn get() -> Option<DlsymFn> {
    let mut a = REAL_DLSYM.load(Ordering::Acquire);
    if a == 0 {
        let offset = crate::sys::keep_errno(env_offset);
        a = resolve(offset);
        REAL_DLSYM.store(a, Ordering::Release);
    }
    if a == 0 {
        return None;
    }
    // SAFETY: a is the non-null address of libc's dlsym (checked by `resolve`), whose type is
    // DlsymFn.
    Some(unsafe { core::mem::transmute::<usize, DlsymFn>(a) })
}

/// `real_dlsym(RTLD_NEXT, name)`: the next definition after this library, as an address.
pub fn next(name: &CStr) -> usize {
    let Some(f) = get() else { return 0 };
    // SAFETY: f is libc's dlsym; name is NUL-terminated. The return address it sees is in this
    // library, so RTLD_NEXT means "after libdmtcp.so".
    unsafe { f(libc::RTLD_NEXT, name.as_ptr()) as usize }
}

fn env_offset() -> u64 {
    let name: &CStr = if cfg!(target_pointer_width = "32") { c"DMTCP_DLSYM_OFFSET_M32" } else { c"DMTCP_DLSYM_OFFSET" };
    // SAFETY: getenv with a NUL-terminated name; the result is NULL or a NUL-terminated string
    // that we copy out at once.
    let v = unsafe { libc::getenv(name.as_ptr()) };
    if v.is_null() {
        return 0;
    }
    // SAFETY: v is a valid NUL-terminated string from the environment.
    let s = unsafe { CStr::from_ptr(v) };
    crate::cstr::parse_u64(s.to_bytes()).unwrap_or(0)
}

fn resolve(offset: u64) -> usize {
    let base = dlinfo as *const () as usize;
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
    let (Some(a), Some(b)) = (symbol_at(addr), symbol_at(dlinfo_addr)) else {
        return false;
    };
    a.saddr == addr && a.fbase == b.fbase && a.sname == Some(b"dlsym".as_slice())
}

struct SymInfo {
    fbase: usize,
    saddr: usize,
    sname: Option<&'static [u8]>,
}

fn symbol_at(addr: usize) -> Option<SymInfo> {
    // SAFETY: an all-zero Dl_info (null pointers) is a valid value to be filled by dladdr.
    let mut info: libc::Dl_info = unsafe { core::mem::zeroed() };
    // SAFETY: dladdr only inspects the loader's tables for addr and fills info.
    if unsafe { libc::dladdr(addr as *const c_void, &mut info) } == 0 {
        return None;
    }
    let sname = if info.dli_sname.is_null() {
        None
    } else {
        // SAFETY: dli_sname points into the object's string table, valid while it is loaded
        // (libc is never unloaded).
        Some(unsafe { CStr::from_ptr(info.dli_sname) }.to_bytes())
    };
    Some(SymInfo { fbase: info.dli_fbase as usize, saddr: info.dli_saddr as usize, sname })
}

/// `dlvsym(<libc handle>, "dlsym", "GLIBC_2.34")`. Asking libc's own handle (not
/// RTLD_DEFAULT) keeps a `dlsym` defined by the program out of the lookup.
fn by_dlvsym() -> usize {
    // SAFETY: RTLD_NOLOAD only returns a handle of the already loaded libc (or NULL).
    let h = unsafe { libc::dlopen(c"libc.so.6".as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD) };
    if h.is_null() {
        return 0;
    }
    // SAFETY: h is a valid handle; the strings are NUL-terminated.
    let a = unsafe { dlvsym(h, c"dlsym".as_ptr(), c"GLIBC_2.34".as_ptr()) } as usize;
    // Leave the handle open: libc is never unloaded, and dlclose would only drop a reference.
    if a != 0 {
        trace!("real dlsym at {:#x} via dlvsym", a);
    } else {
        trace!("dlvsym(libc, dlsym, GLIBC_2.34) failed: {}", Bytes(b"not found"));
    }
    a
}
