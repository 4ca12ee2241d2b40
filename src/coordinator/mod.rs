//! `dmtcp_coordinator`: the server every process of a computation connects to. It hands out
//! virtual pids, runs the checkpoint barrier sequence (reference §2.3), writes the restart
//! script, and answers `dmtcp_command` and its own stdin.
//!
//! Three parts: this file (options, start-up, the background mode and the files the coordinator
//! writes), `event_loop` (one thread, one epoll loop over the listener, stdin, a signalfd and
//! every client socket: the I/O and the clock) and `state` (the computation: a state machine
//! that does no I/O and reads no clock, fed by the loop, unit-tested on its own).
//!
//! Departures from DMTCP, on purpose:
//! * it listens on 127.0.0.1 unless `--coord-host` names another address (design notes);
//! * `--timeout` and `--stale-timeout` exit with status 0 (they are a lifetime the user asked
//!   for, not a failure), DMTCP exits 1;
//! * a worker that sends `CkptFailed` fails the checkpoint, and `--bcheckpoint` reports why;
//! * a checkpoint that makes no progress for `--ckpt-timeout` seconds (default 300) fails too.
mod event_loop;
mod owner;
pub mod state;
mod stopped;

use crate::common::cli;
use crate::common::payloads::write_atomic;
use argh::FromArgs;
use dmtcp_proto::INTERVAL_UNCHANGED;
use std::fs;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PROGRAM: &str = "dmtcp_coordinator";

const DEFAULT_STALE_TIMEOUT: u64 = 8 * 3600;
const DEFAULT_CKPT_TIMEOUT: u64 = 300;
const LISTEN_BACKLOG: i32 = 1024;

#[derive(FromArgs)]
#[argh(help_triggers("--help"))]
/// The DMTCP coordinator: processes launched with dmtcp_launch connect to it, and it drives
/// their checkpoints. In the foreground it reads one-letter commands from stdin (type '?').
struct Opts {
    /// port to listen on (default: $DMTCP_COORD_PORT or 7779; 0 = any free port)
    #[argh(option, short = 'p')]
    coord_port: Option<u16>,

    /// address to listen on (default 127.0.0.1, this host only; 0.0.0.0 serves every host);
    /// beyond loopback, clients from other hosts need the coordinator's token
    #[argh(option)]
    coord_host: Option<String>,

    /// the same as --coord-host: listen on ADDR, which other hosts may reach; their clients
    /// then need the token this coordinator writes to $DMTCP_COORD_TOKEN_FILE or
    /// ~/.dmtcp/coord-PORT.token (or takes from $DMTCP_COORD_TOKEN)
    #[argh(option)]
    listen_host: Option<String>,

    /// write the port in use to this file (useful with --coord-port 0)
    #[argh(option)]
    port_file: Option<PathBuf>,

    /// directory for the restart script (default: $DMTCP_CHECKPOINT_DIR or the current one)
    #[argh(option, short = 'c')]
    ckptdir: Option<PathBuf>,

    /// checkpoint every S seconds (default: $DMTCP_CHECKPOINT_INTERVAL or 0 = manually)
    #[argh(option, short = 'i')]
    interval: Option<u32>,

    /// run in the background; exits once the port is bound and the port file written
    #[argh(switch)]
    daemon: bool,

    /// append the log to this file (env DMTCP_COORD_LOG_FILENAME), at the level of the
    /// environment whatever --quiet says; with --daemon, the log goes nowhere else
    #[argh(option)]
    coord_logfile: Option<PathBuf>,

    /// folder for temporary files, e.g. the shared-data area this coordinator removes when it
    /// quits (env DMTCP_TMPDIR, default $TMPDIR or /tmp)
    #[argh(option, short = 't')]
    tmpdir: Option<PathBuf>,

    /// no effect, said in a warning: dmtcp-rs keeps no key-value database to dump (env
    /// DMTCP_COORD_WRITE_KV_DATA=1)
    #[argh(switch)]
    write_kv_data: bool,

    /// not yet supported, accepted with a warning: use --port-file
    #[argh(option)]
    status_file: Option<PathBuf>,

    /// quit when the last process disconnects (after at least one connected)
    #[argh(switch)]
    exit_on_last: bool,

    /// make every checkpoint a kill-after-checkpoint
    #[argh(switch)]
    kill_after_ckpt: bool,

    /// every checkpoint (interval ones too) writes delta images where a process has a chain
    /// to build on, whatever the processes were launched with; `dmtcp_command --full` still
    /// asks for full ones (env DMTCP_INCREMENTAL=1)
    #[argh(switch)]
    incremental: bool,

    /// fail a checkpoint when an fd of the computation cannot be restored, instead of a
    /// warning (env DMTCP_STRICT=1)
    #[argh(switch)]
    strict: bool,

    /// quit after S seconds, whatever is happening (0 = never)
    #[argh(option)]
    timeout: Option<u64>,

    /// quit after S seconds without any process connected (default 28800; 0 = never)
    #[argh(option)]
    stale_timeout: Option<u64>,

    /// fail a checkpoint that makes no progress for S seconds (default 300; 0 = never)
    #[argh(option)]
    ckpt_timeout: Option<u64>,

    /// print fewer messages: once, no notes; twice, only errors (adds to env DMTCP_QUIET)
    #[argh(switch, short = 'q')]
    quiet: u8,

    /// print the version and exit
    #[argh(switch)]
    version: bool,

    /// port to listen on (same as --coord-port)
    #[argh(positional)]
    port: Option<u16>,
}

/// Everything the options and the environment decide, resolved.
struct Config {
    host: String,
    port: u16,
    port_file: Option<PathBuf>,
    ckptdir: PathBuf,
    interval: u32,
    daemon: bool,
    logfile: Option<PathBuf>,
    exit_on_last: bool,
    kill_after_ckpt: bool,
    incremental: bool,
    strict: bool,
    timeout: Option<Duration>,
    stale_timeout: Option<Duration>,
    ckpt_timeout: Option<Duration>,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn secs(v: u64) -> Option<Duration> {
    (v > 0).then(|| Duration::from_secs(v))
}

impl Config {
    fn resolve(o: Opts) -> Result<Config, String> {
        let port = match (o.coord_port, o.port) {
            (Some(a), Some(b)) if a != b => return Err(format!("two different ports given: --coord-port {a} and {b}")),
            (Some(p), _) | (None, Some(p)) => p,
            (None, None) => match env_nonempty(dmtcp_proto::env::COORD_PORT) {
                Some(v) => {
                    v.parse().map_err(|_| format!("{}={v:?} is not a port number", dmtcp_proto::env::COORD_PORT))?
                }
                None => dmtcp_proto::DEFAULT_PORT,
            },
        };
        let interval = match o.interval {
            Some(i) => i,
            None => match env_nonempty(dmtcp_proto::env::CHECKPOINT_INTERVAL) {
                Some(v) => v.parse().map_err(|_| {
                    format!("{}={v:?} is not a number of seconds", dmtcp_proto::env::CHECKPOINT_INTERVAL)
                })?,
                None => 0,
            },
        };
        if interval == INTERVAL_UNCHANGED {
            return Err(format!("interval {interval} is out of range"));
        }
        let cwd = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
        let ckptdir = o
            .ckptdir
            .or_else(|| env_nonempty(dmtcp_proto::env::CHECKPOINT_DIR).map(PathBuf::from))
            .unwrap_or_else(|| cwd.clone());
        let ckptdir = if ckptdir.is_absolute() { ckptdir } else { cwd.join(ckptdir) };
        let port_file = o.port_file.map(|p| if p.is_absolute() { p } else { cwd.join(p) });
        let logfile = o
            .coord_logfile
            .or_else(|| env_nonempty(dmtcp_proto::env::COORD_LOG_FILENAME).map(PathBuf::from))
            .map(|p| if p.is_absolute() { p } else { cwd.join(p) });
        let host = match (o.coord_host, o.listen_host) {
            (Some(a), Some(b)) if a != b => {
                return Err(format!("two different addresses given: --coord-host {a} and --listen-host {b}"))
            }
            (Some(h), _) | (None, Some(h)) => h,
            (None, None) => "127.0.0.1".to_string(),
        };
        Ok(Config {
            host,
            port,
            port_file,
            ckptdir,
            interval,
            daemon: o.daemon,
            logfile,
            exit_on_last: o.exit_on_last,
            kill_after_ckpt: o.kill_after_ckpt,
            incremental: o.incremental
                || env_nonempty(dmtcp_proto::env::INCREMENTAL)
                    .is_some_and(|v| matches!(v.as_str(), "1" | "yes" | "true")),
            strict: o.strict || env_nonempty(dmtcp_proto::env::STRICT).is_some_and(|v| v == "1"),
            timeout: o.timeout.and_then(secs),
            stale_timeout: secs(o.stale_timeout.unwrap_or(DEFAULT_STALE_TIMEOUT)),
            ckpt_timeout: secs(o.ckpt_timeout.unwrap_or(DEFAULT_CKPT_TIMEOUT)),
        })
    }
}

/// DMTCP's spellings that argh does not know: `--port`, `--host`, attached values.
fn preprocess(args: &[String]) -> Vec<String> {
    const LONG_VALUES: &[&str] = &[
        "--coord-port",
        "--port",
        "--coord-host",
        "--listen-host",
        "--host",
        "--port-file",
        "--ckptdir",
        "--interval",
        "--coord-logfile",
        "--tmpdir",
        "--status-file",
        "--timeout",
        "--stale-timeout",
        "--ckpt-timeout",
    ];
    cli::normalize(args, &['p', 'i', 'c', 't'], LONG_VALUES, false)
        .into_iter()
        .map(|a| match a.as_str() {
            "--port" => "--coord-port".to_string(),
            "--host" => "--coord-host".to_string(),
            _ => a,
        })
        .collect()
}

pub fn main(args: &[std::ffi::OsString]) -> i32 {
    let args = match cli::utf8(PROGRAM, args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let args = preprocess(&args);
    let opts: Opts = match cli::start(PROGRAM, &args, |a: &Opts| (a.version, a.quiet)) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if let Some(t) = &opts.tmpdir {
        // The coordinator is single-threaded: changing its environment is sound.
        std::env::set_var(dmtcp_proto::env::TMPDIR, crate::common::setup::absolute(t));
    }
    if opts.write_kv_data || env_nonempty("DMTCP_COORD_WRITE_KV_DATA").is_some_and(|v| v == "1") {
        cli::explain("--write-kv-data", "no effect: dmtcp-rs keeps no key-value database to dump");
    }
    if opts.status_file.is_some() {
        cli::explain("--status-file", "not yet supported: --port-file writes the port");
    }
    let cfg = match Config::resolve(opts) {
        Ok(c) => c,
        Err(e) => {
            log::error!("{e}");
            return cli::EXIT_USAGE;
        }
    };
    if let (Some(f), false) = (&cfg.logfile, cfg.daemon) {
        if let Err(e) = crate::common::logging::add_file(f) {
            log::error!("--coord-logfile {}: {e}", f.display());
            return cli::EXIT_FAILURE;
        }
    }
    raise_fd_limit();
    let listener = match bind_listener(&cfg.host, cfg.port) {
        Ok(l) => l,
        Err(e) => {
            log::error!("cannot listen on {}:{}: {e}", cfg.host, cfg.port);
            return cli::EXIT_FAILURE;
        }
    };
    let port = match listener.local_addr() {
        Ok(a) => a.port(),
        Err(e) => {
            log::error!("cannot read the listening address: {e}");
            return cli::EXIT_FAILURE;
        }
    };
    let token = match listener.local_addr() {
        Ok(a) if !a.ip().is_loopback() => match remote_token(port) {
            Ok(t) => Some(t),
            Err(e) => {
                log::error!("{e}");
                return cli::EXIT_FAILURE;
            }
        },
        _ => None,
    };
    if let Some(pf) = &cfg.port_file {
        if let Err(e) = write_atomic(pf, port.to_string().as_bytes(), 0o600) {
            log::error!("cannot write the port file {}: {e}", pf.display());
            return cli::EXIT_FAILURE;
        }
    }
    log::info!(
        "listening on {}:{port} (host {}); checkpoint interval: {}; exit on last client: {}{}",
        cfg.host,
        hostname(),
        state::interval_text(cfg.interval),
        cfg.exit_on_last as u8,
        if cfg.daemon { "" } else { "; type '?' for help" }
    );
    if cfg.daemon {
        if cfg.logfile.is_some() {
            // stderr becomes the log file: it gets the full log, as a log file does.
            crate::common::logging::unquiet_console();
        }
        match daemonize(cfg.logfile.as_deref()) {
            Ok(true) => return 0, // the parent: the port is bound and the port file written
            Ok(false) => {}
            Err(e) => {
                log::error!("cannot go into the background: {e}");
                remove_port_file(&cfg);
                return cli::EXIT_FAILURE;
            }
        }
    }
    let port_file = cfg.port_file.clone();
    let secret = token.as_ref().map(|t| t.token.clone());
    let mut coord = match event_loop::Coord::new(cfg, listener, port, secret) {
        Ok(c) => c,
        Err(e) => {
            log::error!("cannot set up the event loop: {e}");
            if let Some(pf) = port_file {
                let _ = fs::remove_file(pf);
            }
            remove_token(token.as_ref());
            return cli::EXIT_FAILURE;
        }
    };
    let code = coord.run();
    // The computation is over for this coordinator: its shared-data area and token go too.
    crate::common::shared_area::remove(port);
    remove_token(token.as_ref());
    code
}

/// The secret of a coordinator that other hosts can reach (module `common::token`).
struct RemoteToken {
    token: String,
    /// The file we wrote it to (none when the user gave it in DMTCP_COORD_TOKEN).
    file: Option<PathBuf>,
}

fn remote_token(port: u16) -> Result<RemoteToken, String> {
    use crate::common::token;
    let var = dmtcp_proto::env::COORD_TOKEN;
    if let Some(t) = env_nonempty(var) {
        if !token::well_formed(&t) {
            return Err(format!(
                "{var} must be {} to {} printable characters without spaces (it has {})",
                token::MIN_LEN,
                token::MAX_LEN,
                t.len()
            ));
        }
        log::info!("clients from other hosts must present the token given in {var}");
        return Ok(RemoteToken { token: t, file: None });
    }
    let Some(file) = token::path(port) else {
        return Err(format!(
            "listening beyond this host needs a token file: set HOME, {} or {var}",
            dmtcp_proto::env::COORD_TOKEN_FILE
        ));
    };
    let t = token::generate().map_err(|e| format!("cannot make a token: {e}"))?;
    token::write(&file, &t).map_err(|e| format!("{e}"))?;
    log::info!(
        "clients from other hosts must present the token in {} (readable only by you; or set {var} to its content)",
        file.display()
    );
    Ok(RemoteToken { token: t, file: Some(file) })
}

/// Removes the token file at exit, unless another coordinator has replaced it since.
fn remove_token(t: Option<&RemoteToken>) {
    if let Some(RemoteToken { token, file: Some(f) }) = t {
        if fs::read_to_string(f).is_ok_and(|s| s.trim() == token) {
            let _ = fs::remove_file(f);
        }
    }
}

/// The `--help` text (for `dmtcp man`).
pub fn help() -> String {
    cli::help_of::<Opts>(PROGRAM)
}

fn remove_port_file(cfg: &Config) {
    if let Some(pf) = &cfg.port_file {
        let _ = fs::remove_file(pf);
    }
}

/// Hundreds of clients need hundreds of descriptors: take the hard limit.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

fn bind_listener(host: &str, port: u16) -> io::Result<TcpListener> {
    let mut last = None;
    for addr in (host, port).to_socket_addrs()? {
        match listen_on(addr) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such address")))
}

/// A listener with SO_REUSEADDR and a backlog large enough for hundreds of simultaneous
/// connects (std's is 128).
fn listen_on(addr: SocketAddr) -> io::Result<TcpListener> {
    use nix::sys::socket::{
        bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage,
    };
    let family = if addr.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    let fd: OwnedFd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    listen(&fd, Backlog::new(LISTEN_BACKLOG)?)?;
    Ok(TcpListener::from(fd))
}

/// Forks into the background. Returns true in the parent (which should exit 0), false in the
/// child, which is then in its own session with stdin/stdout on /dev/null and stderr on the
/// log file (or /dev/null).
fn daemonize(logfile: Option<&Path>) -> io::Result<bool> {
    use nix::unistd::setsid;
    let devnull = fs::OpenOptions::new().read(true).write(true).open("/dev/null")?;
    let err_target = match logfile {
        Some(p) => fs::OpenOptions::new().create(true).append(true).mode(0o600).open(p)?,
        None => devnull.try_clone()?,
    };
    // The coordinator never starts a thread: ns::fork's single-threaded contract holds.
    match crate::common::ns::fork()? {
        0 => {
            setsid()?;
            nix::unistd::dup2_stdin(&devnull)?;
            nix::unistd::dup2_stdout(&devnull)?;
            nix::unistd::dup2_stderr(&err_target)?;
            Ok(false)
        }
        _ => Ok(true),
    }
}

fn hostname() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".to_string())
}

/// How the restart script runs dmtcp_restart: a `dmtcp_restart` next to this binary, else the
/// multicall binary itself (unless it was installed under a role's name), else the PATH's.
fn restart_command() -> String {
    let exe = std::env::current_exe().ok();
    if let Some(exe) = &exe {
        if let Some(dir) = exe.parent() {
            let cand = dir.join("dmtcp_restart");
            if cand.exists() {
                return state::shell_quote(&cand.to_string_lossy());
            }
        }
        let name = exe.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !name.starts_with("dmtcp_") {
            return format!("{} restart", state::shell_quote(&exe.to_string_lossy()));
        }
    }
    "dmtcp_restart".to_string()
}

/// Writes the restart script `name` into `dir` and points `dmtcp_restart_script.sh` at it;
/// returns the link's path.
fn write_restart_script(dir: &Path, name: &str, contents: &str) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let path = dir.join(name);
    write_atomic(&path, contents.as_bytes(), 0o700)?;
    let link = dir.join("dmtcp_restart_script.sh");
    let tmp_link = dir.join(format!(".dmtcp_restart_script.sh.tmp.{}", std::process::id()));
    let _ = fs::remove_file(&tmp_link);
    std::os::unix::fs::symlink(name, &tmp_link)?;
    if let Err(e) = fs::rename(&tmp_link, &link) {
        let _ = fs::remove_file(&tmp_link);
        return Err(e);
    }
    Ok(link)
}
