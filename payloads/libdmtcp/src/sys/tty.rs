//! Typed wrappers for the terminal calls of `resources::tty`: the controlling terminal's device
//! (from /proc/self/stat), a descriptor's device number, termios, window size, the foreground
//! process group and the session.
//!
//! Rules: system calls and the C library's thin ioctl wrappers only (tcgetattr, tcsetattr,
//! tcgetpgrp, tcsetpgrp are one ioctl each), no allocation, async-signal-safe; every pointer
//! passed comes from a Rust reference of the right type. Every unsafe block has a `// SAFETY:`
//! line.
use super::{check, close, errno, open_read, read_some, set_sigmask, Errno};
use core::ffi::c_int;

pub type Termios = libc::termios;
pub type Winsize = libc::winsize;

/// A device number as (major, minor).
pub type Dev = (u32, u32);

/// The device a descriptor is, if it is a character device.
pub fn char_device(fd: c_int) -> Option<Dev> {
    // SAFETY: an all-zero stat64 is a valid value of this plain C struct.
    let mut st: libc::stat64 = unsafe { core::mem::zeroed() };
    // SAFETY: st is a valid stat64 to fill.
    check(unsafe { libc::fstat64(fd, &mut st) }).ok()?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR {
        return None;
    }
    Some((libc::major(st.st_rdev), libc::minor(st.st_rdev)))
}

/// The device a path names (following a last symlink or not), if it is a character device.
pub fn path_device(path: &core::ffi::CStr, follow: bool) -> Option<Dev> {
    // SAFETY: an all-zero stat64 is a valid value of this plain C struct.
    let mut st: libc::stat64 = unsafe { core::mem::zeroed() };
    // SAFETY: path is NUL-terminated, st is a valid stat64 to fill.
    let r = unsafe {
        if follow {
            libc::stat64(path.as_ptr(), &mut st)
        } else {
            libc::lstat64(path.as_ptr(), &mut st)
        }
    };
    check(r).ok()?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR {
        return None;
    }
    Some((libc::major(st.st_rdev), libc::minor(st.st_rdev)))
}

/// The controlling terminal's device (field 7 of /proc/self/stat, `tty_nr`, in the kernel's
/// `new_encode_dev` form), or None without one.
pub fn controlling_terminal() -> Option<Dev> {
    let fd = open_read(c"/proc/self/stat").ok()?;
    let mut buf = [0u8; 1024];
    let n = read_some(fd, &mut buf).unwrap_or(0);
    close(fd);
    let text = &buf[..n];
    // The command name (field 2) may hold spaces and parentheses: start after the last ')'.
    let after = text.iter().rposition(|&c| c == b')')? + 1;
    // Fields 3 (state), 4 (ppid), 5 (pgrp), 6 (session), 7 (tty_nr).
    let field = text[after..].split(|&c| c == b' ').filter(|f| !f.is_empty()).nth(4)?;
    let nr = crate::cstr::parse_u64(field)? as u32;
    if nr == 0 {
        return None;
    }
    Some(((nr >> 8) & 0xfff, (nr & 0xff) | ((nr >> 12) & 0xfff00)))
}

/// `/dev/tty`'s own device number (5, 0): a descriptor opened by that name.
pub const DEV_TTY: Dev = (5, 0);

pub fn tcgetattr(fd: c_int) -> Result<Termios, Errno> {
    // SAFETY: an all-zero termios is a valid value of this plain C struct.
    let mut t: Termios = unsafe { core::mem::zeroed() };
    // SAFETY: t is a valid termios to fill.
    check(unsafe { libc::tcgetattr(fd, &mut t) })?;
    Ok(t)
}

/// Runs `f` with every signal blocked in this thread (raw sigprocmask): a terminal call from a
/// background process group then fails or succeeds instead of stopping the process with
/// SIGTTOU (the kernel's `tty_check_change` lets a process that blocks SIGTTOU change the
/// terminal).
fn without_sigttou<T>(f: impl FnOnce() -> T) -> T {
    let old = set_sigmask(&super::full_sigset());
    let r = f();
    set_sigmask(&old);
    r
}

/// `tcsetattr(fd, TCSANOW, t)`, allowed from a background group (see `without_sigttou`).
pub fn tcsetattr(fd: c_int, t: &Termios) -> Result<(), Errno> {
    // SAFETY: t is a valid termios the call only reads.
    without_sigttou(|| check(unsafe { libc::tcsetattr(fd, libc::TCSANOW, t) })).map(|_| ())
}

pub fn get_winsize(fd: c_int) -> Result<Winsize, Errno> {
    let mut w = Winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one struct winsize.
    check(unsafe { libc::ioctl(fd, libc::TIOCGWINSZ as _, &mut w as *mut Winsize) })?;
    Ok(w)
}

/// The terminal's foreground process group as this pid namespace sees it (0: outside it).
pub fn tcgetpgrp(fd: c_int) -> Result<i32, Errno> {
    // SAFETY: a query on a descriptor number.
    let r = unsafe { libc::tcgetpgrp(fd) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(r)
    }
}

/// `tcsetpgrp(fd, pgrp)`, allowed from a background group (see `without_sigttou`).
pub fn tcsetpgrp(fd: c_int, pgrp: i32) -> Result<(), Errno> {
    // SAFETY: a call on a descriptor number with an integer argument.
    without_sigttou(|| check(unsafe { libc::tcsetpgrp(fd, pgrp) })).map(|_| ())
}

/// This process's group as this pid namespace sees it (0: its leader is outside).
pub fn getpgrp() -> i32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::getpgrp() }
}

/// This process's session as this pid namespace sees it (0: its leader is outside).
pub fn getsid() -> i32 {
    // SAFETY: getsid(0) asks about this process; it cannot fail for it.
    unsafe { libc::getsid(0) }
}

/// `TIOCGPTPEER` (linux/tty.h, 4.13): a new fd of a master's slave.
const TIOCGPTPEER: libc::c_ulong = 0x5441;
/// `TIOCGPKT` (linux/asm-generic/ioctls.h, 3.8): whether packet mode is on.
const TIOCGPKT: libc::c_ulong = 0x8004_5438;

/// The pty number of a master (`TIOCGPTN`): its slave is /dev/pts/<n>.
pub fn pty_number(master: c_int) -> Result<u32, Errno> {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int.
    check(unsafe { libc::ioctl(master, libc::TIOCGPTN as _, &mut n as *mut libc::c_uint) })?;
    Ok(n)
}

/// A new descriptor of a master's slave (`TIOCGPTPEER`), close-on-exec, not a controlling
/// terminal.
pub fn pty_peer(master: c_int) -> Result<c_int, Errno> {
    // SAFETY: TIOCGPTPEER takes open flags as an integer and returns a new fd.
    check(unsafe { libc::ioctl(master, TIOCGPTPEER as _, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) })
}

/// Whether a master is in packet mode (`TIOCGPKT`).
pub fn packet_mode(master: c_int) -> Result<bool, Errno> {
    let mut on: c_int = 0;
    // SAFETY: TIOCGPKT writes one int.
    check(unsafe { libc::ioctl(master, TIOCGPKT as _, &mut on as *mut c_int) })?;
    Ok(on != 0)
}

/// Turns a master's packet mode on or off (`TIOCPKT`).
pub fn set_packet_mode(master: c_int, on: bool) -> Result<(), Errno> {
    let v: c_int = on as c_int;
    // SAFETY: TIOCPKT reads one int.
    check(unsafe { libc::ioctl(master, libc::TIOCPKT as _, &v as *const c_int) }).map(|_| ())
}

/// `TIOCSWINSZ` (sends SIGWINCH to the foreground group when the size changes).
pub fn set_winsize(fd: c_int, w: &Winsize) -> Result<(), Errno> {
    // SAFETY: TIOCSWINSZ reads one struct winsize.
    check(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ as _, w as *const Winsize) }).map(|_| ())
}

/// Makes the terminal `fd` the controlling terminal of the session this process leads
/// (`TIOCSCTTY`, without stealing it from another session).
pub fn set_controlling_terminal(fd: c_int) -> Result<(), Errno> {
    // SAFETY: TIOCSCTTY takes an integer argument.
    check(unsafe { libc::ioctl(fd, libc::TIOCSCTTY as _, 0 as c_int) }).map(|_| ())
}
