//! The trailer (32 bytes, last in the stream): magic, length of everything before it, and the
//! checksum of it.
use super::error::need;
use super::{ImageError, Record, TRAILER_MAGIC, TRAILER_SIZE};
use crate::le::{get_u64, put_u64};

const LEN: usize = 8; // u64
const CHECKSUM: usize = 16; // u64; 24..32 reserved, zero

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailer {
    /// Bytes of the stream before the trailer.
    pub len: u64,
    /// Their checksum (0 in a stream fresh from the preload library; see `dmtcp write-image`).
    pub checksum: u64,
}

impl Trailer {
    pub fn encode(&self, b: &mut [u8; TRAILER_SIZE]) {
        b.fill(0);
        b[..8].copy_from_slice(&TRAILER_MAGIC);
        put_u64(b, LEN, self.len);
        put_u64(b, CHECKSUM, self.checksum);
    }

    /// Reads a trailer: exactly `TRAILER_SIZE` bytes with the trailer magic.
    pub fn decode(b: &[u8]) -> Result<Trailer, ImageError> {
        need(b, TRAILER_SIZE, Record::Trailer)?;
        if b.len() != TRAILER_SIZE || b[..8] != TRAILER_MAGIC {
            return Err(ImageError::TrailerMagic);
        }
        Ok(Trailer { len: get_u64(b, LEN), checksum: get_u64(b, CHECKSUM) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_round_trips_and_matches_the_old_helpers() {
        let t = Trailer { len: 123_456_789, checksum: 0xdead_beef_0bad_f00d };
        let mut b = [0u8; TRAILER_SIZE];
        t.encode(&mut b);
        assert_eq!(Trailer::decode(&b), Ok(t));
        assert_eq!(&b[..8], b"DMTCPEND");
        assert_eq!(b, super::super::trailer(t.len, t.checksum));
        assert_eq!(super::super::parse_trailer(&b), Some((t.len, t.checksum)));
    }

    #[test]
    fn trailer_refuses_bad_magic_and_wrong_size() {
        let mut b = [0u8; TRAILER_SIZE];
        Trailer { len: 1, checksum: 2 }.encode(&mut b);
        let mut bad = b;
        bad[3] ^= 1;
        assert_eq!(Trailer::decode(&bad), Err(ImageError::TrailerMagic));
        assert_eq!(Trailer::decode(&b[..20]), Err(ImageError::Short { record: Record::Trailer, len: 20 }));
        assert_eq!(super::super::parse_trailer(&bad), None);
    }
}
