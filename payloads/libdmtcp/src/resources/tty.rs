//! The user's terminal: the controlling terminal the computation was launched from, which is
//! not ours to recreate. After a restart the program uses the terminal `dmtcp_restart` runs
//! in (another pty, maybe another size), with the program's own settings put back:
//! - every descriptor of the old terminal above 2 (bash's fd 255, an editor's /dev/tty) is
//!   opened again on the new controlling terminal (`/dev/tty`), with its status and
//!   close-on-exec flags; fds 0-2 are `dmtcp_restart`'s own, which the user chose;
//! - the termios the program had set (raw or cbreak mode, echo, special characters);
//! - a process whose group was the terminal's foreground group, and which leads a group inside
//!   our pid namespace (a job-control shell, its foreground job), makes it the foreground group
//!   of the new terminal; one in `dmtcp_restart`'s own group (a program that never called
//!   setpgid) is there already, since the restart runs in the user's foreground;
//! - the window size is the new terminal's; a foreground process gets SIGWINCH when it differs
//!   from the saved one, as the kernel sends it on a resize.
//!
//! Restarted without a terminal (no controlling terminal: stdin from /dev/null, output to a
//! file), a descriptor of the old terminal above 2 becomes a copy of the stdio fd that was the
//! same terminal (what `dmtcp_restart` got there), else /dev/null: the program's terminal calls
//! then fail with ENOTTY as they would for a program without one, and nothing else changes.
//!
//! Which descriptors are "the user's terminal": those whose device is the controlling terminal
//! of a process whose session began outside our pid namespace (`getsid` reads 0: the session
//! of `dmtcp_launch`), plus descriptors of `/dev/tty` itself. A terminal that a session inside
//! the computation controls (the slave of a pty the computation made) is not the user's.
//!
//! Design choice: the image gets no record for these fds. Nothing is shared across processes
//! that `dmtcp_restart` must make: each process reopens the one terminal itself, and the
//! saved state (this module's table) is in the image's memory. The kind tag
//! `FD_TERMINAL` stays free for a record if the tool side ever needs to know.
//!
//! Rules: hooks run in the checkpoint thread with every other thread stopped; no allocation
//! (fixed table in .bss), no unsafe (terminal calls through `sys::tty`).
use super::{report, Hooks, NONE};
use crate::cell::Exclusive;
use crate::log::Bytes;
use crate::sys::tty::{self as t, Dev, Termios, Winsize};
use crate::sys::{self, Errno};
use core::ffi::c_int;

pub const HOOKS: Hooks = Hooks { name: "tty", save, restore, ..NONE };

const MAX_FDS: usize = 64;
/// Status flags given back to a reopened terminal fd.
const KEPT_FLAGS: c_int = libc::O_ACCMODE | libc::O_APPEND | libc::O_NONBLOCK;

#[derive(Clone, Copy)]
struct Fd {
    fd: c_int,
    flags: c_int,
    cloexec: bool,
}

struct Table {
    /// The old terminal's device (None: no user's terminal at checkpoint).
    dev: Option<Dev>,
    fds: [Fd; MAX_FDS],
    n: usize,
    /// Which of fds 0-2 were the terminal (bit per fd).
    stdio: u8,
    termios: Option<Termios>,
    winsize: Option<Winsize>,
    /// Our group was the terminal's foreground group.
    foreground: bool,
    /// After a restart: send ourselves SIGWINCH in `after_restart_resumed`.
    winch: bool,
}

static TABLE: Exclusive<Table> = Exclusive::new(Table {
    dev: None,
    fds: [Fd { fd: -1, flags: 0, cloexec: false }; MAX_FDS],
    n: 0,
    stdio: 0,
    termios: None,
    winsize: None,
    foreground: false,
    winch: false,
});

/// The user's terminal, if this process has one: its device.
fn users_terminal() -> Option<Dev> {
    if t::getsid() != 0 {
        return None;
    }
    t::controlling_terminal()
}

/// Whether `fd` is a descriptor of the user's terminal `dev` (for `files`, which leaves these
/// to us).
fn is_terminal_fd(fd: c_int, dev: Dev) -> bool {
    t::char_device(fd).is_some_and(|d| d == dev || d == t::DEV_TTY)
}

/// Whether this kind saved `fd` (the user's terminal) in this checkpoint's `save`, which runs
/// before `files`' (registry order): `files` skips it then.
pub fn takes(fd: c_int) -> bool {
    TABLE.with(|tb| tb.dev).is_some_and(|dev| is_terminal_fd(fd, dev))
}

fn save() {
    TABLE.with(|tb| {
        tb.n = 0;
        tb.stdio = 0;
        tb.termios = None;
        tb.winsize = None;
        tb.foreground = false;
        tb.winch = false;
        tb.dev = users_terminal();
        let Some(dev) = tb.dev else { return };
        super::for_each_program_fd(|fd| {
            if !is_terminal_fd(fd, dev) {
                return;
            }
            if (0..=2).contains(&fd) {
                tb.stdio |= 1 << fd;
            }
            if tb.termios.is_none() {
                tb.termios = t::tcgetattr(fd).ok();
                tb.winsize = t::get_winsize(fd).ok();
                tb.foreground = t::tcgetpgrp(fd).is_ok_and(|g| g == t::getpgrp());
            }
            if fd <= 2 {
                return;
            }
            if tb.n == MAX_FDS {
                trace!("more than {} terminal fds; fd {} is not saved", MAX_FDS, fd);
                return;
            }
            tb.fds[tb.n] = Fd {
                fd,
                flags: sys::fcntl(fd, libc::F_GETFL, 0).unwrap_or(libc::O_RDWR),
                cloexec: sys::fcntl(fd, libc::F_GETFD, 0).is_ok_and(|f| f & libc::FD_CLOEXEC != 0),
            };
            tb.n += 1;
        });
        if tb.termios.is_none() {
            // A controlling terminal none of our fds points at: nothing of it to put back.
            trace!("the controlling terminal is not open here; its settings are not saved");
        }
    });
}

fn say(what: &str, e: Errno) {
    trace!("after restart: {}: {}", what, Bytes(sys::strerror(e)));
}

fn restore() {
    TABLE.with(|tb| {
        if tb.dev.is_none() {
            return;
        }
        // The new controlling terminal (the session is dmtcp_restart's); none when the restart
        // runs without one.
        // Our own descriptor of it is opened after the program's are placed: it would take a
        // number that one of them needs.
        let open_tty = || sys::open(c"/dev/tty", libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NONBLOCK);
        let have_tty = open_tty().map(sys::close).is_ok();
        for f in &tb.fds[..tb.n] {
            reopen(f, have_tty, tb.stdio);
        }
        let Some(tty) = open_tty().ok().filter(|_| have_tty) else {
            trace!("restarted without a controlling terminal; its fds point at what dmtcp_restart was given");
            return;
        };
        if let Some(termios) = &tb.termios {
            if let Err(e) = t::tcsetattr(tty, termios) {
                say("setting the terminal's modes", e);
            }
        }
        let pgrp = t::getpgrp();
        if tb.foreground && pgrp != 0 {
            if let Err(e) = t::tcsetpgrp(tty, pgrp) {
                say("making our process group the terminal's foreground group", e);
            }
        }
        // A foreground process hears of a size that changed, as on a resize.
        let now = t::get_winsize(tty).ok();
        tb.winch = tb.foreground
            && t::tcgetpgrp(tty).is_ok_and(|g| g == pgrp)
            && match (tb.winsize, now) {
                (Some(a), Some(b)) => (a.ws_row, a.ws_col) != (b.ws_row, b.ws_col),
                _ => false,
            };
        sys::close(tty);
    });
}

/// Puts a descriptor of the terminal back at `f.fd`: the new terminal, else a copy of a stdio
/// fd that was the terminal, else /dev/null (see the module docs).
fn reopen(f: &Fd, have_tty: bool, stdio: u8) {
    let flags = (f.flags & KEPT_FLAGS) | libc::O_NOCTTY | libc::O_CLOEXEC;
    let dup_flags = if f.cloexec { libc::O_CLOEXEC } else { 0 };
    let src = match have_tty {
        true => sys::open(c"/dev/tty", flags),
        false => match (0..=2).find(|&k| stdio & (1 << k) != 0) {
            Some(k) => {
                report("copying a stdio fd for the terminal", f.fd, sys::dup3(k, f.fd, dup_flags));
                return;
            }
            None => sys::open(c"/dev/null", flags),
        },
    };
    match src {
        Ok(tmp) if tmp == f.fd => {
            if !f.cloexec {
                report("clearing close-on-exec", f.fd, sys::fcntl(f.fd, libc::F_SETFD, 0).map(|_| ()));
            }
        }
        Ok(tmp) => {
            report("placing the terminal", f.fd, sys::dup3(tmp, f.fd, dup_flags));
            sys::close(tmp);
        }
        Err(e) => warn!("cannot open the terminal again as fd {} after restart: {}", f.fd, Bytes(sys::strerror(e))),
    }
}

/// After a restart, once the program's threads run again (called by the checkpoint thread):
/// the SIGWINCH of a changed size. It is sent when every thread of the program is back asleep
/// in the kernel (or after 200 ms), as a resize would find them: a program blocked in read()
/// or poll() without SA_RESTART must see it interrupt that call, not land on the way back to
/// it (where a flag-setting handler would only be noticed at the next key).
pub fn after_restart_resumed() {
    let winch = TABLE.with(|tb| core::mem::replace(&mut tb.winch, false));
    if !winch {
        return;
    }
    let ckpt = crate::threads::CKPT_TID.load(core::sync::atomic::Ordering::Relaxed);
    for _ in 0..40 {
        if all_asleep(ckpt) {
            break;
        }
        let _ = sys::poll_one(-1, 0, 5);
    }
    report("sending SIGWINCH", 0, sys::kill(sys::getpid(), libc::SIGWINCH));
}

/// Whether every thread but `ckpt` is sleeping in the kernel (state S or D in its stat).
fn all_asleep(ckpt: i32) -> bool {
    let mut asleep = true;
    sys::for_each_numbered_entry(c"/proc/self/task", |tid, _| {
        if tid as i32 == ckpt || !asleep {
            return;
        }
        let mut path = crate::cstr::Fixed::<64>::new();
        let mut num = [0u8; 20];
        path.push(b"/proc/self/task/");
        path.push(crate::cstr::fmt_u64(tid, &mut num));
        path.push(b"/stat");
        let Ok(fd) = sys::open_read(path.as_cstr()) else { return };
        let mut buf = [0u8; 512];
        let n = sys::read_some(fd, &mut buf).unwrap_or(0);
        sys::close(fd);
        let text = &buf[..n];
        let state = text.iter().rposition(|&c| c == b')').and_then(|i| text.get(i + 2));
        asleep = matches!(state, Some(b'S') | Some(b'D'));
    });
    asleep
}
