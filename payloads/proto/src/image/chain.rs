//! Incremental images (2.3): the header's chain field, which says where an image stands in a
//! chain of images, and, for a delta image, which image it builds on.
//!
//! A chain is one full image (position 0) followed by delta images (position 1, 2, ...). A
//! delta holds the area table, threads and fds of its own checkpoint, complete, but only the
//! pages of private anonymous memory that changed since the previous image of the chain, plus
//! `Chunk::Zero` ranges for the pages that became empty (MADV_DONTNEED, unmapped and mapped
//! again): those must come back as zeros, not as the base's bytes. Every other area (file
//! mappings, shared memory, areas new since the previous checkpoint) is written whole, as in a
//! full image, and a private anonymous area that is new gets one `Chunk::Zero` over all of it
//! first, so nothing of an older image shows through. The restore is therefore: the newest
//! image's layout; every older image's chunks, oldest first, clipped to the newest image's
//! private anonymous areas; then the newest image's chunks.
//!
//! A delta names its base by the checksum of the base file's trailer (`base_checksum`), the
//! base's own `image_id` and its file name beside it (`base_name`, for finding it and for the
//! messages), so `dmtcp_restart` can refuse a missing or mismatching link naming the file.
//!
//! Layout: inside the header's reserved space (2.2 writers leave it zero, which reads as a full
//! image with no id: `Chain::NONE`).
use super::error::ImageError;
use super::{Record, Text};
use crate::le::{get_u32, get_u64, put_u32, put_u64};

/// Offsets in the header (inside the part 2.2 reserved).
pub const BASE_NAME: usize = 3712; // [256] file name of the base image, beside this one
pub const BASE_CHECKSUM: usize = 3968; // u64 trailer checksum of the base image
pub const BASE_ID: usize = 3976; // u64 image_id of the base image
pub const IMAGE_ID: usize = 3984; // u64 this image's id (nonzero in a 2.3 image of a chain)
pub const POSITION: usize = 3992; // u32 0 = full image, k = k-th delta on the base
pub const END: usize = 3996;
pub const NAME_LEN: usize = 256;
/// The longest chain a reader follows (a writer rebases long before).
pub const MAX_POSITION: u32 = 1000;

/// The chain field of a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chain {
    /// This image's id: a number the writer picked at checkpoint time (0: not in a chain).
    pub image_id: u64,
    /// 0: a full image; k > 0: a delta whose base is at position k - 1.
    pub position: u32,
    pub base_checksum: u64,
    pub base_id: u64,
    pub base_name: Text<NAME_LEN>,
}

impl Chain {
    /// A full image outside any chain (what a 2.2 image reads as).
    pub const NONE: Chain = Chain { image_id: 0, position: 0, base_checksum: 0, base_id: 0, base_name: Text::EMPTY };

    pub fn is_delta(&self) -> bool {
        self.position > 0
    }

    pub fn encode(&self, b: &mut [u8]) {
        self.base_name.write(b, BASE_NAME);
        put_u64(b, BASE_CHECKSUM, self.base_checksum);
        put_u64(b, BASE_ID, self.base_id);
        put_u64(b, IMAGE_ID, self.image_id);
        put_u32(b, POSITION, self.position);
    }

    /// Reads and checks the field: a full image names no base; a delta has an id, a base id and
    /// a base file name that is a plain name (no folder: the base lies beside it).
    pub fn decode(b: &[u8]) -> Result<Chain, ImageError> {
        let c = Chain {
            image_id: get_u64(b, IMAGE_ID),
            position: get_u32(b, POSITION),
            base_checksum: get_u64(b, BASE_CHECKSUM),
            base_id: get_u64(b, BASE_ID),
            base_name: Text::read(b, BASE_NAME),
        };
        let bad = |field, value| Err(ImageError::BadField { record: Record::Header, field, value });
        if c.position > MAX_POSITION {
            return bad("chain position", c.position.into());
        }
        if c.position == 0 {
            if c.base_checksum != 0 || c.base_id != 0 || !c.base_name.as_bytes().is_empty() {
                return bad("base of a full image", c.base_id);
            }
            return Ok(c);
        }
        let name = c.base_name.as_bytes();
        if c.image_id == 0 || c.base_id == 0 {
            return bad("image id of a delta", c.image_id);
        }
        if name.is_empty() || name.contains(&b'/') || name == b"." || name == b".." {
            return bad("base image name", name.len() as u64);
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta() -> Chain {
        Chain { image_id: 7, position: 2, base_checksum: 0xabc, base_id: 6, base_name: Text::new(b"ckpt_a.dmtcp.1") }
    }

    #[test]
    fn chain_round_trips_and_zero_is_a_full_image() {
        let mut b = [0u8; 4096];
        assert_eq!(Chain::decode(&b), Ok(Chain::NONE));
        delta().encode(&mut b);
        assert_eq!(Chain::decode(&b), Ok(delta()));
        assert!(delta().is_delta() && !Chain::NONE.is_delta());
        const { assert!(END <= super::super::hdr::CLOCK_MONOTONIC, "inside the reserved part") };
    }

    #[test]
    fn chain_refuses_a_delta_without_base_and_a_base_with_a_folder() {
        let mut b = [0u8; 4096];
        for edit in [
            |c: &mut Chain| c.base_name = Text::new(b"../x"),
            |c: &mut Chain| c.base_name = Text::EMPTY,
            |c: &mut Chain| c.base_id = 0,
            |c: &mut Chain| c.image_id = 0,
            |c: &mut Chain| c.position = MAX_POSITION + 1,
        ] {
            let mut c = delta();
            edit(&mut c);
            c.encode(&mut b);
            assert!(Chain::decode(&b).is_err(), "{c:?}");
        }
        let full = Chain { position: 0, ..delta() };
        full.encode(&mut b);
        assert!(Chain::decode(&b).is_err(), "a full image names no base");
    }
}
