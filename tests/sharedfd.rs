//! Shared open file descriptions and the fds dmtcp cannot restore, for real.
//!
//! - A parent and a child inherit one log (opened without O_APPEND, as a shell's `> log`) and
//!   one input file, and write and read them in turn through the shared offsets, across two
//!   checkpoint/kill/restart cycles: after each restart both must again share one description,
//!   or their lines overwrite each other and records are read twice (64-bit, 32-bit, and a
//!   64-bit parent with a 32-bit child exec'd after fork).
//! - A netlink socket at fd 50: the checkpoint warns (coordinator log, `--bcheckpoint` text and
//!   `--json`), and after the restart fd 50 is a placeholder that fails reads and writes and
//!   keeps its number; with `dmtcp_launch --strict` the checkpoint fails with the same message,
//!   writes no image, and the program goes on.
use crate::ckpt::{cycles_with, result_line, uninterrupted};
use crate::util::*;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn shared_files(parent_m32: bool, child_m32: Option<bool>) {
    let p = c_program("sharedfd", parent_m32);
    let mut args = vec!["50".to_string()];
    if let Some(m32) = child_m32 {
        args.push(c_program("sharedfd", m32).to_str().unwrap().to_string());
    }
    let last = cycles_with(&p, &args, 2, 2, Duration::from_millis(900), &[], |cy, _| cy.restart(2));
    let r = result_line(&last);
    assert!(r.contains("lines=100 in_order=1 tail=0 bad=0 child=0 offset=1100"), "{r}\n{last}");
}

#[test]
fn parent_and_child_writing_and_reading_one_inherited_description_lose_no_line_64() {
    shared_files(false, None);
}

#[test]
fn parent_and_child_writing_and_reading_one_inherited_description_lose_no_line_32() {
    shared_files(true, None);
}

#[test]
fn a_64_bit_parent_and_its_exec_32_bit_child_still_share_one_description_after_restarts() {
    shared_files(false, Some(true));
}

/// A coordinator whose log we read (not quiet), a launched program, its restarts.
struct Run {
    coord: Child,
    port: u16,
    work: TempDir,
    child: Option<Child>,
    runs: usize,
}

impl Run {
    fn start(program: &Path, args: &[&str], launch_extra: &[&str]) -> Run {
        Run::start_with(program, args, launch_extra, &[])
    }

    fn start_with(program: &Path, args: &[&str], launch_extra: &[&str], coord_extra: &[&str]) -> Run {
        let work = TempDir::new("sharedfd");
        let pf = work.join("port");
        let coord = role("coordinator")
            .args(["--coord-port", "0", "--port-file"])
            .arg(&pf)
            .args(coord_extra)
            .arg("--ckptdir")
            .arg(work.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(work.join("coord.log")).unwrap())
            .spawn()
            .unwrap();
        let mut port = 0;
        assert!(wait_until(Duration::from_secs(10), || {
            port = std::fs::read_to_string(&pf).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
            port != 0
        }));
        let mut r = Run { coord, port, work, child: None, runs: 0 };
        let mut c = role("launch");
        c.args(["--join-coordinator", "--coord-port", &port.to_string()])
            .args(launch_extra)
            .arg(program)
            .args(args)
            .env("DMTCP_CHECKPOINT_DIR", r.work.path());
        r.spawn(c);
        r
    }

    fn spawn(&mut self, mut c: Command) {
        let k = self.runs;
        self.runs += 1;
        c.current_dir(self.work.path())
            .stdin(Stdio::null())
            .stdout(File::create(self.out(k)).unwrap())
            .stderr(File::create(self.work.join(format!("err-{k}.txt"))).unwrap());
        self.child = Some(c.spawn().unwrap());
        assert!(
            wait_until(Duration::from_secs(30), || {
                let t = stdout(&self.command(&["--status"]));
                t.contains("NUM_PEERS=1") && t.contains("RUNNING=yes")
            }),
            "not running\n{}",
            self.diagnostics()
        );
    }

    fn out(&self, k: usize) -> PathBuf {
        self.work.join(format!("out-{k}.txt"))
    }

    fn command(&self, args: &[&str]) -> std::process::Output {
        run(role("command").args(["--coord-port", &self.port.to_string()]).args(args))
    }

    fn images(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.work.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().ends_with(".dmtcp"))
            .collect();
        v.sort();
        v
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.work.join("coord.log")).unwrap_or_default()
    }

    fn diagnostics(&self) -> String {
        let mut s = format!("--- coordinator log:\n{}\n", self.log());
        for k in 0..self.runs {
            s += &format!("--- run {k} stdout:\n{}\n", std::fs::read_to_string(self.out(k)).unwrap_or_default());
            let err = std::fs::read_to_string(self.work.join(format!("err-{k}.txt"))).unwrap_or_default();
            s += &format!("--- run {k} stderr:\n{err}\n");
        }
        s
    }

    fn kill_and_restart(&mut self) {
        assert!(self.command(&["--kill"]).status.success());
        let mut child = self.child.take().unwrap();
        assert!(wait_until(Duration::from_secs(20), || matches!(child.try_wait(), Ok(Some(_)))));
        let mut c = role("restart");
        c.args(["--join-coordinator", "--coord-port", &self.port.to_string()]).args(self.images());
        self.spawn(c);
        for img in self.images() {
            std::fs::remove_file(img).unwrap();
        }
    }

    /// Waits for the program to end; its stdout (a regular file: the restarted program goes on
    /// writing into the first run's).
    fn finish(&mut self) -> String {
        let mut child = self.child.take().unwrap();
        let mut status = None;
        wait_until(Duration::from_secs(60), || {
            status = child.try_wait().unwrap();
            status.is_some()
        });
        assert!(status.is_some_and(|s| s.success()), "{status:?}\n{}", self.diagnostics());
        std::fs::read_to_string(self.out(0)).unwrap()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = self.command(&["--kill"]);
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.coord.kill();
        let _ = self.coord.wait();
    }
}

const WARNING: &str = "fd 50 (netlink socket, socket:[";

fn unsupported_fd_warns_and_becomes_a_placeholder(m32: bool) {
    let p = c_program("unsupported_fd", m32);
    let reference = {
        let d = TempDir::new("ref");
        uninterrupted(&p, &["40"], d.path())
    };
    let mut r = Run::start(&p, &["40"], &[]);
    for cycle in 0..2 {
        std::thread::sleep(Duration::from_millis(700));
        let out = r.command(&["--bcheckpoint"]);
        let text = stdout(&out) + &stderr(&out);
        assert!(out.status.success(), "{text}\n{}", r.diagnostics());
        assert!(
            text.contains("unsupported_fd") && text.contains(WARNING) && text.contains("cannot be restored"),
            "cycle {cycle}: the --bcheckpoint output names the process, the fd and its kind:\n{text}"
        );
        let json = stdout(&r.command(&["--bcheckpoint", "--json"]));
        assert!(
            json.contains("\"command_status\":\"DMT_COORD_SUCCESS\"")
                && json.contains("\"warnings\":[\"unsupported_fd-")
                && json.contains(WARNING),
            "{json}"
        );
        assert_eq!(r.images().len(), 1);
        if cycle == 1 {
            // A file that is gone at restart: dmtcp_restart says so and its fd gets a placeholder.
            std::fs::remove_file(r.work.join("held.txt")).unwrap();
        }
        r.kill_and_restart();
    }
    let restart_err = std::fs::read_to_string(r.work.join("err-2.txt")).unwrap();
    assert!(
        restart_err.contains("held.txt again") && restart_err.contains("fd 51 holds a placeholder"),
        "{restart_err}"
    );
    let log = r.log();
    assert!(
        log.matches(WARNING).count() >= 4 && log.contains("placeholder that fails every call"),
        "the coordinator's log warns at every checkpoint:\n{log}"
    );
    let last = r.finish();
    assert_eq!(result_line(&last), reference, "\n{}", r.diagnostics());
    let enotconn = "(Transport endpoint is not connected)";
    assert!(
        last.contains(&format!("read=-1 {enotconn} write=-1 {enotconn} open=1 new_fd_is_50=0")),
        "fd 50 fails every call and keeps its number after the restart:\n{last}"
    );
    assert!(last.contains(&format!("fd51 read=-1 {enotconn}")), "{last}");
}

#[test]
fn an_unsupported_fd_warns_at_checkpoint_and_is_a_failing_placeholder_after_restart_64() {
    unsupported_fd_warns_and_becomes_a_placeholder(false);
}

#[test]
fn an_unsupported_fd_warns_at_checkpoint_and_is_a_failing_placeholder_after_restart_32() {
    unsupported_fd_warns_and_becomes_a_placeholder(true);
}

/// `--strict` on `who` ("launch" or "coordinator"): the checkpoint fails with the warning's
/// message, no image is written, and the program goes on to its normal end.
fn strict_fails_the_checkpoint(who: &str) {
    let p = c_program("unsupported_fd", false);
    let reference = {
        let d = TempDir::new("ref");
        uninterrupted(&p, &["30"], d.path())
    };
    let strict: &[&str] = &["--strict"];
    let mut r =
        if who == "launch" { Run::start(&p, &["30"], strict) } else { Run::start_with(&p, &["30"], &[], strict) };
    std::thread::sleep(Duration::from_millis(500));
    let out = r.command(&["--bcheckpoint"]);
    let text = stdout(&out) + &stderr(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("checkpoint failed") && text.contains(WARNING) && text.contains("cannot be restored (--strict)"),
        "{text}"
    );
    let json = stdout(&r.command(&["--bcheckpoint", "--json"]));
    assert!(json.contains("DMT_COORD_CKPT_FAILED") && json.contains(WARNING), "{json}");
    assert!(r.images().is_empty(), "no image is written: {:?}", r.images());
    assert!(r.log().contains(WARNING) && r.log().contains("--strict"), "{}", r.log());
    // The computation runs on, and can be asked again.
    assert!(stdout(&r.command(&["--status"])).contains("NUM_PEERS=1"));
    let last = r.finish();
    assert_eq!(result_line(&last), reference, "\n{}", r.diagnostics());
    assert!(last.contains("(Resource temporarily unavailable)"), "fd 50 is still the real socket:\n{last}");
}

#[test]
fn strict_launch_makes_the_checkpoint_fail_with_the_message_and_the_program_goes_on() {
    strict_fails_the_checkpoint("launch");
}

#[test]
fn strict_coordinator_makes_the_checkpoint_fail_with_the_message_and_the_program_goes_on() {
    strict_fails_the_checkpoint("coordinator");
}
