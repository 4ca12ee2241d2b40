//! The body of an fd record of kind `FD_PIPE`: one pipe end the process held at checkpoint
//! time, so that `dmtcp_restart` can recreate each pipe once (pipes are named by their old
//! inode, `id`) and put its ends at the same fd numbers in every process that had them. The
//! bytes that were in flight are not here: the process that drained them keeps them in its
//! memory and writes them back itself after the restart.
use super::{ImageError, Record, FD_SIZE};
use crate::le::{get_u32, get_u64, put_u32, put_u64};

// Body field offsets within the 64-byte fd record (the common part is in `fd`).
pub const END: usize = 8; // u32 FD_READ or FD_WRITE
pub const PIPE_SIZE: usize = 20; // u32 F_GETPIPE_SZ (0 = unknown)
pub const ID: usize = 24; // u64 the pipe's inode at checkpoint time
pub const PENDING: usize = 32; // u64 bytes this process drained from it (informational)

pub const FD_READ: u32 = 0;
pub const FD_WRITE: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipeEnd {
    Read,
    Write,
}

impl PipeEnd {
    pub fn as_u32(self) -> u32 {
        match self {
            PipeEnd::Read => FD_READ,
            PipeEnd::Write => FD_WRITE,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipeRecord {
    pub end: PipeEnd,
    pub pipe_size: u32,
    pub id: u64,
    pub pending: u64,
}

impl PipeRecord {
    /// The kind tag of this body.
    pub const KIND: u32 = super::FD_PIPE;

    pub(crate) fn encode_body(&self, b: &mut [u8; FD_SIZE]) {
        put_u32(b, END, self.end.as_u32());
        put_u32(b, PIPE_SIZE, self.pipe_size);
        put_u64(b, ID, self.id);
        put_u64(b, PENDING, self.pending);
    }

    pub(crate) fn decode_body(b: &[u8]) -> Result<PipeRecord, ImageError> {
        let end = match get_u32(b, END) {
            FD_READ => PipeEnd::Read,
            FD_WRITE => PipeEnd::Write,
            v => return Err(ImageError::BadField { record: Record::Fd, field: "pipe end", value: v.into() }),
        };
        Ok(PipeRecord { end, pipe_size: get_u32(b, PIPE_SIZE), id: get_u64(b, ID), pending: get_u64(b, PENDING) })
    }
}
