//! The format version and the rule for which versions a reader accepts (see the module docs).
use super::ImageError;
use core::fmt;

/// `major.minor`, stored as `major | minor << 16` in the header's u32 version field, so that
/// the images of version 2 written before minors existed read as 2.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FormatVersion {
    pub major: u16,
    pub minor: u16,
}

impl FormatVersion {
    /// What this build writes and reads up to.
    pub const CURRENT: FormatVersion = FormatVersion { major: 2, minor: 5 };
    /// The oldest major this build reads (1 had no fd table).
    pub const MIN_MAJOR: u16 = 2;

    pub const fn new(major: u16, minor: u16) -> FormatVersion {
        FormatVersion { major, minor }
    }
    pub const fn from_u32(v: u32) -> FormatVersion {
        FormatVersion { major: (v & 0xffff) as u16, minor: (v >> 16) as u16 }
    }
    pub const fn to_u32(self) -> u32 {
        self.major as u32 | (self.minor as u32) << 16
    }

    /// Whether a reader of version `self` (oldest major `min_major`) reads an image of version
    /// `image`: same major, not older than `min_major`, minor up to ours. Errors carry the
    /// image's raw version field.
    pub fn accepts(self, min_major: u16, image: FormatVersion) -> Result<(), ImageError> {
        if image.major != self.major || image.major < min_major || image.minor > self.minor {
            return Err(ImageError::Version(image.to_u32()));
        }
        Ok(())
    }

    /// The rule for this build: `CURRENT.accepts(MIN_MAJOR, image)`.
    pub fn check(image: FormatVersion) -> Result<(), ImageError> {
        FormatVersion::CURRENT.accepts(FormatVersion::MIN_MAJOR, image)
    }
}

impl fmt::Display for FormatVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: fn(u16, u16) -> FormatVersion = FormatVersion::new;

    #[test]
    fn todays_version_2_field_is_2_0() {
        assert_eq!(FormatVersion::from_u32(2), V(2, 0));
        assert_eq!(V(2, 0).to_u32(), 2);
        assert_eq!(super::super::IMAGE_VERSION, V(2, 5).to_u32(), "this build writes 2.5");
        assert_eq!(FormatVersion::check(FormatVersion::from_u32(2)), Ok(()), "2.0 images are still read");
        for v in [V(0, 0), V(2, 7), V(65535, 65535), V(3, 1)] {
            assert_eq!(FormatVersion::from_u32(v.to_u32()), v);
        }
    }

    /// Every pairing of reader and image version around a reader 3.2 that still reads major 3
    /// only (min major 3), as Firecracker's snapshot tests do.
    #[test]
    fn every_pairing_of_reader_and_image() {
        let reader = V(3, 2);
        let cases: [(FormatVersion, bool); 12] = [
            (V(3, 0), true),  // older minor
            (V(3, 1), true),  // older minor
            (V(3, 2), true),  // same
            (V(3, 3), false), // newer minor: refused
            (V(3, 9), false), // much newer minor
            (V(4, 0), false), // newer major
            (V(4, 2), false), // newer major, same minor
            (V(2, 0), false), // older major
            (V(2, 5), false), // older major, newer minor
            (V(1, 0), false), // much older major
            (V(0, 0), false), // nonsense
            (V(u16::MAX, 0), false),
        ];
        for (image, ok) in cases {
            let r = reader.accepts(3, image);
            assert_eq!(r.is_ok(), ok, "reader {reader} image {image}: {r:?}");
            if !ok {
                assert_eq!(r, Err(ImageError::Version(image.to_u32())));
            }
        }
    }

    /// The same with a reader that also reads an older major is still refused: one major per
    /// reader (an older major's layout is not the one `decode` knows).
    #[test]
    fn min_major_below_reader_major_does_not_open_other_majors() {
        let reader = V(3, 0);
        assert!(reader.accepts(2, V(2, 0)).is_err());
        assert!(reader.accepts(2, V(3, 0)).is_ok());
        assert!(reader.accepts(4, V(3, 0)).is_err(), "a major below min_major is refused");
    }

    #[test]
    fn this_build_reads_2_0_to_2_5() {
        assert!(FormatVersion::check(V(2, 0)).is_ok());
        assert!(FormatVersion::check(V(2, 1)).is_ok());
        assert!(FormatVersion::check(V(2, 2)).is_ok());
        assert!(FormatVersion::check(V(2, 3)).is_ok());
        assert!(FormatVersion::check(V(2, 4)).is_ok());
        assert!(FormatVersion::check(V(2, 5)).is_ok());
        assert_eq!(FormatVersion::check(V(2, 6)), Err(ImageError::Version(V(2, 6).to_u32())));
        assert_eq!(FormatVersion::check(V(3, 0)), Err(ImageError::Version(3)));
        assert_eq!(FormatVersion::check(V(1, 0)), Err(ImageError::Version(1)));
        assert_eq!(FormatVersion::check(FormatVersion::from_u32(99)), Err(ImageError::Version(99)));
    }
}
