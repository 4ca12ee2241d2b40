//! Pseudo-terminal pairs the computation made (posix_openpt, openpty, forkpty: `script`,
//! `expect`, a program's own). Every end is listed in the image's fd table (one `FD_PTY`
//! record per fd, named by the pty's old number), and `dmtcp_restart` makes each pair once,
//! with its ends at the same fd numbers in every process (`src/restart/ptys.rs`). The new pair
//! may have another number: the kernel then names the new slave in ptsname(), ttyname() and
//! /proc/self/fd alike. In the process:
//! - `save`: each end's flags, and per pty its termios and window size, the master's packet
//!   mode, and, for a session leader whose controlling terminal the slave is, that fact and
//!   the terminal's foreground group;
//! - `drain` (the process holding the master; one per pty per process): the bytes in flight
//!   both ways, read out into anonymous memory: what the slave side wrote and the master side
//!   has not read (read from the master), and what was written to the master and the slave
//!   side has not read (read from a slave fd of our own, TIOCGPTPEER, with the line
//!   discipline briefly non-canonical so that a partial line comes out too);
//! - `refill` (after the image, or at the end of `restore`): written back the way they came,
//!   with output and input processing briefly off so that nothing is processed twice (no
//!   second echo, no second CR/LF mapping), then the saved termios again;
//! - `restore`: flags; the master holder gives the pty its termios, window size and packet
//!   mode; the session leader sets the same window size (before it has a foreground group, so
//!   nobody gets a SIGWINCH for it), takes the slave as its controlling terminal again
//!   (TIOCSCTTY) and gives it its foreground group back.
//!
//! The slave that is the user's terminal (launched from a pty) is `tty`'s, not ours.
//!
//! Rules: hooks run in the checkpoint thread with every other thread stopped; no allocation
//! (fixed tables in .bss; drained bytes in mmap'ed memory), no unsafe (calls through `sys`).
use super::{report, Hooks, RecordSink, NONE};
use crate::cell::Exclusive;
use crate::log::Bytes;
use crate::sys::tty::{self as t, Termios, Winsize};
use crate::sys::{self, Mapping};
use core::ffi::c_int;

pub const HOOKS: Hooks = Hooks { name: "pty", save, drain, records, write_records, refill, restore, ..NONE };

const MAX_FDS: usize = 128;
const MAX_PTYS: usize = 32;
/// UNIX98 pty slaves: majors 136-143, 256 minors each.
const SLAVE_MAJORS: core::ops::RangeInclusive<u32> = 136..=143;
const RESTORED_FLAGS: c_int = libc::O_NONBLOCK | libc::O_APPEND;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Master,
    Slave,
}

#[derive(Clone, Copy)]
struct End {
    fd: c_int,
    flags: c_int,
    cloexec: bool,
    side: Side,
    index: u32,
}

struct Pty {
    index: u32,
    /// A master fd of ours (None: we hold the slave only).
    master: Option<c_int>,
    /// A slave fd of ours.
    slave: Option<c_int>,
    termios: Option<Termios>,
    winsize: Option<Winsize>,
    packet: bool,
    /// We lead the session whose controlling terminal the slave is.
    ctty: bool,
    /// That terminal's foreground group (0: none or outside).
    foreground: i32,
    /// Drained: slave output not read at the master, master input not read at the slave.
    out: Option<Mapping>,
    out_len: usize,
    input: Option<Mapping>,
    input_len: usize,
}

const NO_PTY: Pty = Pty {
    index: 0,
    master: None,
    slave: None,
    termios: None,
    winsize: None,
    packet: false,
    ctty: false,
    foreground: 0,
    out: None,
    out_len: 0,
    input: None,
    input_len: 0,
};

struct Table {
    ends: [End; MAX_FDS],
    n: usize,
    ptys: [Pty; MAX_PTYS],
    n_ptys: usize,
}

static TABLE: Exclusive<Table> = Exclusive::new(Table {
    ends: [End { fd: -1, flags: 0, cloexec: false, side: Side::Slave, index: 0 }; MAX_FDS],
    n: 0,
    ptys: [NO_PTY; MAX_PTYS],
    n_ptys: 0,
});

/// Which end of which pty `fd` is, if it is one of a pty pair (the user's terminal aside).
fn classify(fd: c_int) -> Option<(Side, u32)> {
    let (major, minor) = t::char_device(fd)?;
    if SLAVE_MAJORS.contains(&major) {
        if super::tty::takes(fd) {
            return None;
        }
        return Some((Side::Slave, (major - 136) << 8 | minor));
    }
    // /dev/ptmx (5, 2) or a devpts instance's own ptmx: the pty number says it is a master.
    t::pty_number(fd).ok().map(|n| (Side::Master, n))
}

/// Whether this kind saved `fd` in this checkpoint (`files` skips it then; `pty` saves first).
pub fn takes(fd: c_int) -> bool {
    TABLE.with(|tb| tb.ends[..tb.n].iter().any(|e| e.fd == fd))
}

fn save() {
    TABLE.with(|tb| {
        tb.n = 0;
        tb.n_ptys = 0;
        super::for_each_program_fd(|fd| {
            let Some((side, index)) = classify(fd) else { return };
            if tb.n == MAX_FDS {
                trace!("more than {} pty fds; fd {} is not saved", MAX_FDS, fd);
                return;
            }
            tb.ends[tb.n] = End {
                fd,
                flags: sys::fcntl(fd, libc::F_GETFL, 0).unwrap_or(libc::O_RDWR),
                cloexec: sys::fcntl(fd, libc::F_GETFD, 0).is_ok_and(|f| f & libc::FD_CLOEXEC != 0),
                side,
                index,
            };
            tb.n += 1;
            let k = match tb.ptys[..tb.n_ptys].iter().position(|p| p.index == index) {
                Some(k) => k,
                None if tb.n_ptys == MAX_PTYS => return,
                None => {
                    tb.ptys[tb.n_ptys] = Pty { index, ..NO_PTY };
                    tb.n_ptys += 1;
                    tb.n_ptys - 1
                }
            };
            let p = &mut tb.ptys[k];
            match side {
                Side::Master if p.master.is_none() => {
                    p.master = Some(fd);
                    p.packet = t::packet_mode(fd).unwrap_or(false);
                }
                Side::Slave if p.slave.is_none() => p.slave = Some(fd),
                _ => {}
            }
            if p.termios.is_none() {
                p.termios = t::tcgetattr(fd).ok();
                p.winsize = t::get_winsize(fd).ok();
            }
        });
        let me = sys::getpid();
        let ctty = t::controlling_terminal();
        for p in tb.ptys[..tb.n_ptys].iter_mut() {
            let dev = (136 + (p.index >> 8), p.index & 0xff);
            if let (Some(s), true) = (p.slave, t::getsid() == me && ctty == Some(dev)) {
                p.ctty = true;
                p.foreground = t::tcgetpgrp(s).unwrap_or(0);
            }
        }
    });
}

/// Reads everything `fd` has now (non-blocking; a packet-mode master's status bytes left out)
/// into a fresh mapping.
fn read_all(fd: c_int, packet: bool) -> (Option<Mapping>, usize) {
    let len = match sys::readable_bytes(fd) {
        Ok(n) if n > 0 => n,
        _ => return (None, 0),
    };
    let Ok(mut map) = Mapping::new(len + 1) else {
        warn!("cannot hold the {} bytes in flight in the pty at fd {}; they stay there", len, fd);
        return (None, 0);
    };
    let buf = map.bytes();
    let mut got = 0;
    while got < len {
        match sys::read_some(fd, &mut buf[got..=len]) {
            Ok(0) | Err(_) => break,
            Ok(k) if packet => {
                // The first byte of each read is the packet's status (TIOCPKT_DATA: 0).
                buf.copy_within(got + 1..got + k, got);
                got += k - 1;
            }
            Ok(k) => got += k,
        }
    }
    (Some(map), got)
}

/// Termios with the processing of `raw_in`/`raw_out` off (for moving bytes back untouched).
fn plain(base: &Termios) -> Termios {
    let mut r = *base;
    r.c_lflag &= !(libc::ICANON | libc::ECHO | libc::ECHONL | libc::ISIG | libc::IEXTEN);
    r.c_iflag &= !(libc::ICRNL | libc::INLCR | libc::IGNCR | libc::IXON | libc::ISTRIP);
    r.c_oflag &= !libc::OPOST;
    r.c_cc[libc::VMIN] = 0;
    r.c_cc[libc::VTIME] = 0;
    r
}

fn drain() {
    TABLE.with(|tb| {
        for p in tb.ptys[..tb.n_ptys].iter_mut() {
            let (Some(m), Some(termios)) = (p.master, p.termios) else { continue };
            let fl = sys::fcntl(m, libc::F_GETFL, 0).unwrap_or(0);
            let _ = sys::fcntl(m, libc::F_SETFL, fl | libc::O_NONBLOCK);
            (p.out, p.out_len) = read_all(m, p.packet);
            let _ = sys::fcntl(m, libc::F_SETFL, fl);
            // The slave side's unread input, through a slave fd of our own, non-canonical for
            // the moment so that a partial line comes out too.
            if let Ok(peer) = t::pty_peer(m) {
                let _ = t::tcsetattr(peer, &plain(&termios));
                let _ = sys::fcntl(peer, libc::F_SETFL, libc::O_RDWR | libc::O_NONBLOCK);
                (p.input, p.input_len) = read_all(peer, false);
                let _ = t::tcsetattr(peer, &termios);
                sys::close(peer);
            }
            if p.out_len + p.input_len > 0 {
                trace!("pty {}: drained {} bytes of output and {} of input", p.index, p.out_len, p.input_len);
            }
        }
    });
}

fn records() -> usize {
    TABLE.with(|tb| tb.n)
}

fn write_records(put: &mut RecordSink<'_>) {
    use dmtcp_proto::image::{FdBody, FdRecord, PtyEnd, PtyRecord, PTY_CTTY};
    TABLE.with(|tb| {
        for e in &tb.ends[..tb.n] {
            let ctty = e.side == Side::Slave && tb.ptys[..tb.n_ptys].iter().any(|p| p.index == e.index && p.ctty);
            put(&FdRecord {
                fd: e.fd,
                fd_flags: if e.cloexec { libc::FD_CLOEXEC as u32 } else { 0 },
                status: e.flags as u32,
                body: FdBody::Pty(PtyRecord {
                    end: if e.side == Side::Master { PtyEnd::Master } else { PtyEnd::Slave },
                    index: e.index,
                    flags: if ctty { PTY_CTTY } else { 0 },
                }),
            });
        }
    });
}

/// Writes the drained bytes back the way they came (see the module docs).
fn refill() {
    TABLE.with(|tb| {
        for p in tb.ptys[..tb.n_ptys].iter_mut() {
            let (Some(m), Some(termios)) = (p.master, p.termios) else { continue };
            if p.out.is_none() && p.input.is_none() {
                continue;
            }
            let Ok(peer) = t::pty_peer(m) else {
                warn!("lost {} bytes in flight in the pty at fd {}", p.out_len + p.input_len, m);
                continue;
            };
            let _ = t::tcsetattr(peer, &plain(&termios));
            if let Some(map) = p.out.take() {
                // Written by the slave side again: the master side reads them.
                if sys::write_all(peer, &map.as_slice()[..p.out_len]).is_err() {
                    warn!("lost {} bytes of output in flight in the pty at fd {}", p.out_len, m);
                }
            }
            if let Some(map) = p.input.take() {
                // Typed at the master again: the slave side reads them.
                if sys::write_all(m, &map.as_slice()[..p.input_len]).is_err() {
                    warn!("lost {} bytes of input in flight in the pty at fd {}", p.input_len, m);
                }
            }
            report("putting the pty's modes back", m, t::tcsetattr(peer, &termios));
            sys::close(peer);
            p.out_len = 0;
            p.input_len = 0;
        }
    });
}

fn restore() {
    TABLE.with(|tb| {
        for e in &tb.ends[..tb.n] {
            if classify(e.fd).is_none_or(|(side, _)| side != e.side) {
                trace!("pty fd {} is not restored", e.fd);
                continue;
            }
            let cloexec = if e.cloexec { libc::FD_CLOEXEC } else { 0 };
            report("setting close-on-exec", e.fd, sys::fcntl(e.fd, libc::F_SETFD, cloexec).map(|_| ()));
            let fl = (e.flags & RESTORED_FLAGS) | libc::O_RDWR;
            report("setting the status flags", e.fd, sys::fcntl(e.fd, libc::F_SETFL, fl).map(|_| ()));
        }
        for p in tb.ptys[..tb.n_ptys].iter() {
            if let Some(m) = p.master {
                if let Some(termios) = &p.termios {
                    report("setting the pty's modes", m, t::tcsetattr(m, termios));
                }
                if let Some(w) = &p.winsize {
                    report("setting the pty's window size", m, t::set_winsize(m, w));
                }
                if p.packet {
                    report("turning packet mode on", m, t::set_packet_mode(m, true));
                }
            }
            let Some(s) = p.slave.filter(|_| p.ctty) else { continue };
            if let Some(w) = &p.winsize {
                report("setting the pty's window size", s, t::set_winsize(s, w));
            }
            if let Err(e) = t::set_controlling_terminal(s) {
                warn!("cannot make the pty at fd {} our controlling terminal again: {}", s, Bytes(sys::strerror(e)));
                continue;
            }
            if p.foreground > 0 {
                report("giving the pty its foreground group", s, t::tcsetpgrp(s, p.foreground));
            }
        }
    });
    refill();
}
