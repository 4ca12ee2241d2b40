//! `dmtcp doctor`: checks what this machine needs for `dmtcp_launch` and `dmtcp_restart` (CRIU's
//! `criu check`), and for each failing check prints the reason and the fix. Exit code 0 only
//! when every check passes; `--json` prints one object instead of text.
//!
//! The checks, each a real attempt (never a kernel version guess):
//! - user, pid and mount namespaces: `common::ns::probe`, what launch and restart make;
//! - clone3 with `set_tid` inside such a namespace (how a restart gives each process its pid);
//! - PR_SET_MM_MAP inside it (the restorer's brk and mm fields), `ns::probes::mm_map`;
//! - a time namespace inside it (the restart's clocks, `ns::unshare_time`);
//! - the payloads: both restorers execute (the 32-bit one needs the kernel's ia32 support), and
//!   the 32-bit C library that 32-bit programs and our 32-bit library need is there;
//! - soft-dirty page tracking and userfaultfd (lazy restarts will use them);
//! - incremental checkpoints (`--incremental`): what `libdmtcp`'s `dirty` needs, tried on a page
//!   of our own, unprivileged (`ns::probes::incremental`): userfaultfd with UFFD_USER_MODE_ONLY
//!   and UFFD_FEATURE_WP_ASYNC, and the PAGEMAP_SCAN ioctl of /proc/self/pagemap. Optional:
//!   without them `--incremental` writes full images;
//! - the checkpoint folder: exists or can be made, a file can be written and synced in it, and
//!   it has room;
//! - the coordinator: the one at the address launch would use answers, or none is there and
//!   launch can start one on that port.
//!
//! Design: every probe that changes the process (namespaces, prctl) runs in a forked child that
//! reports through its exit status, so the doctor itself stays as it was; the doctor is single-
//! threaded until then (fork's contract in `common::ns`). A probe that depends on another one
//! that failed says so instead of failing for the same reason twice.
use crate::common::cli;
use crate::common::client;
use crate::common::ns;
use crate::common::payloads;
use crate::common::payloads::Arch;
use argh::FromArgs;
use dmtcp_proto::{Cmd, Kind, Msg};
use nix::errno::Errno;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PROGRAM: &str = "dmtcp doctor";
/// Room a checkpoint folder must have (a small computation's image; a big one needs more).
const MIN_FREE: u64 = 64 << 20;

#[derive(FromArgs)]
#[argh(help_triggers("--help"))]
/// Check that this machine can launch and restart computations: dmtcp doctor [options]
struct DoctorArgs {
    /// print one JSON object instead of text
    #[argh(switch, long = "json")]
    json: bool,
    /// the checkpoint folder to check (default: $DMTCP_CHECKPOINT_DIR, else the current folder)
    #[argh(option, long = "ckptdir")]
    ckptdir: Option<PathBuf>,
    /// the coordinator's host (default: $DMTCP_COORD_HOST, else localhost)
    #[argh(option, short = 'h', long = "coord-host")]
    coord_host: Option<String>,
    /// the coordinator's port (default: $DMTCP_COORD_PORT, else 7779)
    #[argh(option, short = 'p', long = "coord-port")]
    coord_port: Option<u16>,
    /// also fail on the optional checks (soft-dirty, userfaultfd, incremental)
    #[argh(switch, long = "strict")]
    strict: bool,
    /// print only the failing checks
    #[argh(switch, short = 'q', long = "quiet")]
    quiet: bool,
    /// print the version and exit
    #[argh(switch, long = "version")]
    version: bool,
}

/// One check's outcome.
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// What was found (passing) or why it failed.
    pub detail: String,
    /// How to fix a failure (empty when it passed).
    pub fix: String,
    /// False for the features dmtcp works without (soft-dirty, userfaultfd, incremental): their
    /// failure is shown, and fails the exit code only with --strict.
    pub required: bool,
}

fn pass(name: &'static str, detail: impl Into<String>) -> Check {
    Check { name, ok: true, detail: detail.into(), fix: String::new(), required: true }
}

fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check { name, ok: false, detail: detail.into(), fix: fix.into(), required: true }
}

fn optional(c: Check) -> Check {
    Check { required: false, ..c }
}

pub fn main(args: &[std::ffi::OsString]) -> i32 {
    let args = match cli::utf8(PROGRAM, args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let args = cli::normalize(&args, &['h', 'p'], &["--ckptdir", "--coord-host", "--coord-port"], false);
    let a: DoctorArgs = match cli::start(PROGRAM, &args, |a: &DoctorArgs| (a.version, false)) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (host, port) = match client::coord_address(a.coord_host.as_deref(), a.coord_port) {
        Ok(hp) => hp,
        Err(e) => {
            eprintln!("{PROGRAM}: {e}; see `{PROGRAM} --help`");
            return cli::EXIT_USAGE;
        }
    };
    let dir = a
        .ckptdir
        .clone()
        .or_else(|| std::env::var_os(dmtcp_proto::env::CHECKPOINT_DIR).filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("."));
    let checks = run_checks(&dir, &host, port);
    let ok = checks.iter().all(|c| c.ok || (!c.required && !a.strict));
    let out = if a.json { to_json(&checks, ok) + "\n" } else { to_text(&checks, ok, a.quiet) };
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::stdout().write_all(out.as_bytes());
    if ok {
        0
    } else {
        cli::EXIT_FAILURE
    }
}

/// Every check, in order.
pub fn run_checks(dir: &Path, host: &str, port: u16) -> Vec<Check> {
    let mut v = Vec::new();
    let ns_ok = {
        let c = user_namespaces();
        let ok = c.ok;
        v.push(c);
        ok
    };
    v.push(in_namespace(
        "clone3-set-tid",
        ns_ok,
        set_tid_probe,
        "a process gets the pid of its choice (clone3 set_tid)",
    ));
    v.push(in_namespace(
        "pr-set-mm-map",
        ns_ok,
        mm_map_probe,
        "the restorer can give the kernel brk and mm fields (PR_SET_MM_MAP)",
    ));
    v.push(in_namespace(
        "time-namespace",
        ns_ok,
        time_ns_probe,
        "a restart can continue the monotonic and boottime clocks",
    ));
    v.extend(payload_checks());
    v.push(optional(soft_dirty()));
    v.push(optional(userfaultfd()));
    v.push(optional(incremental()));
    v.push(ckpt_folder(dir));
    v.push(coordinator(host, port));
    v
}

// ---- namespaces ---------------------------------------------------------------------------

fn read_sysctl(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// Why unprivileged user namespaces are refused here, and the fix, from the knobs distributions
/// use; the probe's errno when none explains it.
fn userns_fix(e: &str) -> String {
    if read_sysctl("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return "user namespaces are switched off (user.max_user_namespaces = 0): \
                run `sysctl -w user.max_user_namespaces=15000` as root (and set it in /etc/sysctl.d/ to keep it)"
            .into();
    }
    if read_sysctl("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return "unprivileged user namespaces are off (kernel.unprivileged_userns_clone = 0): \
                run `sysctl -w kernel.unprivileged_userns_clone=1` as root"
            .into();
    }
    if read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return "AppArmor restricts unprivileged user namespaces: run \
                `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` as root, or give dmtcp an AppArmor \
                profile that allows `userns`"
            .into();
    }
    format!(
        "{e}: in a container, allow the unshare and clone3 system calls and user namespaces (Docker: \
         --security-opt seccomp=unconfined); without them set DMTCP_PIDNS=0 (restarted processes then get new pids)"
    )
}

fn user_namespaces() -> Check {
    const NAME: &str = "user-namespaces";
    match ns::probe() {
        Ok(()) => pass(NAME, "user, pid and mount namespaces can be made, with /proc mounted inside"),
        Err(e) => {
            let why = e.to_string();
            fail(NAME, why.clone(), userns_fix(&why))
        }
    }
}

/// Exit codes of the probe children beyond errno values.
const CODE_MAPS: i32 = 250;
const CODE_WRONG: i32 = 251;
const CODE_WAIT: i32 = 252;

/// Runs `probe` in a child that first enters a fresh user + mount namespace and whose own child
/// is pid 1 of a new pid namespace; `probe` runs in that pid 1. Returns its exit code.
fn run_in_namespace(probe: fn() -> i32) -> Result<i32, String> {
    let ids = ns::Ids::current();
    let code = |status| match status {
        Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => c,
        _ => CODE_WAIT,
    };
    match ns::fork().map_err(|e| format!("fork: {}", e.desc()))? {
        0 => {
            let c = match ns::unshare_all(ids) {
                Err(ns::NsError::Unshare(e)) => e as i32,
                Err(_) => CODE_MAPS,
                Ok(()) => match ns::fork() {
                    Err(e) => e as i32,
                    Ok(0) => ns::child_exit(probe()),
                    Ok(pid) => code(nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None)),
                },
            };
            ns::child_exit(c)
        }
        pid => Ok(code(nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None))),
    }
}

fn in_namespace(name: &'static str, ns_ok: bool, probe: fn() -> i32, what: &str) -> Check {
    if !ns_ok {
        return fail(name, "not tried: it needs the namespaces of the first check", "fix user-namespaces first");
    }
    match run_in_namespace(probe) {
        Ok(0) => pass(name, what),
        Ok(CODE_WRONG) => fail(
            name,
            "the kernel created the process with another pid than asked",
            "use Linux 5.5 or later (clone3 with set_tid)",
        ),
        Ok(c) => {
            let why = match c {
                CODE_MAPS => "cannot write the user namespace's id maps".to_string(),
                CODE_WAIT => "the probe ended abnormally".to_string(),
                e => Errno::from_raw(e).desc().to_string(),
            };
            let fix = match name {
                "clone3-set-tid" => {
                    "use Linux 5.5 or later, and allow clone3 in seccomp filters (containers); without it set \
                     DMTCP_PIDNS=0 (restarted processes then get new pids)"
                }
                "pr-set-mm-map" => "use a kernel built with CONFIG_CHECKPOINT_RESTORE (Linux 3.18 or later)",
                _ => "use Linux 5.6 or later built with CONFIG_TIME_NS; without it a restart's monotonic clock jumps",
            };
            fail(name, why, fix)
        }
        Err(e) => fail(name, e, "try again: the machine could not fork"),
    }
}

fn set_tid_probe() -> i32 {
    const WANTED: libc::pid_t = 300;
    match ns::fork_with_pid(WANTED) {
        Ok(0) => ns::child_exit(0),
        Ok(pid) => {
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            if pid == WANTED {
                0
            } else {
                CODE_WRONG
            }
        }
        Err(e) => e as i32,
    }
}

fn mm_map_probe() -> i32 {
    match ns::probes::mm_map() {
        Ok(()) => 0,
        Err(e) => e as i32,
    }
}

fn time_ns_probe() -> i32 {
    match ns::unshare_time("monotonic 0 0\nboottime 0 0\n") {
        Ok(()) => 0,
        Err(_) => Errno::last() as i32,
    }
}

// ---- payloads -----------------------------------------------------------------------------

fn payload_checks() -> Vec<Check> {
    let tree = match payloads::tree() {
        Ok(t) => t,
        Err(e) => {
            return vec![fail(
                "payloads",
                e.to_string(),
                "make the folder next to the binary writable, or run `dmtcp self-install --prefix P`",
            )]
        }
    };
    let mut v = Vec::new();
    for arch in [Arch::X86_64, Arch::I686] {
        let name = if arch == Arch::I686 { "restorer-32bit" } else { "restorer-64bit" };
        let r = tree.restorer(arch);
        // Run without arguments: it prints its usage and exits; what matters is that it runs.
        let status = std::process::Command::new(&r)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        v.push(match status {
            Ok(s) if s.code().is_some() => pass(name, format!("{} runs", r.display())),
            Ok(s) => fail(name, format!("{} ended with {s}", r.display()), "reinstall with `dmtcp self-install`"),
            Err(e) if e.raw_os_error() == Some(libc::ENOEXEC) => fail(
                name,
                format!("the kernel cannot run {} ({e})", r.display()),
                "boot a kernel with 32-bit support (CONFIG_IA32_EMULATION, and not ia32_emulation=off); \
                 needed only for 32-bit programs",
            ),
            Err(e) => fail(name, format!("cannot run {}: {e}", r.display()), "reinstall with `dmtcp self-install`"),
        });
    }
    // The 32-bit C library: 32-bit programs, and our 32-bit library inside them, need it.
    const LD32: [&str; 3] = ["/lib/ld-linux.so.2", "/lib32/ld-linux.so.2", "/usr/lib32/ld-linux.so.2"];
    match LD32.iter().find(|p| Path::new(p).exists()) {
        Some(p) => v.push(pass("libc-32bit", format!("the 32-bit C library is there ({p})"))),
        None => v.push(fail(
            "libc-32bit",
            "no 32-bit C library (/lib/ld-linux.so.2)",
            "install it (Debian/Ubuntu: apt-get install libc6-i386; Fedora: dnf install glibc.i686); \
             needed only for 32-bit programs",
        )),
    }
    v
}

// ---- memory tracking ----------------------------------------------------------------------

fn soft_dirty() -> Check {
    const NAME: &str = "soft-dirty";
    const FIX: &str = "use a kernel built with CONFIG_MEM_SOFT_DIRTY (x86_64: the default of most distributions)";
    // Clear the bits, write a page, and look for its bit in pagemap (bit 55).
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "4") {
        return fail(NAME, format!("cannot clear soft-dirty bits (/proc/self/clear_refs): {e}"), FIX);
    }
    let mut page = vec![0u8; 2 * 4096];
    let addr = (page.as_mut_ptr() as usize + 4095) & !4095;
    let idx = addr - page.as_ptr() as usize;
    page[idx] = 1;
    std::hint::black_box(&page);
    let entry = (|| -> std::io::Result<u64> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open("/proc/self/pagemap")?;
        f.seek(SeekFrom::Start((addr / 4096 * 8) as u64))?;
        let mut b = [0u8; 8];
        f.read_exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    })();
    match entry {
        Ok(e) if e & (1 << 55) != 0 => pass(NAME, "written pages are marked soft-dirty"),
        Ok(_) => fail(NAME, "a written page is not marked soft-dirty", FIX),
        Err(e) => fail(NAME, format!("cannot read /proc/self/pagemap: {e}"), FIX),
    }
}

fn userfaultfd() -> Check {
    const NAME: &str = "userfaultfd";
    match ns::probes::userfaultfd() {
        Ok(false) => pass(NAME, "userfaultfd can be made"),
        Ok(true) => pass(NAME, "userfaultfd can be made for user-mode faults (what lazy restarts need)"),
        Err(e) => fail(
            NAME,
            format!("userfaultfd: {}", e.desc()),
            if e == Errno::ENOSYS {
                "use a kernel built with CONFIG_USERFAULTFD"
            } else {
                "use Linux 5.11 or later (user-mode-only userfaultfd), or run `sysctl -w vm.unprivileged_userfaultfd=1` \
                 as root"
            },
        ),
    }
}

fn incremental() -> Check {
    use ns::probes::IncrementalStep as Step;
    const NAME: &str = "incremental";
    const THEN: &str = "; `--incremental` writes full images here";
    let Err(gap) = ns::probes::incremental() else {
        return pass(
            NAME,
            "incremental checkpoints work: userfaultfd (user-mode only) with asynchronous write-protect \
             (UFFD_FEATURE_WP_ASYNC) and PAGEMAP_SCAN on /proc/self/pagemap",
        );
    };
    let errno = gap.errno.map_or_else(String::new, |e| format!(": {}", e.desc()));
    let (what, fix) = match gap.what {
        Step::Userfaultfd => (
            format!("no userfaultfd with UFFD_USER_MODE_ONLY{errno}"),
            if gap.errno == Some(Errno::ENOSYS) {
                "use a kernel built with CONFIG_USERFAULTFD (Linux 6.7 or later); in a container, allow the \
                 userfaultfd system call"
            } else {
                "use Linux 6.7 or later; in a container, allow the userfaultfd system call (Docker: \
                 --security-opt seccomp=unconfined)"
            },
        ),
        Step::WpAsync => (
            format!("userfaultfd has no asynchronous write-protect (UFFD_FEATURE_WP_ASYNC){errno}"),
            "use Linux 6.7 or later",
        ),
        Step::WriteProtect => (
            format!("userfaultfd cannot write-protect an anonymous page{errno}"),
            "use Linux 6.7 or later built with CONFIG_PTE_MARKER_UFFD_WP",
        ),
        Step::PagemapScan => (
            if gap.errno.is_some() {
                format!("no PAGEMAP_SCAN ioctl on /proc/self/pagemap{errno}")
            } else {
                "PAGEMAP_SCAN did not report a page written since it was write-protected".into()
            },
            "use Linux 6.7 or later",
        ),
    };
    fail(NAME, what + THEN, fix)
}

// ---- checkpoint folder --------------------------------------------------------------------

fn ckpt_folder(dir: &Path) -> Check {
    const NAME: &str = "checkpoint-folder";
    let shown = dir.display();
    if dir.exists() && !dir.is_dir() {
        return fail(NAME, format!("{shown} is not a folder"), "give a folder with --ckptdir or DMTCP_CHECKPOINT_DIR");
    }
    if !dir.exists() {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return fail(
                NAME,
                format!("{shown} does not exist and cannot be made: {e}"),
                "make it, or choose another folder with --ckptdir or DMTCP_CHECKPOINT_DIR",
            );
        }
    }
    let probe = dir.join(format!(".dmtcp-doctor-{}", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&probe)?;
        f.write_all(&[0u8; 65536])?;
        f.sync_all()
    })();
    let _ = std::fs::remove_file(&probe);
    if let Err(e) = written {
        return fail(
            NAME,
            format!("cannot write a file in {shown}: {e}"),
            "give yourself write permission there (chmod u+w), or choose another folder with --ckptdir",
        );
    }
    match nix::sys::statvfs::statvfs(dir) {
        Ok(s) => {
            let free = s.blocks_available() * s.fragment_size();
            let mib = free >> 20;
            if free < MIN_FREE {
                fail(
                    NAME,
                    format!("{shown} has only {mib} MiB free"),
                    "free space there (an image is about the size of the program's memory), or choose another folder with --ckptdir",
                )
            } else {
                pass(NAME, format!("{shown} is writable, {mib} MiB free"))
            }
        }
        Err(e) => fail(
            NAME,
            format!("cannot tell the free space of {shown}: {}", e.desc()),
            "choose another folder with --ckptdir",
        ),
    }
}

// ---- coordinator --------------------------------------------------------------------------

fn coordinator(host: &str, port: u16) -> Check {
    const NAME: &str = "coordinator";
    let at = format!("{host}:{port}");
    let mut s = match client::connect(host, port, Duration::from_secs(3)) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            // Nobody there: launch starts one on this port if it may listen on it.
            let local = client::resolve(host, port).map(|a| a.iter().all(|a| a.ip().is_loopback())).unwrap_or(false);
            if !local {
                return fail(
                    NAME,
                    format!("no coordinator at {at} (connection refused)"),
                    format!("start one there with `dmtcp_coordinator -p {port}`, or give the right --coord-host/--coord-port"),
                );
            }
            return match std::net::TcpListener::bind(("127.0.0.1", port)) {
                Ok(_) => pass(NAME, format!("no coordinator at {at}; dmtcp_launch can start one there")),
                Err(e) => fail(
                    NAME,
                    format!("no coordinator answers at {at} and the port cannot be listened on: {e}"),
                    "choose another port with --coord-port or DMTCP_COORD_PORT",
                ),
            };
        }
        Err(e) => return fail(
            NAME,
            format!("cannot reach {at}: {e}"),
            "check the host and port (--coord-host, --coord-port, DMTCP_COORD_HOST, DMTCP_COORD_PORT) and the firewall",
        ),
    };
    let mut m = Msg::new(Kind::UserCmd);
    m.cmd = Cmd::Status as u32;
    m.interval = dmtcp_proto::INTERVAL_UNCHANGED;
    m.pid = std::process::id() as i32;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let reply = client::send(&mut s, &m, &[]).and_then(|()| client::recv(&mut s));
    match reply {
        Ok((r, _)) if r.kind == Kind::UserCmdResult => pass(
            NAME,
            format!(
                "the coordinator at {at} answers: {} process{}, {}",
                r.num_peers,
                if r.num_peers == 1 { "" } else { "es" },
                if r.running != 0 { "running" } else { "not running" }
            ),
        ),
        Ok((r, extra)) if r.kind == Kind::RejectNotOwner => fail(
            NAME,
            format!("the coordinator at {at} serves another user: {}", String::from_utf8_lossy(&extra)),
            "use your own coordinator on another port (--coord-port)",
        ),
        Ok((r, _)) => fail(
            NAME,
            format!("unexpected answer {:?} from {at}", r.kind),
            "check that a dmtcp coordinator of this version listens there",
        ),
        Err(e) => fail(
            NAME,
            format!("{at} does not answer as a dmtcp coordinator: {e}"),
            "another program holds that port: choose another one with --coord-port or DMTCP_COORD_PORT",
        ),
    }
}

// ---- output -------------------------------------------------------------------------------

fn to_text(checks: &[Check], ok: bool, quiet: bool) -> String {
    let mut s = String::new();
    for c in checks {
        if c.ok && quiet {
            continue;
        }
        let mark = match (c.ok, c.required) {
            (true, _) => "ok",
            (false, true) => "FAIL",
            (false, false) => "warn",
        };
        let _ = writeln!(s, "{mark:<5} {:<18} {}", c.name, c.detail);
        if !c.ok {
            let _ = writeln!(s, "{:<24} fix: {}", "", c.fix);
        }
    }
    let failed = checks.iter().filter(|c| !c.ok && c.required).count();
    let missing: Vec<&str> = checks.iter().filter(|c| !c.ok && !c.required).map(|c| c.name).collect();
    let later = if missing.is_empty() {
        String::new()
    } else {
        format!("; not available for later features: {}", missing.join(", "))
    };
    if ok {
        if !quiet || !later.is_empty() {
            let _ = writeln!(s, "launch and restart will work here: every check they need passed{later}");
        }
    } else if failed == 0 {
        let _ = writeln!(s, "--strict: {} check(s) of later features failed", missing.len());
    } else {
        let _ = writeln!(s, "{failed} of {} checks failed{later}", checks.len());
    }
    s
}

fn js(s: &str) -> String {
    let mut o = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn to_json(checks: &[Check], ok: bool) -> String {
    let list: Vec<String> = checks
        .iter()
        .map(|c| {
            format!(
                "{{\"name\":{},\"ok\":{},\"required\":{},\"detail\":{},\"fix\":{}}}",
                js(c.name),
                c.ok,
                c.required,
                js(&c.detail),
                if c.ok { "null".to_string() } else { js(&c.fix) }
            )
        })
        .collect();
    format!("{{\"ok\":{ok},\"checks\":[{}]}}", list.join(","))
}
