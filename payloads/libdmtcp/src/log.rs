//! Messages on stderr: one `write(2)` per line, prefixed `dmtcp[<pid>]: `, formatted on the
//! stack (no allocation, async-signal-safe). Errors are always printed; the level follows
//! DMTCP's precedence: `DMTCP_QUIET` sets the base (0 notes, 1 warnings, 2 errors only) and
//! `DMTCP_LOG_LEVEL` (error, warn, note, trace or 0..3), when it parses, overrides it.
//!
//! With `DMTCP_LOG_FILE` every line is also appended to that file, which every process of the
//! computation (and our tools) shares: each line names its pid. The file is opened, written once
//! (O_APPEND keeps lines whole) and closed for each line, so that no fd of ours stays in the
//! program's table (and none is checkpointed); open, write and close are async-signal-safe.
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU8, Ordering};

pub const ERROR: u8 = 0;
pub const WARN: u8 = 1;
pub const TRACE: u8 = 3;

/// Highest level printed. Set once in the constructor.
static LEVEL: AtomicU8 = AtomicU8::new(WARN);

/// `DMTCP_LOG_LEVEL` ("error", "warn", "note", "trace" or 0..3) and `DMTCP_QUIET` (0..2).
pub fn configure(log_level: Option<&[u8]>, quiet: Option<&[u8]>) {
    LEVEL.store(level_for(log_level, quiet), Ordering::Relaxed);
}

/// DMTCP's precedence (pure): the first digit of DMTCP_QUIET, then DMTCP_LOG_LEVEL.
pub fn level_for(log_level: Option<&[u8]>, quiet: Option<&[u8]>) -> u8 {
    let q = quiet.and_then(|q| q.first().copied()).filter(u8::is_ascii_digit).map_or(0, |c| c - b'0');
    let base = match q {
        0 => 2,
        1 => WARN,
        _ => ERROR,
    };
    match log_level {
        Some(b"error" | b"0") => ERROR,
        Some(b"warn" | b"warning" | b"1") => WARN,
        Some(b"note" | b"2") => 2,
        Some(b"trace" | b"3") => TRACE,
        _ => base,
    }
}

pub fn enabled(level: u8) -> bool {
    level <= LEVEL.load(Ordering::Relaxed)
}

/// A line buffer on the stack; what does not fit is cut off.
struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - 1 - self.len; // keep one byte for '\n'
        let n = core::cmp::min(room, s.len());
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

pub fn print(level: u8, args: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    crate::sys::keep_errno(|| {
        let mut line = Line { buf: [0; 512], len: 0 };
        let _ = write!(line, "dmtcp[{}]: ", crate::sys::getpid());
        let _ = line.write_fmt(args);
        line.buf[line.len] = b'\n';
        let _ = crate::sys::write_all(2, &line.buf[..line.len + 1]);
        if let Some(path) = crate::config::get().log_file() {
            if let Ok(fd) = crate::sys::open_append(path) {
                let _ = crate::sys::write_all(fd, &line.buf[..line.len + 1]);
                crate::sys::close_raw(fd);
            }
        }
    });
}

/// For the panic handler, which must not format.
pub fn raw_error(msg: &[u8]) {
    let _ = crate::sys::write_all(2, b"dmtcp: ");
    let _ = crate::sys::write_all(2, msg);
    let _ = crate::sys::write_all(2, b"\n");
}

/// Displays bytes (paths, names) as text, replacing what is not UTF-8.
pub struct Bytes<'a>(pub &'a [u8]);

impl fmt::Display for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{fffd}")?;
            }
        }
        Ok(())
    }
}

macro_rules! error {
    ($($t:tt)*) => { $crate::log::print($crate::log::ERROR, format_args!($($t)*)) };
}
macro_rules! warn {
    ($($t:tt)*) => { $crate::log::print($crate::log::WARN, format_args!($($t)*)) };
}
macro_rules! trace {
    ($($t:tt)*) => { $crate::log::print($crate::log::TRACE, format_args!($($t)*)) };
}
