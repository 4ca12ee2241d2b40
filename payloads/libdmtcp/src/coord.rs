//! The connection to the coordinator: kept at fd `COORD_FD` (821, close-on-exec) or, when the
//! program wants that number, at another one above it (`fds` keeps it out of the program's
//! way and holds its number), registered with a `NewWorker` handshake, then owned by the
//! background thread.
//!
//! A registration outlives a program image: a process that execs keeps its connection open
//! across the exec, and one that forks or spawns registers a connection for the child before
//! the child exists (`preregister`, as DMTCP's createNewConnectionBeforeFork). The new image
//! or child takes it over (`adopt`) and tells the coordinator with `UpdateAfterExec` (its pid,
//! its program name), so that the coordinator counts it as that worker from the start and a
//! checkpoint never misses it (see `children`).
//!
//! Rules: no allocation (messages are encoded on the stack); the handshake has a deadline so a
//! stuck coordinator never hangs the program's start; only one thread uses the fd at a time
//! (the constructor or fork child during the handshake, then the background thread); a
//! pre-registration touches no global state (a forked child may copy it at any moment).
use crate::config::{self, Config};
use crate::fds;
use crate::log::Bytes;
use crate::sys::{self, Errno};
use core::ffi::c_int;
use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use dmtcp_proto::handover::Handover;
use dmtcp_proto::{Kind, Msg, WorkerState, COORD_FD, MSG_SIZE};

/// How long the handshake (connect, send, Accept) may take.
const HANDSHAKE_MS: i64 = 10_000;

/// What the coordinator told us in `Accept`.
pub static VPID: AtomicI32 = AtomicI32::new(0);
pub static COMP_ID: AtomicU64 = AtomicU64::new(0);

/// Connects to the coordinator and registers this process as a new worker. On success the
/// connection is at `fds::coord()`; on failure one line on stderr says why and that the program
/// runs on without dmtcp.
pub fn connect_and_register(c: &Config, interval: u32) -> bool {
    let Some(fd) = connect(c, true) else { return false };
    let fd = match fds::adopt_coord(fd) {
        Ok(fd) => fd,
        Err(e) => {
            error!(
                "cannot move the coordinator connection to fd {} or above: {}; the program runs without checkpoints",
                COORD_FD,
                Bytes(sys::strerror(e))
            );
            return false;
        }
    };
    let deadline = sys::now_ms() + HANDSHAKE_MS;
    match handshake(fd, c, c.progname.bytes(), interval, deadline) {
        Ok(h) => {
            VPID.store(h.vpid, Ordering::Relaxed);
            COMP_ID.store(h.comp_id, Ordering::Relaxed);
            true
        }
        Err(why) => {
            fds::drop_coord();
            why.report(c);
            false
        }
    }
}

fn connect(c: &Config, loud: bool) -> Option<c_int> {
    if c.coord_port == 0 {
        if loud {
            error!("DMTCP_COORD_PORT is not a valid port; the program runs without checkpoints");
        }
        return None;
    }
    match sys::tcp_connect(c.coord_ip, c.coord_port, HANDSHAKE_MS as i32) {
        Ok(fd) => Some(fd),
        Err(e) => {
            if loud {
                error!(
                    "cannot reach the coordinator at {}:{} ({}); the program runs without checkpoints",
                    Host(c),
                    c.coord_port,
                    Bytes(sys::strerror(e))
                );
            } else {
                trace!("cannot reach the coordinator to register a child: {}", Bytes(sys::strerror(e)));
            }
            None
        }
    }
}

/// Registers a worker for a process or program image that does not exist yet (a child about
/// to be forked or spawned), named `prog`: a new connection at a free number above `COORD_FD`,
/// close-on-exec, not ours (the caller hands it over or closes it). None (after a trace line)
/// if the coordinator cannot be reached or refuses; the child then registers by itself.
pub fn preregister(prog: &[u8]) -> Option<Handover> {
    let c = config::get();
    let fd = connect(c, false)?;
    let fd = match fds::park_above(fd) {
        Ok(fd) => fd,
        Err(e) => {
            trace!("cannot move a child's coordinator connection above fd {}: {}", COORD_FD, Bytes(sys::strerror(e)));
            return None;
        }
    };
    let deadline = sys::now_ms() + HANDSHAKE_MS;
    match handshake(fd, c, prog, dmtcp_proto::INTERVAL_UNCHANGED, deadline) {
        Ok(h) => Some(h),
        Err(_) => {
            trace!("the coordinator did not register a child of {}", Bytes(c.progname.bytes()));
            sys::close(fd);
            None
        }
    }
}

/// Takes over the registration `h` in a new program image or a forked child, whose
/// connection is already at `fds::coord()`: tells the coordinator this process's pid and, after
/// an exec, its new program name (`prog`). False if the coordinator is gone.
pub fn adopt(h: Handover, prog: &[u8]) -> bool {
    VPID.store(h.vpid, Ordering::Relaxed);
    COMP_ID.store(h.comp_id, Ordering::Relaxed);
    let mut m = Msg::new(Kind::UpdateAfterExec);
    m.state = WorkerState::Running as u32;
    m.pid = sys::getpid();
    m.ppid = sys::getppid();
    m.vpid = h.vpid;
    m.comp_id = h.comp_id;
    let mut payload = [0u8; 257];
    let n = core::cmp::min(prog.len(), 255);
    payload[..n].copy_from_slice(&prog[..n]);
    let payload = if n == 0 { &payload[..0] } else { &payload[..n + 1] };
    match send(&m, payload) {
        Ok(()) => {
            trace!("took over the registration of vpid {} (computation {:#x})", h.vpid, h.comp_id);
            true
        }
        Err(e) => {
            trace!("cannot tell the coordinator about this image: {}", Bytes(sys::strerror(e)));
            false
        }
    }
}

/// True if `fd` is a TCP connection to the coordinator's port (a handed-over descriptor the
/// program did not replace with one of its own).
pub fn is_coordinator_connection(c: &Config, fd: c_int) -> bool {
    let mut a = [0u8; sys::socket::ADDR_LEN];
    match sys::socket::peername(fd, &mut a) {
        Ok(n) if n >= 8 => {
            let family = u16::from_ne_bytes([a[0], a[1]]) as c_int;
            let port = u16::from_be_bytes([a[2], a[3]]);
            family == libc::AF_INET && port == c.coord_port
        }
        _ => false,
    }
}

enum Failure {
    Io(Errno),
    Eof,
    Timeout,
    Protocol,
    Rejected(Kind),
    /// Already told the user.
    Reported,
}

impl Failure {
    fn report(&self, c: &Config) {
        let host = Host(c);
        let port = c.coord_port;
        match *self {
            Failure::Io(e) => error!(
                "lost the coordinator at {}:{} during registration ({}); the program runs without checkpoints",
                host, port, Bytes(sys::strerror(e))
            ),
            Failure::Eof => error!(
                "the coordinator at {}:{} closed the connection during registration; the program runs without checkpoints",
                host, port
            ),
            Failure::Timeout => error!(
                "the coordinator at {}:{} did not answer within {} s; the program runs without checkpoints",
                host, port, HANDSHAKE_MS / 1000
            ),
            Failure::Protocol => error!(
                "the peer at {}:{} does not speak this version's coordinator protocol; the program runs without checkpoints",
                host, port
            ),
            Failure::Reported => {}
            Failure::Rejected(k) => {
                let why = match k {
                    Kind::RejectWrongComp => "it belongs to another computation",
                    Kind::RejectNotRunning => "its computation is not running (checkpoint or restart in progress)",
                    Kind::RejectNotRestarting => "it is not restarting",
                    _ => "it refused",
                };
                error!(
                    "the coordinator at {}:{} refused this process ({}); the program runs without checkpoints",
                    host, port, why
                )
            }
        }
    }
}

struct Host<'a>(&'a Config);
impl core::fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let h = self.0.coord_host_text();
        if h.is_empty() {
            f.write_str("localhost")
        } else {
            core::fmt::Display::fmt(&Bytes(h), f)
        }
    }
}

fn handshake(fd: c_int, c: &Config, prog: &[u8], interval: u32, deadline: i64) -> Result<Handover, Failure> {
    let host = c.hostname.bytes();
    // payload: hostname\0progname\0 (each at most 255 bytes, see Config)
    let prog = &prog[..core::cmp::min(prog.len(), 255)];
    let mut payload = [0u8; 512];
    let n = host.len() + 1 + prog.len() + 1;
    payload[..host.len()].copy_from_slice(host);
    payload[host.len() + 1..host.len() + 1 + prog.len()].copy_from_slice(prog);
    // A coordinator on another host needs its token first (the tool side's `common::token`).
    let token = c.coord_token();
    if !token.is_empty() {
        send_on(fd, &Msg::new(Kind::Token), token).map_err(Failure::Io)?;
    }
    let mut m = Msg::new(Kind::NewWorker);
    m.state = WorkerState::Running as u32;
    m.pid = sys::getpid();
    m.ppid = sys::getppid();
    m.interval = interval;
    send_on(fd, &m, &payload[..n]).map_err(Failure::Io)?;

    let mut hdr = [0u8; MSG_SIZE];
    read_exact_until(fd, &mut hdr, deadline)?;
    let reply = Msg::decode(&hdr).map_err(|_| Failure::Protocol)?;
    if reply.kind == Kind::RejectNotOwner {
        // The reason comes as text (whose coordinator it is, or the missing token).
        let mut text = [0u8; 256];
        let n = core::cmp::min(reply.extra_len as usize, text.len());
        read_exact_until(fd, &mut text[..n], deadline)?;
        error!(
            "the coordinator at {}:{} refused this process: {}; the program runs without checkpoints",
            Host(c),
            c.coord_port,
            Bytes(&text[..n])
        );
        return Err(Failure::Reported);
    }
    discard_until(fd, reply.extra_len as usize, deadline)?;
    match reply.kind {
        Kind::Accept => {
            trace!(
                "registered with the coordinator at {}:{} as {} (vpid {}, computation {:#x})",
                Host(c),
                c.coord_port,
                Bytes(prog),
                reply.vpid,
                reply.comp_id
            );
            Ok(Handover { fd, vpid: reply.vpid, comp_id: reply.comp_id })
        }
        k @ (Kind::RejectWrongComp | Kind::RejectNotRunning | Kind::RejectNotRestarting) => Err(Failure::Rejected(k)),
        _ => Err(Failure::Protocol),
    }
}

/// Sends a header (with `extra_len` set to the payload's length) and its payload in one write.
pub fn send(m: &Msg, payload: &[u8]) -> Result<(), Errno> {
    send_on(fds::coord(), m, payload)
}

fn send_on(fd: c_int, m: &Msg, payload: &[u8]) -> Result<(), Errno> {
    let mut buf = [0u8; MSG_SIZE + 512];
    let mut m = *m;
    let len = core::cmp::min(payload.len(), buf.len() - MSG_SIZE);
    m.extra_len = len as u32;
    buf[..MSG_SIZE].copy_from_slice(&m.encode());
    buf[MSG_SIZE..MSG_SIZE + len].copy_from_slice(&payload[..len]);
    sys::write_all(fd, &buf[..MSG_SIZE + len])
}

/// Reads exactly `buf.len()` bytes, waiting at most until `deadline` (ms, monotonic).
fn read_exact_until(fd: c_int, buf: &mut [u8], deadline: i64) -> Result<(), Failure> {
    let mut got = 0;
    while got < buf.len() {
        let left = deadline - sys::now_ms();
        if left <= 0 {
            return Err(Failure::Timeout);
        }
        match sys::poll_one(fd, libc::POLLIN, left as i32) {
            Ok(0) => return Err(Failure::Timeout),
            Ok(_) => {}
            Err(e) => return Err(Failure::Io(e)),
        }
        match sys::read_some(fd, &mut buf[got..]) {
            Ok(0) => return Err(Failure::Eof),
            Ok(n) => got += n,
            Err(e) => return Err(Failure::Io(e)),
        }
    }
    Ok(())
}

fn discard_until(fd: c_int, mut n: usize, deadline: i64) -> Result<(), Failure> {
    let mut scratch = [0u8; 256];
    while n > 0 {
        let k = core::cmp::min(n, scratch.len());
        read_exact_until(fd, &mut scratch[..k], deadline)?;
        n -= k;
    }
    Ok(())
}

/// Outcome of a blocking read on the connection (background thread).
pub enum ReadError {
    Eof,
    Io(Errno),
}

/// Reads exactly `buf.len()` bytes, blocking as long as needed.
pub fn read_exact(buf: &mut [u8]) -> Result<(), ReadError> {
    let mut got = 0;
    while got < buf.len() {
        match sys::read_some(fds::coord(), &mut buf[got..]) {
            Ok(0) => return Err(ReadError::Eof),
            Ok(n) => got += n,
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
    Ok(())
}

/// Reads and drops `n` payload bytes.
pub fn discard(mut n: usize) -> Result<(), ReadError> {
    let mut scratch = [0u8; 256];
    while n > 0 {
        let k = core::cmp::min(n, scratch.len());
        read_exact(&mut scratch[..k])?;
        n -= k;
    }
    Ok(())
}

/// Closes the connection (we no longer talk to the coordinator) and stops propagation.
pub fn disconnect() {
    config::set_active(false);
    fds::drop_coord();
}
