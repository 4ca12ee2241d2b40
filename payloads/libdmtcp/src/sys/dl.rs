//! Typed wrappers for the dynamic loader calls that `dlsym` uses to find the C library's real
//! `dlsym`: the address of `dlinfo`, `dladdr`, `dlvsym` on libc's own handle, and `getenv` for
//! the offset the launcher measured.
//!
//! Rules: these call into the loader (which may take its lock and allocate), so only from the
//! constructor or lazily from a wrapper the program called, never from a signal handler.
//! Every unsafe block has a `// SAFETY:` line.
use core::ffi::{c_char, c_int, c_void, CStr};

extern "C" {
    // Only its address is used: since glibc 2.34 it lives in libc.so.6 next to dlsym.
    fn dlinfo(handle: *mut c_void, request: c_int, arg: *mut c_void) -> c_int;
    fn dlvsym(handle: *mut c_void, symbol: *const c_char, version: *const c_char) -> *mut c_void;
}

/// The address of libc's `dlinfo` (as this library's relocation resolved it).
pub fn dlinfo_addr() -> usize {
    dlinfo as *const () as usize
}

/// What `dladdr` says about an address.
pub struct SymInfo {
    /// Base address of the object that holds it.
    pub fbase: usize,
    /// Address of the nearest symbol.
    pub saddr: usize,
    /// That symbol's name, if any.
    pub sname: Option<&'static [u8]>,
}

/// `dladdr(addr)`; None when the address is in no loaded object.
pub fn dladdr(addr: usize) -> Option<SymInfo> {
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
        // (libc is never unloaded; for other objects the caller compares it at once).
        Some(unsafe { CStr::from_ptr(info.dli_sname) }.to_bytes())
    };
    Some(SymInfo { fbase: info.dli_fbase as usize, saddr: info.dli_saddr as usize, sname })
}

/// `dlvsym(<libc.so.6 handle>, symbol, version)` as an address (0 if not found). Asking libc's
/// own handle (not RTLD_DEFAULT) keeps a definition by the program out of the lookup.
pub fn libc_dlvsym(symbol: &CStr, version: &CStr) -> usize {
    // SAFETY: RTLD_NOLOAD only returns a handle of the already loaded libc (or NULL).
    let h = unsafe { libc::dlopen(c"libc.so.6".as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD) };
    if h.is_null() {
        return 0;
    }
    // SAFETY: h is a valid handle; the strings are NUL-terminated. The handle stays open: libc
    // is never unloaded, and dlclose would only drop a reference.
    unsafe { dlvsym(h, symbol.as_ptr(), version.as_ptr()) as usize }
}

/// Runs `f` with the value of the environment variable `name` (None if unset). The value is
/// only borrowed for the call, since a later setenv may free it.
pub fn with_env<R>(name: &CStr, f: impl FnOnce(Option<&[u8]>) -> R) -> R {
    // SAFETY: getenv with a NUL-terminated name; the result is NULL or a NUL-terminated string.
    let v = unsafe { libc::getenv(name.as_ptr()) };
    if v.is_null() {
        return f(None);
    }
    // SAFETY: v is a valid NUL-terminated string from the environment, used only during `f`.
    f(Some(unsafe { CStr::from_ptr(v) }.to_bytes()))
}
