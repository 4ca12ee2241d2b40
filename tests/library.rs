//! The preload library `libdmtcp.so`, 64- and 32-bit, driven through the real `dmtcp launch`,
//! `dmtcp command` and coordinator: registration, listing, kill, exec across architectures,
//! fork, a program that wraps `dlsym`, and the promise that a program under dmtcp sees exactly
//! what it would see without it (arguments, environment, stdio, exit status).
use crate::util::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// A background program whose stdout lines arrive on a channel; killed and reaped on drop.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Running {
    fn spawn(cmd: &mut Command) -> Running {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let lines = pipe_lines(child.stdout.take().unwrap());
        let stderr = pipe_lines(child.stderr.take().unwrap());
        Running { child, lines, stderr }
    }

    /// The next stdout line that starts with `prefix`, within WAIT.
    fn line(&self, prefix: &str) -> String {
        loop {
            match self.lines.recv_timeout(WAIT) {
                Ok(l) if l.starts_with(prefix) => return l,
                Ok(_) => {}
                Err(e) => panic!("no line starting with {prefix:?} ({e}); stderr: {}", self.stderr_text()),
            }
        }
    }

    /// The pid in a line `"<prefix> <pid>"`.
    fn pid(&self, prefix: &str) -> i32 {
        let l = self.line(prefix);
        l[prefix.len()..].trim().parse().unwrap_or_else(|_| panic!("bad line {l:?}"))
    }

    fn stderr_text(&self) -> String {
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }

    /// Waits for the exit status, within WAIT.
    fn wait(&mut self) -> std::process::ExitStatus {
        assert!(
            wait_until(WAIT, || self.child.try_wait().unwrap().is_some()),
            "program did not exit; stderr: {}",
            self.stderr_text()
        );
        self.child.wait().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pipe_lines(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(r).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

fn list(coord: &Coordinator) -> String {
    stdout(&coord.command(&["--list"]))
}

/// Waits until `--list` shows `prog` with real pid `pid` and the coordinator counts `peers`.
fn wait_listed(coord: &Coordinator, prog: &str, pid: i32, peers: usize) {
    let needle = format!(":{pid}]");
    let ok = wait_until(WAIT, || {
        let l = list(coord);
        coord.peers() == peers && l.lines().any(|line| line.contains(prog) && line.contains(&needle))
    });
    assert!(ok, "{prog} (pid {pid}) not listed with {peers} peers:\n{}", list(coord));
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Builds tests/c/dlsym_wrapper.c with -rdynamic, so that its `dlsym` interposes on every
/// library (as a program or plugin that wraps dlsym would).
fn dlsym_wrapper(m32: bool, dir: &TempDir) -> PathBuf {
    let out = dir.join(if m32 { "dlsym_wrapper-32" } else { "dlsym_wrapper-64" });
    let mut cmd = Command::new("gcc");
    cmd.args(["-O1", "-Wall", "-rdynamic"]);
    if m32 {
        cmd.arg("-m32");
    }
    cmd.arg("-o").arg(&out).arg(repo().join("tests/c/dlsym_wrapper.c")).arg("-ldl");
    run_ok(&mut cmd);
    out
}

/// The absolute paths of the 64- and 32-bit libdmtcp.so that launch preloads, read from the
/// initial environment of a launched program.
fn library_paths(coord: &Coordinator) -> (String, String) {
    let p = Running::spawn(&mut coord.launch(&c_program("sleeper", false), &[]));
    let pid = p.pid("ready");
    let host = host_pid(p.child.id() as i32, pid).expect("launched program not found among the launcher's descendants");
    let env = std::fs::read(format!("/proc/{host}/environ")).unwrap();
    let get = |k: &str| {
        env.split(|&c| c == 0)
            .find_map(|e| e.strip_prefix(format!("{k}=").as_bytes()).map(|v| String::from_utf8_lossy(v).into_owned()))
            .unwrap_or_else(|| panic!("{k} not in the launched program's environment"))
    };
    (get("DMTCP_HIJACK_LIBS"), get("DMTCP_HIJACK_LIBS_M32"))
}

#[test]
fn launched_64_and_32_bit_programs_are_counted_listed_and_killed() {
    let coord = Coordinator::start(&[]);
    let s64 = c_program("sleeper", false);
    let s32 = c_program("sleeper", true);
    let mut a = Running::spawn(&mut coord.launch(&s64, &[]));
    let mut b = Running::spawn(&mut coord.launch(&s32, &[]));
    let pa = a.pid("ready");
    let pb = b.pid("ready");
    wait_listed(&coord, &name(&s64), pa, 2);
    wait_listed(&coord, &name(&s32), pb, 2);
    run_ok(role("command").args(["--coord-port", &coord.port.to_string(), "--kill"]));
    // DMTCP's KILL_PEER handler ends the process with _exit(0).
    assert_eq!(a.wait().code(), Some(0));
    assert_eq!(b.wait().code(), Some(0));
    assert!(wait_until(WAIT, || coord.peers() == 0), "peers left after --kill:\n{}", list(&coord));
    assert_eq!(a.stderr_text(), "", "the library must be silent");
    assert_eq!(b.stderr_text(), "", "the library must be silent");
}

#[test]
fn program_sees_its_own_arguments_environment_stdio_and_exit_status() {
    let coord = Coordinator::start(&[]);
    for m32 in [false, true] {
        let hello = c_program("hello", m32);
        let args = ["a", "b c", "", "--coord-port", "-x"];
        let direct = run(Command::new(&hello)
            .args(args)
            .env("HELLO_VAR", "v=1")
            .env("HELLO_STATUS", "7")
            .env_remove("LD_PRELOAD"));
        let mut l = coord.launch(&hello, &args);
        let under = run(l.env("HELLO_VAR", "v=1").env("HELLO_STATUS", "7").env_remove("LD_PRELOAD"));
        assert_eq!(under.status.code(), Some(7), "{}", describe(&l, &under));
        assert_eq!(stdout(&under), stdout(&direct), "{}", describe(&l, &under));
        assert!(stdout(&under).contains("LD_PRELOAD=(unset)\n"));
        assert_eq!(stderr(&under), "", "{}", describe(&l, &under));
    }
    // A user's own LD_PRELOAD is what the program sees (64-bit: a library of its class).
    let hello = c_program("hello", false);
    let libm = "/lib/x86_64-linux-gnu/libm.so.6";
    if Path::new(libm).exists() {
        let mut l = coord.launch(&hello, &[]);
        let under = run(l.env("LD_PRELOAD", libm));
        assert!(under.status.success(), "{}", describe(&l, &under));
        assert!(stdout(&under).contains(&format!("LD_PRELOAD={libm}\n")), "{}", describe(&l, &under));
        assert_eq!(stderr(&under), "", "{}", describe(&l, &under));
    }
}

#[test]
fn a_program_that_wraps_dlsym_is_not_called_by_the_library() {
    let coord = Coordinator::start(&[]);
    let dir = TempDir::new("dlsym");
    for m32 in [false, true] {
        let w = dlsym_wrapper(m32, &dir);
        let other = c_program("sleeper", !m32);
        // The wrapper prints its count, then execs a sleeper of the other architecture through
        // our execvp wrapper, which must still find the real execvpe.
        let p = Running::spawn(coord.launch(&w, &[other.to_str().unwrap()]).env("DMTCP_LOG_LEVEL", "error"));
        assert_eq!(p.line("dlsym calls"), "dlsym calls before main: 0");
        let pid = p.pid("ready");
        wait_listed(&coord, &name(&other), pid, 1);
        drop(p);
        assert!(wait_until(WAIT, || coord.peers() == 0), "{}", list(&coord));
    }
}

#[test]
fn exec_across_architectures_keeps_the_process_registered() {
    let coord = Coordinator::start(&[]);
    for (from32, how) in
        [(false, "execve"), (true, "execv"), (false, "execvp"), (true, "execvpe"), (false, "fexecve"), (true, "execve")]
    {
        let execer = c_program("execer", from32);
        let target = c_program("sleeper", !from32);
        let p = Running::spawn(&mut coord.launch(&execer, &[how, target.to_str().unwrap()]));
        let pid = p.pid("ready");
        wait_listed(&coord, &name(&target), pid, 1);
        assert!(!list(&coord).contains(&name(&execer)), "{how}: the exec'd-away execer is still listed");
        drop(p);
        assert!(wait_until(WAIT, || coord.peers() == 0), "{}", list(&coord));
    }
}

#[test]
fn posix_spawn_child_joins_and_user_preload_survives_exec() {
    let coord = Coordinator::start(&[]);
    // posix_spawnp from a 32-bit parent to a 64-bit child: both registered.
    let execer = c_program("execer", true);
    let target = c_program("sleeper", false);
    let p = Running::spawn(&mut coord.launch(&execer, &["spawn", target.to_str().unwrap()]));
    let pid = p.pid("ready");
    wait_listed(&coord, &name(&target), pid, 2);
    assert!(list(&coord).contains(&name(&execer)), "{}", list(&coord));
    let _ = coord.command(&["--kill"]);
    drop(p);
    assert!(wait_until(WAIT, || coord.peers() == 0), "{}", list(&coord));

    // The LD_PRELOAD a program passes to exec is what the new program sees; unset stays unset.
    let hello = c_program("hello", true);
    let execer64 = c_program("execer", false);
    let mut l = coord.launch(&execer64, &["execvp", hello.to_str().unwrap()]);
    let out = run(l.env("EXECER_UNSET_PRELOAD", "1"));
    assert!(stdout(&out).contains("LD_PRELOAD=(unset)\n"), "{}", describe(&l, &out));
    assert!(stdout(&out).contains("bits=32\n"), "{}", describe(&l, &out));
    assert_eq!(stderr(&out), "", "{}", describe(&l, &out));
}

#[test]
fn forked_child_registers_as_its_own_process() {
    let coord = Coordinator::start(&[]);
    for m32 in [false, true] {
        let s = c_program("sleeper", m32);
        let p = Running::spawn(&mut coord.launch(&s, &["--fork"]));
        // "child <pid>" and "ready <pid>" come in either order.
        let (mut child, mut parent) = (0, 0);
        while child == 0 || parent == 0 {
            let l = p.line("");
            let v = |pre: &str| l.strip_prefix(pre).and_then(|x| x.trim().parse().ok()).unwrap_or(0);
            child = child.max(v("child "));
            parent = parent.max(v("ready "));
        }
        wait_listed(&coord, &name(&s), child, 2);
        wait_listed(&coord, &name(&s), parent, 2);
        let host_child = host_pid(p.child.id() as i32, child).expect("forked child not found");
        let _ = coord.command(&["--kill"]);
        assert!(wait_until(WAIT, || !alive(host_child) && coord.peers() == 0), "{}", list(&coord));
    }
}

#[test]
fn checkpoint_request_does_not_hang_or_disturb_the_program() {
    // Images go to the test's own folder, never into the folder the tests run from.
    let d = TempDir::new("ckreq");
    let coord = Coordinator::start(&["--ckptdir", d.path().to_str().unwrap()]);
    let s = c_program("sleeper", true);
    let p = Running::spawn(coord.launch(&s, &[]).env("DMTCP_CHECKPOINT_DIR", d.path()));
    let pid = p.pid("ready");
    wait_listed(&coord, &name(&s), pid, 1);
    // The command comes back at once; the program goes on, still registered, and its image
    // appears in the checkpoint folder.
    let out = coord.command(&["--checkpoint"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let image_written =
        || std::fs::read_dir(d.path()).unwrap().flatten().any(|e| e.file_name().to_string_lossy().ends_with(".dmtcp"));
    assert!(wait_until(WAIT, image_written), "no image in {}", d.path().display());
    assert!(alive(pid));
    wait_listed(&coord, &name(&s), pid, 1);
}

#[test]
fn without_a_coordinator_the_program_runs_with_one_line_on_stderr() {
    let coord = Coordinator::start(&[]);
    let (lib64, lib32) = library_paths(&coord);
    // A port nobody listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    for (m32, lib) in [(false, &lib64), (true, &lib32)] {
        let hello = c_program("hello", m32);
        let mut c = Command::new(&hello);
        c.arg("x")
            .env("LD_PRELOAD", lib)
            .env("DMTCP_COORD_HOST", "127.0.0.1")
            .env("DMTCP_COORD_PORT", port.to_string())
            .env("HELLO_STATUS", "3");
        let out = run(&mut c);
        assert_eq!(out.status.code(), Some(3), "{}", describe(&c, &out));
        assert!(
            stdout(&out).contains("arg[1]=x\n") && stdout(&out).contains("LD_PRELOAD=(unset)\n"),
            "{}",
            describe(&c, &out)
        );
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{}", describe(&c, &out));
        assert!(err.starts_with("dmtcp[") && err.contains("cannot reach the coordinator"), "{}", describe(&c, &out));

        // Preloaded outside dmtcp (no DMTCP_COORD_PORT): does nothing at all.
        let mut c = Command::new(&hello);
        c.env("LD_PRELOAD", lib).env_remove("DMTCP_COORD_PORT");
        let out = run(&mut c);
        assert!(out.status.success(), "{}", describe(&c, &out));
        assert!(stdout(&out).contains(&format!("LD_PRELOAD={lib}\n")), "{}", describe(&c, &out));
        assert_eq!(stderr(&out), "", "{}", describe(&c, &out));
    }
}

#[test]
fn losing_the_coordinator_leaves_the_program_running() {
    let mut coord = Coordinator::start(&[]);
    let s = c_program("sleeper", false);
    let p = Running::spawn(&mut coord.launch(&s, &[]));
    let pid = p.pid("ready");
    wait_listed(&coord, &name(&s), pid, 1);
    let _ = coord.child.kill();
    let _ = coord.child.wait();
    let mut err = String::new();
    assert!(
        wait_until(WAIT, || {
            err.push_str(&p.stderr_text());
            err.contains("lost contact with the coordinator")
        }),
        "no 'lost contact' line; stderr: {err}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(alive(pid), "the program must go on without the coordinator");
}

#[test]
fn vfork_then_exec_of_the_other_architecture_joins_the_computation() {
    let coord = Coordinator::start(&[]);
    for (parent32, child32) in [(false, true), (true, false)] {
        let v = c_program("vforker", parent32);
        let s = c_program("sleeper", child32);
        let p = Running::spawn(&mut coord.launch(&v, &[s.to_str().unwrap()]));
        let parent = p.pid("vforker ready");
        wait_listed(&coord, &name(&v), parent, 2);
        assert!(wait_until(WAIT, || list(&coord).contains(&name(&s))), "{}", list(&coord));
        let _ = coord.command(&["--kill"]);
        assert!(wait_until(WAIT, || coord.peers() == 0), "{}", list(&coord));
    }
}
