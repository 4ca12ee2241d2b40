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

const PREFIX: &str = "dmtcpSharedArea.";

/// Writes the shared-data area of the computation served by the coordinator on `port` and
/// returns its path. Every launch into that computation rewrites it atomically with the same
/// host facts, so processes that mapped an earlier copy keep valid contents. Areas that
/// crashed computations left behind are removed first (`sweep_stale`).
pub fn create(init: &SharedInit<'_>, port: u16) -> Result<PathBuf, SharedAreaError> {
    let dir = tmpdir()?;
    sweep_stale(&dir, &listening_ports());
    let path = dir.join(format!("{PREFIX}{port}"));
    write_atomic(&path, &encode(init), 0o600).map_err(|e| SharedAreaError::Io(path.clone(), e))?;
    Ok(path)
}

/// Removes the area of the computation on `port`: its coordinator calls this when it exits,
/// so that a finished computation leaves nothing in the temporary folder. The processes keep
/// what they mapped; one that execs later runs without the area, which the library allows.
pub fn remove(port: u16) {
    if let Ok(dir) = tmpdir() {
        let _ = fs::remove_file(dir.join(format!("{PREFIX}{port}")));
    }
}

/// Removes the areas whose coordinator is gone (nothing listens on their port: it was killed
/// or crashed before it could remove its own), and temporary files of ours older than a
/// minute (a writer killed between create and rename). A coordinator listens before any area
/// of its computation is written, so a live computation's area is never taken for stale.
pub fn sweep_stale(dir: &std::path::Path, listening: &[u16]) -> usize {
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    let old = |e: &fs::DirEntry| {
        e.metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > std::time::Duration::from_secs(60))
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let stale = match name.strip_prefix(PREFIX).and_then(|p| p.parse::<u16>().ok()) {
            Some(port) => !listening.contains(&port),
            None => name.starts_with(&format!(".{PREFIX}")) && name.contains(".tmp-") && old(&e),
        };
        if stale && fs::remove_file(e.path()).is_ok() {
            log::debug!("removed the stale {}", e.path().display());
            removed += 1;
        }
    }
    removed
}

/// The TCP ports something listens on in this network namespace (IPv4 and IPv6), from
/// /proc/net/tcp{,6}: whatever address a coordinator listens on, its port shows there.
pub fn listening_ports() -> Vec<u16> {
    let mut ports = Vec::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = fs::read_to_string(f) {
            ports.extend(parse_listening(&text));
        }
    }
    ports
}

/// The local ports of the LISTEN (state 0A) lines of a /proc/net/tcp table.
fn parse_listening(text: &str) -> Vec<u16> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let local = f.nth(1)?;
            let state = f.nth(1)?;
            if state != "0A" {
                return None;
            }
            u16::from_str_radix(local.rsplit(':').next()?, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_ports_are_read_from_proc_net_tcp_lines() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1E73 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1
   1: 0100007F:9C40 0100007F:1E73 01 00000000:00000000 00:00000000 00000000     0        0 1235 1
   2: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 0 0 0 0 0 0 1";
        assert_eq!(parse_listening(t), vec![0x1e73, 0x1f90]);
        assert!(parse_listening("").is_empty());
    }

    #[test]
    fn stale_areas_and_old_temporaries_are_swept_live_ones_kept() {
        let d = std::env::temp_dir().join(format!("dmtcp-sweep-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        for n in ["dmtcpSharedArea.7779", "dmtcpSharedArea.40000", "other.file", ".dmtcpSharedArea.1.tmp-1-2"] {
            fs::write(d.join(n), b"x").unwrap();
        }
        assert_eq!(sweep_stale(&d, &[7779]), 1);
        let mut left: Vec<String> =
            fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        // A fresh temporary may be a writer at work: kept until it is a minute old.
        assert_eq!(left, [".dmtcpSharedArea.1.tmp-1-2", "dmtcpSharedArea.7779", "other.file"]);
        fs::remove_dir_all(&d).unwrap();
    }
}
