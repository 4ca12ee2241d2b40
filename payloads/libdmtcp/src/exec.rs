//! Wrappers of `execve`, `execv`, `execvp`, `execvpe`, `fexecve`, `posix_spawn` and
//! `posix_spawnp`: the new program gets, in its environment,
//! - `LD_PRELOAD=<libdmtcp.so of the target's architecture>[:<user's LD_PRELOAD>]` and
//!   `DMTCP_ORIG_LD_PRELOAD=<user's LD_PRELOAD>` (absent if the user has none), where the user's
//!   value is the one in the environment being passed;
//! - `DMTCP_DLSYM_OFFSET(_M32)` from the shared-data area (DMTCP's old prepareForExec);
//! - our startup `DMTCP_*` variables that the caller's environment dropped;
//! - `DMTCP_SEM_UNDO` (an exec only): this process's SEM_UNDO adjustments, which the kernel
//!   keeps across execve (`resources::sem_undo`);
//! - `DMTCP_COORD_HANDOVER`: the registration the new image takes over (`children`): an exec
//!   keeps this process's coordinator connection open across it (close-on-exec cleared for the
//!   call only, put back if the exec fails), a spawn registers the child before the call.
//!
//! `vfork` is exported too, as `fork` (see `children`).
//!
//! The target's architecture is its ELF class (`#!` scripts: their interpreter's); `execvp*`
//! search PATH as libc does. Static and set-id targets, and our own tools, are exec'd plainly.
//!
//! Rules: no malloc (the program may exec from a forked child of a multi-threaded parent): the
//! new array and strings live in one anonymous mapping, unmapped if the exec fails; errno on
//! return is the real exec's; nothing changes unless this process is registered
//! (`config::active`).
use crate::children::Handing;
use crate::config::{self, CARRIED};
use crate::cstr::{basename, env_match, fmt_u64, CArray, Fixed};
use crate::log::Bytes;
use crate::real::{self, CStrArray};
use crate::sys::{self, Mapping};
use core::ffi::{c_char, c_int, CStr};
use dmtcp_proto::{env, handover};

/// How the program to run is named.
#[derive(Clone, Copy)]
enum Target<'a> {
    Path(&'a CStr),
    Search(&'a CStr),
    Fd(c_int),
}

// ---------------------------------------------------------------------------------------------
// The exported wrappers: the only unsafe code here, turning C arguments into checked values.

/// # Safety
/// C caller: `path`, `argv`, `envp` as for execve(2).
#[no_mangle]
pub unsafe extern "C" fn execve(path: *const c_char, argv: CStrArray, envp: CStrArray) -> c_int {
    // SAFETY: the caller passes valid execve arguments.
    let (target, env) = unsafe { (path_target(path, false), CArray::new(envp)) };
    with_env(target, env, |e| match real::execve() {
        // SAFETY: the real execve with the caller's arguments and a valid environment array.
        Some(f) => unsafe { f(path, argv, e) },
        None => missing(),
    })
}

/// # Safety
/// C caller: as for execv(3).
#[no_mangle]
pub unsafe extern "C" fn execv(path: *const c_char, argv: CStrArray) -> c_int {
    // SAFETY: the caller passes valid arguments; environ is the process's environment.
    let (target, env) = unsafe { (path_target(path, false), CArray::new(environ())) };
    // execv(p, a) is execve(p, a, environ) in glibc.
    with_env(target, env, |e| match real::execve() {
        // SAFETY: the real execve with the caller's arguments and a valid environment array.
        Some(f) => unsafe { f(path, argv, e) },
        None => missing(),
    })
}

/// # Safety
/// C caller: as for execvp(3).
#[no_mangle]
pub unsafe extern "C" fn execvp(file: *const c_char, argv: CStrArray) -> c_int {
    // SAFETY: the caller passes valid arguments; environ is the process's environment.
    let (target, env) = unsafe { (path_target(file, true), CArray::new(environ())) };
    // execvp(f, a) is execvpe(f, a, environ) in glibc.
    with_env(target, env, |e| match real::execvpe() {
        // SAFETY: the real execvpe with the caller's arguments and a valid environment array.
        Some(f) => unsafe { f(file, argv, e) },
        None => missing(),
    })
}

/// # Safety
/// C caller: as for execvpe(3).
#[no_mangle]
pub unsafe extern "C" fn execvpe(file: *const c_char, argv: CStrArray, envp: CStrArray) -> c_int {
    // SAFETY: the caller passes valid arguments.
    let (target, env) = unsafe { (path_target(file, true), CArray::new(envp)) };
    with_env(target, env, |e| match real::execvpe() {
        // SAFETY: the real execvpe with the caller's arguments and a valid environment array.
        Some(f) => unsafe { f(file, argv, e) },
        None => missing(),
    })
}

/// # Safety
/// C caller: as for fexecve(3).
#[no_mangle]
pub unsafe extern "C" fn fexecve(fd: c_int, argv: CStrArray, envp: CStrArray) -> c_int {
    // SAFETY: the caller passes a valid environment array.
    let env = unsafe { CArray::new(envp) };
    with_env(Some(Target::Fd(fd)), env, |e| match real::fexecve() {
        // SAFETY: the real fexecve with the caller's arguments and a valid environment array.
        Some(f) => unsafe { f(fd, argv, e) },
        None => missing(),
    })
}

/// # Safety
/// C caller: as for posix_spawn(3).
#[no_mangle]
pub unsafe extern "C" fn posix_spawn(
    pid: *mut libc::pid_t,
    path: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: CStrArray,
    envp: CStrArray,
) -> c_int {
    // SAFETY: the caller passes valid arguments.
    let (target, env) = unsafe { (path_target(path, false), CArray::new(envp)) };
    with_env_spawning(target, env, |e| match real::posix_spawn() {
        // SAFETY: the real posix_spawn with the caller's arguments and a valid environment.
        Some(f) => unsafe { f(pid, path, actions, attr, argv, e) },
        None => libc::ENOSYS,
    })
}

/// # Safety
/// C caller: as for posix_spawnp(3).
#[no_mangle]
pub unsafe extern "C" fn posix_spawnp(
    pid: *mut libc::pid_t,
    file: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: CStrArray,
    envp: CStrArray,
) -> c_int {
    // SAFETY: the caller passes valid arguments.
    let (target, env) = unsafe { (path_target(file, true), CArray::new(envp)) };
    with_env_spawning(target, env, |e| match real::posix_spawnp() {
        // SAFETY: the real posix_spawnp with the caller's arguments and a valid environment.
        Some(f) => unsafe { f(pid, file, actions, attr, argv, e) },
        None => libc::ENOSYS,
    })
}

/// `vfork` is `fork` under dmtcp: a child that shares our memory cannot hold a registration
/// of its own (see `children`). POSIX lets a vfork child do nothing but exec or _exit, which a
/// forked child does just as well.
#[no_mangle]
pub extern "C" fn vfork() -> libc::pid_t {
    crate::children::vfork_as_fork()
}

/// # Safety
/// `p` is NULL or a valid NUL-terminated string that outlives the call.
unsafe fn path_target<'a>(p: *const c_char, search: bool) -> Option<Target<'a>> {
    if p.is_null() {
        return None;
    }
    // SAFETY: per the contract, p is a valid C string.
    let s = unsafe { CStr::from_ptr(p) };
    Some(if search { Target::Search(s) } else { Target::Path(s) })
}

fn environ() -> CStrArray {
    // SAFETY: reading the pointer value of libc's `environ` variable.
    unsafe { libc::environ as CStrArray }
}

fn missing() -> c_int {
    error!("cannot find the C library's exec function");
    sys::set_errno(libc::ENOSYS);
    -1
}

// ---------------------------------------------------------------------------------------------

/// Runs `call` (an exec) with the environment the target needs (or `env` unchanged when
/// nothing is to be added); errno after it is the call's.
fn with_env(target: Option<Target<'_>>, env: CArray, call: impl FnOnce(CStrArray) -> c_int) -> c_int {
    run_with_env(target, env, false, call)
}

/// As `with_env`, for a call that starts a child process (posix_spawn) and returns.
fn with_env_spawning(target: Option<Target<'_>>, env: CArray, call: impl FnOnce(CStrArray) -> c_int) -> c_int {
    run_with_env(target, env, true, call)
}

fn run_with_env(target: Option<Target<'_>>, env: CArray, spawn: bool, call: impl FnOnce(CStrArray) -> c_int) -> c_int {
    let Some(target) = target.filter(|_| config::active()) else {
        return call(env.as_ptr());
    };
    let saved = sys::errno();
    let Some((lib, name)) = prepare(target) else {
        sys::set_errno(saved);
        return call(env.as_ptr());
    };
    // The registration goes on in the new image (see `children`); without it (a child that
    // shares our memory, a coordinator that cannot register a child) the image registers
    // itself.
    let mut handing = if spawn { Handing::spawn(basename(name.bytes())) } else { Handing::exec() };
    let mut value = [0u8; handover::MAX_LEN];
    let handover = handing.as_ref().map(|h| h.value(&mut value));
    let mut undo = [0u8; crate::resources::sem_undo::HANDOVER_LEN];
    let undo_len = if spawn { 0 } else { crate::resources::sem_undo::handover_value(&mut undo) };
    let built = match build_env(env, lib, handover, &undo[..undo_len]) {
        Ok(r) => Some(r),
        Err(e) => {
            error!(
                "cannot prepare the environment of {} ({}): it runs without dmtcp",
                Bytes(name.bytes()),
                Bytes(sys::strerror(e))
            );
            None
        }
    };
    let r = match built {
        Some((map, new_env)) => {
            sys::set_errno(saved);
            let r = call(new_env);
            drop(map); // keeps errno
            r
        }
        None => {
            if let Some(h) = handing.take() {
                h.end();
            }
            sys::set_errno(saved);
            return call(env.as_ptr());
        }
    };
    if let Some(h) = handing {
        h.end(); // keeps errno
    }
    r
}
/// Decides what the target needs: the library to preload and the target's name; None = exec
/// plainly.
fn prepare(target: Target<'_>) -> Option<(&'static [u8], Fixed<4096>)> {
    let mut found = Fixed::<4096>::new();
    let mut name = Fixed::<4096>::new();
    match target {
        Target::Path(p) => {
            name.set(p.to_bytes());
        }
        Target::Search(f) => {
            if search_path(f.to_bytes(), &mut found) {
                name.set(found.bytes());
            } else {
                name.set(f.to_bytes());
            }
        }
        Target::Fd(_) => {}
    }
    let shown = name.bytes();
    if config::is_dmtcp_tool(basename(shown)) {
        trace!("exec of dmtcp tool {}: passing through", Bytes(shown));
        return None;
    }
    let img = match target {
        Target::Fd(fd) => inspect_fd(fd, b"", 0),
        Target::Search(_) if found.is_empty() => Image::UNKNOWN,
        Target::Search(_) => inspect_path(found.as_cstr(), 0),
        Target::Path(p) => inspect_path(p, 0),
    };
    if img.secure {
        warn!("{} is set-user/group-id: it runs without dmtcp (no checkpoints)", Bytes(shown));
        return None;
    }
    if !img.dynamic {
        warn!("{} is statically linked: it runs without dmtcp (no checkpoints)", Bytes(shown));
        return None;
    }
    let m32 = match img.class {
        Some(1) => true,
        Some(2) => false,
        _ => cfg!(target_pointer_width = "32"),
    };
    let lib = config::get().hijack_lib(m32);
    if lib.is_empty() {
        warn!(
            "no {}-bit libdmtcp.so is known (DMTCP_HIJACK_LIBS{}): {} runs without dmtcp",
            if m32 { 32 } else { 64 },
            if m32 { "_M32" } else { "" },
            Bytes(shown)
        );
        return None;
    }
    trace!("exec {}: {}-bit, preloading {}", Bytes(shown), if m32 { 32 } else { 64 }, Bytes(lib));
    Some((lib, name))
}

// ---------------------------------------------------------------------------------------------
// The new environment.

const LD_PRELOAD: &[u8] = b"LD_PRELOAD";
/// Entries of the caller's environment that we replace.
const REPLACED: [&str; 5] =
    [env::ORIG_LD_PRELOAD, env::DLSYM_OFFSET, env::DLSYM_OFFSET_M32, env::COORD_HANDOVER, env::SEM_UNDO];
const MAX_ENTRIES: usize = 1 << 20;
const PTR: usize = core::mem::size_of::<usize>();

fn is_replaced(entry: &[u8]) -> bool {
    env_match(entry, LD_PRELOAD).is_some() || REPLACED.iter().any(|n| env_match(entry, n.as_bytes()).is_some())
}

/// Elements of a preload list (ld.so accepts ':' and ' ' as separators) that are not ours.
fn user_preloads<'a>(list: &'a [u8], ours: [&'a [u8]; 2]) -> impl Iterator<Item = &'a [u8]> + 'a {
    list.split(|&c| c == b':' || c == b' ')
        .filter(move |e| !e.is_empty() && !ours.iter().any(|o| !o.is_empty() && o == e))
}

/// Writes NUL-terminated strings into a byte area and hands back their addresses.
struct Strings<'a> {
    buf: &'a mut [u8],
    pos: usize,
    start: usize,
}

impl Strings<'_> {
    fn begin(&mut self) {
        self.start = self.pos;
    }
    fn put(&mut self, s: &[u8]) -> bool {
        if self.pos + s.len() >= self.buf.len() {
            return false;
        }
        self.buf[self.pos..self.pos + s.len()].copy_from_slice(s);
        self.pos += s.len();
        true
    }
    /// Terminates the string begun last; its address.
    fn end(&mut self) -> Option<usize> {
        if self.pos >= self.buf.len() {
            return None;
        }
        self.buf[self.pos] = 0;
        self.pos += 1;
        Some(self.buf.as_ptr() as usize + self.start)
    }
}

fn build_env(
    env: CArray,
    lib: &[u8],
    handover: Option<&[u8]>,
    sem_undo: &[u8],
) -> Result<(Mapping, CStrArray), sys::Errno> {
    let c = config::get();
    let ours = [c.hijack_lib(false), c.hijack_lib(true)];
    let user = env.env_value(LD_PRELOAD);
    let n = env.iter().take(MAX_ENTRIES + 1).count();
    if n > MAX_ENTRIES {
        return Err(libc::E2BIG);
    }
    let user_len = user.map_or(0, |u| u.len());
    let strings_len = LD_PRELOAD.len()
        + 2
        + lib.len()
        + 1
        + user_len
        + env::ORIG_LD_PRELOAD.len()
        + 2
        + user_len
        + 2 * (env::DLSYM_OFFSET_M32.len() + 2 + 20)
        + env::COORD_HANDOVER.len()
        + 2
        + handover.map_or(0, |h| h.len())
        + env::SEM_UNDO.len()
        + 2
        + sem_undo.len()
        + 16;
    let slots = n + 6 + CARRIED.len() + 1;
    let ptr_len = slots * PTR;
    let total = (ptr_len + strings_len + 4095) & !4095;
    let mut map = Mapping::new(total)?;
    let area = map.bytes();
    let (ptrs, strs) = area.split_at_mut(ptr_len);
    let mut s = Strings { buf: strs, pos: 0, start: 0 };
    let mut k = 0;
    let mut push = |addr: usize, ptrs: &mut [u8]| {
        if k < slots - 1 {
            ptrs[k * PTR..(k + 1) * PTR].copy_from_slice(&addr.to_ne_bytes());
            k += 1;
        }
    };

    // LD_PRELOAD=<lib>[:<user's>]
    s.begin();
    let mut ok = s.put(LD_PRELOAD) && s.put(b"=") && s.put(lib);
    if let Some(u) = user {
        for e in user_preloads(u, ours) {
            ok = ok && s.put(b":") && s.put(e);
        }
    }
    let a = s.end().filter(|_| ok).ok_or(libc::E2BIG)?;
    push(a, ptrs);

    // DMTCP_ORIG_LD_PRELOAD=<user's>, only if the user has one.
    if let Some(u) = user {
        s.begin();
        let mut ok = s.put(env::ORIG_LD_PRELOAD.as_bytes()) && s.put(b"=");
        let mut first = true;
        for e in user_preloads(u, ours) {
            ok = ok && (first || s.put(b":")) && s.put(e);
            first = false;
        }
        let a = s.end().filter(|_| ok).ok_or(libc::E2BIG)?;
        push(a, ptrs);
    }

    // DMTCP_DLSYM_OFFSET(_M32) from the shared-data area.
    for (name, m32) in [(env::DLSYM_OFFSET, false), (env::DLSYM_OFFSET_M32, true)] {
        let v = c.dlsym_offset(m32);
        if v != 0 {
            let mut digits = [0u8; 20];
            s.begin();
            let ok = s.put(name.as_bytes()) && s.put(b"=") && s.put(fmt_u64(v, &mut digits));
            let a = s.end().filter(|_| ok).ok_or(libc::E2BIG)?;
            push(a, ptrs);
        }
    }

    // DMTCP_COORD_HANDOVER=<fd:vpid:comp>, the registration the new image takes over.
    if let Some(h) = handover {
        s.begin();
        let ok = s.put(env::COORD_HANDOVER.as_bytes()) && s.put(b"=") && s.put(h);
        let a = s.end().filter(|_| ok).ok_or(libc::E2BIG)?;
        push(a, ptrs);
    }

    // DMTCP_SEM_UNDO=<id.num.adj,...>, the adjustments the kernel keeps across the exec.
    if !sem_undo.is_empty() {
        s.begin();
        let ok = s.put(env::SEM_UNDO.as_bytes()) && s.put(b"=") && s.put(sem_undo);
        let a = s.end().filter(|_| ok).ok_or(libc::E2BIG)?;
        push(a, ptrs);
    }

    // The caller's entries, minus the ones replaced above.
    for e in env.iter() {
        if !is_replaced(e.to_bytes()) {
            push(e.as_ptr() as usize, ptrs);
        }
    }

    // Our startup DMTCP_* variables that the caller dropped (they live in static storage).
    for (i, name) in CARRIED.iter().enumerate() {
        let entry = &c.carried[i];
        if !entry.is_empty() && env.env_value(name.as_bytes()).is_none() {
            push(entry.as_cstr().as_ptr() as usize, ptrs);
        }
    }
    // The terminating NULL: the mapping is zero-filled and k < slots.
    let p = ptrs.as_ptr() as CStrArray;
    Ok((map, p))
}

// ---------------------------------------------------------------------------------------------
// What the target is.

struct Image {
    /// EI_CLASS: 1 = 32-bit, 2 = 64-bit; None = not ELF or unreadable.
    class: Option<u8>,
    /// Has a program interpreter (so ld.so runs and honours LD_PRELOAD).
    dynamic: bool,
    /// Set-id in a way that makes ld.so ignore our LD_PRELOAD.
    secure: bool,
}

impl Image {
    /// Unreadable or unknown: let the kernel decide, preload our own architecture's library.
    const UNKNOWN: Image = Image { class: None, dynamic: true, secure: false };
}

const MAX_SCRIPT_DEPTH: u32 = 4;

fn inspect_path(path: &CStr, depth: u32) -> Image {
    match sys::open_read(path) {
        Ok(fd) => {
            let img = inspect_fd(fd, path.to_bytes(), depth);
            sys::close(fd);
            img
        }
        Err(_) => Image::UNKNOWN,
    }
}

fn inspect_fd(fd: c_int, name: &[u8], depth: u32) -> Image {
    let secure = match sys::fstat(fd) {
        Ok(st) => {
            (st.mode & libc::S_ISUID != 0 && st.uid != sys::geteuid())
                || (st.mode & libc::S_ISGID != 0 && st.gid != sys::getegid())
        }
        Err(_) => false,
    };
    let mut head = [0u8; 256];
    let n = match sys::pread(fd, &mut head, 0) {
        Ok(n) => n,
        Err(_) => return Image::UNKNOWN,
    };
    let head = &head[..n];
    if head.len() >= 52 && head.starts_with(b"\x7fELF") {
        let class = head[4];
        let dynamic = elf_is_dynamic(fd, head, name);
        return Image { class: Some(class), dynamic, secure };
    }
    if head.starts_with(b"#!") && depth < MAX_SCRIPT_DEPTH {
        // The kernel ignores set-id bits on scripts; the interpreter decides everything.
        let mut interp = Fixed::<256>::new();
        if script_interpreter(&head[2..], &mut interp) {
            return inspect_path(interp.as_cstr(), depth + 1);
        }
    }
    Image { secure: false, ..Image::UNKNOWN }
}

/// True if the ELF file has a PT_INTERP program header (or is the dynamic loader itself, which
/// honours LD_PRELOAD for the program it runs).
fn elf_is_dynamic(fd: c_int, head: &[u8], name: &[u8]) -> bool {
    use dmtcp_proto::le::{get_u32, get_u64};
    let u16_at = |off: usize| u16::from_le_bytes([head[off], head[off + 1]]);
    let (phoff, phentsize, phnum) = match head[4] {
        2 if head.len() >= 64 => (get_u64(head, 32), u16_at(54), u16_at(56)),
        1 => (get_u32(head, 28) as u64, u16_at(42), u16_at(44)),
        _ => return true,
    };
    const PT_INTERP: u32 = 3;
    for i in 0..core::cmp::min(phnum, 256) as u64 {
        let mut t = [0u8; 4];
        match sys::pread(fd, &mut t, phoff + i * phentsize as u64) {
            Ok(4) if u32::from_le_bytes(t) == PT_INTERP => return true,
            Ok(4) => {}
            _ => return true, // cannot tell: assume the common case
        }
    }
    const ET_DYN: u16 = 3;
    u16_at(16) == ET_DYN && basename(name).starts_with(b"ld-")
}

/// The interpreter path of a `#!` line (the bytes after `#!`).
fn script_interpreter(line: &[u8], out: &mut Fixed<256>) -> bool {
    let line = match line.iter().position(|&c| c == b'\n') {
        Some(i) => &line[..i],
        None => line,
    };
    let start = line.iter().position(|&c| c != b' ' && c != b'\t').unwrap_or(line.len());
    let rest = &line[start..];
    let end = rest.iter().position(|&c| c == b' ' || c == b'\t' || c == 0).unwrap_or(rest.len());
    !rest[..end].is_empty() && out.set(&rest[..end])
}

/// PATH search as execvp does (PATH of the current environment, default "/bin:/usr/bin"): the
/// first executable regular file. Names with a '/' are used as they are.
fn search_path(file: &[u8], out: &mut Fixed<4096>) -> bool {
    if file.is_empty() {
        return false;
    }
    if file.contains(&b'/') {
        return out.set(file);
    }
    // SAFETY: getenv with a NUL-terminated name; the result is NULL or a C string we only read
    // during this call.
    let path = unsafe {
        let p = libc::getenv(c"PATH".as_ptr());
        if p.is_null() {
            b"/bin:/usr/bin".as_slice()
        } else {
            CStr::from_ptr(p).to_bytes()
        }
    };
    for dir in path.split(|&c| c == b':') {
        out.clear();
        let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
        if !(out.push(dir) && out.push(b"/") && out.push(file)) {
            continue;
        }
        let p = out.as_cstr();
        if sys::can_execute(p) && sys::stat(p).is_ok_and(|st| st.is_regular()) {
            return true;
        }
    }
    out.clear();
    false
}
