//! What `dmtcp_launch` and `dmtcp_restart` both do before a computation runs: find or start the
//! coordinator (`Mode`), write the computation's shared-data area, and the failure type the two
//! roles report with (exit code and message).
use crate::common::cli::{EXIT_FAILURE, EXIT_USAGE};
use crate::common::client;
use crate::common::dlsym;
use crate::common::payloads::{self, Arch};
use crate::common::shared_area;
use dmtcp_proto::{Cmd, Kind, Msg};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How to find the coordinator: join one, start a new one, or either (DMTCP's three modes).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Join,
    New,
    Any,
}

impl Mode {
    /// The mode the switches `--join-coordinator`, `--new-coordinator`, `--any-coordinator`
    /// name (none: Any); a usage error of `program` when they contradict each other.
    pub fn from_switches(program: &str, join: bool, new: bool, any: bool) -> Result<Mode, Fail> {
        match (join, new, any) {
            (false, false, _) => Ok(Mode::Any),
            (true, false, false) => Ok(Mode::Join),
            (false, true, false) => Ok(Mode::New),
            _ => Err(Fail::usage(program, "choose one of --join-coordinator, --new-coordinator, --any-coordinator")),
        }
    }
}

/// How a role that runs a computation (launch, restart) fails: its exit code and a message
/// that names what is wrong. The role's `main` logs the message and exits with the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail {
    pub code: i32,
    pub msg: String,
}

impl Fail {
    /// A usage error (exit 1) of `program`, pointing at its help.
    pub fn usage(program: &str, msg: impl fmt::Display) -> Fail {
        Fail { code: EXIT_USAGE, msg: format!("{msg}; see `{program} --help`") }
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Fail {}

/// A runtime failure (exit 2).
pub fn fail(msg: impl fmt::Display) -> Fail {
    Fail { code: EXIT_FAILURE, msg: msg.to_string() }
}

/// Absolute path of the running `dmtcp` binary (DMTCP_BIN).
pub fn own_binary() -> Result<PathBuf, Fail> {
    std::env::current_exe().map_err(|e| fail(format!("cannot find own binary: {e}")))
}

/// Computes the dlsym offsets of both architectures and writes the computation's shared-data
/// area; returns its path and the offsets.
pub fn write_shared_area(
    tree: &payloads::Tree,
    host: &str,
    port: u16,
    ckptdir: &Path,
) -> Result<(PathBuf, Option<i64>, Option<i64>), Fail> {
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
    Ok((shared, off64, off32))
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

pub fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf())
    }
}

/// What answers at host:port.
enum Probe {
    Coordinator,
    /// Another user's coordinator: it refused us.
    Foreign(String),
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
        Ok((r, text)) if r.kind == Kind::RejectNotOwner => Probe::Foreign(String::from_utf8_lossy(&text).into_owned()),
        Ok((r, _)) => Probe::Stranger(format!("unexpected reply {:?}", r.kind)),
        Err(e) => Probe::Stranger(e.to_string()),
    }
}

fn is_local(host: &str) -> bool {
    client::resolve(host, 0).map(|v| v.iter().all(|a| a.ip().is_loopback())).unwrap_or(false)
}

/// Returns the port of the coordinator the program will join, starting one if the mode says so.
pub fn coordinator(mode: Mode, host: &str, port: u16, interval: Option<u32>, ckptdir: &Path) -> Result<u16, Fail> {
    if mode != Mode::New && port != 0 {
        match probe(host, port) {
            Probe::Coordinator => return Ok(port),
            Probe::Stranger(why) => {
                return Err(fail(format!("{host}:{port} answers but is not a dmtcp coordinator ({why})")))
            }
            Probe::Foreign(why) => {
                return Err(fail(format!(
                    "the coordinator at {host}:{port} is another user's ({why}); choose another port with -p"
                )))
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
    match start_coordinator(port, interval, ckptdir) {
        Ok(p) => Ok(p),
        Err(e) if mode == Mode::Any => {
            // Another launch may have started one on this port in the meantime.
            match probe(host, port) {
                Probe::Coordinator => Ok(port),
                _ => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Starts a background coordinator that exits with its last client, returns its port.
fn start_coordinator(port: u16, interval: Option<u32>, ckptdir: &Path) -> Result<u16, Fail> {
    let dir = shared_area::tmpdir().map_err(fail)?;
    let port_file = payloads::temp_name(&dir.join("coordinator.port"));
    let exe = own_binary()?;
    let mut cmd = Command::new(exe);
    cmd.arg("coordinator")
        .args(["--daemon", "--exit-on-last", "--quiet"])
        .args(["--coord-port", &port.to_string()])
        .arg("--port-file")
        .arg(&port_file)
        .arg("--ckptdir")
        .arg(ckptdir);
    if let Some(i) = interval {
        cmd.args(["--interval", &i.to_string()]);
    }
    let out = cmd.output().map_err(|e| fail(format!("cannot start a coordinator: {e}")))?;
    let text = std::fs::read_to_string(&port_file);
    let _ = std::fs::remove_file(&port_file);
    if !out.status.success() {
        return Err(fail(format!(
            "cannot start a coordinator on port {port}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    text.ok().and_then(|t| t.trim().parse().ok()).ok_or_else(|| fail("the new coordinator did not report its port"))
}
