//! Only the owner, across hosts (issue 13): a coordinator that listens beyond loopback
//! (`--listen-host`) requires its secret token of every client from another host. The other
//! host is a network namespace (`netns::NetHost`); the token travels in a file of the owner
//! (`DMTCP_COORD_TOKEN_FILE`, as a shared home folder would carry it) or in
//! `DMTCP_COORD_TOKEN`.
use crate::ckpt::{result_line, uninterrupted};
use crate::netns::{can_build_hosts, NetHost};
use crate::util::*;
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct RemoteCoord {
    child: Child,
    host: String,
    port: u16,
    token_file: PathBuf,
    log: PathBuf,
}

impl RemoteCoord {
    fn start(listen: &str, d: &Path) -> RemoteCoord {
        let pf = d.join("port");
        let token_file = d.join("secret").join("coord.token");
        let log = d.join("coord-log.txt");
        let child = role("coordinator")
            .args(["--listen-host", listen, "--coord-port", "0", "--port-file"])
            .arg(&pf)
            .arg("--ckptdir")
            .arg(d)
            .env("DMTCP_COORD_TOKEN_FILE", &token_file)
            .env_remove("DMTCP_COORD_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut port = 0;
        assert!(wait_until(Duration::from_secs(10), || {
            port = std::fs::read_to_string(&pf).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
            port != 0
        }));
        RemoteCoord { child, host: listen.to_string(), port, token_file, log }
    }

    /// `dmtcp_command` against this coordinator with `token` as DMTCP_COORD_TOKEN_FILE.
    fn command(&self, token_file: &Path, args: &[&str]) -> Command {
        let mut c = role("command");
        c.args(["-h", &self.host, "-p", &self.port.to_string()])
            .args(args)
            .env("DMTCP_COORD_TOKEN_FILE", token_file)
            .env_remove("DMTCP_COORD_TOKEN");
        c
    }

    fn status_here(&self) -> String {
        // The owner on the coordinator's own host is known by uid: no token needed.
        stdout(&run_ok(&mut self.command(Path::new("/nonexistent"), &["--status"])))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for RemoteCoord {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_client_on_another_host_needs_the_coordinators_token() {
    if !can_build_hosts() {
        eprintln!("a_client_on_another_host_needs_the_coordinators_token: needs root to build a host; not run");
        return;
    }
    let h = NetHost::new(0);
    let d = TempDir::new("remote");
    let coord = RemoteCoord::start(&h.outer_addr, d.path());
    let token = std::fs::read_to_string(&coord.token_file).unwrap().trim().to_string();
    assert_eq!(token.len(), 64, "{token:?}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&coord.token_file), 0o600, "the token file is readable by others");
    assert_eq!(mode(coord.token_file.parent().unwrap()), 0o700);

    // From the other host: no token, a wrong one, then the right one (file or variable).
    let none = run(&mut h.exec(&coord.command(Path::new("/nonexistent"), &["--status"])));
    assert_eq!(none.status.code(), Some(2), "{}", describe(&h.exec(&coord.command(Path::new("/x"), &[])), &none));
    assert!(
        stderr(&none).contains("needs its token") && stderr(&none).contains("DMTCP_COORD_TOKEN"),
        "{}",
        stderr(&none)
    );
    let wrong_file = d.join("wrong.token");
    std::fs::write(&wrong_file, "0".repeat(64)).unwrap();
    let wrong = run(&mut h.exec(&coord.command(&wrong_file, &["--status"])));
    assert_eq!(wrong.status.code(), Some(2), "{}", stderr(&wrong));
    assert!(stderr(&wrong).contains("not its token"), "{}", stderr(&wrong));
    let good = run(&mut h.exec(&coord.command(&coord.token_file, &["--status"])));
    assert!(good.status.success(), "{}", stderr(&good));
    assert!(stdout(&good).contains("NUM_PEERS=0"), "{}", stdout(&good));
    let mut by_var = coord.command(Path::new("/nonexistent"), &["--status"]);
    by_var.env("DMTCP_COORD_TOKEN", &token);
    assert!(run(&mut h.exec(&by_var)).status.success());
    let log = coord.log();
    assert!(log.contains(&format!("refused the connection from {}", h.addr)), "{log}");
    assert!(!log.contains(&token), "the coordinator logged its token:\n{log}");

    // A program started on the other host without the token runs on, outside the computation.
    let hello = c_program("hello", false);
    let mut lone = role("launch");
    lone.args(["-j", "-h", &h.outer_addr, "-p", &coord.port.to_string()])
        .arg(&hello)
        .env("DMTCP_COORD_TOKEN_FILE", "/nonexistent")
        .env_remove("DMTCP_COORD_TOKEN");
    let out = run(&mut h.exec(&lone));
    assert_ne!(out.status.code(), Some(0), "a launch without the token joined: {}", stdout(&out));
    assert!(stderr(&out).contains("token"), "{}", stderr(&out));
    assert!(coord.status_here().contains("NUM_PEERS=0"));

    // The coordinator's token file goes when it quits.
    run_ok(&mut coord.command(Path::new("/nonexistent"), &["--quit"]));
    assert!(wait_until(Duration::from_secs(10), || !coord.token_file.exists()), "the token file was left behind");
}

#[test]
fn a_computation_on_another_host_checkpoints_and_restarts_there_with_the_token() {
    if !can_build_hosts() {
        eprintln!("a_computation_on_another_host_checkpoints_and_restarts_there: needs root to build a host; not run");
        return;
    }
    let h = NetHost::new(1);
    let d = TempDir::new("remote-ckpt");
    let ckdir = d.join("ckpt");
    std::fs::create_dir_all(&ckdir).unwrap();
    let coord = RemoteCoord::start(&h.outer_addr, &ckdir);
    let token = std::fs::read_to_string(&coord.token_file).unwrap().trim().to_string();
    let prog = c_program("ckpt_single", false);
    let args = ["30", "data.bin", "48"];
    let reference = {
        let r = TempDir::new("remote-ref");
        uninterrupted(&prog, &args, r.path())
    };
    let join = ["-j", "-h", coord.host.as_str(), "-p"];
    let port = coord.port.to_string();
    let on_host = |mut c: Command, k: usize| -> Child {
        c.env("DMTCP_COORD_TOKEN_FILE", &coord.token_file)
            .env_remove("DMTCP_COORD_TOKEN")
            .env("DMTCP_CHECKPOINT_DIR", &ckdir)
            .current_dir(d.path());
        h.exec(&c)
            .stdin(Stdio::null())
            .stdout(File::options().create(true).append(true).open(d.join(format!("out-{k}.txt"))).unwrap())
            .stderr(File::create(d.join(format!("err-{k}.txt"))).unwrap())
            .spawn()
            .unwrap()
    };
    let running = || {
        wait_until(Duration::from_secs(30), || {
            let s = coord.status_here();
            s.contains("NUM_PEERS=1") && s.contains("RUNNING=yes")
        })
    };
    let mut launch = role("launch");
    launch.args(join).arg(&port).arg(&prog).args(args);
    let mut child = on_host(launch, 0);
    assert!(running(), "the program on the other host did not join: {}", coord.log());
    for k in 1..=2 {
        std::thread::sleep(Duration::from_millis(600));
        run_ok(&mut coord.command(Path::new("/nonexistent"), &["--bcheckpoint"]));
        run_ok(&mut coord.command(Path::new("/nonexistent"), &["--kill"]));
        assert!(wait_until(Duration::from_secs(20), || matches!(child.try_wait(), Ok(Some(_)))));
        let images: Vec<PathBuf> = std::fs::read_dir(&ckdir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "dmtcp"))
            .collect();
        assert_eq!(images.len(), 1, "{images:?}");
        // The restart script names the coordinator, never its secret.
        for e in std::fs::read_dir(&ckdir).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "sh") {
                let text = std::fs::read_to_string(e.path()).unwrap();
                assert!(!text.contains(&token), "the restart script holds the token");
            }
        }
        let mut restart = role("restart");
        restart.args(join).arg(&port).args(&images);
        child = on_host(restart, k);
        assert!(running(), "the restart on the other host did not join: {}", coord.log());
        for img in images {
            std::fs::remove_file(img).unwrap();
        }
    }
    assert!(wait_until(Duration::from_secs(60), || matches!(child.try_wait(), Ok(Some(_)))));
    // Its stdout is a file, which the restarted process reopens and goes on writing.
    let out = std::fs::read_to_string(d.join("out-0.txt")).unwrap();
    assert_eq!(result_line(&out), reference, "{out}");
    assert_eq!(out.matches("step 1\n").count(), 1, "a restarted run began from the start:\n{out}");
    assert_eq!(coord.log().matches("restart complete").count(), 2, "{}", coord.log());
}
