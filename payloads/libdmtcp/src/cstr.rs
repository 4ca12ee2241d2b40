//! C strings and NULL-terminated string arrays handed to us by the program (`argv`, `envp`), and
//! fixed-capacity string buffers for our own copies. No allocation.
use core::ffi::{c_char, CStr};

/// A NULL-terminated array of C strings, such as `envp`. A NULL array is treated as empty, as
/// the kernel does for `execve`.
#[derive(Clone, Copy)]
pub struct CArray(*const *const c_char);

impl CArray {
    /// # Safety
    /// `p` is NULL or points to a NULL-terminated array of valid NUL-terminated strings that
    /// stay valid and unchanged while this value is used.
    pub unsafe fn new(p: *const *const c_char) -> CArray {
        CArray(p)
    }

    pub fn as_ptr(&self) -> *const *const c_char {
        self.0
    }

    /// The `i`-th entry, or None at the terminating NULL (callers walk from 0 upwards).
    pub fn get(&self, i: usize) -> Option<&CStr> {
        if self.0.is_null() {
            return None;
        }
        // SAFETY: per the constructor's contract, entries up to the NULL terminator are valid,
        // and callers never index past the first None.
        unsafe {
            let p = *self.0.add(i);
            if p.is_null() {
                None
            } else {
                Some(CStr::from_ptr(p))
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &CStr> + '_ {
        let mut i = 0;
        core::iter::from_fn(move || {
            let r = self.get(i);
            i += 1;
            r
        })
    }

    /// Value of `name` (first match) in an environment array.
    pub fn env_value(&self, name: &[u8]) -> Option<&[u8]> {
        self.env_value_c(name).map(|v| v.to_bytes())
    }

    /// Same, as the NUL-terminated tail of the entry.
    pub fn env_value_c(&self, name: &[u8]) -> Option<&CStr> {
        self.iter().find_map(|e| {
            let b = e.to_bytes_with_nul();
            env_match(e.to_bytes(), name)?;
            CStr::from_bytes_with_nul(&b[name.len() + 1..]).ok()
        })
    }
}

/// If `entry` is `name=value`, the value.
pub fn env_match<'a>(entry: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    if entry.len() > name.len() && entry.starts_with(name) && entry[name.len()] == b'=' {
        Some(&entry[name.len() + 1..])
    } else {
        None
    }
}

/// A string of at most `N - 1` bytes, always NUL-terminated.
pub struct Fixed<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Fixed<N> {
    pub const fn new() -> Self {
        Fixed { buf: [0; N], len: 0 }
    }

    pub fn clear(&mut self) {
        self.len = 0;
        self.buf[0] = 0;
    }

    /// Appends; returns false (and appends nothing) if it would not fit.
    pub fn push(&mut self, s: &[u8]) -> bool {
        if self.len + s.len() >= N {
            return false;
        }
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
        self.buf[self.len] = 0;
        true
    }

    pub fn set(&mut self, s: &[u8]) -> bool {
        self.clear();
        self.push(s)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_cstr(&self) -> &CStr {
        // The buffer always holds a NUL at len, and no NUL before it unless the caller pushed
        // one; from_bytes_until_nul stops at the first either way.
        CStr::from_bytes_until_nul(&self.buf[..=self.len]).unwrap_or(c"")
    }
}

/// Parses a decimal or `0x` hexadecimal unsigned number.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    let (digits, radix) = match s {
        [b'0', b'x' | b'X', rest @ ..] => (rest, 16),
        _ => (s, 10),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        let d = (c as char).to_digit(radix)? as u64;
        v = v.checked_mul(radix as u64)?.checked_add(d)?;
    }
    Some(v)
}

/// Formats `v` in decimal into `buf`; returns the digits.
pub fn fmt_u64(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

/// The part after the last '/'.
pub fn basename(p: &[u8]) -> &[u8] {
    match p.iter().rposition(|&c| c == b'/') {
        Some(i) => &p[i + 1..],
        None => p,
    }
}
