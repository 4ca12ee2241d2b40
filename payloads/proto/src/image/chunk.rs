//! The data section: chunk headers (32 bytes), each followed by `len` bytes for area `area` at
//! `start + offset`, up to the END chunk (area `END_CHUNK`, offset and length zero). 2.3 adds
//! the zero chunk (kind 1 in bytes 4..8, no bytes after it): the range reads as zeros (delta
//! images, see `chain`).
use super::error::need;
use super::{ImageError, Record, CHUNK_SIZE, MAX_AREAS, PAGE_SIZE};
use crate::le::{get_u32, get_u64, put_u32, put_u64};

// Field offsets (the layout `Chunk` encodes; direct use outside this module is for the preload
// library's writer until it moves to `Chunk::encode`).
pub const AREA: usize = 0; // u32
pub const OFFSET: usize = 8; // u64
pub const LEN: usize = 16; // u64
pub const KIND: usize = 4; // u32: 0 data, 1 zero (2.3)
pub const KIND_ZERO: u32 = 1;

pub const END_CHUNK: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunk {
    /// `len` bytes for area number `area`, at `offset` from its start.
    Data { area: u32, offset: u64, len: u64 },
    /// `len` bytes of area `area` at `offset` are zeros (no bytes follow; delta images).
    Zero { area: u32, offset: u64, len: u64 },
    /// The end of the data section.
    End,
}

impl Chunk {
    pub fn encode(&self, b: &mut [u8; CHUNK_SIZE]) {
        b.fill(0);
        match *self {
            Chunk::Data { area, offset, len } => {
                put_u32(b, AREA, area);
                put_u64(b, OFFSET, offset);
                put_u64(b, LEN, len);
            }
            Chunk::Zero { area, offset, len } => {
                put_u32(b, AREA, area);
                put_u32(b, KIND, KIND_ZERO);
                put_u64(b, OFFSET, offset);
                put_u64(b, LEN, len);
            }
            Chunk::End => put_u32(b, AREA, END_CHUNK),
        }
    }

    /// Reads and checks a chunk header: an area number below the table's cap, a nonempty
    /// page-aligned offset and length that do not overflow, zero padding, an END chunk with no
    /// data. Whether it fits its area is for
    /// the reader, which holds the area table (`fits`).
    pub fn decode(b: &[u8]) -> Result<Chunk, ImageError> {
        need(b, CHUNK_SIZE, Record::Chunk)?;
        let (area, offset, len) = (get_u32(b, AREA), get_u64(b, OFFSET), get_u64(b, LEN));
        let bad = |field, value| Err(ImageError::BadField { record: Record::Chunk, field, value });
        if area == END_CHUNK {
            if offset != 0 || len != 0 {
                return bad("length of the END chunk", len | offset);
            }
            return Ok(Chunk::End);
        }
        if area >= MAX_AREAS {
            return bad("area", area.into());
        }
        // Bytes 4..8 are the kind (0 data, 1 zero), 24..32 padding.
        let kind = get_u32(b, KIND);
        if kind > KIND_ZERO || b[24..CHUNK_SIZE].iter().any(|&c| c != 0) {
            return bad("padding", kind.into());
        }
        // Memory goes in whole pages.
        if !(offset | len).is_multiple_of(PAGE_SIZE) || len == 0 {
            return bad("length", len);
        }
        if offset.checked_add(len).is_none() {
            return bad("length", len);
        }
        if kind == KIND_ZERO {
            return Ok(Chunk::Zero { area, offset, len });
        }
        Ok(Chunk::Data { area, offset, len })
    }

    /// The bytes that follow this chunk header in the stream.
    pub fn data_len(&self) -> u64 {
        match *self {
            Chunk::Data { len, .. } => len,
            _ => 0,
        }
    }

    /// Whether a data chunk lies inside an area of `area_len` bytes.
    pub fn fits(offset: u64, len: u64, area_len: u64) -> bool {
        offset.checked_add(len).is_some_and(|e| e <= area_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_round_trips_at_the_version_2_offsets() {
        for c in [
            Chunk::Data { area: 3, offset: 0x2000, len: 0x3000 },
            Chunk::Zero { area: 3, offset: 0x1000, len: 0x1000 },
            Chunk::End,
        ] {
            let mut b = [0x11u8; CHUNK_SIZE];
            c.encode(&mut b);
            assert_eq!(Chunk::decode(&b), Ok(c));
        }
        let mut b = [0u8; CHUNK_SIZE];
        Chunk::Data { area: 3, offset: 0x2000, len: 0x3000 }.encode(&mut b);
        assert_eq!((get_u32(&b, 0), get_u64(&b, 8), get_u64(&b, 16)), (3, 0x2000, 0x3000));
        Chunk::End.encode(&mut b);
        assert_eq!(get_u32(&b, 0), u32::MAX);
        assert!(b[4..].iter().all(|&c| c == 0));
    }

    #[test]
    fn chunk_refuses_bad_values_and_fits_checks_bounds() {
        let mut b = [0u8; CHUNK_SIZE];
        Chunk::Data { area: MAX_AREAS, offset: 0, len: 1 }.encode(&mut b);
        assert!(matches!(Chunk::decode(&b), Err(ImageError::BadField { field: "area", .. })));
        Chunk::Data { area: 0, offset: u64::MAX, len: 2 }.encode(&mut b);
        assert!(matches!(Chunk::decode(&b), Err(ImageError::BadField { field: "length", .. })));
        Chunk::End.encode(&mut b);
        put_u64(&mut b, LEN, 5);
        assert!(matches!(Chunk::decode(&b), Err(ImageError::BadField { record: Record::Chunk, .. })));
        assert_eq!(Chunk::decode(&b[..31]), Err(ImageError::Short { record: Record::Chunk, len: 31 }));
        Chunk::Zero { area: 0, offset: 0, len: 0x1000 }.encode(&mut b);
        put_u32(&mut b, KIND, 2);
        assert!(matches!(Chunk::decode(&b), Err(ImageError::BadField { field: "padding", .. })));
        Chunk::Zero { area: 0, offset: 0x10, len: 0x1000 }.encode(&mut b);
        assert!(matches!(Chunk::decode(&b), Err(ImageError::BadField { field: "length", .. })));
        assert!(Chunk::fits(0x1000, 0x1000, 0x2000));
        assert!(!Chunk::fits(0x1000, 0x1001, 0x2000));
        assert!(!Chunk::fits(u64::MAX, 1, u64::MAX));
    }
}
