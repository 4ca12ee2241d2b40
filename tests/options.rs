//! DMTCP 4's documented options and variables (issue 15): each one is accepted and does what
//! DMTCP documents, or what our design maps it to, or is explained in one line; never "unknown
//! option". Each test asserts the effect: where files go, what the log says, what the program
//! sees, and, where the library is involved, checkpoint/kill/restart cycles of a real program of
//! both word sizes whose result is compared with an uninterrupted run. Also: `dmtcp_command
//! --json` for every outcome, every role's `--help`, and the man pages rendered with `man -l`.
use crate::ckpt::{result_line, uninterrupted};
use crate::util::*;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// A computation under a private coordinator, with the environment and options of each step in
/// the test's hands (unlike `ckpt::Cycle`, which launches with fixed ones).
struct Job {
    coord: Coordinator,
    work: TempDir,
    ckdir: PathBuf,
    child: Option<Child>,
    runs: usize,
}

impl Job {
    fn launch(program: &Path, args: &[&str], opts: &[&str], env: &[(&str, &str)]) -> Job {
        let work = TempDir::new("opts");
        let ckdir = work.join("ckpt");
        std::fs::create_dir_all(&ckdir).unwrap();
        let coord = Coordinator::start(&["--ckptdir", ckdir.to_str().unwrap()]);
        let mut c = role("launch");
        c.args(["--join-coordinator", "--coord-port", &coord.port.to_string()]).args(opts).arg(program).args(args);
        c.env("DMTCP_CHECKPOINT_DIR", &ckdir).envs(env.iter().copied());
        let mut job = Job { coord, work, ckdir, child: None, runs: 0 };
        job.spawn(c);
        job.wait_running();
        job
    }

    fn spawn(&mut self, mut c: Command) {
        let k = self.runs;
        c.current_dir(self.work.path())
            .stdin(Stdio::null())
            .stdout(File::create(self.work.join(format!("out-{k}.txt"))).unwrap())
            .stderr(File::create(self.work.join(format!("err-{k}.txt"))).unwrap());
        self.child = Some(c.spawn().unwrap());
        self.runs += 1;
    }

    fn err(&self, k: usize) -> String {
        std::fs::read_to_string(self.work.join(format!("err-{k}.txt"))).unwrap_or_default()
    }

    fn diagnostics(&self) -> String {
        (0..self.runs)
            .map(|k| {
                let out = std::fs::read_to_string(self.work.join(format!("out-{k}.txt"))).unwrap_or_default();
                format!("--- run {k} stdout:\n{out}--- run {k} stderr:\n{}", self.err(k))
            })
            .collect()
    }

    fn running(&self) -> bool {
        let t = stdout(&self.coord.command(&["--status"]));
        t.contains("NUM_PEERS=1") && t.contains("RUNNING=yes")
    }

    fn wait_running(&self) {
        assert!(wait_until(Duration::from_secs(30), || self.running()), "not running:\n{}", self.diagnostics());
    }

    fn checkpoint(&self, env: &[(&str, &str)]) -> Output {
        let out = run(role("command")
            .args(["--coord-port", &self.coord.port.to_string(), "--bcheckpoint"])
            .envs(env.iter().copied()));
        assert!(out.status.success(), "checkpoint failed: {}\n{}", stderr(&out), self.diagnostics());
        out
    }

    fn kill(&mut self) {
        assert!(self.coord.command(&["--kill"]).status.success());
        let mut child = self.child.take().unwrap();
        assert!(wait_until(Duration::from_secs(20), || matches!(child.try_wait(), Ok(Some(_)))), "not killed");
        assert!(wait_until(Duration::from_secs(10), || self.coord.peers() == 0));
    }

    fn restart_cmd(&self, opts: &[&str], images: &[PathBuf]) -> Command {
        let mut c = role("restart");
        c.args(["--join-coordinator", "--coord-port", &self.coord.port.to_string()]).args(opts).args(images);
        c
    }

    /// Waits for the end; the program's whole output. Its stdout is a file, which a restart opens
    /// again at the offset of the checkpoint: out-0.txt holds the run from the start, whatever
    /// cycles it went through.
    fn finish(&mut self) -> String {
        let mut child = self.child.take().unwrap();
        let mut status = None;
        wait_until(Duration::from_secs(90), || {
            status = child.try_wait().unwrap();
            status.is_some()
        });
        let Some(status) = status else {
            let _ = child.kill();
            panic!("did not finish\n{}", self.diagnostics());
        };
        assert!(status.success(), "ended with {status}\n{}", self.diagnostics());
        std::fs::read_to_string(self.work.join("out-0.txt")).unwrap()
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = self.coord.command(&["--kill"]);
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Images (`ckpt_*.dmtcp`) directly in `dir`, sorted.
fn images_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
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

/// Subfolders of `dir`, sorted.
fn folders_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    v.sort();
    v
}

fn reference(program: &Path, args: &[&str]) -> String {
    let d = TempDir::new("ref");
    uninterrupted(program, args, d.path())
}

// ---------------------------------------------------------------- dmtcp_command --json

/// The fields of one JSON object, read by Python's json module (which refuses anything else),
/// as `key=value` lines.
fn json_fields(text: &str) -> String {
    let mut c = Command::new("python3");
    c.args([
        "-c",
        "import json,sys\nd=json.loads(sys.stdin.read())\nassert isinstance(d,dict)\nfor k,v in d.items(): print(f'{k}={json.dumps(v)}')",
    ]);
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "not one JSON object: {text:?}: {}", stderr(&out));
    stdout(&out)
}

/// `dmtcp_command --json ARGS` with `env`: asserts nothing on stderr, the exit code, and the
/// command and status; returns the fields.
fn json_command(args: &[&str], env: &[(&str, &str)], code: i32, command: &str, status: &str) -> String {
    let out = run(role("command").arg("--json").args(args).envs(env.iter().copied()));
    assert_eq!(stderr(&out), "", "stderr of --json {args:?}");
    assert_eq!(out.status.code(), Some(code), "exit code of --json {args:?}: {}", stdout(&out));
    assert_eq!(stdout(&out).lines().count(), 1, "one line: {}", stdout(&out));
    let f = json_fields(&stdout(&out));
    assert!(f.contains("schema_version=1\n"), "{f}");
    assert!(f.contains(&format!("command=\"{command}\"\n")), "--json {args:?}: {f}");
    assert!(f.contains(&format!("command_status=\"{status}\"\n")), "--json {args:?}: {f}");
    f
}

#[test]
fn command_json_answers_every_outcome_with_one_object_on_stdout() {
    let none = [("DMTCP_COORD_HOST", ""), ("DMTCP_COORD_PORT", "")];
    // No coordinator: the host as given, else localhost.
    let f = json_command(&["--coord-port", "1", "--status"], &none, 2, "DMT_STATUS", "DMT_COORD_NOT_FOUND");
    assert!(f.contains("coordinator_host=\"localhost\"\n") && f.contains("coordinator_port=1\n"), "{f}");
    let f = json_command(
        &["--coord-host", "bad\"host\nname", "--coord-port", "1", "--list"],
        &none,
        2,
        "DMT_LIST",
        "DMT_COORD_NOT_FOUND",
    );
    assert!(f.contains("coordinator_host=\"bad\\\"host\\nname\"\n"), "{f}");
    let f = json_command(
        &["-i", "7"],
        &[("DMTCP_COORD_HOST", "127.0.0.1"), ("DMTCP_COORD_PORT", "1")],
        2,
        "DMT_UPDATE_CKPT_INTERVAL",
        "DMT_COORD_NOT_FOUND",
    );
    assert!(f.contains("coordinator_host=\"127.0.0.1\"\n"), "{f}");
    // A log file that cannot be opened is no reason to write on stderr either.
    let bad_log = [("DMTCP_COORD_PORT", "1"), ("DMTCP_LOG_FILE", "/nonexistent-folder/x.log")];
    json_command(&["-s"], &bad_log, 2, "DMT_STATUS", "DMT_COORD_NOT_FOUND");
    // Usage errors: DMTCP's invalid command, exit 2, no usage text.
    for args in [&["--not-a-command"][..], &["-i"], &["i"], &["--coord-port"], &["-s", "-l"], &["bx"]] {
        json_command(args, &none, 2, "DMT_INVALID_COORDINATOR_COMMAND", "DMT_COORD_INVALID_COMMAND");
    }
    // Help, no command at all (DMTCP's default is its help) and the version succeed.
    for args in [&["--help"][..], &[], &["h"]] {
        json_command(args, &none, 0, "DMT_HELP", "DMT_COORD_SUCCESS");
    }
    let f = json_command(&["--version"], &none, 0, "DMT_VERSION", "DMT_COORD_SUCCESS");
    assert!(f.contains("version=\"dmtcp_command (dmtcp-rs)"), "{f}");

    // A coordinator without processes.
    let c = Coordinator::start(&[]);
    let p = c.port.to_string();
    let f = json_command(&["-p", &p, "--status"], &none, 0, "DMT_STATUS", "DMT_COORD_SUCCESS");
    for field in ["num_peers=0\n", "running=false\n", "checkpoint_interval=0\n", &format!("coordinator_port={p}\n")] {
        assert!(f.contains(field), "{field}: {f}");
    }
    let f = json_command(&["-p", &p, "--list"], &none, 0, "DMT_LIST", "DMT_COORD_SUCCESS");
    assert!(f.contains("workers=\"Client List:"), "{f}");
    let f = json_command(&["-p", &p, "--interval", "7"], &none, 0, "DMT_UPDATE_CKPT_INTERVAL", "DMT_COORD_SUCCESS");
    assert!(f.contains("checkpoint_interval=7\n"), "{f}");
    // Nothing to checkpoint: refused, in every spelling.
    for (args, name) in [
        ("--checkpoint", "DMT_CHECKPOINT"),
        ("--bcheckpoint", "DMT_BLOCKING_CKPT"),
        ("-bc", "DMT_BLOCKING_CKPT"),
        ("--kcheckpoint", "DMT_KILL_AFTER_CKPT"),
        ("-kc", "DMT_KILL_AFTER_CKPT"),
        ("-ck", "DMT_KILL_AFTER_CKPT"),
        ("-K", "DMT_KILL_AFTER_CKPT"),
    ] {
        json_command(&["-p", &p, args], &none, 2, name, "DMT_COORD_NOT_RUNNING");
    }
    json_command(&["-p", &p, "--kill"], &none, 0, "DMT_KILL", "DMT_COORD_SUCCESS");
    json_command(&["-p", &p, "--quit"], &none, 0, "DMT_QUIT", "DMT_COORD_SUCCESS");
    let mut c = c;
    assert!(wait_until(Duration::from_secs(10), || matches!(c.child.try_wait(), Ok(Some(_)))), "did not quit");

    // Without --json an unknown command is still a usage error with the usage on stderr.
    let out = run(role("command").arg("--not-a-command"));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Usage: dmtcp_command"), "{}", stderr(&out));
}

/// A checkpoint that a process fails (`--strict` and an fd that cannot be restored) is refused:
/// still one object on stdout, nothing on stderr, exit 2.
#[test]
fn command_json_reports_a_refused_checkpoint_without_stderr() {
    let p = c_program("unsupported_fd", false);
    let job = Job::launch(&p, &["300"], &["--strict"], &[]);
    let out = run(role("command").args(["--json", "--coord-port", &job.coord.port.to_string(), "--bcheckpoint"]));
    assert_eq!(stderr(&out), "");
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let f = json_fields(&stdout(&out));
    assert!(
        f.contains("command=\"DMT_BLOCKING_CKPT\"\n") && f.contains("command_status=\"DMT_COORD_CKPT_FAILED\"\n"),
        "{f}"
    );
    assert!(f.contains("error=\"checkpoint failed:"), "{f}");
}

// ---------------------------------------------------------------- launch

/// `--tmpdir` and DMTCP_TMPDIR: the shared-data area is made there.
#[test]
fn launch_tmpdir_and_dmtcp_tmpdir_hold_the_shared_data_area() {
    let p = c_program("hello", false);
    let c = Coordinator::start(&[]);
    let d = TempDir::new("tmpdir");
    let area = |base: &Path| -> Vec<PathBuf> {
        let Ok(rd) = std::fs::read_dir(base) else { return Vec::new() };
        rd.flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("dmtcp-"))
            .flat_map(|e| std::fs::read_dir(e.path()).unwrap().flatten().map(|f| f.path()))
            .filter(|f| f.file_name().unwrap().to_string_lossy() == format!("dmtcpSharedArea.{}", c.port))
            .collect()
    };
    let by_option = d.join("by-option");
    let out = run(role("launch")
        .args(["--join-coordinator", "--coord-port", &c.port.to_string(), "--tmpdir"])
        .arg(&by_option)
        .arg(&p));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(area(&by_option).len(), 1, "no shared-data area under {}", by_option.display());
    let by_env = d.join("by-env");
    std::fs::create_dir_all(&by_env).unwrap();
    let out = run(role("launch")
        .args(["--join-coordinator", "--coord-port", &c.port.to_string(), "-t"])
        .arg(d.join("short"))
        .arg(&p));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(area(&d.join("short")).len(), 1, "-t");
    let out = run(c.launch(&p, &[]).env("DMTCP_TMPDIR", &by_env));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(area(&by_env).len(), 1, "no shared-data area under DMTCP_TMPDIR={}", by_env.display());
}

/// `--enable-unique-checkpoint-filenames` (64-bit) and DMTCP_UNIQUE_CKPT_PLUGIN=1 (32-bit): every
/// generation in its own subfolder, earlier ones kept, a restarted computation's next generation
/// next to them (not inside its image's folder); two cycles, the result as uninterrupted.
fn unique_checkpoints_keep_every_generation(m32: bool) {
    let p = c_program("ckpt_sleep", m32);
    let args = ["6"];
    let expected = reference(&p, &args);
    let (opts, env): (&[&str], &[(&str, &str)]) = if m32 {
        (&[], &[("DMTCP_UNIQUE_CKPT_PLUGIN", "1")])
    } else {
        (&["--enable-unique-checkpoint-filenames"], &[])
    };
    let mut job = Job::launch(&p, &args, opts, env);
    std::thread::sleep(Duration::from_millis(1500));
    job.checkpoint(&[]);
    std::thread::sleep(Duration::from_millis(500));
    job.checkpoint(&[]);
    let gens = folders_in(&job.ckdir);
    assert_eq!(gens.len(), 2, "{gens:?}\n{}", job.diagnostics());
    assert!(images_in(&job.ckdir).is_empty(), "an image outside the generation folders");
    for (g, n) in gens.iter().zip(["_00001", "_00002"]) {
        let name = g.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("ckpt_") && name.ends_with(n), "{name}");
        assert_eq!(images_in(g).len(), 1, "{}", g.display());
    }
    job.kill();
    let c = job.restart_cmd(&[], &images_in(&gens[1]));
    job.spawn(c);
    job.wait_running();
    std::thread::sleep(Duration::from_millis(1000));
    job.checkpoint(&[]);
    let after = folders_in(&job.ckdir);
    assert_eq!(after.len(), 3, "{after:?}\n{}", job.diagnostics());
    assert!(folders_in(&gens[1]).is_empty(), "a generation inside {}", gens[1].display());
    let newest = after.iter().find(|g| !gens.contains(g)).unwrap().clone();
    job.kill();
    let c = job.restart_cmd(&[], &images_in(&newest));
    job.spawn(c);
    job.wait_running();
    let last = job.finish();
    assert_eq!(result_line(&last), expected, "\n{}", job.diagnostics());
    assert_eq!(last.matches("slept 0\n").count(), 1, "a run began from the start again:\n{last}");
}

#[test]
fn unique_checkpoint_filenames_keep_every_generation() {
    unique_checkpoints_keep_every_generation(false);
}

#[test]
fn unique_checkpoint_filenames_keep_every_generation_m32() {
    unique_checkpoints_keep_every_generation(true);
}

/// `--disable-unique-checkpoint-filenames` wins over DMTCP_UNIQUE_CKPT_PLUGIN=1: the image goes
/// into the checkpoint folder itself.
#[test]
fn disable_unique_checkpoint_filenames_wins_over_the_variable() {
    let p = c_program("ckpt_sleep", false);
    let job =
        Job::launch(&p, &["30"], &["--disable-unique-checkpoint-filenames"], &[("DMTCP_UNIQUE_CKPT_PLUGIN", "1")]);
    job.checkpoint(&[]);
    assert_eq!(images_in(&job.ckdir).len(), 1, "{}", job.diagnostics());
    assert!(folders_in(&job.ckdir).is_empty());
}

/// `--coord-logfile` of launch: the coordinator it starts (with --quiet) logs there; and
/// DMTCP_COORD_LOG_FILENAME for dmtcp_coordinator itself, in the foreground.
#[test]
fn coord_logfile_gets_the_log_of_the_coordinator() {
    let p = c_program("ckpt_sleep", false);
    let d = TempDir::new("coordlog");
    let log = d.join("coord.log");
    let pf = d.join("port");
    let mut child = role("launch")
        .args(["--new-coordinator", "--coord-port", "0", "--port-file"])
        .arg(&pf)
        .arg("--coord-logfile")
        .arg(&log)
        .arg(&p)
        .arg("2")
        .current_dir(d.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let read = |f: &Path| std::fs::read_to_string(f).unwrap_or_default();
    assert!(wait_until(Duration::from_secs(20), || read(&log).contains("joined")), "log: {}", read(&log));
    let port = read(&pf).trim().to_string();
    let out = run(role("command").args(["--coord-port", &port, "--bcheckpoint"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(child.wait().unwrap().success());
    // The coordinator quits with its last process (--exit-on-last) and says so in its log.
    assert!(wait_until(Duration::from_secs(10), || read(&log).contains("quitting")), "log: {}", read(&log));
    assert!(
        read(&log).lines().all(|l| l.starts_with("dmtcp_coordinator")),
        "each line names the coordinator: {}",
        read(&log)
    );

    let log2 = d.join("coord2.log");
    let pf2 = d.join("port2");
    let coord = role("coordinator")
        .args(["--coord-port", "0", "--quiet", "--port-file"])
        .arg(&pf2)
        .env("DMTCP_COORD_LOG_FILENAME", &log2)
        .current_dir(d.path())
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || read(&log2).contains("listening on")), "log: {}", read(&log2));
    let port2 = read(&pf2).trim().to_string();
    assert!(run(role("command").args(["--coord-port", &port2, "--quit"])).status.success());
    let out = coord.wait_with_output().unwrap();
    assert!(!stderr(&out).contains("listening on"), "--quiet keeps the terminal quiet: {}", stderr(&out));
    assert!(read(&log2).contains("quitting"), "{}", read(&log2));
}

/// Options, environment, and the line that must explain them.
type Explained = (&'static [&'static str], &'static [(&'static str, &'static str)], &'static str);

/// DMTCP's plugin options: the pid plugin maps to our pid namespace; --with-plugin and
/// DMTCP_PLUGIN are refused with the reason; every other one runs the program after one line
/// that says what became of it.
#[test]
fn plugin_and_file_options_are_mapped_refused_or_explained() {
    let p = c_program("opt_pid", false);
    let c = Coordinator::start(&[]);
    let launch = |opts: &[&str], env: &[(&str, &str)]| {
        run(role("launch")
            .args(["--join-coordinator", "--coord-port", &c.port.to_string()])
            .args(opts)
            .arg(&p)
            .envs(env.iter().copied()))
    };
    let out = launch(&[], &[]);
    assert_eq!(stdout(&out), "pid=2 bits=64\n", "{}", stderr(&out));
    for (opts, env) in [(&["--disable-pid-plugin"][..], &[][..]), (&[], &[("DMTCP_PID_PLUGIN", "0")])] {
        let out = launch(opts, env);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(!stdout(&out).starts_with("pid=2 "), "{opts:?} {env:?}: still in a pid namespace: {}", stdout(&out));
        assert!(stderr(&out).contains("pids will change after restart"), "{}", stderr(&out));
    }
    for (opts, env) in
        [(&["--with-plugin", "/opt/libdmtcp_x.so"][..], &[][..]), (&[], &[("DMTCP_PLUGIN", "/opt/libdmtcp_x.so")])]
    {
        let out = launch(opts, env);
        assert_eq!(out.status.code(), Some(1), "{opts:?} {env:?}: {}", stdout(&out));
        assert_eq!(stdout(&out), "", "the program ran");
        assert!(
            stderr(&out).contains("/opt/libdmtcp_x.so") && stderr(&out).contains("no plugin API"),
            "{}",
            stderr(&out)
        );
    }
    let explained: &[Explained] = &[
        (&["--allow-file-overwrite"], &[], "--allow-file-overwrite: no effect without --checkpoint-open-files"),
        (
            &[],
            &[("DMTCP_ALLOW_OVERWRITE_WITH_CKPTED_FILES", "1")],
            "--allow-file-overwrite: no effect without --checkpoint-open-files",
        ),
        (&["--modify-env"], &[], "--modify-env: always on"),
        (&["--pathvirt"], &[], "--pathvirt: always on at restart"),
        (&["--disable-all-plugins"], &[], "--disable-all-plugins: no effect"),
        (&["--no-plugins"], &[], "--disable-all-plugins: no effect"),
        (&[], &[("DMTCP_DISABLE_ALL_PLUGINS", "1")], "--disable-all-plugins: no effect"),
        (&["--kernel-loader"], &[], "--kernel-loader: no effect"),
        (&["--disable-event-plugin"], &[], "--disable-event-plugin: no effect"),
        (&[], &[("DMTCP_EVENT_PLUGIN", "0")], "DMTCP_EVENT_PLUGIN: no effect"),
        (&["--disable-alloc-plugin"], &[], "--disable-alloc-plugin: no effect"),
        (&["--disable-dl-plugin"], &[], "--disable-dl-plugin: no effect"),
        (&["--disable-ipc-plugin"], &[], "--disable-ipc-plugin: no effect"),
        (&["--disable-file-plugin"], &[], "--disable-file-plugin: no effect"),
        (&["--disable-pty-plugin"], &[], "--disable-pty-plugin: no effect"),
        (&["--disable-socket-plugin"], &[], "--disable-socket-plugin: no effect"),
        (&["--disable-ssh-plugin"], &[], "--disable-ssh-plugin: no effect"),
        (&["--disable-svipc-plugin"], &[], "--disable-svipc-plugin: no effect"),
        (&[], &[("DMTCP_SVIPC_PLUGIN", "0")], "DMTCP_SVIPC_PLUGIN: no effect"),
        (&["--disable-timer-plugin"], &[], "--disable-timer-plugin: no effect"),
    ];
    for (opts, env, line) in explained {
        let out = launch(opts, env);
        assert!(out.status.success(), "{opts:?} {env:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "pid=2 bits=64\n", "{opts:?} {env:?}: the program did not run as usual");
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().filter(|l| l.contains(line)).collect();
        assert_eq!(lines.len(), 1, "{opts:?} {env:?}: one line with {line:?} in:\n{}", stderr(&out));
        assert!(!stderr(&out).contains("Unrecognized"), "{}", stderr(&out));
    }
}

/// `-q` counts as in DMTCP (once: no notes; twice: no warnings), DMTCP_QUIET adds to it, and
/// DMTCP_LOG_LEVEL, when it parses, overrides both.
#[test]
fn quiet_count_and_log_level_follow_dmtcp_precedence() {
    let p = c_program("opt_pid", false);
    let c = Coordinator::start(&[]);
    let warned = |opts: &[&str], env: &[(&str, &str)]| {
        let out = run(role("launch")
            .args(["--join-coordinator", "--coord-port", &c.port.to_string(), "--kernel-loader"])
            .args(opts)
            .arg(&p)
            .env_remove("DMTCP_QUIET")
            .env_remove("DMTCP_LOG_LEVEL")
            .envs(env.iter().copied()));
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out).contains("warning: --kernel-loader")
    };
    assert!(warned(&[], &[]));
    assert!(warned(&["-q"], &[]), "one -q keeps warnings");
    assert!(!warned(&["-q", "-q"], &[]), "two -q keep errors only");
    assert!(!warned(&["--quiet"], &[("DMTCP_QUIET", "1")]), "-q adds to DMTCP_QUIET");
    assert!(!warned(&[], &[("DMTCP_QUIET", "2")]));
    assert!(warned(&[], &[("DMTCP_QUIET", "2"), ("DMTCP_LOG_LEVEL", "warn")]), "the level overrides quiet");
    assert!(!warned(&[], &[("DMTCP_LOG_LEVEL", "error")]));
    // Notes: dmtcp_command's report of an interval change.
    let noted = |env: &[(&str, &str)]| {
        let out = run(role("command")
            .args(["--coord-port", &c.port.to_string(), "-i", "0"])
            .env_remove("DMTCP_QUIET")
            .env_remove("DMTCP_LOG_LEVEL")
            .envs(env.iter().copied()));
        assert!(out.status.success());
        stderr(&out).contains("checkpoint interval")
    };
    assert!(noted(&[]));
    assert!(!noted(&[("DMTCP_QUIET", "1")]), "DMTCP_QUIET=1 drops notes");
    assert!(noted(&[("DMTCP_QUIET", "2"), ("DMTCP_LOG_LEVEL", "note")]));
    assert!(!noted(&[("DMTCP_LOG_LEVEL", "warn")]));
}

/// DMTCP_LOG_FILE: the tools and the library of every process append their lines to it, each
/// naming its program and pid; with DMTCP_LOG_LEVEL=trace the library's trace is there. Two
/// cycles with the variable set, the result as uninterrupted.
fn log_file_collects_every_process(m32: bool) {
    let p = c_program("ckpt_sleep", m32);
    let args = ["5"];
    let expected = reference(&p, &args);
    let d = TempDir::new("logfile");
    let log = d.join("all.log");
    let l = log.to_str().unwrap();
    let env = [("DMTCP_LOG_FILE", l), ("DMTCP_LOG_LEVEL", "trace")];
    let mut job = Job::launch(&p, &args, &[], &env);
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(1200));
        job.checkpoint(&env);
        job.kill();
        let mut c = job.restart_cmd(&[], &images_in(&job.ckdir));
        c.envs(env);
        job.spawn(c);
        job.wait_running();
        for img in images_in(&job.ckdir) {
            std::fs::remove_file(img).unwrap();
        }
    }
    let last = job.finish();
    assert_eq!(result_line(&last), expected, "\n{}", job.diagnostics());
    let text = std::fs::read_to_string(&log).unwrap();
    for who in ["dmtcp_launch[", "dmtcp_command[", "dmtcp_restart[", "dmtcp["] {
        assert!(text.lines().any(|l| l.starts_with(who)), "no line of {who} in:\n{text}");
    }
    assert!(text.contains("coordinator says DoCheckpoint"), "the library's trace:\n{text}");
    assert!(text.contains("checkpoint of 1 process written"), "{text}");
}

#[test]
fn log_file_collects_every_process_of_the_computation() {
    log_file_collects_every_process(false);
}

#[test]
fn log_file_collects_every_process_of_the_computation_m32() {
    log_file_collects_every_process(true);
}

// ---------------------------------------------------------------- restart

/// Strict checking: an image that belongs to another user is refused, with the option to
/// use; `--no-strict-checking` and DMTCP_DISABLE_STRICT_CHECKING=1 restart it (two cycles).
#[test]
fn restart_refuses_another_users_image_unless_no_strict_checking() {
    let p = c_program("ckpt_sleep", false);
    let args = ["5"];
    let expected = reference(&p, &args);
    let mut job = Job::launch(&p, &args, &[], &[]);
    for k in 0..2 {
        std::thread::sleep(Duration::from_millis(1200));
        job.checkpoint(&[]);
        job.kill();
        let images = images_in(&job.ckdir);
        for img in &images {
            std::os::unix::fs::chown(img, Some(65534), Some(65534)).unwrap();
        }
        let out = run(&mut job.restart_cmd(&[], &images));
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("belongs to uid 65534") && stderr(&out).contains("--no-strict-checking"),
            "{}",
            stderr(&out)
        );
        assert_eq!(job.coord.peers(), 0, "nothing started");
        let c = if k == 0 {
            job.restart_cmd(&["--no-strict-checking"], &images)
        } else {
            let mut c = job.restart_cmd(&[], &images);
            c.env("DMTCP_DISABLE_STRICT_CHECKING", "1");
            c
        };
        job.spawn(c);
        job.wait_running();
        for img in images {
            std::fs::remove_file(img).unwrap();
        }
    }
    let last = job.finish();
    assert_eq!(result_line(&last), expected, "\n{}", job.diagnostics());
}

/// `--debug-restart-pause N` (64-bit) and DMTCP_RESTART_PAUSE (32-bit): the restarted process
/// says its pid and stops (state T) before it resumes; the computation does not run until it
/// gets SIGCONT; then it goes on. Second cycle without a pause; the result as uninterrupted.
fn restart_pause_stops_before_resuming(m32: bool) {
    let p = c_program("ckpt_sleep", m32);
    let args = ["5"];
    let expected = reference(&p, &args);
    let mut job = Job::launch(&p, &args, &[], &[]);
    std::thread::sleep(Duration::from_millis(1200));
    job.checkpoint(&[]);
    job.kill();
    let images = images_in(&job.ckdir);
    let mut c =
        if m32 { job.restart_cmd(&[], &images) } else { job.restart_cmd(&["--debug-restart-pause", "2"], &images) };
    if m32 {
        c.env("DMTCP_RESTART_PAUSE", "1");
    }
    job.spawn(c);
    // The restored process writes to its own stderr: the launch's file, opened again.
    let said = |job: &Job| job.diagnostics().lines().find(|l| l.contains("paused before resuming")).map(str::to_string);
    assert!(wait_until(Duration::from_secs(30), || said(&job).is_some()), "no pause:\n{}", job.diagnostics());
    let line = said(&job).unwrap();
    let ns_pid: i32 = line.split("gdb -p ").nth(1).unwrap().split('`').next().unwrap().parse().unwrap();
    let root = job.child.as_ref().unwrap().id() as i32;
    let mut host = None;
    assert!(wait_until(Duration::from_secs(10), || {
        host = host_pid(root, ns_pid);
        host.is_some()
    }));
    let host = host.unwrap();
    let state = || {
        let st = std::fs::read_to_string(format!("/proc/{host}/stat")).unwrap_or_default();
        st.rsplit(')').next().and_then(|r| r.split_whitespace().next()).unwrap_or("").to_string()
    };
    assert!(wait_until(Duration::from_secs(10), || state() == "T"), "state {} of {host}", state());
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !job.running(),
        "the computation resumed while paused: state {} of {host}\n{}\n{}",
        state(),
        stdout(&job.coord.command(&["--list"])),
        job.diagnostics()
    );
    assert_eq!(state(), "T");
    assert!(Command::new("kill").args(["-CONT", &host.to_string()]).status().unwrap().success());
    job.wait_running();
    for img in images {
        std::fs::remove_file(img).unwrap();
    }
    std::thread::sleep(Duration::from_millis(1200));
    job.checkpoint(&[]);
    job.kill();
    let c = job.restart_cmd(&[], &images_in(&job.ckdir));
    job.spawn(c);
    job.wait_running();
    let last = job.finish();
    assert_eq!(result_line(&last), expected, "\n{}", job.diagnostics());
    assert_eq!(last.matches("slept 0\n").count(), 1, "a run began from the start again:\n{last}");
}

#[test]
fn debug_restart_pause_stops_before_resuming() {
    restart_pause_stops_before_resuming(false);
}

#[test]
fn debug_restart_pause_stops_before_resuming_m32() {
    restart_pause_stops_before_resuming(true);
}

/// dmtcp_restart's `--port-file`, `--tmpdir` (the shared-data area of the restarted computation)
/// and `--coord-logfile`, with a coordinator of its own; `_files` folders among the images are
/// skipped.
#[test]
fn restart_port_file_and_tmpdir() {
    let p = c_program("ckpt_sleep", false);
    let args = ["4"];
    let expected = reference(&p, &args);
    let mut job = Job::launch(&p, &args, &[], &[]);
    std::thread::sleep(Duration::from_millis(1200));
    job.checkpoint(&[]);
    job.kill();
    let mut images = images_in(&job.ckdir);
    let files_dir = job.ckdir.join("ckpt_x_files");
    std::fs::create_dir_all(&files_dir).unwrap();
    images.push(files_dir);
    let pf = job.work.join("restart.port");
    let tmp = job.work.join("rtmp");
    let log = job.work.join("restart-coord.log");
    let mut c = role("restart");
    c.args(["--new-coordinator", "--coord-port", "0", "--port-file"]).arg(&pf).arg("--tmpdir").arg(&tmp);
    c.arg("--coord-logfile").arg(&log).args(&images);
    job.spawn(c);
    let read = |f: &Path| std::fs::read_to_string(f).unwrap_or_default();
    assert!(wait_until(Duration::from_secs(20), || !read(&pf).trim().is_empty()), "{}", job.diagnostics());
    let port = read(&pf).trim().to_string();
    let area = || {
        std::fs::read_dir(&tmp)
            .into_iter()
            .flatten()
            .flatten()
            .flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten().flatten())
            .any(|f| f.file_name().to_string_lossy() == format!("dmtcpSharedArea.{port}"))
    };
    assert!(wait_until(Duration::from_secs(10), area), "no shared-data area under {}", tmp.display());
    let last = job.finish();
    assert_eq!(result_line(&last), expected, "\n{}", job.diagnostics());
    // The coordinator this restart started logged there (and quit with its last process).
    assert!(
        wait_until(Duration::from_secs(10), || read(&log).contains("restart complete")
            && read(&log).contains("quitting")),
        "{}",
        read(&log)
    );
}

// ---------------------------------------------------------------- help and man pages

/// Every option DMTCP 4 documents for each role (its --help texts and man pages).
const DMTCP_OPTIONS: &[(&str, &[&str])] = &[
    (
        "launch",
        &[
            "--coord-host",
            "--coord-port",
            "--port-file",
            "--join-coordinator",
            "--new-coordinator",
            "--any-coordinator",
            "--interval",
            "--gzip",
            "--no-gzip",
            "--ckptdir",
            "--ckpt-open-files",
            "--checkpoint-open-files",
            "--allow-file-overwrite",
            "--ckpt-signal",
            "--with-plugin",
            "--modify-env",
            "--pathvirt",
            "--disable-alloc-plugin",
            "--disable-dl-plugin",
            "--disable-ipc-plugin",
            "--disable-svipc-plugin",
            "--disable-timer-plugin",
            "--disable-pid-plugin",
            "--disable-event-plugin",
            "--disable-all-plugins",
            "--no-plugins",
            "--tmpdir",
            "--quiet",
            "--coord-logfile",
            "--kernel-loader",
            "--enable-unique-checkpoint-filenames",
            "--disable-unique-checkpoint-filenames",
            "--help",
            "--version",
        ],
    ),
    (
        "restart",
        &[
            "--coord-host",
            "--coord-port",
            "--port-file",
            "--join-coordinator",
            "--new-coordinator",
            "--any-coordinator",
            "--interval",
            "--no-strict-checking",
            "--ckptdir",
            "--restartdir",
            "--tmpdir",
            "--quiet",
            "--coord-logfile",
            "--debug-restart-pause",
            "--help",
            "--version",
        ],
    ),
    (
        "coordinator",
        &[
            "--coord-port",
            "--port-file",
            "--status-file",
            "--ckptdir",
            "--tmpdir",
            "--write-kv-data",
            "--exit-on-last",
            "--kill-after-ckpt",
            "--timeout",
            "--stale-timeout",
            "--daemon",
            "--interval",
            "--coord-logfile",
            "--quiet",
            "--help",
            "--version",
        ],
    ),
    (
        "command",
        &[
            "--coord-host",
            "--coord-port",
            "--json",
            "--status",
            "--list",
            "--checkpoint",
            "--bcheckpoint",
            "--kcheckpoint",
            "--interval",
            "--kill",
            "--quit",
            "--help",
            "--version",
        ],
    ),
];

#[test]
fn help_of_each_role_lists_every_dmtcp_option() {
    for (r, opts) in DMTCP_OPTIONS {
        let out = run(role(r).arg("--help"));
        assert!(out.status.success(), "{r} --help");
        let help = stdout(&out);
        for o in *opts {
            assert!(
                help.contains(&format!("{o} ")) || help.contains(&format!("{o}\n")),
                "{r} --help lacks {o}:\n{help}"
            );
        }
    }
}

/// self-install writes the man pages, made from the same definitions as --help, and `man -l`
/// renders each with every option its role's --help lists.
#[test]
fn man_pages_are_installed_and_render_every_option() {
    let d = TempDir::new("man");
    let out = run(role("self-install").arg("--prefix").arg(d.path()));
    assert!(out.status.success(), "{}", stderr(&out));
    let man1 = d.join("share/man/man1");
    for (page, r) in [
        ("dmtcp", None),
        ("dmtcp_launch", Some("launch")),
        ("dmtcp_coordinator", Some("coordinator")),
        ("dmtcp_command", Some("command")),
        ("dmtcp_restart", Some("restart")),
        ("dmtcp_nocheckpoint", Some("nocheckpoint")),
    ] {
        let file = man1.join(format!("{page}.1"));
        assert!(file.is_file(), "{} missing", file.display());
        let out = run(Command::new("man")
            .arg("-l")
            .arg(&file)
            .env("MANWIDTH", "300")
            .env("LC_ALL", "C")
            .env("MANPAGER", "cat"));
        assert!(out.status.success(), "man -l {}: {}", file.display(), stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("NAME") && text.contains("SYNOPSIS") && text.contains(page), "{text}");
        let help = match r {
            Some(r) => stdout(&run(role(r).arg("--help"))),
            None => stdout(&run(Command::new(dmtcp()).arg("--help"))),
        };
        // Every option of --help, as a word of the rendered page.
        let words: Vec<&str> = text.split(|c: char| c.is_whitespace() || c == ',').collect();
        for line in help.lines().filter(|l| l.starts_with("  -")) {
            for name in line.split_whitespace().take_while(|w| w.starts_with('-')) {
                let name = name.trim_end_matches(',');
                assert!(words.contains(&name), "{page}: {name} not in the rendered page:\n{text}");
            }
        }
        // The same text as `dmtcp man ROLE` (one source).
        let gen = run(Command::new(dmtcp()).arg("man").arg(r.unwrap_or("dmtcp")));
        assert_eq!(stdout(&gen), std::fs::read_to_string(&file).unwrap(), "{page}");
    }
}

// ---------------------------------------------------------------- modify-env

/// DMTCP's modify-env: a dmtcp_env.txt in the images' folder (first cycle) and the file that
/// DMTCP_ENV_FILE names (second cycle) change the restarted program's environment: `NAME=value`
/// with the restarting host's `$VAR` expanded, `NAME` removes; the program's own setenv works
/// afterwards; the rest of the environment is kept.
fn modify_env_changes_the_environment_at_restart(m32: bool) {
    let p = c_program("opt_env", m32);
    let args = ["14"];
    let env = [("OPT_TARGET", "before"), ("OPT_REMOVE", "remove-me"), ("OPT_KEEP", "kept"), ("OPT_KEEP_GONE", "x")];
    let mut job = Job::launch(&p, &args, &["--modify-env"], &env);
    assert!(job.err(0).contains("--modify-env: always on"), "{}", job.err(0));
    std::thread::sleep(Duration::from_millis(900));
    job.checkpoint(&[]);
    job.kill();
    std::fs::write(job.ckdir.join("dmtcp_env.txt"), "# set at restart\nOPT_TARGET=after-$OPT_HOST\nOPT_REMOVE\n")
        .unwrap();
    let images = images_in(&job.ckdir);
    let mut c = job.restart_cmd(&[], &images);
    c.env("OPT_HOST", "first");
    job.spawn(c);
    job.wait_running();
    for img in images {
        std::fs::remove_file(img).unwrap();
    }
    std::fs::remove_file(job.ckdir.join("dmtcp_env.txt")).unwrap();
    std::thread::sleep(Duration::from_millis(900));
    job.checkpoint(&[]);
    job.kill();
    let file = job.work.join("other-env.txt");
    std::fs::write(&file, "OPT_TARGET=\"second ${OPT_HOST}\"\n").unwrap();
    let mut c = job.restart_cmd(&[], &images_in(&job.ckdir));
    c.env("OPT_HOST", "host").env("DMTCP_ENV_FILE", &file);
    job.spawn(c);
    job.wait_running();
    let last = job.finish();
    assert_eq!(
        result_line(&last),
        "RESULT target=second host remove=(unset) keep=kept late=late home=set",
        "\n{}",
        job.diagnostics()
    );
    assert_eq!(last.matches("tick 0\n").count(), 1, "a run began from the start again:\n{last}");
    assert!(last.contains("tick 13\n"), "{last}");
}

#[test]
fn modify_env_changes_the_environment_at_restart_64() {
    modify_env_changes_the_environment_at_restart(false);
}

#[test]
fn modify_env_changes_the_environment_at_restart_m32() {
    modify_env_changes_the_environment_at_restart(true);
}
