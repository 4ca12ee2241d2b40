//! `dmtcp_coordinator`: the server every process of a computation connects to. It hands out
//! virtual pids, runs the checkpoint barrier sequence (reference §2.3), writes the restart
//! script, and answers `dmtcp_command` and its own stdin.
//!
//! One thread runs one epoll loop over the listener, stdin, a signalfd and every client socket.
//! Sockets are non-blocking; each client has a read buffer that never holds more than one
//! message plus one read chunk (a header that announces more than `MAX_EXTRA` bytes is refused
//! before anything is allocated for it) and an out-buffer with a hard limit (EPOLLOUT is armed
//! only while it holds data). Idle clients therefore cost a few hundred bytes each and no thread.
//!
//! Departures from DMTCP, on purpose:
//! * it listens on 127.0.0.1 unless `--coord-host` names another address (design notes);
//! * `--timeout` and `--stale-timeout` exit with status 0 (they are a lifetime the user asked
//!   for, not a failure), DMTCP exits 1;
//! * a worker that sends `CkptFailed` fails the checkpoint, and `--bcheckpoint` reports why;
//! * a checkpoint that makes no progress for `--ckpt-timeout` seconds (default 300) fails too.
use crate::common::cli;
use argh::FromArgs;
use dmtcp_proto::{
    split_worker_payload, status, Cmd, Kind, Msg, WorkerState, FLAG_EXIT_AFTER_CKPT, INTERVAL_UNCHANGED, MAX_EXTRA,
    MSG_SIZE,
};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PROGRAM: &str = "dmtcp_coordinator";

/// A new connection must complete its first message within this time.
const FIRST_MSG_TIMEOUT: Duration = Duration::from_secs(2);
/// A worker that stops in the middle of a message for this long is dropped.
const PARTIAL_MSG_TIMEOUT: Duration = Duration::from_secs(30);
/// Most bytes queued for one client; a peer that does not read is dropped beyond this.
const OUT_LIMIT: usize = MAX_EXTRA as usize + 64 * 1024;
const READ_CHUNK: usize = 64 * 1024;
/// Reads per readiness event, so that one busy client cannot starve the others.
const READS_PER_WAKE: usize = 16;
const DEFAULT_STALE_TIMEOUT: u64 = 8 * 3600;
const DEFAULT_CKPT_TIMEOUT: u64 = 300;
const FIRST_VPID: i32 = 40000;
const VPID_STEP: i32 = 1000;
const VPID_LIMIT: i32 = 1_000_000;
const LISTEN_BACKLOG: i32 = 1024;
/// Longest stdin command line we keep; longer lines are discarded.
const STDIN_LINE_MAX: usize = 4096;

const TOK_LISTENER: u64 = 0;
const TOK_STDIN: u64 = 1;
const TOK_SIGNAL: u64 = 2;
const FIRST_CONN_TOK: u64 = 16;

#[derive(FromArgs)]
#[argh(help_triggers("--help"))]
/// The DMTCP coordinator: processes launched with dmtcp_launch connect to it, and it drives
/// their checkpoints. In the foreground it reads one-letter commands from stdin (type '?').
struct Opts {
    /// port to listen on (default: $DMTCP_COORD_PORT or 7779; 0 = any free port)
    #[argh(option, short = 'p')]
    coord_port: Option<u16>,

    /// address to listen on (default 127.0.0.1, this host only; 0.0.0.0 serves every host)
    #[argh(option)]
    coord_host: Option<String>,

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

    /// with --daemon: append messages to this file (otherwise they are discarded)
    #[argh(option)]
    coord_logfile: Option<PathBuf>,

    /// quit when the last process disconnects (after at least one connected)
    #[argh(switch)]
    exit_on_last: bool,

    /// make every checkpoint a kill-after-checkpoint
    #[argh(switch)]
    kill_after_ckpt: bool,

    /// quit after S seconds, whatever is happening (0 = never)
    #[argh(option)]
    timeout: Option<u64>,

    /// quit after S seconds without any process connected (default 28800; 0 = never)
    #[argh(option)]
    stale_timeout: Option<u64>,

    /// fail a checkpoint that makes no progress for S seconds (default 300; 0 = never)
    #[argh(option)]
    ckpt_timeout: Option<u64>,

    /// print errors only
    #[argh(switch, short = 'q')]
    quiet: bool,

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
        let logfile = o.coord_logfile.map(|p| if p.is_absolute() { p } else { cwd.join(p) });
        Ok(Config {
            host: o.coord_host.unwrap_or_else(|| "127.0.0.1".to_string()),
            port,
            port_file,
            ckptdir,
            interval,
            daemon: o.daemon,
            logfile,
            exit_on_last: o.exit_on_last,
            kill_after_ckpt: o.kill_after_ckpt,
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
        "--host",
        "--port-file",
        "--ckptdir",
        "--interval",
        "--coord-logfile",
        "--timeout",
        "--stale-timeout",
        "--ckpt-timeout",
    ];
    cli::normalize(args, &['p', 'i', 'c'], LONG_VALUES, false)
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
    let args = &args[..];
    let args = preprocess(args);
    let opts: Opts = match cli::start(PROGRAM, &args, |a: &Opts| (a.version, a.quiet)) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let cfg = match Config::resolve(opts) {
        Ok(c) => c,
        Err(e) => {
            log::error!("{e}");
            return cli::EXIT_USAGE;
        }
    };
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
    if let Some(pf) = &cfg.port_file {
        if let Err(e) = write_atomic(pf, port.to_string().as_bytes(), 0o644) {
            log::error!("cannot write the port file {}: {e}", pf.display());
            return cli::EXIT_FAILURE;
        }
    }
    log::info!(
        "listening on {}:{port} (host {}); checkpoint interval: {}; exit on last client: {}{}",
        cfg.host,
        hostname(),
        interval_text(cfg.interval),
        cfg.exit_on_last as u8,
        if cfg.daemon { "" } else { "; type '?' for help" }
    );
    if cfg.daemon {
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
    let mut coord = match Coord::new(cfg, listener, port) {
        Ok(c) => c,
        Err(e) => {
            log::error!("cannot set up the event loop: {e}");
            if let Some(pf) = port_file {
                let _ = fs::remove_file(pf);
            }
            return cli::EXIT_FAILURE;
        }
    };
    coord.run()
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

/// Writes `data` to `path` through a temporary file in the same directory and a rename, so a
/// reader sees either nothing or the whole content.
fn write_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let res = (|| {
        let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
        f.write_all(data)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

fn hostname() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".to_string())
}

/// DMTCP's host id: a hash of the host name (h = c + 331·h).
fn host_id(name: &str) -> u32 {
    name.bytes().fold(0u32, |h, c| (c as u32).wrapping_add(h.wrapping_mul(331)))
}

fn monotonic_ns() -> u64 {
    use nix::time::{clock_gettime, ClockId};
    clock_gettime(ClockId::CLOCK_MONOTONIC).map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64).unwrap_or(0)
}

fn interval_text(i: u32) -> String {
    if i == 0 {
        "disabled (checkpoint manually)".to_string()
    } else {
        format!("{i} s")
    }
}

/// Text of a NUL-terminated payload (up to the first NUL), lossily as UTF-8.
fn payload_text(extra: &[u8]) -> String {
    let end = extra.iter().position(|&c| c == 0).unwrap_or(extra.len());
    String::from_utf8_lossy(&extra[..end]).into_owned()
}

/// Quotes `s` for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// What a connection is, once its first message said so.
enum Role {
    /// Connected; its first message has not arrived yet.
    Pending,
    /// A process of the computation.
    Worker(Worker),
    /// A `dmtcp_command`; the reply is queued (or pending a blocking checkpoint).
    User,
}

struct Worker {
    vpid: i32,
    pid: i32,
    host: String,
    prog: String,
    state: WorkerState,
    /// DMTCP-style unique pid: hostid-vpid-time.
    unique: String,
}

struct Conn {
    stream: TcpStream,
    peer: String,
    role: Role,
    since: Instant,
    inbuf: Vec<u8>,
    /// When the current incomplete message started arriving.
    partial_since: Option<Instant>,
    out: Vec<u8>,
    out_pos: usize,
    out_armed: bool,
    /// The peer shut down its side; only the reply still goes out.
    read_shut: bool,
    close_after_flush: bool,
    dead: bool,
}

impl Conn {
    fn worker(&self) -> Option<&Worker> {
        match &self.role {
            Role::Worker(w) => Some(w),
            _ => None,
        }
    }
    fn label(&self) -> String {
        match &self.role {
            Role::Worker(w) => format!("{}[{}:{}]@{}", w.prog, w.vpid, w.pid, w.host),
            Role::User => format!("command client {}", self.peer),
            Role::Pending => format!("connection from {}", self.peer),
        }
    }
}

struct Ckpt {
    generation: u32,
    kill_after: bool,
    /// Workers taking part that are still connected.
    participants: BTreeSet<u64>,
    /// Image paths reported, by connection (kept when the worker exits afterwards).
    filenames: BTreeMap<u64, (i32, String)>,
    /// `--bcheckpoint` clients waiting for the outcome.
    requesters: Vec<u64>,
    started: Instant,
    last_progress: Instant,
}

struct Restart {
    /// How many processes the images say the computation has.
    expected: u32,
    participants: BTreeSet<u64>,
}

struct Barrier {
    name: Vec<u8>,
    arrived: BTreeSet<u64>,
}

/// The outcome of a user command: status, header fields, text payload.
struct Reply {
    msg: Msg,
    text: String,
}

struct Coord {
    cfg: Config,
    port: u16,
    hostname: String,
    epoll: Epoll,
    listener: TcpListener,
    listener_paused_until: Option<Instant>,
    sigfd: SignalFd,
    stdin_open: bool,
    stdin_buf: Vec<u8>,
    stdin_discarding: bool,
    conns: HashMap<u64, Conn>,
    next_tok: u64,
    doomed: Vec<u64>,
    // The computation.
    comp_id: u64,
    timestamp: u64,
    generation: u32,
    interval: u32,
    default_interval: u32,
    next_ckpt: Option<Instant>,
    next_vpid: i32,
    ckpt: Option<Ckpt>,
    restart: Option<Restart>,
    barrier: Option<Barrier>,
    kill_in_progress: bool,
    ever_had_worker: bool,
    no_workers_since: Instant,
    started: Instant,
    next_scan: Instant,
    exit: Option<i32>,
}

impl Coord {
    fn new(cfg: Config, listener: TcpListener, port: u16) -> Result<Coord, io::Error> {
        match Self::setup(&cfg, &listener) {
            Ok((epoll, sigfd, stdin_open)) => {
                let now = Instant::now();
                Ok(Coord {
                    port,
                    hostname: hostname(),
                    epoll,
                    listener,
                    listener_paused_until: None,
                    sigfd,
                    stdin_open,
                    stdin_buf: Vec::new(),
                    stdin_discarding: false,
                    conns: HashMap::new(),
                    next_tok: FIRST_CONN_TOK,
                    doomed: Vec::new(),
                    comp_id: 0,
                    timestamp: 0,
                    generation: 0,
                    interval: cfg.interval,
                    default_interval: cfg.interval,
                    next_ckpt: None,
                    next_vpid: FIRST_VPID,
                    ckpt: None,
                    restart: None,
                    barrier: None,
                    kill_in_progress: false,
                    ever_had_worker: false,
                    no_workers_since: now,
                    started: now,
                    next_scan: now,
                    exit: None,
                    cfg,
                })
            }
            Err(e) => Err(e),
        }
    }

    fn setup(cfg: &Config, listener: &TcpListener) -> io::Result<(Epoll, SignalFd, bool)> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        epoll.add(listener, EpollEvent::new(EpollFlags::EPOLLIN, TOK_LISTENER))?;
        // SIGINT/SIGTERM arrive through a signalfd. SIGTTIN is blocked so that reading a
        // terminal from the background gives EIO instead of stopping the coordinator.
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGINT);
        mask.add(Signal::SIGTERM);
        let mut blocked = mask;
        blocked.add(Signal::SIGTTIN);
        blocked.thread_block()?;
        let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        epoll.add(&sigfd, EpollEvent::new(EpollFlags::EPOLLIN, TOK_SIGNAL))?;
        let mut stdin_open = false;
        if !cfg.daemon {
            let stdin = io::stdin();
            match epoll.add(stdin.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, TOK_STDIN)) {
                Ok(()) => stdin_open = true,
                // A regular file or /dev/null cannot be polled; it never blocks either, so its
                // commands are read once the loop runs (see `run`).
                Err(Errno::EPERM) => {}
                Err(e) => log::debug!("not reading commands from stdin: {e}"),
            }
        }
        Ok((epoll, sigfd, stdin_open))
    }

    fn run(&mut self) -> i32 {
        if !self.cfg.daemon && !self.stdin_open {
            self.read_unpollable_stdin();
        }
        let mut events = vec![EpollEvent::empty(); 256];
        loop {
            self.reap();
            if let Some(code) = self.exit {
                return self.shutdown(code);
            }
            let timeout = self.wait_ms();
            let n = match self.epoll.wait(&mut events, EpollTimeout::from(timeout)) {
                Ok(n) => n,
                Err(Errno::EINTR) => 0,
                Err(e) => {
                    log::error!("epoll_wait: {e}");
                    return self.shutdown(cli::EXIT_FAILURE);
                }
            };
            for ev in &events[..n] {
                match ev.data() {
                    TOK_LISTENER => self.accept_all(),
                    TOK_STDIN => self.read_stdin(),
                    TOK_SIGNAL => self.read_signals(),
                    tok => self.conn_event(tok, ev.events()),
                }
                self.reap();
                if self.exit.is_some() {
                    break;
                }
            }
            if self.exit.is_none() {
                self.tick();
            }
        }
    }

    /// How long epoll may sleep: until the nearest deadline, at most one second.
    fn wait_ms(&self) -> u16 {
        let now = Instant::now();
        let mut wake = now + Duration::from_millis(1000);
        let mut consider = |t: Instant| {
            if t < wake {
                wake = t;
            }
        };
        if let Some(t) = self.cfg.timeout {
            consider(self.started + t);
        }
        if let Some(t) = self.next_ckpt {
            consider(t);
        }
        if let Some(t) = self.listener_paused_until {
            consider(t);
        }
        if let (Some(c), Some(t)) = (&self.ckpt, self.cfg.ckpt_timeout) {
            consider(c.last_progress + t);
        }
        if self.conns.values().any(|c| matches!(c.role, Role::Pending) || c.partial_since.is_some()) {
            consider(self.next_scan.max(now + Duration::from_millis(100)));
        }
        wake.saturating_duration_since(now).as_millis().min(1000) as u16 + 1
    }

    // ---- Connections -------------------------------------------------------------------

    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, addr)) => self.add_conn(stream, addr),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if !matches!(
                        e.raw_os_error(),
                        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                    ) =>
                {
                    // ECONNABORTED and the like concern one connection only.
                    log::debug!("accept: {e}");
                    continue;
                }
                Err(e) => {
                    // Out of descriptors (EMFILE) or similar: the listener stays readable, so
                    // stop watching it for a moment instead of spinning.
                    log::error!("accept: {e}; not accepting connections for 1 s");
                    let _ = self.epoll.delete(&self.listener);
                    self.listener_paused_until = Some(Instant::now() + Duration::from_secs(1));
                    break;
                }
            }
        }
    }

    fn add_conn(&mut self, stream: TcpStream, addr: SocketAddr) {
        if let Err(e) = stream.set_nonblocking(true) {
            log::warn!("dropping connection from {addr}: {e}");
            return;
        }
        let _ = stream.set_nodelay(true);
        let tok = self.next_tok;
        self.next_tok += 1;
        let ev = EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP, tok);
        if let Err(e) = self.epoll.add(&stream, ev) {
            log::warn!("dropping connection from {addr}: epoll: {e}");
            return;
        }
        log::trace!("connection from {addr}");
        self.conns.insert(
            tok,
            Conn {
                stream,
                peer: addr.to_string(),
                role: Role::Pending,
                since: Instant::now(),
                inbuf: Vec::new(),
                partial_since: None,
                out: Vec::new(),
                out_pos: 0,
                out_armed: false,
                read_shut: false,
                close_after_flush: false,
                dead: false,
            },
        );
    }

    /// Marks a connection for removal; `reason` is logged as a warning.
    fn drop_conn(&mut self, tok: u64, reason: Option<String>) {
        if let Some(c) = self.conns.get_mut(&tok) {
            if c.dead {
                return;
            }
            c.dead = true;
            if let Some(r) = reason {
                log::warn!("dropping {}: {r}", c.label());
            }
            self.doomed.push(tok);
        }
    }

    /// Removes the connections marked dead; a worker's departure may change the checkpoint.
    fn reap(&mut self) {
        while let Some(tok) = self.doomed.pop() {
            let Some(conn) = self.conns.remove(&tok) else {
                continue;
            };
            let _ = self.epoll.delete(&conn.stream);
            match conn.role {
                Role::Worker(w) => self.worker_gone(tok, w),
                Role::User => {
                    if let Some(c) = &mut self.ckpt {
                        c.requesters.retain(|&t| t != tok);
                    }
                }
                Role::Pending => {}
            }
        }
    }

    fn conn_event(&mut self, tok: u64, ev: EpollFlags) {
        if ev.intersects(EpollFlags::EPOLLOUT) {
            self.flush(tok);
        }
        if ev.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR | EpollFlags::EPOLLRDHUP) {
            self.read_conn(tok);
        }
    }

    fn read_conn(&mut self, tok: u64) {
        let mut buf = [0u8; READ_CHUNK];
        for _ in 0..READS_PER_WAKE {
            let Some(conn) = self.conns.get_mut(&tok) else {
                return;
            };
            if conn.dead {
                return;
            }
            match conn.stream.read(&mut buf) {
                Ok(0) => {
                    self.eof(tok);
                    return;
                }
                Ok(n) => {
                    if matches!(conn.role, Role::User) {
                        continue; // a command client has nothing more to say; ignore it
                    }
                    conn.inbuf.extend_from_slice(&buf[..n]);
                    self.parse_messages(tok);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let quiet = matches!(conn.role, Role::User);
                    self.drop_conn(tok, (!quiet).then(|| format!("read error: {e}")));
                    return;
                }
            }
        }
    }

    fn eof(&mut self, tok: u64) {
        let Some(conn) = self.conns.get(&tok) else {
            return;
        };
        match &conn.role {
            Role::Worker(_) if !conn.inbuf.is_empty() => {
                let r = format!("disconnected in the middle of a message ({} bytes)", conn.inbuf.len());
                self.drop_conn(tok, Some(r));
            }
            // A command client may half-close after its request: its answer (queued, or a
            // blocking checkpoint's, later) still goes out; a full close shows up as a write
            // error or a hang-up then.
            Role::User
                if !conn.read_shut
                    && (conn.out_pos < conn.out.len()
                        || self.ckpt.as_ref().is_some_and(|c| c.requesters.contains(&tok))) =>
            {
                if let Some(c) = self.conns.get_mut(&tok) {
                    c.read_shut = true;
                }
                self.update_interest(tok);
            }
            Role::Worker(_) | Role::User => self.drop_conn(tok, None),
            Role::Pending if conn.inbuf.is_empty() => {
                // A port probe, most likely: not worth a warning.
                log::debug!("connection from {} closed without sending anything", conn.peer);
                self.drop_conn(tok, None)
            }
            Role::Pending => self.drop_conn(
                tok,
                Some(format!("disconnected in the middle of its first message ({} bytes)", conn.inbuf.len())),
            ),
        }
    }

    /// Takes every complete message out of the connection's buffer and handles it.
    fn parse_messages(&mut self, tok: u64) {
        loop {
            let Some(conn) = self.conns.get_mut(&tok) else {
                return;
            };
            if conn.dead || matches!(conn.role, Role::User) {
                return;
            }
            if conn.inbuf.len() < MSG_SIZE {
                conn.partial_since =
                    if conn.inbuf.is_empty() { None } else { conn.partial_since.or(Some(Instant::now())) };
                return;
            }
            let mut hdr = [0u8; MSG_SIZE];
            hdr.copy_from_slice(&conn.inbuf[..MSG_SIZE]);
            let msg = match Msg::decode(&hdr) {
                Ok(m) => m,
                Err(e) => {
                    self.drop_conn(tok, Some(format!("protocol error: {e}")));
                    return;
                }
            };
            let need = MSG_SIZE + msg.extra_len as usize;
            if conn.inbuf.len() < need {
                conn.partial_since = conn.partial_since.or(Some(Instant::now()));
                return;
            }
            let extra = conn.inbuf[MSG_SIZE..need].to_vec();
            conn.inbuf.drain(..need);
            conn.partial_since = None;
            if conn.inbuf.capacity() > 2 * READ_CHUNK && conn.inbuf.len() < READ_CHUNK {
                conn.inbuf.shrink_to(READ_CHUNK);
            }
            self.dispatch(tok, msg, &extra);
        }
    }

    /// Queues a message; the connection is dropped if its out-buffer would exceed the limit.
    fn send(&mut self, tok: u64, msg: &Msg, extra: &[u8]) {
        let Some(conn) = self.conns.get_mut(&tok) else {
            return;
        };
        if conn.dead {
            return;
        }
        if conn.out.len() - conn.out_pos + MSG_SIZE + extra.len() > OUT_LIMIT {
            self.drop_conn(tok, Some("does not read its messages (out-buffer full)".into()));
            return;
        }
        let mut m = *msg;
        m.extra_len = extra.len() as u32;
        conn.out.extend_from_slice(&m.encode());
        conn.out.extend_from_slice(extra);
        if !conn.out_armed {
            self.flush(tok);
        }
    }

    fn flush(&mut self, tok: u64) {
        let Some(conn) = self.conns.get_mut(&tok) else {
            return;
        };
        if conn.dead {
            return;
        }
        while conn.out_pos < conn.out.len() {
            match conn.stream.write(&conn.out[conn.out_pos..]) {
                Ok(0) => break,
                Ok(n) => conn.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    let quiet = matches!(conn.role, Role::User);
                    self.drop_conn(tok, (!quiet).then(|| format!("write error: {e}")));
                    return;
                }
            }
        }
        if conn.out_pos == conn.out.len() {
            conn.out.clear();
            conn.out_pos = 0;
            if conn.out.capacity() > READ_CHUNK {
                conn.out.shrink_to(READ_CHUNK);
            }
        } else if conn.out_pos > READ_CHUNK {
            conn.out.drain(..conn.out_pos);
            conn.out_pos = 0;
        }
        let want_out = !conn.out.is_empty();
        let close = !want_out && conn.close_after_flush;
        if want_out != conn.out_armed {
            self.update_interest(tok);
        }
        if close {
            self.drop_conn(tok, None);
        }
    }

    /// Watches for input unless the peer shut down, for output while some is queued.
    fn update_interest(&mut self, tok: u64) {
        let Some(conn) = self.conns.get_mut(&tok) else {
            return;
        };
        let want_out = !conn.out.is_empty();
        let mut flags = EpollFlags::empty();
        if !conn.read_shut {
            flags |= EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP;
        }
        if want_out {
            flags |= EpollFlags::EPOLLOUT;
        }
        let mut ev = EpollEvent::new(flags, tok);
        if let Err(e) = self.epoll.modify(&conn.stream, &mut ev) {
            self.drop_conn(tok, Some(format!("epoll: {e}")));
            return;
        }
        conn.out_armed = want_out;
    }

    /// Sends a reply and closes the connection once it is written.
    fn send_and_close(&mut self, tok: u64, msg: &Msg, extra: &[u8]) {
        if let Some(c) = self.conns.get_mut(&tok) {
            c.close_after_flush = true;
        }
        self.send(tok, msg, extra);
        // `send` flushes at once when it can; an empty out-buffer means the reply is gone.
        if let Some(c) = self.conns.get(&tok) {
            if c.out.is_empty() && !c.dead {
                self.drop_conn(tok, None);
            }
        }
    }

    // ---- Messages ----------------------------------------------------------------------

    fn dispatch(&mut self, tok: u64, msg: Msg, extra: &[u8]) {
        let Some(conn) = self.conns.get_mut(&tok) else {
            return;
        };
        match conn.role {
            Role::Pending => match msg.kind {
                Kind::UserCmd => {
                    conn.role = Role::User;
                    self.user_cmd_from(tok, &msg);
                }
                Kind::NewWorker => self.new_worker(tok, &msg, extra),
                Kind::RestartWorker => self.restart_worker(tok, &msg, extra),
                k => self.drop_conn(tok, Some(format!("unexpected first message {k:?}"))),
            },
            Role::Worker(ref mut w) => {
                if let Some(s) = WorkerState::from_u32(msg.state) {
                    if s != WorkerState::Unknown {
                        w.state = s;
                    }
                }
                match msg.kind {
                    Kind::UpdateAfterExec => self.update_after_exec(tok, &msg, extra),
                    Kind::Barrier => self.barrier_arrival(tok, &msg),
                    Kind::CkptFilename => self.ckpt_filename(tok, extra),
                    Kind::CkptFailed => self.ckpt_failed_by(tok, extra),
                    Kind::WorkerResuming => self.check_restart_done(),
                    k => self.drop_conn(tok, Some(format!("unexpected message {k:?} from a worker"))),
                }
            }
            Role::User => {}
        }
    }

    fn worker_count(&self) -> usize {
        self.conns.values().filter(|c| c.worker().is_some() && !c.dead).count()
    }

    fn workers(&self) -> impl Iterator<Item = (u64, &Worker)> {
        self.conns.iter().filter(|(_, c)| !c.dead).filter_map(|(&t, c)| c.worker().map(|w| (t, w)))
    }

    fn sorted_worker_toks(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.workers().map(|(t, _)| t).collect();
        v.sort_unstable();
        v
    }

    /// Every worker RUNNING (and at least one).
    fn all_running(&self) -> bool {
        let mut n = 0;
        for (_, w) in self.workers() {
            if w.state != WorkerState::Running {
                return false;
            }
            n += 1;
        }
        n > 0
    }

    fn min_state(&self) -> WorkerState {
        self.workers().map(|(_, w)| w.state).min_by_key(|s| *s as u32).unwrap_or(WorkerState::Unknown)
    }

    /// A fresh computation: the first worker of an empty coordinator defines it.
    fn init_computation(&mut self) {
        let now_ns = monotonic_ns();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        for b in self
            .hostname
            .bytes()
            .chain(wall.to_le_bytes())
            .chain(now_ns.to_le_bytes())
            .chain(std::process::id().to_le_bytes())
        {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        self.comp_id = h.max(1);
        self.timestamp = now_ns;
        self.generation = 0;
        self.next_vpid = FIRST_VPID;
        self.interval = self.default_interval;
        self.ckpt = None;
        self.restart = None;
        self.barrier = None;
        self.kill_in_progress = false;
    }

    fn alloc_vpid(&mut self) -> i32 {
        let used: BTreeSet<i32> = self.workers().map(|(_, w)| w.vpid).collect();
        loop {
            let v = self.next_vpid;
            self.next_vpid += VPID_STEP;
            if self.next_vpid >= VPID_LIMIT {
                self.next_vpid = FIRST_VPID;
            }
            if !used.contains(&v) {
                return v;
            }
        }
    }

    fn apply_handshake_interval(&mut self, msg: &Msg) {
        if msg.interval != INTERVAL_UNCHANGED && msg.interval != 0 && msg.interval != self.interval {
            log::info!("checkpoint interval set to {} s by a process of the computation", msg.interval);
            self.interval = msg.interval;
            self.arm_interval();
        }
    }

    fn arm_interval(&mut self) {
        self.next_ckpt = (self.interval > 0).then(|| Instant::now() + Duration::from_secs(self.interval as u64));
    }

    fn make_worker(&self, vpid: i32, msg: &Msg, extra: &[u8], state: WorkerState) -> Worker {
        let (host, prog) = split_worker_payload(extra);
        let host = String::from_utf8_lossy(host).into_owned();
        let prog = String::from_utf8_lossy(prog).into_owned();
        let unique = format!("{:x}-{}-{:x}", host_id(&host), vpid, monotonic_ns());
        Worker {
            vpid,
            pid: msg.pid,
            host: if host.is_empty() { "?".into() } else { host },
            prog: if prog.is_empty() { "?".into() } else { prog },
            state,
            unique,
        }
    }

    fn accept_msg(&self, vpid: i32) -> Msg {
        let mut m = Msg::new(Kind::Accept);
        m.vpid = vpid;
        m.comp_id = self.comp_id;
        m.coord_timestamp = self.timestamp;
        m.generation = self.generation;
        m.interval = self.interval;
        m.num_peers = self.worker_count() as u32;
        m.state = WorkerState::Running as u32;
        m
    }

    fn reject(&mut self, tok: u64, kind: Kind, why: &str) {
        let label = self.conns.get(&tok).map(|c| c.label()).unwrap_or_default();
        log::warn!("refusing {label}: {why}");
        let mut m = Msg::new(kind);
        m.comp_id = self.comp_id;
        m.state = self.min_state() as u32;
        self.send_and_close(tok, &m, why.as_bytes());
        if let Some(c) = self.conns.get_mut(&tok) {
            c.role = Role::User; // nothing more is read from it
        }
    }

    fn new_worker(&mut self, tok: u64, msg: &Msg, extra: &[u8]) {
        if self.kill_in_progress {
            self.send_and_close(tok, &Msg::new(Kind::KillPeer), &[]);
            if let Some(c) = self.conns.get_mut(&tok) {
                c.role = Role::User;
            }
            return;
        }
        if self.ckpt.is_some() || self.restart.is_some() {
            let what = if self.ckpt.is_some() { "checkpoint" } else { "restart" };
            return self.reject(tok, Kind::RejectNotRunning, &format!("a {what} is in progress"));
        }
        if self.workers().any(|(_, w)| !matches!(w.state, WorkerState::Running | WorkerState::Unknown)) {
            return self.reject(
                tok,
                Kind::RejectNotRunning,
                "the computation is not running (a checkpoint is finishing)",
            );
        }
        let first = self.worker_count() == 0;
        if first {
            self.init_computation();
        }
        self.apply_handshake_interval(msg);
        let vpid = self.alloc_vpid();
        // A new process counts as running unless it says otherwise.
        let state = match WorkerState::from_u32(msg.state) {
            Some(WorkerState::Unknown) | None => WorkerState::Running,
            Some(s) => s,
        };
        let w = self.make_worker(vpid, msg, extra, state);
        log::info!("process {}[{}:{}]@{} joined", w.prog, w.vpid, w.pid, w.host);
        if let Some(c) = self.conns.get_mut(&tok) {
            c.role = Role::Worker(w);
        }
        let reply = self.accept_msg(vpid);
        self.send(tok, &reply, &[]);
        if first {
            self.ever_had_worker = true;
            self.arm_interval();
        }
    }

    fn restart_worker(&mut self, tok: u64, msg: &Msg, extra: &[u8]) {
        if self.kill_in_progress {
            self.send_and_close(tok, &Msg::new(Kind::KillPeer), &[]);
            if let Some(c) = self.conns.get_mut(&tok) {
                c.role = Role::User;
            }
            return;
        }
        if self.ckpt.is_some() {
            return self.reject(tok, Kind::RejectNotRestarting, "a checkpoint is in progress");
        }
        match &self.restart {
            None if self.worker_count() > 0 => {
                return self.reject(
                    tok,
                    Kind::RejectNotRestarting,
                    "this coordinator already serves a running computation",
                )
            }
            None => {
                self.init_computation();
                if msg.comp_id != 0 {
                    self.comp_id = msg.comp_id;
                }
                self.generation = msg.generation;
                self.restart = Some(Restart { expected: msg.num_peers.max(1), participants: BTreeSet::new() });
                self.ever_had_worker = true;
                log::info!(
                    "restarting computation {:x} (generation {}) of {} processes",
                    self.comp_id,
                    self.generation,
                    msg.num_peers.max(1)
                );
            }
            Some(r) => {
                if msg.comp_id != self.comp_id {
                    return self.reject(
                        tok,
                        Kind::RejectWrongComp,
                        &format!("image of computation {:x}, restarting {:x}", msg.comp_id, self.comp_id),
                    );
                }
                if msg.num_peers.max(1) != r.expected {
                    return self.reject(
                        tok,
                        Kind::RejectWrongComp,
                        &format!("image says {} processes, restart has {}", msg.num_peers, r.expected),
                    );
                }
            }
        }
        self.apply_handshake_interval(msg);
        let vpid = if msg.vpid > 0 { msg.vpid } else { self.alloc_vpid() };
        if self.workers().any(|(_, w)| w.vpid == vpid) {
            return self.reject(tok, Kind::RejectWrongComp, &format!("virtual pid {vpid} is already restarted"));
        }
        let w = self.make_worker(vpid, msg, extra, WorkerState::Restarting);
        log::info!("process {}[{}:{}]@{} restarting", w.prog, w.vpid, w.pid, w.host);
        if let Some(c) = self.conns.get_mut(&tok) {
            c.role = Role::Worker(w);
        }
        if let Some(r) = &mut self.restart {
            r.participants.insert(tok);
        }
        let reply = self.accept_msg(vpid);
        self.send(tok, &reply, &[]);
        self.check_barrier();
    }

    fn update_after_exec(&mut self, tok: u64, msg: &Msg, extra: &[u8]) {
        let prog = payload_text(extra);
        if let Some(Role::Worker(w)) = self.conns.get_mut(&tok).map(|c| &mut c.role) {
            if !prog.is_empty() {
                log::info!("process {}[{}] is now {}", w.prog, w.vpid, prog);
                w.prog = prog;
            }
            if msg.pid > 0 {
                w.pid = msg.pid;
            }
        }
        // The new program image knows nothing of a checkpoint in flight: tell it again.
        let resend = match (&self.ckpt, &self.barrier) {
            (Some(c), b) => {
                c.participants.contains(&tok)
                    && !c.filenames.contains_key(&tok)
                    && !b.as_ref().is_some_and(|b| b.arrived.contains(&tok))
            }
            _ => false,
        };
        if resend {
            let m = self.do_checkpoint_msg();
            self.send(tok, &m, &[]);
        }
        self.check_restart_done();
    }

    // ---- Checkpoint --------------------------------------------------------------------

    fn can_start_ckpt(&self) -> bool {
        self.ckpt.is_none() && self.restart.is_none() && !self.kill_in_progress && self.all_running()
    }

    fn do_checkpoint_msg(&self) -> Msg {
        let mut m = Msg::new(Kind::DoCheckpoint);
        m.comp_id = self.comp_id;
        m.coord_timestamp = self.timestamp;
        m.interval = self.interval;
        if let Some(c) = &self.ckpt {
            m.generation = c.generation;
            m.num_peers = c.participants.len() as u32;
            if c.kill_after {
                m.flags |= FLAG_EXIT_AFTER_CKPT;
            }
        }
        m
    }

    /// Starts a checkpoint of every worker if they are all running; false if it cannot start.
    fn start_ckpt(&mut self, kill_after: bool, requester: Option<u64>) -> bool {
        if !self.can_start_ckpt() {
            return false;
        }
        self.generation += 1;
        let now = Instant::now();
        let participants: BTreeSet<u64> = self.sorted_worker_toks().into_iter().collect();
        let n = participants.len();
        self.ckpt = Some(Ckpt {
            generation: self.generation,
            kill_after: kill_after || self.cfg.kill_after_ckpt,
            participants: participants.clone(),
            filenames: BTreeMap::new(),
            requesters: requester.into_iter().collect(),
            started: now,
            last_progress: now,
        });
        self.barrier = None;
        self.next_ckpt = None;
        log::info!(
            "checkpoint {} of {n} process{} started{}",
            self.generation,
            if n == 1 { "" } else { "es" },
            if kill_after || self.cfg.kill_after_ckpt { " (they exit afterwards)" } else { "" }
        );
        let m = self.do_checkpoint_msg();
        for tok in participants {
            self.send(tok, &m, &[]);
        }
        true
    }

    /// The group that the current barrier is for, and how many must be in it.
    fn barrier_group(&self) -> Option<(&BTreeSet<u64>, usize)> {
        if let Some(c) = &self.ckpt {
            Some((&c.participants, 1))
        } else {
            self.restart.as_ref().map(|r| (&r.participants, r.expected as usize))
        }
    }

    fn barrier_arrival(&mut self, tok: u64, msg: &Msg) {
        let name = msg.name_bytes().to_vec();
        let shown = String::from_utf8_lossy(&name).into_owned();
        let member = self.barrier_group().is_some_and(|(g, _)| g.contains(&tok));
        if !member {
            let label = self.conns.get(&tok).map(|c| c.label()).unwrap_or_default();
            log::warn!("{label} arrived at barrier {shown} outside a checkpoint or restart; ignored");
            return;
        }
        match &mut self.barrier {
            None => self.barrier = Some(Barrier { name, arrived: BTreeSet::from([tok]) }),
            Some(b) if b.name == name => {
                b.arrived.insert(tok);
            }
            Some(b) => {
                let active = String::from_utf8_lossy(&b.name).into_owned();
                return self
                    .drop_conn(tok, Some(format!("arrived at barrier {shown} while barrier {active} is active")));
            }
        }
        log::trace!("barrier {shown}: arrival of {tok}");
        if let Some(c) = &mut self.ckpt {
            c.last_progress = Instant::now();
        }
        self.check_barrier();
    }

    /// Releases the current barrier once every member of its group has arrived.
    fn check_barrier(&mut self) {
        let Some(b) = &self.barrier else { return };
        let Some((group, needed)) = self.barrier_group() else {
            self.barrier = None;
            return;
        };
        if group.is_empty() || group.len() < needed || !group.iter().all(|t| b.arrived.contains(t)) {
            return;
        }
        let members: Vec<u64> = group.iter().copied().collect();
        let mut m = Msg::new(Kind::BarrierReleased).with_name(&b.name);
        m.num_peers = members.len() as u32;
        m.comp_id = self.comp_id;
        m.coord_timestamp = self.timestamp;
        m.generation = self.ckpt.as_ref().map(|c| c.generation).unwrap_or(self.generation);
        log::debug!("barrier {} released for {} processes", String::from_utf8_lossy(&b.name), members.len());
        self.barrier = None;
        if let Some(c) = &mut self.ckpt {
            c.last_progress = Instant::now();
        }
        for tok in members {
            self.send(tok, &m, &[]);
        }
    }

    fn ckpt_filename(&mut self, tok: u64, extra: &[u8]) {
        let path = payload_text(extra);
        let vpid = self.conns.get(&tok).and_then(|c| c.worker()).map(|w| w.vpid).unwrap_or(0);
        match &mut self.ckpt {
            Some(c) if c.participants.contains(&tok) => {
                log::debug!("image of process {vpid}: {path}");
                c.filenames.insert(tok, (vpid, path));
                c.last_progress = Instant::now();
            }
            _ => {
                log::warn!("image name {path:?} from process {vpid} outside a checkpoint; ignored");
                return;
            }
        }
        self.check_ckpt_done();
    }

    fn ckpt_failed_by(&mut self, tok: u64, extra: &[u8]) {
        let reason = payload_text(extra);
        let label = self.conns.get(&tok).map(|c| c.label()).unwrap_or_default();
        let reason = if reason.is_empty() { "no reason given".to_string() } else { reason };
        if self.ckpt.as_ref().is_some_and(|c| c.participants.contains(&tok)) {
            self.fail_ckpt(format!("{label}: {reason}"));
        } else {
            log::warn!("{label} reports a failed checkpoint outside a checkpoint: {reason}");
        }
    }

    fn check_ckpt_done(&mut self) {
        let Some(c) = &self.ckpt else { return };
        if c.participants.is_empty() && c.filenames.is_empty() {
            return self.fail_ckpt("every process exited during the checkpoint".into());
        }
        if c.filenames.is_empty() || !c.participants.iter().all(|t| c.filenames.contains_key(t)) {
            return;
        }
        let mut images: Vec<(i32, String)> = c.filenames.values().cloned().collect();
        images.sort();
        let images: Vec<String> = images.into_iter().map(|(_, p)| p).collect();
        let (gen, took) = (c.generation, c.started.elapsed());
        match self.write_restart_script(&images) {
            Ok(script) => {
                let c = self.ckpt.take().expect("checkpoint in flight");
                self.barrier = None;
                log::info!(
                    "checkpoint {gen} complete in {:.1} s: {} image{}; restart script {}",
                    took.as_secs_f64(),
                    images.len(),
                    if images.len() == 1 { "" } else { "s" },
                    script.display()
                );
                let mut m = Msg::new(Kind::UserCmdResult);
                m.cmd = Cmd::BlockingCkpt as u32;
                m.cmd_status = status::SUCCESS;
                m.num_peers = images.len() as u32;
                m.comp_id = self.comp_id;
                m.generation = gen;
                m.interval = self.interval;
                for r in c.requesters {
                    self.send_and_close(r, &m, &[]);
                }
                self.arm_interval();
            }
            Err(e) => self.fail_ckpt(format!(
                "the images were written, but not the restart script in {}: {e}",
                self.cfg.ckptdir.display()
            )),
        }
    }

    /// Forgets the checkpoint in flight and tells the `--bcheckpoint` clients why it failed.
    fn fail_ckpt(&mut self, reason: String) {
        let Some(c) = self.ckpt.take() else { return };
        self.barrier = None;
        log::error!("checkpoint {} failed: {reason}", c.generation);
        let mut m = Msg::new(Kind::UserCmdResult);
        m.cmd = Cmd::BlockingCkpt as u32;
        m.cmd_status = status::CKPT_FAILED;
        m.num_peers = c.participants.len() as u32;
        m.comp_id = self.comp_id;
        m.generation = c.generation;
        for r in c.requesters {
            self.send_and_close(r, &m, reason.as_bytes());
        }
        self.arm_interval();
    }

    fn restart_command(&self) -> String {
        let exe = std::env::current_exe().ok();
        if let Some(exe) = &exe {
            if let Some(dir) = exe.parent() {
                let cand = dir.join("dmtcp_restart");
                if cand.exists() {
                    return shell_quote(&cand.to_string_lossy());
                }
            }
            // The multicall binary itself, unless it was installed under a role's name.
            let name = exe.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if !name.starts_with("dmtcp_") {
                return format!("{} restart", shell_quote(&exe.to_string_lossy()));
            }
        }
        "dmtcp_restart".to_string()
    }

    /// The host name that workers can reach this coordinator at.
    fn public_host(&self) -> String {
        match self.cfg.host.parse::<std::net::IpAddr>() {
            Ok(ip) if ip.is_unspecified() => self.hostname.clone(),
            _ => self.cfg.host.clone(),
        }
    }

    /// Writes `dmtcp_restart_script_<compid>.sh` and points `dmtcp_restart_script.sh` at it.
    fn write_restart_script(&self, images: &[String]) -> io::Result<PathBuf> {
        let dir = &self.cfg.ckptdir;
        fs::create_dir_all(dir)?;
        let name = format!("dmtcp_restart_script_{:016x}.sh", self.comp_id);
        let mut s = String::new();
        s.push_str("#!/bin/bash\n");
        s.push_str(&format!(
            "# Restarts computation {:016x} from its checkpoint {} (written by {} on {}).\n",
            self.comp_id,
            self.ckpt.as_ref().map(|c| c.generation).unwrap_or(self.generation),
            PROGRAM,
            self.hostname
        ));
        s.push_str("# Usage: dmtcp_restart_script.sh [--coord-host H] [--coord-port P] [--interval S] [dmtcp_restart options]\n");
        s.push_str("set -m\n");
        s.push_str(&format!(
            "coord_host=${{{}:-{}}}\n",
            dmtcp_proto::env::COORD_HOST,
            shell_quote(&self.public_host())
        ));
        s.push_str(&format!("coord_port=${{{}:-{}}}\n", dmtcp_proto::env::COORD_PORT, self.port));
        s.push_str(&format!("checkpoint_interval=${{{}:-{}}}\n", dmtcp_proto::env::CHECKPOINT_INTERVAL, self.interval));
        s.push_str(
            "while [ $# -gt 0 ]; do\n\
             \x20 case \"$1\" in\n\
             \x20   -h|--coord-host|--host) coord_host=\"$2\"; shift 2 ;;\n\
             \x20   -p|--coord-port|--port) coord_port=\"$2\"; shift 2 ;;\n\
             \x20   -i|--interval) checkpoint_interval=\"$2\"; shift 2 ;;\n\
             \x20   --help) sed -n 3p \"$0\"; exit 0 ;;\n\
             \x20   *) break ;;\n\
             \x20 esac\n\
             done\n",
        );
        s.push_str(
            "interval_opt=()\n\
             if [ -n \"$checkpoint_interval\" ] && [ \"$checkpoint_interval\" != 0 ]; then\n\
             \x20 interval_opt=(--interval \"$checkpoint_interval\")\n\
             fi\n",
        );
        s.push_str(&format!(
            "exec {} --coord-host \"$coord_host\" --coord-port \"$coord_port\" \"${{interval_opt[@]}}\" \"$@\"",
            self.restart_command()
        ));
        for img in images {
            s.push_str(" \\\n  ");
            s.push_str(&shell_quote(img));
        }
        s.push('\n');
        let path = dir.join(&name);
        write_atomic(&path, s.as_bytes(), 0o700)?;
        let link = dir.join("dmtcp_restart_script.sh");
        let tmp_link = dir.join(format!(".dmtcp_restart_script.sh.tmp.{}", std::process::id()));
        let _ = fs::remove_file(&tmp_link);
        std::os::unix::fs::symlink(&name, &tmp_link)?;
        if let Err(e) = fs::rename(&tmp_link, &link) {
            let _ = fs::remove_file(&tmp_link);
            return Err(e);
        }
        Ok(link)
    }

    // ---- Departures --------------------------------------------------------------------

    fn worker_gone(&mut self, tok: u64, w: Worker) {
        log::info!("process {}[{}:{}]@{} disconnected", w.prog, w.vpid, w.pid, w.host);
        if let Some(b) = &mut self.barrier {
            b.arrived.remove(&tok);
        }
        if let Some(c) = &mut self.ckpt {
            if c.participants.remove(&tok) {
                c.last_progress = Instant::now();
            }
        }
        if let Some(r) = &mut self.restart {
            if r.participants.remove(&tok) {
                log::warn!("process {} exited during the restart", w.vpid);
                r.expected = r.expected.saturating_sub(1);
                if r.participants.is_empty() {
                    self.restart = None;
                }
            }
        }
        self.check_barrier();
        self.check_ckpt_done();
        self.check_restart_done();
        if self.worker_count() == 0 {
            self.kill_in_progress = false;
            self.no_workers_since = Instant::now();
            self.next_ckpt = None;
            self.restart = None;
            if self.cfg.exit_on_last && self.ever_had_worker && self.exit.is_none() {
                log::info!("the last process disconnected; quitting (--exit-on-last)");
                self.exit = Some(0);
            }
        }
    }

    /// A restart is over once every restarted process runs again.
    fn check_restart_done(&mut self) {
        let Some(r) = &self.restart else { return };
        let done = r.participants.len() >= r.expected as usize
            && r.participants
                .iter()
                .all(|t| self.conns.get(t).and_then(|c| c.worker()).is_some_and(|w| w.state == WorkerState::Running));
        if done {
            log::info!("restart complete: {} processes running", r.participants.len());
            self.restart = None;
            self.barrier = None;
            self.arm_interval();
        }
    }

    // ---- User commands -----------------------------------------------------------------

    fn user_cmd_from(&mut self, tok: u64, msg: &Msg) {
        let cmd = Cmd::from_u32(msg.cmd);
        if let Some(c @ Cmd::BlockingCkpt) = cmd {
            if self.start_ckpt(false, Some(tok)) {
                return; // answered when the checkpoint completes or fails
            }
            let r = self.not_running_reply(c);
            return self.send_and_close(tok, &r.msg, r.text.as_bytes());
        }
        let r = match cmd {
            Some(c) => self.user_cmd(c, msg.interval),
            None => {
                let mut m = Msg::new(Kind::UserCmdResult);
                m.cmd = msg.cmd;
                m.cmd_status = status::INVALID_COMMAND;
                Reply { msg: m, text: format!("unknown command {}", msg.cmd) }
            }
        };
        self.send_and_close(tok, &r.msg, r.text.as_bytes());
    }

    fn result_msg(&self, cmd: Cmd, st: i32) -> Msg {
        let mut m = Msg::new(Kind::UserCmdResult);
        m.cmd = cmd as u32;
        m.cmd_status = st;
        m.num_peers = self.worker_count() as u32;
        m.running = (self.all_running() && self.ckpt.is_none() && self.restart.is_none()) as u32;
        m.interval = self.interval;
        m.comp_id = self.comp_id;
        m.coord_timestamp = self.timestamp;
        m.generation = self.generation;
        m.state = self.min_state() as u32;
        m
    }

    fn not_running_reply(&self, cmd: Cmd) -> Reply {
        let text = if self.worker_count() == 0 {
            "no process is connected to the coordinator".to_string()
        } else if self.ckpt.is_some() {
            "a checkpoint is already in progress".to_string()
        } else if self.restart.is_some() {
            "a restart is in progress".to_string()
        } else if self.kill_in_progress {
            "the computation is being killed".to_string()
        } else {
            format!("the computation is not running (state {})", self.min_state().name())
        };
        Reply { msg: self.result_msg(cmd, status::NOT_RUNNING), text }
    }

    fn list_text(&self) -> String {
        let mut s = String::from("Client List:\n#, PROG[virtPID:realPID]@HOST, DMTCP-UNIQUEPID, STATE\n");
        for (i, tok) in self.sorted_worker_toks().iter().enumerate() {
            if let Some(w) = self.conns.get(tok).and_then(|c| c.worker()) {
                s.push_str(&format!(
                    "{}, {}[{}:{}]@{}, {}, {}\n",
                    i + 1,
                    w.prog,
                    w.vpid,
                    w.pid,
                    w.host,
                    w.unique,
                    w.state.name()
                ));
            }
        }
        s
    }

    /// Every command but a blocking checkpoint (whose reply comes later).
    fn user_cmd(&mut self, cmd: Cmd, interval: u32) -> Reply {
        let ok = |me: &Self, text: String| Reply { msg: me.result_msg(cmd, status::SUCCESS), text };
        match cmd {
            Cmd::Status => ok(self, String::new()),
            Cmd::List => {
                let t = self.list_text();
                ok(self, t)
            }
            Cmd::Checkpoint | Cmd::KillAfterCkpt | Cmd::BlockingCkpt => {
                if self.start_ckpt(cmd == Cmd::KillAfterCkpt, None) {
                    ok(self, String::new())
                } else {
                    self.not_running_reply(cmd)
                }
            }
            Cmd::UpdateInterval => {
                if interval != INTERVAL_UNCHANGED {
                    self.interval = interval;
                    self.default_interval = interval;
                    log::info!("checkpoint interval: {}", interval_text(interval));
                    if self.worker_count() > 0 && self.ckpt.is_none() {
                        self.arm_interval();
                    } else if interval == 0 {
                        self.next_ckpt = None;
                    }
                }
                ok(self, String::new())
            }
            Cmd::Kill => {
                self.kill_all();
                ok(self, String::new())
            }
            Cmd::Quit => {
                let r = ok(self, String::new());
                self.quit("quit command");
                r
            }
        }
    }

    fn kill_all(&mut self) {
        let toks = self.sorted_worker_toks();
        if toks.is_empty() {
            return;
        }
        log::info!("killing {} process{}", toks.len(), if toks.len() == 1 { "" } else { "es" });
        if self.ckpt.is_some() {
            self.fail_ckpt("the computation was killed".into());
        }
        self.kill_in_progress = true;
        let m = Msg::new(Kind::KillPeer);
        for tok in toks {
            self.send(tok, &m, &[]);
        }
    }

    fn quit(&mut self, why: &str) {
        log::info!("quitting ({why})");
        self.kill_all();
        if self.exit.is_none() {
            self.exit = Some(0);
        }
    }

    // ---- Timers ------------------------------------------------------------------------

    fn tick(&mut self) {
        let now = Instant::now();
        if let Some(t) = self.listener_paused_until {
            if now >= t {
                self.listener_paused_until = None;
                if let Err(e) = self.epoll.add(&self.listener, EpollEvent::new(EpollFlags::EPOLLIN, TOK_LISTENER)) {
                    log::error!("cannot watch the listener again: {e}");
                    self.exit = Some(cli::EXIT_FAILURE);
                    return;
                }
            }
        }
        if now >= self.next_scan {
            self.next_scan = now + Duration::from_millis(100);
            let mut stale = Vec::new();
            for (&tok, c) in &self.conns {
                if c.dead {
                    continue;
                }
                if matches!(c.role, Role::Pending) && now.duration_since(c.since) >= FIRST_MSG_TIMEOUT {
                    let why = if c.inbuf.is_empty() {
                        "sent nothing within 2 s".to_string()
                    } else {
                        format!("sent only {} bytes of its first message within 2 s", c.inbuf.len())
                    };
                    stale.push((tok, why));
                } else if let Some(p) = c.partial_since {
                    if c.worker().is_some() && now.duration_since(p) >= PARTIAL_MSG_TIMEOUT {
                        stale.push((
                            tok,
                            format!("stalled in the middle of a message for {} s", PARTIAL_MSG_TIMEOUT.as_secs()),
                        ));
                    }
                }
            }
            for (tok, why) in stale {
                self.drop_conn(tok, Some(why));
            }
            self.reap();
        }
        if let Some(t) = self.cfg.timeout {
            if now.duration_since(self.started) >= t {
                log::info!("quitting: --timeout of {} s reached", t.as_secs());
                self.exit = Some(0);
                return;
            }
        }
        if let Some(t) = self.cfg.stale_timeout {
            if self.worker_count() == 0 && now.duration_since(self.no_workers_since) >= t {
                log::info!("quitting: no process connected for {} s (--stale-timeout)", t.as_secs());
                self.exit = Some(0);
                return;
            }
        }
        if let (Some(c), Some(t)) = (&self.ckpt, self.cfg.ckpt_timeout) {
            if now.duration_since(c.last_progress) >= t {
                let at = match &self.barrier {
                    Some(b) => format!(
                        "; {} of {} processes at barrier {}",
                        b.arrived.len(),
                        c.participants.len(),
                        String::from_utf8_lossy(&b.name)
                    ),
                    None => format!("; {} of {} images written", c.filenames.len(), c.participants.len()),
                };
                self.fail_ckpt(format!("no progress for {} s{at}", t.as_secs()));
            }
        }
        if let Some(t) = self.next_ckpt {
            if now >= t && self.interval > 0 && !self.start_ckpt(false, None) {
                // Not every process is running: try again shortly.
                self.next_ckpt = Some(now + Duration::from_secs(1));
            }
        }
    }

    fn read_signals(&mut self) {
        loop {
            match self.sigfd.read_signal() {
                Ok(Some(info)) => {
                    let name = Signal::try_from(info.ssi_signo as i32).map(|s| s.as_str()).unwrap_or("a signal");
                    self.quit(&format!("received {name}"));
                }
                Ok(None) => return,
                Err(Errno::EINTR) => {}
                Err(e) => {
                    log::error!("reading signals: {e}");
                    return;
                }
            }
        }
    }

    // ---- Stdin -------------------------------------------------------------------------

    fn stop_stdin(&mut self) {
        if self.stdin_open {
            let _ = self.epoll.delete(io::stdin().as_fd());
            self.stdin_open = false;
        }
    }

    fn read_stdin(&mut self) {
        let mut buf = [0u8; 4096];
        // One read per readiness event: stdin stays blocking (it may be shared with a shell),
        // and epoll said a read will not block.
        let n = match nix::unistd::read(io::stdin().as_fd(), &mut buf) {
            Ok(n) => n,
            Err(Errno::EINTR | Errno::EAGAIN) => return,
            Err(e) => {
                log::info!("not reading commands from stdin any more: {e}");
                self.stop_stdin();
                return;
            }
        };
        if n == 0 {
            log::debug!("stdin closed; not reading commands any more");
            self.stop_stdin();
            let rest = std::mem::take(&mut self.stdin_buf);
            if !rest.is_empty() && !self.stdin_discarding {
                self.stdin_line(&String::from_utf8_lossy(&rest));
            }
            return;
        }
        self.feed_stdin(&buf[..n]);
    }

    fn feed_stdin(&mut self, data: &[u8]) {
        for &b in data {
            if b == b'\n' {
                let line = std::mem::take(&mut self.stdin_buf);
                if !std::mem::replace(&mut self.stdin_discarding, false) {
                    self.stdin_line(&String::from_utf8_lossy(&line));
                }
            } else if self.stdin_buf.len() < STDIN_LINE_MAX {
                self.stdin_buf.push(b);
            } else {
                self.stdin_discarding = true;
                self.stdin_buf.clear();
            }
            if self.exit.is_some() {
                return;
            }
        }
    }

    /// stdin that epoll refuses (a regular file, /dev/null) never blocks: read it all now.
    fn read_unpollable_stdin(&mut self) {
        let mut data = Vec::new();
        let mut stdin = io::stdin().lock();
        let mut buf = [0u8; 4096];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) if data.len() < 1 << 20 => data.extend_from_slice(&buf[..n]),
                Ok(_) => break,
            }
        }
        drop(stdin);
        self.feed_stdin(&data);
        if !self.stdin_buf.is_empty() {
            let rest = std::mem::take(&mut self.stdin_buf);
            self.stdin_line(&String::from_utf8_lossy(&rest));
        }
    }

    fn stdin_line(&mut self, line: &str) {
        let line = line.trim();
        let (word, arg) = match line.split_once(char::is_whitespace) {
            Some((w, a)) => (w, a.trim()),
            None => (line, ""),
        };
        // DMTCP also accepts `i10`.
        let (word, arg) = match word.strip_prefix('i') {
            Some(n) if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) => ("i", n),
            _ => (word, arg),
        };
        let mut out = String::new();
        match word {
            "" => return,
            "s" | "status" => out = self.status_text(),
            "l" | "t" | "list" => out = self.list_text(),
            "c" | "checkpoint" => {
                if !self.start_ckpt(false, None) {
                    out = format!("cannot checkpoint: {}\n", self.not_running_reply(Cmd::Checkpoint).text);
                }
            }
            "kc" | "ck" | "kcheckpoint" => {
                if !self.start_ckpt(true, None) {
                    out = format!("cannot checkpoint: {}\n", self.not_running_reply(Cmd::KillAfterCkpt).text);
                }
            }
            "k" | "kill" => {
                if self.worker_count() == 0 {
                    out = "no process to kill\n".into();
                }
                self.kill_all();
            }
            "q" | "quit" => self.quit("q on stdin"),
            "i" | "interval" => {
                if arg.is_empty() {
                    out = format!("Checkpoint Interval: {}\n", interval_text(self.interval));
                } else {
                    match arg.parse::<u32>() {
                        Ok(v) if v != INTERVAL_UNCHANGED => {
                            self.user_cmd(Cmd::UpdateInterval, v);
                            out = format!("Checkpoint Interval: {}\n", interval_text(v));
                        }
                        _ => out = format!("not a number of seconds: {arg}\n"),
                    }
                }
            }
            "?" | "h" | "help" => out = STDIN_HELP.to_string(),
            other => out = format!("unknown command '{other}'; type '?' for help\n"),
        }
        if !out.is_empty() {
            // A closed stdout is no reason to stop coordinating.
            let _ = io::stdout().lock().write_all(out.as_bytes());
            let _ = io::stdout().lock().flush();
        }
    }

    fn status_text(&self) -> String {
        let running = self.all_running() && self.ckpt.is_none() && self.restart.is_none();
        format!(
            "Status...\n\
             Host: {} ({})\n\
             Port: {}\n\
             Checkpoint Interval: {}\n\
             Exit on last client: {}\n\
             Kill after checkpoint: {}\n\
             Computation Id: {:016x}\n\
             Checkpoint Dir: {}\n\
             NUM_PEERS={}\n\
             RUNNING={}\n",
            self.hostname,
            self.cfg.host,
            self.port,
            interval_text(self.interval),
            self.cfg.exit_on_last as u8,
            self.cfg.kill_after_ckpt as u8,
            self.comp_id,
            self.cfg.ckptdir.display(),
            self.worker_count(),
            if running { "yes" } else { "no" }
        )
    }

    // ---- Exit --------------------------------------------------------------------------

    /// Writes what is still queued (briefly, blocking), removes the port file.
    fn shutdown(&mut self, code: i32) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(1);
        for conn in self.conns.values_mut() {
            if conn.dead || conn.out_pos >= conn.out.len() {
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if conn.stream.set_nonblocking(false).is_ok() && conn.stream.set_write_timeout(Some(left)).is_ok() {
                let _ = conn.stream.write_all(&conn.out[conn.out_pos..]);
            }
        }
        self.conns.clear();
        remove_port_file(&self.cfg);
        code
    }
}

const STDIN_HELP: &str = "\
COMMANDS:
  l : List connected nodes
  s : Print status message
  c : Checkpoint all nodes
  kc : Checkpoint all nodes, and kill them afterwards
  i : Print current checkpoint interval
      (To change checkpoint interval, use 'i <val>', where <val> is in seconds)
  k : Kill all nodes
  q : Kill all nodes and quit
  ? : Show this message
";
