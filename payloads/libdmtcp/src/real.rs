//! The real C library functions behind our wrappers, found with `real_dlsym(RTLD_NEXT, name)`
//! and cached. A wrapper may run before the constructor, so each resolves lazily.
//!
//! Rules: the only place that turns addresses into typed function pointers (one `transmute` per
//! function, in the macro below, and one for `dlsym` itself in `call_dlsym_next`).
use core::ffi::{c_char, c_int, c_uint, c_void, CStr};
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
    // `interrupt` (i686 64-bit-time symbols resolve to nothing on x86_64 and are unused there).
    poll: c"poll" => unsafe extern "C" fn(*mut libc::pollfd, libc::nfds_t, c_int) -> c_int;
    poll_chk: c"__poll_chk" => unsafe extern "C" fn(*mut libc::pollfd, libc::nfds_t, c_int, usize) -> c_int;
    ppoll: c"ppoll" => PpollFn<libc::timespec>;
    ppoll_chk: c"__ppoll_chk" =>
        unsafe extern "C" fn(*mut libc::pollfd, libc::nfds_t, *const libc::timespec, *const libc::sigset_t, usize) -> c_int;
    ppoll64: c"__ppoll64" => PpollFn<Timespec64>;
    select: c"select" => SelectFn<libc::timeval>;
    select64: c"__select64" => SelectFn<Timeval64>;
    pselect: c"pselect" => PselectFn<libc::timespec>;
    pselect64: c"__pselect64" => PselectFn<Timespec64>;
    epoll_wait: c"epoll_wait" => unsafe extern "C" fn(c_int, *mut libc::epoll_event, c_int, c_int) -> c_int;
    epoll_pwait: c"epoll_pwait" =>
        unsafe extern "C" fn(c_int, *mut libc::epoll_event, c_int, c_int, *const libc::sigset_t) -> c_int;
    epoll_pwait2: c"epoll_pwait2" => EpollPwait2Fn<libc::timespec>;
    epoll_pwait2_time64: c"__epoll_pwait2_time64" => EpollPwait2Fn<Timespec64>;
    sigtimedwait: c"sigtimedwait" => SigtimedwaitFn<libc::timespec>;
    sigtimedwait64: c"__sigtimedwait64" => SigtimedwaitFn<Timespec64>;
    sigwaitinfo: c"sigwaitinfo" => unsafe extern "C" fn(*const libc::sigset_t, *mut libc::siginfo_t) -> c_int;
    sigsuspend: c"sigsuspend" => unsafe extern "C" fn(*const libc::sigset_t) -> c_int;
    pause: c"pause" => unsafe extern "C" fn() -> c_int;
    msgrcv: c"msgrcv" => unsafe extern "C" fn(c_int, *mut c_void, usize, libc::c_long, c_int) -> isize;
    msgsnd: c"msgsnd" => unsafe extern "C" fn(c_int, *const c_void, usize, c_int) -> c_int;
    semop: c"semop" => unsafe extern "C" fn(c_int, *mut libc::sembuf, usize) -> c_int;
    semtimedop: c"semtimedop" => SemtimedopFn<libc::timespec>;
    semtimedop64: c"__semtimedop64" => SemtimedopFn<Timespec64>;
    // `sem_calls`: semctl (variadic in C; its one optional argument is a word).
    semctl: c"semctl" => SemctlFn;
    semctl64: c"__semctl64" => SemctlFn;
    recv: c"recv" => unsafe extern "C" fn(c_int, *mut c_void, usize, c_int) -> isize;
    recvfrom: c"recvfrom" =>
        unsafe extern "C" fn(c_int, *mut c_void, usize, c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> isize;
    recvmsg: c"recvmsg" => unsafe extern "C" fn(c_int, *mut libc::msghdr, c_int) -> isize;
    recvmsg64: c"__recvmsg64" => unsafe extern "C" fn(c_int, *mut libc::msghdr, c_int) -> isize;
    send: c"send" => unsafe extern "C" fn(c_int, *const c_void, usize, c_int) -> isize;
    sendto: c"sendto" =>
        unsafe extern "C" fn(c_int, *const c_void, usize, c_int, *const libc::sockaddr, libc::socklen_t) -> isize;
    sendmsg: c"sendmsg" => unsafe extern "C" fn(c_int, *const libc::msghdr, c_int) -> isize;
    accept: c"accept" => unsafe extern "C" fn(c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> c_int;
    accept4: c"accept4" => unsafe extern "C" fn(c_int, *mut libc::sockaddr, *mut libc::socklen_t, c_int) -> c_int;
    // `signals`: the i686 64-bit-time sleeps.
    nanosleep64: c"__nanosleep64" => NanosleepFn64;
    clock_nanosleep64: c"__clock_nanosleep_time64" =>
        unsafe extern "C" fn(libc::clockid_t, c_int, *const Timespec64, *mut Timespec64) -> c_int;
    // `fds`.
    close: c"close" => unsafe extern "C" fn(c_int) -> c_int;
    close_range: c"close_range" => unsafe extern "C" fn(c_uint, c_uint, c_int) -> c_int;
    closefrom: c"closefrom" => unsafe extern "C" fn(c_int);
    dup: c"dup" => unsafe extern "C" fn(c_int) -> c_int;
    dup2: c"dup2" => unsafe extern "C" fn(c_int, c_int) -> c_int;
    dup3: c"dup3" => unsafe extern "C" fn(c_int, c_int, c_int) -> c_int;
    fcntl: c"fcntl" => FcntlFn;
    fcntl64: c"fcntl64" => FcntlFn;
    fcntl_time64: c"__fcntl_time64" => FcntlFn;
    chown: c"chown" => unsafe extern "C" fn(*const c_char, libc::uid_t, libc::gid_t) -> c_int;
    lchown: c"lchown" => unsafe extern "C" fn(*const c_char, libc::uid_t, libc::gid_t) -> c_int;
    fchown: c"fchown" => unsafe extern "C" fn(c_int, libc::uid_t, libc::gid_t) -> c_int;
    fchownat: c"fchownat" => unsafe extern "C" fn(c_int, *const c_char, libc::uid_t, libc::gid_t, c_int) -> c_int;
}

pub use crate::interrupt::{Timespec64, Timeval64};
pub type PpollFn<T> = unsafe extern "C" fn(*mut libc::pollfd, libc::nfds_t, *const T, *const libc::sigset_t) -> c_int;
pub type SelectFn<T> =
    unsafe extern "C" fn(c_int, *mut libc::fd_set, *mut libc::fd_set, *mut libc::fd_set, *mut T) -> c_int;
pub type PselectFn<T> = unsafe extern "C" fn(
    c_int,
    *mut libc::fd_set,
    *mut libc::fd_set,
    *mut libc::fd_set,
    *const T,
    *const libc::sigset_t,
) -> c_int;
pub type EpollPwait2Fn<T> =
    unsafe extern "C" fn(c_int, *mut libc::epoll_event, c_int, *const T, *const libc::sigset_t) -> c_int;
pub type SigtimedwaitFn<T> = unsafe extern "C" fn(*const libc::sigset_t, *mut libc::siginfo_t, *const T) -> c_int;
pub type SemtimedopFn<T> = unsafe extern "C" fn(c_int, *mut libc::sembuf, usize, *const T) -> c_int;
pub type SemctlFn = unsafe extern "C" fn(c_int, c_int, c_int, ...) -> c_int;
pub type NanosleepFn64 = unsafe extern "C" fn(*const Timespec64, *mut Timespec64) -> c_int;
/// fcntl's third argument, read only for the commands that take one (an int or a pointer, both
/// passed in one word on x86_64 and i386).
pub type FcntlFn = unsafe extern "C" fn(c_int, c_int, usize) -> c_int;
