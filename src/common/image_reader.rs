//! Checking checkpoint images (format in `dmtcp_proto::image`) before anything trusts them.
//!
//! `Validator` is a streaming checker fed with the image stream in pieces of any size: it checks
//! the header (`check_header`), walks the area and thread tables and every chunk header (each
//! chunk must name an existing area and stay inside it) up to the END chunk, then the trailer
//! (its length must equal the bytes before it, its checksum their `Checksum`). The checksum is
//! computed lazily over everything but the last 32 bytes seen so far, so the stream is read
//! once. `dmtcp write-image` runs it while it stores a stream; `dmtcp_restart` runs it over every
//! image (decompressing a zstd image into a memfd on the way, which then feeds the restorer)
//! before it creates any process. A future `image info` can reuse both. The module stands alone
//! (only `dmtcp_proto`, zstd and libc), so that the tests include it as it is.
use dmtcp_proto::image::{self, AreaRecord, Chunk, FdBody, FdRecord, Header, ImageError, ThreadRecord, Trailer};
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// Read size for images (large: images are big and read sequentially).
pub const BUF_SIZE: usize = 1 << 20;

/// Why an image is refused. The Display text is what users see after `<file>: `.
#[derive(Debug)]
pub enum Problem {
    NotAnImage(&'static str),
    Truncated(String),
    ChecksumMismatch,
    Version(u32),
    Arch(u32),
    Corrupt(String),
    Io(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotAnImage(why) => write!(f, "not a dmtcp checkpoint image ({why})"),
            Problem::Truncated(w) => write!(f, "truncated image ({w})"),
            Problem::ChecksumMismatch => write!(f, "checksum mismatch: the image is corrupt"),
            Problem::Version(v) => write!(f, "unsupported version: {}", ImageError::Version(*v)),
            Problem::Arch(a) => write!(f, "unknown architecture {a} in the image header"),
            Problem::Corrupt(w) => write!(f, "corrupt image ({w})"),
            Problem::Io(e) => write!(f, "{e}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Areas { left: u32 },
    Threads { left: u32 },
    Fds { left: u32 },
    ChunkHeader,
    ChunkData { left: u64 },
    Trailer,
    Done,
}

/// What a complete, valid stream held.
#[derive(Debug, Clone)]
pub struct Summary {
    pub header: Box<[u8; image::HEADER_SIZE]>,
    pub arch: u32,
    /// Bytes of the stream, trailer included.
    pub len: u64,
    pub chunks: u64,
    pub data_bytes: u64,
    /// Bytes the image's zero chunks (`Chunk::Zero`, delta images) say are zeros.
    pub zero_bytes: u64,
    /// The checksum in the trailer (what a delta built on this image names, `Chain`).
    pub checksum: u64,
    /// The fd table (pipe ends), version 2.
    pub fds: Vec<FdEntry>,
    /// The shared memory areas only the kernel held (`AREA_SHM`, version 2.1).
    pub shm: Vec<ShmArea>,
}

/// One `AREA_SHM` area of the image: the object (dev, inode), the range of it that was mapped
/// and its /proc/self/maps name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShmArea {
    pub dev: u64,
    pub inode: u64,
    pub offset: u64,
    pub len: u64,
    pub name: String,
}

/// One record of the image's fd table (`dmtcp_proto::image::FdRecord`), flattened; a file
/// record carries the path its FD_PATH records held (those are not entries of their own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdEntry {
    pub fd: i32,
    pub kind: u32,
    pub end: u32,
    pub pipe_size: u32,
    /// A pipe's old inode, or a memfd's.
    pub id: u64,
    /// The whole record.
    pub record: FdRecord,
    /// A file record's path (empty for the other kinds).
    pub path: Vec<u8>,
    /// A memfd's device (major << 32 | minor) and size; 0 for other kinds.
    pub dev: u64,
    pub size: u64,
    /// A regular file's saved contents (`--checkpoint-open-files`, image 2.5): its FD_FILE_DATA
    /// record and the bytes of its FD_FILE_BYTES records.
    pub contents: Option<SavedContents>,
}

/// The saved contents of an open file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedContents {
    pub mode: u32,
    /// Launched with `--allow-file-overwrite`.
    pub overwrite: bool,
    pub bytes: Vec<u8>,
}

/// Streaming image checker; see the module docs.
pub struct Validator {
    state: State,
    rec: Vec<u8>,
    header: Option<Box<[u8; image::HEADER_SIZE]>>,
    parsed: Option<Box<Header>>,
    arch: u32,
    threads: u32,
    areas: Vec<u64>,
    /// End of the last area read (areas come in address order).
    areas_end: u64,
    pos: u64,
    sum: image::Checksum,
    held: [u8; image::TRAILER_SIZE],
    held_len: usize,
    trailer: [u8; image::TRAILER_SIZE],
    chunks: u64,
    data_bytes: u64,
    zero_bytes: u64,
    fds: Vec<FdEntry>,
    /// Fd records read (path pieces included), for messages.
    fd_records: u32,
    /// Path bytes still to come in FD_PATH records for the last file record, and the number of
    /// the next piece.
    path_left: u32,
    next_piece: u32,
    /// Saved bytes still to come in FD_FILE_BYTES records for the last file record.
    data_left: u64,
    shm: Vec<ShmArea>,
}

impl Default for Validator {
    fn default() -> Self {
        Self::new()
    }
}

impl Validator {
    pub fn new() -> Validator {
        Validator {
            state: State::Header,
            rec: Vec::with_capacity(image::HEADER_SIZE),
            header: None,
            parsed: None,
            arch: 0,
            threads: 0,
            areas: Vec::new(),
            areas_end: 0,
            pos: 0,
            sum: image::Checksum::new(image::CHECKSUM_SEED),
            held: [0; image::TRAILER_SIZE],
            held_len: 0,
            trailer: [0; image::TRAILER_SIZE],
            chunks: 0,
            data_bytes: 0,
            zero_bytes: 0,
            fds: Vec::new(),
            fd_records: 0,
            path_left: 0,
            next_piece: 0,
            data_left: 0,
            shm: Vec::new(),
        }
    }

    /// Bytes seen so far.
    pub fn len(&self) -> u64 {
        self.pos
    }

    /// Whether nothing was fed yet.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// Feeds the next bytes of the stream. An error is final.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), Problem> {
        self.hash(data);
        self.pos += data.len() as u64;
        let mut d = data;
        while !d.is_empty() {
            d = self.step(d)?;
        }
        Ok(())
    }

    /// Hashes everything except the last TRAILER_SIZE bytes seen.
    fn hash(&mut self, data: &[u8]) {
        const T: usize = image::TRAILER_SIZE;
        if data.len() >= T {
            self.sum.update(&self.held[..self.held_len]);
            self.sum.update(&data[..data.len() - T]);
            self.held.copy_from_slice(&data[data.len() - T..]);
            self.held_len = T;
        } else {
            let total = self.held_len + data.len();
            if total > T {
                let out = total - T;
                self.sum.update(&self.held[..out]);
                self.held.copy_within(out..self.held_len, 0);
                self.held_len -= out;
            }
            self.held[self.held_len..self.held_len + data.len()].copy_from_slice(data);
            self.held_len += data.len();
        }
    }

    /// Accumulates a fixed-size record; returns the rest of `d` and whether the record is full.
    fn fill<'a>(&mut self, d: &'a [u8], size: usize) -> (&'a [u8], bool) {
        let n = (size - self.rec.len()).min(d.len());
        self.rec.extend_from_slice(&d[..n]);
        (&d[n..], self.rec.len() == size)
    }

    fn step<'a>(&mut self, d: &'a [u8]) -> Result<&'a [u8], Problem> {
        match self.state {
            State::Header => {
                let (rest, full) = self.fill(d, image::HEADER_SIZE);
                let n = self.rec.len().min(image::IMAGE_MAGIC.len());
                if self.rec[..n] != image::IMAGE_MAGIC[..n] {
                    return Err(not_image_reason(&self.rec));
                }
                if full {
                    let parsed = Header::decode(&self.rec).map_err(from_image_error)?;
                    self.arch = parsed.arch as u32;
                    let mut h = Box::new([0u8; image::HEADER_SIZE]);
                    h.copy_from_slice(&self.rec);
                    self.areas.reserve(parsed.num_areas as usize);
                    self.header = Some(h);
                    self.rec.clear();
                    self.state = if parsed.num_areas > 0 {
                        State::Areas { left: parsed.num_areas }
                    } else {
                        State::Threads { left: parsed.num_threads }
                    };
                    self.parsed = Some(Box::new(parsed));
                }
                Ok(rest)
            }
            State::Areas { left } => {
                let (rest, full) = self.fill(d, image::AREA_SIZE);
                if full {
                    let n = self.areas.len();
                    let a = AreaRecord::decode(&self.rec).map_err(|e| Problem::Corrupt(format!("area {n}: {e}")))?;
                    // The restorer maps the areas as listed: in address order, apart, and inside
                    // the architecture's user space (as /proc/self/maps lists them).
                    let limit = self.header().arch.user_limit();
                    if a.start < self.areas_end || a.end > limit {
                        return Err(Problem::Corrupt(format!(
                            "area {n} ({:#x}-{:#x}) overlaps the one before it or lies outside user space",
                            a.start, a.end
                        )));
                    }
                    self.areas_end = a.end;
                    self.areas.push(a.len());
                    if a.is_shm() {
                        if a.offset.checked_add(a.len()).is_none() {
                            return Err(Problem::Corrupt(format!(
                                "area {}: shared memory range past 2^64",
                                self.areas.len() - 1
                            )));
                        }
                        self.shm.push(ShmArea {
                            dev: a.dev,
                            inode: a.inode,
                            offset: a.offset,
                            len: a.len(),
                            name: String::from_utf8_lossy(a.name.as_bytes()).into_owned(),
                        });
                    }
                    self.rec.clear();
                    self.state = if left > 1 {
                        State::Areas { left: left - 1 }
                    } else {
                        State::Threads { left: self.header().num_threads }
                    };
                }
                Ok(rest)
            }
            State::Threads { left } => {
                let (rest, full) = self.fill(d, image::THREAD_SIZE);
                if full {
                    ThreadRecord::decode(&self.rec)
                        .map_err(|e| Problem::Corrupt(format!("thread {}: {e}", self.threads)))?;
                    self.threads += 1;
                    self.rec.clear();
                    self.state = match (left, self.header().num_fds) {
                        (2.., _) => State::Threads { left: left - 1 },
                        (_, 0) => State::ChunkHeader,
                        (_, k) => State::Fds { left: k },
                    };
                }
                Ok(rest)
            }
            State::Fds { left } => {
                let (rest, full) = self.fill(d, image::FD_SIZE);
                if full {
                    let n = self.fd_records;
                    let r = FdRecord::decode(&self.rec).map_err(|e| Problem::Corrupt(format!("fd record {n}: {e}")))?;
                    self.fd_record(&r).map_err(|e| Problem::Corrupt(format!("fd record {n}: {e}")))?;
                    self.fd_records += 1;
                    self.rec.clear();
                    self.state = if left > 1 {
                        State::Fds { left: left - 1 }
                    } else if self.path_left > 0 {
                        return Err(Problem::Corrupt(format!("fd record {n}: the fd table ends inside a path")));
                    } else if self.data_left > 0 {
                        return Err(Problem::Corrupt(format!(
                            "fd record {n}: the fd table ends inside a saved file's contents"
                        )));
                    } else {
                        State::ChunkHeader
                    };
                }
                Ok(rest)
            }
            State::ChunkHeader => {
                let (rest, full) = self.fill(d, image::CHUNK_SIZE);
                if full {
                    let c = Chunk::decode(&self.rec)
                        .map_err(|e| Problem::Corrupt(format!("chunk {}: {e}", self.chunks)))?;
                    self.rec.clear();
                    let (area, offset, len, zero) = match c {
                        Chunk::End => {
                            self.state = State::Trailer;
                            return Ok(rest);
                        }
                        Chunk::Data { area, offset, len } => (area, offset, len, false),
                        Chunk::Zero { area, offset, len } => (area, offset, len, true),
                    };
                    if zero && self.header().version < image::FormatVersion::new(2, 3) {
                        return Err(Problem::Corrupt(format!(
                            "chunk {}: a zero chunk in a {} image",
                            self.chunks,
                            self.header().version
                        )));
                    }
                    let Some(&size) = self.areas.get(area as usize) else {
                        return Err(Problem::Corrupt(format!(
                            "chunk {} names area {area}, the image has {}",
                            self.chunks,
                            self.areas.len()
                        )));
                    };
                    if !Chunk::fits(offset, len, size) {
                        return Err(Problem::Corrupt(format!(
                            "chunk {} ({len} bytes at offset {offset:#x}) overruns area {area} ({size:#x} bytes)",
                            self.chunks
                        )));
                    }
                    self.chunks += 1;
                    if zero {
                        self.zero_bytes += len;
                        return Ok(rest);
                    }
                    self.data_bytes += len;
                    if len > 0 {
                        self.state = State::ChunkData { left: len };
                    }
                }
                Ok(rest)
            }
            State::ChunkData { left } => {
                let n = left.min(d.len() as u64);
                self.state = if n == left { State::ChunkHeader } else { State::ChunkData { left: left - n } };
                Ok(&d[n as usize..])
            }
            State::Trailer => {
                let (rest, full) = self.fill(d, image::TRAILER_SIZE);
                if full {
                    self.trailer.copy_from_slice(&self.rec);
                    self.rec.clear();
                    self.state = State::Done;
                }
                Ok(rest)
            }
            State::Done => Err(Problem::Corrupt("data after the trailer".into())),
        }
    }

    /// Adds one fd record: a path piece goes into the file record before it, which it must
    /// follow in order, with its fd, and without NUL bytes in the path or garbage after it.
    fn fd_record(&mut self, r: &FdRecord) -> Result<(), String> {
        if let FdBody::Path(p) = &r.body {
            let Some(file) = self.fds.last_mut().filter(|_| self.path_left > 0) else {
                return Err("a path piece without its file record".into());
            };
            if file.fd != r.fd || p.index != self.next_piece {
                return Err(format!(
                    "path piece {} of fd {} out of place (fd {} wants piece {})",
                    p.index, r.fd, file.fd, self.next_piece
                ));
            }
            let n = (self.path_left as usize).min(image::PATH_PIECE);
            if p.bytes[..n].contains(&0) || p.bytes[n..].iter().any(|&c| c != 0) {
                return Err(format!("bad bytes in the path of fd {}", r.fd));
            }
            file.path.extend_from_slice(&p.bytes[..n]);
            self.path_left -= n as u32;
            self.next_piece += 1;
            return Ok(());
        }
        if self.path_left > 0 {
            let fd = self.fds.last().map_or(-1, |f| f.fd);
            return Err(format!("the path of fd {fd} is cut short"));
        }
        match &r.body {
            FdBody::FileData(d) => {
                let Some(file) = self
                    .fds
                    .last_mut()
                    .filter(|f| f.fd == r.fd && f.contents.is_none() && self.data_left == 0)
                    .filter(|f| matches!(f.record.body, FdBody::File(x) if x.what == image::FileWhat::Regular))
                else {
                    return Err(format!("saved contents of fd {} without its regular file's record", r.fd));
                };
                file.contents = Some(SavedContents {
                    mode: d.mode,
                    overwrite: d.overwrite(),
                    bytes: Vec::with_capacity(d.size as usize),
                });
                self.data_left = d.size;
                return Ok(());
            }
            FdBody::FileBytes(p) => {
                let Some((file, saved)) = self
                    .fds
                    .last_mut()
                    .filter(|_| self.data_left > 0)
                    .and_then(|f| f.contents.as_mut().map(|c| (f.fd, c)))
                else {
                    return Err(format!("a piece of saved contents of fd {} without its record", r.fd));
                };
                let want = (saved.bytes.len() / image::DATA_PIECE) as u32;
                if file != r.fd || p.index != want {
                    return Err(format!(
                        "saved contents piece {} of fd {} out of place (fd {file} wants piece {want})",
                        p.index, r.fd
                    ));
                }
                let n = (self.data_left as usize).min(image::DATA_PIECE);
                if p.bytes[n..].iter().any(|&c| c != 0) {
                    return Err(format!("bad bytes after the saved contents of fd {}", r.fd));
                }
                saved.bytes.extend_from_slice(&p.bytes[..n]);
                self.data_left -= n as u64;
                return Ok(());
            }
            _ => {}
        }
        if self.data_left > 0 {
            let fd = self.fds.last().map_or(-1, |f| f.fd);
            return Err(format!("the saved contents of fd {fd} are cut short"));
        }
        if let FdBody::File(f) = &r.body {
            self.path_left = f.path_len;
            self.next_piece = 0;
        }
        self.fds.push(FdEntry::from(r));
        Ok(())
    }

    fn header(&self) -> &Header {
        self.parsed.as_ref().expect("header read")
    }

    /// Ends the stream: it must be complete and its trailer must match.
    pub fn finish(self) -> Result<Summary, Problem> {
        self.finish_inner(false).map(|(s, _)| s)
    }

    /// Like `finish` for a stream fresh from the preload library, which may leave the trailer's
    /// checksum 0 for the writer to fill in (memory that changes while it streams would make a
    /// checksum computed in the process disagree, and it would lengthen the pause). A nonzero
    /// checksum must still match. Returns the checksum of the bytes before the trailer.
    pub fn finish_stream(self) -> Result<(Summary, u64), Problem> {
        self.finish_inner(true)
    }

    fn finish_inner(self, zero_ok: bool) -> Result<(Summary, u64), Problem> {
        let where_ = match self.state {
            State::Header if self.pos == 0 => return Err(Problem::NotAnImage("empty file")),
            State::Header if self.rec.len() < image::IMAGE_MAGIC.len() => return Err(not_image_reason(&self.rec)),
            State::Header => "it ends inside the header",
            State::Areas { .. } => "it ends inside the area table",
            State::Threads { .. } => "it ends inside the thread table",
            State::Fds { .. } => "it ends inside the fd table",
            State::ChunkHeader | State::ChunkData { .. } => "it ends inside the memory data, before the END chunk",
            State::Trailer => "it ends before the trailer",
            State::Done => "",
        };
        if self.state != State::Done {
            return Err(Problem::Truncated(format!("{where_}, after {} bytes", self.pos)));
        }
        let Trailer { len, checksum: sum } = Trailer::decode(&self.trailer).map_err(from_image_error)?;
        let before = self.pos - image::TRAILER_SIZE as u64;
        if len != before {
            return Err(Problem::Corrupt(format!("the trailer says {len} bytes, the image has {before}")));
        }
        let computed = self.sum.finish();
        if sum != computed && !(zero_ok && sum == 0) {
            return Err(Problem::ChecksumMismatch);
        }
        let summary = Summary {
            header: self.header.expect("header read"),
            arch: self.arch,
            len: self.pos,
            chunks: self.chunks,
            data_bytes: self.data_bytes,
            zero_bytes: self.zero_bytes,
            checksum: computed,
            fds: self.fds,
            shm: self.shm,
        };
        Ok((summary, computed))
    }
}

fn not_image_reason(start: &[u8]) -> Problem {
    if start.len() >= 2 && start[..2] == [0x1f, 0x8b] {
        Problem::NotAnImage("gzip data; dmtcp images are raw or zstd-compressed")
    } else if start.is_empty() {
        Problem::NotAnImage("empty file")
    } else if start.iter().all(|&c| c == b'\n' || c == b'\t' || c == b'\r' || (0x20..0x7f).contains(&c)) {
        Problem::NotAnImage("text, bad magic")
    } else {
        Problem::NotAnImage("bad magic")
    }
}

fn from_image_error(e: ImageError) -> Problem {
    match e {
        ImageError::NotAnImage => Problem::NotAnImage("bad magic"),
        ImageError::Version(v) => Problem::Version(v),
        ImageError::Arch(a) => Problem::Arch(a),
        ImageError::HeaderChecksum => Problem::Corrupt("header checksum mismatch".into()),
        e => Problem::Corrupt(e.to_string()),
    }
}

impl From<&FdRecord> for FdEntry {
    fn from(r: &FdRecord) -> FdEntry {
        let pipe = r.pipe();
        // A pty end: `end` is PTY_MASTER or PTY_SLAVE, `id` its old number.
        if let Some(p) = r.pty() {
            return FdEntry {
                fd: r.fd,
                kind: r.kind(),
                end: p.end.as_u32(),
                pipe_size: 0,
                id: p.index.into(),
                record: *r,
                path: Vec::new(),
                dev: 0,
                size: 0,
                contents: None,
            };
        }
        FdEntry {
            fd: r.fd,
            kind: r.kind(),
            end: pipe.map_or(0, |p| p.end.as_u32()),
            pipe_size: pipe.map_or(0, |p| p.pipe_size),
            id: pipe.map_or(0, |p| p.id) | r.memfd().map_or(0, |m| m.inode),
            record: *r,
            path: Vec::new(),
            dev: r.memfd().map_or(0, |m| m.dev),
            size: r.memfd().map_or(0, |m| m.size),
            contents: None,
        }
    }
}

/// A checked image, with a file descriptor from which its raw stream can be read from offset 0:
/// the file itself, or a memfd holding the decompressed stream.
#[derive(Debug)]
pub struct CheckedImage {
    pub path: PathBuf,
    pub summary: Summary,
    pub compressed: bool,
    pub stream: OwnedFd,
}

impl CheckedImage {
    /// The typed header. A `CheckedImage` comes from `check_file`, which decoded it already.
    pub fn header(&self) -> Header {
        Header::decode(&self.summary.header[..]).expect("the header of a checked image decodes")
    }
    pub fn pid(&self) -> i32 {
        self.header().pid
    }
    pub fn parent_pid(&self) -> i32 {
        self.header().parent_pid
    }
    pub fn pgid(&self) -> i32 {
        self.header().pgid
    }
    pub fn sid(&self) -> i32 {
        self.header().sid
    }
    pub fn vpid(&self) -> i32 {
        self.header().vpid
    }
    pub fn pidns(&self) -> u64 {
        self.header().pidns
    }
    pub fn is_root(&self) -> bool {
        self.header().is_root
    }
    pub fn comp_id(&self) -> u64 {
        self.header().comp_id
    }
    pub fn generation(&self) -> u32 {
        self.header().generation
    }
    pub fn num_peers(&self) -> u32 {
        self.header().num_peers
    }
    /// The pipe ends this process held (fd table records of kind FD_PIPE).
    pub fn pipe_ends(&self) -> impl Iterator<Item = &FdEntry> {
        self.summary.fds.iter().filter(|f| f.kind == image::FD_PIPE)
    }
    pub fn progname(&self) -> String {
        String::from_utf8_lossy(self.header().progname.as_bytes()).into_owned()
    }
}

/// Opens and checks one image file (see the module docs). A zstd image is decompressed into a
/// memfd; a raw one is read through and rewound.
pub fn check_file(path: &Path) -> Result<CheckedImage, Problem> {
    let mut file = File::open(path).map_err(|e| Problem::Io(format!("cannot open: {e}")))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(Problem::NotAnImage("a folder"));
    }
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match file.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Problem::Io(format!("read error: {e}"))),
        }
    }
    file.seek(SeekFrom::Start(0)).map_err(|e| Problem::Io(format!("seek: {e}")))?;
    let mut v = Validator::new();
    if got == 4 && magic == image::ZSTD_MAGIC {
        let memfd = memfd("dmtcp-image").map_err(|e| Problem::Io(format!("memfd_create: {e}")))?;
        let mut out = File::from(memfd);
        let mut dec = zstd::stream::read::Decoder::new(file).map_err(|e| Problem::Io(format!("zstd: {e}")))?;
        let mut buf = vec![0u8; BUF_SIZE];
        loop {
            let n = match dec.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(Problem::Truncated(format!(
                        "the compressed data ends early, after {} bytes of image",
                        v.len()
                    )))
                }
                Err(e) => return Err(Problem::Corrupt(format!("bad compressed data: {e}"))),
            };
            v.feed(&buf[..n])?;
            out.write_all(&buf[..n])
                .map_err(|e| Problem::Io(format!("cannot hold the decompressed image in memory: {e}")))?;
        }
        let summary = v.finish()?;
        out.seek(SeekFrom::Start(0)).map_err(|e| Problem::Io(format!("seek: {e}")))?;
        Ok(CheckedImage { path: path.to_path_buf(), summary, compressed: true, stream: out.into() })
    } else {
        let mut buf = vec![0u8; BUF_SIZE];
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Problem::Io(format!("read error: {e}"))),
            };
            v.feed(&buf[..n])?;
        }
        let summary = v.finish()?;
        file.seek(SeekFrom::Start(0)).map_err(|e| Problem::Io(format!("seek: {e}")))?;
        Ok(CheckedImage { path: path.to_path_buf(), summary, compressed: false, stream: file.into() })
    }
}

/// A close-on-exec memfd.
pub fn memfd(name: &str) -> io::Result<OwnedFd> {
    use nix::sys::memfd::{memfd_create, MFdFlags};
    memfd_create(name, MFdFlags::MFD_CLOEXEC).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dmtcp_proto::image::{hdr, Arch, PipeEnd, PipeRecord, AREA_SIZE, CHUNK_SIZE, FD_SIZE, HEADER_SIZE};
    use dmtcp_proto::image::{THREAD_SIZE, TRAILER_SIZE};

    /// A valid stream built with the typed encoders: header, `areas` areas of two pages, one
    /// main thread, one fd record, one one-page chunk in the last area, END, trailer.
    fn stream_with(areas: u32, edit: impl FnOnce(&mut Header)) -> Vec<u8> {
        let f = FdRecord {
            fd: 5,
            fd_flags: 0,
            status: 1,
            body: FdBody::Pipe(PipeRecord { end: PipeEnd::Write, pipe_size: 4096, id: 77, pending: 0 }),
        };
        stream_with_fds(areas, &[f], edit)
    }

    fn stream_with_fds(areas: u32, fds: &[FdRecord], edit: impl FnOnce(&mut Header)) -> Vec<u8> {
        let mut h = Header::new(Arch::X86_64);
        h.num_areas = areas;
        h.num_threads = 1;
        h.num_fds = fds.len() as u32;
        h.pid = 42;
        h.num_peers = 1;
        h.progname.set(b"sample");
        edit(&mut h);
        let mut b = [0u8; HEADER_SIZE];
        h.encode(&mut b);
        let mut s = b.to_vec();
        for i in 0..u64::from(areas) {
            let mut a = AreaRecord::EMPTY;
            a.start = 0x10000 + i * 0x10000;
            a.end = a.start + 0x2000;
            a.prot = 3;
            let mut b = [0u8; AREA_SIZE];
            a.encode(&mut b);
            s.extend(b);
        }
        let mut t = ThreadRecord::EMPTY;
        t.tid = 42;
        t.flags = image::THREAD_MAIN;
        let mut b = [0u8; THREAD_SIZE];
        t.encode(&mut b);
        s.extend(b);
        for f in fds {
            let mut b = [0u8; FD_SIZE];
            f.encode(&mut b);
            s.extend(b);
        }
        let mut c = [0u8; CHUNK_SIZE];
        Chunk::Data { area: areas - 1, offset: 0x1000, len: 0x1000 }.encode(&mut c);
        s.extend(c);
        s.extend((0..0x1000).map(|i| i as u8));
        Chunk::End.encode(&mut c);
        s.extend(c);
        let mut t = [0u8; TRAILER_SIZE];
        Trailer { len: s.len() as u64, checksum: image::checksum(image::CHECKSUM_SEED, &s) }.encode(&mut t);
        s.extend(t);
        s
    }

    fn sample() -> Vec<u8> {
        stream_with(1, |_| {})
    }

    /// Offsets of the sections of `sample()`.
    const AREAS: usize = HEADER_SIZE;
    const THREADS: usize = AREAS + AREA_SIZE;
    const FDS: usize = THREADS + THREAD_SIZE;
    const CHUNK: usize = FDS + FD_SIZE;
    const DATA: usize = CHUNK + CHUNK_SIZE;

    fn run(bytes: &[u8], piece: usize) -> Result<Summary, Problem> {
        let mut v = Validator::new();
        for p in bytes.chunks(piece.max(1)) {
            v.feed(p)?;
        }
        v.finish()
    }

    fn corrupt(r: Result<Summary, Problem>) -> String {
        match r {
            Err(Problem::Corrupt(w)) => w,
            r => panic!("expected Corrupt, got {r:?}"),
        }
    }

    #[test]
    fn accepts_valid_in_any_pieces() {
        let s = sample();
        for piece in [1, 7, 31, 32, 33, 4096, 1 << 20] {
            let sum = run(&s, piece).unwrap();
            assert_eq!(sum.len, s.len() as u64);
            assert_eq!(sum.chunks, 1);
            assert_eq!(sum.data_bytes, 4096);
            assert_eq!(sum.arch, image::ARCH_X86_64);
            let f = &sum.fds[0];
            assert_eq!(sum.fds.len(), 1);
            assert_eq!((f.fd, f.kind, f.end, f.pipe_size, f.id), (5, image::FD_PIPE, image::FD_WRITE, 4096, 77));
            assert!(f.path.is_empty());
        }
    }

    /// A 2.1 stream whose area is shared memory only the kernel held: the summary lists it
    /// (the restart makes one memfd per object from these), and a 2.0 stream lists none.
    #[test]
    fn lists_the_shared_memory_areas_of_a_2_1_image() {
        let mut s = sample();
        assert!(run(&s, 4096).unwrap().shm.is_empty());
        let mut a = AreaRecord::decode(&s[AREAS..AREAS + AREA_SIZE]).unwrap();
        a.flags = image::AREA_SHARED | image::AREA_SHM;
        a.offset = 0x3000;
        a.dev = 5;
        a.inode = 99;
        a.vm = image::area::AREA_VM_KNOWN | image::area::AREA_VM_MAYWRITE;
        a.name = image::Text::new(b"/dev/zero (deleted)");
        let mut b = [0u8; AREA_SIZE];
        a.encode(&mut b);
        s[AREAS..AREAS + AREA_SIZE].copy_from_slice(&b);
        let n = s.len() - TRAILER_SIZE;
        let mut t = [0u8; TRAILER_SIZE];
        Trailer { len: n as u64, checksum: image::checksum(image::CHECKSUM_SEED, &s[..n]) }.encode(&mut t);
        s[n..].copy_from_slice(&t);
        let sum = run(&s, 777).unwrap();
        assert_eq!(
            sum.shm,
            vec![ShmArea { dev: 5, inode: 99, offset: 0x3000, len: 0x2000, name: "/dev/zero (deleted)".into() }]
        );
        // AREA_SHM without AREA_SHARED is refused by the record's own check.
        a.flags = image::AREA_SHM;
        a.encode(&mut b);
        s[AREAS..AREAS + AREA_SIZE].copy_from_slice(&b);
        assert!(corrupt(run(&s, 4096)).starts_with("area 0"));
    }

    fn file_with_path(fd: i32, path: &[u8]) -> Vec<FdRecord> {
        let file = image::FileRecord {
            what: image::FileWhat::Regular,
            path_len: path.len() as u32,
            desc_pid: 10,
            desc_fd: fd,
            offset: 7,
            dev: 1,
            ino: 2,
        };
        let mut v = vec![FdRecord { fd, fd_flags: 0, status: 1, body: FdBody::File(file) }];
        for i in 0..file.pieces() {
            v.push(FdRecord { fd, fd_flags: 0, status: 0, body: FdBody::Path(image::PathPiece::of(path, i)) });
        }
        v
    }

    #[test]
    fn a_long_path_comes_back_whole_from_its_pieces() {
        let long: Vec<u8> = std::iter::once(b'/').chain((0..300).map(|i| b'a' + (i % 26) as u8)).collect();
        let mut fds = file_with_path(3, &long);
        fds.extend(file_with_path(4, b"/tmp/x"));
        let sum = run(&stream_with_fds(1, &fds, |_| {}), 97).unwrap();
        assert_eq!(sum.fds.len(), 2, "path pieces are not entries of their own");
        assert_eq!(sum.fds[0].path, long);
        assert_eq!(sum.fds[1].path, b"/tmp/x");
        assert_eq!(sum.fds[1].kind, image::FD_FILE);
    }

    /// `file_with_path` followed by saved contents `bytes` (mode 0o640, overwrite allowed).
    fn file_with_contents(fd: i32, path: &[u8], bytes: &[u8]) -> Vec<FdRecord> {
        let mut v = file_with_path(fd, path);
        let data = image::FileDataRecord { mode: 0o640, flags: image::DATA_OVERWRITE, size: bytes.len() as u64 };
        v.push(FdRecord { fd, fd_flags: 0, status: 0, body: FdBody::FileData(data) });
        for (i, c) in bytes.chunks(image::DATA_PIECE).enumerate() {
            let mut b = [0u8; image::DATA_PIECE];
            b[..c.len()].copy_from_slice(c);
            v.push(FdRecord {
                fd,
                fd_flags: 0,
                status: 0,
                body: FdBody::FileBytes(image::FileBytes { index: i as u32, bytes: b }),
            });
        }
        v
    }

    #[test]
    fn saved_file_contents_come_back_whole_from_their_pieces() {
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let mut fds = file_with_contents(3, b"/tmp/log", &bytes);
        fds.extend(file_with_contents(4, b"/tmp/empty", b""));
        fds.extend(file_with_path(5, b"/tmp/x"));
        let sum = run(&stream_with_fds(1, &fds, |_| {}), 97).unwrap();
        assert_eq!(sum.fds.len(), 3, "contents are not entries of their own");
        let c = sum.fds[0].contents.as_ref().unwrap();
        assert_eq!((c.mode, c.overwrite, &c.bytes), (0o640, true, &bytes));
        assert_eq!(sum.fds[1].contents.as_ref().unwrap().bytes, b"");
        assert_eq!(sum.fds[2].contents, None);
    }

    #[test]
    fn refuses_saved_contents_cut_short_out_of_order_or_alone() {
        let whole = file_with_contents(3, b"/a", &[7u8; 100]); // file, path, data, 3 pieces
        assert_eq!(whole.len(), 6);
        let in_stream = |fds: &[FdRecord]| corrupt(run(&stream_with_fds(1, fds, |_| {}), 4096));
        assert!(in_stream(&whole[..5]).contains("ends inside a saved file's contents"));
        let mut other = whole[..5].to_vec();
        other.extend(file_with_path(4, b"/x"));
        assert!(in_stream(&other).contains("the saved contents of fd 3 are cut short"));
        let swapped = [whole[0], whole[1], whole[2], whole[4], whole[3], whole[5]];
        assert!(in_stream(&swapped).contains("out of place"));
        let mut wrong_fd = whole.clone();
        wrong_fd[4].fd = 9;
        assert!(in_stream(&wrong_fd).contains("out of place"));
        // Data with no file before it, after another kind, or twice.
        assert!(in_stream(&whole[2..]).contains("without its regular file's record"));
        let twice = [whole[0], whole[1], whole[2], whole[3], whole[4], whole[5], whole[2]];
        assert!(in_stream(&twice).contains("without its regular file's record"));
        assert!(in_stream(&[whole[0], whole[1], whole[3]]).contains("without its record"));
        // Garbage after the last byte.
        let mut tail = whole.clone();
        let FdBody::FileBytes(mut p) = tail[5].body else { unreachable!() };
        p.bytes[image::DATA_PIECE - 1] = 1;
        tail[5].body = FdBody::FileBytes(p);
        assert!(in_stream(&tail).contains("bad bytes after the saved contents"));
    }

    #[test]
    fn refuses_path_pieces_missing_out_of_order_or_alone() {
        let path = vec![b'p'; 100];
        let whole = file_with_path(3, &path);
        assert_eq!(whole.len(), 4);
        // The last piece missing, at the end of the table and before another record.
        let cut = &whole[..3];
        assert!(corrupt(run(&stream_with_fds(1, cut, |_| {}), 4096)).contains("ends inside a path"));
        let mut other = cut.to_vec();
        other.extend(file_with_path(4, b"/x"));
        assert!(corrupt(run(&stream_with_fds(1, &other, |_| {}), 4096)).contains("the path of fd 3 is cut short"));
        // Two pieces swapped.
        let swapped = [whole[0], whole[2], whole[1], whole[3]];
        assert!(corrupt(run(&stream_with_fds(1, &swapped, |_| {}), 4096)).contains("out of place"));
        // A piece under another fd, and a piece with no file record before it.
        let mut wrong_fd = whole.clone();
        wrong_fd[1].fd = 9;
        assert!(corrupt(run(&stream_with_fds(1, &wrong_fd, |_| {}), 4096)).contains("out of place"));
        assert!(corrupt(run(&stream_with_fds(1, &whole[1..2], |_| {}), 4096)).contains("without its file record"));
        // A NUL inside the path.
        let mut nul = path.clone();
        nul[5] = 0;
        let mut with_nul = file_with_path(3, &path);
        with_nul[1] = FdRecord { body: FdBody::Path(image::PathPiece::of(&nul, 0)), ..with_nul[1] };
        assert!(corrupt(run(&stream_with_fds(1, &with_nul, |_| {}), 4096)).contains("bad bytes in the path"));
    }

    #[test]
    fn refuses_bad_streams() {
        let s = sample();
        assert!(matches!(run(&s[..s.len() - 1], 4096), Err(Problem::Truncated(_))));
        assert!(matches!(run(&s[..5000], 4096), Err(Problem::Truncated(_))));
        assert!(matches!(run(b"hello world\n", 4096), Err(Problem::NotAnImage("text, bad magic"))));
        assert!(matches!(run(b"", 4096), Err(Problem::NotAnImage("empty file"))));
        assert!(matches!(run(&[0x1f, 0x8b, 8, 0], 4096), Err(Problem::NotAnImage(w)) if w.starts_with("gzip")));
        let mut b = s.clone();
        b.push(0);
        assert_eq!(corrupt(run(&b, 4096)), "data after the trailer");
    }

    #[test]
    fn refuses_bad_magic_and_newer_version() {
        let mut b = sample();
        b[1] = b'X';
        assert!(matches!(run(&b, 4096), Err(Problem::NotAnImage("bad magic"))));
        let cur = image::FormatVersion::CURRENT;
        let next_minor = image::FormatVersion::new(cur.major, cur.minor + 1);
        for v in [image::FormatVersion::new(cur.major + 1, 0), next_minor] {
            let mut b = sample();
            dmtcp_proto::le::put_u32(&mut b, hdr::VERSION, v.to_u32());
            image::seal_header(&mut b[..HEADER_SIZE]);
            assert!(matches!(run(&b, 4096), Err(Problem::Version(x)) if x == v.to_u32()), "{v}");
            assert!(run(&b, 4096).unwrap_err().to_string().starts_with("unsupported version"));
        }
    }

    /// 2.1 keeps the clocks at checkpoint in the header: they come out of a checked stream, a
    /// 2.0 image (zeros there) reads as "none recorded", and a half-recorded or impossible
    /// clock value is refused with the field named.
    #[test]
    fn clocks_at_checkpoint_are_read_and_checked() {
        let clocks = image::Clocks { monotonic_ns: 5_000_000_000, boottime_ns: 6_000_000_000 };
        let b = stream_with(1, |h| h.clocks = Some(clocks));
        let s = run(&b, 4096).unwrap();
        assert_eq!(Header::decode(&s.header[..]).unwrap().clocks, Some(clocks));
        let mut old = sample();
        dmtcp_proto::le::put_u32(&mut old, hdr::VERSION, image::FormatVersion::new(2, 0).to_u32());
        image::seal_header(&mut old[..HEADER_SIZE]);
        assert_eq!(Header::decode(&old[..HEADER_SIZE]).unwrap().clocks, None);
        for (off, v, what) in [
            (hdr::CLOCK_BOOTTIME, 0, "boottime clock"),
            (hdr::CLOCK_MONOTONIC, u64::MAX, "monotonic clock"),
            (hdr::CLOCK_BOOTTIME, 1 << 63, "boottime clock"),
        ] {
            let mut bad = b.clone();
            dmtcp_proto::le::put_u64(&mut bad, off, v);
            image::seal_header(&mut bad[..HEADER_SIZE]);
            let w = corrupt(run(&bad, 4096));
            assert!(w.contains(what), "{w}");
        }
    }

    #[test]
    fn refuses_every_table_count_at_its_cap_plus_one() {
        for (off, max) in
            [(hdr::NUM_AREAS, image::MAX_AREAS), (hdr::NUM_THREADS, image::MAX_THREADS), (hdr::NUM_FDS, image::MAX_FDS)]
        {
            let mut b = sample();
            dmtcp_proto::le::put_u32(&mut b, off, max + 1);
            image::seal_header(&mut b[..HEADER_SIZE]);
            let w = corrupt(run(&b, 4096));
            assert!(w.contains("impossible counts") && w.contains(&(max + 1).to_string()), "{w}");
        }
    }

    /// A table at its cap is accepted by the header and read up to its end.
    #[test]
    fn a_table_at_its_cap_is_read() {
        let s = stream_with(image::MAX_AREAS, |_| {});
        let sum = run(&s, 1 << 20).unwrap();
        assert_eq!(sum.chunks, 1);
    }

    #[test]
    fn refuses_a_truncated_chunk() {
        let s = sample();
        for cut in [CHUNK + 10, DATA + 50, DATA + 100 + 5] {
            match run(&s[..cut], 4096) {
                Err(Problem::Truncated(w)) => assert!(w.contains("memory data"), "{cut}: {w}"),
                r => panic!("{cut}: {r:?}"),
            }
        }
        // A chunk that claims more than its area holds.
        let mut b = s.clone();
        dmtcp_proto::le::put_u64(&mut b, CHUNK + image::chunk::LEN, 0x2000);
        assert!(corrupt(run(&b, 4096)).contains("overruns area 0"));
        let mut b = s.clone();
        dmtcp_proto::le::put_u32(&mut b, CHUNK + image::chunk::AREA, 1);
        assert!(corrupt(run(&b, 4096)).contains("names area 1, the image has 1"));
    }

    /// One flipped bit in each section is refused, whichever check sees it first.
    #[test]
    fn refuses_a_flipped_bit_in_each_section() {
        let s = sample();
        let trailer = s.len() - TRAILER_SIZE;
        for (at, section) in [
            (100, "header"),
            (3000, "header"),
            (AREAS + 70, "area table"),
            (THREADS + 20, "thread table"),
            (FDS + 30, "fd table"),
            (CHUNK + 9, "chunk header"),
            (DATA + 40, "data"),
            (trailer + 2, "trailer magic"),
            (trailer + 9, "trailer length"),
            (trailer + 20, "trailer checksum"),
        ] {
            let mut b = s.clone();
            b[at] ^= 0x10;
            match run(&b, 4096) {
                Err(Problem::ChecksumMismatch) | Err(Problem::Corrupt(_)) | Err(Problem::Truncated(_)) => {}
                r => panic!("{section} (byte {at}): {r:?}"),
            }
        }
        // Those whose record decode cannot tell are caught by the checksum.
        for at in [AREAS + 70, THREADS + 20, FDS + 30, DATA + 40, trailer + 20] {
            let mut b = s.clone();
            b[at] ^= 0x10;
            assert!(matches!(run(&b, 4096), Err(Problem::ChecksumMismatch)), "byte {at}");
        }
        let mut b = s.clone();
        b[100] ^= 0x10;
        assert_eq!(corrupt(run(&b, 4096)), "header checksum mismatch");
    }

    #[test]
    fn refuses_bad_records_by_name() {
        let s = sample();
        let mut b = s.clone();
        dmtcp_proto::le::put_u64(&mut b, AREAS + image::area::END, 0x10800);
        assert!(corrupt(run(&b, 4096)).starts_with("area 0: area record has an impossible end"));
        let mut b = s.clone();
        dmtcp_proto::le::put_u32(&mut b, THREADS + image::thread::FLAGS, 8);
        assert!(corrupt(run(&b, 4096)).starts_with("thread 0: thread record has an impossible flags"));
        let mut b = s.clone();
        dmtcp_proto::le::put_u32(&mut b, FDS + image::fdrec::KIND, 99);
        assert_eq!(corrupt(run(&b, 4096)), "fd record 0: fd record of unknown kind 99");
    }

    /// Areas the restorer would map over each other or past user space (found by the image
    /// mutation test, tests/mutations.rs).
    #[test]
    fn refuses_overlapping_unordered_and_out_of_range_areas() {
        let s = stream_with(2, |_| {});
        assert!(run(&s, 4096).is_ok());
        let second = AREAS + AREA_SIZE;
        for (start, end) in [(0x10000, 0x12000), (0x11000, 0x22000), (0x8000, 0x9000), (1 << 47, (1 << 47) + 0x1000)] {
            let mut b = s.clone();
            dmtcp_proto::le::put_u64(&mut b, second + image::area::START, start);
            dmtcp_proto::le::put_u64(&mut b, second + image::area::END, end);
            let w = corrupt(run(&b, 4096));
            assert!(w.starts_with("area 1 (") && w.contains("overlaps the one before it or lies outside"), "{w}");
        }
    }

    #[test]
    fn finish_stream_accepts_a_zero_checksum_only() {
        let mut s = sample();
        let t = s.len() - TRAILER_SIZE;
        let len = t as u64;
        let want = image::checksum(image::CHECKSUM_SEED, &s[..t]);
        s[t..].copy_from_slice(&image::trailer(len, 0));
        let mut v = Validator::new();
        v.feed(&s).unwrap();
        let (_, sum) = v.finish_stream().unwrap();
        assert_eq!(sum, want);
        assert!(matches!(run(&s, 4096), Err(Problem::ChecksumMismatch)), "finish wants the real checksum");
        s[t..].copy_from_slice(&image::trailer(len, want ^ 1));
        let mut v = Validator::new();
        v.feed(&s).unwrap();
        assert!(matches!(v.finish_stream(), Err(Problem::ChecksumMismatch)));
    }

    #[test]
    fn checked_image_reads_the_typed_header() {
        let s = stream_with(1, |h| {
            h.pid = 1234;
            h.parent_pid = 1;
            h.is_root = true;
            h.vpid = 40001;
            h.comp_id = 99;
        });
        let path = std::env::temp_dir().join(format!("dmtcp-image-reader-{}.dmtcp", std::process::id()));
        std::fs::write(&path, &s).unwrap();
        let img = check_file(&path);
        let _ = std::fs::remove_file(&path);
        let img = img.unwrap();
        assert_eq!((img.pid(), img.parent_pid(), img.is_root(), img.vpid(), img.comp_id()), (1234, 1, true, 40001, 99));
        assert_eq!(img.progname(), "sample");
        assert_eq!(img.header().num_fds, 1);
        assert_eq!(img.pipe_ends().count(), 1);
        assert!(!img.compressed);
    }
}
