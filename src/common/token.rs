//! The coordinator's secret for clients on other hosts (issue 13, "only the owner").
//!
//! On its own host the coordinator knows who connects (the client socket's uid, module
//! `coordinator::owner`). A connection from another host carries no such fact, so a coordinator
//! that listens beyond loopback (`--listen-host` / `--coord-host`) requires a secret token as a
//! client's first message. The token is 256 random bits from the kernel, written as 64 hex
//! digits into a file only its owner can read: `$DMTCP_COORD_TOKEN_FILE`, else
//! `$HOME/.dmtcp/coord-PORT.token` (a home folder shared between the hosts, as clusters have,
//! carries it to the other hosts; otherwise the user copies it or sets `DMTCP_COORD_TOKEN`).
//! A user who sets `DMTCP_COORD_TOKEN` for the coordinator chooses the token instead.
//!
//! Clients (`dmtcp_command`, `dmtcp_launch`, `dmtcp_restart` and the processes of the
//! computation) take `DMTCP_COORD_TOKEN`, else that file if it exists, and send it first. No
//! restart script, image or log line holds the token.
//!
//! The file is created owner-only from the start (mode 0600 at `open`, in a 0700 folder),
//! written under a temporary name and renamed into place, so no reader ever sees a partial or
//! group-readable token.
use dmtcp_proto::env as ev;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

/// Fewest characters a token may have (128 bits written in hex).
pub const MIN_LEN: usize = 32;
/// Most characters a token may have; a message payload this long is cheap to check.
pub const MAX_LEN: usize = 256;

/// Where the token of the coordinator on `port` is kept.
pub fn path(port: u16) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(ev::COORD_TOKEN_FILE).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME").filter(|v| !v.is_empty())?;
    Some(PathBuf::from(home).join(".dmtcp").join(format!("coord-{port}.token")))
}

/// Whether `t` can be a token: printable ASCII without spaces, of a sane length.
pub fn well_formed(t: &str) -> bool {
    (MIN_LEN..=MAX_LEN).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_graphic())
}

/// The token a client sends to the coordinator on `port`: `DMTCP_COORD_TOKEN`, else the token
/// file, else none (a client of a loopback coordinator needs none).
pub fn for_client(port: u16) -> Option<String> {
    if let Some(t) = std::env::var(ev::COORD_TOKEN).ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()) {
        return Some(t);
    }
    let text = fs::read_to_string(path(port)?).ok()?;
    let t = text.trim();
    well_formed(t).then(|| t.to_string())
}

/// 256 random bits from the kernel, in hex.
pub fn generate() -> io::Result<String> {
    let mut b = [0u8; 32];
    fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Writes `token` to `file`, owner-only from its creation, and returns the path.
pub fn write(file: &std::path::Path, token: &str) -> io::Result<()> {
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    match fs::DirBuilder::new().mode(0o700).recursive(true).create(dir) {
        Ok(()) => {}
        Err(e) => return Err(io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))),
    }
    // A folder someone else can write to (without the sticky bit) would let them swap the file
    // under us.
    let meta = fs::metadata(dir)?;
    let mode = meta.permissions().mode();
    let sticky = mode & 0o1000 != 0;
    let ours = meta.uid() == nix::unistd::geteuid().as_raw() && mode & 0o022 == 0;
    if !(sticky || ours) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a folder only you can write to; choose another with {}",
                dir.display(),
                ev::COORD_TOKEN_FILE
            ),
        ));
    }
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let res = (|| {
        let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(token.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        fs::rename(&tmp, file)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res.map_err(|e| io::Error::new(e.kind(), format!("cannot write {}: {e}", file.display())))
}

/// Compares two tokens in time that does not depend on where they first differ.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_is_256_bits_of_hex_and_differs_each_time() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(well_formed(&a));
        assert_ne!(a, b);
    }

    #[test]
    fn short_long_or_spaced_tokens_are_not_well_formed() {
        assert!(!well_formed("abc"));
        assert!(!well_formed(&"a".repeat(MAX_LEN + 1)));
        assert!(!well_formed(&format!("{} x", "a".repeat(40))));
        assert!(well_formed(&"a".repeat(MIN_LEN)));
    }

    #[test]
    fn same_compares_whole_tokens() {
        assert!(same(b"abcd", b"abcd"));
        assert!(!same(b"abcd", b"abce"));
        assert!(!same(b"abcd", b"abc"));
        assert!(!same(b"", b"a"));
    }

    #[test]
    fn the_token_file_is_owner_only_and_complete() {
        let d = std::env::temp_dir().join(format!("dmtcp-token-test-{}", std::process::id()));
        let f = d.join("sub").join("coord-1.token");
        write(&f, "0123456789abcdef0123456789abcdef").unwrap();
        let m = fs::metadata(&f).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(f.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(fs::read_to_string(&f).unwrap(), "0123456789abcdef0123456789abcdef\n");
        // Writing again replaces it whole.
        write(&f, "ffffffffffffffffffffffffffffffff").unwrap();
        assert_eq!(fs::read_to_string(&f).unwrap().trim(), "ffffffffffffffffffffffffffffffff");
        fs::remove_dir_all(&d).unwrap();
    }
}
