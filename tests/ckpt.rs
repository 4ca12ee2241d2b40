//! Checkpoint and restart, for real: C programs built by the tests are launched, checkpointed
//! mid-run, killed, restarted from their images, and their final results compared with an
//! uninterrupted run of the same program, through several checkpoint/restart cycles.
use crate::util::*;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Spawns `c` with stdout on a pipe (output "to the outside", as from a terminal or a shell
/// pipeline), copied into `out` by a thread.
fn spawn_piped(c: &mut Command, out: &Path) -> Child {
    c.stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut from = child.stdout.take().unwrap();
    let mut to = File::create(out).unwrap();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
    });
    child
}

/// A computation under a private coordinator, driven through checkpoint/kill/restart cycles.
pub struct Cycle {
    pub coord: Coordinator,
    pub work: TempDir,
    pub ckdir: PathBuf,
    child: Option<Child>,
    outputs: Vec<PathBuf>,
}

impl Cycle {
    pub fn launch<A: AsRef<OsStr>>(program: &Path, args: &[A], extra_launch: &[&str]) -> Cycle {
        Cycle::launch_n(program, args, extra_launch, 1)
    }

    /// Like `launch`, for a computation of `peers` processes.
    pub fn launch_n<A: AsRef<OsStr>>(program: &Path, args: &[A], extra_launch: &[&str], peers: usize) -> Cycle {
        let cy = Cycle::start(program, args, extra_launch);
        cy.wait_running(peers);
        cy
    }

    /// Like `launch`, for a computation whose processes come and go (its count at any moment
    /// is not known): waits only until some process runs.
    pub fn launch_churning<A: AsRef<OsStr>>(program: &Path, args: &[A], extra_launch: &[&str]) -> Cycle {
        let cy = Cycle::start(program, args, extra_launch);
        cy.wait_some_running();
        cy
    }

    fn start<A: AsRef<OsStr>>(program: &Path, args: &[A], extra_launch: &[&str]) -> Cycle {
        let work = TempDir::new("ckpt");
        let ckdir = work.join("ckpt");
        std::fs::create_dir_all(&ckdir).unwrap();
        let coord = Coordinator::start(&["--ckptdir", ckdir.to_str().unwrap()]);
        let out = work.join("out-0.txt");
        let mut c = role("launch");
        c.args(["--join-coordinator", "--coord-port", &coord.port.to_string()])
            .args(extra_launch)
            .arg(program)
            .args(args)
            .env("DMTCP_CHECKPOINT_DIR", &ckdir)
            .current_dir(work.path())
            .stdin(Stdio::null())
            .stderr(File::create(work.join("err-0.txt")).unwrap());
        let child = spawn_piped(&mut c, &out);
        Cycle { coord, work, ckdir, child: Some(child), outputs: vec![out] }
    }

    fn wait_some_running(&self) {
        let ok = wait_until(Duration::from_secs(30), || {
            let t = stdout(&self.coord.command(&["--status"]));
            t.contains("RUNNING=yes") && !t.contains("NUM_PEERS=0")
        });
        assert!(ok, "the computation is not running:\n{}", self.diagnostics());
    }

    pub fn wait_running(&self, peers: usize) {
        let ok = wait_until(Duration::from_secs(30), || {
            let out = self.coord.command(&["--status"]);
            let t = stdout(&out);
            t.contains(&format!("NUM_PEERS={peers}")) && t.contains("RUNNING=yes")
        });
        assert!(
            ok,
            "computation not running with {peers} peers:\n{}\n{}",
            stdout(&self.coord.command(&["--status"])),
            self.diagnostics()
        );
    }

    pub fn diagnostics(&self) -> String {
        let mut s = String::new();
        for entry in std::fs::read_dir(self.work.path()).unwrap().flatten() {
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "txt") {
                s += &format!("--- {}:\n{}\n", p.display(), std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
        s
    }

    pub fn images(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.ckdir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy();
                n.starts_with("ckpt_") && n.ends_with(".dmtcp")
            })
            .collect();
        v.sort();
        v
    }

    /// Pid of the launcher or restarter we spawned (outside the namespace).
    pub fn root_pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// `--bcheckpoint`, which must succeed.
    pub fn checkpoint(&self) {
        let out = self.coord.command(&["--bcheckpoint"]);
        assert!(out.status.success(), "checkpoint failed: {}{}\n{}", stdout(&out), stderr(&out), self.diagnostics());
    }

    /// Kills the computation and waits for its launcher or restarter to exit.
    pub fn kill(&mut self) {
        let out = self.coord.command(&["--kill"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let mut child = self.child.take().unwrap();
        let pid = child.id() as i32;
        assert!(
            wait_until(Duration::from_secs(20), || matches!(child.try_wait(), Ok(Some(_)))),
            "pid {pid} did not exit after --kill"
        );
        assert!(wait_until(Duration::from_secs(10), || self.coord.peers() == 0));
    }

    /// Waits for the launcher or restarter to exit after the computation ended by itself.
    pub fn reap(&mut self) {
        let mut child = self.child.take().unwrap();
        assert!(
            wait_until(Duration::from_secs(20), || matches!(child.try_wait(), Ok(Some(_)))),
            "the computation did not end"
        );
    }

    /// Restarts from the current images.
    pub fn restart(&mut self, peers: usize) {
        let images = self.images();
        assert!(!images.is_empty(), "no images in {}", self.ckdir.display());
        let mut c = role("restart");
        c.args(["--join-coordinator", "--coord-port", &self.coord.port.to_string()]).args(&images);
        self.restart_with(c, peers);
    }

    /// Restarts from the current images, for a computation whose processes come and go (its
    /// count at any moment is not known): waits only until some process runs again.
    pub fn restart_churning(&mut self) {
        let images = self.images();
        assert!(!images.is_empty(), "no images in {}", self.ckdir.display());
        let mut c = role("restart");
        c.args(["--join-coordinator", "--coord-port", &self.coord.port.to_string()]).args(&images);
        let k = self.outputs.len();
        let out = self.work.join(format!("out-{k}.txt"));
        c.current_dir(self.work.path())
            .stdin(Stdio::null())
            .stderr(File::create(self.work.join(format!("err-{k}.txt"))).unwrap());
        self.child = Some(spawn_piped(&mut c, &out));
        self.outputs.push(out);
        self.wait_some_running();
    }

    /// Restarts with `c` (a `dmtcp_restart` or restart-script command line).
    pub fn restart_with(&mut self, mut c: Command, peers: usize) {
        let k = self.outputs.len();
        let out = self.work.join(format!("out-{k}.txt"));
        c.current_dir(self.work.path())
            .stdin(Stdio::null())
            .stderr(File::create(self.work.join(format!("err-{k}.txt"))).unwrap());
        self.child = Some(spawn_piped(&mut c, &out));
        self.outputs.push(out);
        self.wait_running(peers);
    }

    /// Waits for the computation to end; returns the last run's stdout.
    pub fn finish(&mut self) -> String {
        let mut child = self.child.take().unwrap();
        let mut status = None;
        wait_until(Duration::from_secs(120), || {
            status = child.try_wait().unwrap();
            status.is_some()
        });
        let Some(status) = status else {
            let _ = child.kill();
            panic!("computation did not finish\n{}", self.diagnostics());
        };
        assert!(status.success(), "computation ended with {status}\n{}", self.diagnostics());
        // The copying thread may still be draining the pipe.
        let last = self.outputs.last().unwrap().clone();
        wait_until(Duration::from_secs(5), || std::fs::read_to_string(&last).unwrap_or_default().contains("RESULT"));
        std::fs::read_to_string(&last).unwrap()
    }
}

impl Drop for Cycle {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = self.coord.command(&["--kill"]);
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn result_line(out: &str) -> String {
    out.lines().find(|l| l.starts_with("RESULT")).unwrap_or_else(|| panic!("no RESULT line in:\n{out}")).to_string()
}

/// The program's RESULT in an uninterrupted run under dmtcp_launch (a launched program runs
/// in a private user namespace, where even root's capability sets read differently).
pub fn uninterrupted<A: AsRef<OsStr>>(program: &Path, args: &[A], dir: &Path) -> String {
    let out = run_ok(
        role("launch").args(["--new-coordinator", "--coord-port", "0", "-q"]).arg(program).args(args).current_dir(dir),
    );
    result_line(&stdout(&out))
}

/// Launch, then `cycles` times: wait, checkpoint, kill, restart; then compare the result.
/// Launch `peers` processes, then `n` times: wait `settle`, checkpoint, kill, and restart with
/// `restart(cycle, k)`; returns the last run's output after checking its RESULT against an
/// uninterrupted run.
pub fn cycles_with<A: AsRef<OsStr>>(
    program: &Path,
    args: &[A],
    peers: usize,
    n: usize,
    settle: Duration,
    extra_launch: &[&str],
    mut restart: impl FnMut(&mut Cycle, usize),
) -> String {
    let reference = {
        let d = TempDir::new("ref");
        uninterrupted(program, args, d.path())
    };
    let mut cy = Cycle::launch_n(program, args, extra_launch, peers);
    for k in 0..n {
        std::thread::sleep(settle);
        cy.checkpoint();
        assert_eq!(cy.images().len(), peers, "{:?}\n{}", cy.images(), cy.diagnostics());
        cy.kill();
        restart(&mut cy, k);
        // The restored processes have read their images: the next cycle must use new ones.
        for img in cy.images() {
            std::fs::remove_file(img).unwrap();
        }
    }
    let last = cy.finish();
    assert_eq!(result_line(&last), reference, "\n{}", cy.diagnostics());
    last
}

/// One process through `n` checkpoint/kill/restart cycles (see `cycles_with`).
pub fn cycles<A: AsRef<OsStr>>(program: &Path, args: &[A], n: usize, settle: Duration, extra_launch: &[&str]) {
    let last = cycles_with(program, args, 1, n, settle, extra_launch, |cy, _| cy.restart(1));
    assert!(
        !last.starts_with("step 1\n") && !last.starts_with("tick 0\n") && !last.starts_with("slept 0\n"),
        "the restarted run began from the start:\n{last}"
    );
}

/// The binary takes its arguments as bytes: a program argument that is not UTF-8 (0xff) reaches
/// the program untouched, and is still there after two restarts.
#[test]
fn argument_byte_0xff_reaches_the_program_and_survives_restarts() {
    let p = c_program("arg_bytes", false);
    let args = [OsString::from("30"), OsString::from_vec(vec![b'a', 0xff, b'b'])];
    let last = cycles_with(&p, &args, 1, 2, Duration::from_millis(800), &[], |cy, _| cy.restart(1));
    assert!(last.contains("RESULT 61ff62"), "the program saw another argument:\n{last}");
    assert!(!last.starts_with("start"), "the restarted run began from the start:\n{last}");
}

#[test]
fn single_threaded_heap_stack_file_signals_survive_three_restarts_64() {
    let p = c_program("ckpt_single", false);
    cycles(&p, &["40", "data.bin", "48"], 3, Duration::from_millis(700), &[]);
}

#[test]
fn threads_in_mutex_condvar_barrier_with_tls_survive_three_restarts_64() {
    let p = c_program("ckpt_threads", false);
    cycles(&p, &["60"], 3, Duration::from_millis(500), &[]);
}

#[test]
fn sleep_across_checkpoint_keeps_its_time_64() {
    let p = c_program("ckpt_sleep", false);
    cycles(&p, &["5"], 2, Duration::from_millis(2500), &[]);
}

#[test]
fn single_threaded_heap_stack_file_signals_survive_three_restarts_32() {
    let p = c_program("ckpt_single", true);
    cycles(&p, &["40", "data.bin", "48"], 3, Duration::from_millis(700), &[]);
}

#[test]
fn threads_in_mutex_condvar_barrier_with_tls_survive_three_restarts_32() {
    let p = c_program("ckpt_threads", true);
    cycles(&p, &["60"], 3, Duration::from_millis(500), &[]);
}

#[test]
fn sleep_across_checkpoint_keeps_its_time_32() {
    let p = c_program("ckpt_sleep", true);
    cycles(&p, &["5"], 2, Duration::from_millis(2500), &[]);
}

#[test]
fn uncompressed_images_restart_too_64() {
    let p = c_program("ckpt_single", false);
    cycles(&p, &["30", "data.bin", "16"], 2, Duration::from_millis(600), &["--no-gzip"]);
}

#[test]
fn restart_with_interval_checkpoints_again_by_itself() {
    let p = c_program("ckpt_single", false);
    let args = ["50", "data.bin", "8"];
    let reference = {
        let d = TempDir::new("ref");
        uninterrupted(&p, &args, d.path())
    };
    let mut cy = Cycle::launch(&p, &args, &[]);
    std::thread::sleep(Duration::from_millis(500));
    cy.checkpoint();
    cy.kill();
    let img = cy.images().pop().unwrap();
    let before = std::fs::metadata(&img).unwrap().modified().unwrap();
    let mut c = role("restart");
    c.args(["-j", "-p", &cy.coord.port.to_string(), "-i", "1"]).arg(&img);
    cy.restart_with(c, 1);
    let status = stdout(&cy.coord.command(&["--status"]));
    assert!(status.contains("CKPT_INTERVAL=1"), "{status}");
    assert!(
        wait_until(Duration::from_secs(6), || std::fs::metadata(&img).unwrap().modified().unwrap() > before),
        "no interval checkpoint after the restart"
    );
    assert_eq!(result_line(&cy.finish()), reference);
}

#[test]
fn program_owning_the_checkpoint_signal_is_still_checkpointed_64() {
    let p = c_program("ckpt_ownsig", false);
    cycles(&p, &["30"], 2, Duration::from_millis(600), &[]);
}

#[test]
fn another_checkpoint_signal_can_be_chosen_32() {
    let p = c_program("ckpt_ownsig", true);
    cycles(&p, &["30"], 2, Duration::from_millis(600), &["--ckpt-signal", "40"]);
}

#[test]
fn kcheckpoint_writes_images_then_ends_the_computation() {
    let p = c_program("ckpt_single", false);
    let args = ["40", "data.bin", "8"];
    let reference = {
        let d = TempDir::new("ref");
        uninterrupted(&p, &args, d.path())
    };
    let mut cy = Cycle::launch(&p, &args, &[]);
    std::thread::sleep(Duration::from_millis(600));
    let out = cy.coord.command(&["--kcheckpoint"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        wait_until(Duration::from_secs(20), || cy.coord.peers() == 0 && cy.images().len() == 1),
        "{}",
        cy.diagnostics()
    );
    cy.reap();
    cy.restart(1);
    assert_eq!(result_line(&cy.finish()), reference);
}

#[test]
fn launch_interval_checkpoints_by_itself() {
    let p = c_program("ckpt_single", false);
    let mut cy = Cycle::launch(&p, &["30", "data.bin", "8"], &["--interval", "1"]);
    assert!(
        wait_until(Duration::from_secs(6), || cy.images().len() == 1),
        "no interval checkpoint\n{}",
        cy.diagnostics()
    );
    let _ = cy.finish();
}

/// Nothing may need root: the same checkpoint, kill and restart, 64- and 32-bit, run by the
/// unprivileged user `tester` (when the tests run as root; CI creates that user, and without it
/// the test fails rather than pass unseen).
#[test]
fn checkpoint_and_restart_work_for_an_unprivileged_user() {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "checkpoint_and_restart_work_for_an_unprivileged_user: already unprivileged; every other test covers it"
        );
        return;
    }
    require_tester();
    let d = TempDir::new("unpriv");
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    for (src, name) in [
        (dmtcp(), "dmtcp"),
        (c_program("ckpt_single", false), "single"),
        (c_program("ckpt_threads", true), "threads32"),
    ] {
        std::fs::copy(src, d.join(name)).unwrap();
    }
    let script = r#"
        set -e
        cd "$H"; export HOME="$H" TMPDIR="$H"
        ./dmtcp coordinator --coord-port 0 --port-file pf --ckptdir "$H" -q </dev/null & C=$!
        while [ ! -s pf ]; do sleep 0.05; done
        export DMTCP_COORD_PORT=$(cat pf) DMTCP_CHECKPOINT_DIR="$H"
        ./dmtcp launch -j ./single 30 d.bin 8 > single.out 2>single.err & L1=$!
        ./dmtcp launch -j ./threads32 40 > threads.out 2>threads.err & L2=$!
        while ! ./dmtcp command -s | grep -q NUM_PEERS=2; do sleep 0.05; done
        sleep 1
        ./dmtcp command -bc
        ./dmtcp command -k
        wait $L1 $L2 || true
        ./dmtcp restart -j ckpt_*.dmtcp > restart.out 2>restart.err
        kill $C
        ./dmtcp launch --new-coordinator -p 0 -q ./single 30 d2.bin 8 > single.ref
        ./dmtcp launch --new-coordinator -p 0 -q ./threads32 40 > threads.ref
        echo done
    "#;
    let mut c = Command::new("su");
    c.args(["tester", "-s", "/bin/sh", "-c", script]).env("H", d.path());
    let out = run_for(&mut c, Duration::from_secs(120));
    let files = |n: &str| std::fs::read_to_string(d.join(n)).unwrap_or_default();
    let diag = format!(
        "{}\n{}\nrestart.err: {}\nsingle.err: {}",
        stdout(&out),
        stderr(&out),
        files("restart.err"),
        files("single.err")
    );
    assert!(out.status.success() && stdout(&out).contains("done"), "{diag}");
    // stdout was a regular file: the restarted programs go on writing into it.
    assert_eq!(result_line(&files("single.out")), result_line(&files("single.ref")), "{diag}");
    assert_eq!(result_line(&files("threads.out")), result_line(&files("threads.ref")), "{diag}");
    assert!(result_line(&files("single.out")).contains("ids_ok=1"), "{diag}");
}
