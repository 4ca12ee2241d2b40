//! The coordinator and `dmtcp_command`: each test runs its own coordinator on a free port and
//! talks to it with the real `dmtcp command` and with fake workers, raw TCP streams that speak
//! the protocol through `dmtcp_proto::Msg`.
use crate::util::{role, run, stderr, stdout, wait_until, TempDir};
use dmtcp_proto::barrier::Barrier;
use dmtcp_proto::{status, Cmd, Kind, Msg, WorkerState, FLAG_EXIT_AFTER_CKPT, MAX_EXTRA, MSG_SIZE};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// A coordinator of our own, killed when dropped.
struct Coord {
    child: Child,
    port: u16,
    port_file: PathBuf,
    dir: TempDir,
}

impl Coord {
    fn start(extra: &[&str]) -> Coord {
        Self::start_with(extra, Stdio::null())
    }

    fn start_with(extra: &[&str], stdin: Stdio) -> Coord {
        let dir = TempDir::new("coordinator");
        let port_file = dir.join("port");
        let mut cmd = role("coordinator");
        cmd.args(["--coord-port", "0", "--port-file"]).arg(&port_file).arg("--ckptdir").arg(dir.path());
        cmd.args(extra).stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn the coordinator");
        let mut port = 0;
        let ok = wait_until(Duration::from_secs(10), || {
            port = std::fs::read_to_string(&port_file).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
            port != 0 || matches!(child.try_wait(), Ok(Some(_)))
        });
        assert!(ok && port != 0, "the coordinator did not write its port file ({:?})", child.try_wait());
        Coord { child, port, port_file, dir }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn command_cmd(&self, args: &[&str]) -> Command {
        let mut c = role("command");
        c.args(["--coord-port", &self.port.to_string()]).args(args);
        c
    }

    fn command(&self, args: &[&str]) -> Output {
        run(&mut self.command_cmd(args))
    }

    fn status(&self) -> String {
        let out = self.command(&["--status"]);
        assert!(out.status.success(), "status failed: {}", stderr(&out));
        stdout(&out)
    }

    fn peers(&self) -> usize {
        let s = self.status();
        s.lines()
            .find_map(|l| l.trim().strip_prefix("NUM_PEERS=").map(|v| v.trim().parse().unwrap()))
            .unwrap_or_else(|| panic!("no NUM_PEERS in {s}"))
    }

    /// Waits for the coordinator to exit by itself.
    fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let mut st = None;
        wait_until(limit, || {
            st = self.child.try_wait().unwrap();
            st.is_some()
        });
        st
    }

    fn worker(&self, prog: &str, pid: i32) -> Fake {
        Fake::join(self.port, prog, pid, 0)
    }
}

impl Drop for Coord {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fake worker process: a raw connection speaking the coordinator protocol.
struct Fake {
    s: TcpStream,
    accept: Msg,
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the coordinator");
    s.set_nodelay(true).unwrap();
    s
}

fn send(s: &mut TcpStream, msg: &Msg, extra: &[u8]) {
    let mut m = *msg;
    m.extra_len = extra.len() as u32;
    let mut b = m.encode().to_vec();
    b.extend_from_slice(extra);
    s.write_all(&b).expect("send to the coordinator");
}

/// The next message, or None if nothing arrives within `limit`.
fn recv_within(s: &mut TcpStream, limit: Duration) -> Option<(Msg, Vec<u8>)> {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut hdr = [0u8; MSG_SIZE];
    match s.read_exact(&mut hdr) {
        Ok(()) => {}
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return None,
        Err(e) => panic!("reading from the coordinator: {e}"),
    }
    let m = Msg::decode(&hdr).expect("a well-formed message from the coordinator");
    let mut extra = vec![0u8; m.extra_len as usize];
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.read_exact(&mut extra).unwrap();
    Some((m, extra))
}

/// Whether the coordinator closes `s` within `limit` (data it sends first is skipped).
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return false,
            Err(e) => panic!("read: {e}"),
        }
    }
}

impl Fake {
    fn join(port: u16, prog: &str, pid: i32, interval: u32) -> Fake {
        let mut s = connect(port);
        let mut m = Msg::new(Kind::NewWorker);
        m.pid = pid;
        m.state = WorkerState::Running as u32;
        if interval != 0 {
            m.interval = interval;
        }
        send(&mut s, &m, format!("fakehost\0{prog}\0").as_bytes());
        let (accept, _) = recv_within(&mut s, Duration::from_secs(10)).expect("an answer to NewWorker");
        assert_eq!(accept.kind, Kind::Accept, "NewWorker of {prog} refused: {accept:?}");
        Fake { s, accept }
    }

    fn send(&mut self, kind: Kind, state: WorkerState, name: &str, extra: &[u8]) {
        let mut m = Msg::new(kind).with_name(name.as_bytes());
        m.state = state as u32;
        m.vpid = self.accept.vpid;
        m.comp_id = self.accept.comp_id;
        send(&mut self.s, &m, extra);
    }

    /// The next message, which must be of `kind`.
    fn expect(&mut self, kind: Kind) -> (Msg, Vec<u8>) {
        let got = recv_within(&mut self.s, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no {kind:?} from the coordinator within 10 s"));
        assert_eq!(got.0.kind, kind, "expected {kind:?}, got {:?}", got.0);
        got
    }

    fn expect_nothing(&mut self, within: Duration) {
        if let Some((m, _)) = recv_within(&mut self.s, within) {
            panic!("expected no message, got {m:?}");
        }
    }

    /// Arrives at barrier `name` (without waiting for the release).
    fn barrier(&mut self, b: Barrier, state: WorkerState) {
        self.send(Kind::Barrier, state, b.as_str(), &[]);
    }

    fn expect_release(&mut self, b: Barrier) -> Msg {
        let (m, _) = self.expect(Kind::BarrierReleased);
        assert_eq!(m.name_bytes(), b.name(), "released barrier");
        m
    }

    /// Walks the checkpoint barriers after `done` (alone, or with others that left), as a
    /// worker does before it names its image.
    fn walk_after(&mut self, done: Option<Barrier>) {
        let skip = done.map_or(0, |d| Barrier::CHECKPOINT.iter().position(|&b| b == d).unwrap() + 1);
        for b in Barrier::CHECKPOINT.into_iter().skip(skip) {
            self.barrier(b, WorkerState::Checkpointing);
            self.expect_release(b);
        }
    }
}

fn threads_of(pid: u32) -> usize {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines().find_map(|l| l.strip_prefix("Threads:").map(|v| v.trim().parse().unwrap())).unwrap()
}

/// User + system CPU time of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = s.rsplit(')').next().unwrap().split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// A bounded wait on a spawned `dmtcp command`.
fn wait_output(child: Child, limit: Duration) -> Output {
    let pid = child.id() as i32;
    let t = std::thread::spawn(move || child.wait_with_output().unwrap());
    let end = Instant::now() + limit;
    while !t.is_finished() {
        if Instant::now() > end {
            // SAFETY: plain kill(2) of our own child's pid.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("dmtcp command did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    t.join().unwrap()
}

fn spawn_command(c: &Coord, args: &[&str]) -> Child {
    c.command_cmd(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

#[test]
fn empty_coordinator_status_list_and_json_show_no_peers_not_running() {
    let c = Coord::start(&[]);
    let s = c.status();
    assert!(s.contains("Coordinator:\n  Host: 127.0.0.1\n"), "{s}");
    assert!(s.contains(&format!("  Port: {}\n", c.port)), "{s}");
    assert!(s.contains("Status...\n  NUM_PEERS=0\n  RUNNING=no\n  CKPT_INTERVAL=0 (checkpoint manually)"), "{s}");
    for words in [&["--list"][..], &["l"], &["-l"]] {
        let out = c.command(words);
        assert!(out.status.success(), "{words:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "Client List:\n#, PROG[virtPID:realPID]@HOST, DMTCP-UNIQUEPID, STATE\n");
    }
    let out = c.command(&["--json", "s"]);
    assert!(out.status.success());
    let j = stdout(&out);
    for field in [
        "\"schema_version\":1",
        "\"command\":\"DMT_STATUS\"",
        "\"command_status\":\"DMT_COORD_SUCCESS\"",
        "\"coordinator_host\":\"localhost\"",
        &format!("\"coordinator_port\":{}", c.port),
        "\"num_peers\":0",
        "\"running\":false",
        "\"checkpoint_interval\":0",
    ] {
        assert!(j.contains(field), "{field} missing in {j}");
    }
    assert_eq!(j.trim().lines().count(), 1, "one JSON object on one line: {j}");
}

#[test]
fn worker_registers_is_counted_listed_with_program_and_pid_and_gets_distinct_vpids() {
    let c = Coord::start(&[]);
    let a = c.worker("fakeprog", 4242);
    let b = c.worker("other\"prog", 4343);
    assert_eq!(a.accept.vpid, 40000);
    assert_eq!(b.accept.vpid, 41000);
    assert_ne!(a.accept.comp_id, 0);
    assert_eq!(a.accept.comp_id, b.accept.comp_id, "one computation");
    let s = c.status();
    assert!(s.contains("NUM_PEERS=2") && s.contains("RUNNING=yes"), "{s}");
    let l = stdout(&c.command(&["--list"]));
    assert!(l.contains("1, fakeprog[40000:4242]@fakehost, "), "{l}");
    assert!(l.contains("2, other\"prog[41000:4343]@fakehost, "), "{l}");
    assert!(l.lines().nth(2).unwrap().ends_with(", RUNNING"), "{l}");
    let j = stdout(&c.command(&["--json", "--list"]));
    assert!(j.contains("\"command\":\"DMT_LIST\""), "{j}");
    assert!(j.contains("\\n1, fakeprog[40000:4242]@fakehost, "), "newlines escaped: {j}");
    assert!(j.contains("other\\\"prog[41000"), "quotes escaped: {j}");
    drop(a);
    assert!(wait_until(Duration::from_secs(5), || c.peers() == 1), "a disconnected worker is forgotten");
}

#[test]
fn update_after_exec_renames_the_worker() {
    let c = Coord::start(&[]);
    let mut w = c.worker("before", 77);
    w.send(Kind::UpdateAfterExec, WorkerState::Running, "", b"after\0");
    assert!(wait_until(Duration::from_secs(5), || stdout(&c.command(&["-l"])).contains("after[40000:77]@fakehost")));
}

#[test]
fn kill_sends_kill_peer_to_every_worker() {
    let c = Coord::start(&[]);
    let mut a = c.worker("a", 1);
    let mut b = c.worker("b", 2);
    let out = c.command(&["--kill"]);
    assert!(out.status.success(), "{}", stderr(&out));
    a.expect(Kind::KillPeer);
    b.expect(Kind::KillPeer);
    drop(a);
    drop(b);
    assert!(wait_until(Duration::from_secs(5), || c.peers() == 0));
    // The computation is over; a new one can join.
    let _n = c.worker("new", 3);
    assert_eq!(c.peers(), 1);
}

#[test]
fn malformed_and_stalled_connections_are_dropped_while_others_are_served() {
    let c = Coord::start(&[]);
    let _w = c.worker("steady", 10);

    let mut garbage = connect(c.port);
    garbage.write_all(&[0x5a; 200]).unwrap();

    let mut bad_version = connect(c.port);
    let mut hdr = Msg::new(Kind::NewWorker).encode();
    hdr[8..12].copy_from_slice(&99u32.to_le_bytes());
    bad_version.write_all(&hdr).unwrap();

    let mut bad_kind = connect(c.port);
    let mut hdr = Msg::new(Kind::NewWorker).encode();
    hdr[12..16].copy_from_slice(&999u32.to_le_bytes());
    bad_kind.write_all(&hdr).unwrap();

    let mut oversized = connect(c.port);
    let mut hdr = Msg::new(Kind::NewWorker).encode();
    hdr[52..56].copy_from_slice(&(MAX_EXTRA + 1).to_le_bytes());
    oversized.write_all(&hdr).unwrap();

    let mut short = connect(c.port);
    short.write_all(&Msg::new(Kind::NewWorker).encode()[..50]).unwrap();

    let mut silent = connect(c.port);

    let mut halfway = connect(c.port);
    let mut m = Msg::new(Kind::NewWorker);
    m.extra_len = 100;
    halfway.write_all(&m.encode()).unwrap();
    halfway.write_all(b"fakehost\0").unwrap();
    halfway.shutdown(Shutdown::Write).unwrap();

    // Everyone else is served meanwhile.
    let t = Instant::now();
    assert_eq!(c.peers(), 1);
    assert!(t.elapsed() < Duration::from_secs(2), "status took {:?}", t.elapsed());

    for (name, s) in [
        ("garbage", &mut garbage),
        ("bad version", &mut bad_version),
        ("bad kind", &mut bad_kind),
        ("oversized extra_len", &mut oversized),
        ("disconnect halfway", &mut halfway),
        ("short message", &mut short),
        ("silent", &mut silent),
    ] {
        // The silent ones are dropped once the first-message limit (10 s) has passed.
        assert!(closed_within(s, Duration::from_secs(15)), "{name} connection was not dropped");
    }
    assert_eq!(c.peers(), 1);
    assert!(c.child.id() > 0 && threads_of(c.pid()) == 1);
}

#[test]
fn three_hundred_idle_workers_on_one_thread() {
    let c = Coord::start(&[]);
    let workers: Vec<Fake> = (0..300).map(|i| c.worker(&format!("idle{i}"), 1000 + i)).collect();
    let mut vpids: Vec<i32> = workers.iter().map(|w| w.accept.vpid).collect();
    vpids.sort_unstable();
    vpids.dedup();
    assert_eq!(vpids.len(), 300, "distinct virtual pids");
    assert_eq!(c.peers(), 300);
    let s = c.status();
    assert!(s.contains("RUNNING=yes"), "{s}");
    assert_eq!(threads_of(c.pid()), 1, "the coordinator uses one thread");
    let l = stdout(&c.command(&["--list"]));
    assert_eq!(l.lines().count(), 302, "header lines plus one per worker");
    drop(workers);
    assert!(wait_until(Duration::from_secs(10), || c.peers() == 0));
}

/// Walks two fake workers through the barrier sequence of reference §2.3.
#[test]
fn blocking_checkpoint_of_two_workers_walks_barriers_and_writes_restart_script() {
    let c = Coord::start(&[]);
    let mut a = c.worker("alpha", 101);
    let mut b = c.worker("beta", 102);
    let bc = spawn_command(&c, &["--bcheckpoint"]);

    let (da, _) = a.expect(Kind::DoCheckpoint);
    let (db, _) = b.expect(Kind::DoCheckpoint);
    for d in [&da, &db] {
        assert_eq!(d.comp_id, a.accept.comp_id);
        assert_eq!(d.generation, 1);
        assert_eq!(d.num_peers, 2);
        assert_eq!(d.flags & FLAG_EXIT_AFTER_CKPT, 0);
    }
    // A second checkpoint cannot start while this one is in flight.
    let out = c.command(&["-c"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // Exactly the sequence the preload library runs, with the state it reports at each.
    for name in Barrier::CHECKPOINT {
        let state = match name {
            Barrier::Suspend => WorkerState::Presuspend,
            Barrier::Checkpoint => WorkerState::Suspended,
            Barrier::Drain => WorkerState::Checkpointing,
            Barrier::WriteCkpt | Barrier::Restart => WorkerState::Checkpointed,
        };
        a.barrier(name, state);
        a.expect_nothing(Duration::from_millis(150)); // released only when both arrived
        b.barrier(name, state);
        for w in [&mut a, &mut b] {
            let m = w.expect_release(name);
            assert_eq!(m.num_peers, 2);
        }
        if name == Barrier::Suspend {
            // Every process has stopped: nobody may join this checkpoint any more.
            let mut late = connect(c.port);
            send(&mut late, &Msg::new(Kind::NewWorker), b"fakehost\0late\0");
            let (r, _) = recv_within(&mut late, Duration::from_secs(5)).expect("an answer");
            assert_eq!(r.kind, Kind::RejectNotRunning);
        }
    }
    let img_a = c.dir.join("ckpt_alpha_1.dmtcp");
    let img_b = c.dir.join("ckpt beta's_2.dmtcp"); // needs quoting in the script
    a.send(Kind::CkptFilename, WorkerState::Checkpointed, "", format!("{}\0", img_a.display()).as_bytes());
    b.send(Kind::CkptFilename, WorkerState::Checkpointed, "", format!("{}\0", img_b.display()).as_bytes());

    let out = wait_output(bc, Duration::from_secs(10));
    assert!(out.status.success(), "--bcheckpoint failed: {}", stderr(&out));
    let script = c.dir.join("dmtcp_restart_script.sh");
    let text = std::fs::read_to_string(&script).expect("restart script written");
    use std::os::unix::fs::PermissionsExt;
    assert_ne!(std::fs::metadata(&script).unwrap().permissions().mode() & 0o100, 0, "executable");
    assert!(text.starts_with("#!/bin/bash\n"), "{text}");
    assert!(text.contains("dmtcp_restart") || text.contains(" restart "), "{text}");
    assert!(text.contains(&format!("coord_port=${{DMTCP_COORD_PORT:-{}}}", c.port)), "{text}");
    assert!(text.contains(&format!("'{}'", img_a.display())), "{text}");
    assert!(text.contains("beta'\\''s_2.dmtcp'"), "{text}");
    let syntax = Command::new("bash").arg("-n").arg(&script).status().unwrap();
    assert!(syntax.success(), "bash -n {}", script.display());

    // The workers resume; then the computation runs again and can be checkpointed again.
    let s = c.status();
    assert!(s.contains("RUNNING=no"), "not running before the workers resume: {s}");
    a.send(Kind::WorkerResuming, WorkerState::Running, "", &[]);
    b.send(Kind::WorkerResuming, WorkerState::Running, "", &[]);
    assert!(wait_until(Duration::from_secs(5), || c.status().contains("RUNNING=yes")));
    let out = c.command(&["--json", "-c"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("\"num_peers\":2"), "{}", stdout(&out));
    assert_eq!(a.expect(Kind::DoCheckpoint).0.generation, 2);
}

#[test]
fn worker_leaving_during_checkpoint_no_longer_holds_the_barrier() {
    let c = Coord::start(&[]);
    let mut a = c.worker("stays", 1);
    let mut b = c.worker("leaves", 2);
    let bc = spawn_command(&c, &["bc"]);
    a.expect(Kind::DoCheckpoint);
    b.expect(Kind::DoCheckpoint);
    a.barrier(Barrier::Suspend, WorkerState::Presuspend);
    a.expect_nothing(Duration::from_millis(100));
    drop(b);
    assert_eq!(a.expect_release(Barrier::Suspend).num_peers, 1);
    a.walk_after(Some(Barrier::Suspend));
    a.send(Kind::CkptFilename, WorkerState::Checkpointed, "", b"/tmp/only.dmtcp\0");
    let out = wait_output(bc, Duration::from_secs(10));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(c.dir.join("dmtcp_restart_script.sh")).unwrap();
    assert!(text.contains("'/tmp/only.dmtcp'"), "{text}");
}

#[test]
fn ckpt_failed_makes_bcheckpoint_fail_with_the_reason_and_computation_runs_on() {
    let c = Coord::start(&[]);
    let mut w = c.worker("fails", 5);
    let bc = spawn_command(&c, &["--bcheckpoint"]);
    w.expect(Kind::DoCheckpoint);
    w.barrier(Barrier::Suspend, WorkerState::Presuspend);
    w.expect_release(Barrier::Suspend);
    w.send(Kind::CkptFailed, WorkerState::Running, "", b"disk full (test)\0");
    let out = wait_output(bc, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("disk full (test)"), "{}", stderr(&out));
    assert!(!c.dir.join("dmtcp_restart_script.sh").exists());

    // JSON carries the status and reason too.
    let bc = spawn_command(&c, &["--json", "--bcheckpoint"]);
    w.expect(Kind::DoCheckpoint);
    w.send(Kind::CkptFailed, WorkerState::Running, "", b"again");
    let out = wait_output(bc, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2));
    let j = stdout(&out);
    assert!(j.contains("\"command_status\":\"DMT_COORD_CKPT_FAILED\"") && j.contains("again"), "{j}");

    w.send(Kind::WorkerResuming, WorkerState::Running, "", &[]);
    assert!(wait_until(Duration::from_secs(5), || c.status().contains("RUNNING=yes")));
}

#[test]
fn checkpoint_without_progress_fails_after_ckpt_timeout() {
    let c = Coord::start(&["--ckpt-timeout", "1"]);
    let mut w = c.worker("stuck", 5);
    let bc = spawn_command(&c, &["bc"]);
    w.expect(Kind::DoCheckpoint);
    let out = wait_output(bc, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no progress"), "{}", stderr(&out));
}

#[test]
fn kcheckpoint_asks_workers_to_exit_after_the_checkpoint() {
    let c = Coord::start(&[]);
    let mut w = c.worker("k", 5);
    let out = c.command(&["-kc"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (m, _) = w.expect(Kind::DoCheckpoint);
    assert_ne!(m.flags & FLAG_EXIT_AFTER_CKPT, 0);
}

#[test]
fn checkpoint_with_no_workers_is_not_running() {
    let c = Coord::start(&[]);
    for words in [&["-c"][..], &["--bcheckpoint"], &["kc"]] {
        let out = c.command(words);
        assert_eq!(out.status.code(), Some(2), "{words:?}");
        assert!(stderr(&out).contains("no process"), "{}", stderr(&out));
    }
    let j = stdout(&c.command(&["--json", "c"]));
    assert!(j.contains("\"command_status\":\"DMT_COORD_NOT_RUNNING\""), "{j}");
}

#[test]
fn interval_command_handshake_and_timer() {
    let c = Coord::start(&[]);
    let out = c.command(&["--json", "i", "5"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("\"checkpoint_interval\":5"), "{}", stdout(&out));
    assert!(c.status().contains("CKPT_INTERVAL=5"));
    assert!(c.command(&["-i0"]).status.success());
    assert!(c.status().contains("CKPT_INTERVAL=0 (checkpoint manually)"));

    // The launcher's interval in NewWorker applies to the computation.
    let _w = Fake::join(c.port, "launched", 9, 7);
    assert!(c.status().contains("CKPT_INTERVAL=7"), "{}", c.status());

    // An interval of 1 s starts a checkpoint by itself.
    let c = Coord::start(&["--interval", "1"]);
    let mut w = c.worker("timed", 9);
    let t = Instant::now();
    w.expect(Kind::DoCheckpoint);
    assert!(t.elapsed() >= Duration::from_millis(900), "too early: {:?}", t.elapsed());
}

#[test]
fn restart_workers_wait_at_barrier_until_all_images_are_back() {
    let c = Coord::start(&[]);
    let restart = |vpid: i32| {
        let mut s = connect(c.port);
        let mut m = Msg::new(Kind::RestartWorker);
        m.vpid = vpid;
        m.pid = vpid + 7;
        m.num_peers = 2;
        m.comp_id = 0xabcdef;
        m.generation = 3;
        m.state = WorkerState::Restarting as u32;
        send(&mut s, &m, b"fakehost\0restarted\0");
        let (a, _) = recv_within(&mut s, Duration::from_secs(5)).unwrap();
        assert_eq!(a.kind, Kind::Accept);
        assert_eq!((a.vpid, a.comp_id), (vpid, 0xabcdef));
        Fake { s, accept: a }
    };
    let mut a = restart(40000);
    a.barrier(Barrier::Restart, WorkerState::Restarting);
    a.expect_nothing(Duration::from_millis(150));
    // A new process cannot join a restarting computation.
    let mut late = connect(c.port);
    send(&mut late, &Msg::new(Kind::NewWorker), b"fakehost\0late\0");
    assert_eq!(recv_within(&mut late, Duration::from_secs(5)).unwrap().0.kind, Kind::RejectNotRunning);
    let mut b = restart(41000);
    b.barrier(Barrier::Restart, WorkerState::Restarting);
    a.expect_release(Barrier::Restart);
    b.expect_release(Barrier::Restart);
    assert!(c.status().contains("RUNNING=no"));
    a.send(Kind::WorkerResuming, WorkerState::Running, "", &[]);
    b.send(Kind::WorkerResuming, WorkerState::Running, "", &[]);
    assert!(wait_until(Duration::from_secs(5), || c.status().contains("RUNNING=yes")));
    assert!(c.command(&["c"]).status.success());
    assert_eq!(a.expect(Kind::DoCheckpoint).0.generation, 4);
}

#[test]
fn missing_coordinator_exits_2_with_a_clear_message() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = run(role("command").args(["-p", &port.to_string(), "-s"]));
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(e.contains(&format!("no coordinator at 127.0.0.1:{port} (connection refused)")), "{e}");
    assert!(e.contains("dmtcp_coordinator"), "{e}");
    // The environment gives the address too.
    let out = run(role("command").env("DMTCP_COORD_PORT", port.to_string()).arg("s"));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(&format!("127.0.0.1:{port}")), "{}", stderr(&out));
}

#[test]
fn bad_options_exit_1_with_usage() {
    for (r, args) in [
        ("command", &["--bogus"][..]),
        ("command", &[]),
        ("command", &["-s", "-l"]),
        ("command", &["-p", "notaport", "-s"]),
        ("coordinator", &["--bogus"]),
        ("coordinator", &["--coord-port", "x"]),
    ] {
        let out = run(role(r).args(args));
        assert_eq!(out.status.code(), Some(1), "{r} {args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("Usage:"), "{r} {args:?}: {}", stderr(&out));
    }
    for r in ["command", "coordinator"] {
        let out = run(role(r).arg("--help"));
        assert!(out.status.success() && stdout(&out).contains("Usage:"), "{r} --help");
        let out = run(role(r).arg("--version"));
        assert!(out.status.success() && stdout(&out).contains("dmtcp-rs"), "{r} --version");
    }
}

#[test]
fn quit_command_kills_workers_stops_coordinator_and_removes_port_file() {
    let mut c = Coord::start(&[]);
    let mut w = c.worker("victim", 3);
    let out = c.command(&["--quit"]);
    assert!(out.status.success(), "{}", stderr(&out));
    w.expect(Kind::KillPeer);
    let st = c.wait_exit(Duration::from_secs(5)).expect("coordinator exits after --quit");
    assert!(st.success(), "{st}");
    assert!(!c.port_file.exists(), "port file removed");
}

#[test]
fn sigterm_quits_cleanly_and_removes_port_file() {
    let mut c = Coord::start(&[]);
    // SAFETY: plain kill(2) of our own child's pid.
    unsafe { libc::kill(c.pid() as i32, libc::SIGTERM) };
    let st = c.wait_exit(Duration::from_secs(5)).expect("coordinator exits on SIGTERM");
    assert!(st.success(), "{st}");
    assert!(!c.port_file.exists());
}

#[test]
fn exit_on_last_quits_after_the_last_worker_leaves() {
    let mut c = Coord::start(&["--exit-on-last"]);
    assert_eq!(c.peers(), 0, "no worker yet: keeps running");
    let a = c.worker("a", 1);
    let b = c.worker("b", 2);
    drop(a);
    assert!(wait_until(Duration::from_secs(5), || c.peers() == 1));
    assert!(c.child.try_wait().unwrap().is_none(), "one worker left");
    drop(b);
    let st = c.wait_exit(Duration::from_secs(5)).expect("exits with its last worker");
    assert!(st.success(), "{st}");
    assert!(!c.port_file.exists());
}

#[test]
fn timeout_and_stale_timeout_end_the_coordinator() {
    let t = Instant::now();
    let mut c = Coord::start(&["--timeout", "1"]);
    let _w = c.worker("busy", 1);
    let st = c.wait_exit(Duration::from_secs(5)).expect("exits after --timeout");
    assert!(t.elapsed() >= Duration::from_millis(900), "{:?}", t.elapsed());
    assert!(st.success());
    assert!(!c.port_file.exists());

    let mut c = Coord::start(&["--stale-timeout", "1"]);
    assert!(c.wait_exit(Duration::from_secs(5)).is_some(), "exits when nobody connects");
}

#[test]
fn stdin_commands_work_and_eof_neither_quits_nor_spins() {
    let mut c = Coord::start_with(&[], Stdio::piped());
    let mut stdin = c.child.stdin.take().unwrap();
    let mut out = c.child.stdout.take().unwrap();
    stdin.write_all(b"s\ni 12\nl\n").unwrap();
    stdin.flush().unwrap();
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    let end = Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(&text).contains("Client List:") && Instant::now() < end {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "stdout closed");
        text.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("NUM_PEERS=0") && text.contains("RUNNING=no"), "{text}");
    assert!(text.contains("Checkpoint Interval: 12 s"), "{text}");
    drop(stdin); // EOF
    let before = cpu_ticks(c.pid());
    std::thread::sleep(Duration::from_millis(500));
    assert!(c.child.try_wait().unwrap().is_none(), "EOF on stdin must not quit");
    assert!(cpu_ticks(c.pid()) - before < 10, "busy after EOF on stdin");
    assert!(c.status().contains("CKPT_INTERVAL=12"));
}

#[test]
fn daemon_returns_once_port_file_is_written_and_keeps_serving() {
    let dir = TempDir::new("coord-daemon");
    let pf = dir.join("port");
    // `output()` also proves the daemon does not keep our pipes open.
    let out = run(role("coordinator").args(["--daemon", "--coord-port", "0", "--port-file"]).arg(&pf));
    assert!(out.status.success(), "{}", stderr(&out));
    let port = std::fs::read_to_string(&pf).expect("port file written before the parent exits");
    let port = port.trim();
    let st = run(role("command").args(["-p", port, "s"]));
    assert!(stdout(&st).contains("NUM_PEERS=0"), "{}", stderr(&st));
    assert!(run(role("command").args(["-p", port, "q"])).status.success());
    assert!(wait_until(Duration::from_secs(5), || !pf.exists()), "daemon removes its port file on quit");
}

/// The local IPv4 addresses (hex, as in /proc/net/tcp) listening on `port`.
fn listen_addrs(port: u16) -> Vec<String> {
    let t = std::fs::read_to_string("/proc/net/tcp").unwrap();
    t.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (addr, p) = f.get(1)?.split_once(':')?;
            (u16::from_str_radix(p, 16).ok()? == port && f.get(3)? == &"0A").then(|| addr.to_string())
        })
        .collect()
}

#[test]
fn listens_on_loopback_only_unless_an_address_is_given() {
    let c = Coord::start(&[]);
    assert_eq!(listen_addrs(c.port), ["0100007F"], "127.0.0.1 only");
    let c = Coord::start(&["--coord-host", "0.0.0.0"]);
    assert_eq!(listen_addrs(c.port), ["00000000"], "every address");
    assert_eq!(c.peers(), 0);
}

#[test]
fn a_user_command_gets_one_answer_with_its_status() {
    // The protocol seen from a raw client: UserCmd -> UserCmdResult, then close.
    let c = Coord::start(&[]);
    let mut s = connect(c.port);
    let mut m = Msg::new(Kind::UserCmd);
    m.cmd = Cmd::Status as u32;
    send(&mut s, &m, &[]);
    let (r, _) = recv_within(&mut s, Duration::from_secs(5)).unwrap();
    assert_eq!((r.kind, r.cmd_status, r.num_peers, r.running), (Kind::UserCmdResult, status::SUCCESS, 0, 0));
    assert!(closed_within(&mut s, Duration::from_secs(5)));
    let mut s = connect(c.port);
    let mut m = Msg::new(Kind::UserCmd);
    m.cmd = 99;
    send(&mut s, &m, &[]);
    let (r, _) = recv_within(&mut s, Duration::from_secs(5)).unwrap();
    assert_eq!(r.cmd_status, status::INVALID_COMMAND);
}

#[test]
fn blocking_checkpoint_answer_reaches_a_client_that_half_closed() {
    let c = Coord::start(&[]);
    let mut w = c.worker("w", 1);
    let mut s = connect(c.port);
    let mut m = Msg::new(Kind::UserCmd);
    m.cmd = Cmd::BlockingCkpt as u32;
    send(&mut s, &m, &[]);
    s.shutdown(Shutdown::Write).unwrap();
    w.expect(Kind::DoCheckpoint);
    std::thread::sleep(Duration::from_millis(100)); // let the coordinator see the half-close
    w.walk_after(None);
    w.send(Kind::CkptFilename, WorkerState::Checkpointed, "", b"/tmp/w.dmtcp\0");
    let (r, _) = recv_within(&mut s, Duration::from_secs(5)).expect("the answer");
    assert_eq!((r.kind, r.cmd_status), (Kind::UserCmdResult, status::SUCCESS));
    assert!(closed_within(&mut s, Duration::from_secs(5)));
}
