//! Test helpers: the binary, temporary folders, commands with deadlines, C programs built for
//! 64 and 32 bits, and a private coordinator per test. On failure, helpers print the command,
//! its status and output.
#![allow(dead_code)]
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub fn dmtcp() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dmtcp"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh folder per test, removed when the test passes.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("dmtcp-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, s: impl AsRef<Path>) -> PathBuf {
        self.0.join(s)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            eprintln!("test folder kept: {}", self.0.display());
        }
    }
}

pub fn describe(cmd: &Command, out: &Output) -> String {
    format!(
        "command: {:?}\nstatus: {}\nstdout:\n{}\nstderr:\n{}",
        cmd,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `cmd` to completion, killing it after `limit`; panics with details on a time-out.
pub fn run_for(cmd: &mut Command, limit: Duration) -> Output {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d2 = done.clone();
    let killer = std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < limit {
            if d2.load(std::sync::atomic::Ordering::SeqCst) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: plain kill(2) of our own child's pid.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        true
    });
    let out = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    if killer.join().unwrap() {
        panic!("timed out after {limit:?}\n{}", describe(cmd, &out));
    }
    out
}

pub fn run(cmd: &mut Command) -> Output {
    run_for(cmd, Duration::from_secs(60))
}

/// Runs and asserts success.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(out.status.success(), "expected success\n{}", describe(cmd, &out));
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `dmtcp <role> args...`, with a clean dmtcp environment.
pub fn role(role: &str) -> Command {
    let mut c = Command::new(dmtcp());
    c.arg(role);
    for v in ["DMTCP_COORD_HOST", "DMTCP_COORD_PORT", "DMTCP_CHECKPOINT_DIR", "DMTCP_GZIP", "DMTCP_SIGCKPT"] {
        c.env_remove(v);
    }
    c
}

/// Polls `f` until it returns true or `limit` passes.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` is a live process (a zombie counts as dead: nobody may reap it here).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s.rsplit(')').next().and_then(|r| r.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}

/// Builds tests/c/<name>.c for 64 bits (`m32` false) or 32 bits, once per test run.
pub fn c_program(name: &str, m32: bool) -> PathBuf {
    c_program_linked(name, m32, &[])
}

/// `c_program` linked with more libraries (`-l<lib>` each), e.g. ncurses.
pub fn c_program_linked(name: &str, m32: bool, libs: &[&str]) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<(String, bool), PathBuf>>> = OnceLock::new();
    let map = BUILT.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = map.get(&(name.to_string(), m32)) {
        return p.clone();
    }
    // In cargo's folder for integration-test files, so that runs do not pile up in /tmp.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c-programs");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("{name}{}", if m32 { "-32" } else { "-64" }));
    // Built under a name of our own and renamed, as several test binaries may build at once.
    let tmp = dir.join(format!(".{name}-{}-{}", if m32 { 32 } else { 64 }, std::process::id()));
    let src = repo().join("tests/c").join(format!("{name}.c"));
    let mut cmd = Command::new("gcc");
    cmd.args(["-O1", "-g", "-Wall", "-pthread"]);
    if m32 {
        cmd.arg("-m32");
    }
    cmd.arg("-o").arg(&tmp).arg(&src).arg("-ldl").args(libs.iter().map(|l| format!("-l{l}")));
    run_ok(&mut cmd);
    std::fs::rename(&tmp, &out).unwrap();
    map.insert((name.to_string(), m32), out.clone());
    out
}

/// A private coordinator on a free port, killed when dropped.
pub struct Coordinator {
    pub child: Child,
    pub port: u16,
    pub dir: TempDir,
}

impl Coordinator {
    pub fn start(extra: &[&str]) -> Coordinator {
        let dir = TempDir::new("coord");
        let pf = dir.join("port");
        let mut cmd = role("coordinator");
        cmd.args(["--coord-port", "0", "--quiet", "--port-file"]).arg(&pf).args(extra);
        if !extra.contains(&"--ckptdir") {
            // Restart scripts go into the test's folder, never into the current folder.
            cmd.arg("--ckptdir").arg(dir.path());
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let child = cmd.spawn().unwrap();
        let mut port = 0;
        assert!(
            wait_until(Duration::from_secs(10), || {
                port = std::fs::read_to_string(&pf).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
                port != 0
            }),
            "coordinator did not write its port file"
        );
        Coordinator { child, port, dir }
    }

    /// `dmtcp command -p PORT args...`
    pub fn command(&self, args: &[&str]) -> Output {
        run(role("command").args(["--coord-port", &self.port.to_string()]).args(args))
    }

    /// NUM_PEERS from `--status`.
    pub fn peers(&self) -> usize {
        let out = self.command(&["--status"]);
        stdout(&out)
            .lines()
            .find_map(|l| l.trim().strip_prefix("NUM_PEERS=").map(|v| v.trim().parse().unwrap()))
            .unwrap_or_else(|| panic!("no NUM_PEERS in {}", stdout(&out)))
    }

    /// `dmtcp launch --join-coordinator -p PORT program args...` in the background.
    pub fn launch(&self, program: &Path, args: &[&str]) -> Command {
        let mut c = role("launch");
        c.args(["--join-coordinator", "--coord-port", &self.port.to_string()]).arg(program).args(args);
        c
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        let _ = self.command(&["--kill"]);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The host pid of the process that sees itself as `ns_pid` inside the pid namespace of the
/// computation started by `root` (a launcher or restarter we spawned): searched among
/// `root`'s descendants by the last field of NSpid in /proc/<pid>/status.
pub fn host_pid(root: i32, ns_pid: i32) -> Option<i32> {
    let mut parent_of = Vec::new();
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(st) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let ppid = st.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).and_then(|p| p.parse::<i32>().ok());
        if let Some(ppid) = ppid {
            parent_of.push((pid, ppid));
        }
    }
    let descends = |mut p: i32| {
        for _ in 0..64 {
            if p == root {
                return true;
            }
            match parent_of.iter().find(|(c, _)| *c == p) {
                Some((_, pp)) if *pp > 0 => p = *pp,
                _ => return false,
            }
        }
        false
    };
    parent_of.iter().map(|(p, _)| *p).filter(|p| descends(*p)).find(|p| {
        std::fs::read_to_string(format!("/proc/{p}/status"))
            .ok()
            .and_then(|s| {
                s.lines().find(|l| l.starts_with("NSpid:")).map(|l| l.split_whitespace().last().map(str::to_string))
            })
            .flatten()
            .and_then(|v| v.parse::<i32>().ok())
            == Some(ns_pid)
    })
}

/// Tests run as root must also show that nothing needs root, as the user `tester`: a missing
/// user fails the test (with the command that creates it) instead of skipping it unseen.
pub fn require_tester() {
    let ok = Command::new("id").arg("tester").stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap().success();
    assert!(
        ok,
        "running as root but there is no user `tester` to run as: create it with `useradd -m tester` (.ci/run does)"
    );
}

/// Names in `dir` of temporary files (`*.tmp*`: an image being written, a script before its
/// rename) that a checkpoint or a killed writer may leave behind.
pub fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect()
}
