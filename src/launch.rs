//! `dmtcp_launch [options] program [args...]`: runs a program under checkpoint control.
//!
//! It finds (or starts) the coordinator, unpacks the payloads, classifies the program with goblin
//! to choose the preload library of its architecture, computes the dlsym offsets of both
//! architectures, writes the computation's shared-data area, and execs the program with our
//! library first in LD_PRELOAD (the user's own LD_PRELOAD kept after it; the library hides ours
//! from the program again).
use crate::cli::{self, EXIT_FAILURE, EXIT_USAGE};
use crate::client;
use crate::dlsym;
use crate::payloads::{self, Arch};
use crate::shared_area;
use argh::FromArgs;
use dmtcp_proto::env as ev;
use dmtcp_proto::{Cmd, Kind, Msg};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[derive(FromArgs)]
#[argh(help_triggers("--help"))]
/// Run a program under checkpoint control: dmtcp_launch [options] program [args...]
struct LaunchArgs {
    /// coordinator host (env DMTCP_COORD_HOST, default 127.0.0.1)
    #[argh(option, short = 'h', long = "coord-host")]
    coord_host: Option<String>,
    /// coordinator port (env DMTCP_COORD_PORT, default 7779; 0 with --new-coordinator picks a free one)
    #[argh(option, short = 'p', long = "coord-port")]
    coord_port: Option<u16>,
    /// write the coordinator's port to this file
    #[argh(option, long = "port-file")]
    port_file: Option<PathBuf>,
    /// join the coordinator at host:port; fail if there is none
    #[argh(switch, short = 'j', long = "join-coordinator")]
    join: bool,
    /// start a new coordinator on the port; fail if one is there
    #[argh(switch, long = "new-coordinator")]
    new: bool,
    /// join the coordinator at host:port, or start one when there is none (the default)
    #[argh(switch, long = "any-coordinator")]
    any: bool,
    /// checkpoint every N seconds (env DMTCP_CHECKPOINT_INTERVAL)
    #[argh(option, short = 'i', long = "interval")]
    interval: Option<u32>,
    /// folder for checkpoint images (env DMTCP_CHECKPOINT_DIR, default the current folder)
    #[argh(option, short = 'c', long = "ckptdir")]
    ckptdir: Option<PathBuf>,
    /// compress images (the default; env DMTCP_GZIP=1)
    #[argh(switch, long = "gzip")]
    gzip: bool,
    /// do not compress images (env DMTCP_GZIP=0)
    #[argh(switch, long = "no-gzip")]
    no_gzip: bool,
    /// signal used to stop threads at checkpoint (env DMTCP_SIGCKPT, default 12 = SIGUSR2)
    #[argh(option, long = "ckpt-signal")]
    ckpt_signal: Option<i32>,
    /// print only errors
    #[argh(switch, short = 'q', long = "quiet")]
    quiet: bool,
    /// print the version and exit
    #[argh(switch, long = "version")]
    version: bool,
    /// the program to run and its arguments
    #[argh(positional, greedy)]
    command: Vec<String>,
}

const PROGRAM: &str = "dmtcp_launch";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Join,
    New,
    Any,
}

pub fn main(args: &[String]) -> i32 {
    // Options end at the first word that is not an option or an option's value: the program.
    let args = cli::normalize(
        args,
        &['p', 'i', 'h', 'c'],
        &["--coord-host", "--coord-port", "--port-file", "--interval", "--ckptdir", "--ckpt-signal"],
        true,
    );
    let a: LaunchArgs = match cli::parse(PROGRAM, &args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if a.version {
        println!("{}", cli::version_line(PROGRAM));
        return 0;
    }
    crate::logging::init(PROGRAM, a.quiet);
    match run(a) {
        Ok(never) => match never {},
        Err((code, msg)) => {
            log::error!("{msg}");
            code
        }
    }
}

enum Never {}

type Fail = (i32, String);

fn usage_err(msg: impl Into<String>) -> Fail {
    (EXIT_USAGE, format!("{}; see `{PROGRAM} --help`", msg.into()))
}

fn fail(msg: impl Into<String>) -> Fail {
    (EXIT_FAILURE, msg.into())
}

fn run(a: LaunchArgs) -> Result<Never, Fail> {
    let mode = match (a.join, a.new, a.any) {
        (false, false, _) => Mode::Any,
        (true, false, false) => Mode::Join,
        (false, true, false) => Mode::New,
        _ => return Err(usage_err("choose one of --join-coordinator, --new-coordinator, --any-coordinator")),
    };
    if a.gzip && a.no_gzip {
        return Err(usage_err("--gzip and --no-gzip contradict each other"));
    }
    if let Some(s) = a.ckpt_signal {
        if !(1..=64).contains(&s) || s == libc::SIGKILL || s == libc::SIGSTOP {
            return Err(usage_err(format!("--ckpt-signal {s} is not a signal that can be caught")));
        }
    }
    let Some(program) = a.command.first() else {
        return Err(usage_err("no program to launch"));
    };
    let path = find_program(program)?;
    let info = dlsym::program_info(&path).map_err(fail)?;
    let meta = std::fs::metadata(&path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
    let setid = meta.permissions().mode() & 0o6000 != 0;
    if info.is_static {
        log::warn!(
            "{} is statically linked: it cannot load libdmtcp.so, so it runs outside checkpoint control",
            path.display()
        );
    } else if setid {
        log::warn!(
            "{} is setuid/setgid: the loader ignores LD_PRELOAD for it, so it runs outside checkpoint control",
            path.display()
        );
    }
    if let Some(interp) = &info.interpreter {
        log::warn!(
            "{} is a script: checkpoint control applies to its interpreter {}",
            path.display(),
            interp.display()
        );
    }

    let (host, port) = client::coord_address(a.coord_host.as_deref(), a.coord_port).map_err(usage_err)?;
    let ckptdir = match a.ckptdir.clone().or_else(|| std::env::var_os(ev::CHECKPOINT_DIR).filter(|v| !v.is_empty()).map(PathBuf::from)) {
        Some(d) => absolute(&d),
        None => std::env::current_dir().map_err(|e| fail(format!("current folder: {e}")))?,
    };
    let port = coordinator(mode, &host, port, &a, &ckptdir)?;
    if let Some(f) = &a.port_file {
        payloads::write_atomic(f, format!("{port}\n").as_bytes(), 0o644)
            .map_err(|e| fail(format!("--port-file {}: {e}", f.display())))?;
    }

    let tree = payloads::tree().map_err(|e| fail(e.to_string()))?;
    let lib64 = tree.preload_lib(Arch::X86_64);
    let lib32 = tree.preload_lib(Arch::I686);
    let off64 = offset_or_warn(Arch::X86_64, &lib64);
    let off32 = offset_or_warn(Arch::I686, &lib32);
    let shared = shared_area::create(
        &dmtcp_proto::shared::SharedInit {
            dlsym_offset: off64.unwrap_or(0) as u64,
            dlsym_offset_m32: off32.unwrap_or(0) as u64,
            coord_timestamp: 0,
            coord_port: u32::from(port),
            coord_host: host.as_bytes(),
            hijack_libs: lib64.as_os_str().as_encoded_bytes(),
            hijack_libs_m32: lib32.as_os_str().as_encoded_bytes(),
            ckpt_dir: ckptdir.as_os_str().as_encoded_bytes(),
        },
        port,
    )
    .map_err(|e| fail(format!("cannot write the shared-data area: {e}")))?;

    let mut cmd = Command::new(&path);
    cmd.arg0(program).args(&a.command[1..]);
    let user_preload = std::env::var("LD_PRELOAD").ok().filter(|v| !v.is_empty());
    if !info.is_static && !setid {
        let ours = tree.preload_lib(info.arch);
        let mut preload = ours.display().to_string();
        if let Some(u) = &user_preload {
            preload.push(':');
            preload.push_str(u);
            cmd.env(ev::ORIG_LD_PRELOAD, u);
        } else {
            cmd.env_remove(ev::ORIG_LD_PRELOAD);
        }
        cmd.env("LD_PRELOAD", preload);
    }
    cmd.env(ev::HIJACK_LIBS, &lib64)
        .env(ev::HIJACK_LIBS_M32, &lib32)
        .env(ev::COORD_HOST, &host)
        .env(ev::COORD_PORT, port.to_string())
        .env(ev::SHARED_AREA, &shared)
        .env(ev::CHECKPOINT_DIR, &ckptdir);
    match (off64, off32) {
        (Some(o), _) => cmd.env(ev::DLSYM_OFFSET, o.to_string()),
        (None, _) => cmd.env_remove(ev::DLSYM_OFFSET),
    };
    match off32 {
        Some(o) => cmd.env(ev::DLSYM_OFFSET_M32, o.to_string()),
        None => cmd.env_remove(ev::DLSYM_OFFSET_M32),
    };
    if let Some(i) = a.interval {
        cmd.env(ev::CHECKPOINT_INTERVAL, i.to_string());
    }
    if a.gzip {
        cmd.env(ev::GZIP, "1");
    } else if a.no_gzip {
        cmd.env(ev::GZIP, "0");
    }
    if let Some(s) = a.ckpt_signal {
        cmd.env(ev::SIGCKPT, s.to_string());
    }
    if a.quiet {
        cmd.env(ev::QUIET, "1");
    }
    log::debug!("exec {} with {}", path.display(), tree.preload_lib(info.arch).display());
    let err = cmd.exec();
    Err(fail(format!("cannot run {}: {err}", path.display())))
}

fn offset_or_warn(arch: Arch, sample: &Path) -> Option<i64> {
    match dlsym::offset_for(arch, sample) {
        Ok(o) => Some(o),
        Err(e) => {
            // Programs of that architecture cannot run here anyway; say so once, quietly.
            log::debug!("no dlsym offset for {}: {e}", arch.name());
            None
        }
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf())
    }
}

/// Finds `program` like execvp: a name with a slash as is, otherwise along PATH.
fn find_program(program: &str) -> Result<PathBuf, Fail> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return if p.is_file() { Ok(p) } else { Err(fail(format!("{program}: no such program"))) };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    for dir in std::env::split_paths(&path) {
        let cand = dir.join(program);
        if let Ok(m) = std::fs::metadata(&cand) {
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Ok(cand);
            }
        }
    }
    Err(fail(format!("{program}: command not found in PATH")))
}

/// What answers at host:port.
enum Probe {
    Coordinator,
    Nobody(String),
    Stranger(String),
}

fn probe(host: &str, port: u16) -> Probe {
    let mut s = match client::connect(host, port, Duration::from_secs(3)) {
        Ok(s) => s,
        Err(e) => return Probe::Nobody(e.to_string()),
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut m = Msg::new(Kind::UserCmd);
    m.cmd = Cmd::Status as u32;
    match client::send(&mut s, &m, &[]).and_then(|_| client::recv(&mut s)) {
        Ok((r, _)) if r.kind == Kind::UserCmdResult => Probe::Coordinator,
        Ok((r, _)) => Probe::Stranger(format!("unexpected reply {:?}", r.kind)),
        Err(e) => Probe::Stranger(e.to_string()),
    }
}

fn is_local(host: &str) -> bool {
    client::resolve(host, 0).map(|v| v.iter().all(|a| a.ip().is_loopback())).unwrap_or(false)
}

/// Returns the port of the coordinator the program will join, starting one if the mode says so.
fn coordinator(mode: Mode, host: &str, port: u16, a: &LaunchArgs, ckptdir: &Path) -> Result<u16, Fail> {
    if mode != Mode::New && port != 0 {
        match probe(host, port) {
            Probe::Coordinator => return Ok(port),
            Probe::Stranger(why) => {
                return Err(fail(format!("{host}:{port} answers but is not a dmtcp coordinator ({why})")))
            }
            Probe::Nobody(why) if mode == Mode::Join => {
                return Err(fail(format!(
                    "no coordinator at {host}:{port} ({why}); start one with `dmtcp_coordinator`, or launch with --new-coordinator"
                )))
            }
            Probe::Nobody(_) => {}
        }
    }
    if !is_local(host) {
        return Err(fail(format!("cannot start a coordinator on the remote host {host}; start it there first")));
    }
    match start_coordinator(port, a, ckptdir) {
        Ok(p) => Ok(p),
        Err(e) if mode == Mode::Any => {
            // Another launch may have started one on this port in the meantime.
            match probe(host, port) {
                Probe::Coordinator => Ok(port),
                _ => Err(fail(e)),
            }
        }
        Err(e) => Err(fail(e)),
    }
}

/// Starts a background coordinator that exits with its last client, returns its port.
fn start_coordinator(port: u16, a: &LaunchArgs, ckptdir: &Path) -> Result<u16, String> {
    let dir = shared_area::tmpdir().map_err(|e| e.to_string())?;
    let port_file = payloads::temp_name(&dir.join("coordinator.port"));
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own binary: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("coordinator")
        .args(["--daemon", "--exit-on-last", "--quiet"])
        .args(["--coord-port", &port.to_string()])
        .arg("--port-file")
        .arg(&port_file)
        .arg("--ckptdir")
        .arg(ckptdir);
    if let Some(i) = a.interval {
        cmd.args(["--interval", &i.to_string()]);
    }
    let out = cmd.output().map_err(|e| format!("cannot start a coordinator: {e}"))?;
    let text = std::fs::read_to_string(&port_file);
    let _ = std::fs::remove_file(&port_file);
    if !out.status.success() {
        return Err(format!(
            "cannot start a coordinator on port {port}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    text.ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| "the new coordinator did not report its port".to_string())
}
