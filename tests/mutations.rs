//! Fuzzed images: thousands of mutations of real images (a 64-bit and a 32-bit program with
//! threads, checkpointed for real) go through the one image reader (`common::image_reader`),
//! fed in pieces of random sizes as `dmtcp write-image` and `dmtcp_restart` feed it. Bit flips
//! and truncations must be refused; mutations whose checksums are sealed again (so that only the
//! structural checks stand between them and the restorer: counts, lengths, areas, chunk
//! order) must be refused or read, never crash, hang or allocate without bound. A sample of the
//! refused ones, raw and compressed, goes to `dmtcp_restart`, which must exit 2 with the
//! reader's message before anything starts.
use crate::ckpt::Cycle;
use crate::util::*;
use dmtcp::common::image_reader::{self, Validator};
use dmtcp_proto::image::{self, Chunk, Header, Trailer, CHUNK_SIZE, HEADER_SIZE, TRAILER_SIZE};
use std::time::{Duration, Instant};

/// xorshift64*: deterministic, so a failing mutation reproduces from its number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A real uncompressed image of `program` (64- or 32-bit), and where its parts lie.
struct Real {
    bytes: Vec<u8>,
    /// Start of the area table, of the data (first chunk header), of the trailer.
    tables: usize,
    data: usize,
    /// Offsets of every chunk header (the End chunk last).
    chunks: Vec<usize>,
}

fn real_image(m32: bool) -> Real {
    let p = c_program("ckpt_threads", m32);
    let mut cy = Cycle::launch(&p, &["600"], &["--no-gzip"]);
    std::thread::sleep(Duration::from_millis(300));
    cy.checkpoint();
    let imgs = cy.images();
    assert_eq!(imgs.len(), 1, "{imgs:?}");
    let bytes = std::fs::read(&imgs[0]).unwrap();
    cy.kill();
    let h = Header::decode(&bytes).expect("a real image's header");
    let tables = HEADER_SIZE;
    let data = tables
        + h.num_areas as usize * image::AREA_SIZE
        + h.num_threads as usize * image::THREAD_SIZE
        + h.num_fds as usize * image::FD_SIZE;
    let mut chunks = Vec::new();
    let mut at = data;
    loop {
        chunks.push(at);
        match Chunk::decode(&bytes[at..at + CHUNK_SIZE]).expect("a real image's chunk") {
            Chunk::Data { len, .. } => at += CHUNK_SIZE + len as usize,
            Chunk::Zero { .. } => at += CHUNK_SIZE,
            Chunk::End => break,
        }
    }
    assert_eq!(at + CHUNK_SIZE + TRAILER_SIZE, bytes.len(), "the parts of a real image add up");
    Real { bytes, tables, data, chunks }
}

/// Writes a trailer whose length and checksum match what precedes it.
fn seal(b: &mut [u8]) {
    if b.len() < TRAILER_SIZE {
        return;
    }
    let n = b.len() - TRAILER_SIZE;
    let mut tr = [0u8; TRAILER_SIZE];
    Trailer { len: n as u64, checksum: image::checksum(image::CHECKSUM_SEED, &b[..n]) }.encode(&mut tr);
    b[n..].copy_from_slice(&tr);
}

/// Feeds `b` to a fresh reader in pieces of random sizes; the reader's verdict.
fn read(b: &[u8], r: &mut Rng) -> Result<(), String> {
    let mut v = Validator::new();
    let mut at = 0;
    while at < b.len() {
        let n = (1 + r.below(256 << 10)).min(b.len() - at);
        v.feed(&b[at..at + n]).map_err(|e| e.to_string())?;
        at += n;
    }
    v.finish().map(|_| ()).map_err(|e| e.to_string())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum How {
    /// Refusal required.
    BitFlips,
    Truncated,
    SwappedChunksUnsealed,
    Appended,
    /// Checksum sealed again: refused or read, never a crash.
    SealedTableBytes,
    SealedHeaderField,
    SealedChunkHeader,
    SealedSwappedChunks,
    SealedAreaField,
}

impl How {
    const ALL: [How; 9] = [
        How::BitFlips,
        How::Truncated,
        How::SwappedChunksUnsealed,
        How::Appended,
        How::SealedTableBytes,
        How::SealedHeaderField,
        How::SealedChunkHeader,
        How::SealedSwappedChunks,
        How::SealedAreaField,
    ];
    fn must_refuse(self) -> bool {
        matches!(self, How::BitFlips | How::Truncated | How::SwappedChunksUnsealed | How::Appended)
    }
}

/// Values that break counts and lengths at their edges.
fn edgy(r: &mut Rng) -> u64 {
    [0, 1, 2, 0xfff, 0x1000, 0x1001, u32::MAX as u64, u32::MAX as u64 + 1, u64::MAX, 1 << 40, r.next()][r.below(11)]
}

fn mutate(real: &Real, how: How, r: &mut Rng) -> Vec<u8> {
    let mut b = real.bytes.clone();
    let n = b.len();
    match how {
        How::BitFlips => {
            for _ in 0..1 + r.below(8) {
                let i = r.below(n);
                b[i] ^= 1 << r.below(8);
            }
        }
        How::Truncated => b.truncate(r.below(n)),
        How::SwappedChunksUnsealed | How::SealedSwappedChunks => {
            // Two different data chunks trade places (each with its header).
            let d = real.chunks.len() - 1;
            let (i, j) = (r.below(d), r.below(d));
            let (i, j) = (i.min(j), i.max(j));
            if i != j {
                let span = |k: usize| real.chunks[k]..real.chunks[k + 1];
                let (a, c) = (span(i), span(j));
                let mut out = real.bytes[..a.start].to_vec();
                out.extend_from_slice(&real.bytes[c.clone()]);
                out.extend_from_slice(&real.bytes[a.end..c.start]);
                out.extend_from_slice(&real.bytes[a.clone()]);
                out.extend_from_slice(&real.bytes[c.end..]);
                b = out;
            } else {
                // One chunk only: move it behind the End chunk instead.
                let end = real.chunks[d];
                let first = real.chunks[0]..real.chunks[1];
                let mut out = real.bytes[..first.start].to_vec();
                out.extend_from_slice(&real.bytes[first.end..end + CHUNK_SIZE]);
                out.extend_from_slice(&real.bytes[first.clone()]);
                out.extend_from_slice(&real.bytes[end + CHUNK_SIZE..]);
                b = out;
            }
            if how == How::SealedSwappedChunks {
                seal(&mut b);
            }
        }
        How::Appended => {
            let extra: Vec<u8> = (0..1 + r.below(4096)).map(|_| r.next() as u8).collect();
            b.extend_from_slice(&extra);
        }
        How::SealedTableBytes => {
            // Bytes of the area, thread and fd tables: an edge value over a random field.
            let i = real.tables + r.below(real.data - real.tables) / 4 * 4;
            let v = edgy(r).to_le_bytes();
            let w = if r.below(2) == 0 { 4 } else { 8 };
            let end = (i + w).min(real.data);
            b[i..end].copy_from_slice(&v[..end - i]);
            seal(&mut b);
        }
        How::SealedHeaderField => {
            let mut h = Header::decode(&b).unwrap();
            let v = edgy(r);
            let f = r.below(10);
            match f {
                0 => h.num_areas = v as u32,
                1 => h.num_threads = v as u32,
                2 => h.num_fds = v as u32,
                3 => h.vdso.start = v,
                4 => h.vvar.end = v,
                5 => h.auxv_len = v as u32,
                6 => h.start_brk = v,
                7 => h.brk = v,
                8 => h.num_peers = v as u32,
                _ => h.flags = v as u32,
            }
            let mut hb = [0u8; HEADER_SIZE];
            h.encode(&mut hb);
            b[..HEADER_SIZE].copy_from_slice(&hb);
            seal(&mut b);
        }
        How::SealedAreaField => {
            // start, end, file offset, protection or flags of one area.
            let areas = (real.data - real.tables) / image::AREA_SIZE;
            let at = real.tables + r.below(areas) * image::AREA_SIZE;
            let v = edgy(r);
            match r.below(5) {
                0 => b[at..at + 8].copy_from_slice(&v.to_le_bytes()),
                1 => b[at + 8..at + 16].copy_from_slice(&v.to_le_bytes()),
                2 => b[at + 16..at + 24].copy_from_slice(&v.to_le_bytes()),
                3 => b[at + 24..at + 28].copy_from_slice(&(v as u32).to_le_bytes()),
                _ => b[at + 28..at + 32].copy_from_slice(&(v as u32).to_le_bytes()),
            }
            seal(&mut b);
        }
        How::SealedChunkHeader => {
            let k = r.below(real.chunks.len());
            let at = real.chunks[k];
            let field = r.below(CHUNK_SIZE / 4) * 4;
            let v = edgy(r).to_le_bytes();
            let end = (at + field + 8).min(at + CHUNK_SIZE);
            b[at + field..end].copy_from_slice(&v[..end - at - field]);
            seal(&mut b);
        }
    }
    b
}

fn mutations_are_refused_or_read(m32: bool) {
    let real = real_image(m32);
    let mut r = Rng(if m32 { 0x3232 } else { 0x6464 });
    assert_eq!(read(&real.bytes, &mut r), Ok(()), "the real image itself is read");
    const PER_KIND: usize = 250;
    let mut refused = [0usize; How::ALL.len()];
    let mut samples: Vec<(How, Vec<u8>, String)> = Vec::new();
    let slowest = How::ALL
        .iter()
        .enumerate()
        .flat_map(|(k, &how)| (0..PER_KIND).map(move |i| (k, how, i)))
        .map(|(k, how, i)| {
            let b = mutate(&real, how, &mut r);
            let t = Instant::now();
            let verdict = read(&b, &mut r);
            let took = t.elapsed();
            match verdict {
                Err(msg) => {
                    assert!(!msg.trim().is_empty(), "{how:?} #{i}: a refusal without a message");
                    refused[k] += 1;
                    if i < 2 {
                        samples.push((how, b, msg));
                    }
                }
                Ok(()) => assert!(!how.must_refuse(), "{how:?} #{i}: a corrupt image was accepted"),
            }
            took
        })
        .max()
        .unwrap();
    eprintln!(
        "{} bit: {} mutations, refused per kind {:?} ({:?}); slowest read {slowest:?}",
        if m32 { 32 } else { 64 },
        PER_KIND * How::ALL.len(),
        refused,
        How::ALL
    );
    assert!(slowest < Duration::from_secs(5), "a read took {slowest:?}");
    // The structural checks, not only the checksum, do the refusing: most sealed header, area
    // and chunk-header mutations must be caught (the others are values an image may hold:
    // chunks in another order, a thread's register, a byte of a path).
    for (k, how) in How::ALL.iter().enumerate() {
        if matches!(how, How::SealedHeaderField | How::SealedChunkHeader | How::SealedAreaField) {
            assert!(refused[k] * 2 > PER_KIND, "{how:?}: only {} of {PER_KIND} refused", refused[k]);
        }
    }

    // A sample through dmtcp_restart, raw and compressed: exit 2, the reader's message, at once.
    let d = TempDir::new("mut");
    for (n, (how, b, msg)) in samples.iter().take(8).enumerate() {
        for compress in [false, true] {
            let path = d.join(format!("ckpt_mut_{n}_{compress}.dmtcp"));
            let data = if compress { zstd::encode_all(&b[..], 1).unwrap() } else { b.clone() };
            std::fs::write(&path, data).unwrap();
            if let Err(e) = image_reader::check_file(&path) {
                assert!(!e.to_string().is_empty());
            } else {
                panic!("{how:?}: check_file accepted what the reader refused ({msg})");
            }
            let mut c = role("restart");
            c.arg(&path);
            let out = run_for(&mut c, Duration::from_secs(20));
            assert_eq!(out.status.code(), Some(2), "{how:?} ({msg}): {}", describe(&c, &out));
            assert!(stderr(&out).contains(path.file_name().unwrap().to_str().unwrap()), "{}", stderr(&out));
        }
    }
}

#[test]
fn thousands_of_image_mutations_are_refused_or_read_never_crash_64() {
    mutations_are_refused_or_read(false);
}

#[test]
fn thousands_of_image_mutations_are_refused_or_read_never_crash_32() {
    mutations_are_refused_or_read(true);
}
