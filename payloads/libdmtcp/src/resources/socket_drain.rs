//! Draining a TCP connection whose two ends are both in the computation, completely: the bytes
//! in the receiver's queue *and* those its peer's kernel still holds in its send queue because
//! the receiver's window was full (several MiB with a reader that is slow or not reading; a
//! peek at the receive queue sees only the window, 128 KiB by default).
//!
//! # Why a protocol on the connection itself
//! A process cannot read its socket's send queue (TCP_REPAIR needs CAP_NET_ADMIN). The only way
//! to get those bytes out is to let them arrive: the receiver reads its queue, its window opens,
//! the peer's kernel sends more (over loopback, in the kernel, while the peer's threads are
//! stopped), until the send queue is empty. Once read they are gone from the kernel, so the
//! two ends must then give each other back what they took. This is the C++ DMTCP's
//! `KernelBufferDrainer` with its drain cookie, done by every elected drainer of the
//! computation at the same time (after DMT:Drain each process's checkpoint thread runs its
//! drains concurrently with the others'), one poll loop per process over all its connections so
//! that no connection waits for another.
//!
//! # The exchange, at each end E of a connection (A and B; a2b: bytes A sent that B has not read)
//! ```text
//! stream A→B:  [a2b: the send queue and B's receive queue] [MARK] [len(b2a), b2a] ... later: [a2b]
//! ```
//! 1. E writes MARK after its pending bytes (its threads are stopped: nothing else follows).
//! 2. E reads its receive queue up to the peer's MARK: that is everything the peer had sent and
//!    the program had not read (`b2a` at A).
//! 3. E sends the peer what it read (8-byte length + bytes): those are the peer's own bytes.
//! 4. E reads the peer's message: its own unread bytes (`a2b` at A), kept as `out`.
//! 5. E writes `out` into its socket again: the peer's receive queue (and E's send queue) hold
//!    them as before; the program finds them where they were. `out` stays in memory until
//!    `refill`, so the image has it: after a restart E writes it into the new connection the
//!    same way (each side refills its own sends, so no spare fd of the other end is needed).
//!    What does not fit at once is written in `resume`, while the receivers run.
//!
//! MARK is 32 fixed random bytes; a program's data that happened to contain them right at the
//! end of what it sent would end the drain early (as DMTCP's cookie would). Both ends decide the
//! same way whether to take part (`sockets.rs`: an established connection, not shut down, whose
//! peer is held by a process under checkpoint control); a peer that does not answer within
//! `STALL_MS` of no progress fails the exchange with a warning naming the fd.
//!
//! Rules: the `resources` rules (checkpoint thread, other threads stopped, no allocation: the
//! bytes go to anonymous mappings, the poll table is on the stack).
use crate::log::Bytes;
use crate::sys::socket as so;
use crate::sys::{self, Mapping};
use core::ffi::c_int;

/// The end of a drain, written after the bytes a drainer's end had pending.
pub const MARK: [u8; 32] = [
    0x9f, 0x3b, 0xd1, 0x07, b'D', b'M', b'T', b'C', b'P', b'-', b'r', b's', 0xc4, 0x51, 0x2e, 0x88, 0x10, 0x6d, b'd',
    b'r', b'a', b'i', b'n', 0x5a, 0xe3, 0x71, 0x0b, 0x96, 0x42, 0xfe, 0x19, 0xa8,
];
/// No progress on any connection for this long: the exchanges that are left fail.
const STALL_MS: i64 = 10_000;
/// At most this much is read at once before the MARK is found (what follows it is parsed).
const CHUNK: usize = 256 * 1024;
/// Room beyond what the kernel says is queued (untouched pages cost nothing).
const SLACK: usize = 4 << 20;
pub const MAX_CONNS: usize = 256;
/// <asm-generic/socket.h> (x86_64 and i386 alike); not in the libc crate for Linux.
const SO_SNDBUFFORCE: c_int = 32;

/// The exchange of one connection end.
pub struct Conn {
    pub fd: c_int,
    /// What arrived before the peer's MARK (its unread sends), and room for it.
    inb: Option<Mapping>,
    in_room: usize,
    in_got: usize,
    in_len: usize,
    /// 0: reading to the MARK, 1: the length, 2: `out`, 3: done.
    stage_in: u8,
    hdr: [u8; 8],
    hdr_got: usize,
    /// This end's own unread sends, given back by the peer: written again (and kept for a restart).
    pub out: Option<Mapping>,
    pub out_len: usize,
    out_got: usize,
    /// How much of `out` is in the kernel again.
    pub out_written: usize,
    /// 0: sending the MARK, 1: the length and `inb`, 2: done.
    stage_out: u8,
    sent: usize,
    pub failed: bool,
    /// SO_SNDBUF before `write_back` raised it (0: untouched).
    sndbuf: c_int,
}

pub const IDLE: Conn = Conn {
    fd: -1,
    inb: None,
    in_room: 0,
    in_got: 0,
    in_len: 0,
    stage_in: 0,
    hdr: [0; 8],
    hdr_got: 0,
    out: None,
    out_len: 0,
    out_got: 0,
    out_written: 0,
    stage_out: 0,
    sent: 0,
    failed: false,
    sndbuf: 0,
};

impl Conn {
    /// An exchange on `fd`, whose peer's kernel has `expect` bytes for it at most (its send queue
    /// as `inet_diag` says, plus our receive queue).
    pub fn start(fd: c_int, expect: usize) -> Conn {
        let mut c = IDLE;
        c.fd = fd;
        c.in_room = expect + MARK.len() + SLACK;
        match Mapping::new(c.in_room) {
            Ok(m) => c.inb = Some(m),
            Err(e) => c.fail("cannot hold the bytes in flight", e),
        }
        c
    }

    fn done(&self) -> bool {
        self.failed || (self.stage_in == 3 && self.stage_out == 2)
    }

    fn fail(&mut self, why: &str, e: c_int) {
        if !self.failed {
            warn!(
                "draining the TCP connection at fd {}: {} ({}); bytes in flight on it may be lost or doubled",
                self.fd,
                why,
                Bytes(sys::strerror(e))
            );
        }
        self.failed = true;
        self.inb = None;
    }

    /// Reads what is there; returns whether anything came.
    fn step_in(&mut self) -> bool {
        let r = match self.stage_in {
            0 => {
                let Some(m) = self.inb.as_mut() else { return false };
                if self.in_got == self.in_room {
                    self.fail("more bytes than the kernel said were queued", libc::EMSGSIZE);
                    return false;
                }
                let end = self.in_room.min(self.in_got + CHUNK);
                so::recv(self.fd, &mut m.bytes()[self.in_got..end], libc::MSG_DONTWAIT)
            }
            1 => so::recv(self.fd, &mut self.hdr[self.hdr_got..], libc::MSG_DONTWAIT),
            2 => {
                let Some(m) = self.out.as_mut() else { return false };
                so::recv(self.fd, &mut m.bytes()[self.out_got..self.out_len], libc::MSG_DONTWAIT)
            }
            _ => return false,
        };
        match r {
            Err(libc::EAGAIN) => false,
            Err(e) => {
                self.fail("cannot read", e);
                false
            }
            Ok(0) => {
                self.fail("the peer closed it", libc::EPIPE);
                false
            }
            Ok(k) => {
                match self.stage_in {
                    0 => self.arrived(k),
                    1 => {
                        self.hdr_got += k;
                        if self.hdr_got == 8 {
                            self.header_done();
                        }
                    }
                    _ => {
                        self.out_got += k;
                        if self.out_got == self.out_len {
                            self.stage_in = 3;
                        }
                    }
                }
                true
            }
        }
    }

    /// `k` more bytes before (maybe) the MARK: look for it; what follows it is the length and
    /// the start of `out`.
    fn arrived(&mut self, k: usize) {
        let Some(m) = self.inb.as_ref() else { return };
        let from = self.in_got.saturating_sub(MARK.len() - 1);
        self.in_got += k;
        let b = &m.as_slice()[..self.in_got];
        let Some(p) = b[from..].windows(MARK.len()).position(|w| w == MARK) else { return };
        let at = from + p;
        self.in_len = at;
        self.stage_in = 1;
        let mut rest = at + MARK.len();
        while rest < self.in_got && self.stage_in < 3 {
            let Some(m) = self.inb.as_ref() else { return };
            let b = m.as_slice();
            if self.stage_in == 1 {
                let n = (8 - self.hdr_got).min(self.in_got - rest);
                self.hdr[self.hdr_got..self.hdr_got + n].copy_from_slice(&b[rest..rest + n]);
                self.hdr_got += n;
                rest += n;
                if self.hdr_got == 8 {
                    self.header_done();
                }
            } else {
                let n = (self.out_len - self.out_got).min(self.in_got - rest);
                let (Some(inb), Some(out)) = (self.inb.as_ref(), self.out.as_mut()) else { return };
                out.bytes()[self.out_got..self.out_got + n].copy_from_slice(&inb.as_slice()[rest..rest + n]);
                self.out_got += n;
                rest += n;
                if self.out_got == self.out_len {
                    self.stage_in = 3;
                }
            }
        }
        if rest < self.in_got {
            self.fail("bytes after the end of the exchange", libc::EPROTO);
        }
    }

    fn header_done(&mut self) {
        self.out_len = u64::from_le_bytes(self.hdr) as usize;
        if self.out_len == 0 {
            self.stage_in = 3;
            return;
        }
        match Mapping::new(self.out_len) {
            Ok(m) => {
                self.out = Some(m);
                self.stage_in = 2;
            }
            Err(e) => self.fail("cannot hold the bytes given back", e),
        }
    }

    fn wants_out(&self) -> bool {
        self.stage_out == 0 || (self.stage_out == 1 && self.stage_in >= 1)
    }

    /// Sends what it can; returns whether anything went.
    fn step_out(&mut self) -> bool {
        let len = (self.in_len as u64).to_le_bytes();
        let r = match self.stage_out {
            0 => so::send(self.fd, &MARK[self.sent..], libc::MSG_DONTWAIT),
            1 if self.stage_in >= 1 => {
                if self.sent < 8 {
                    so::send(self.fd, &len[self.sent..], libc::MSG_DONTWAIT)
                } else {
                    let Some(m) = self.inb.as_ref() else { return false };
                    so::send(self.fd, &m.as_slice()[self.sent - 8..self.in_len], libc::MSG_DONTWAIT)
                }
            }
            _ => return false,
        };
        match r {
            Err(libc::EAGAIN) => false,
            Err(e) => {
                self.fail("cannot write", e);
                false
            }
            Ok(k) => {
                self.sent += k;
                if self.stage_out == 0 && self.sent == MARK.len() {
                    self.stage_out = 1;
                    self.sent = 0;
                } else if self.stage_out == 1 && self.sent == 8 + self.in_len {
                    self.stage_out = 2;
                    // Those were the peer's bytes: it keeps them now.
                    self.inb = None;
                }
                true
            }
        }
    }

    /// Makes room for `out` in the send queue: the bytes were held by the receiver's window and
    /// this end's send buffer as the kernel had tuned them, and a new connection (or the same
    /// one written in other pieces, with other per-packet overheads) may hold somewhat less: a
    /// sender blocked on a full connection had filled it to the last byte. When both ends owe
    /// bytes, or one process holds both, no program runs to read them. So the send buffer is
    /// raised while `out` is written, then set back to the value the program saw (it stays
    /// fixed at that value: the kernel no longer tunes it).
    fn raise_sndbuf(&mut self) {
        if self.sndbuf != 0 {
            return;
        }
        let Ok(old) = so::getsockopt_int(self.fd, libc::SOL_SOCKET, libc::SO_SNDBUF) else { return };
        self.sndbuf = old;
        // Twice what it was (the kernel doubles the value): past net.core.wmem_max only with
        // CAP_NET_ADMIN (SO_SNDBUFFORCE), else as far as that maximum.
        if so::setsockopt_int(self.fd, libc::SOL_SOCKET, SO_SNDBUFFORCE, old.max(1 << 20)).is_err() {
            let _ = so::setsockopt_int(self.fd, libc::SOL_SOCKET, libc::SO_SNDBUF, c_int::MAX / 2);
        }
        if so::getsockopt_int(self.fd, libc::SOL_SOCKET, libc::SO_SNDBUF).is_ok_and(|now| now <= old) {
            self.lower_sndbuf();
        }
    }

    /// Sets the send buffer back (the kernel doubles what it is given).
    fn lower_sndbuf(&mut self) {
        if self.sndbuf != 0 {
            let _ = so::setsockopt_int(self.fd, libc::SOL_SOCKET, libc::SO_SNDBUF, self.sndbuf / 2);
            self.sndbuf = 0;
        }
    }

    /// Writes what it can of `out` back into the socket; returns whether anything went.
    fn step_back(&mut self) -> bool {
        if self.out.is_none() {
            return false;
        }
        self.raise_sndbuf();
        let Some(m) = self.out.as_ref() else { return false };
        match so::send(self.fd, &m.as_slice()[self.out_written..self.out_len], libc::MSG_DONTWAIT) {
            Ok(k) => {
                self.out_written += k;
                if self.out_written == self.out_len {
                    self.lower_sndbuf();
                }
                k > 0
            }
            Err(libc::EAGAIN) => false,
            Err(e) => {
                warn!(
                    "writing {} bytes in flight back into the TCP connection at fd {}: {}",
                    self.out_len - self.out_written,
                    self.fd,
                    Bytes(sys::strerror(e))
                );
                self.out_written = self.out_len;
                self.lower_sndbuf();
                false
            }
        }
    }

    /// Whether `out` still has bytes to write back.
    pub fn owes(&self) -> bool {
        self.out.is_some() && self.out_written < self.out_len
    }

    /// Drops the copies (after the image is written).
    pub fn clear(&mut self) {
        self.lower_sndbuf();
        *self = IDLE;
    }

    /// After a restart: the same bytes into the new connection, from the start.
    pub fn rewind(&mut self) {
        self.out_written = 0;
    }
}

/// Runs the exchanges of `conns` (steps 1-4 of the module docs) until each is done or failed.
pub fn exchange(conns: &mut [Conn]) {
    let mut last = sys::now_ms();
    loop {
        let mut pfd = [libc::pollfd { fd: -1, events: 0, revents: 0 }; MAX_CONNS];
        let mut n = 0;
        for (i, c) in conns.iter().enumerate() {
            if c.done() {
                continue;
            }
            let mut ev = 0;
            if c.stage_in < 3 {
                ev |= libc::POLLIN;
            }
            if c.wants_out() {
                ev |= libc::POLLOUT;
            }
            pfd[i] = libc::pollfd { fd: c.fd, events: ev, revents: 0 };
            n += 1;
        }
        if n == 0 {
            return;
        }
        let _ = so::poll_fds(&mut pfd[..conns.len()], 100);
        let mut progress = false;
        for (i, c) in conns.iter_mut().enumerate() {
            let r = pfd[i].revents;
            if pfd[i].fd < 0 || r == 0 {
                continue;
            }
            if r & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0 {
                progress |= c.step_in();
            }
            if r & libc::POLLOUT != 0 && !c.done() {
                progress |= c.step_out();
            }
        }
        if progress {
            last = sys::now_ms();
        } else if sys::now_ms() - last > STALL_MS {
            for c in conns.iter_mut().filter(|c| !c.done()) {
                c.fail("the other end did not answer", libc::ETIMEDOUT);
            }
            return;
        }
    }
}

/// Step 5: writes each `out` back, waiting for room at most `stall_ms` without progress and
/// `budget_ms` in all (room may come back a few bytes at a time). Returns whether everything
/// is written.
pub fn write_back(conns: &mut [Conn], stall_ms: i64, budget_ms: i64) -> bool {
    let mut last = sys::now_ms();
    let end = last + budget_ms;
    loop {
        let mut pfd = [libc::pollfd { fd: -1, events: 0, revents: 0 }; MAX_CONNS];
        let mut n = 0;
        for (i, c) in conns.iter().enumerate() {
            if c.owes() {
                pfd[i] = libc::pollfd { fd: c.fd, events: libc::POLLOUT, revents: 0 };
                n += 1;
            }
        }
        if n == 0 {
            return true;
        }
        let mut progress = false;
        for c in conns.iter_mut().filter(|c| c.owes()) {
            progress |= c.step_back();
        }
        if progress {
            last = sys::now_ms();
            continue;
        }
        let now = sys::now_ms();
        if now - last > stall_ms || now > end {
            return false;
        }
        let _ = so::poll_fds(&mut pfd[..conns.len()], 50);
    }
}
