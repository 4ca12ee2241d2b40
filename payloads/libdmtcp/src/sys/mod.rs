//! Safe wrappers over the C library calls and raw system calls the library makes. This is where
//! most `unsafe` lives: each wrapper passes only pointers derived from Rust references of the
//! right length. Submodules: `thread` (per-thread kernel state, futexes, thread creation) and
//! `dl` (dynamic loader lookups); the architecture-specific calls are in `crate::arch`.
//!
//! Rules: no allocation; everything here is async-signal-safe except `gethostname`-style
//! lookups, which are only used from the constructor and the fork child handler. Errors are
//! returned as the `errno` value (`Err(e)`); `EINTR` is retried where a retry is harmless.
use core::ffi::{c_int, c_void, CStr};

pub mod dl;
pub mod events;
pub mod ipc;
pub mod socket;
pub mod thread;
pub mod timers;
pub mod tty;
pub mod uffd;

pub type Errno = c_int;

pub fn errno() -> Errno {
    // SAFETY: __errno_location always returns this thread's valid errno slot.
    unsafe { *libc::__errno_location() }
}

pub fn set_errno(e: Errno) {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = e }
}

/// Runs `f` and puts `errno` back to what it was before, so that our work inside a wrapper or
/// the constructor never shows through to the program.
pub fn keep_errno<T>(f: impl FnOnce() -> T) -> T {
    let saved = errno();
    let r = f();
    set_errno(saved);
    r
}

fn check(r: c_int) -> Result<c_int, Errno> {
    if r < 0 {
        Err(errno())
    } else {
        Ok(r)
    }
}

pub fn getpid() -> i32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::getpid() }
}

pub fn getppid() -> i32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::getppid() }
}

pub fn geteuid() -> u32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::geteuid() }
}

pub fn getegid() -> u32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::getegid() }
}

pub fn exit_now(code: c_int) -> ! {
    // SAFETY: _exit never returns and touches no user-space state (no atexit, no stdio flush).
    unsafe { libc::_exit(code) }
}

pub fn abort() -> ! {
    // SAFETY: abort never returns.
    unsafe { libc::abort() }
}

/// Writes all of `buf`, retrying on short writes and EINTR.
pub fn write_all(fd: c_int, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        // SAFETY: buf is a valid readable slice of buf.len() bytes.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// One `read`, retried on EINTR. `Ok(0)` is end of file.
pub fn read_some(fd: c_int, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        // SAFETY: buf is a valid writable slice of buf.len() bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// One `pread` at `off`, retried on EINTR.
pub fn pread(fd: c_int, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
    loop {
        // SAFETY: buf is a valid writable slice of buf.len() bytes.
        let n = unsafe { libc::pread64(fd, buf.as_mut_ptr().cast(), buf.len(), off as i64) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

pub fn close(fd: c_int) {
    // SAFETY: closing a descriptor number has no memory-safety effect.
    unsafe { libc::close(fd) };
}

/// Waits for `events` on `fd` for at most `timeout_ms` (negative = forever). Returns the
/// `revents`, or `Ok(0)` on timeout.
pub fn poll_one(fd: c_int, events: i16, timeout_ms: c_int) -> Result<i16, Errno> {
    let mut p = libc::pollfd { fd, events, revents: 0 };
    loop {
        // SAFETY: p is one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
        if r >= 0 {
            return Ok(if r == 0 { 0 } else { p.revents });
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// Milliseconds of CLOCK_MONOTONIC, for handshake deadlines.
#[allow(clippy::unnecessary_cast)] // time_t is 32-bit on i686
pub fn now_ms() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as i64 * 1000 + ts.tv_nsec as i64 / 1_000_000
}

pub fn open_read(path: &CStr) -> Result<c_int, Errno> {
    // SAFETY: path is NUL-terminated.
    check(unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) })
}

/// The few `stat` fields we need.
#[derive(Clone, Copy)]
pub struct FileInfo {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
}

impl FileInfo {
    pub fn is_regular(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
}

fn file_info(st: &libc::stat64) -> FileInfo {
    FileInfo {
        mode: st.st_mode,
        uid: st.st_uid,
        gid: st.st_gid,
        dev: st.st_dev,
        ino: st.st_ino,
        size: st.st_size as u64,
    }
}

pub fn fstat(fd: c_int) -> Result<FileInfo, Errno> {
    // SAFETY: an all-zero stat64 is a valid value of this plain C struct.
    let mut st: libc::stat64 = unsafe { core::mem::zeroed() };
    // SAFETY: st is a valid stat64 to fill.
    check(unsafe { libc::fstat64(fd, &mut st) })?;
    Ok(file_info(&st))
}

pub fn stat(path: &CStr) -> Result<FileInfo, Errno> {
    // SAFETY: an all-zero stat64 is a valid value of this plain C struct.
    let mut st: libc::stat64 = unsafe { core::mem::zeroed() };
    // SAFETY: path is NUL-terminated, st is a valid stat64 to fill.
    check(unsafe { libc::stat64(path.as_ptr(), &mut st) })?;
    Ok(file_info(&st))
}

pub fn can_execute(path: &CStr) -> bool {
    // SAFETY: path is NUL-terminated.
    unsafe { libc::access(path.as_ptr(), libc::X_OK) == 0 }
}

/// `readlink` into `buf`; returns the length (not NUL-terminated).
pub fn readlink(path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: path is NUL-terminated; buf is writable for buf.len() bytes.
    let n = unsafe { libc::readlink(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(errno())
    } else {
        Ok(n as usize)
    }
}

/// The host name, without NUL, in `buf`.
pub fn hostname(buf: &mut [u8]) -> usize {
    if buf.is_empty() {
        return 0;
    }
    let last = buf.len() - 1;
    // SAFETY: buf is writable for last bytes; we terminate it ourselves.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), last) };
    if r != 0 {
        return 0;
    }
    buf[last] = 0;
    buf.iter().position(|&c| c == 0).unwrap_or(last)
}

/// English text for an errno value (glibc's `strerrordesc_np`: static strings, no locale,
/// no allocation).
pub fn strerror(e: Errno) -> &'static [u8] {
    extern "C" {
        fn strerrordesc_np(errnum: c_int) -> *const core::ffi::c_char;
    }
    // SAFETY: strerrordesc_np returns NULL or a pointer to a static NUL-terminated string.
    unsafe {
        let p = strerrordesc_np(e);
        if p.is_null() {
            b"unknown error"
        } else {
            CStr::from_ptr(p).to_bytes()
        }
    }
}

/// A fresh anonymous private read-write mapping of `len` bytes (memory that never comes from
/// the program's malloc).
pub fn map_anon(len: usize) -> Result<*mut u8, Errno> {
    // SAFETY: a fresh anonymous mapping; no existing memory is affected.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(errno())
    } else {
        Ok(p.cast())
    }
}

/// An anonymous private read-write mapping, unmapped on drop (keeping errno).
pub struct Mapping {
    addr: *mut u8,
    len: usize,
}

impl Mapping {
    pub fn new(len: usize) -> Result<Mapping, Errno> {
        let p = map_anon(len)?;
        Ok(Mapping { addr: p, len })
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping is len readable bytes, owned by self.
        unsafe { core::slice::from_raw_parts(self.addr, self.len) }
    }

    pub fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is len bytes, readable and writable, owned by self.
        unsafe { core::slice::from_raw_parts_mut(self.addr, self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        keep_errno(|| {
            // SAFETY: we own the mapping; nothing refers to it after drop.
            unsafe { libc::munmap(self.addr.cast::<c_void>(), self.len) };
        });
    }
}

/// Maps `len` bytes of the file at `path` read-only and shared, and leaves the mapping in place
/// for the life of the process. Returns the mapped bytes.
pub fn map_file_readonly(path: &CStr, len: usize) -> Result<&'static [u8], Errno> {
    let fd = open_read(path)?;
    let size = match fstat_size(fd) {
        Ok(s) => s,
        Err(e) => {
            close(fd);
            return Err(e);
        }
    };
    if size < len as u64 {
        close(fd);
        return Err(libc::EINVAL);
    }
    // SAFETY: a fresh shared read-only mapping of a file we just opened.
    let p = unsafe { libc::mmap(core::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_SHARED, fd, 0) };
    let e = errno();
    close(fd);
    if p == libc::MAP_FAILED {
        return Err(e);
    }
    // SAFETY: the mapping is len readable bytes and is never unmapped.
    Ok(unsafe { core::slice::from_raw_parts(p.cast::<u8>(), len) })
}

/// The object an fd names, as /proc/self/maps names a mapping of it: (major << 32 | minor of
/// its device, inode), and its size.
pub fn object_of(fd: c_int) -> Result<(u64, u64, u64), Errno> {
    // SAFETY: an all-zero stat64 is a valid value of this plain C struct.
    let mut st: libc::stat64 = unsafe { core::mem::zeroed() };
    // SAFETY: st is a valid stat64 to fill.
    check(unsafe { libc::fstat64(fd, &mut st) })?;
    let d = st.st_dev as u64;
    let major = ((d >> 8) & 0xfff) | ((d >> 32) & !0xfff);
    let minor = (d & 0xff) | ((d >> 12) & !0xff);
    Ok(((major << 32) | minor, st.st_ino as u64, st.st_size as u64))
}

/// Maps `len` bytes of `fd` shared and read-only at an address of the kernel's choice.
pub fn map_shared_readonly(fd: c_int, len: usize) -> Result<usize, Errno> {
    // SAFETY: a fresh mapping at an address the kernel picks; no existing memory is affected.
    let p = unsafe { libc::mmap(core::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_SHARED, fd, 0) };
    if p == libc::MAP_FAILED {
        Err(errno())
    } else {
        Ok(p as usize)
    }
}

/// Maps `fd` at `offset` shared over `[addr, addr + len)`, which must be a mapping of the same
/// object already (a memfd's mapping made again through a read-only fd, so that it does not
/// count as writable when the memfd is sealed against writing).
pub fn remap_shared_fixed(addr: usize, len: usize, prot: c_int, fd: c_int, offset: u64) -> Result<(), Errno> {
    // SAFETY: MAP_FIXED over a range the caller names as a mapping of this very object, whose
    // pages it maps again unchanged; nothing else lives there.
    let p = unsafe {
        libc::mmap64(addr as *mut c_void, len, prot, libc::MAP_SHARED | libc::MAP_FIXED, fd, offset as libc::off64_t)
    };
    if p == libc::MAP_FAILED {
        Err(errno())
    } else {
        Ok(())
    }
}

/// Unmaps `[addr, addr + len)`, a mapping this library made.
pub fn unmap(addr: usize, len: usize) -> Result<(), Errno> {
    // SAFETY: the caller names a mapping of its own that nothing refers to any more.
    check(unsafe { libc::munmap(addr as *mut c_void, len) }).map(|_| ())
}

/// Whether `path` lies on a tmpfs (statfs; false when it cannot be asked).
pub fn is_tmpfs(path: &CStr) -> bool {
    // SAFETY: an all-zero statfs is a valid value of this plain C struct.
    let mut st: libc::statfs = unsafe { core::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statfs to fill.
    let r = unsafe { libc::statfs(path.as_ptr(), &mut st) };
    // f_type is 32 bits wide on i686 and 64 on x86_64; TMPFS_MAGIC fits in 32.
    r == 0 && (st.f_type as u64 & 0xffff_ffff) == 0x0102_1994
}

fn fstat_size(fd: c_int) -> Result<u64, Errno> {
    // SAFETY: an all-zero stat64 is a valid value of this plain C struct.
    let mut st: libc::stat64 = unsafe { core::mem::zeroed() };
    // SAFETY: st is a valid stat64 to fill.
    check(unsafe { libc::fstat64(fd, &mut st) })?;
    Ok(st.st_size as u64)
}

/// A TCP connection to an IPv4 address, made with a deadline: the socket is non-blocking only
/// while connecting. Returns the descriptor (close-on-exec).
pub fn tcp_connect(ip: [u8; 4], port: u16, timeout_ms: c_int) -> Result<c_int, Errno> {
    // SAFETY: plain socket creation.
    let fd =
        check(unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0) })?;
    let r = connect_nonblocking(fd, ip, port, timeout_ms).and_then(|()| {
        // SAFETY: fcntl on our own descriptor.
        let fl = check(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
        // SAFETY: as above.
        check(unsafe { libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK) })?;
        let one: c_int = 1;
        // SAFETY: one is a valid int option value of the given size.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&one as *const c_int).cast(),
                core::mem::size_of::<c_int>() as libc::socklen_t,
            )
        };
        Ok(())
    });
    match r {
        Ok(()) => Ok(fd),
        Err(e) => {
            close(fd);
            Err(e)
        }
    }
}

fn connect_nonblocking(fd: c_int, ip: [u8; 4], port: u16, timeout_ms: c_int) -> Result<(), Errno> {
    // SAFETY: an all-zero sockaddr_in is valid; we fill in the fields below.
    let mut sa: libc::sockaddr_in = unsafe { core::mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = port.to_be();
    sa.sin_addr = libc::in_addr { s_addr: u32::from_ne_bytes(ip) };
    // SAFETY: sa is a valid sockaddr_in of the size we pass.
    let r = unsafe {
        libc::connect(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            core::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = errno();
    if e != libc::EINPROGRESS && e != libc::EINTR {
        return Err(e);
    }
    if poll_one(fd, libc::POLLOUT, timeout_ms)? == 0 {
        return Err(libc::ETIMEDOUT);
    }
    let mut err: c_int = 0;
    let mut len = core::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: err and len are valid for getsockopt to fill.
    check(unsafe {
        libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR, (&mut err as *mut c_int).cast(), &mut len)
    })?;
    if err != 0 {
        Err(err)
    } else {
        Ok(())
    }
}

/// A signal set with every signal in it.
pub fn full_sigset() -> libc::sigset_t {
    // SAFETY: an all-zero sigset_t is valid storage; sigfillset initializes it.
    let mut s: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: s is a valid sigset_t.
    unsafe { libc::sigfillset(&mut s) };
    s
}

/// A signal set with every signal but `sig` in it.
pub fn full_sigset_but(sig: c_int) -> libc::sigset_t {
    let mut s = full_sigset();
    // SAFETY: s is a valid, initialized sigset_t.
    unsafe { libc::sigdelset(&mut s, sig) };
    s
}

/// Sets this thread's signal mask; returns the previous one.
pub fn set_sigmask(set: &libc::sigset_t) -> libc::sigset_t {
    // SAFETY: an all-zero sigset_t is valid storage for the old mask.
    let mut old: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: both pointers refer to valid sigset_t values (the kernel reads and writes 8
    // bytes of each). A raw system call, so that our own pthread_sigmask wrapper (which keeps
    // the checkpoint signal deliverable) does not apply to our internal masks.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            set as *const libc::sigset_t,
            &mut old as *mut libc::sigset_t,
            8usize,
        )
    };
    old
}

/// Calls `f(number, folder_fd)` for each entry of the folder `path` whose name is a decimal
/// number (/proc/self/fd, /proc/self/task). Uses getdents64 on a raw fd, because opendir
/// allocates with malloc, which a stopped thread may hold. Returns false if the folder cannot
/// be opened.
pub fn for_each_numbered_entry(path: &CStr, mut f: impl FnMut(u64, c_int)) -> bool {
    // SAFETY: open on a NUL-terminated path.
    let dir = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if dir < 0 {
        return false;
    }
    let mut buf = [0u8; 8192];
    loop {
        // SAFETY: getdents64 writes at most buf.len() bytes into buf.
        let r = unsafe { libc::syscall(libc::SYS_getdents64, dir, buf.as_mut_ptr(), buf.len()) };
        if r <= 0 {
            break;
        }
        let mut off = 0usize;
        while off < r as usize {
            // struct linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, name.
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            let name = &buf[off + 19..off + reclen];
            let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())];
            off += reclen;
            if let Some(n) = crate::cstr::parse_u64(name) {
                f(n, dir);
            }
        }
    }
    close(dir);
    true
}

// ---------------------------------------------------------------------------------------------
// Typed wrappers for the resource kinds (`resources/`). Each returns the errno on failure so that
// the restore path can report it.

/// kcmp(KCMP_FILE): whether fd `a` of process `pid_a` and fd `b` of process `pid_b` are one
/// open file description. Errors: ENOSYS (a kernel without kcmp), EPERM (not allowed to
/// inspect that process), EBADF (no such fd), ESRCH (no such process).
pub fn same_file_description(pid_a: i32, a: c_int, pid_b: i32, b: c_int) -> Result<bool, Errno> {
    const KCMP_FILE: libc::c_long = 0;
    // SAFETY: kcmp takes integers only.
    let r = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            pid_a as libc::c_long,
            pid_b as libc::c_long,
            KCMP_FILE,
            a as libc::c_long,
            b as libc::c_long,
        )
    };
    if r < 0 {
        Err(errno())
    } else {
        Ok(r == 0)
    }
}

/// SO_DOMAIN of a socket (AF_UNIX, AF_NETLINK, ...).
pub fn socket_domain(fd: c_int) -> Result<c_int, Errno> {
    let mut v: c_int = 0;
    let mut len = core::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: v and len are valid for getsockopt to write an int and its length.
    check(unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_DOMAIN, (&mut v as *mut c_int).cast(), &mut len) })?;
    Ok(v)
}

/// Size of the kernel's `struct sigaction` as rt_sigaction reads and writes it (at most 32 bytes
/// on x86_64 and i686), and of the kernel's sigset (64 signals).
pub const KERNEL_SIGACTION_SIZE: usize = 32;
const KERNEL_SIGSET_SIZE: usize = 8;
/// Highest signal number.
pub const MAX_SIGNAL: c_int = 64;

pub type KernelSigaction = [u8; KERNEL_SIGACTION_SIZE];

/// `rt_sigaction(sig, new, old)` with the kernel's own struct (glibc's internal handlers too).
pub fn kernel_sigaction(
    sig: c_int,
    new: Option<&KernelSigaction>,
    old: Option<&mut KernelSigaction>,
) -> Result<(), Errno> {
    let np = new.map_or(core::ptr::null(), |b| b.as_ptr());
    let op = old.map_or(core::ptr::null_mut(), |b| b.as_mut_ptr());
    // SAFETY: the kernel reads/writes at most KERNEL_SIGACTION_SIZE bytes through our buffers.
    let r = unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, np, op, KERNEL_SIGSET_SIZE) };
    if r == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// The signals pending for this thread or the process (rt_sigpending), as a bit mask (bit n-1
/// for signal n).
pub fn sigpending() -> u64 {
    let mut set: u64 = 0;
    // SAFETY: the kernel writes KERNEL_SIGSET_SIZE (8) bytes into `set`.
    unsafe { libc::syscall(libc::SYS_rt_sigpending, &mut set as *mut u64, KERNEL_SIGSET_SIZE) };
    set
}

/// `kill(pid, sig)`.
pub fn kill(pid: i32, sig: c_int) -> Result<(), Errno> {
    // SAFETY: plain system call with integer arguments.
    check(unsafe { libc::kill(pid, sig) }).map(|_| ())
}

pub type Rlimit = libc::rlimit;

pub fn getrlimit(resource: usize) -> Result<Rlimit, Errno> {
    let mut lim = Rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: lim is a valid rlimit to fill.
    check(unsafe { libc::getrlimit(resource as _, &mut lim) })?;
    Ok(lim)
}

pub fn setrlimit(resource: usize, lim: &Rlimit) -> Result<(), Errno> {
    // SAFETY: lim is a valid rlimit.
    check(unsafe { libc::setrlimit(resource as _, lim) }).map(|_| ())
}

/// Sets the umask; returns the previous one (cannot fail).
pub fn umask(mask: u32) -> u32 {
    // SAFETY: plain system call.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// The working folder into `buf` (without NUL); its length.
pub fn getcwd(buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: getcwd writes at most buf.len() bytes (NUL included) into buf; no allocation with
    // a buffer given.
    if unsafe { libc::getcwd(buf.as_mut_ptr().cast(), buf.len()) }.is_null() {
        return Err(errno());
    }
    Ok(buf.iter().position(|&b| b == 0).unwrap_or(0))
}

pub fn chdir(path: &CStr) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated.
    check(unsafe { libc::chdir(path.as_ptr()) }).map(|_| ())
}

pub fn mkdir(path: &CStr, mode: u32) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated.
    check(unsafe { libc::mkdir(path.as_ptr(), mode as libc::mode_t) }).map(|_| ())
}

/// `open(path, flags)` (no mode: never creates).
pub fn open(path: &CStr, flags: c_int) -> Result<c_int, Errno> {
    // SAFETY: path is NUL-terminated.
    check(unsafe { libc::open(path.as_ptr(), flags) })
}

/// Opens `path` for appending, creating it mode 0600 (close-on-exec): DMTCP_LOG_FILE. A raw
/// system call: the log must not go through our own `open` wrappers (which may log).
pub fn open_append(path: &CStr) -> Result<c_int, Errno> {
    let flags = libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC;
    // SAFETY: path is NUL-terminated; the mode argument is what O_CREAT reads.
    let r = unsafe { libc::syscall(libc::SYS_openat, libc::AT_FDCWD, path.as_ptr(), flags, 0o600) };
    check(r as c_int)
}

/// `close` as a raw system call (no wrapper of ours in between).
pub fn close_raw(fd: c_int) {
    // SAFETY: closing a descriptor number has no memory-safety effect.
    unsafe { libc::syscall(libc::SYS_close, fd) };
}

/// Creates `path` if it does not exist (O_CREAT | O_EXCL, mode 0600) and closes it: Ok(true)
/// when this call made it, Ok(false) when it existed.
pub fn create_exclusive(path: &CStr) -> Result<bool, Errno> {
    // SAFETY: path is NUL-terminated; the mode argument is what O_CREAT reads.
    let fd =
        unsafe { libc::open(path.as_ptr(), libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC, 0o600) };
    if fd >= 0 {
        close(fd);
        return Ok(true);
    }
    match errno() {
        libc::EEXIST => Ok(false),
        e => Err(e),
    }
}

/// `unlink(path)`.
pub fn unlink(path: &CStr) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated.
    check(unsafe { libc::unlink(path.as_ptr()) }).map(|_| ())
}

/// `dup3(old, new, flags)`.
pub fn dup3(old: c_int, new: c_int, flags: c_int) -> Result<(), Errno> {
    // SAFETY: plain descriptor operation.
    check(unsafe { libc::dup3(old, new, flags) }).map(|_| ())
}

/// `fcntl(fd, cmd)` or `fcntl(fd, cmd, arg)` with an integer argument.
pub fn fcntl(fd: c_int, cmd: c_int, arg: c_int) -> Result<c_int, Errno> {
    // SAFETY: the integer-argument fcntl commands pass no pointer.
    check(unsafe { libc::fcntl(fd, cmd, arg) })
}

/// The `struct f_owner_ex` of F_GETOWN_EX / F_SETOWN_EX: [type, pid].
pub type OwnerEx = [c_int; 2];
const F_SETOWN_EX: c_int = 15;
const F_GETOWN_EX: c_int = 16;

pub fn get_owner_ex(fd: c_int) -> Result<OwnerEx, Errno> {
    let mut o: OwnerEx = [0, 0];
    // SAFETY: F_GETOWN_EX writes one struct f_owner_ex (two ints).
    check(unsafe { libc::fcntl(fd, F_GETOWN_EX, o.as_mut_ptr()) })?;
    Ok(o)
}

pub fn set_owner_ex(fd: c_int, o: &OwnerEx) -> Result<(), Errno> {
    // SAFETY: F_SETOWN_EX reads one struct f_owner_ex (two ints).
    check(unsafe { libc::fcntl(fd, F_SETOWN_EX, o.as_ptr()) }).map(|_| ())
}

/// Bytes waiting to be read (FIONREAD).
pub fn readable_bytes(fd: c_int) -> Result<usize, Errno> {
    let mut n: c_int = 0;
    // SAFETY: FIONREAD writes one int.
    check(unsafe { libc::ioctl(fd, libc::FIONREAD as _, &mut n as *mut c_int) })?;
    Ok(n.max(0) as usize)
}

/// The current offset of `fd`.
pub fn tell(fd: c_int) -> Result<i64, Errno> {
    // SAFETY: plain descriptor operation.
    let r = unsafe { libc::lseek64(fd, 0, libc::SEEK_CUR) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(r)
    }
}

/// Reads the whole (small) file at `path` into `buf`; its length (cut at `buf.len()`).
pub fn read_file(path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
    let fd = open_read(path)?;
    let mut got = 0;
    while got < buf.len() {
        match read_some(fd, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => {
                close(fd);
                return Err(e);
            }
        }
    }
    close(fd);
    Ok(got)
}

pub fn seek_to(fd: c_int, off: i64) -> Result<(), Errno> {
    // SAFETY: plain descriptor operation.
    let r = unsafe { libc::lseek64(fd, off, libc::SEEK_SET) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

pub fn isatty(fd: c_int) -> bool {
    // SAFETY: a query on a descriptor number.
    unsafe { libc::isatty(fd) == 1 }
}

/// Unmaps the restorer's fixed range after a restart (code, stack and scratch of
/// `mtcp_restart`, at `RESTORER_BASE_*`).
pub fn unmap_restorer() -> Result<(), Errno> {
    let base = crate::arch::RESTORER_BASE;
    // SAFETY: nothing of the program lives in the restorer's range (the restorer refuses such
    // images), and every thread has left it once the restart is done.
    check(unsafe { libc::munmap(base as usize as *mut c_void, dmtcp_proto::RESTORER_SPAN as usize) }).map(|_| ())
}

// SAFETY: a Mapping is plain memory owned by its value; moving it to another thread moves the
// ownership with it.
unsafe impl Send for Mapping {}

/// Registers fork handlers (pthread_atfork): `prepare` in the forking thread before the fork,
/// `parent` and `child` after it; false on failure.
pub fn atfork(prepare: extern "C" fn(), parent: extern "C" fn(), child: extern "C" fn()) -> bool {
    // SAFETY: plain functions with no arguments, valid forever.
    unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) == 0 }
}

/// The C library's `fork` (with every pthread_atfork handler, ours included).
pub fn fork() -> libc::pid_t {
    // SAFETY: fork has no memory-safety preconditions of its own; the child goes on in a copy
    // of this process.
    unsafe { libc::fork() }
}

/// `setenv(name, value, 1)`, or `unsetenv(name)` when `value` is None. The C library's
/// environment is not thread-safe: only from the constructor, while single-threaded.
pub fn set_env(name: &CStr, value: Option<&CStr>) {
    // SAFETY: setenv/unsetenv with NUL-terminated strings (which libc copies); the caller runs
    // single-threaded, as documented above.
    unsafe {
        match value {
            Some(v) => libc::setenv(name.as_ptr(), v.as_ptr(), 1),
            None => libc::unsetenv(name.as_ptr()),
        };
    }
}

/// The C library's `environ` array. Only while no other thread can change the environment.
pub fn environ() -> crate::cstr::CArray {
    // SAFETY: glibc's `environ` is NULL or a NULL-terminated array of NUL-terminated strings;
    // the caller reads it while no other thread changes the environment (see above).
    unsafe { crate::cstr::CArray::new(libc::environ as *const *const core::ffi::c_char) }
}

/// Points the C library's `environ` at `table` (NULL-terminated `NAME=value` strings that live
/// forever). Only while no other thread of the program runs (after a restart, threads stopped).
/// A later setenv() of the program copies the table into memory of its own (glibc reallocates
/// any array it did not allocate), so the table is never written by anyone but us.
pub fn set_environ(table: *const *const core::ffi::c_char) {
    // SAFETY: a plain store of a pointer to a valid, NULL-terminated, static array.
    unsafe { libc::environ = table as *mut *mut core::ffi::c_char };
}

/// glibc's rseq registration: (`__rseq_offset`, `__rseq_size`), or None when this glibc has
/// none (before 2.35). Looks the two variables up with the real dlsym: constructor only.
pub fn glibc_rseq() -> Option<(usize, u32)> {
    let off = crate::dlsym::next(c"__rseq_offset");
    let size = crate::dlsym::next(c"__rseq_size");
    if off == 0 || size == 0 {
        return None;
    }
    // SAFETY: the addresses of glibc's exported `ptrdiff_t __rseq_offset` and `unsigned int
    // __rseq_size`, constant after start-up.
    unsafe { Some((*(off as *const isize) as usize, *(size as *const u32))) }
}

// ---------------------------------------------------------------------------------------------
// Process and signal calls for `shell` (system/popen). These go through the C library, as the
// program's own calls would.

/// `pipe2(flags)`: (read end, write end).
pub fn pipe2(flags: c_int) -> Result<[c_int; 2], Errno> {
    let mut fds = [-1 as c_int; 2];
    // SAFETY: fds is a valid int[2].
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), flags) }).map(|_| fds)
}

/// One `waitpid(pid, &status, 0)`: the pid it returned and the status.
pub fn waitpid(pid: libc::pid_t) -> Result<(libc::pid_t, c_int), Errno> {
    let mut status = 0;
    // SAFETY: status is a valid int to fill.
    check(unsafe { libc::waitpid(pid, &mut status, 0) }).map(|r| (r, status))
}

/// The default action (SIG_DFL, no flags, empty mask); also storage for an old action.
pub fn default_action() -> libc::sigaction {
    // SAFETY: an all-zero sigaction is valid: SIG_DFL with an empty mask.
    unsafe { core::mem::zeroed() }
}

/// An action that ignores the signal (SIG_IGN, no flags, empty mask).
pub fn ignore_action() -> libc::sigaction {
    // SAFETY: an all-zero sigaction is valid (SIG_DFL, empty mask); we set SIG_IGN in it.
    let mut a: libc::sigaction = unsafe { core::mem::zeroed() };
    a.sa_sigaction = libc::SIG_IGN;
    a
}

/// `sigaction(sig, act, old)` through the C library.
pub fn sigaction(sig: c_int, act: &libc::sigaction, old: Option<&mut libc::sigaction>) {
    let old = old.map_or(core::ptr::null_mut(), |o| o as *mut libc::sigaction);
    // SAFETY: act is a valid action; old is NULL or valid storage.
    unsafe { libc::sigaction(sig, act, old) };
}

/// Blocks `sig` in this thread with the C library's sigprocmask; returns the previous mask.
pub fn block_signal(sig: c_int) -> libc::sigset_t {
    // SAFETY: zeroed sigset_t storage initialized by sigemptyset/sigaddset; sigprocmask with
    // valid pointers.
    unsafe {
        let mut one: libc::sigset_t = core::mem::zeroed();
        let mut old: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut one);
        libc::sigaddset(&mut one, sig);
        libc::sigprocmask(libc::SIG_BLOCK, &one, &mut old);
        old
    }
}

/// Puts back a mask that `block_signal` returned (the C library's sigprocmask).
pub fn restore_mask(old: &libc::sigset_t) {
    // SAFETY: old is a valid sigset_t; no old mask is asked for.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, old, core::ptr::null_mut()) };
}

// ---------------------------------------------------------------------------------------------
// Children that exited and are not reaped yet (`resources::zombies`).

/// How `pid`, a child of this process, ended, if it did and nobody reaped it yet: (si_code:
/// CLD_EXITED, CLD_KILLED or CLD_DUMPED; si_status). It stays waitable (WNOWAIT).
pub fn ended_child(pid: i32) -> Option<(c_int, c_int)> {
    // SAFETY: an all-zero siginfo_t is valid storage for waitid to fill.
    let mut info: libc::siginfo_t = unsafe { core::mem::zeroed() };
    // SAFETY: info is valid storage; a raw call, so that no wrapper of the program's sees it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_waitid,
            libc::P_PID,
            pid,
            &mut info as *mut libc::siginfo_t,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            core::ptr::null_mut::<c_void>(),
        )
    };
    // SAFETY: waitid filled the siginfo of a child event (or left it zeroed).
    let (who, status) = unsafe { (info.si_pid(), info.si_status()) };
    (r == 0 && who == pid).then_some((info.si_code, status))
}

/// Makes child `pid` again (clone3 with set_tid; needs CAP_SYS_ADMIN in the owner of this pid
/// namespace, as the restart's processes have) and has it end at once as `code`/`status` say:
/// `_exit(status)`, or killed by signal `status` with its default action. The parent sees a
/// child that ended, as at checkpoint time.
pub fn remake_ended_child(pid: i32, code: c_int, status: c_int) -> Result<(), Errno> {
    let tid: libc::pid_t = pid;
    // struct clone_args, CLONE_ARGS_SIZE_VER1: flags, pidfd, child_tid, parent_tid,
    // exit_signal, stack, stack_size, tls, set_tid, set_tid_size.
    let mut args = [0u64; 10];
    args[4] = libc::SIGCHLD as u64;
    args[8] = &tid as *const libc::pid_t as usize as u64;
    args[9] = 1;
    // SAFETY: fork-like clone3 (no CLONE_VM): the child runs in a copy of this process and only
    // makes the raw system calls below before it ends.
    let r = unsafe { libc::syscall(libc::SYS_clone3, args.as_ptr(), core::mem::size_of_val(&args)) };
    if r < 0 {
        return Err(errno());
    }
    if r == 0 {
        if code != libc::CLD_EXITED {
            // SAFETY: raw calls in the child: default action for the signal, unblocked, sent to
            // itself; a signal that does not kill ends in _exit below.
            unsafe {
                let mut act = [0usize; 4];
                act[0] = libc::SIG_DFL;
                libc::syscall(libc::SYS_rt_sigaction, status, act.as_ptr(), core::ptr::null_mut::<c_void>(), 8);
                let none = [0u64; 1];
                libc::syscall(
                    libc::SYS_rt_sigprocmask,
                    libc::SIG_SETMASK,
                    none.as_ptr(),
                    core::ptr::null_mut::<c_void>(),
                    8,
                );
                libc::syscall(libc::SYS_kill, libc::syscall(libc::SYS_getpid), status);
            }
            exit_now(128 + status);
        }
        exit_now(status);
    }
    Ok(())
}

/// Sleeps about `ms` milliseconds (a raw nanosleep: no wrapper of ours or the program's).
pub fn sleep_ms(ms: u32) {
    let t = libc::timespec { tv_sec: (ms / 1000) as libc::time_t, tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long };
    // SAFETY: t is a valid timespec; no remaining time is asked for.
    unsafe { libc::syscall(libc::SYS_nanosleep, &t as *const libc::timespec, core::ptr::null_mut::<libc::timespec>()) };
}
