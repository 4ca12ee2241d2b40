//! The bodies of the fd records of the files kind (image 2.1):
//!
//! - `FD_FILE` (11): an fd on a file reopened by path at restart (a regular file, a folder, a
//!   device that is not a terminal), with its open file description's offset and the key that
//!   names the description across the computation: every fd of every process that shares one
//!   description (inherited over fork, dup'ed) carries the same `desc` (the lowest pid holding
//!   it at checkpoint, and that process's lowest fd of it), so `dmtcp_restart` opens each
//!   description once and puts it at all of them.
//! - `FD_PATH` (50): the path of the `FD_FILE` record just before it, in pieces of
//!   `PATH_PIECE` bytes (`path_len` says how many bytes in all, so `ceil(path_len /
//!   PATH_PIECE)` pieces follow, numbered from 0, each with the file record's fd). A path of any
//!   length up to `MAX_PATH` fits in the fixed-width fd table this way, without a
//!   variable-length section; the image reader checks that the pieces are complete and in order.
//! - `FD_PLACEHOLDER` (12): an fd of a kind no resource kind restores (a netlink socket, a
//!   deleted file, ...): after restart the fd number is held by a placeholder that fails every
//!   call. `what` names it for messages.
use super::{ImageError, Record, Text, FD_SIZE};
use crate::le::{get_i32, get_u32, get_u64, put_i32, put_u32, put_u64};

pub const FD_FILE: u32 = 11;
pub const FD_PLACEHOLDER: u32 = 12;
pub const FD_PATH: u32 = 50;

// FD_FILE body offsets.
pub const PATH_LEN: usize = 8; // u32 bytes of path in the FD_PATH records that follow
pub const WHAT: usize = 20; // u32 FILE_REGULAR, FILE_FOLDER, FILE_DEVICE
pub const DESC_PID: usize = 24; // i32 the description's key: lowest pid holding it
pub const DESC_FD: usize = 28; // i32 ... and that process's lowest fd of it
pub const OFFSET: usize = 32; // u64 the description's offset (lseek SEEK_CUR)
pub const DEV: usize = 40; // u64 st_dev (informational)
pub const INO: usize = 48; // u64 st_ino (informational)

// FD_PATH body offsets.
pub const PIECE: usize = 8; // u32 the piece's number, from 0
pub const PIECE_BYTES: usize = 20; // PATH_PIECE bytes of the path (the last piece NUL-padded)
/// Path bytes per FD_PATH record.
pub const PATH_PIECE: usize = FD_SIZE - PIECE_BYTES;
/// Longest path (PATH_MAX without its NUL).
pub const MAX_PATH: u32 = 4095;

// FD_PLACEHOLDER body offsets.
pub const MODE: usize = 20; // u32 st_mode at checkpoint (0: unknown)
pub const PLACEHOLDER_WHAT: usize = 24; // PLACEHOLDER_TEXT bytes: what the fd was, NUL-padded
pub const PLACEHOLDER_TEXT: usize = FD_SIZE - PLACEHOLDER_WHAT;

pub const FILE_REGULAR: u32 = 0;
pub const FILE_FOLDER: u32 = 1;
pub const FILE_DEVICE: u32 = 2;

/// What an `FD_FILE` record's file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileWhat {
    Regular,
    Folder,
    /// A character or block device that is not a terminal.
    Device,
}

impl FileWhat {
    pub fn as_u32(self) -> u32 {
        match self {
            FileWhat::Regular => FILE_REGULAR,
            FileWhat::Folder => FILE_FOLDER,
            FileWhat::Device => FILE_DEVICE,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileRecord {
    pub what: FileWhat,
    /// Bytes of the path, carried by the FD_PATH records that follow.
    pub path_len: u32,
    /// The description's key (see the module docs).
    pub desc_pid: i32,
    pub desc_fd: i32,
    pub offset: u64,
    pub dev: u64,
    pub ino: u64,
}

impl FileRecord {
    pub const KIND: u32 = FD_FILE;

    /// How many FD_PATH records follow this one.
    pub fn pieces(&self) -> u32 {
        self.path_len.div_ceil(PATH_PIECE as u32)
    }

    pub(crate) fn encode_body(&self, b: &mut [u8; FD_SIZE]) {
        put_u32(b, PATH_LEN, self.path_len);
        put_u32(b, WHAT, self.what.as_u32());
        put_i32(b, DESC_PID, self.desc_pid);
        put_i32(b, DESC_FD, self.desc_fd);
        put_u64(b, OFFSET, self.offset);
        put_u64(b, DEV, self.dev);
        put_u64(b, INO, self.ino);
    }

    pub(crate) fn decode_body(b: &[u8]) -> Result<FileRecord, ImageError> {
        let bad = |field, value: u64| ImageError::BadField { record: Record::Fd, field, value };
        let what = match get_u32(b, WHAT) {
            FILE_REGULAR => FileWhat::Regular,
            FILE_FOLDER => FileWhat::Folder,
            FILE_DEVICE => FileWhat::Device,
            v => return Err(bad("file type", v.into())),
        };
        let path_len = get_u32(b, PATH_LEN);
        if path_len == 0 || path_len > MAX_PATH {
            return Err(bad("path length", path_len.into()));
        }
        let offset = get_u64(b, OFFSET);
        if offset > i64::MAX as u64 {
            return Err(bad("file offset", offset));
        }
        Ok(FileRecord {
            what,
            path_len,
            desc_pid: get_i32(b, DESC_PID),
            desc_fd: get_i32(b, DESC_FD),
            offset,
            dev: get_u64(b, DEV),
            ino: get_u64(b, INO),
        })
    }
}

/// One piece of a path (`FD_PATH`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathPiece {
    pub index: u32,
    pub bytes: [u8; PATH_PIECE],
}

impl PathPiece {
    pub const KIND: u32 = FD_PATH;

    /// Piece number `index` of `path` (the bytes after the path's end are zero).
    pub fn of(path: &[u8], index: u32) -> PathPiece {
        let mut bytes = [0u8; PATH_PIECE];
        let start = (index as usize * PATH_PIECE).min(path.len());
        let end = (start + PATH_PIECE).min(path.len());
        bytes[..end - start].copy_from_slice(&path[start..end]);
        PathPiece { index, bytes }
    }

    pub(crate) fn encode_body(&self, b: &mut [u8; FD_SIZE]) {
        put_u32(b, PIECE, self.index);
        b[PIECE_BYTES..].copy_from_slice(&self.bytes);
    }

    pub(crate) fn decode_body(b: &[u8]) -> Result<PathPiece, ImageError> {
        let index = get_u32(b, PIECE);
        if index >= (MAX_PATH).div_ceil(PATH_PIECE as u32) {
            return Err(ImageError::BadField { record: Record::Fd, field: "path piece", value: index.into() });
        }
        let mut bytes = [0u8; PATH_PIECE];
        bytes.copy_from_slice(&b[PIECE_BYTES..FD_SIZE]);
        Ok(PathPiece { index, bytes })
    }
}

/// An fd no kind restores (`FD_PLACEHOLDER`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlaceholderRecord {
    /// st_mode at checkpoint (0: unknown).
    pub mode: u32,
    /// What the fd was (its /proc/self/fd link, or a description), truncated.
    pub what: Text<PLACEHOLDER_TEXT>,
}

impl PlaceholderRecord {
    pub const KIND: u32 = FD_PLACEHOLDER;

    pub(crate) fn encode_body(&self, b: &mut [u8; FD_SIZE]) {
        put_u32(b, MODE, self.mode);
        self.what.write(b, PLACEHOLDER_WHAT);
    }

    pub(crate) fn decode_body(b: &[u8]) -> Result<PlaceholderRecord, ImageError> {
        Ok(PlaceholderRecord { mode: get_u32(b, MODE), what: Text::read(b, PLACEHOLDER_WHAT) })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{FdBody, FdRecord};
    use super::*;

    fn file(path_len: u32) -> FdRecord {
        FdRecord {
            fd: 4,
            fd_flags: 0,
            status: 0o2001,
            body: FdBody::File(FileRecord {
                what: FileWhat::Regular,
                path_len,
                desc_pid: 10,
                desc_fd: 3,
                offset: 1234,
                dev: 0x801,
                ino: 99,
            }),
        }
    }

    #[test]
    fn file_record_round_trips_at_its_offsets() {
        let r = file(70);
        let mut b = [0x55u8; FD_SIZE];
        r.encode(&mut b);
        assert_eq!(FdRecord::decode(&b), Ok(r));
        assert_eq!(get_u32(&b, 4), FD_FILE);
        assert_eq!(get_u32(&b, PATH_LEN), 70);
        assert_eq!(get_i32(&b, DESC_PID), 10);
        assert_eq!(get_i32(&b, DESC_FD), 3);
        assert_eq!(get_u64(&b, OFFSET), 1234);
        assert_eq!(get_u64(&b, INO), 99);
        assert!(b[56..].iter().all(|&c| c == 0));
        let FdBody::File(f) = r.body else { unreachable!() };
        assert_eq!(f.pieces(), 2, "70 bytes in pieces of {PATH_PIECE}");
        assert_eq!(FileRecord { path_len: PATH_PIECE as u32, ..f }.pieces(), 1);
        assert_eq!(FileRecord { path_len: MAX_PATH, ..f }.pieces(), MAX_PATH.div_ceil(PATH_PIECE as u32));
    }

    #[test]
    fn file_record_refuses_bad_type_length_and_offset() {
        let mut b = [0u8; FD_SIZE];
        file(5).encode(&mut b);
        let mut t = b;
        put_u32(&mut t, WHAT, 3);
        assert_eq!(
            FdRecord::decode(&t),
            Err(ImageError::BadField { record: Record::Fd, field: "file type", value: 3 })
        );
        for len in [0, MAX_PATH + 1] {
            let mut l = b;
            put_u32(&mut l, PATH_LEN, len);
            assert_eq!(
                FdRecord::decode(&l),
                Err(ImageError::BadField { record: Record::Fd, field: "path length", value: len.into() })
            );
        }
        let mut o = b;
        put_u64(&mut o, OFFSET, 1 << 63);
        assert!(matches!(FdRecord::decode(&o), Err(ImageError::BadField { field: "file offset", .. })));
    }

    #[test]
    fn path_pieces_cover_a_path_and_round_trip() {
        let mut path = [0u8; 100];
        for (i, c) in path.iter_mut().enumerate() {
            *c = b'a' + (i % 26) as u8;
        }
        let mut back = [0u8; 3 * PATH_PIECE];
        for i in 0..3 {
            let p = PathPiece::of(&path, i);
            let r = FdRecord { fd: 4, fd_flags: 0, status: 0, body: FdBody::Path(p) };
            let mut b = [0u8; FD_SIZE];
            r.encode(&mut b);
            assert_eq!(FdRecord::decode(&b), Ok(r));
            assert_eq!(get_u32(&b, 4), FD_PATH);
            back[i as usize * PATH_PIECE..][..PATH_PIECE].copy_from_slice(&p.bytes);
        }
        assert_eq!(&back[..100], &path[..]);
        assert!(back[100..].iter().all(|&c| c == 0), "the last piece is NUL-padded");
        let mut b = [0u8; FD_SIZE];
        FdRecord { fd: 4, fd_flags: 0, status: 0, body: FdBody::Path(PathPiece::of(&path, 0)) }.encode(&mut b);
        put_u32(&mut b, PIECE, 1000);
        assert!(matches!(FdRecord::decode(&b), Err(ImageError::BadField { field: "path piece", .. })));
    }

    #[test]
    fn placeholder_round_trips_and_truncates_its_text() {
        let long = [b'x'; 100];
        let r = FdRecord {
            fd: 9,
            fd_flags: 1,
            status: 2,
            body: FdBody::Placeholder(PlaceholderRecord { mode: 0o140777, what: Text::new(&long) }),
        };
        let mut b = [0u8; FD_SIZE];
        r.encode(&mut b);
        assert_eq!(FdRecord::decode(&b), Ok(r));
        assert_eq!(get_u32(&b, 4), FD_PLACEHOLDER);
        let FdBody::Placeholder(p) = r.body else { unreachable!() };
        assert_eq!(p.what.as_bytes().len(), PLACEHOLDER_TEXT - 1);
    }
}
