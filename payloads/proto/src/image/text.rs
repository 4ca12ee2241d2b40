//! Fixed-size NUL-terminated text fields (names, paths).

/// `N` bytes holding a string up to `N - 1` bytes long, NUL-padded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Text<const N: usize>(pub [u8; N]);

impl<const N: usize> Text<N> {
    pub const EMPTY: Text<N> = Text([0; N]);

    /// The text of `s`, truncated to `N - 1` bytes.
    pub fn new(s: &[u8]) -> Text<N> {
        let mut t = Text::EMPTY;
        t.set(s);
        t
    }
    /// Replaces the text with `s`, truncated to `N - 1` bytes.
    pub fn set(&mut self, s: &[u8]) {
        self.0.fill(0);
        let n = core::cmp::min(s.len(), N - 1);
        self.0[..n].copy_from_slice(&s[..n]);
    }
    /// The bytes up to the first NUL.
    pub fn as_bytes(&self) -> &[u8] {
        let n = self.0.iter().position(|&c| c == 0).unwrap_or(N);
        &self.0[..n]
    }
    pub(crate) fn read(b: &[u8], off: usize) -> Text<N> {
        let mut t = Text::EMPTY;
        t.0.copy_from_slice(&b[off..off + N]);
        t
    }
    pub(crate) fn write(&self, b: &mut [u8], off: usize) {
        b[off..off + N].copy_from_slice(&self.0);
    }
}

impl<const N: usize> core::fmt::Debug for Text<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}", self.as_bytes().escape_ascii())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_truncates_and_stops_at_nul() {
        let t: Text<4> = Text::new(b"abcdef");
        assert_eq!(t.as_bytes(), b"abc");
        assert_eq!(t.0[3], 0);
        let mut t: Text<8> = Text::new(b"x");
        assert_eq!(t.as_bytes(), b"x");
        t.set(b"");
        assert_eq!(t, Text::EMPTY);
        // A field without NUL (written by someone else) is read whole.
        let raw: Text<3> = Text(*b"abc");
        assert_eq!(raw.as_bytes(), b"abc");
    }
}
