//! `dmtcp_launch [options] program [args...]`: runs a program under checkpoint control.
//!
//! It finds (or starts) the coordinator, unpacks the payloads, classifies the program with goblin
//! to choose the preload library of its architecture, computes the dlsym offsets of both
//! architectures, writes the computation's shared-data area, and execs the program with our
//! library first in LD_PRELOAD (the user's own LD_PRELOAD kept after it; the library hides ours
//! from the program again).
//!
//! The program runs as pid 2 of a private user + pid + mount namespace under a minimal init of
//! ours (see `ns` for the reasons and the layout), so that `dmtcp_restart` can give every process
//! its old pid back. Where a namespace cannot be made (some containers) or `DMTCP_PIDNS=0` is
//! set, the launcher execs the program itself as before and warns that pids will change after
//! restart. The program also gets `DMTCP_BIN`, the absolute path of this binary, which the
//! library runs as `dmtcp write-image` to store images.
//!
//! Every option of DMTCP 4's `dmtcp_launch --help` is accepted (`dmtcp_compat`): applied where
//! our design has it (`--tmpdir`, unique checkpoint subfolders, `--coord-logfile`,
//! `--disable-pid-plugin` = no pid namespace), refused with the reason where it cannot work
//! (`--with-plugin`: no plugin API), or explained in one warning line (the other plugin
//! switches, `--pathvirt`: path prefixes are mapped by dmtcp_restart, `restart/pathvirt.rs`). `--checkpoint-open-files` and
//! `--allow-file-overwrite` set DMTCP_CKPT_OPEN_FILES / DMTCP_ALLOW_OVERWRITE_WITH_CKPTED_FILES
//! for the library (`resources/files.rs`) and `dmtcp_restart` (`restart/files.rs`).
use crate::common::cli;
use crate::common::client;
use crate::common::dlsym;
use crate::common::ns;
use crate::common::payloads::{self, Arch};
use crate::common::setup::{absolute, coordinator, fail, own_binary, write_shared_area, Fail, Mode};
use argh::FromArgs;
use dmtcp_proto::env as ev;

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

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
    /// incremental checkpoints: after a full image, delta images of the pages changed since
    /// the last one (env DMTCP_INCREMENTAL=1)
    #[argh(switch, long = "incremental")]
    incremental: bool,
    /// with --incremental, a new full image after N deltas (env DMTCP_INCREMENTAL_CHAIN,
    /// default 10)
    #[argh(option, long = "incremental-chain")]
    incremental_chain: Option<u32>,
    /// with --incremental, a new full image once the deltas outgrow PCT percent of it (env
    /// DMTCP_INCREMENTAL_RATIO, default 50)
    #[argh(option, long = "incremental-ratio")]
    incremental_ratio: Option<u32>,
    /// signal used to stop threads at checkpoint (env DMTCP_SIGCKPT, default 12 = SIGUSR2)
    #[argh(option, long = "ckpt-signal")]
    ckpt_signal: Option<i32>,
    /// fail a checkpoint when an fd of the program cannot be restored, instead of a warning
    /// (env DMTCP_STRICT=1)
    #[argh(switch, long = "strict")]
    strict: bool,
    /// folder for temporary files, e.g. the shared-data area (env DMTCP_TMPDIR, default $TMPDIR
    /// or /tmp)
    #[argh(option, short = 't', long = "tmpdir")]
    tmpdir: Option<PathBuf>,
    /// keep every checkpoint: each generation goes into its own subfolder
    /// ckpt_<computation>_<generation> of the checkpoint folder (env DMTCP_UNIQUE_CKPT_PLUGIN=1)
    #[argh(switch, long = "enable-unique-checkpoint-filenames")]
    unique_ckpt: bool,
    /// each checkpoint replaces the one before (the default; env DMTCP_UNIQUE_CKPT_PLUGIN=0)
    #[argh(switch, long = "disable-unique-checkpoint-filenames")]
    no_unique_ckpt: bool,
    /// a coordinator that this launch starts writes its log to this file (env
    /// DMTCP_COORD_LOG_FILENAME)
    #[argh(option, long = "coord-logfile")]
    coord_logfile: Option<PathBuf>,
    /// save the contents of the regular files the program holds open in the image (up to 1 MiB
    /// per file and 2 MiB per process; a bigger file is not saved, with a warning); at restart
    /// a missing file is made again, a changed one is left as it is now, with a warning (env
    /// DMTCP_CKPT_OPEN_FILES=1)
    #[argh(switch, long = "checkpoint-open-files")]
    checkpoint_open_files: bool,
    /// the same as --checkpoint-open-files
    #[argh(switch, long = "ckpt-open-files")]
    ckpt_open_files: bool,
    /// with --checkpoint-open-files: at restart the saved contents replace a file that
    /// changed since the checkpoint (env DMTCP_ALLOW_OVERWRITE_WITH_CKPTED_FILES=1, also read
    /// by dmtcp_restart)
    #[argh(switch, long = "allow-file-overwrite")]
    allow_file_overwrite: bool,
    /// refused: DMTCP plugins need DMTCP's plugin API, which dmtcp-rs does not have; every
    /// resource kind is built in (env DMTCP_PLUGIN)
    #[argh(option, long = "with-plugin")]
    with_plugin: Option<String>,
    /// no switch needed, said in a warning: dmtcp_restart always applies a dmtcp_env.txt (in the
    /// image's folder, or $DMTCP_ENV_FILE) of variable changes, as DMTCP's modify-env plugin
    #[argh(switch, long = "modify-env")]
    modify_env: bool,
    /// path virtualisation, always on at restart: dmtcp_restart takes open files and the
    /// working folder under a DMTCP_PATH_PREFIX prefix (colon-separated) from the
    /// DMTCP_NEW_PATH_PREFIX one at the same place; paths the program opens while it runs are
    /// not translated
    #[argh(switch, long = "pathvirt")]
    pathvirt: bool,
    /// run without the private pid namespace, so that pids change at restart: our pid
    /// plugin (env DMTCP_PID_PLUGIN=0, the same as DMTCP_PIDNS=0)
    #[argh(switch, long = "disable-pid-plugin")]
    disable_pid_plugin: bool,
    /// no effect, said in a warning: resource kinds are built in and always checkpointed (env
    /// DMTCP_DISABLE_ALL_PLUGINS=1)
    #[argh(switch, long = "disable-all-plugins")]
    disable_all_plugins: bool,
    /// the same as --disable-all-plugins
    #[argh(switch, long = "no-plugins")]
    no_plugins: bool,
    /// no effect, said in a warning: eventfd, signalfd, timerfd, inotify and epoll are always
    /// checkpointed (env DMTCP_EVENT_PLUGIN=0)
    #[argh(switch, long = "disable-event-plugin")]
    disable_event_plugin: bool,
    /// no effect, said in a warning: dmtcp-rs wraps no malloc (env DMTCP_ALLOC_PLUGIN=0)
    #[argh(switch, long = "disable-alloc-plugin")]
    disable_alloc_plugin: bool,
    /// no effect, said in a warning: dmtcp-rs wraps no dlopen (env DMTCP_DL_PLUGIN=0)
    #[argh(switch, long = "disable-dl-plugin")]
    disable_dl_plugin: bool,
    /// no effect, said in a warning: pipes, files, ptys and sockets are always checkpointed
    /// (env DMTCP_IPC_PLUGIN=0)
    #[argh(switch, long = "disable-ipc-plugin")]
    disable_ipc_plugin: bool,
    /// no effect, said in a warning: files are always checkpointed (env DMTCP_FILE_PLUGIN=0)
    #[argh(switch, long = "disable-file-plugin")]
    disable_file_plugin: bool,
    /// no effect, said in a warning: ptys are always checkpointed (env DMTCP_PTY_PLUGIN=0)
    #[argh(switch, long = "disable-pty-plugin")]
    disable_pty_plugin: bool,
    /// no effect, said in a warning: sockets are always checkpointed (env DMTCP_SOCKET_PLUGIN=0)
    #[argh(switch, long = "disable-socket-plugin")]
    disable_socket_plugin: bool,
    /// no effect, said in a warning: dmtcp-rs has no ssh support to turn off (env
    /// DMTCP_SSH_PLUGIN=0)
    #[argh(switch, long = "disable-ssh-plugin")]
    disable_ssh_plugin: bool,
    /// no effect, said in a warning: System V IPC is handled by the IPC namespace (env
    /// DMTCP_SVIPC_PLUGIN=0)
    #[argh(switch, long = "disable-svipc-plugin")]
    disable_svipc_plugin: bool,
    /// no effect, said in a warning: timers are always checkpointed (env DMTCP_TIMER_PLUGIN=0)
    #[argh(switch, long = "disable-timer-plugin")]
    disable_timer_plugin: bool,
    /// no effect, said in a warning: dmtcp-rs has no split-process kernel loader
    #[argh(switch, long = "kernel-loader")]
    kernel_loader: bool,
    /// print fewer messages: once, no notes; twice, only errors (adds to env DMTCP_QUIET)
    #[argh(switch, short = 'q', long = "quiet")]
    quiet: u8,
    /// print the version and exit
    #[argh(switch, long = "version")]
    version: bool,
    /// the program to run and its arguments (taken apart before argh sees the options, so that
    /// they reach the program byte for byte, UTF-8 or not)
    #[argh(positional, greedy)]
    command: Vec<String>,
}

const PROGRAM: &str = "dmtcp_launch";

pub fn main(args: &[OsString]) -> i32 {
    // Options end at the first word that is not an option or an option's value: the program.
    const LETTERS: &[char] = &['p', 'i', 'h', 'c', 't'];
    const LONG: &[&str] = &[
        "--coord-host",
        "--coord-port",
        "--port-file",
        "--interval",
        "--ckptdir",
        "--ckpt-signal",
        "--incremental-chain",
        "--incremental-ratio",
        "--tmpdir",
        "--coord-logfile",
        "--with-plugin",
    ];
    let (opts, command) = cli::split_command(args, LETTERS, LONG);
    let opts = match cli::utf8(PROGRAM, opts) {
        Ok(o) => cli::normalize(&o, LETTERS, LONG, false)
            .into_iter()
            .map(|a| match a.as_str() {
                // DMTCP's other spellings.
                "--host" => "--coord-host".to_string(),
                "--port" => "--coord-port".to_string(),
                "--join" => "--join-coordinator".to_string(),
                _ => a,
            })
            .collect::<Vec<_>>(),
        Err(code) => return code,
    };
    let a: LaunchArgs = match cli::start(PROGRAM, &opts, |a: &LaunchArgs| (a.version, a.quiet)) {
        Ok(a) => a,
        Err(code) => return code,
    };
    match run(a, command) {
        Ok(never) => match never {},
        Err(Fail { code, msg }) => {
            log::error!("{msg}");
            code
        }
    }
}

/// The `--help` text (for `dmtcp man`).
pub fn help() -> String {
    cli::help_of::<LaunchArgs>(PROGRAM)
}

enum Never {}

fn usage_err(msg: impl std::fmt::Display) -> Fail {
    Fail::usage(PROGRAM, msg)
}

fn run(a: LaunchArgs, command: &[OsString]) -> Result<Never, Fail> {
    debug_assert!(a.command.is_empty(), "cli::split_command keeps the program out of argh");
    let mode = Mode::from_switches(PROGRAM, a.join, a.new, a.any)?;
    if a.gzip && a.no_gzip {
        return Err(usage_err("--gzip and --no-gzip contradict each other"));
    }
    if let Some(s) = a.ckpt_signal {
        if !(1..=64).contains(&s) || s == libc::SIGKILL || s == libc::SIGSTOP {
            return Err(usage_err(format!("--ckpt-signal {s} is not a signal that can be caught")));
        }
    }
    let compat = dmtcp_compat(&a)?;
    let Some(program) = command.first() else {
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
    let ckptdir = match a
        .ckptdir
        .clone()
        .or_else(|| std::env::var_os(ev::CHECKPOINT_DIR).filter(|v| !v.is_empty()).map(PathBuf::from))
    {
        Some(d) => absolute(&d),
        None => std::env::current_dir().map_err(|e| fail(format!("current folder: {e}")))?,
    };
    // The coordinator that setup may start, and setup itself, read these from our environment.
    // The launcher is single-threaded: changing its environment is sound.
    if let Some(t) = &compat.tmpdir {
        std::env::set_var(ev::TMPDIR, t);
    }
    if let Some(f) = &compat.coord_logfile {
        std::env::set_var(ev::COORD_LOG_FILENAME, f);
    }
    let port = coordinator(mode, &host, port, a.interval, &ckptdir)?;
    if let Some(f) = &a.port_file {
        payloads::write_atomic(f, format!("{port}\n").as_bytes(), 0o600)
            .map_err(|e| fail(format!("--port-file {}: {e}", f.display())))?;
    }

    let tree = payloads::tree().map_err(|e| fail(e.to_string()))?;
    let lib64 = tree.preload_lib(Arch::X86_64);
    let lib32 = tree.preload_lib(Arch::I686);
    let (shared, off64, off32) = write_shared_area(&tree, &host, port, &ckptdir)?;

    let mut env = EnvBuilder::from_current();
    let user_preload = std::env::var("LD_PRELOAD").ok().filter(|v| !v.is_empty());
    if !info.is_static && !setid {
        let ours = tree.preload_lib(info.arch);
        let mut preload = ours.display().to_string();
        if let Some(u) = &user_preload {
            preload.push(':');
            preload.push_str(u);
            env.set(ev::ORIG_LD_PRELOAD, u);
        } else {
            env.remove(ev::ORIG_LD_PRELOAD);
        }
        env.set("LD_PRELOAD", preload);
    }
    env.set(ev::HIJACK_LIBS, &lib64);
    env.set(ev::HIJACK_LIBS_M32, &lib32);
    env.set(ev::COORD_HOST, &host);
    env.set(ev::COORD_PORT, port.to_string());
    // The processes of the computation register with the coordinator's token when the user has
    // one (a coordinator on another host needs it; module `common::token`).
    match crate::common::token::for_client(port) {
        Some(t) => env.set(ev::COORD_TOKEN, t),
        None => env.remove(ev::COORD_TOKEN),
    };
    env.set(ev::SHARED_AREA, &shared);
    env.set(ev::CHECKPOINT_DIR, &ckptdir);
    env.set(ev::BIN, own_binary()?);
    match off64 {
        Some(o) => env.set(ev::DLSYM_OFFSET, o.to_string()),
        None => env.remove(ev::DLSYM_OFFSET),
    };
    match off32 {
        Some(o) => env.set(ev::DLSYM_OFFSET_M32, o.to_string()),
        None => env.remove(ev::DLSYM_OFFSET_M32),
    };
    if let Some(i) = a.interval {
        env.set(ev::CHECKPOINT_INTERVAL, i.to_string());
    }
    if a.gzip {
        env.set(ev::GZIP, "1");
    } else if a.no_gzip {
        env.set(ev::GZIP, "0");
    }
    if let Some(s) = a.ckpt_signal {
        env.set(ev::SIGCKPT, s.to_string());
    }
    if a.incremental {
        env.set(ev::INCREMENTAL, "1");
    }
    if let Some(n) = a.incremental_chain {
        env.set(ev::INCREMENTAL_CHAIN, n.to_string());
    }
    if let Some(n) = a.incremental_ratio {
        env.set(ev::INCREMENTAL_RATIO, n.to_string());
    }
    if a.quiet > 0 {
        // DMTCP adds each -q to DMTCP_QUIET for the whole computation.
        let before = std::env::var(ev::QUIET).ok().and_then(|v| v.trim().parse::<u8>().ok()).unwrap_or(0);
        env.set(ev::QUIET, before.saturating_add(a.quiet).to_string());
    }
    if let Some(t) = &compat.tmpdir {
        env.set(ev::TMPDIR, t);
    }
    match compat.unique_ckpt {
        Some(true) => env.set(ev::UNIQUE_CKPT, "1"),
        Some(false) => env.set(ev::UNIQUE_CKPT, "0"),
        None => {}
    }
    if compat.no_pidns {
        env.set(ev::PIDNS, "0");
    }
    if compat.ckpt_open_files {
        env.set(ev::CKPT_OPEN_FILES, "1");
    }
    if compat.allow_overwrite {
        env.set(ev::ALLOW_OVERWRITE, "1");
    }
    if a.strict {
        env.set(ev::STRICT, "1");
    }
    log::debug!("exec {} with {}", path.display(), tree.preload_lib(info.arch).display());
    if compat.no_pidns {
        log::warn!("running without a private pid namespace (--disable-pid-plugin); pids will change after restart");
    } else if ns::disabled_by_env() {
        log::warn!("{}=0: running without a private pid namespace; pids will change after restart", ev::PIDNS);
    } else {
        run_in_namespace(&path, program, &command[1..], &env)?;
    }
    exec_plain(&path, program, &command[1..], &env)
}

/// What DMTCP's options and variables without a direct field in our design come to.
struct Compat {
    tmpdir: Option<PathBuf>,
    coord_logfile: Option<PathBuf>,
    /// Some(on) when asked for by option or DMTCP_UNIQUE_CKPT_PLUGIN.
    unique_ckpt: Option<bool>,
    /// Run without the private pid namespace (DMTCP's pid plugin disabled).
    no_pidns: bool,
    /// --checkpoint-open-files / DMTCP_CKPT_OPEN_FILES=1.
    ckpt_open_files: bool,
    /// --allow-file-overwrite / DMTCP_ALLOW_OVERWRITE_WITH_CKPTED_FILES=1.
    allow_overwrite: bool,
}

/// Whether DMTCP_<name> is set to `value`.
fn env_is(name: &str, value: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v.trim() == value)
}

/// DMTCP's options and variables that our design maps to something else, or does without: each
/// is either applied, or explained in one line, or (plugins) refused with the reason.
fn dmtcp_compat(a: &LaunchArgs) -> Result<Compat, Fail> {
    let plugin_env = std::env::var(ev::PLUGIN).ok().filter(|v| !v.trim().is_empty());
    if let Some(p) = a.with_plugin.as_ref().or(plugin_env.as_ref()) {
        let what = if a.with_plugin.is_some() { "--with-plugin" } else { ev::PLUGIN };
        return Err(usage_err(format!(
            "{what} {p}: dmtcp-rs has no plugin API, so DMTCP plugins cannot be loaded (every resource kind is \
             built in); unset it to launch"
        )));
    }
    if a.unique_ckpt && a.no_unique_ckpt {
        return Err(usage_err(
            "--enable-unique-checkpoint-filenames and --disable-unique-checkpoint-filenames contradict each other",
        ));
    }
    let unique_ckpt = if a.unique_ckpt {
        Some(true)
    } else if a.no_unique_ckpt {
        Some(false)
    } else {
        None
    };
    let tmpdir = a
        .tmpdir
        .clone()
        .map(|t| {
            let t = absolute(&t);
            std::fs::create_dir_all(&t).map_err(|e| fail(format!("--tmpdir {}: {e}", t.display())))?;
            Ok::<_, Fail>(t)
        })
        .transpose()?;
    let coord_logfile = a
        .coord_logfile
        .clone()
        .or_else(|| std::env::var_os(ev::COORD_LOG_FILENAME).filter(|v| !v.is_empty()).map(PathBuf::from))
        .map(|f| absolute(&f));
    let no_pidns = a.disable_pid_plugin || env_is("DMTCP_PID_PLUGIN", "0");
    let ckpt_open_files = a.checkpoint_open_files || a.ckpt_open_files || env_is(ev::CKPT_OPEN_FILES, "1");
    let allow_overwrite = a.allow_file_overwrite || env_is(ev::ALLOW_OVERWRITE, "1");
    if allow_overwrite && !ckpt_open_files {
        cli::explain("--allow-file-overwrite", "no effect without --checkpoint-open-files: no file contents are saved");
    }
    if a.modify_env {
        cli::explain(
            "--modify-env",
            "always on: dmtcp_restart applies dmtcp_env.txt of the image's folder (or $DMTCP_ENV_FILE) when there is one",
        );
    }
    if a.pathvirt {
        cli::explain(
            "--pathvirt",
            "always on at restart: set DMTCP_PATH_PREFIX (old) and DMTCP_NEW_PATH_PREFIX (new) for dmtcp_restart; paths opened while running are not translated",
        );
    }
    if a.disable_all_plugins || a.no_plugins || env_is(ev::DISABLE_ALL_PLUGINS, "1") {
        cli::explain("--disable-all-plugins", "no effect: resource kinds are built in and always checkpointed");
    }
    if a.kernel_loader {
        cli::explain("--kernel-loader", "no effect: dmtcp-rs has no split-process kernel loader");
    }
    for (set, name, why) in [
        (a.disable_event_plugin, "EVENT", "eventfd, signalfd, timerfd, inotify and epoll are always checkpointed"),
        (a.disable_alloc_plugin, "ALLOC", "dmtcp-rs wraps no malloc"),
        (a.disable_dl_plugin, "DL", "dmtcp-rs wraps no dlopen"),
        (a.disable_ipc_plugin, "IPC", "pipes, files, ptys and sockets are always checkpointed"),
        (a.disable_file_plugin, "FILE", "files are always checkpointed"),
        (a.disable_pty_plugin, "PTY", "ptys are always checkpointed"),
        (a.disable_socket_plugin, "SOCKET", "sockets are always checkpointed"),
        (a.disable_ssh_plugin, "SSH", "dmtcp-rs has no ssh support to turn off"),
        (a.disable_svipc_plugin, "SVIPC", "System V IPC is always checkpointed"),
        (a.disable_timer_plugin, "TIMER", "timers are always checkpointed"),
    ] {
        let var = format!("DMTCP_{name}_PLUGIN");
        if set || env_is(&var, "0") {
            let option = format!("--disable-{}-plugin", name.to_lowercase());
            cli::explain(if set { &option } else { &var }, &format!("no effect: {why}"));
        }
    }
    Ok(Compat { tmpdir, coord_logfile, unique_ckpt, no_pidns, ckpt_open_files, allow_overwrite })
}

/// The program's environment: ours, with the launcher's variables set or removed.
pub(crate) struct EnvBuilder {
    vars: Vec<(OsString, OsString)>,
}

impl EnvBuilder {
    pub(crate) fn from_current() -> EnvBuilder {
        EnvBuilder { vars: std::env::vars_os().collect() }
    }
    pub(crate) fn set(&mut self, k: &str, v: impl AsRef<OsStr>) {
        let v = v.as_ref().to_os_string();
        match self.vars.iter_mut().find(|(name, _)| name == k) {
            Some(slot) => slot.1 = v,
            None => self.vars.push((k.into(), v)),
        }
    }
    pub(crate) fn remove(&mut self, k: &str) {
        self.vars.retain(|(name, _)| name != k);
    }
    /// `KEY=VALUE` C strings for execve (variables with a NUL byte cannot exist; skipped).
    pub(crate) fn to_cstrings(&self) -> Vec<CString> {
        self.vars
            .iter()
            .filter_map(|(k, v)| {
                let mut b = k.as_bytes().to_vec();
                b.push(b'=');
                b.extend_from_slice(v.as_bytes());
                CString::new(b).ok()
            })
            .collect()
    }
}

/// Today's launch without a namespace: exec the program in this process.
fn exec_plain(path: &Path, program: &OsStr, args: &[OsString], env: &EnvBuilder) -> Result<Never, Fail> {
    let mut cmd = Command::new(path);
    cmd.arg0(program).args(args).env_clear().envs(env.vars.iter().map(|(k, v)| (k, v)));
    let err = cmd.exec();
    Err(fail(format!("cannot run {}: {err}", path.display())))
}

/// Runs the program as pid 2 of a new pid namespace (see `ns`): this process (X) unshares,
/// forks C (pid 1), which mounts /proc and forks G (pid 2), which execs the program. X waits
/// and ends like the program. Returns only when the namespace is unavailable here (after a
/// warning), so that the caller runs the program without it.
fn run_in_namespace(path: &Path, program: &OsStr, args: &[OsString], env: &EnvBuilder) -> Result<(), Fail> {
    // Everything the children need is allocated now: after the fork they only make syscalls.
    let mut argv: Vec<&OsStr> = vec![program];
    argv.extend(args.iter().map(OsString::as_os_str));
    let exec =
        ns::Exec::new(path, &argv, env.to_cstrings()).map_err(|what| fail(format!("{what} contains a NUL byte")))?;
    let (status_r, status_w) = ns::pipe().map_err(|e| fail(format!("pipe: {e}")))?;
    // X keeps `lifeline_w` until it exits; C watches the other end (see ns::die_with_parent).
    let (lifeline_r, lifeline_w) = ns::pipe().map_err(|e| fail(format!("pipe: {e}")))?;

    match ns::unshare_all(ns::Ids::current()) {
        Ok(()) => {}
        Err(ns::NsError::Unshare(e)) if ns::is_unavailable(e) => {
            log::warn!("no private pid namespace here ({}): pids will change after restart", e.desc());
            return Ok(());
        }
        Err(e) => return Err(fail(format!("{e}; set {}=0 to run without it", ev::PIDNS))),
    }
    let old_mask = ns::block_signals();
    let w = status_w.as_raw_fd();
    // The launcher is single-threaded; C and G run only allocation-free code on data prepared
    // above, then exec or _exit (ns::fork's contract).
    let c_pid = match ns::fork() {
        Ok(pid) => pid,
        Err(e) => {
            ns::restore_mask(&old_mask);
            return Err(fail(format!("fork: {}", e.desc())));
        }
    };
    if c_pid == 0 {
        // C: pid 1 of the namespace.
        ns::die_with_parent(lifeline_r.as_raw_fd(), lifeline_w.as_raw_fd());
        if let Err(e) = ns::mount_proc() {
            ns::record::send(w, ns::record::PROC_ERRNO, e as i32);
            ns::child_exit(0);
        }
        // G: the program, pid 2.
        let g = match ns::fork() {
            Ok(g) => g,
            Err(e) => {
                ns::record::send(w, ns::record::EXEC_ERRNO, e as i32);
                ns::child_exit(127);
            }
        };
        if g == 0 {
            ns::restore_mask(&old_mask);
            let e = exec.exec();
            ns::record::send(w, ns::record::EXEC_ERRNO, e as i32);
            ns::child_exit(127);
        }
        let status = ns::init_loop(g);
        ns::record::send(w, ns::record::STATUS, status);
        ns::child_exit(0);
    }
    drop(status_w);
    drop(lifeline_r);
    let mut c_status = 0;
    ns::wait_forwarding(&[c_pid], |_, s| {
        c_status = s;
        Vec::new()
    });
    let mut bytes = Vec::new();
    ns::drain_nonblocking(&status_r, &mut bytes);
    for (tag, value) in ns::record::parse(&bytes) {
        match tag {
            ns::record::PROC_ERRNO => {
                ns::restore_mask(&old_mask);
                log::warn!(
                    "cannot mount /proc in a private pid namespace ({}): pids will change after restart",
                    nix::errno::Errno::from_raw(value).desc()
                );
                return Ok(());
            }
            ns::record::EXEC_ERRNO => {
                return Err(fail(format!(
                    "cannot run {}: {}",
                    path.display(),
                    std::io::Error::from_raw_os_error(value)
                )))
            }
            ns::record::STATUS => ns::exit_like(value),
            _ => {}
        }
    }
    // C itself died without a word (killed from outside): report that.
    ns::exit_like(c_status)
}

/// Finds `program` like execvp: a name with a slash as is, otherwise along PATH.
fn find_program(program: &OsStr) -> Result<PathBuf, Fail> {
    let shown = Path::new(program).display();
    if program.as_bytes().contains(&b'/') {
        let p = PathBuf::from(program);
        return if p.is_file() { Ok(p) } else { Err(fail(format!("{shown}: no such program"))) };
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
    Err(fail(format!("{shown}: command not found in PATH")))
}
