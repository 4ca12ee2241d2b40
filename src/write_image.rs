//! `dmtcp write-image --out PATH [--compress]`: the hidden helper that stores one checkpoint
//! image. The preload library runs it (with `DMTCP_BIN`, without LD_PRELOAD) with stdin = the
//! pipe it streams the image into and stdout = a status pipe, so that the application's process
//! does no compression and no file-system work of its own (see design-notes "Compression
//! outside the application").
//!
//! It reads the stream in 1 MiB pieces until EOF, checks it as it goes (`image_reader::Validator`:
//! header, tables, chunks, END chunk, trailer length and checksum), and writes it to a temporary
//! name beside PATH (created 0600), raw or as one zstd frame (level 1, two worker threads). The
//! library may send the trailer with checksum 0 (see `Validator::finish_stream`): the writer
//! holds the last 32 bytes back and writes the trailer itself, with the checksum it computed
//! over the bytes it received, so every file on disk carries a real checksum. Only
//! a complete, valid stream replaces PATH: fsync the file, rename, fsync the folder, then print
//! `ok <bytes written to the file>` and exit 0. Otherwise (stream cut short because the process
//! died, bad trailer, disk full, I/O error) the temporary file is removed, the previous image at
//! PATH is left as it was, and it prints `error <message>` and exits 1. After a write error it
//! keeps reading the stream to its end, so that the writing process never meets a broken pipe
//! in the middle of a checkpoint.
use crate::common::cli;
use crate::common::image_reader::{Problem, Validator, BUF_SIZE};
use crate::common::payloads::temp_name;
use dmtcp_proto::image::{self, Trailer};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const USAGE: &str =
    "usage: dmtcp write-image --out PATH [--compress] [--chain-link NAME | --chain-prune]  (run by libdmtcp.so)";

/// Incremental checkpoints (`image::chain`): what happens to the images of the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainStep {
    /// A plain image: PATH is replaced, nothing else.
    None,
    /// A delta: the image now at PATH (its base) is kept as NAME beside it before PATH is
    /// replaced (a hard link, made durable first).
    Link(String),
    /// A full image of a chain: once it is durable, the old chain's links `PATH.<n>` go.
    Prune,
}

pub fn main(args: &[std::ffi::OsString]) -> i32 {
    let args = match cli::utf8("dmtcp write-image", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let mut out: Option<PathBuf> = None;
    let mut compress = false;
    let mut chain = ChainStep::None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out = it.next().map(PathBuf::from),
            "--compress" => compress = true,
            "--chain-prune" => chain = ChainStep::Prune,
            "--chain-link" => match it.next() {
                Some(n) if !n.is_empty() && !n.contains('/') => chain = ChainStep::Link(n.clone()),
                _ => {
                    println!("error {USAGE}");
                    return 1;
                }
            },
            _ => {
                println!("error {USAGE}");
                return 1;
            }
        }
    }
    let Some(out) = out else {
        println!("error {USAGE}");
        return 1;
    };
    match write_chained(&out, compress, &chain, &mut io::stdin().lock()) {
        Ok((n, sum)) => {
            println!("ok {n} {sum:x}");
            0
        }
        Err(msg) => {
            println!("error {msg}");
            1
        }
    }
}

/// Why an image was not stored; each names the image. Its text is the `error` line the
/// preload library reports (and `--bcheckpoint` prints).
#[derive(Debug)]
pub enum WriteError {
    /// Creating, writing, syncing the file (disk full and I/O errors are told apart).
    Write(PathBuf, io::Error),
    Compressor(PathBuf, io::Error),
    ReadStream(PathBuf, io::Error),
    /// The stream is not a sound image; `received` is its length when it ended.
    BadStream {
        image: PathBuf,
        problem: Problem,
        received: Option<u64>,
    },
    Rename {
        from: PathBuf,
        to: PathBuf,
        err: io::Error,
    },
    /// The base of a delta could not be kept under its chain name.
    Chain(PathBuf, PathBuf, io::Error),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Write(p, e) => match e.raw_os_error() {
                Some(libc::ENOSPC) | Some(libc::EDQUOT) => write!(f, "disk full writing {}: {e}", p.display()),
                Some(libc::EIO) => write!(f, "I/O error writing {}: {e}", p.display()),
                _ => write!(f, "cannot write {}: {e}", p.display()),
            },
            WriteError::Compressor(p, e) => write!(f, "cannot start the compressor for {}: {e}", p.display()),
            WriteError::ReadStream(p, e) => write!(f, "cannot read the image stream for {}: {e}", p.display()),
            WriteError::BadStream { image, problem, received: None } => {
                write!(f, "bad image stream for {}: {problem}", image.display())
            }
            WriteError::BadStream { image, problem, received: Some(n) } => {
                write!(f, "bad image stream for {} ({n} bytes received): {problem}", image.display())
            }
            WriteError::Rename { from, to, err } => {
                write!(f, "cannot rename {} to {}: {err}", from.display(), to.display())
            }
            WriteError::Chain(base, link, e) => {
                write!(f, "cannot keep the base image {} as {} for a delta: {e}", base.display(), link.display())
            }
        }
    }
}

impl std::error::Error for WriteError {}

fn describe(e: io::Error, path: &Path) -> WriteError {
    WriteError::Write(path.to_path_buf(), e)
}

enum Sink {
    Raw(File),
    Zstd(zstd::stream::write::Encoder<'static, File>),
}

impl Sink {
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Sink::Raw(f) => f.write_all(b),
            Sink::Zstd(z) => z.write_all(b),
        }
    }
    fn finish(self) -> io::Result<File> {
        match self {
            Sink::Raw(f) => Ok(f),
            Sink::Zstd(z) => z.finish(),
        }
    }
}

/// Writes everything but the last TRAILER_SIZE bytes seen (the trailer, which we write).
#[derive(Default)]
struct HeldBack {
    tail: [u8; image::TRAILER_SIZE],
    len: usize,
}

impl HeldBack {
    fn push(&mut self, sink: &mut Sink, data: &[u8]) -> io::Result<()> {
        const T: usize = image::TRAILER_SIZE;
        if data.len() >= T {
            sink.write_all(&self.tail[..self.len])?;
            sink.write_all(&data[..data.len() - T])?;
            self.tail.copy_from_slice(&data[data.len() - T..]);
            self.len = T;
        } else {
            let total = self.len + data.len();
            if total > T {
                let out = total - T;
                sink.write_all(&self.tail[..out])?;
                self.tail.copy_within(out..self.len, 0);
                self.len -= out;
            }
            self.tail[self.len..self.len + data.len()].copy_from_slice(data);
            self.len += data.len();
        }
        Ok(())
    }
}

/// Stores the stream read from `input` at `dest`; returns the file's size.
pub fn write_image(dest: &Path, compress: bool, input: &mut impl Read) -> Result<u64, WriteError> {
    write_chained(dest, compress, &ChainStep::None, input).map(|(n, _)| n)
}

/// `write_image` for an image of a chain (`chain`); returns the file's size and checksum.
///
/// The order keeps a restorable chain on disk at every moment: a delta's base is linked under
/// its chain name (a temporary name renamed over any stale one, folder fsynced) before the
/// delta replaces PATH; a new full image (or a plain one) replaces PATH, is made durable, and
/// only then are the old links removed. A crash leaves either the old chain whole (PATH still the old newest)
/// or the new one.
pub fn write_chained(
    dest: &Path,
    compress: bool,
    chain: &ChainStep,
    input: &mut impl Read,
) -> Result<(u64, u64), WriteError> {
    if let ChainStep::Link(name) = chain {
        if let Err(e) = link_base(dest, name) {
            // Keep reading: the writing process must not meet a broken pipe.
            let _ = io::copy(input, &mut io::sink());
            return Err(e);
        }
    }
    sweep_dead_temporaries(folder_of(dest));
    let tmp = temp_name(dest);
    let r = store(dest, &tmp, compress, input);
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    // A plain image (a process that kept a chain before: `dmtcp_command --incremental` then a
    // plain checkpoint) leaves no chain either: its old links go too.
    if r.is_ok() && !matches!(chain, ChainStep::Link(_)) {
        prune_links(dest);
    }
    r
}

/// Removes the temporary files (`temp_name`'s pattern, `.<name>.tmp-<pid>-<nanos>`) that
/// writers which died (SIGKILL, a crash) left in `dir`, so that a killed writer leaves nothing
/// behind after the next checkpoint. A file is removed only if its writer's pid is gone here
/// and nobody holds its lock: a writer keeps an exclusive flock on its file while it writes
/// (`store`), which also covers a writer of another pid namespace whose pid means nothing here.
pub fn sweep_dead_temporaries(dir: &Path) -> usize {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    let me = std::process::id();
    let mut removed = 0;
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(temp_writer_pid) else { continue };
        if pid == me || pid_alive(pid) {
            continue;
        }
        let Ok(f) = File::open(e.path()) else { continue };
        // Locked: a writer (of another namespace) is at work on it.
        let Ok(lock) = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) else { continue };
        if fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
        drop(lock);
    }
    removed
}

/// The writer's pid in a name of `temp_name`'s pattern (`.<name>.tmp-<pid>-<nanos>`).
pub fn temp_writer_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let (_, tail) = rest.rsplit_once(".tmp-")?;
    let (pid, nanos) = tail.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(pid) || !digits(nanos) {
        return None;
    }
    pid.parse().ok().filter(|&p| p > 0)
}

fn pid_alive(pid: u32) -> bool {
    let Ok(p) = i32::try_from(pid) else { return false };
    !matches!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None), Err(nix::errno::Errno::ESRCH))
}

fn folder_of(dest: &Path) -> &Path {
    dest.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Keeps the image at `dest` as `name` beside it (durable before `dest` is replaced).
fn link_base(dest: &Path, name: &str) -> Result<(), WriteError> {
    let dir = folder_of(dest);
    let link = dir.join(name);
    let tmp = temp_name(&link);
    let _ = fs::remove_file(&tmp);
    fs::hard_link(dest, &tmp).map_err(|e| WriteError::Chain(dest.to_path_buf(), link.clone(), e))?;
    fs::rename(&tmp, &link).map_err(|err| {
        let _ = fs::remove_file(&tmp);
        WriteError::Rename { from: tmp.clone(), to: link.clone(), err }
    })?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| describe(e, &link))
}

/// Removes the links `<dest>.<n>` of an older chain (after a new full image is durable).
fn prune_links(dest: &Path) {
    let Some(base) = dest.file_name().and_then(|n| n.to_str()) else { return };
    let Ok(rd) = fs::read_dir(folder_of(dest)) else { return };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(n) = name.to_str() else { continue };
        if is_chain_link(base, n) {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Whether `name` is a chain link of the image named `base`: `<base>.<digits>`.
pub fn is_chain_link(base: &str, name: &str) -> bool {
    name.strip_prefix(base)
        .and_then(|r| r.strip_prefix('.'))
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

fn store(dest: &Path, tmp: &Path, compress: bool, input: &mut impl Read) -> Result<(u64, u64), WriteError> {
    let mut v = Validator::new();
    let mut buf = vec![0u8; BUF_SIZE];
    // The first error (of the stream or of the file) is remembered; the stream is read to its
    // end regardless.
    let mut failed: Option<WriteError> = None;
    let mut held = HeldBack::default();
    // The lock says "a writer is at work on this file" to `sweep_dead_temporaries` of another
    // writer; it goes with our process, however that ends.
    let mut _lock = None;
    let opened = OpenOptions::new().write(true).create_new(true).mode(0o600).open(tmp).inspect(|f| {
        _lock = f
            .try_clone()
            .ok()
            .and_then(|c| nix::fcntl::Flock::lock(c, nix::fcntl::FlockArg::LockExclusiveNonblock).ok());
    });
    let mut sink = match opened {
        Ok(f) if compress => {
            let enc = zstd::stream::write::Encoder::new(f, 1).and_then(|mut e| {
                e.multithread(2)?;
                Ok(e)
            });
            match enc {
                Ok(e) => Some(Sink::Zstd(e)),
                Err(e) => {
                    failed = Some(WriteError::Compressor(dest.to_path_buf(), e));
                    None
                }
            }
        }
        Ok(f) => Some(Sink::Raw(f)),
        Err(e) => {
            failed = Some(describe(e, dest));
            None
        }
    };
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                failed.get_or_insert_with(|| WriteError::ReadStream(dest.to_path_buf(), e));
                break;
            }
        };
        if failed.is_some() {
            continue;
        }
        if let Err(p) = v.feed(&buf[..n]) {
            failed = Some(WriteError::BadStream { image: dest.to_path_buf(), problem: p, received: None });
            sink = None;
            continue;
        }
        if let Some(s) = sink.as_mut() {
            if let Err(e) = held.push(s, &buf[..n]) {
                failed = Some(describe(e, dest));
                sink = None;
            }
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    let len = v.len();
    let (_, sum) = v.finish_stream().map_err(|p| WriteError::BadStream {
        image: dest.to_path_buf(),
        problem: p,
        received: Some(len),
    })?;
    let mut sink = sink.expect("no error, so the sink exists");
    let mut trailer = [0u8; image::TRAILER_SIZE];
    Trailer { len: len - image::TRAILER_SIZE as u64, checksum: sum }.encode(&mut trailer);
    sink.write_all(&trailer).map_err(|e| describe(e, dest))?;
    let file = sink.finish().map_err(|e| describe(e, dest))?;
    file.sync_all().map_err(|e| describe(e, dest))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    drop(file);
    fs::rename(tmp, dest).map_err(|err| WriteError::Rename { from: tmp.to_path_buf(), to: dest.to_path_buf(), err })?;
    let dir = dest.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        // The image is in place (the old one is gone): report success, with the doubt about its
        // durability across a power loss on stderr.
        eprintln!("dmtcp write-image: warning: cannot fsync {}: {e}", dir.display());
    }
    Ok((size, sum))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporaries_of_writers_are_recognised_by_their_pid() {
        let tmp = temp_name(Path::new("/d/ckpt_a_1-40000.dmtcp"));
        let name = tmp.file_name().unwrap().to_str().unwrap();
        assert_eq!(temp_writer_pid(name), Some(std::process::id()));
        assert_eq!(temp_writer_pid(".ckpt_a.dmtcp.3.tmp-812-99"), Some(812));
        for other in ["ckpt_a.dmtcp", ".ckpt_a.dmtcp.tmp-x-1", ".a.tmp-12", "a.tmp-12-3", ".a.tmp-0-3", ".a.tmp--3"] {
            assert_eq!(temp_writer_pid(other), None, "{other}");
        }
    }

    #[test]
    fn sweeping_removes_only_temporaries_of_dead_unlocked_writers() {
        let dir = std::env::temp_dir().join(format!("dmtcp-sweep-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // A pid that is gone: a child we reaped.
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let dead = c.id();
        c.wait().unwrap();
        let stale = dir.join(format!(".ckpt_x.dmtcp.tmp-{dead}-5"));
        let locked = dir.join(format!(".ckpt_y.dmtcp.tmp-{dead}-6"));
        let live = dir.join(format!(".ckpt_z.dmtcp.tmp-{}-7", std::process::id()));
        let image = dir.join("ckpt_x.dmtcp");
        for p in [&stale, &locked, &live, &image] {
            fs::write(p, b"x").unwrap();
        }
        let held = nix::fcntl::Flock::lock(File::open(&locked).unwrap(), nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|(_, e)| e)
            .unwrap();
        assert_eq!(sweep_dead_temporaries(&dir), 1);
        assert!(!stale.exists() && locked.exists() && live.exists() && image.exists());
        drop(held);
        assert_eq!(sweep_dead_temporaries(&dir), 1, "unlocked now");
        assert!(!locked.exists() && live.exists() && image.exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
