//! The saved contents of an open regular file (image 2.5, `--checkpoint-open-files`):
//!
//! - `FD_FILE_DATA` (51): follows the FD_PATH pieces of the `FD_FILE` record whose file it
//!   holds (same fd): how many bytes are saved, the file's permission bits, and whether the
//!   computation was launched with `--allow-file-overwrite`.
//! - `FD_FILE_BYTES` (52): the bytes, `DATA_PIECE` per record, numbered from 0 (`size`
//!   says how many in all, so `ceil(size / DATA_PIECE)` pieces follow, each with the file
//!   record's fd; the last one zero-padded). They live in the fd table, as paths do, so the
//!   restorer, which never reads that table, is unchanged, and `dmtcp_restart` has every file
//!   before any process exists.
//!
//! A file is saved once per process, by the fd that is its description's key; what is stored
//! is bounded (`MAX_SAVED_FILE` per file, `MAX_SAVED_PROCESS` per process: the fd table's cap,
//! `MAX_FDS` records, must hold them): a bigger file is not saved (the process warns) and is
//! opened again as it is at restart.
use super::{ImageError, Record, FD_SIZE};
use crate::le::{get_u32, get_u64, put_u32, put_u64};

pub const FD_FILE_DATA: u32 = 51;
pub const FD_FILE_BYTES: u32 = 52;

// FD_FILE_DATA body offsets.
pub const MODE: usize = 8; // u32 st_mode & 0o7777 at checkpoint
pub const FLAGS: usize = 20; // u32 DATA_OVERWRITE
pub const SIZE: usize = 24; // u64 bytes saved (the file's size at checkpoint)

/// The computation was launched with `--allow-file-overwrite`
/// (DMTCP_ALLOW_OVERWRITE_WITH_CKPTED_FILES): the saved contents replace a file that changed.
pub const DATA_OVERWRITE: u32 = 1;

// FD_FILE_BYTES body offsets.
pub const INDEX: usize = 8; // u32 the piece's number, from 0
pub const BYTES: usize = 20; // DATA_PIECE bytes
/// File bytes per FD_FILE_BYTES record.
pub const DATA_PIECE: usize = FD_SIZE - BYTES;

/// Largest file saved (1 MiB).
pub const MAX_SAVED_FILE: u64 = 1 << 20;
/// Most bytes saved per process (2 MiB; about 48k records of the fd table's 64k).
pub const MAX_SAVED_PROCESS: u64 = 2 << 20;

/// How many FD_FILE_BYTES records hold `size` bytes.
pub const fn data_pieces(size: u64) -> u64 {
    size.div_ceil(DATA_PIECE as u64)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileDataRecord {
    /// Permission bits (st_mode & 0o7777).
    pub mode: u32,
    /// `DATA_OVERWRITE` or 0.
    pub flags: u32,
    pub size: u64,
}

impl FileDataRecord {
    pub const KIND: u32 = FD_FILE_DATA;

    /// How many FD_FILE_BYTES records follow.
    pub fn pieces(&self) -> u64 {
        data_pieces(self.size)
    }

    pub fn overwrite(&self) -> bool {
        self.flags & DATA_OVERWRITE != 0
    }

    pub(crate) fn encode_body(&self, b: &mut [u8; FD_SIZE]) {
        put_u32(b, MODE, self.mode);
        put_u32(b, FLAGS, self.flags);
        put_u64(b, SIZE, self.size);
    }

    pub(crate) fn decode_body(b: &[u8]) -> Result<FileDataRecord, ImageError> {
        let bad = |field, value: u64| ImageError::BadField { record: Record::Fd, field, value };
        let r = FileDataRecord { mode: get_u32(b, MODE), flags: get_u32(b, FLAGS), size: get_u64(b, SIZE) };
        if r.mode & !0o7777 != 0 {
            return Err(bad("saved file mode", r.mode.into()));
        }
        if r.flags & !DATA_OVERWRITE != 0 {
            return Err(bad("saved file flags", r.flags.into()));
        }
        if r.size > MAX_SAVED_FILE {
            return Err(bad("saved file size", r.size));
        }
        Ok(r)
    }
}

/// One piece of a saved file's bytes (`FD_FILE_BYTES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileBytes {
    pub index: u32,
    pub bytes: [u8; DATA_PIECE],
}

impl FileBytes {
    pub const KIND: u32 = FD_FILE_BYTES;

    pub(crate) fn encode_body(&self, b: &mut [u8; FD_SIZE]) {
        put_u32(b, INDEX, self.index);
        b[BYTES..].copy_from_slice(&self.bytes);
    }

    pub(crate) fn decode_body(b: &[u8]) -> Result<FileBytes, ImageError> {
        let index = get_u32(b, INDEX);
        if u64::from(index) >= data_pieces(MAX_SAVED_FILE) {
            return Err(ImageError::BadField { record: Record::Fd, field: "saved file piece", value: index.into() });
        }
        let mut bytes = [0u8; DATA_PIECE];
        bytes.copy_from_slice(&b[BYTES..FD_SIZE]);
        Ok(FileBytes { index, bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{FdBody, FdRecord, MAX_FDS};
    use super::*;

    #[test]
    fn file_data_record_round_trips_at_its_offsets() {
        let r = FdRecord {
            fd: 5,
            fd_flags: 0,
            status: 0,
            body: FdBody::FileData(FileDataRecord { mode: 0o640, flags: DATA_OVERWRITE, size: 100 }),
        };
        let mut b = [0x55u8; FD_SIZE];
        r.encode(&mut b);
        assert_eq!(FdRecord::decode(&b), Ok(r));
        assert_eq!(get_u32(&b, 4), FD_FILE_DATA);
        assert_eq!(get_u32(&b, MODE), 0o640);
        assert_eq!(get_u32(&b, FLAGS), DATA_OVERWRITE);
        assert_eq!(get_u64(&b, SIZE), 100);
        assert!(b[32..].iter().all(|&c| c == 0));
        let FdBody::FileData(d) = r.body else { unreachable!() };
        assert!(d.overwrite());
        assert_eq!(d.pieces(), 3, "100 bytes in pieces of {DATA_PIECE}");
        assert_eq!(FileDataRecord { size: 0, ..d }.pieces(), 0);
        assert_eq!(FileDataRecord { size: DATA_PIECE as u64, ..d }.pieces(), 1);
    }

    #[test]
    fn file_data_record_refuses_bad_mode_flags_and_size() {
        let mut b = [0u8; FD_SIZE];
        FdRecord {
            fd: 5,
            fd_flags: 0,
            status: 0,
            body: FdBody::FileData(FileDataRecord { mode: 0o600, flags: 0, size: 1 }),
        }
        .encode(&mut b);
        for (off, v, field) in [(MODE, 0o100600u64, "saved file mode"), (FLAGS, 2, "saved file flags")] {
            let mut t = b;
            put_u32(&mut t, off, v as u32);
            assert_eq!(FdRecord::decode(&t), Err(ImageError::BadField { record: Record::Fd, field, value: v }));
        }
        let mut s = b;
        put_u64(&mut s, SIZE, MAX_SAVED_FILE + 1);
        assert_eq!(
            FdRecord::decode(&s),
            Err(ImageError::BadField { record: Record::Fd, field: "saved file size", value: MAX_SAVED_FILE + 1 })
        );
        put_u64(&mut s, SIZE, MAX_SAVED_FILE);
        assert!(FdRecord::decode(&s).is_ok(), "the bound itself is stored");
    }

    #[test]
    fn file_bytes_round_trip_and_refuse_a_piece_beyond_the_bound() {
        let mut bytes = [0u8; DATA_PIECE];
        for (i, c) in bytes.iter_mut().enumerate() {
            *c = i as u8 ^ 0xa5;
        }
        let r = FdRecord { fd: 5, fd_flags: 0, status: 0, body: FdBody::FileBytes(FileBytes { index: 7, bytes }) };
        let mut b = [0u8; FD_SIZE];
        r.encode(&mut b);
        assert_eq!(FdRecord::decode(&b), Ok(r));
        assert_eq!(get_u32(&b, 4), FD_FILE_BYTES);
        assert_eq!(&b[BYTES..], &bytes[..]);
        put_u32(&mut b, INDEX, data_pieces(MAX_SAVED_FILE) as u32);
        assert!(matches!(FdRecord::decode(&b), Err(ImageError::BadField { field: "saved file piece", .. })));
    }

    #[test]
    fn the_bounds_fit_the_fd_table() {
        const {
            assert!(MAX_SAVED_FILE <= MAX_SAVED_PROCESS);
            // Every saved byte of a process, plus one data record per file, leaves most of
            // the table's records to the fds themselves.
            assert!(data_pieces(MAX_SAVED_PROCESS) < MAX_FDS as u64 * 3 / 4);
        }
    }
}
