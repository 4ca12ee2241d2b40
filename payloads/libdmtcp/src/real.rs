//! The real C library functions behind our wrappers, found with `real_dlsym(RTLD_NEXT, name)`
//! and cached. A wrapper may run before the constructor, so each resolves lazily.
//!
//! Rules: the only place that turns addresses into typed function pointers (one `transmute` per
//! function, in the macro below, and one for `dlsym` itself in `call_dlsym_next`).
use core::ffi::{c_char, c_int, c_void, CStr};
use core::sync::atomic::{AtomicUsize, Ordering};

pub type CStrArray = *const *const c_char;

macro_rules! real_fns {
    ($($name:ident : $sym:literal => $ty:ty;)*) => {
        $(
            pub fn $name() -> Option<$ty> {
                static CACHE: AtomicUsize = AtomicUsize::new(0);
                let mut a = CACHE.load(Ordering::Acquire);
                if a == 0 {
                    a = crate::dlsym::next($sym);
                    CACHE.store(a, Ordering::Release);
                }
                if a == 0 {
                    return None;
                }
                // SAFETY: a is the address the C library's dlsym gave for this symbol, whose C
                // prototype is $ty.
                Some(unsafe { core::mem::transmute::<usize, $ty>(a) })
            }
        )*
        /// Resolves them all now (from the constructor, so that later calls never enter the
        /// dynamic loader).
        pub fn resolve_all() {
            $( let _ = $name(); )*
        }
    };
}

/// The C prototype of `dlsym`.
type DlsymFn = unsafe extern "C" fn(*mut c_void, *const c_char) -> *mut c_void;

/// `dlsym(RTLD_NEXT, name)` through the `dlsym` at `dlsym_addr`, which must be the C library's
/// own (`crate::dlsym` finds and checks it); returns the address found, or 0.
pub fn call_dlsym_next(dlsym_addr: usize, name: &CStr) -> usize {
    // SAFETY: dlsym_addr is libc's dlsym (checked with dladdr by `crate::dlsym::resolve`),
    // whose prototype is DlsymFn.
    let f = unsafe { core::mem::transmute::<usize, DlsymFn>(dlsym_addr) };
    // SAFETY: f is libc's dlsym; name is NUL-terminated. The return address it sees is in this
    // library, so RTLD_NEXT means "after libdmtcp.so".
    unsafe { f(libc::RTLD_NEXT, name.as_ptr()) as usize }
}

pub type PthreadCreateFn = unsafe extern "C" fn(
    *mut libc::pthread_t,
    *const libc::pthread_attr_t,
    extern "C" fn(*mut c_void) -> *mut c_void,
    *mut c_void,
) -> c_int;
pub type PosixSpawnFn = unsafe extern "C" fn(
    *mut libc::pid_t,
    *const c_char,
    *const libc::posix_spawn_file_actions_t,
    *const libc::posix_spawnattr_t,
    CStrArray,
    CStrArray,
) -> c_int;

pub type SigactionFn = unsafe extern "C" fn(c_int, *const libc::sigaction, *mut libc::sigaction) -> c_int;
pub type SigmaskFn = unsafe extern "C" fn(c_int, *const libc::sigset_t, *mut libc::sigset_t) -> c_int;
pub type NanosleepFn = unsafe extern "C" fn(*const libc::timespec, *mut libc::timespec) -> c_int;
pub type ClockNanosleepFn =
    unsafe extern "C" fn(libc::clockid_t, c_int, *const libc::timespec, *mut libc::timespec) -> c_int;

real_fns! {
    execve: c"execve" => unsafe extern "C" fn(*const c_char, CStrArray, CStrArray) -> c_int;
    execvpe: c"execvpe" => unsafe extern "C" fn(*const c_char, CStrArray, CStrArray) -> c_int;
    fexecve: c"fexecve" => unsafe extern "C" fn(c_int, CStrArray, CStrArray) -> c_int;
    posix_spawn: c"posix_spawn" => PosixSpawnFn;
    posix_spawnp: c"posix_spawnp" => PosixSpawnFn;
    pthread_create: c"pthread_create" => PthreadCreateFn;
    system: c"system" => unsafe extern "C" fn(*const c_char) -> c_int;
    popen: c"popen" => unsafe extern "C" fn(*const c_char, *const c_char) -> *mut libc::FILE;
    pclose: c"pclose" => unsafe extern "C" fn(*mut libc::FILE) -> c_int;
    sigaction: c"sigaction" => SigactionFn;
    sigprocmask: c"sigprocmask" => SigmaskFn;
    pthread_sigmask: c"pthread_sigmask" => SigmaskFn;
    nanosleep: c"nanosleep" => NanosleepFn;
    clock_nanosleep: c"clock_nanosleep" => ClockNanosleepFn;
    chown: c"chown" => unsafe extern "C" fn(*const c_char, libc::uid_t, libc::gid_t) -> c_int;
    lchown: c"lchown" => unsafe extern "C" fn(*const c_char, libc::uid_t, libc::gid_t) -> c_int;
    fchown: c"fchown" => unsafe extern "C" fn(c_int, libc::uid_t, libc::gid_t) -> c_int;
    fchownat: c"fchownat" => unsafe extern "C" fn(c_int, *const c_char, libc::uid_t, libc::gid_t, c_int) -> c_int;
}
