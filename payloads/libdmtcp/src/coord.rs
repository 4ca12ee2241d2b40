//! The connection to the coordinator: kept at fd `COORD_FD` (821, close-on-exec) or, when the
//! program wants that number, at another one above it (`fds` keeps it out of the program's
//! way and holds its number), registered with a `NewWorker` handshake, then owned by the
//! background thread.
//!
//! Rules: no allocation (messages are encoded on the stack); the handshake has a deadline so a
//! stuck coordinator never hangs the program's start; only one thread uses the fd at a time
//! (the constructor or fork child during the handshake, then the background thread).
use crate::config::{self, Config};
use crate::log::Bytes;
use crate::sys::{self, Errno};
use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use crate::fds;
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
    if c.coord_port == 0 {
        error!("DMTCP_COORD_PORT is not a valid port; the program runs without checkpoints");
        return false;
    }
    let deadline = sys::now_ms() + HANDSHAKE_MS;
    let fd = match sys::tcp_connect(c.coord_ip, c.coord_port, HANDSHAKE_MS as i32) {
        Ok(fd) => fd,
        Err(e) => {
            error!(
                "cannot reach the coordinator at {}:{} ({}); the program runs without checkpoints",
                Host(c),
                c.coord_port,
                Bytes(sys::strerror(e))
            );
            return false;
        }
    };
    if let Err(e) = fds::adopt_coord(fd) {
        error!(
            "cannot move the coordinator connection to fd {} or above: {}; the program runs without checkpoints",
            COORD_FD,
            Bytes(sys::strerror(e))
        );
        return false;
    }
    match handshake(c, interval, deadline) {
        Ok(()) => true,
        Err(why) => {
            fds::drop_coord();
            why.report(c);
            false
        }
    }
}

enum Failure {
    Io(Errno),
    Eof,
    Timeout,
    Protocol,
    Rejected(Kind),
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

fn handshake(c: &Config, interval: u32, deadline: i64) -> Result<(), Failure> {
    let host = c.hostname.bytes();
    let prog = c.progname.bytes();
    // payload: hostname\0progname\0 (each at most 255 bytes, see Config)
    let mut payload = [0u8; 512];
    let n = host.len() + 1 + prog.len() + 1;
    payload[..host.len()].copy_from_slice(host);
    payload[host.len() + 1..host.len() + 1 + prog.len()].copy_from_slice(prog);
    let mut m = Msg::new(Kind::NewWorker);
    m.state = WorkerState::Running as u32;
    m.pid = sys::getpid();
    m.ppid = sys::getppid();
    m.interval = interval;
    send(&m, &payload[..n]).map_err(Failure::Io)?;

    let mut hdr = [0u8; MSG_SIZE];
    read_exact_until(&mut hdr, deadline)?;
    let reply = Msg::decode(&hdr).map_err(|_| Failure::Protocol)?;
    discard_until(reply.extra_len as usize, deadline)?;
    match reply.kind {
        Kind::Accept => {
            VPID.store(reply.vpid, Ordering::Relaxed);
            COMP_ID.store(reply.comp_id, Ordering::Relaxed);
            trace!(
                "registered with the coordinator at {}:{} as {} (vpid {}, computation {:#x})",
                Host(c),
                c.coord_port,
                Bytes(prog),
                reply.vpid,
                reply.comp_id
            );
            Ok(())
        }
        k @ (Kind::RejectWrongComp | Kind::RejectNotRunning | Kind::RejectNotRestarting) => Err(Failure::Rejected(k)),
        _ => Err(Failure::Protocol),
    }
}

/// Sends a header (with `extra_len` set to the payload's length) and its payload in one write.
pub fn send(m: &Msg, payload: &[u8]) -> Result<(), Errno> {
    let mut buf = [0u8; MSG_SIZE + 512];
    let mut m = *m;
    let len = core::cmp::min(payload.len(), buf.len() - MSG_SIZE);
    m.extra_len = len as u32;
    buf[..MSG_SIZE].copy_from_slice(&m.encode());
    buf[MSG_SIZE..MSG_SIZE + len].copy_from_slice(&payload[..len]);
    sys::write_all(fds::coord(), &buf[..MSG_SIZE + len])
}

/// Reads exactly `buf.len()` bytes, waiting at most until `deadline` (ms, monotonic).
fn read_exact_until(buf: &mut [u8], deadline: i64) -> Result<(), Failure> {
    let mut got = 0;
    while got < buf.len() {
        let left = deadline - sys::now_ms();
        if left <= 0 {
            return Err(Failure::Timeout);
        }
        match sys::poll_one(fds::coord(), libc::POLLIN, left as i32) {
            Ok(0) => return Err(Failure::Timeout),
            Ok(_) => {}
            Err(e) => return Err(Failure::Io(e)),
        }
        match sys::read_some(fds::coord(), &mut buf[got..]) {
            Ok(0) => return Err(Failure::Eof),
            Ok(n) => got += n,
            Err(e) => return Err(Failure::Io(e)),
        }
    }
    Ok(())
}

fn discard_until(mut n: usize, deadline: i64) -> Result<(), Failure> {
    let mut scratch = [0u8; 256];
    while n > 0 {
        let k = core::cmp::min(n, scratch.len());
        read_exact_until(&mut scratch[..k], deadline)?;
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
