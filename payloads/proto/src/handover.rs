//! The value of `DMTCP_COORD_HANDOVER` (`env::COORD_HANDOVER`): a coordinator connection handed
//! from one program image to the next. A registered process that execs keeps its connection
//! open across the exec, and a process that spawns a child registers a connection for it
//! before the child exists; the new image adopts it and goes on as that worker (DMTCP keeps
//! its socket across exec the same way and sends DMT_UPDATE_PROCESS_INFO_AFTER_INIT_OR_EXEC).
//!
//! Text, `FD:VPID:COMP_ID` with the fd and virtual pid in decimal and the computation id in
//! hexadecimal, so that a 64-bit parent and a 32-bit program read the same thing.
use core::fmt::Write;

/// The longest value `format` writes: 10 + 1 + 11 + 1 + 16 characters.
pub const MAX_LEN: usize = 40;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handover {
    /// The connection's descriptor number in the new image.
    pub fd: i32,
    /// The virtual pid the coordinator gave this worker.
    pub vpid: i32,
    /// The computation it belongs to.
    pub comp_id: u64,
}

impl Handover {
    /// Reads a value that `format` wrote; None for anything else (a program may have put its
    /// own text there, or cut it).
    pub fn parse(v: &[u8]) -> Option<Handover> {
        let mut parts = v.split(|&c| c == b':');
        let fd = dec(parts.next()?)?;
        let vpid = dec(parts.next()?)?;
        let comp_id = hex(parts.next()?)?;
        if parts.next().is_some() || fd < 0 || vpid <= 0 || comp_id == 0 {
            return None;
        }
        Some(Handover { fd, vpid, comp_id })
    }

    /// Writes the value into `out`; the written part.
    pub fn format<'a>(&self, out: &'a mut [u8; MAX_LEN]) -> &'a [u8] {
        let mut w = Buf { buf: out, len: 0 };
        // Cannot fail: the longest value fits in MAX_LEN.
        let _ = write!(w, "{}:{}:{:x}", self.fd, self.vpid, self.comp_id);
        let n = w.len;
        &out[..n]
    }
}

fn dec(s: &[u8]) -> Option<i32> {
    if s.is_empty() || s.len() > 10 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = s.iter().fold(0u64, |v, &c| v * 10 + (c - b'0') as u64);
    i32::try_from(v).ok()
}

fn hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    s.iter().try_fold(0u64, |v, &c| Some(v << 4 | (c as char).to_digit(16)? as u64))
}

struct Buf<'a> {
    buf: &'a mut [u8; MAX_LEN],
    len: usize,
}

impl Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let b = s.as_bytes();
        if self.len + b.len() > self.buf.len() {
            return Err(core::fmt::Error);
        }
        self.buf[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_then_parse_gives_the_same_handover_at_the_extremes() {
        for h in [
            Handover { fd: 821, vpid: 40000, comp_id: 0x1234_abcd },
            Handover { fd: i32::MAX, vpid: i32::MAX, comp_id: u64::MAX },
            Handover { fd: 0, vpid: 1, comp_id: 1 },
        ] {
            let mut out = [0u8; MAX_LEN];
            let text = h.format(&mut out);
            assert_eq!(Handover::parse(text), Some(h), "{}", core::str::from_utf8(text).unwrap());
        }
        let mut out = [0u8; MAX_LEN];
        assert_eq!(Handover { fd: 821, vpid: 41000, comp_id: 0xbeef }.format(&mut out), b"821:41000:beef");
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            &b""[..],
            b"821",
            b"821:40000",
            b"821:40000:",
            b":40000:1",
            b"821:40000:1:2",
            b"821:0:1",
            b"821:40000:0",
            b"-1:40000:1",
            b"821:-5:1",
            b"8 21:40000:1",
            b"821:40000:xyz",
            b"99999999999:40000:1",
            b"821:40000:12345678901234567",
            b"2147483648:40000:1",
        ] {
            assert_eq!(Handover::parse(bad), None, "{}", core::str::from_utf8(bad).unwrap());
        }
    }
}
