//! `dmtcp_nocheckpoint CMD [ARGS...]`: runs a command outside checkpoint control, as DMTCP's
//! binary of that name does. A process of a computation that execs it (our exec wrapper execs
//! our own tools plainly, without the preload library) leaves the computation at that exec;
//! `CMD` then runs with the user's own `LD_PRELOAD` (from `DMTCP_ORIG_LD_PRELOAD`, and never
//! our library) and without the variables that would make a later exec join it again, so
//! neither it nor its children are checkpointed. DMTCP also closes its fds 820-841; ours is
//! close-on-exec and is gone by then.
use crate::common::cli;
use dmtcp_proto::env as ev;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::process::Command;

const USAGE: &str = "\
Usage: dmtcp_nocheckpoint command [args...]

Runs command outside checkpoint control: it and its children are not part of the computation
of the process that runs it, and are not checkpointed.

Options:
  --help     show this help
  --version  show the version";

/// The `--help` text, which is also the man page's source (`man.rs`).
pub fn help() -> String {
    USAGE.to_string()
}

/// The variables our launcher and library set for the processes of a computation; a program
/// outside it has no use for them.
const OURS: [&str; 7] = [
    ev::ORIG_LD_PRELOAD,
    ev::SHARED_AREA,
    ev::HIJACK_LIBS,
    ev::HIJACK_LIBS_M32,
    ev::DLSYM_OFFSET,
    ev::DLSYM_OFFSET_M32,
    ev::BIN,
];

/// The user's `LD_PRELOAD`: `DMTCP_ORIG_LD_PRELOAD` when the launcher kept one, else the
/// current value, in both cases without any libdmtcp.so entry. None: unset it.
fn user_preload(orig: Option<&OsStr>, current: Option<&OsStr>) -> Option<OsString> {
    let value = orig.or(current)?;
    let kept: Vec<&[u8]> = value
        .as_bytes()
        .split(|&b| b == b':' || b == b' ')
        .filter(|e| !e.is_empty() && !e.ends_with(b"/libdmtcp.so") && *e != b"libdmtcp.so")
        .collect();
    if kept.is_empty() {
        None
    } else {
        Some(OsString::from_vec(kept.join(&b':')))
    }
}

pub fn main(args: &[OsString]) -> i32 {
    let Some(program) = args.first() else {
        eprintln!("dmtcp_nocheckpoint: no command given\n\n{USAGE}");
        return cli::EXIT_USAGE;
    };
    match program.to_str() {
        Some("--help") => {
            println!("{USAGE}");
            return 0;
        }
        Some("--version") => {
            println!("{}", cli::version_line("dmtcp_nocheckpoint"));
            return 0;
        }
        _ => {}
    }
    let mut cmd = Command::new(program);
    cmd.args(&args[1..]);
    let orig = std::env::var_os(ev::ORIG_LD_PRELOAD);
    let current = std::env::var_os("LD_PRELOAD");
    match user_preload(orig.as_deref(), current.as_deref()) {
        Some(v) => cmd.env("LD_PRELOAD", v),
        None => cmd.env_remove("LD_PRELOAD"),
    };
    for v in OURS {
        cmd.env_remove(v);
    }
    let err = cmd.exec();
    eprintln!("dmtcp_nocheckpoint: cannot run {}: {err}", program.to_string_lossy());
    if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pre(orig: Option<&str>, cur: Option<&str>) -> Option<String> {
        user_preload(orig.map(OsStr::new), cur.map(OsStr::new)).map(|v| v.to_string_lossy().into_owned())
    }

    #[test]
    fn the_users_preload_is_kept_and_ours_never() {
        assert_eq!(pre(Some("libm.so.6"), Some("/x/lib/dmtcp/libdmtcp.so:libm.so.6")), Some("libm.so.6".into()));
        assert_eq!(pre(None, Some("/x/lib/dmtcp/libdmtcp.so libfoo.so")), Some("libfoo.so".into()));
        assert_eq!(pre(None, Some("/x/lib/dmtcp/32/lib/dmtcp/libdmtcp.so")), None);
        assert_eq!(pre(None, None), None);
        assert_eq!(pre(Some(""), Some("libbar.so")), None, "the launcher's record wins: the user had none");
    }
}
