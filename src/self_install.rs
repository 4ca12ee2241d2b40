//! `dmtcp self-install --prefix P`: lays out the installation tree of the seed document, with
//! the binary, its role symlinks and the payloads of both architectures:
//!
//! ```text
//! P/bin/dmtcp  P/bin/dmtcp_{launch,coordinator,command,restart} -> dmtcp  P/bin/mtcp_restart
//! P/lib/dmtcp/libdmtcp.so  P/lib/dmtcp/32/bin/mtcp_restart  P/lib/dmtcp/32/lib/dmtcp/libdmtcp.so
//! P/include/dmtcp.h  (DMTCP's C API, for programs that call it)
//! P/share/man/man1/{dmtcp,dmtcp_launch,dmtcp_coordinator,dmtcp_command,dmtcp_restart,
//!   dmtcp_nocheckpoint}.1
//! ```
//!
//! Every file is replaced atomically, so running it again over a tree (even one in use) leaves a
//! correct tree.
use crate::common::cli::{self, EXIT_FAILURE};
use crate::common::payloads::{self, PayloadError, Tree};
use crate::Role;
use argh::FromArgs;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

#[derive(FromArgs)]
#[argh(help_triggers("--help"))]
/// Install dmtcp into a prefix: dmtcp self-install --prefix P
struct SelfInstallArgs {
    /// installation prefix (files go to P/bin, P/lib/dmtcp and P/share/man/man1)
    #[argh(option, long = "prefix")]
    prefix: Option<PathBuf>,
    /// print only errors
    #[argh(switch, short = 'q', long = "quiet")]
    quiet: bool,
    /// print the version and exit
    #[argh(switch, long = "version")]
    version: bool,
}

const PROGRAM: &str = "dmtcp self-install";

/// include/dmtcp.h of this source tree.
const DMTCP_H: &str = include_str!("../include/dmtcp.h");

pub fn main(args: &[std::ffi::OsString]) -> i32 {
    let args = match cli::utf8(PROGRAM, args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let args = cli::normalize(&args, &[], &["--prefix"], false);
    let a: SelfInstallArgs = match cli::start(PROGRAM, &args, |a: &SelfInstallArgs| (a.version, a.quiet)) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let Some(prefix) = a.prefix else {
        eprintln!("{PROGRAM}: --prefix is required; see `{PROGRAM} --help`");
        return cli::EXIT_USAGE;
    };
    match install(&prefix) {
        Ok(()) => {
            log::info!("installed into {}", prefix.display());
            0
        }
        Err(e) => {
            log::error!("cannot install into {}: {e}", prefix.display());
            EXIT_FAILURE
        }
    }
}

fn install(prefix: &Path) -> Result<(), PayloadError> {
    let at = |p: &Path| {
        let p = p.to_path_buf();
        move |e| PayloadError::Io(p, e)
    };
    let prefix = if prefix.is_absolute() {
        prefix.to_path_buf()
    } else {
        std::env::current_dir().map_err(at(Path::new(".")))?.join(prefix)
    };
    let bin = prefix.join("bin");
    fs::create_dir_all(&bin).map_err(at(&bin))?;
    let exe = fs::read("/proc/self/exe").map_err(at(Path::new("/proc/self/exe")))?;
    let target = bin.join("dmtcp");
    // Writing onto ourselves is a no-op; anything else is replaced atomically.
    if fs::canonicalize(&target).ok() != fs::canonicalize("/proc/self/exe").ok() {
        payloads::write_atomic(&target, &exe, 0o755).map_err(at(&target))?;
    }
    for role in Role::ALL {
        let name = role.program();
        if name.contains(' ') {
            continue;
        }
        let link = bin.join(name);
        symlink_atomic(Path::new("dmtcp"), &link).map_err(at(&link))?;
    }
    // DMTCP's C API header for programs that call it (payloads/libdmtcp/src/api.rs).
    let include = prefix.join("include");
    fs::create_dir_all(&include).map_err(at(&include))?;
    let header = include.join("dmtcp.h");
    payloads::write_atomic(&header, DMTCP_H.as_bytes(), 0o644).map_err(at(&header))?;
    // The man pages, from the same option definitions as --help.
    let man1 = prefix.join("share/man/man1");
    fs::create_dir_all(&man1).map_err(at(&man1))?;
    for (name, roff) in crate::man::pages() {
        let page = man1.join(format!("{name}.1"));
        payloads::write_atomic(&page, roff.as_bytes(), 0o644).map_err(at(&page))?;
    }
    // Always rewrite the payloads: the tree must match this binary even if a stamp says so.
    Tree { root: prefix }.install()
}

/// Points `link` at `to`, replacing whatever is there, without a moment where it is missing.
fn symlink_atomic(to: &Path, link: &Path) -> io::Result<()> {
    let tmp = payloads::temp_name(link);
    std::os::unix::fs::symlink(to, &tmp)?;
    fs::rename(&tmp, link).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}
