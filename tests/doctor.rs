//! `dmtcp doctor` on this machine (every check launch and restart need passes, as root and as
//! `tester`), and with checks made to fail for real: user namespaces switched off by the
//! `user.max_user_namespaces` sysctl of a user namespace of the test's own (so that the rest of
//! the machine, and the tests running beside this one, keep theirs), a checkpoint folder that
//! cannot be made, a coordinator port held by another program, and what incremental
//! checkpoints need refused by a seccomp filter of the test's own (`tests/c/deny_syscall.c`).
use crate::util::*;
use std::io::Write;
use std::process::{Command, Output};

/// A port nobody listens on now (and that launch could take).
fn free_port() -> String {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string()
}

fn doctor(args: &[&str]) -> Output {
    run(role("doctor").args(args))
}

/// The check's JSON object, as text (`{"name":"x",...}`).
fn check<'a>(json: &'a str, name: &str) -> &'a str {
    let start = json.find(&format!("{{\"name\":\"{name}\"")).unwrap_or_else(|| panic!("no check {name} in {json}"));
    let end = json[start..].find('}').unwrap() + start;
    &json[start..=end]
}

fn required_checks_pass(json: &str) {
    for name in [
        "user-namespaces",
        "clone3-set-tid",
        "pr-set-mm-map",
        "time-namespace",
        "restorer-64bit",
        "restorer-32bit",
        "libc-32bit",
        "checkpoint-folder",
        "coordinator",
    ] {
        let c = check(json, name);
        assert!(c.contains("\"ok\":true") && c.contains("\"required\":true"), "{c}");
    }
}

#[test]
fn doctor_passes_every_check_launch_and_restart_need_here() {
    let d = TempDir::new("doctor");
    let out = doctor(&["--ckptdir", d.path().to_str().unwrap(), "--coord-port", &free_port()]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("launch and restart will work here"), "{}", stdout(&out));
    let out = doctor(&["--json", "--ckptdir", d.path().to_str().unwrap(), "--coord-port", &free_port()]);
    assert!(out.status.success(), "{}", stdout(&out));
    let j = stdout(&out);
    assert!(j.starts_with("{\"ok\":true,\"checks\":["), "{j}");
    required_checks_pass(&j);
    // The checks of later features are there, passing or not, and never required.
    for name in ["soft-dirty", "userfaultfd", "incremental"] {
        assert!(check(&j, name).contains("\"required\":false"), "{j}");
    }
}

/// The incremental check passes here (as tests/incremental.rs needs; unprivileged, as CI's
/// `tester` run shows), and fails, saying what is missing and that full images are written
/// then, when a seccomp filter of the test's own refuses each thing it needs: userfaultfd
/// itself, the UFFDIO_API ioctl (asynchronous write-protect), the PAGEMAP_SCAN ioctl. Optional:
/// the exit code stays 0 unless --strict.
#[test]
fn doctor_says_whether_incremental_checkpoints_work_and_what_is_missing() {
    let base = ["--json", "--ckptdir", "/tmp", "--coord-port"];
    let out = doctor(&[&base[..], &[&free_port()]].concat());
    let j = stdout(&out);
    let c = check(&j, "incremental");
    assert!(c.contains("\"ok\":true") && c.contains("incremental checkpoints work"), "{c}");
    let deny = c_program("deny_syscall", false);
    const SYS_USERFAULTFD: &str = "323";
    const SYS_IOCTL: &str = "16";
    for (rule, says) in [
        (&[SYS_USERFAULTFD, "38"][..], "no userfaultfd with UFFD_USER_MODE_ONLY: Function not implemented"),
        (
            &[SYS_IOCTL, "22", "0xC018AA3F"][..],
            "no asynchronous write-protect (UFFD_FEATURE_WP_ASYNC): Invalid argument",
        ),
        (&[SYS_IOCTL, "25", "0xC0606610"][..], "no PAGEMAP_SCAN ioctl on /proc/self/pagemap: Not a typewriter"),
    ] {
        let run_denied = |strict: bool| {
            let mut cmd = Command::new(&deny);
            cmd.args(rule).arg("--").arg(dmtcp()).arg("doctor").args(base).arg(free_port());
            if strict {
                cmd.arg("--strict");
            }
            run(&mut cmd)
        };
        let out = run_denied(false);
        assert!(out.status.success(), "{says}: optional\n{}\n{}", stdout(&out), stderr(&out));
        let j = stdout(&out);
        let c = check(&j, "incremental");
        assert!(c.contains("\"ok\":false") && c.contains("\"required\":false"), "{c}");
        assert!(c.contains(says) && c.contains("`--incremental` writes full images here"), "{says}: {c}");
        assert!(c.contains("Linux 6.7 or later"), "{c}");
        required_checks_pass(&j);
        assert_eq!(run_denied(true).status.code(), Some(2), "{says}: --strict fails on it");
    }
}

#[test]
fn doctor_passes_as_an_ordinary_user() {
    require_tester();
    let d = TempDir::new("doctor-tester");
    std::fs::set_permissions(d.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let exe = dmtcp();
    let cmd = format!("{} doctor --json --ckptdir {} --coord-port {}", exe.display(), d.path().display(), free_port());
    let out = run(Command::new("su").args(["tester", "-s", "/bin/sh", "-c", &cmd]).current_dir("/tmp"));
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    required_checks_pass(&stdout(&out));
}

#[test]
fn doctor_fails_with_the_sysctl_fix_when_user_namespaces_are_off() {
    // A user namespace of our own whose user.max_user_namespaces is 0: the real probe fails
    // with ENOSPC there, as on a machine where the sysctl is 0.
    let exe = dmtcp();
    let script = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces && exec {} doctor --json --ckptdir /tmp --coord-port {}",
        exe.display(),
        free_port()
    );
    let out = run(Command::new("unshare").args(["-U", "-r", "sh", "-c", &script]));
    assert_eq!(out.status.code(), Some(2), "{}\n{}", stdout(&out), stderr(&out));
    let j = stdout(&out);
    assert!(j.starts_with("{\"ok\":false"), "{j}");
    let c = check(&j, "user-namespaces");
    assert!(c.contains("\"ok\":false") && c.contains("No space left on device"), "{c}");
    assert!(c.contains("sysctl -w user.max_user_namespaces="), "{c}");
    // What depends on it says so instead of failing for the same reason again.
    assert!(check(&j, "clone3-set-tid").contains("fix user-namespaces first"), "{j}");
    // The rest of the machine is unchanged: the same checks pass outside.
    assert!(doctor(&["--ckptdir", "/tmp", "--coord-port", &free_port()]).status.success());
}

#[test]
fn doctor_fails_on_a_checkpoint_folder_that_cannot_be_made() {
    let out = doctor(&["--ckptdir", "/proc/self/no-such-folder", "--coord-port", &free_port()]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let t = stdout(&out);
    let line = t.lines().find(|l| l.contains("checkpoint-folder")).unwrap();
    assert!(line.starts_with("FAIL") && line.contains("/proc/self/no-such-folder"), "{t}");
    assert!(t.contains("fix: make it, or choose another folder with --ckptdir"), "{t}");
    assert!(t.contains("1 of "), "{t}");
}

#[test]
fn doctor_checks_the_coordinator_at_the_address_launch_would_use() {
    // A real coordinator answers.
    let c = Coordinator::start(&[]);
    let out = doctor(&["--ckptdir", "/tmp", "--coord-port", &c.port.to_string()]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("answers: 0 processes"), "{}", stdout(&out));
    // Another program on the port: not a coordinator, and launch could not start one there.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let _ = s.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n");
        }
    });
    let out = doctor(&["--ckptdir", "/tmp", "--coord-port", &port.to_string()]);
    t.join().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("does not answer as a dmtcp coordinator"), "{text}");
    assert!(text.contains("choose another one with --coord-port"), "{text}");
}

#[test]
fn doctor_help_lists_its_options() {
    let out = run_ok(role("doctor").arg("--help"));
    for o in ["--json", "--ckptdir", "--coord-host", "--coord-port", "--strict", "--quiet", "--version"] {
        assert!(stdout(&out).contains(o), "{o}: {}", stdout(&out));
    }
}
