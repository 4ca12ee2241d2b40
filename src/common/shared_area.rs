//! The computation's shared-data area (layout in `dmtcp_proto::shared`): a 4096-byte file under
//! the per-user temporary folder `<tmp>/dmtcp-<user>@<host>/`, created readable by its owner only,
//! that every process of the computation maps.
use crate::common::payloads::write_atomic;
use dmtcp_proto::shared::{encode, SharedInit};
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::PathBuf;

/// What went wrong with the per-user folder or the area file; each names the path.
#[derive(Debug)]
pub enum SharedAreaError {
    Io(PathBuf, io::Error),
    NotOurs { dir: PathBuf, uid: u32 },
}

impl std::fmt::Display for SharedAreaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SharedAreaError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            SharedAreaError::NotOurs { dir, uid } => {
                write!(f, "{} is not a folder owned by uid {uid}; refusing to use it", dir.display())
            }
        }
    }
}

impl std::error::Error for SharedAreaError {}

/// `<DMTCP_TMPDIR | TMPDIR | /tmp>/dmtcp-<user>@<host>`, created 0700 and checked to be ours.
pub fn tmpdir() -> Result<PathBuf, SharedAreaError> {
    let base = [dmtcp_proto::env::TMPDIR, "TMPDIR"]
        .iter()
        .find_map(|v| std::env::var_os(v).filter(|s| !s.is_empty()))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    let uid = nix::unistd::getuid();
    let user = nix::unistd::User::from_uid(uid).ok().flatten().map(|u| u.name).unwrap_or_else(|| uid.to_string());
    let host = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".into());
    let dir = base.join(format!("dmtcp-{user}@{host}"));
    match fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(SharedAreaError::Io(dir, e)),
    }
    let meta = fs::symlink_metadata(&dir).map_err(|e| SharedAreaError::Io(dir.clone(), e))?;
    if !meta.is_dir() || meta.uid() != uid.as_raw() {
        return Err(SharedAreaError::NotOurs { dir, uid: uid.as_raw() });
    }
    if meta.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| SharedAreaError::Io(dir.clone(), e))?;
    }
    Ok(dir)
}

/// Writes the shared-data area of the computation served by the coordinator on `port` and
/// returns its path. Every launch into that computation rewrites it atomically with the same
/// host facts, so processes that mapped an earlier copy keep valid contents.
pub fn create(init: &SharedInit<'_>, port: u16) -> Result<PathBuf, SharedAreaError> {
    let path = tmpdir()?.join(format!("dmtcpSharedArea.{port}"));
    write_atomic(&path, &encode(init), 0o600).map_err(|e| SharedAreaError::Io(path.clone(), e))?;
    Ok(path)
}
