//! `dmtcp_command`: sends one user command to a coordinator and prints the answer, as text or
//! (`--json`) as one JSON object in DMTCP's schema (reference §1.4, §2.5).
//!
//! Exit status: 0 success, 1 usage error, 2 failure (no coordinator at the address, the
//! computation is not running, the checkpoint failed).
//!
//! With `--json` (found anywhere on the line, before anything else is parsed) every outcome is
//! one JSON object on stdout and nothing goes to stderr, as DMTCP's `dmtcp_command.cpp` does:
//! `--help` and no command are `DMT_HELP` (exit 0), `--version` is `DMT_VERSION`, an unknown
//! command, a missing value or two commands are `DMT_INVALID_COORDINATOR_COMMAND` with status
//! `DMT_COORD_INVALID_COMMAND` (exit 2); `coordinator_host` is the host as given or `localhost`.
//! Our additions to the schema: `error` (what went wrong, in words), `warnings` of a blocking
//! checkpoint, and the status `DMT_COORD_CKPT_FAILED` of a checkpoint that a process failed.

/// `println!`/`print!` that ignore a closed stdout (`dmtcp command --status | grep -q`): the
/// command's status is its exit code, not a panic (an abort, with panic = "abort").
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}

use crate::common::{cli, client};
use argh::FromArgs;
use dmtcp_proto::{status, Cmd, Kind, Msg, INTERVAL_UNCHANGED};
use std::io;
use std::time::Duration;

const PROGRAM: &str = "dmtcp_command";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for the answer to a command other than a blocking checkpoint.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(FromArgs)]
#[argh(help_triggers("--help"))]
/// Send a command to the dmtcp_coordinator of a computation. DMTCP's bare words work too:
/// s, l, c, bc, kc, k, q, i N (e.g. `dmtcp_command bc`).
struct Args {
    /// coordinator host (default: $DMTCP_COORD_HOST or 127.0.0.1)
    #[argh(option, short = 'h')]
    coord_host: Option<String>,

    /// coordinator port (default: $DMTCP_COORD_PORT or 7779)
    #[argh(option, short = 'p')]
    coord_port: Option<u16>,

    /// print the result as one JSON object
    #[argh(switch)]
    json: bool,

    /// print errors only
    #[argh(switch)]
    quiet: bool,

    /// print the version and exit
    #[argh(switch)]
    version: bool,

    /// print the status of the computation
    #[argh(switch, short = 's')]
    status: bool,

    /// list the processes of the computation
    #[argh(switch, short = 'l')]
    list: bool,

    /// start a checkpoint (returns at once)
    #[argh(switch, short = 'c')]
    checkpoint: bool,

    /// checkpoint and wait until it is written (also -bc)
    #[argh(switch)]
    bcheckpoint: bool,

    /// checkpoint, then kill the computation (also -kc)
    #[argh(switch)]
    kcheckpoint: bool,

    /// with a checkpoint command: write delta images where a process has a chain to build on
    /// (else a full image that starts one), whatever it was launched with (env
    /// DMTCP_INCREMENTAL=1)
    #[argh(switch)]
    incremental: bool,

    /// with a checkpoint command: write full images (a new chain where a process keeps one)
    #[argh(switch)]
    full: bool,

    /// set the checkpoint interval to N seconds (0 = checkpoint manually)
    #[argh(option, short = 'i')]
    interval: Option<u32>,

    /// kill every process of the computation
    #[argh(switch, short = 'k')]
    kill: bool,

    /// kill every process and quit the coordinator
    #[argh(switch, short = 'q')]
    quit: bool,
}

/// Options that argh knows; every other dashed word may be a DMTCP command spelling.
const KNOWN: &[&str] = &[
    "-h",
    "--coord-host",
    "-p",
    "--coord-port",
    "--json",
    "--quiet",
    "--version",
    "--help",
    "-s",
    "--status",
    "-l",
    "--list",
    "-c",
    "--checkpoint",
    "--bcheckpoint",
    "--kcheckpoint",
    "--incremental",
    "--full",
    "-i",
    "--interval",
    "-k",
    "--kill",
    "-q",
    "--quit",
];

/// Options followed by a value (the short ones first; `normalize` wants the long ones).
const TAKES_VALUE: &[&str] = &["-h", "-p", "-i", "--coord-host", "--coord-port", "--interval"];

/// DMTCP's command words (leading dashes stripped) and the option they stand for.
fn command_word(w: &str) -> Option<&'static str> {
    Some(match w {
        "s" | "status" => "--status",
        "l" | "t" | "list" => "--list",
        "c" | "checkpoint" => "--checkpoint",
        "bc" | "bcheckpoint" => "--bcheckpoint",
        "kc" | "ck" | "K" | "Kc" | "kcheckpoint" => "--kcheckpoint",
        "k" | "kill" => "--kill",
        "q" | "quit" => "--quit",
        "i" | "interval" => "--interval",
        _ => return None,
    })
}

/// Rewrites DMTCP's spellings (`-bc`, `bc`, `i 10`, `i10`, `-p7779`, `--coord-port=7779`,
/// `--host`, `--port`) into the options argh parses.
fn preprocess(args: &[String]) -> Vec<String> {
    let args: Vec<String> = args
        .iter()
        .map(|a| match a.as_str() {
            "--host" => "--coord-host".to_string(),
            "--port" => "--coord-port".to_string(),
            _ => a.clone(),
        })
        .collect();
    let args = cli::normalize(&args, &['h', 'p', 'i'], &TAKES_VALUE[3..], false);
    let mut out = Vec::with_capacity(args.len());
    let mut value_next = false;
    for a in args {
        if std::mem::take(&mut value_next) {
            out.push(a);
            continue;
        }
        if KNOWN.contains(&a.as_str()) {
            value_next = TAKES_VALUE.contains(&a.as_str());
            out.push(a);
            continue;
        }
        let dashed = a.starts_with('-');
        let word = a.trim_start_matches('-');
        if !dashed && matches!(word, "h" | "?" | "help") || a == "-?" {
            out.push("--help".to_string());
        } else if let Some(opt) = command_word(word) {
            value_next = opt == "--interval";
            out.push(opt.to_string());
        } else if let Some(n) =
            word.strip_prefix('i').filter(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
        {
            out.push("--interval".to_string());
            out.push(n.to_string());
        } else {
            out.push(a);
        }
    }
    out
}

fn usage_error(msg: &str) -> i32 {
    eprintln!("{PROGRAM}: {msg}");
    if let Err(help) = Args::from_args(&[PROGRAM], &["--help"]) {
        eprintln!();
        eprint!("{}", help.output);
    }
    cli::EXIT_USAGE
}

/// The `--help` text (for `dmtcp man`).
pub fn help() -> String {
    cli::help_of::<Args>(PROGRAM)
}

/// The coordinator as DMTCP's JSON names it: the host as given (option, else DMTCP_COORD_HOST),
/// else `localhost`; the port as given, else DMTCP_COORD_PORT, else the default (0 when the
/// variable is not a number, like DMTCP's `atoi`).
fn shown_address(host: Option<&str>, port: Option<u16>) -> (String, u16) {
    let env = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    let host =
        host.map(str::to_owned).or_else(|| env(dmtcp_proto::env::COORD_HOST)).unwrap_or_else(|| "localhost".into());
    let port = port.unwrap_or_else(|| match env(dmtcp_proto::env::COORD_PORT) {
        Some(p) => p.trim().parse().unwrap_or(0),
        None => dmtcp_proto::DEFAULT_PORT,
    });
    (host, port)
}

/// One JSON object on stdout, and the exit code that goes with it (`--json` mode: every outcome
/// goes this way, nothing goes to stderr).
fn json_outcome(command: &str, status_name: &str, extra: &str, host: &str, port: u16) -> i32 {
    outln!(
        "{{\"schema_version\":1,\"command\":{},\"command_status\":{},\"coordinator_host\":{},\"coordinator_port\":{}{extra}}}",
        json_str(command),
        json_str(status_name),
        json_str(host),
        port
    );
    if status_name == "DMT_COORD_SUCCESS" {
        0
    } else {
        cli::EXIT_FAILURE
    }
}

/// A usage error in `--json` mode: DMTCP's answer to an unknown command or a missing value
/// (exit 2), with what was wrong in `error`.
fn json_usage(why: &str, host: Option<&str>, port: Option<u16>) -> i32 {
    let (h, p) = shown_address(host, port);
    let extra = format!(",\"error\":{}", json_str(why.trim()));
    json_outcome("DMT_INVALID_COORDINATOR_COMMAND", "DMT_COORD_INVALID_COMMAND", &extra, &h, p)
}

pub fn main(args: &[std::ffi::OsString]) -> i32 {
    let json = args.iter().any(|a| a == "--json");
    if !json {
        return run_text(args);
    }
    // --json: stdout carries one object whatever happens; the log files still get the lines.
    crate::common::logging::init_silent(PROGRAM);
    let Some(args) = args.iter().map(|a| a.to_str().map(str::to_owned)).collect::<Option<Vec<String>>>() else {
        return json_usage("an argument is not valid UTF-8", None, None);
    };
    let args = preprocess(&args);
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    let a = match Args::from_args(&[PROGRAM], &strs) {
        Ok(a) => a,
        Err(early) if early.status.is_ok() => {
            let (h, p) = shown_address(None, None);
            return json_outcome("DMT_HELP", "DMT_COORD_SUCCESS", "", &h, p);
        }
        Err(early) => return json_usage(&early.output, None, None),
    };
    let (shown_host, shown_port) = shown_address(a.coord_host.as_deref(), a.coord_port);
    if a.version {
        let extra = format!(",\"version\":{}", json_str(&cli::version_line(PROGRAM)));
        return json_outcome("DMT_VERSION", "DMT_COORD_SUCCESS", &extra, &shown_host, shown_port);
    }
    let cmd = match commands(&a)[..] {
        [c] => c,
        // No command: DMTCP's default is its help.
        [] => return json_outcome("DMT_HELP", "DMT_COORD_SUCCESS", "", &shown_host, shown_port),
        _ => return json_usage("give one command at a time", a.coord_host.as_deref(), a.coord_port),
    };
    let interval = a.interval.unwrap_or(INTERVAL_UNCHANGED);
    if interval == INTERVAL_UNCHANGED && cmd == Cmd::UpdateInterval {
        return json_usage("interval out of range", a.coord_host.as_deref(), a.coord_port);
    }
    let (host, port) = match client::coord_address(a.coord_host.as_deref(), a.coord_port) {
        Ok(hp) => hp,
        Err(e) => return json_usage(&e.to_string(), a.coord_host.as_deref(), a.coord_port),
    };
    let flags = match image_flags(&a, cmd) {
        Ok(f) => f,
        Err(e) => return json_usage(e, a.coord_host.as_deref(), a.coord_port),
    };
    let out = Output { json: true, cmd, host: &host, port, shown_host: &shown_host, shown_port };
    out.exchange_and_report(interval, flags)
}

/// The FLAG_INCREMENTAL / FLAG_FULL a checkpoint command asks for, or what is wrong.
fn image_flags(a: &Args, cmd: Cmd) -> Result<u32, &'static str> {
    let ckpt = matches!(cmd, Cmd::Checkpoint | Cmd::BlockingCkpt | Cmd::KillAfterCkpt);
    let env = std::env::var(dmtcp_proto::env::INCREMENTAL).is_ok_and(|v| matches!(v.trim(), "1" | "yes" | "true"));
    match (a.incremental, a.full) {
        (true, true) => Err("--incremental and --full ask for opposite images: give one"),
        (true, false) | (false, true) if !ckpt => {
            Err("--incremental and --full go with a checkpoint command (--checkpoint, --bcheckpoint, --kcheckpoint)")
        }
        (true, false) => Ok(dmtcp_proto::FLAG_INCREMENTAL),
        (false, true) => Ok(dmtcp_proto::FLAG_FULL),
        (false, false) if ckpt && env => Ok(dmtcp_proto::FLAG_INCREMENTAL),
        (false, false) => Ok(0),
    }
}

fn commands(a: &Args) -> Vec<Cmd> {
    let mut cmds = Vec::new();
    for (set, c) in [
        (a.status, Cmd::Status),
        (a.list, Cmd::List),
        (a.checkpoint, Cmd::Checkpoint),
        (a.bcheckpoint, Cmd::BlockingCkpt),
        (a.kcheckpoint, Cmd::KillAfterCkpt),
        (a.interval.is_some(), Cmd::UpdateInterval),
        (a.kill, Cmd::Kill),
        (a.quit, Cmd::Quit),
    ] {
        if set {
            cmds.push(c);
        }
    }
    cmds
}

fn run_text(args: &[std::ffi::OsString]) -> i32 {
    let args = match cli::utf8(PROGRAM, args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let args = preprocess(&args);
    let a: Args = match cli::start(PROGRAM, &args, |a: &Args| (a.version, a.quiet)) {
        Ok(a) => a,
        Err(code) => return code,
    };
    debug_assert!(!a.json, "--json takes the other path");
    let cmd = match commands(&a)[..] {
        [c] => c,
        [] => return usage_error("no command given"),
        _ => return usage_error("give one command at a time"),
    };
    let interval = a.interval.unwrap_or(INTERVAL_UNCHANGED);
    if interval == INTERVAL_UNCHANGED && cmd == Cmd::UpdateInterval {
        return usage_error("interval out of range");
    }
    let (host, port) = match client::coord_address(a.coord_host.as_deref(), a.coord_port) {
        Ok(hp) => hp,
        Err(e) => return usage_error(&e.to_string()),
    };
    let flags = match image_flags(&a, cmd) {
        Ok(f) => f,
        Err(e) => return usage_error(e),
    };
    let out = Output { json: false, cmd, host: &host, port, shown_host: &host, shown_port: port };
    out.exchange_and_report(interval, flags)
}

impl Output<'_> {
    fn exchange_and_report(&self, interval: u32, image_flags: u32) -> i32 {
        let (host, port) = (self.host, self.port);
        match exchange(host, port, self.cmd, interval, image_flags) {
            Ok((reply, extra)) => self.result(&reply, &extra),
            Err(Failure::NoCoordinator(why)) => {
                let text = format!(
                    "no coordinator at {host}:{port} ({why}); start one with dmtcp_coordinator or dmtcp_launch"
                );
                self.failure("DMT_COORD_NOT_FOUND", &text)
            }
            // Something answers but no usable coordinator: DMTCP's schema has no other status.
            Err(Failure::Protocol(text)) => self.failure("DMT_COORD_NOT_FOUND", &text),
        }
    }
}

enum Failure {
    NoCoordinator(String),
    Protocol(String),
}

fn connect_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())
        }
        _ => e.to_string(),
    }
}

fn exchange(host: &str, port: u16, cmd: Cmd, interval: u32, image_flags: u32) -> Result<(Msg, Vec<u8>), Failure> {
    let mut s = client::connect(host, port, CONNECT_TIMEOUT).map_err(|e| Failure::NoCoordinator(connect_error(&e)))?;
    let mut m = Msg::new(Kind::UserCmd);
    m.cmd = cmd as u32;
    m.interval = interval;
    m.flags = image_flags;
    m.pid = std::process::id() as i32;
    if cmd == Cmd::BlockingCkpt {
        m.flags |= dmtcp_proto::FLAG_PROGRESS;
    }
    let lost =
        |e: io::Error| Failure::Protocol(format!("lost the connection to the coordinator at {host}:{port}: {e}"));
    client::send(&mut s, &m, &[]).map_err(lost)?;
    // A blocking checkpoint takes as long as it takes.
    let timeout = if cmd == Cmd::BlockingCkpt { None } else { Some(REPLY_TIMEOUT) };
    s.set_read_timeout(timeout).map_err(lost)?;
    let (reply, extra) = recv_past_progress(&mut s).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            Failure::Protocol(format!("the coordinator at {host}:{port} closed the connection without answering"))
        }
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Failure::Protocol(format!(
            "the coordinator at {host}:{port} did not answer within {} s",
            REPLY_TIMEOUT.as_secs()
        )),
        io::ErrorKind::InvalidData => {
            Failure::Protocol(format!("{host}:{port} does not speak the dmtcp protocol: {e}"))
        }
        _ => lost(e),
    })?;
    match reply.kind {
        Kind::UserCmdResult => Ok((reply, extra)),
        Kind::KillPeer => Err(Failure::Protocol("the coordinator is killing its computation; try again later".into())),
        Kind::RejectNotOwner => Err(Failure::Protocol(format!(
            "the coordinator at {host}:{port} refused: {}",
            String::from_utf8_lossy(&extra)
        ))),
        k => Err(Failure::Protocol(format!("unexpected answer {k:?} from the coordinator"))),
    }
}

struct Output<'a> {
    json: bool,
    cmd: Cmd,
    /// Where we connect.
    host: &'a str,
    port: u16,
    /// What the JSON says (see `shown_address`).
    shown_host: &'a str,
    shown_port: u16,
}

impl Output<'_> {
    fn json_head(&self, status_name: &str) -> String {
        format!(
            "{{\"schema_version\":1,\"command\":{},\"command_status\":{},\"coordinator_host\":{},\"coordinator_port\":{}",
            json_str(self.cmd.json_name()),
            json_str(status_name),
            json_str(self.shown_host),
            self.shown_port
        )
    }

    /// A failure before any answer (no coordinator, lost connection).
    fn failure(&self, status_name: &str, text: &str) -> i32 {
        log::error!("{text}");
        if self.json {
            outln!("{},\"error\":{}}}", self.json_head(status_name), json_str(text));
        }
        cli::EXIT_FAILURE
    }

    fn result(&self, r: &Msg, extra: &[u8]) -> i32 {
        let text = String::from_utf8_lossy(extra);
        let ok = r.cmd_status == status::SUCCESS;
        // A blocking checkpoint's answer lists the fds that cannot be restored, one per line.
        let warnings: Vec<&str> = if ok && self.cmd == Cmd::BlockingCkpt {
            text.lines().filter(|l| !l.is_empty()).collect()
        } else {
            Vec::new()
        };
        let error = if ok {
            None
        } else {
            Some(match r.cmd_status {
                status::NOT_RUNNING => format!(
                    "cannot {}: {}",
                    verb(self.cmd),
                    if text.is_empty() { "the computation is not running".into() } else { text.to_string() }
                ),
                status::CKPT_FAILED => format!(
                    "checkpoint failed: {}",
                    if text.is_empty() { "no reason given".into() } else { text.to_string() }
                ),
                status::INVALID_COMMAND => "the coordinator does not know this command".to_string(),
                s => format!("the coordinator answered with status {s}"),
            })
        };
        if self.json {
            let mut j = self.json_head(status::json_name(r.cmd_status));
            match self.cmd {
                Cmd::Status => j.push_str(&format!(
                    ",\"num_peers\":{},\"running\":{},\"checkpoint_interval\":{}",
                    r.num_peers,
                    r.running != 0,
                    r.interval
                )),
                Cmd::List => j.push_str(&format!(",\"workers\":{}", json_str(&text))),
                Cmd::Checkpoint | Cmd::KillAfterCkpt => j.push_str(&format!(",\"num_peers\":{}", r.num_peers)),
                Cmd::BlockingCkpt => {
                    let list: Vec<String> = warnings.iter().map(|w| json_str(w)).collect();
                    j.push_str(&format!(",\"num_peers\":{},\"warnings\":[{}]", r.num_peers, list.join(",")));
                    j.push_str(&progress_json());
                }
                Cmd::UpdateInterval => j.push_str(&format!(",\"checkpoint_interval\":{}", r.interval)),
                Cmd::Kill | Cmd::Quit => {}
            }
            if let Some(e) = &error {
                j.push_str(&format!(",\"error\":{}", json_str(e)));
            }
            j.push('}');
            outln!("{j}");
        }
        if let Some(e) = error {
            log::error!("{e}");
            return cli::EXIT_FAILURE;
        }
        if self.json {
            return 0;
        }
        for w in &warnings {
            log::warn!("{w}; after a restart it holds a placeholder that fails every call");
        }
        let n = r.num_peers;
        let procs = format!("{n} process{}", if n == 1 { "" } else { "es" });
        match self.cmd {
            Cmd::Status => {
                let interval =
                    if r.interval == 0 { "0 (checkpoint manually)".to_string() } else { r.interval.to_string() };
                outln!(
                    "Coordinator:\n  Host: {}\n  Port: {}\nStatus...\n  NUM_PEERS={}\n  RUNNING={}\n  CKPT_INTERVAL={}",
                    self.host,
                    self.port,
                    r.num_peers,
                    if r.running != 0 { "yes" } else { "no" },
                    interval
                );
            }
            Cmd::List => out!("{text}"),
            Cmd::Checkpoint => log::info!("checkpoint of {procs} started"),
            Cmd::BlockingCkpt => log::info!("checkpoint of {procs} written"),
            Cmd::KillAfterCkpt => {
                log::info!("checkpoint of {procs} started; they exit once it is written")
            }
            Cmd::UpdateInterval => {
                if r.interval == 0 {
                    log::info!("checkpoint interval: none (checkpoint manually)")
                } else {
                    log::info!("checkpoint interval: {} s", r.interval)
                }
            }
            Cmd::Kill => log::info!("killing {procs}"),
            Cmd::Quit => log::info!("the coordinator quits"),
        }
        0
    }
}

// ---- progress of a blocking checkpoint --------------------------------------------------------
//
// The coordinator sends `CkptProgress` sums (FLAG_PROGRESS) before the result of a
// `--bcheckpoint`: on a terminal (stderr) they are shown on one line, rewritten as they come,
// and the last one stays; `--json` reports the final figures.

/// The last figures the coordinator sent.
static LAST_PROGRESS: std::sync::Mutex<Option<(u32, dmtcp_proto::Progress)>> = std::sync::Mutex::new(None);

/// Receives the reply, showing and keeping the progress messages that come before it.
fn recv_past_progress(s: &mut std::net::TcpStream) -> io::Result<(Msg, Vec<u8>)> {
    use std::io::IsTerminal;
    // Not with --quiet (the log shows only errors then).
    let show = io::stderr().is_terminal() && log::log_enabled!(log::Level::Info);
    let mut shown = false;
    loop {
        let (m, extra) = client::recv(s)?;
        if m.kind != Kind::CkptProgress {
            if shown {
                eprintln!();
            }
            return Ok((m, extra));
        }
        let Some(p) = dmtcp_proto::Progress::decode(&extra) else { continue };
        if show {
            eprint!("\r\x1b[K{}", progress_line(m.num_peers, &p));
            shown = true;
        }
        *LAST_PROGRESS.lock().unwrap_or_else(|e| e.into_inner()) = Some((m.num_peers, p));
    }
}

fn progress_line(peers: u32, p: &dmtcp_proto::Progress) -> String {
    let mib = |n: u64| n as f64 / (1u64 << 20) as f64;
    let secs = p.elapsed_ms as f64 / 1000.0;
    let rate = if secs > 0.0 { mib(p.written) / secs } else { 0.0 };
    let stored = if p.done > 0 { format!(", {:.1} MiB stored", mib(p.stored)) } else { String::new() };
    format!(
        "checkpoint: {:.1} of {:.1} MiB written{stored}, {}/{peers} process{} done, {secs:.1} s, {rate:.1} MiB/s",
        mib(p.written),
        mib(p.total.max(p.written)),
        p.done,
        if peers == 1 { "" } else { "es" }
    )
}

/// The final figures as JSON members (empty when the coordinator sent none).
fn progress_json() -> String {
    match *LAST_PROGRESS.lock().unwrap_or_else(|e| e.into_inner()) {
        Some((_, p)) => format!(
            ",\"bytes_written\":{},\"bytes_stored\":{},\"processes_done\":{},\"elapsed_ms\":{}",
            p.written, p.stored, p.done, p.elapsed_ms
        ),
        None => String::new(),
    }
}

fn verb(c: Cmd) -> &'static str {
    match c {
        Cmd::Checkpoint | Cmd::BlockingCkpt | Cmd::KillAfterCkpt => "checkpoint",
        Cmd::Status => "get the status",
        Cmd::List => "list the processes",
        Cmd::UpdateInterval => "set the interval",
        Cmd::Kill => "kill",
        Cmd::Quit => "quit",
    }
}

/// `s` as a JSON string literal.
fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pre(a: &[&str]) -> Vec<String> {
        preprocess(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn dmtcp_spellings_become_options() {
        assert_eq!(pre(&["-bc"]), ["--bcheckpoint"]);
        assert_eq!(pre(&["kc"]), ["--kcheckpoint"]);
        assert_eq!(pre(&["i", "10"]), ["--interval", "10"]);
        assert_eq!(pre(&["i10"]), ["--interval", "10"]);
        assert_eq!(pre(&["-i10"]), ["-i", "10"]);
        assert_eq!(pre(&["-p7779", "s"]), ["-p", "7779", "--status"]);
        assert_eq!(pre(&["--coord-port=7", "-q"]), ["--coord-port", "7", "-q"]);
        // A value is never taken for a command word.
        assert_eq!(pre(&["-h", "s", "l"]), ["-h", "s", "--list"]);
        assert_eq!(pre(&["--host", "x", "h"]), ["--coord-host", "x", "--help"]);
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }
}
