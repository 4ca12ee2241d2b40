//! Messages on stderr: one `write(2)` per line, prefixed `dmtcp[<pid>]: `, formatted on the
//! stack (no allocation, async-signal-safe). Errors are always printed; warnings unless
//! `DMTCP_QUIET>=2`; trace only with `DMTCP_LOG_LEVEL=trace` (or `3`).
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU8, Ordering};

pub const ERROR: u8 = 0;
pub const WARN: u8 = 1;
pub const TRACE: u8 = 3;

/// Highest level printed. Set once in the constructor.
static LEVEL: AtomicU8 = AtomicU8::new(WARN);

/// `DMTCP_LOG_LEVEL` ("error", "warn", "note", "trace" or 0..3) and `DMTCP_QUIET` (0..2).
pub fn configure(log_level: Option<&[u8]>, quiet: Option<&[u8]>) {
    let mut level = WARN;
    if let Some(l) = log_level {
        level = match l {
            b"error" | b"0" => ERROR,
            b"warn" | b"1" => WARN,
            b"note" | b"2" => 2,
            b"trace" | b"3" => TRACE,
            _ => WARN,
        };
    }
    if let Some(q) = quiet {
        if q.first().is_some_and(|&c| c >= b'2') && level < TRACE {
            level = ERROR;
        }
    }
    LEVEL.store(level, Ordering::Relaxed);
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
