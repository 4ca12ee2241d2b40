//! The real C library functions behind our wrappers, found with `real_dlsym(RTLD_NEXT, name)`
//! and cached. A wrapper may run before the constructor, so each resolves lazily.
//!
//! Rules: the only place that turns addresses into typed function pointers (one `transmute` per
//! function, in the macro below).
use core::ffi::{c_char, c_int, c_void};
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
}
