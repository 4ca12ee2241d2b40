//! Why an image, or one of its records, was refused.
use super::{FormatVersion, MAX_AREAS, MAX_FDS, MAX_THREADS};
use core::fmt;

/// The kinds of record, to name the one that is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    Header,
    Area,
    Thread,
    Fd,
    Chunk,
    Trailer,
}

impl Record {
    pub fn name(self) -> &'static str {
        match self {
            Record::Header => "header",
            Record::Area => "area record",
            Record::Thread => "thread record",
            Record::Fd => "fd record",
            Record::Chunk => "chunk header",
            Record::Trailer => "trailer",
        }
    }
}

/// The tables after the header, each with a count in the header and a cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Areas,
    Threads,
    Fds,
}

impl Table {
    pub fn name(self) -> &'static str {
        match self {
            Table::Areas => "areas",
            Table::Threads => "threads",
            Table::Fds => "fd records",
        }
    }
    pub fn max(self) -> u32 {
        match self {
            Table::Areas => MAX_AREAS,
            Table::Threads => MAX_THREADS,
            Table::Fds => MAX_FDS,
        }
    }
}

/// Why an image was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Bad magic (or too short to hold one).
    NotAnImage,
    /// The raw version field of a version this build does not read (see the version rule).
    Version(u32),
    /// An architecture value other than x86_64 and i686.
    Arch(u32),
    HeaderChecksum,
    /// The header's own size field is not `HEADER_SIZE`.
    HeaderSize(u32),
    /// A table count above its cap.
    TooMany {
        table: Table,
        count: u32,
    },
    /// No thread at all.
    NoThreads,
    /// Fewer bytes than the record's size.
    Short {
        record: Record,
        len: usize,
    },
    /// A field with a value the format does not allow.
    BadField {
        record: Record,
        field: &'static str,
        value: u64,
    },
    /// An fd record of a kind this build does not know.
    FdKind(u32),
    TrailerMagic,
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ImageError::NotAnImage => write!(f, "not a dmtcp checkpoint image (bad magic)"),
            ImageError::Version(v) => write!(
                f,
                "image format version {} is not supported (this build reads versions {}.0 to {})",
                FormatVersion::from_u32(v),
                FormatVersion::CURRENT.major,
                FormatVersion::CURRENT
            ),
            ImageError::Arch(a) => write!(f, "unknown architecture {a} in image"),
            ImageError::HeaderChecksum => write!(f, "image header is corrupt (checksum mismatch)"),
            ImageError::HeaderSize(s) => write!(f, "image header is corrupt (header size {s}, expected 4096)"),
            ImageError::TooMany { table, count } => write!(
                f,
                "image header is corrupt (impossible counts: {count} {}, at most {})",
                table.name(),
                table.max()
            ),
            ImageError::NoThreads => write!(f, "image header is corrupt (impossible counts: no thread)"),
            ImageError::Short { record, len } => write!(f, "{} is cut short ({len} bytes)", record.name()),
            ImageError::BadField { record, field, value } => {
                write!(f, "{} has an impossible {field} ({value:#x})", record.name())
            }
            ImageError::FdKind(k) => write!(f, "fd record of unknown kind {k}"),
            ImageError::TrailerMagic => write!(f, "bad trailer magic"),
        }
    }
}

/// Checks that `b` holds at least `size` bytes of a `record`.
pub(crate) fn need(b: &[u8], size: usize, record: Record) -> Result<(), ImageError> {
    if b.len() < size {
        return Err(ImageError::Short { record, len: b.len() });
    }
    Ok(())
}
