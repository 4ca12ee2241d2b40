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
use dmtcp_proto::image::{self, hdr, ImageError};
use dmtcp_proto::le::{get_i32, get_u32, get_u64};
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{FromRawFd, OwnedFd};
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
    Skip { left: u64 },
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
    /// The fd table (pipe ends), version 2.
    pub fds: Vec<FdEntry>,
}

/// One record of the image's fd table (`dmtcp_proto::image::fdrec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdEntry {
    pub fd: i32,
    pub kind: u32,
    pub end: u32,
    pub pipe_size: u32,
    pub id: u64,
}

/// Streaming image checker; see the module docs.
pub struct Validator {
    state: State,
    rec: Vec<u8>,
    header: Option<Box<[u8; image::HEADER_SIZE]>>,
    arch: u32,
    areas: Vec<u64>,
    pos: u64,
    sum: image::Checksum,
    held: [u8; image::TRAILER_SIZE],
    held_len: usize,
    trailer: [u8; image::TRAILER_SIZE],
    chunks: u64,
    data_bytes: u64,
    fds: Vec<FdEntry>,
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
            arch: 0,
            areas: Vec::new(),
            pos: 0,
            sum: image::Checksum::new(image::CHECKSUM_SEED),
            held: [0; image::TRAILER_SIZE],
            held_len: 0,
            trailer: [0; image::TRAILER_SIZE],
            chunks: 0,
            data_bytes: 0,
            fds: Vec::new(),
        }
    }

    /// Bytes seen so far.
    pub fn len(&self) -> u64 {
        self.pos
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
                    self.arch = image::check_header(&self.rec).map_err(from_image_error)?;
                    let mut h = Box::new([0u8; image::HEADER_SIZE]);
                    h.copy_from_slice(&self.rec);
                    let areas = get_u32(&h[..], hdr::NUM_AREAS);
                    self.areas.reserve(areas as usize);
                    self.header = Some(h);
                    self.rec.clear();
                    self.state = if areas > 0 { State::Areas { left: areas } } else { self.after_areas() };
                }
                Ok(rest)
            }
            State::Areas { left } => {
                let (rest, full) = self.fill(d, image::AREA_SIZE);
                if full {
                    let start = get_u64(&self.rec, image::area::START);
                    let end = get_u64(&self.rec, image::area::END);
                    if end < start {
                        return Err(Problem::Corrupt(format!(
                            "area {} ends at {end:#x} before it starts at {start:#x}",
                            self.areas.len()
                        )));
                    }
                    self.areas.push(end - start);
                    self.rec.clear();
                    self.state = if left > 1 { State::Areas { left: left - 1 } } else { self.after_areas() };
                }
                Ok(rest)
            }
            State::Skip { left } => {
                let n = left.min(d.len() as u64);
                self.state = if n < left {
                    State::Skip { left: left - n }
                } else {
                    match get_u32(&self.header.as_ref().expect("header read")[..], hdr::NUM_FDS) {
                        0 => State::ChunkHeader,
                        k => State::Fds { left: k },
                    }
                };
                Ok(&d[n as usize..])
            }
            State::Fds { left } => {
                let (rest, full) = self.fill(d, image::FD_SIZE);
                if full {
                    use image::fdrec;
                    self.fds.push(FdEntry {
                        fd: get_i32(&self.rec, fdrec::FD),
                        kind: get_u32(&self.rec, fdrec::KIND),
                        end: get_u32(&self.rec, fdrec::END),
                        pipe_size: get_u32(&self.rec, fdrec::PIPE_SIZE),
                        id: get_u64(&self.rec, fdrec::ID),
                    });
                    self.rec.clear();
                    self.state = if left > 1 { State::Fds { left: left - 1 } } else { State::ChunkHeader };
                }
                Ok(rest)
            }
            State::ChunkHeader => {
                let (rest, full) = self.fill(d, image::CHUNK_SIZE);
                if full {
                    let area = get_u32(&self.rec, image::chunk::AREA);
                    let offset = get_u64(&self.rec, image::chunk::OFFSET);
                    let len = get_u64(&self.rec, image::chunk::LEN);
                    self.rec.clear();
                    if area == image::END_CHUNK {
                        self.state = State::Trailer;
                        return Ok(rest);
                    }
                    let Some(&size) = self.areas.get(area as usize) else {
                        return Err(Problem::Corrupt(format!(
                            "chunk {} names area {area}, the image has {}",
                            self.chunks,
                            self.areas.len()
                        )));
                    };
                    if offset.checked_add(len).is_none_or(|e| e > size) {
                        return Err(Problem::Corrupt(format!(
                            "chunk {} ({len} bytes at offset {offset:#x}) overruns area {area} ({size:#x} bytes)",
                            self.chunks
                        )));
                    }
                    self.chunks += 1;
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

    fn after_areas(&self) -> State {
        let threads = u64::from(get_u32(&self.header.as_ref().expect("header read")[..], hdr::NUM_THREADS));
        State::Skip { left: threads * image::THREAD_SIZE as u64 }
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
            State::Skip { .. } => "it ends inside the thread table",
            State::Fds { .. } => "it ends inside the fd table",
            State::ChunkHeader | State::ChunkData { .. } => "it ends inside the memory data, before the END chunk",
            State::Trailer => "it ends before the trailer",
            State::Done => "",
        };
        if self.state != State::Done {
            return Err(Problem::Truncated(format!("{where_}, after {} bytes", self.pos)));
        }
        let (len, sum) =
            image::parse_trailer(&self.trailer).ok_or_else(|| Problem::Corrupt("bad trailer magic".into()))?;
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
            fds: self.fds,
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
        ImageError::BadCounts => Problem::Corrupt("impossible counts in the header".into()),
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
    fn h(&self) -> &[u8] {
        &self.summary.header[..]
    }
    pub fn pid(&self) -> i32 {
        get_i32(self.h(), hdr::PID)
    }
    pub fn parent_pid(&self) -> i32 {
        get_i32(self.h(), hdr::PARENT_PID)
    }
    pub fn pgid(&self) -> i32 {
        get_i32(self.h(), hdr::PGID)
    }
    pub fn sid(&self) -> i32 {
        get_i32(self.h(), hdr::SID)
    }
    pub fn vpid(&self) -> i32 {
        get_i32(self.h(), hdr::VPID)
    }
    pub fn pidns(&self) -> u64 {
        get_u64(self.h(), hdr::PIDNS)
    }
    pub fn is_root(&self) -> bool {
        get_u32(self.h(), hdr::IS_ROOT) == 1
    }
    pub fn comp_id(&self) -> u64 {
        get_u64(self.h(), hdr::COMP_ID)
    }
    pub fn generation(&self) -> u32 {
        get_u32(self.h(), hdr::GENERATION)
    }
    pub fn num_peers(&self) -> u32 {
        get_u32(self.h(), hdr::NUM_PEERS)
    }
    /// The pipe ends this process held (fd table records of kind FD_PIPE).
    pub fn pipe_ends(&self) -> impl Iterator<Item = &FdEntry> {
        self.summary.fds.iter().filter(|f| f.kind == image::FD_PIPE)
    }
    pub fn progname(&self) -> String {
        String::from_utf8_lossy(dmtcp_proto::le::get_str(self.h(), hdr::PROGNAME, hdr::PROGNAME_LEN)).into_owned()
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
    let name = std::ffi::CString::new(name).map_err(io::Error::other)?;
    // SAFETY: memfd_create with a NUL-terminated name; the fd is ours.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dmtcp_proto::le::{put_u32, put_u64};

    fn sample() -> Vec<u8> {
        let mut h = vec![0u8; image::HEADER_SIZE];
        h[..8].copy_from_slice(&image::IMAGE_MAGIC);
        put_u32(&mut h, hdr::VERSION, image::IMAGE_VERSION);
        put_u32(&mut h, hdr::ARCH, image::ARCH_X86_64);
        put_u32(&mut h, hdr::HEADER_SIZE, image::HEADER_SIZE as u32);
        put_u32(&mut h, hdr::NUM_AREAS, 1);
        put_u32(&mut h, hdr::NUM_THREADS, 1);
        image::seal_header(&mut h);
        let mut s = h;
        let mut a = vec![0u8; image::AREA_SIZE];
        put_u64(&mut a, image::area::START, 0x10000);
        put_u64(&mut a, image::area::END, 0x12000);
        s.extend(a);
        s.extend(vec![0u8; image::THREAD_SIZE]);
        let mut c = vec![0u8; image::CHUNK_SIZE];
        put_u64(&mut c, image::chunk::OFFSET, 0x1000);
        put_u64(&mut c, image::chunk::LEN, 100);
        s.extend(c);
        s.extend((0..100u8).collect::<Vec<_>>());
        let mut e = vec![0u8; image::CHUNK_SIZE];
        put_u32(&mut e, image::chunk::AREA, image::END_CHUNK);
        s.extend(e);
        let t = image::trailer(s.len() as u64, image::checksum(image::CHECKSUM_SEED, &s));
        s.extend(t);
        s
    }

    fn run(bytes: &[u8], piece: usize) -> Result<Summary, Problem> {
        let mut v = Validator::new();
        for p in bytes.chunks(piece.max(1)) {
            v.feed(p)?;
        }
        v.finish()
    }

    #[test]
    fn accepts_valid_in_any_pieces() {
        let s = sample();
        for piece in [1, 7, 31, 32, 33, 4096, 1 << 20] {
            let sum = run(&s, piece).unwrap();
            assert_eq!(sum.len, s.len() as u64);
            assert_eq!(sum.chunks, 1);
        }
    }

    #[test]
    fn refuses_bad_streams() {
        let s = sample();
        assert!(matches!(run(&s[..s.len() - 1], 4096), Err(Problem::Truncated(_))));
        assert!(matches!(run(&s[..5000], 4096), Err(Problem::Truncated(_))));
        let mut b = s.clone();
        b[image::HEADER_SIZE + image::AREA_SIZE + image::THREAD_SIZE + 40] ^= 1;
        assert!(matches!(run(&b, 4096), Err(Problem::ChecksumMismatch)));
        assert!(matches!(run(b"hello world\n", 4096), Err(Problem::NotAnImage(_))));
        assert!(matches!(run(b"", 4096), Err(Problem::NotAnImage(_))));
        let mut b = s.clone();
        b.push(0);
        assert!(matches!(run(&b, 4096), Err(Problem::Corrupt(_))));
    }
}
