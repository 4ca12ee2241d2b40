//! The process's dmtcp settings, copied out of the environment once by the constructor (the
//! program may later change or overwrite its environment), plus the mapped shared-data area.
//!
//! Rules: written only by the constructor, while the process has a single thread and before
//! our own thread exists; read-only afterwards, from any thread and from the fork child. Fixed
//! buffers in .bss, no allocation.
use crate::cstr::{env_match, parse_u64, CArray, Fixed};
use crate::log::Bytes;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};
use dmtcp_proto::{env, le, shared};

/// Longest `NAME=value` we carry into exec'd programs (paths up to PATH_MAX).
pub const CARRY_LEN: usize = 4200;

/// The variables re-injected at every exec when the caller's environment dropped them.
pub const CARRIED: [&str; 19] = [
    env::COORD_HOST,
    env::COORD_PORT,
    env::SHARED_AREA,
    env::HIJACK_LIBS,
    env::HIJACK_LIBS_M32,
    env::CHECKPOINT_DIR,
    env::GZIP,
    env::SIGCKPT,
    env::QUIET,
    env::LOG_LEVEL,
    env::BIN,
    env::COORD_TOKEN,
    env::LOG_FILE,
    env::UNIQUE_CKPT,
    env::INCREMENTAL,
    env::INCREMENTAL_CHAIN,
    env::INCREMENTAL_RATIO,
    env::CKPT_OPEN_FILES,
    env::ALLOW_OVERWRITE,
];
const I_HOST: usize = 0;
const I_SHARED: usize = 2;
const I_HIJACK: usize = 3;
const I_HIJACK_M32: usize = 4;
const I_CKPT_DIR: usize = 5;
const I_GZIP: usize = 6;
const I_SIGCKPT: usize = 7;
const I_BIN: usize = 10;
const I_TOKEN: usize = 11;
const I_LOG_FILE: usize = 12;
const I_UNIQUE_CKPT: usize = 13;
const I_INCREMENTAL: usize = 14;
const I_INCREMENTAL_CHAIN: usize = 15;
const I_INCREMENTAL_RATIO: usize = 16;
const I_CKPT_OPEN_FILES: usize = 17;
const I_ALLOW_OVERWRITE: usize = 18;
/// Defaults of DMTCP_INCREMENTAL_CHAIN and DMTCP_INCREMENTAL_RATIO.
pub const INCREMENTAL_CHAIN_DEFAULT: u32 = 10;
pub const INCREMENTAL_RATIO_DEFAULT: u32 = 50;

pub struct Config {
    /// `NAME=value` of each `CARRIED` variable present at startup (empty if absent).
    pub carried: [Fixed<CARRY_LEN>; CARRIED.len()],
    pub coord_ip: [u8; 4],
    pub coord_port: u16,
    /// DMTCP_CHECKPOINT_INTERVAL at startup, or INTERVAL_UNCHANGED.
    pub interval: u32,
    pub progname: Fixed<256>,
    pub hostname: Fixed<256>,
    /// DMTCP_DLSYM_OFFSET / _M32 at startup (0 = absent or invalid).
    pub offset_env: u64,
    pub offset_env_m32: u64,
    /// The shared-data area, if DMTCP_SHARED_AREA named a valid one.
    pub shared: Option<&'static [u8]>,
    /// DMTCP_STRICT=1 at startup: an fd that cannot be restored fails the checkpoint.
    pub strict: bool,
}

impl Config {
    const EMPTY: Config = Config {
        carried: [const { Fixed::new() }; CARRIED.len()],
        coord_ip: [127, 0, 0, 1],
        coord_port: 0,
        interval: dmtcp_proto::INTERVAL_UNCHANGED,
        progname: Fixed::new(),
        hostname: Fixed::new(),
        offset_env: 0,
        offset_env_m32: 0,
        shared: None,
        strict: false,
    };

    fn carried_value(&self, i: usize) -> &[u8] {
        env_match(self.carried[i].bytes(), CARRIED[i].as_bytes()).unwrap_or(b"")
    }

    pub fn coord_host_text(&self) -> &[u8] {
        self.carried_value(I_HOST)
    }

    /// Absolute path of the libdmtcp.so for 32-bit (`m32`) or 64-bit programs, if known.
    pub fn hijack_lib(&self, m32: bool) -> &[u8] {
        let v = self.carried_value(if m32 { I_HIJACK_M32 } else { I_HIJACK });
        if !v.is_empty() {
            return v;
        }
        match self.shared {
            Some(s) => le::get_str(s, if m32 { shared::OFF_HIJACK_M32 } else { shared::OFF_HIJACK }, shared::LEN_PATH),
            None => b"",
        }
    }

    /// `dlsym - dlinfo` in the 32-bit (`m32`) or 64-bit libc: the shared-data area's current
    /// value, else our startup environment's; 0 if unknown.
    pub fn dlsym_offset(&self, m32: bool) -> u64 {
        if let Some(s) = self.shared {
            let v = le::get_u64(s, if m32 { shared::OFF_DLSYM_M32 } else { shared::OFF_DLSYM });
            if v != 0 {
                return v;
            }
        }
        if m32 {
            self.offset_env_m32
        } else {
            self.offset_env
        }
    }

    /// Folder for checkpoint images (DMTCP_CHECKPOINT_DIR; the launcher always sets it).
    pub fn ckpt_dir(&self) -> &[u8] {
        self.carried_value(I_CKPT_DIR)
    }

    /// The coordinator's token for clients on other hosts (DMTCP_COORD_TOKEN), empty if none.
    pub fn coord_token(&self) -> &[u8] {
        self.carried_value(I_TOKEN)
    }

    /// The `dmtcp` binary that writes images (DMTCP_BIN).
    pub fn dmtcp_bin(&self) -> &[u8] {
        self.carried_value(I_BIN)
    }

    /// Whether images are compressed (DMTCP_GZIP, default on).
    pub fn compress(&self) -> bool {
        !matches!(self.carried_value(I_GZIP), b"0" | b"no" | b"false")
    }

    /// The checkpoint signal (DMTCP_SIGCKPT, default SIGUSR2).
    pub fn ckpt_signal(&self) -> i32 {
        match parse_u64(self.carried_value(I_SIGCKPT)) {
            Some(s) if (1..=64).contains(&s) && s != 9 && s != 19 => s as i32,
            _ => libc::SIGUSR2,
        }
    }

    /// DMTCP_LOG_FILE: the file every message is also appended to, if set.
    pub fn log_file(&self) -> Option<&core::ffi::CStr> {
        let entry = self.carried[I_LOG_FILE].as_cstr().to_bytes_with_nul();
        let value = entry.get(CARRIED[I_LOG_FILE].len() + 1..)?;
        core::ffi::CStr::from_bytes_with_nul(value).ok().filter(|v| !v.is_empty())
    }

    /// DMTCP_UNIQUE_CKPT_PLUGIN=1: each checkpoint generation goes into its own subfolder.
    pub fn unique_ckpt(&self) -> bool {
        matches!(self.carried_value(I_UNIQUE_CKPT), b"1" | b"yes" | b"true")
    }

    /// DMTCP_INCREMENTAL=1 (`--incremental`): delta images after a full one (`dirty`).
    /// Whether the contents of open regular files go into the image (DMTCP_CKPT_OPEN_FILES=1,
    /// `--checkpoint-open-files`).
    pub fn ckpt_open_files(&self) -> bool {
        matches!(self.carried_value(I_CKPT_OPEN_FILES), b"1" | b"yes" | b"true")
    }

    /// Whether saved contents may replace a file that changed since the checkpoint
    /// (DMTCP_ALLOW_OVERWRITE_WITH_CKPTED_FILES=1, `--allow-file-overwrite`).
    pub fn allow_file_overwrite(&self) -> bool {
        matches!(self.carried_value(I_ALLOW_OVERWRITE), b"1" | b"yes" | b"true")
    }

    pub fn incremental(&self) -> bool {
        matches!(self.carried_value(I_INCREMENTAL), b"1" | b"yes" | b"true")
    }

    /// DMTCP_INCREMENTAL_CHAIN: the most deltas on one full image (at least 1).
    pub fn incremental_chain(&self) -> u32 {
        match parse_u64(self.carried_value(I_INCREMENTAL_CHAIN)) {
            Some(n) if n >= 1 => core::cmp::min(n, u64::from(dmtcp_proto::image::chain::MAX_POSITION)) as u32,
            _ => INCREMENTAL_CHAIN_DEFAULT,
        }
    }

    /// DMTCP_INCREMENTAL_RATIO: the deltas' bytes, in percent of the base's, that call for a
    /// new full image.
    pub fn incremental_ratio(&self) -> u32 {
        match parse_u64(self.carried_value(I_INCREMENTAL_RATIO)) {
            Some(n) if n >= 1 => core::cmp::min(n, 100_000) as u32,
            _ => INCREMENTAL_RATIO_DEFAULT,
        }
    }

    /// The offset for this library's own architecture.
    pub fn own_dlsym_offset(&self) -> u64 {
        self.dlsym_offset(cfg!(target_pointer_width = "32"))
    }
}

struct Global(UnsafeCell<Config>);
// SAFETY: mutated only by the constructor while the process is single-threaded (see module
// rules); every later access is a read.
unsafe impl Sync for Global {}

static CONFIG: Global = Global(UnsafeCell::new(Config::EMPTY));

pub fn get() -> &'static Config {
    // SAFETY: see `Global`: no writer exists once anyone else can call this.
    unsafe { &*CONFIG.0.get() }
}

/// True while this process is registered with a coordinator: then exec'd programs and forked
/// children join the computation too. Cleared when the coordinator goes away or refused us.
static ACTIVE: AtomicBool = AtomicBool::new(false);

pub fn active() -> bool {
    ACTIVE.load(Ordering::Acquire)
}

pub fn set_active(v: bool) {
    ACTIVE.store(v, Ordering::Release)
}

/// Replaces the settings that a restart may change (`KEY=VALUE` lines from dmtcp_restart).
///
/// # Safety
/// Only from the checkpoint thread after a restart, while every other thread is stopped.
pub unsafe fn apply_restart_info(text: &[u8]) {
    // SAFETY: the caller guarantees no other thread runs.
    let c = unsafe { &mut *CONFIG.0.get() };
    for line in text.split(|&b| b == b'\n') {
        for (i, name) in CARRIED.iter().enumerate() {
            if env_match(line, name.as_bytes()).is_some() {
                c.carried[i].set(line);
            }
        }
        if let Some(v) = env_match(line, env::DLSYM_OFFSET.as_bytes()) {
            c.offset_env = parse_u64(v).unwrap_or(0);
        }
        if let Some(v) = env_match(line, env::DLSYM_OFFSET_M32.as_bytes()) {
            c.offset_env_m32 = parse_u64(v).unwrap_or(0);
        }
    }
    if let Some(p) = parse_u64(c.carried_value(1)) {
        c.coord_port = p as u16;
    }
    c.coord_ip = match c.coord_host_text() {
        b"" | b"localhost" => [127, 0, 0, 1],
        h => parse_ipv4(h).unwrap_or([0, 0, 0, 0]),
    };
    c.shared = map_shared(c.carried_value(I_SHARED));
}

/// Fills the configuration from the startup environment. Returns false when this process is
/// not under dmtcp (no DMTCP_COORD_PORT), having changed nothing.
///
/// # Safety
/// Only from the constructor, while the process is single-threaded.
pub unsafe fn load(envp: CArray, argv0: Option<&[u8]>) -> bool {
    let Some(port_text) = envp.env_value(env::COORD_PORT.as_bytes()) else {
        return false;
    };
    // SAFETY: the caller guarantees no other thread reads CONFIG yet.
    let c = unsafe { &mut *CONFIG.0.get() };
    crate::log::configure(envp.env_value(env::LOG_LEVEL.as_bytes()), envp.env_value(env::QUIET.as_bytes()));
    for (i, name) in CARRIED.iter().enumerate() {
        let name = name.as_bytes();
        if let Some(entry) = envp.iter().map(|e| e.to_bytes()).find(|e| env_match(e, name).is_some()) {
            if !c.carried[i].set(entry) {
                warn!("{} is too long to pass on to exec'd programs", Bytes(name));
            }
        }
    }
    c.coord_port = match parse_u64(port_text) {
        Some(p) if p > 0 && p < 65536 => p as u16,
        _ => 0,
    };
    c.coord_ip = match c.coord_host_text() {
        b"" | b"localhost" => [127, 0, 0, 1],
        h => parse_ipv4(h).unwrap_or([0, 0, 0, 0]),
    };
    if let Some(v) = envp.env_value(env::CHECKPOINT_INTERVAL.as_bytes()) {
        if let Some(n) = parse_u64(v) {
            c.interval = core::cmp::min(n, u32::MAX as u64 - 1) as u32;
        }
    }
    c.offset_env = envp.env_value(env::DLSYM_OFFSET.as_bytes()).and_then(parse_u64).unwrap_or(0);
    c.offset_env_m32 = envp.env_value(env::DLSYM_OFFSET_M32.as_bytes()).and_then(parse_u64).unwrap_or(0);
    c.strict = envp.env_value(env::STRICT.as_bytes()) == Some(b"1");
    c.shared = map_shared(c.carried_value(I_SHARED));
    load_names(c, argv0);
    true
}

fn map_shared(path: &[u8]) -> Option<&'static [u8]> {
    if path.is_empty() {
        return None;
    }
    let mut p = Fixed::<CARRY_LEN>::new();
    p.set(path);
    match crate::sys::map_file_readonly(p.as_cstr(), shared::SHARED_SIZE) {
        Ok(b) if shared::valid(b) => Some(b),
        Ok(_) => {
            trace!("{} is not a shared-data area of this version; ignored", Bytes(path));
            None
        }
        Err(e) => {
            trace!("cannot map the shared-data area {}: {}", Bytes(path), Bytes(crate::sys::strerror(e)));
            None
        }
    }
}

/// Host name and program name (basename of /proc/self/exe, else of argv[0]).
fn load_names(c: &mut Config, argv0: Option<&[u8]>) {
    let mut buf = [0u8; 256];
    let n = crate::sys::hostname(&mut buf);
    c.hostname.set(&buf[..n]);
    let mut exe = [0u8; 4096];
    let name = match crate::sys::readlink(c"/proc/self/exe", &mut exe) {
        Ok(n) if n < exe.len() => crate::cstr::basename(&exe[..n]),
        _ => crate::cstr::basename(argv0.unwrap_or(b"")),
    };
    if !c.progname.set(name) {
        c.progname.set(&name[..255]);
    }
}

/// Parses a dotted-quad IPv4 address.
pub fn parse_ipv4(s: &[u8]) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = s.split(|&c| c == b'.');
    for o in out.iter_mut() {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 {
            return None;
        }
        let v = parse_u64(p)?;
        if v > 255 {
            return None;
        }
        *o = v as u8;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(out)
}

/// Names of our own tools: they talk to the coordinator themselves and must never register as
/// workers (DMTCP refuses to run them under itself and passes their execs straight through).
pub fn is_dmtcp_tool(name: &[u8]) -> bool {
    matches!(
        name,
        b"dmtcp"
            | b"dmtcp_launch"
            | b"dmtcp_command"
            | b"dmtcp_coordinator"
            | b"dmtcp_restart"
            | b"dmtcp_nocheckpoint"
            | b"mtcp_restart"
            | b"mtcp_restart-32"
    )
}

/// Reads and closes the restart-info fd that dmtcp_restart gave us, applying its settings.
pub fn read_restart_info() {
    let fd = dmtcp_proto::env::RESTART_INFO_FD;
    let mut buf = [0u8; 16384];
    let mut n = 0;
    loop {
        match crate::sys::pread(fd, &mut buf[n..], n as u64) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
        if n == buf.len() {
            break;
        }
    }
    crate::sys::close(fd);
    if n == 0 {
        warn!("dmtcp_restart gave no restart information; keeping the old settings");
        return;
    }
    // SAFETY: the other threads are stopped (see config::apply_restart_info).
    unsafe { apply_restart_info(&buf[..n]) };
    crate::dirty::restart_info(&buf[..n]);
    crate::resources::process::restart_info(&buf[..n]);
    apply_env_changes(&buf[..n]);
    pause_if_asked(&buf[..n]);
}

/// The program's environment after DMTCP_ENV changes: two tables used in turn (a later
/// restart reads the current one while it fills the other), each the `NAME=value` strings it
/// set and the NULL-terminated pointer array that `environ` points at. In .bss: no allocation
/// while the threads are stopped.
struct EnvTables {
    strings: [[u8; ENV_STRINGS]; 2],
    ptrs: [[usize; ENV_PTRS]; 2],
    next: usize,
}
const ENV_STRINGS: usize = 8192;
const ENV_PTRS: usize = 2048;

static ENV_TABLES: crate::cell::Exclusive<EnvTables> =
    crate::cell::Exclusive::new(EnvTables { strings: [[0; ENV_STRINGS]; 2], ptrs: [[0; ENV_PTRS]; 2], next: 0 });

/// DMTCP's modify-env: `dmtcp_restart` read a dmtcp_env.txt (or $DMTCP_ENV_FILE) and sends
/// `DMTCP_ENV_SET=NAME=value` and `DMTCP_ENV_UNSET=NAME` lines; the program's environment is
/// changed accordingly before it runs again (the checkpoint thread, the others stopped). Our own
/// settings (`Config`) were copied at start-up and do not change.
fn apply_env_changes(info: &[u8]) {
    let changes = || {
        info.split(|&b| b == b'\n').filter_map(|l| {
            if let Some(v) = env_match(l, env::ENV_SET.as_bytes()) {
                Some((name_of(v), Some(v)))
            } else {
                env_match(l, env::ENV_UNSET.as_bytes()).map(|n| (n, None))
            }
        })
    };
    if changes().next().is_none() {
        return;
    }
    ENV_TABLES.with(|t| {
        let k = t.next;
        t.next = 1 - k;
        let (strings, ptrs) = (&mut t.strings[k], &mut t.ptrs[k]);
        let mut n = 0;
        let mut used = 0;
        let mut full = false;
        let old = crate::sys::environ();
        for e in old.iter() {
            let name = name_of(e.to_bytes());
            if changes().any(|(c, _)| c == name) {
                continue;
            }
            if n + 1 >= ENV_PTRS {
                full = true;
                break;
            }
            ptrs[n] = e.as_ptr() as usize;
            n += 1;
        }
        for (_, v) in changes() {
            let Some(v) = v else { continue };
            if n + 1 >= ENV_PTRS || used + v.len() + 1 > ENV_STRINGS {
                full = true;
                break;
            }
            strings[used..used + v.len()].copy_from_slice(v);
            strings[used + v.len()] = 0;
            ptrs[n] = strings[used..].as_ptr() as usize;
            used += v.len() + 1;
            n += 1;
        }
        ptrs[n] = 0;
        if full {
            warn!("dmtcp_env.txt: too many variables to apply at restart; the environment is unchanged");
            return;
        }
        // usize and pointers have one size on both architectures we build for.
        crate::sys::set_environ(ptrs.as_ptr().cast());
    });
}

/// `NAME` of `NAME=value` (all of it without `=`).
fn name_of(entry: &[u8]) -> &[u8] {
    entry.split(|&b| b == b'=').next().unwrap_or(entry)
}

/// `dmtcp_restart --debug-restart-pause N` (DMTCP_RESTART_PAUSE): the process stops itself
/// with SIGSTOP right after its memory is back, before any resource is restored and before its
/// threads run again, so that a debugger can attach (`gdb -p PID`); SIGCONT (or the debugger's
/// continue) resumes the restart. DMTCP pauses at one of several points by level 1..7; we have
/// one point, before resuming, whatever the level.
fn pause_if_asked(info: &[u8]) {
    let level = info
        .split(|&b| b == b'\n')
        .find_map(|l| env_match(l, env::RESTART_PAUSE.as_bytes()))
        .and_then(parse_u64)
        .unwrap_or(0);
    if level == 0 {
        return;
    }
    let pid = crate::sys::getpid();
    // Said even with DMTCP_QUIET: the user asked for the stop and must know where it is.
    error!("restart paused before resuming (--debug-restart-pause {level}): attach with `gdb -p {pid}`, or resume with `kill -CONT {pid}`");
    // At ourselves, not at the process: a process-directed SIGSTOP wakes one thread of the
    // kernel's choice (the leader, often busy in the restorer's last system calls) and this
    // thread went on through the restart, reported the process running, and the whole group
    // stopped only later, once the leader took the signal. Taken here, on the way out of
    // tgkill, the group stop holds every thread before this one goes on.
    crate::sys::thread::tgkill(pid, crate::threads::gettid(), libc::SIGSTOP);
}
