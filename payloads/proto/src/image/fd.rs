//! The fd table: one 64-byte record per file descriptor of a resource kind the image carries.
//! A record is a common part (fd number, kind tag, F_GETFD and F_GETFL flags) and a body owned
//! by its kind (bytes 8..12 and 20..64). A new resource kind adds one body type (its own file,
//! like `pipe.rs`), one `FdBody` variant and one kind tag.
use super::error::need;
use super::events::{EpollRecord, EventfdRecord, InotifyRecord, SignalfdRecord, TimerfdRecord};
use super::file_data::{FileBytes, FileDataRecord};
use super::{FileRecord, ImageError, PathPiece, PipeRecord, PlaceholderRecord, Record, FD_SIZE};
use super::{InetSocketRecord, MemfdRecord, MqueueRecord, PtyRecord, SysvRecord, UnixSocketRecord};
use crate::le::{get_i32, get_u32, put_i32, put_u32};

// Common field offsets (the layout `FdRecord` encodes; direct use outside this module is for the
// preload library's writer until it moves to `FdRecord::encode`).
pub const FD: usize = 0; // i32 the fd number
pub const KIND: usize = 4; // u32 FD_PIPE, ...
pub const FD_FLAGS: usize = 12; // u32 F_GETFD (FD_CLOEXEC)
pub const STATUS: usize = 16; // u32 F_GETFL (access mode, O_NONBLOCK, ...)

/// A bit of the common FD_FLAGS word beside FD_CLOEXEC (since 2.4): the object was made by
/// `dmtcp_restart`, once per open file description shared across processes, and is at the fd
/// already when the process restores (the kind's record names the description's key).
pub const FD_SHARED: u32 = 16;

/// Kind tags.
pub const FD_PIPE: u32 = 1;
pub use super::file::{FD_FILE, FD_PATH, FD_PLACEHOLDER};
pub use super::file_data::{FD_FILE_BYTES, FD_FILE_DATA};
/// The event kinds (`events.rs`); 30-39 are kept for their extra records.
pub const FD_EVENTFD: u32 = 4;
pub const FD_SIGNALFD: u32 = 5;
pub const FD_TIMERFD: u32 = 6;
pub const FD_EPOLL: u32 = 7;
pub const FD_INOTIFY: u32 = 8;
/// A memfd (`memfd.rs`).
pub const FD_MEMFD: u32 = 13;
/// A UNIX-domain socket (`socket_unix.rs`).
pub const FD_UNIX_SOCKET: u32 = 2;
/// A TCP or UDP socket over IPv4 or IPv6 (`socket_inet.rs`).
pub const FD_INET_SOCKET: u32 = 3;
/// One end of a pty pair made inside the computation (`tty.rs`).
pub const FD_PTY: u32 = 9;
/// Reserved for the user's terminal (no record today: see `tty.rs`).
pub const FD_TERMINAL: u32 = 10;
/// A POSIX message queue descriptor (`mqueue.rs`).
pub const FD_MQUEUE: u32 = 14;
/// A System V IPC object of the computation, which is no fd (`sysv.rs`).
pub const FD_SYSV: u32 = 15;

/// The per-kind part of an fd record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdBody {
    Pipe(PipeRecord),
    /// A file reopened by path (`file.rs`); its path follows in `Path` records.
    File(FileRecord),
    /// A piece of the path of the `File` record before it.
    Path(PathPiece),
    /// The saved contents of the `File` record before it (`file_data.rs`), after its path.
    FileData(FileDataRecord),
    /// A piece of those contents.
    FileBytes(FileBytes),
    /// An fd no kind restores: a placeholder holds its number after restart.
    Placeholder(PlaceholderRecord),
    Eventfd(EventfdRecord),
    Signalfd(SignalfdRecord),
    Timerfd(TimerfdRecord),
    Epoll(EpollRecord),
    Inotify(InotifyRecord),
    Memfd(MemfdRecord),
    UnixSocket(UnixSocketRecord),
    InetSocket(InetSocketRecord),
    Pty(PtyRecord),
    Sysv(SysvRecord),
    Mqueue(MqueueRecord),
}

impl FdBody {
    pub fn kind(&self) -> u32 {
        match self {
            FdBody::Pipe(_) => PipeRecord::KIND,
            FdBody::File(_) => FileRecord::KIND,
            FdBody::Path(_) => PathPiece::KIND,
            FdBody::FileData(_) => FileDataRecord::KIND,
            FdBody::FileBytes(_) => FileBytes::KIND,
            FdBody::Placeholder(_) => PlaceholderRecord::KIND,
            FdBody::Eventfd(_) => EventfdRecord::KIND,
            FdBody::Signalfd(_) => SignalfdRecord::KIND,
            FdBody::Timerfd(_) => TimerfdRecord::KIND,
            FdBody::Epoll(_) => EpollRecord::KIND,
            FdBody::Inotify(_) => InotifyRecord::KIND,
            FdBody::Memfd(_) => MemfdRecord::KIND,
            FdBody::UnixSocket(_) => UnixSocketRecord::KIND,
            FdBody::InetSocket(_) => InetSocketRecord::KIND,
            FdBody::Pty(_) => PtyRecord::KIND,
            FdBody::Sysv(_) => SysvRecord::KIND,
            FdBody::Mqueue(_) => MqueueRecord::KIND,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdRecord {
    pub fd: i32,
    pub fd_flags: u32,
    pub status: u32,
    pub body: FdBody,
}

impl FdRecord {
    pub fn kind(&self) -> u32 {
        self.body.kind()
    }
    /// The pipe end, for a record of kind FD_PIPE.
    pub fn pipe(&self) -> Option<&PipeRecord> {
        match &self.body {
            FdBody::Pipe(p) => Some(p),
            _ => None,
        }
    }
    /// The memfd, for a record of kind FD_MEMFD.
    pub fn memfd(&self) -> Option<&MemfdRecord> {
        match &self.body {
            FdBody::Memfd(m) => Some(m),
            _ => None,
        }
    }
    /// The UNIX socket, for a record of kind FD_UNIX_SOCKET.
    pub fn unix_socket(&self) -> Option<&UnixSocketRecord> {
        match &self.body {
            FdBody::UnixSocket(s) => Some(s),
            _ => None,
        }
    }
    /// The TCP or UDP socket, for a record of kind FD_INET_SOCKET.
    pub fn inet_socket(&self) -> Option<&InetSocketRecord> {
        match &self.body {
            FdBody::InetSocket(s) => Some(s),
            _ => None,
        }
    }
    /// The pty end, for a record of kind FD_PTY.
    pub fn pty(&self) -> Option<&PtyRecord> {
        match &self.body {
            FdBody::Pty(p) => Some(p),
            _ => None,
        }
    }

    pub fn encode(&self, b: &mut [u8; FD_SIZE]) {
        b.fill(0);
        put_i32(b, FD, self.fd);
        put_u32(b, KIND, self.kind());
        put_u32(b, FD_FLAGS, self.fd_flags);
        put_u32(b, STATUS, self.status);
        match &self.body {
            FdBody::Pipe(p) => p.encode_body(b),
            FdBody::File(f) => f.encode_body(b),
            FdBody::Path(p) => p.encode_body(b),
            FdBody::FileData(d) => d.encode_body(b),
            FdBody::FileBytes(d) => d.encode_body(b),
            FdBody::Placeholder(p) => p.encode_body(b),
            FdBody::Eventfd(e) => e.encode_body(b),
            FdBody::Signalfd(s) => s.encode_body(b),
            FdBody::Timerfd(t) => t.encode_body(b),
            FdBody::Epoll(e) => e.encode_body(b),
            FdBody::Inotify(i) => i.encode_body(b),
            FdBody::Memfd(m) => m.encode_body(b),
            FdBody::UnixSocket(s) => s.encode_body(b),
            FdBody::InetSocket(s) => s.encode_body(b),
            FdBody::Pty(p) => p.encode_body(b),
            FdBody::Sysv(s) => s.encode_body(b),
            FdBody::Mqueue(m) => m.encode_body(b),
        }
    }

    /// Reads and checks an fd record: a nonnegative fd, a known kind, and the body's own checks.
    pub fn decode(b: &[u8]) -> Result<FdRecord, ImageError> {
        need(b, FD_SIZE, Record::Fd)?;
        let fd = get_i32(b, FD);
        if fd < 0 {
            return Err(ImageError::BadField { record: Record::Fd, field: "fd", value: fd as u32 as u64 });
        }
        let body = match get_u32(b, KIND) {
            PipeRecord::KIND => FdBody::Pipe(PipeRecord::decode_body(b)?),
            FileRecord::KIND => FdBody::File(FileRecord::decode_body(b)?),
            PathPiece::KIND => FdBody::Path(PathPiece::decode_body(b)?),
            FileDataRecord::KIND => FdBody::FileData(FileDataRecord::decode_body(b)?),
            FileBytes::KIND => FdBody::FileBytes(FileBytes::decode_body(b)?),
            PlaceholderRecord::KIND => FdBody::Placeholder(PlaceholderRecord::decode_body(b)?),
            EventfdRecord::KIND => FdBody::Eventfd(EventfdRecord::decode_body(b)?),
            SignalfdRecord::KIND => FdBody::Signalfd(SignalfdRecord::decode_body(b)?),
            TimerfdRecord::KIND => FdBody::Timerfd(TimerfdRecord::decode_body(b)?),
            EpollRecord::KIND => FdBody::Epoll(EpollRecord::decode_body(b)?),
            InotifyRecord::KIND => FdBody::Inotify(InotifyRecord::decode_body(b)?),
            MemfdRecord::KIND => FdBody::Memfd(MemfdRecord::decode_body(b)?),
            UnixSocketRecord::KIND => FdBody::UnixSocket(UnixSocketRecord::decode_body(b)?),
            InetSocketRecord::KIND => FdBody::InetSocket(InetSocketRecord::decode_body(b)?),
            PtyRecord::KIND => FdBody::Pty(PtyRecord::decode_body(b)?),
            SysvRecord::KIND => FdBody::Sysv(SysvRecord::decode_body(b)?),
            MqueueRecord::KIND => FdBody::Mqueue(MqueueRecord::decode_body(b)?),
            k => return Err(ImageError::FdKind(k)),
        };
        Ok(FdRecord { fd, fd_flags: get_u32(b, FD_FLAGS), status: get_u32(b, STATUS), body })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{PipeEnd, PipeRecord};
    use super::*;
    use crate::le::get_u64;

    fn sample(end: PipeEnd) -> FdRecord {
        FdRecord {
            fd: 7,
            fd_flags: 1,
            status: 0o4001,
            body: FdBody::Pipe(PipeRecord { end, pipe_size: 65536, id: 0xabcdef, pending: 12 }),
        }
    }

    #[test]
    fn fd_record_round_trips_at_the_version_2_offsets() {
        for end in [PipeEnd::Read, PipeEnd::Write] {
            let r = sample(end);
            let mut b = [0x55u8; FD_SIZE];
            r.encode(&mut b);
            assert_eq!(FdRecord::decode(&b), Ok(r));
            assert_eq!(get_i32(&b, 0), 7);
            assert_eq!(get_u32(&b, 4), FD_PIPE);
            assert_eq!(get_u32(&b, 8), end.as_u32());
            assert_eq!(get_u32(&b, 12), 1);
            assert_eq!(get_u32(&b, 16), 0o4001);
            assert_eq!(get_u32(&b, 20), 65536);
            assert_eq!(get_u64(&b, 24), 0xabcdef);
            assert_eq!(get_u64(&b, 32), 12);
            assert!(b[40..].iter().all(|&c| c == 0));
            assert_eq!(r.pipe().map(|p| p.end), Some(end));
        }
    }

    #[test]
    fn fd_record_refuses_unknown_kind_end_and_fd() {
        let mut b = [0u8; FD_SIZE];
        sample(PipeEnd::Read).encode(&mut b);
        let mut k = b;
        put_u32(&mut k, KIND, 99);
        assert_eq!(FdRecord::decode(&k), Err(ImageError::FdKind(99)));
        let mut e = b;
        put_u32(&mut e, super::super::pipe::END, 2);
        assert_eq!(FdRecord::decode(&e), Err(ImageError::BadField { record: Record::Fd, field: "pipe end", value: 2 }));
        let mut f = b;
        put_i32(&mut f, FD, -1);
        assert!(matches!(FdRecord::decode(&f), Err(ImageError::BadField { field: "fd", .. })));
        assert_eq!(FdRecord::decode(&b[..63]), Err(ImageError::Short { record: Record::Fd, len: 63 }));
    }
}
