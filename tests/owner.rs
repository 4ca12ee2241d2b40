//! Only the owner commands a computation (issue 13): another local user's `dmtcp_command` and
//! `dmtcp_launch` are refused by the coordinator with a message naming its owner, and the
//! computation is untouched. Needs two users: run as root (as CI does), the other user is
//! `tester`.
use crate::util::*;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn another_users_command_and_launch_are_refused_and_the_computation_goes_on() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // As in ckpt::checkpoint_and_restart_work_for_an_unprivileged_user: CI runs as root.
        eprintln!("another_users_command_and_launch_are_refused: needs root to act as a second user; not run");
        return;
    }
    require_tester();
    let coord = Coordinator::start(&[]);
    let mut prog = coord.launch(&c_program("sleeper", false), &[]);
    prog.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = prog.spawn().unwrap();
    assert!(wait_until(Duration::from_secs(20), || coord.peers() == 1));

    // The other user gets our binary and a folder of its own.
    let d = TempDir::new("owner");
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::copy(dmtcp(), d.join("dmtcp")).unwrap();
    std::fs::copy(c_program("hello", false), d.join("hello")).unwrap();
    let as_tester = |script: &str| {
        let mut c = Command::new("su");
        c.args(["tester", "-s", "/bin/sh", "-c", script])
            .env("H", d.path())
            .env("P", coord.port.to_string())
            .env_remove("DMTCP_COORD_PORT");
        run_for(&mut c, Duration::from_secs(60))
    };
    for cmd in ["--kill", "--quit", "--checkpoint", "--status"] {
        let out = as_tester(&format!("cd \"$H\"; HOME=\"$H\" ./dmtcp command -p \"$P\" {cmd}"));
        assert_eq!(out.status.code(), Some(2), "{cmd} as tester: {}{}", stdout(&out), stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("refused") && err.contains("belongs to user root (uid 0)"), "{cmd}: {err}");
    }
    let out = as_tester("cd \"$H\"; HOME=\"$H\" TMPDIR=\"$H\" ./dmtcp launch -j -p \"$P\" ./hello");
    assert_ne!(out.status.code(), Some(0), "launch as tester joined root's coordinator: {}", stdout(&out));
    assert!(stderr(&out).contains("another user's"), "{}", stderr(&out));

    // Nothing happened to the computation; its owner still commands it.
    assert_eq!(coord.peers(), 1);
    assert!(child.try_wait().unwrap().is_none(), "the program was killed");
    let out = coord.command(&["--kill"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(wait_until(Duration::from_secs(20), || child.try_wait().unwrap().is_some()));
}
