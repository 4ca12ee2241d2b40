//! Messages on a file descriptor without libc or allocation.
use crate::sys;

pub struct Out {
    fd: usize,
}

impl Out {
    pub fn new(fd: usize) -> Out {
        Out { fd }
    }

    pub fn b(self, mut s: &[u8]) -> Out {
        while !s.is_empty() {
            match sys::write(self.fd, s) {
                Ok(n) if n > 0 => s = &s[n..],
                _ => break,
            }
        }
        self
    }

    pub fn s(self, s: &str) -> Out {
        self.b(s.as_bytes())
    }

    pub fn hex(self, v: u64) -> Out {
        let mut buf = [0u8; 18];
        buf[0] = b'0';
        buf[1] = b'x';
        let mut n = 2;
        let mut started = false;
        for i in (0..16).rev() {
            let d = ((v >> (i * 4)) & 0xf) as u8;
            if d != 0 || started || i == 0 {
                started = true;
                buf[n] = if d < 10 { b'0' + d } else { b'a' + d - 10 };
                n += 1;
            }
        }
        self.b(&buf[..n])
    }

    pub fn dec(self, v: u64) -> Out {
        let mut buf = [0u8; 20];
        let mut n = buf.len();
        let mut x = v;
        loop {
            n -= 1;
            buf[n] = b'0' + (x % 10) as u8;
            x /= 10;
            if x == 0 {
                break;
            }
        }
        self.b(&buf[n..])
    }
}
