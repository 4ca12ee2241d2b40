//! The per-architecture payloads (preload library and restorer) embedded in the `dmtcp` binary,
//! and the installation tree they are unpacked into:
//!
//! ```text
//! R/bin/mtcp_restart                      64-bit restorer
//! R/lib/dmtcp/libdmtcp.so                 64-bit preload library
//! R/lib/dmtcp/32/bin/mtcp_restart         32-bit restorer
//! R/lib/dmtcp/32/lib/dmtcp/libdmtcp.so    32-bit preload library
//! R/lib/dmtcp/build-id                    which build wrote the tree (written last)
//! ```
//!
//! R is the prefix of the running binary (the parent of its folder) when that is writable, else
//! a per-user cache folder keyed by the build. Every file is written under a temporary name,
//! fsynced and renamed, so processes that start at once all end with complete files, and a tree
//! left by a different build is replaced rather than reused.
use include_bytes_aligned::include_bytes_aligned;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const BUILD_ID: &str = env!("DMTCP_BUILD_ID");

/// Architecture of a program, a payload or an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    I686,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::I686 => "i686",
        }
    }
}

struct Payload {
    rel_path: &'static str,
    zst: &'static [u8],
    mode: u32,
}

static PAYLOADS: [Payload; 4] = [
    Payload {
        rel_path: "lib/dmtcp/libdmtcp.so",
        zst: include_bytes_aligned!(16, concat!(env!("OUT_DIR"), "/x86_64-libdmtcp.so.zst")),
        mode: 0o755,
    },
    Payload {
        rel_path: "bin/mtcp_restart",
        zst: include_bytes_aligned!(16, concat!(env!("OUT_DIR"), "/x86_64-mtcp_restart.zst")),
        mode: 0o755,
    },
    Payload {
        rel_path: "lib/dmtcp/32/lib/dmtcp/libdmtcp.so",
        zst: include_bytes_aligned!(16, concat!(env!("OUT_DIR"), "/i686-libdmtcp.so.zst")),
        mode: 0o755,
    },
    Payload {
        rel_path: "lib/dmtcp/32/bin/mtcp_restart",
        zst: include_bytes_aligned!(16, concat!(env!("OUT_DIR"), "/i686-mtcp_restart.zst")),
        mode: 0o755,
    },
];

const STAMP: &str = "lib/dmtcp/build-id";

/// An unpacked installation tree.
#[derive(Clone, Debug)]
pub struct Tree {
    pub root: PathBuf,
}

impl Tree {
    pub fn preload_lib(&self, arch: Arch) -> PathBuf {
        match arch {
            Arch::X86_64 => self.root.join(PAYLOADS[0].rel_path),
            Arch::I686 => self.root.join(PAYLOADS[2].rel_path),
        }
    }

    pub fn restorer(&self, arch: Arch) -> PathBuf {
        match arch {
            Arch::X86_64 => self.root.join(PAYLOADS[1].rel_path),
            Arch::I686 => self.root.join(PAYLOADS[3].rel_path),
        }
    }

    /// True when every payload of this build is in place.
    fn is_current(&self) -> bool {
        let stamp = fs::read_to_string(self.root.join(STAMP)).unwrap_or_default();
        stamp.trim() == BUILD_ID
            && PAYLOADS.iter().all(|p| {
                let want = zstd::zstd_safe::get_frame_content_size(p.zst).ok().flatten();
                let have = fs::metadata(self.root.join(p.rel_path)).ok().map(|m| m.len());
                want.is_some() && want == have
            })
    }

    /// Writes every payload and then the stamp, each atomically.
    fn unpack(&self) -> Result<(), PayloadError> {
        for p in &PAYLOADS {
            let dest = self.root.join(p.rel_path);
            let bytes = zstd::decode_all(p.zst).map_err(|e| PayloadError::Io(dest.clone(), e))?;
            write_atomic(&dest, &bytes, p.mode).map_err(|e| PayloadError::Io(dest, e))?;
        }
        let stamp = self.root.join(STAMP);
        write_atomic(&stamp, format!("{BUILD_ID}\n").as_bytes(), 0o644).map_err(|e| PayloadError::Io(stamp, e))
    }

    /// Makes this tree current, unpacking when needed.
    pub fn install(&self) -> Result<(), PayloadError> {
        if !self.is_current() {
            self.unpack()?;
        }
        Ok(())
    }
}

/// Writes `bytes` to `dest` through a unique temporary name in the same folder, fsync, rename.
pub fn write_atomic(dest: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = temp_name(dest);
    let result = (|| {
        let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        f.write_all(bytes)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        fs::rename(&tmp, dest)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A name beside `dest` that no other process uses at the same time.
pub fn temp_name(dest: &Path) -> PathBuf {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let name = dest.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    dest.with_file_name(format!(".{name}.tmp-{}-{nanos}", std::process::id()))
}

/// What went wrong laying out the payload tree; each names the file or folder.
#[derive(Debug)]
pub enum PayloadError {
    /// Reading or writing this path failed.
    Io(PathBuf, io::Error),
    /// Neither the binary's own prefix nor the user cache could be made current: why, for each.
    Unpack(Vec<PayloadError>),
}

impl std::fmt::Display for PayloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PayloadError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            PayloadError::Unpack(why) => {
                f.write_str("cannot unpack the dmtcp payloads: ")?;
                for (i, e) in why.iter().enumerate() {
                    write!(f, "{}{e}", if i > 0 { "; " } else { "" })?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for PayloadError {}

/// The prefix of the running binary: the parent of the folder that holds it.
pub fn own_prefix() -> Result<PathBuf, PayloadError> {
    let exe = fs::canonicalize("/proc/self/exe").map_err(|e| PayloadError::Io("/proc/self/exe".into(), e))?;
    let bindir = exe.parent().unwrap_or(Path::new("/"));
    Ok(bindir.parent().unwrap_or(Path::new("/")).to_path_buf())
}

/// The per-user cache folder for this build.
fn cache_root() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/dmtcp-cache-{}", nix::unistd::getuid())));
    base.join("dmtcp").join(BUILD_ID)
}

/// The tree this process should use: the binary's own prefix when it is current or can be
/// made current, else the per-user cache.
pub fn tree() -> Result<Tree, PayloadError> {
    let mut errors = Vec::new();
    match own_prefix() {
        Ok(prefix) => {
            let t = Tree { root: prefix };
            match t.install() {
                Ok(()) => return Ok(t),
                Err(e) => errors.push(e),
            }
        }
        Err(e) => errors.push(e),
    }
    let t = Tree { root: cache_root() };
    match t.install() {
        Ok(()) => {
            log::debug!("payloads unpacked into {} ({})", t.root.display(), PayloadError::Unpack(errors));
            Ok(t)
        }
        Err(e) => {
            errors.push(e);
            Err(PayloadError::Unpack(errors))
        }
    }
}
