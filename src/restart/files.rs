//! Files on the tool side: every file an image's process held by path (a regular file, a folder,
//! a device that is not a terminal) is opened by the group's init before it creates any process,
//! once per open file description, and put at every fd of every process that shared that
//! description at checkpoint (the images name a description by the same key, `FdWhat::File`'s
//! `desc`), with the description's offset and status flags. So a parent and a child that
//! appended to one inherited log go on appending to one description, and two processes that
//! read one inherited file go on sharing its offset.
//!
//! Design choice: a file held by one process only is opened here too, not by the process
//! itself. One path for every file keeps the two cases from drifting apart (the library only
//! gives each fd its close-on-exec flag back), the init opens the file with the restart's own
//! credentials exactly as the process would, and a failure is reported by `dmtcp_restart`
//! (naming the image, the fd and the path) before the program runs.
//!
//! An fd no kind restores (`FdWhat::Placeholder`), and a file that cannot be opened again
//! (removed since the checkpoint, no permission), get a placeholder: an unconnected AF_UNIX
//! SOCK_SEQPACKET socket. Every read, write, send and recv on it fails with ENOTCONN
//! ("Transport endpoint is not connected"), poll reports EPOLLHUP, lseek fails with ESPIPE, and
//! writing to it never raises SIGPIPE; the fd number stays taken, so a later open never gets it
//! and no data goes to another file. A socket in a failed state is what a program that lost a
//! connection already handles, which is why it was chosen over an fd on /dev/null (writes would
//! vanish silently) or a closed number (EBADF, and the number reused by the next open).
//!
//! # Saved contents (`--checkpoint-open-files`)
//! An image launched with it carries the bytes of the regular files its process held open
//! (`image_reader::SavedContents`). `put_back` runs in `dmtcp_restart` itself, with its own
//! credentials, once for the whole computation and before any group or process exists (so
//! `make` and every process then open the file as put back), one path once even when several
//! images saved it:
//! - a missing file is made again (and the folders above it) with its contents and its
//!   permission bits;
//! - a file that is there with the same contents is left as it is;
//! - a file that changed since the checkpoint is left as it is now, with a warning naming it,
//!   unless the computation was launched with `--allow-file-overwrite`
//!   (DMTCP_ALLOW_OVERWRITE_WITH_CKPTED_FILES=1, noted in the image, or set for
//!   `dmtcp_restart`): then the saved contents replace it in place (same inode, so hard links
//!   and other holders see them).
//!
//! A changed file is never replaced silently: the program gets it as it is now, and the warning
//! names the file and the switch that would have replaced it.
//!
//! The shape is `pipes.rs`'s (the model for kinds made before the processes exist): a pure
//! `plan`, unit-tested in `plan.rs`, and `make`, run by the group's init.
use super::pipes::ProcFds;
use super::plan::{FdPlacement, FdSource, FdWhat, ImageFacts, RESERVED_FDS};
use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// One open file description to open again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePlan {
    pub path: PathBuf,
    /// F_GETFL at checkpoint (access mode, O_APPEND, O_NONBLOCK, ...).
    pub status: u32,
    pub offset: u64,
    /// Who held it, for messages: (image, fd), in the images' order.
    pub holders: Vec<(PathBuf, RawFd)>,
}

/// The status flags given back at open (the others are the open's own or cannot be set).
const KEPT_FLAGS: i32 = libc::O_ACCMODE
    | libc::O_APPEND
    | libc::O_NONBLOCK
    | libc::O_DIRECTORY
    | libc::O_NOFOLLOW
    | libc::O_SYNC
    | libc::O_DSYNC
    | libc::O_PATH;

/// Plans the files and placeholders of one group (`members`: its images, in order): one
/// `FilePlan` per description key, in order of first appearance, and for each member the fds
/// that get a file or a placeholder. A record at one of dmtcp's own fds is skipped (reported).
pub fn plan(members: &[&ImageFacts]) -> (Vec<FilePlan>, Vec<ProcFds>) {
    let mut files: Vec<FilePlan> = Vec::new();
    let mut keys: Vec<(i32, i32)> = Vec::new();
    let per_member = members
        .iter()
        .map(|img| {
            let mut fds = ProcFds::default();
            for f in &img.fds {
                let source = match f.what {
                    FdWhat::File { desc, path, offset, status } => {
                        let i = match keys.iter().position(|&k| k == desc) {
                            Some(i) => i,
                            None => {
                                keys.push(desc);
                                files.push(FilePlan {
                                    path: img.paths.get(path).cloned().unwrap_or_default(),
                                    status,
                                    offset,
                                    holders: Vec::new(),
                                });
                                files.len() - 1
                            }
                        };
                        files[i].holders.push((img.path.clone(), f.fd));
                        FdSource::File(i)
                    }
                    FdWhat::Placeholder => FdSource::Placeholder,
                    _ => continue,
                };
                if RESERVED_FDS.contains(&f.fd) && source != FdSource::Placeholder {
                    // Not ours to place: the library opens a file kept at one of dmtcp's own
                    // numbers itself, once they are free (resources/files.rs, `DMTCP_FDS`).
                } else if RESERVED_FDS.contains(&f.fd) || f.fd < 0 {
                    fds.skipped.push(f.fd);
                } else {
                    fds.placed.push(FdPlacement { fd: f.fd, source });
                }
            }
            fds
        })
        .collect();
    (files, per_member)
}

/// The group's files, opened by its init (index = `FdSource::File`), and its placeholder.
pub struct Made {
    files: Vec<Option<OwnedFd>>,
    placeholder: OwnedFd,
}

/// Opens each description of `plans` (close-on-exec) at its offset. A file that cannot be
/// opened is reported, naming every image and fd that held it, and those fds get the
/// placeholder; only a placeholder that cannot be made fails the restart.
pub fn make(plans: &[FilePlan]) -> Result<Made, String> {
    let placeholder = placeholder().map_err(|e| format!("cannot make a placeholder socket: {e}"))?;
    let files = plans
        .iter()
        .map(|p| match open(p) {
            Ok(fd) => Some(fd),
            Err(e) => {
                let who: Vec<String> = p.holders.iter().map(|(img, fd)| format!("{} fd {fd}", img.display())).collect();
                log::warn!(
                    "cannot open {} again ({e}); {} hold{} a placeholder that fails every call",
                    p.path.display(),
                    who.join(", "),
                    if who.len() == 1 { "s" } else { "" }
                );
                None
            }
        })
        .collect();
    Ok(Made { files, placeholder })
}

fn open(p: &FilePlan) -> std::io::Result<OwnedFd> {
    let flags = p.status as i32 & KEPT_FLAGS;
    let acc = flags & libc::O_ACCMODE;
    let f = OpenOptions::new()
        .read(acc != libc::O_WRONLY)
        .write(acc != libc::O_RDONLY)
        .custom_flags((flags & !libc::O_ACCMODE) | libc::O_NOCTTY)
        .open(&p.path)?;
    let mut f = f;
    if p.offset > 0 {
        f.seek(SeekFrom::Start(p.offset))?;
    }
    Ok(f.into())
}

/// One file's saved contents, with the image and fd that carried it (for messages).
pub struct Saved<'a> {
    pub path: PathBuf,
    pub image: &'a Path,
    pub fd: RawFd,
    pub contents: &'a crate::common::image_reader::SavedContents,
}

/// What `put_back` did with a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutBack {
    Recreated,
    Unchanged,
    Replaced,
    /// Changed since the checkpoint and not allowed to be replaced: left (warned).
    KeptChanged,
    /// Could not be made or read (warned).
    Failed,
}

/// Puts the saved contents back (module docs); `allow` is DMTCP_ALLOW_OVERWRITE_WITH_CKPTED_FILES
/// of `dmtcp_restart`'s own environment. Returns, per distinct path in order, what it did.
pub fn put_back(saved: &[Saved<'_>], allow: bool) -> Vec<(PathBuf, PutBack)> {
    let mut done: Vec<(PathBuf, PutBack)> = Vec::new();
    for s in saved {
        if done.iter().any(|(p, _)| *p == s.path) {
            continue;
        }
        let r = put_back_one(s, allow || s.contents.overwrite).unwrap_or_else(|e| {
            log::warn!(
                "cannot put back the saved contents of {} ({} fd {}): {e}",
                s.path.display(),
                s.image.display(),
                s.fd
            );
            PutBack::Failed
        });
        log::debug!("{}: {r:?}", s.path.display());
        done.push((s.path.clone(), r));
    }
    done
}

fn put_back_one(s: &Saved<'_>, overwrite: bool) -> std::io::Result<PutBack> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let bytes = &s.contents.bytes;
    match std::fs::symlink_metadata(&s.path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = s.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = OpenOptions::new().write(true).create_new(true).mode(s.contents.mode).open(&s.path)?;
            f.write_all(bytes)?;
            // The umask may have taken bits away.
            f.set_permissions(std::fs::Permissions::from_mode(s.contents.mode))?;
            log::info!("{}: made again with its saved contents ({} bytes)", s.path.display(), bytes.len());
            Ok(PutBack::Recreated)
        }
        Err(e) => Err(e),
        Ok(_) => {
            let now = std::fs::read(&s.path)?;
            if now == *bytes {
                return Ok(PutBack::Unchanged);
            }
            if !overwrite {
                log::warn!(
                    "{} changed since the checkpoint: the program gets it as it is now (launch with \
                     --allow-file-overwrite, or set DMTCP_ALLOW_OVERWRITE_WITH_CKPTED_FILES=1, to have the \
                     checkpointed contents replace it)",
                    s.path.display()
                );
                return Ok(PutBack::KeptChanged);
            }
            let mut f = OpenOptions::new().write(true).truncate(true).open(&s.path)?;
            f.write_all(bytes)?;
            log::info!("{}: replaced by its checkpointed contents (--allow-file-overwrite)", s.path.display());
            Ok(PutBack::Replaced)
        }
    }
}

/// An unconnected AF_UNIX SOCK_SEQPACKET socket (see the module docs).
fn placeholder() -> nix::Result<OwnedFd> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None)
}

impl Made {
    /// The fd that a `FdSource::File(i)` or `FdSource::Placeholder` names.
    pub fn fd(&self, source: FdSource) -> RawFd {
        match source {
            FdSource::File(i) => self.files[i].as_ref().unwrap_or(&self.placeholder).as_raw_fd(),
            _ => self.placeholder.as_raw_fd(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_contents_make_a_missing_file_leave_an_equal_one_and_replace_a_changed_one_only_if_allowed() {
        use crate::common::image_reader::SavedContents;
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("dmtcp-files-putback-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let c = SavedContents { mode: 0o751, overwrite: false, bytes: b"saved\n".to_vec() };
        let one = |path: &Path, c: &SavedContents, allow| {
            let s = Saved { path: path.to_path_buf(), image: Path::new("img"), fd: 3, contents: c };
            put_back(&[s], allow)[0].1
        };
        let gone = dir.join("sub/gone");
        assert_eq!(one(&gone, &c, false), PutBack::Recreated);
        assert_eq!(std::fs::read(&gone).unwrap(), b"saved\n");
        assert_eq!(std::fs::metadata(&gone).unwrap().permissions().mode() & 0o7777, 0o751);
        assert_eq!(one(&gone, &c, false), PutBack::Unchanged);
        std::fs::write(&gone, b"changed").unwrap();
        assert_eq!(one(&gone, &c, false), PutBack::KeptChanged);
        assert_eq!(std::fs::read(&gone).unwrap(), b"changed");
        assert_eq!(one(&gone, &c, true), PutBack::Replaced);
        assert_eq!(std::fs::read(&gone).unwrap(), b"saved\n");
        std::fs::write(&gone, b"changed again").unwrap();
        let allowed = SavedContents { overwrite: true, ..c.clone() };
        assert_eq!(one(&gone, &allowed, false), PutBack::Replaced, "allowed at launch");
        // One path saved by two images is put back once.
        let twice = [
            Saved { path: gone.clone(), image: Path::new("a"), fd: 3, contents: &c },
            Saved { path: gone.clone(), image: Path::new("b"), fd: 4, contents: &c },
        ];
        assert_eq!(put_back(&twice, false).len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_placeholder_fails_reads_and_writes_with_enotconn() {
        let p = placeholder().unwrap();
        let mut b = [0u8; 4];
        let mut f = std::fs::File::from(p);
        let enotconn = |r: std::io::Result<usize>| r.unwrap_err().raw_os_error() == Some(libc::ENOTCONN);
        assert!(enotconn(std::io::Read::read(&mut f, &mut b)));
        assert!(enotconn(std::io::Write::write(&mut f, b"x")));
        assert_eq!(f.seek(SeekFrom::Start(0)).unwrap_err().raw_os_error(), Some(libc::ESPIPE));
    }

    #[test]
    fn a_file_is_opened_with_its_flags_at_its_offset_and_a_missing_one_gets_the_placeholder() {
        let dir = std::env::temp_dir().join(format!("dmtcp-files-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        std::fs::write(&path, b"0123456789").unwrap();
        let plans = vec![
            FilePlan {
                path: path.clone(),
                status: (libc::O_RDWR | libc::O_APPEND) as u32,
                offset: 4,
                holders: vec![("a".into(), 3)],
            },
            FilePlan {
                path: dir.join("gone"),
                status: libc::O_RDONLY as u32,
                offset: 0,
                holders: vec![("a".into(), 4)],
            },
        ];
        let made = make(&plans).unwrap();
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", made.fd(FdSource::File(0)))).unwrap();
        let field = |k: &str| info.lines().find_map(|l| l.strip_prefix(k)).unwrap().trim().to_string();
        assert_eq!(field("pos:"), "4");
        let fl = i32::from_str_radix(&field("flags:"), 8).unwrap();
        assert_eq!(fl & (libc::O_ACCMODE | libc::O_APPEND), libc::O_RDWR | libc::O_APPEND);
        assert_eq!(made.fd(FdSource::File(1)), made.fd(FdSource::Placeholder), "a file that is gone");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
