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

#[test]
fn a_second_user_cannot_read_images_scripts_port_files_or_shared_areas() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("a_second_user_cannot_read_images_scripts_port_files_or_shared_areas: needs root to act as a second user; not run");
        return;
    }
    require_tester();
    // Everything in folders the other user may enter and list, so that only the files' own
    // modes stand in the way.
    let d = TempDir::new("owner-files");
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let ck = d.join("ckpt");
    std::fs::create_dir(&ck).unwrap();
    std::fs::set_permissions(&ck, std::fs::Permissions::from_mode(0o755)).unwrap();
    let coord = Coordinator::start(&["--ckptdir", ck.to_str().unwrap()]);
    let launch_port = d.join("launch-port");
    let mut prog = role("launch");
    prog.args(["--join-coordinator", "--coord-port", &coord.port.to_string(), "--port-file"])
        .arg(&launch_port)
        .arg(c_program("sleeper", false))
        .env("DMTCP_CHECKPOINT_DIR", &ck)
        .env("DMTCP_TMPDIR", d.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = prog.spawn().unwrap();
    assert!(wait_until(Duration::from_secs(20), || coord.peers() == 1));
    let out = coord.command(&["--bcheckpoint"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&ck).unwrap().flatten().map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "dmtcp" || e == "sh"));
    assert!(files.iter().any(|p| p.extension().is_some_and(|e| e == "dmtcp")), "no image in {files:?}");
    files.push(coord.dir.join("port"));
    files.push(launch_port.clone());
    let areas: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("dmtcp-"))
        .flat_map(|e| std::fs::read_dir(e.path()).unwrap().flatten().map(|f| f.path()))
        .collect();
    assert!(!areas.is_empty(), "no shared area under {}", d.path().display());
    for e in std::fs::read_dir(d.path()).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with("dmtcp-") {
            let mode = e.metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "temporary folder {} is not owner-only", e.path().display());
        }
    }
    files.extend(areas);
    for f in &files {
        assert!(f.exists(), "{}", f.display());
        let out = run_for(
            Command::new("su").args(["tester", "-s", "/bin/sh", "-c", "cat \"$F\" >/dev/null"]).env("F", f),
            Duration::from_secs(30),
        );
        assert!(!out.status.success(), "user tester could read {}", f.display());
        assert!(stderr(&out).contains("Permission denied"), "{}: {}", f.display(), stderr(&out));
    }
    let _ = coord.command(&["--kill"]);
    assert!(wait_until(Duration::from_secs(20), || child.try_wait().unwrap().is_some()));
}
