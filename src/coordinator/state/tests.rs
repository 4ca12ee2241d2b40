//! The computation without sockets or clocks: every test feeds inputs with chosen times and
//! checks the actions.
use super::*;

fn settings() -> Settings {
    Settings {
        incremental: false,
        interval: 0,
        exit_on_last: false,
        kill_after_ckpt: false,
        strict: false,
        timeout: None,
        stale_timeout: None,
        ckpt_timeout: None,
        hostname: "testhost".into(),
        listen_host: "127.0.0.1".into(),
        port: 7779,
        ckptdir: "/ckpt".into(),
        restart_command: "dmtcp_restart".into(),
        seed: 42,
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A computation and the clock the test moves.
struct T {
    c: Computation,
    now: Duration,
    next_id: ClientId,
}

impl T {
    fn new() -> T {
        Self::with(settings())
    }
    fn with(s: Settings) -> T {
        T { c: Computation::new(s, Duration::ZERO), now: Duration::ZERO, next_id: 100 }
    }
    fn at(&mut self, s: f64) -> &mut Self {
        self.now = secs(s);
        self
    }
    fn feed(&mut self, i: Input<'_>) -> Vec<Action> {
        self.c.handle(self.now, i)
    }
    fn connect(&mut self) -> ClientId {
        let id = self.next_id;
        self.next_id += 1;
        assert!(self.feed(Input::Connected { client: id, peer: "127.0.0.1:5000" }).is_empty());
        id
    }
    fn msg(&mut self, client: ClientId, msg: Msg, extra: &[u8]) -> Vec<Action> {
        self.feed(Input::Message { client, msg, extra })
    }
    /// A new worker; returns its id and the Accept.
    fn join_with(&mut self, prog: &str, pid: i32, interval: u32) -> (ClientId, Msg) {
        let id = self.connect();
        let mut m = Msg::new(Kind::NewWorker);
        m.pid = pid;
        m.state = WorkerState::Running as u32;
        if interval != 0 {
            m.interval = interval;
        }
        let acts = self.msg(id, m, format!("host\0{prog}\0").as_bytes());
        let accept = only_send(&acts, id);
        assert_eq!(accept.kind, Kind::Accept, "{acts:?}");
        (id, accept)
    }
    fn join(&mut self, prog: &str) -> ClientId {
        self.join_with(prog, 1000 + self.next_id as i32, 0).0
    }
    fn restart_worker(&mut self, vpid: i32, peers: u32, comp: u64) -> (ClientId, Vec<Action>) {
        let id = self.connect();
        let mut m = Msg::new(Kind::RestartWorker);
        m.vpid = vpid;
        m.pid = vpid + 7;
        m.num_peers = peers;
        m.comp_id = comp;
        m.generation = 3;
        m.state = WorkerState::Restarting as u32;
        let acts = self.msg(id, m, b"host\0restarted\0");
        (id, acts)
    }
    fn worker_msg(&mut self, id: ClientId, kind: Kind, state: WorkerState, extra: &[u8]) -> Vec<Action> {
        let mut m = Msg::new(kind);
        m.state = state as u32;
        self.msg(id, m, extra)
    }
    fn arrive(&mut self, id: ClientId, b: Barrier, state: WorkerState) -> Vec<Action> {
        let mut m = Msg::new(Kind::Barrier).with_name(b.name());
        m.state = state as u32;
        self.msg(id, m, &[])
    }
    fn filename(&mut self, id: ClientId, path: &str) -> Vec<Action> {
        self.worker_msg(id, Kind::CkptFilename, WorkerState::Checkpointed, format!("{path}\0").as_bytes())
    }
    fn leave(&mut self, id: ClientId) -> Vec<Action> {
        self.feed(Input::Disconnected { client: id })
    }
    /// A command client's request; returns its id and the actions.
    fn command(&mut self, cmd: Cmd, interval: u32) -> (ClientId, Vec<Action>) {
        let id = self.connect();
        let mut m = Msg::new(Kind::UserCmd);
        m.cmd = cmd as u32;
        m.interval = interval;
        let acts = self.msg(id, m, &[]);
        (id, acts)
    }
    /// A command that is answered at once: the answer and its text.
    fn answer(&mut self, cmd: Cmd, interval: u32) -> (Msg, String) {
        let (id, acts) = self.command(cmd, interval);
        reply_to(&acts, id).unwrap_or_else(|| panic!("no answer to {cmd:?}: {acts:?}"))
    }
    fn tick(&mut self, s: f64) -> Vec<Action> {
        self.at(s).feed(Input::Tick)
    }
    fn console(&mut self, line: &str) -> Vec<Action> {
        self.feed(Input::Console(line))
    }
    /// Every worker walks every checkpoint barrier, in order; each is released with the last.
    fn walk_barriers(&mut self, ids: &[ClientId]) {
        for b in Barrier::CHECKPOINT {
            for (i, &id) in ids.iter().enumerate() {
                let acts = self.arrive(id, b, WorkerState::Checkpointing);
                if i + 1 < ids.len() {
                    assert!(acts.is_empty(), "{b:?} released early: {acts:?}");
                } else {
                    assert_eq!(released(&acts, b), ids.to_vec(), "{b:?}");
                }
            }
        }
    }
}

/// The messages sent (queued) to `to`, with or without close.
fn sent_to(acts: &[Action], to: ClientId) -> Vec<Msg> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Send { to: t, msg, .. } | Action::SendAndClose { to: t, msg, .. } if *t == to => Some(*msg),
            _ => None,
        })
        .collect()
}

fn only_send(acts: &[Action], to: ClientId) -> Msg {
    let v = sent_to(acts, to);
    assert_eq!(v.len(), 1, "{acts:?}");
    v[0]
}

/// Who got a message of `kind`, in order.
fn recipients(acts: &[Action], kind: Kind) -> Vec<ClientId> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Send { to, msg, .. } | Action::SendAndClose { to, msg, .. } if msg.kind == kind => Some(*to),
            _ => None,
        })
        .collect()
}

/// Who got the release of `b` (every release in `acts` must be of `b`).
fn released(acts: &[Action], b: Barrier) -> Vec<ClientId> {
    for a in acts {
        if let Action::Send { msg, .. } = a {
            if msg.kind == Kind::BarrierReleased {
                assert_eq!(msg.name_bytes(), b.name());
            }
        }
    }
    recipients(acts, Kind::BarrierReleased)
}

/// The reply-and-close to `to`: header and text.
fn reply_to(acts: &[Action], to: ClientId) -> Option<(Msg, String)> {
    acts.iter().find_map(|a| match a {
        Action::SendAndClose { to: t, msg, extra } if *t == to => {
            Some((*msg, String::from_utf8_lossy(extra).into_owned()))
        }
        _ => None,
    })
}

fn script(acts: &[Action]) -> Option<(String, String)> {
    acts.iter().find_map(|a| match a {
        Action::WriteRestartScript { file_name, contents } => Some((file_name.clone(), contents.clone())),
        _ => None,
    })
}

fn printed(acts: &[Action]) -> String {
    acts.iter()
        .filter_map(|a| match a {
            Action::Print(s) => Some(s.as_str()),
            _ => None,
        })
        .collect()
}

fn exits(acts: &[Action]) -> Vec<i32> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Exit(c) => Some(*c),
            _ => None,
        })
        .collect()
}

fn dropped(acts: &[Action]) -> Vec<ClientId> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Drop { client, .. } => Some(*client),
            _ => None,
        })
        .collect()
}

// ---- Joining and virtual pids ---------------------------------------------------------

#[test]
fn workers_get_stepped_vpids_one_computation_and_are_counted() {
    let mut t = T::new();
    let (a, acc_a) = t.join_with("a", 11, 0);
    let (b, acc_b) = t.join_with("b", 12, 0);
    let (_, acc_c) = t.join_with("c", 13, 0);
    assert_eq!((acc_a.vpid, acc_b.vpid, acc_c.vpid), (FIRST_VPID, FIRST_VPID + VPID_STEP, FIRST_VPID + 2 * VPID_STEP));
    assert_ne!(acc_a.comp_id, 0);
    assert_eq!((acc_a.comp_id, acc_b.comp_id), (acc_c.comp_id, acc_c.comp_id));
    assert_eq!((acc_a.num_peers, acc_b.num_peers, acc_c.num_peers), (1, 2, 3), "peers with this one");
    assert_eq!(t.c.peer(a), Some(Peer::Worker));
    assert_eq!(t.c.worker(b).map(|w| (w.pid, w.prog.as_str(), w.host.as_str())), Some((12, "b", "host")));
    assert_eq!(t.c.worker_count(), 3);
    assert!(t.c.running());
}

#[test]
fn a_new_computation_starts_over_once_everyone_left() {
    let mut t = T::new();
    let (a, first) = t.join_with("a", 1, 0);
    let b = t.join("b");
    t.leave(a);
    // vpids of departed workers are not reused within one computation.
    let (c, acc) = t.join_with("c", 3, 0);
    assert_eq!(acc.vpid, FIRST_VPID + 2 * VPID_STEP);
    assert_eq!(acc.comp_id, first.comp_id);
    t.leave(b);
    t.leave(c);
    assert_eq!(t.c.worker_count(), 0);
    let (_, again) = t.at(5.0).join_with("d", 4, 0);
    assert_eq!(again.vpid, FIRST_VPID);
    assert_ne!(again.comp_id, first.comp_id, "a fresh computation id");
}

#[test]
fn restarted_vpids_are_kept_and_new_ones_skip_them() {
    let mut t = T::new();
    let (a, acts) = t.restart_worker(FIRST_VPID, 1, 0xabc);
    assert_eq!(only_send(&acts, a).vpid, FIRST_VPID);
    t.arrive(a, Barrier::Restart, WorkerState::Restarting);
    t.worker_msg(a, Kind::WorkerResuming, WorkerState::Running, &[]);
    assert!(!t.c.restarting());
    // The restarted process holds 40000; the allocator starts over and must skip it.
    let (_, acc) = t.join_with("child", 9, 0);
    assert_eq!(acc.vpid, FIRST_VPID + VPID_STEP);
    assert_eq!(acc.comp_id, 0xabc);
}

#[test]
fn unexpected_first_message_drops_the_connection() {
    let mut t = T::new();
    let id = t.connect();
    let acts = t.msg(id, Msg::new(Kind::Barrier), &[]);
    assert_eq!(dropped(&acts), vec![id]);
    // A dropped client is ignored until its departure.
    assert!(t.msg(id, Msg::new(Kind::NewWorker), b"h\0p\0").is_empty());
    assert_eq!(t.c.worker_count(), 0);
}

#[test]
fn update_after_exec_renames_and_a_checkpoint_in_flight_is_told_again() {
    let mut t = T::new();
    let a = t.join("before");
    let b = t.join("other");
    let mut m = Msg::new(Kind::UpdateAfterExec);
    m.pid = 555;
    m.state = WorkerState::Running as u32;
    assert!(t.msg(a, m, b"after\0").is_empty());
    assert_eq!(t.c.worker(a).map(|w| (w.prog.clone(), w.pid)), Some(("after".into(), 555)));
    t.answer(Cmd::Checkpoint, 0);
    // b already arrived at the first barrier: an exec'd b would not be told again.
    t.arrive(b, Barrier::Suspend, WorkerState::Presuspend);
    let acts = t.msg(a, m, b"again\0");
    assert_eq!(recipients(&acts, Kind::DoCheckpoint), vec![a]);
    let acts = t.msg(b, m, b"again\0");
    assert!(recipients(&acts, Kind::DoCheckpoint).is_empty());
}

// ---- The checkpoint -------------------------------------------------------------------

#[test]
fn full_barrier_sequence_with_three_workers_then_script_then_answer() {
    let mut t = T::new();
    let ids = [t.join("a"), t.join("b"), t.join("c")];
    let (req, acts) = t.at(1.0).command(Cmd::BlockingCkpt, 0);
    assert_eq!(recipients(&acts, Kind::DoCheckpoint), ids.to_vec());
    assert!(reply_to(&acts, req).is_none(), "no answer before the images exist");
    let d = only_send(&acts, ids[0]);
    assert_eq!((d.generation, d.num_peers, d.flags & FLAG_EXIT_AFTER_CKPT), (1, 3, 0));
    assert!(t.c.awaits_answer(req));
    assert!(!t.c.running());
    t.walk_barriers(&ids);
    // Images arrive in any order; the script lists them by virtual pid.
    assert!(script(&t.filename(ids[2], "/i/c.dmtcp")).is_none());
    assert!(script(&t.filename(ids[0], "/i/a.dmtcp")).is_none());
    let acts = t.filename(ids[1], "/i/b.dmtcp");
    let (name, text) = script(&acts).expect("restart script");
    assert_eq!(name, format!("dmtcp_restart_script_{:016x}.sh", t.c.comp_id()));
    let (pa, pb, pc) = (text.find("'/i/a.dmtcp'"), text.find("'/i/b.dmtcp'"), text.find("'/i/c.dmtcp'"));
    assert!(pa.is_some() && pa < pb && pb < pc, "{text}");
    assert!(reply_to(&acts, req).is_none(), "answer only once the script is written");
    let acts = t.at(2.0).feed(Input::ScriptWritten(Ok("/ckpt/dmtcp_restart_script.sh".into())));
    let (r, _) = reply_to(&acts, req).expect("the answer");
    assert_eq!((r.cmd, r.cmd_status, r.num_peers, r.generation), (Cmd::BlockingCkpt as u32, status::SUCCESS, 3, 1));
    assert!(!t.c.checkpointing());
}

#[test]
fn barriers_must_come_in_the_shared_order() {
    let mut t = T::new();
    let a = t.join("a");
    let b = t.join("b");
    t.answer(Cmd::Checkpoint, 0);
    // Skipping SUSPEND is a protocol error.
    let acts = t.arrive(a, Barrier::Drain, WorkerState::Checkpointing);
    assert_eq!(dropped(&acts), vec![a]);
    // An unknown name too.
    let mut m = Msg::new(Kind::Barrier).with_name(b"DMT:Bogus");
    m.state = WorkerState::Presuspend as u32;
    assert_eq!(dropped(&t.msg(b, m, &[])), vec![b]);
}

#[test]
fn a_different_barrier_while_one_is_gathering_drops_the_latecomer() {
    let mut t = T::new();
    let a = t.join("a");
    let b = t.join("b");
    t.answer(Cmd::Checkpoint, 0);
    t.arrive(a, Barrier::Suspend, WorkerState::Presuspend);
    let acts = t.arrive(b, Barrier::Checkpoint, WorkerState::Suspended);
    assert_eq!(dropped(&acts), vec![b]);
    // b no longer counts, but holds the barrier until its departure is seen.
    assert_eq!(t.c.worker_count(), 1);
    assert_eq!(released(&t.leave(b), Barrier::Suspend), vec![a]);
}

#[test]
fn barrier_outside_a_checkpoint_is_ignored() {
    let mut t = T::new();
    let a = t.join("a");
    assert!(t.arrive(a, Barrier::Suspend, WorkerState::Presuspend).is_empty());
    assert_eq!(t.c.worker_count(), 1);
}

#[test]
fn worker_dying_before_a_release_no_longer_holds_the_barrier() {
    let mut t = T::new();
    let a = t.join("stays");
    let b = t.join("leaves");
    let (req, _) = t.command(Cmd::BlockingCkpt, 0);
    assert!(t.arrive(a, Barrier::Suspend, WorkerState::Presuspend).is_empty());
    let acts = t.leave(b);
    assert_eq!(released(&acts, Barrier::Suspend), vec![a]);
    assert_eq!(sent_to(&acts, a)[0].num_peers, 1);
    t.walk_rest(a);
    let acts = t.filename(a, "/i/only.dmtcp");
    assert!(script(&acts).unwrap().1.contains("'/i/only.dmtcp'"));
    let acts = t.feed(Input::ScriptWritten(Ok("s".into())));
    assert_eq!(reply_to(&acts, req).unwrap().0.cmd_status, status::SUCCESS);
}

impl T {
    /// `id` alone walks the barriers after SUSPEND.
    fn walk_rest(&mut self, id: ClientId) {
        for b in &Barrier::CHECKPOINT[1..] {
            assert_eq!(released(&self.arrive(id, *b, WorkerState::Checkpointing), *b), vec![id]);
        }
    }
}

#[test]
fn worker_dying_after_a_release_lets_the_next_barrier_go_at_once() {
    let mut t = T::new();
    let a = t.join("a");
    let b = t.join("b");
    t.answer(Cmd::Checkpoint, 0);
    t.arrive(a, Barrier::Suspend, WorkerState::Presuspend);
    assert_eq!(released(&t.arrive(b, Barrier::Suspend, WorkerState::Presuspend), Barrier::Suspend), vec![a, b]);
    assert!(t.leave(b).is_empty(), "nothing gathers yet");
    let acts = t.arrive(a, Barrier::Checkpoint, WorkerState::Suspended);
    assert_eq!(released(&acts, Barrier::Checkpoint), vec![a]);
}

#[test]
fn image_written_before_its_worker_exits_is_still_in_the_script() {
    let mut t = T::new();
    let a = t.join("a");
    let b = t.join("b");
    t.answer(Cmd::KillAfterCkpt, 0);
    t.walk_barriers(&[a, b]);
    assert!(script(&t.filename(a, "/i/a.dmtcp")).is_none());
    assert!(t.leave(a).is_empty(), "a exited after its image (kill after checkpoint)");
    let (_, text) = script(&t.filename(b, "/i/b.dmtcp")).expect("script");
    assert!(text.contains("'/i/a.dmtcp'") && text.contains("'/i/b.dmtcp'"), "{text}");
}

#[test]
fn every_worker_exiting_fails_the_checkpoint() {
    let mut t = T::new();
    let a = t.join("a");
    let b = t.join("b");
    let (req, _) = t.command(Cmd::BlockingCkpt, 0);
    t.leave(a);
    let acts = t.leave(b);
    let (r, text) = reply_to(&acts, req).expect("failure answer");
    assert_eq!(r.cmd_status, status::CKPT_FAILED);
    assert!(text.contains("every process exited"), "{text}");
    assert!(!t.c.checkpointing());
}

#[test]
fn ckpt_failed_fails_the_checkpoint_with_its_reason_and_the_computation_goes_on() {
    let mut t = T::new();
    let a = t.join("fails");
    let (req, _) = t.command(Cmd::BlockingCkpt, 0);
    t.arrive(a, Barrier::Suspend, WorkerState::Presuspend);
    let acts = t.worker_msg(a, Kind::CkptFailed, WorkerState::Running, b"disk full\0");
    let (r, text) = reply_to(&acts, req).expect("answer");
    assert_eq!((r.cmd_status, r.generation), (status::CKPT_FAILED, 1));
    assert!(text.contains("disk full") && text.contains("fails["), "{text}");
    assert!(script(&acts).is_none());
    // The other barriers it still walks are ignored; once it runs, a new checkpoint starts.
    assert!(t.arrive(a, Barrier::Checkpoint, WorkerState::Running).is_empty());
    t.worker_msg(a, Kind::WorkerResuming, WorkerState::Running, &[]);
    let (r, _) = t.answer(Cmd::Checkpoint, 0);
    assert_eq!(r.cmd_status, status::SUCCESS);
    assert_eq!(t.c.generation(), 2);
}

#[test]
fn ckpt_failed_outside_a_checkpoint_changes_nothing() {
    let mut t = T::new();
    let a = t.join("a");
    assert!(t.worker_msg(a, Kind::CkptFailed, WorkerState::Running, b"late").is_empty());
    assert!(t.c.running());
}

#[test]
fn a_restart_script_that_cannot_be_written_fails_the_blocking_checkpoint() {
    let mut t = T::new();
    let a = t.join("a");
    let (req, _) = t.command(Cmd::BlockingCkpt, 0);
    t.walk_barriers(&[a]);
    assert!(script(&t.filename(a, "/i/a.dmtcp")).is_some());
    let acts = t.feed(Input::ScriptWritten(Err("read-only file system".into())));
    let (r, text) = reply_to(&acts, req).expect("answer");
    assert_eq!(r.cmd_status, status::CKPT_FAILED);
    assert!(text.contains("not the restart script in /ckpt: read-only"), "{text}");
}

#[test]
fn checkpoint_commands_are_refused_without_workers_or_while_one_is_in_flight() {
    let mut t = T::new();
    for cmd in [Cmd::Checkpoint, Cmd::BlockingCkpt, Cmd::KillAfterCkpt] {
        let (r, text) = t.answer(cmd, 0);
        assert_eq!(r.cmd_status, status::NOT_RUNNING, "{cmd:?}");
        assert!(text.contains("no process"), "{text}");
    }
    let a = t.join("a");
    assert_eq!(t.answer(Cmd::Checkpoint, 0).0.cmd_status, status::SUCCESS);
    let (r, text) = t.answer(Cmd::Checkpoint, 0);
    assert_eq!(r.cmd_status, status::NOT_RUNNING);
    assert!(text.contains("already in progress"), "{text}");
    assert!(t.console("c").iter().any(|a| matches!(a, Action::Print(s) if s.contains("cannot checkpoint"))));
    let _ = a;
}

#[test]
fn new_workers_are_refused_between_suspend_and_the_last_barrier_and_welcome_after() {
    let mut t = T::new();
    let a = t.join("a");
    let b = t.join("b");
    t.answer(Cmd::Checkpoint, 0);
    // Once every process has stopped (SUSPEND released), a joiner is too late.
    t.arrive(a, Barrier::Suspend, WorkerState::Presuspend);
    t.arrive(b, Barrier::Suspend, WorkerState::Presuspend);
    let late = t.connect();
    let acts = t.msg(late, Msg::new(Kind::NewWorker), b"h\0late\0");
    let (r, text) = reply_to(&acts, late).expect("refusal");
    assert_eq!(r.kind, Kind::RejectNotRunning);
    assert!(text.contains("checkpoint is in progress"), "{text}");
    assert_eq!(t.c.peer(late), Some(Peer::User), "nothing more is read from it");
    for bar in Barrier::CHECKPOINT.into_iter().skip(1) {
        t.arrive(a, bar, WorkerState::Checkpointing);
        t.arrive(b, bar, WorkerState::Checkpointing);
    }
    // DMT:WriteCkpt is released: `a` runs again and forks while `b` has not reported its image
    // yet. The child is an ordinary worker, not one the checkpoint waits for.
    t.filename(a, "/i/a");
    let (child, acc) = t.join_with("child-of-a", 77, 0);
    assert_eq!(acc.kind, Kind::Accept);
    assert!(t.c.checkpointing());
    t.filename(b, "/i/b");
    let acts = t.feed(Input::ScriptWritten(Ok("s".into())));
    assert!(!t.c.checkpointing(), "{acts:?}");
    // The checkpoint is over but `b` has not resumed yet: welcome too.
    let (_, acc) = t.join_with("child-of-a-again", 78, 0);
    assert_eq!(acc.kind, Kind::Accept);
    t.worker_msg(a, Kind::WorkerResuming, WorkerState::Running, &[]);
    t.worker_msg(b, Kind::WorkerResuming, WorkerState::Running, &[]);
    t.join("welcome");
    assert_eq!(t.c.worker_count(), 5);
    // The next checkpoint counts the children in.
    let (r, _) = t.answer(Cmd::Checkpoint, 0);
    assert_eq!(r.cmd_status, status::SUCCESS);
    let _ = child;
}

/// A restarted process runs once DMT:Restart is released and may fork before every process
/// has said it resumed: its child joins as an ordinary worker; before the release, nobody.
#[test]
fn a_child_forked_right_after_a_restart_is_welcome_but_not_before_the_release() {
    let mut t = T::new();
    let (a, _) = t.restart_worker(FIRST_VPID, 2, 0xabc);
    let early = t.connect();
    let (r, text) = reply_to(&t.msg(early, Msg::new(Kind::NewWorker), b"h\0early\0"), early).unwrap();
    assert_eq!(r.kind, Kind::RejectNotRunning);
    assert!(text.contains("restart is in progress"), "{text}");
    let (b, _) = t.restart_worker(FIRST_VPID + VPID_STEP, 2, 0xabc);
    t.arrive(a, Barrier::Restart, WorkerState::Restarting);
    t.arrive(b, Barrier::Restart, WorkerState::Restarting);
    t.worker_msg(a, Kind::WorkerResuming, WorkerState::Running, &[]);
    assert!(t.c.restarting(), "b has not resumed yet");
    let (_, acc) = t.join_with("child", 9, 0);
    assert_eq!((acc.kind, acc.comp_id), (Kind::Accept, 0xabc));
    assert_ne!(acc.vpid, FIRST_VPID);
    assert_ne!(acc.vpid, FIRST_VPID + VPID_STEP);
    t.worker_msg(b, Kind::WorkerResuming, WorkerState::Running, &[]);
    assert!(!t.c.restarting(), "the child does not hold the restart up");
}

/// A child forked just before the checkpoint reached its parent joins while the others stop:
/// it is part of this checkpoint (its parent's image counts on it), so it is taken in, told to
/// checkpoint, and the SUSPEND barrier waits for it too.
#[test]
fn a_process_joining_before_everyone_stopped_takes_part_in_the_checkpoint() {
    let mut t = T::new();
    let parent = t.join("parent");
    let (req, _) = t.command(Cmd::BlockingCkpt, 0);
    // The parent is still stopping its threads (the forking one returns from fork first).
    let child = t.connect();
    let mut m = Msg::new(Kind::NewWorker);
    m.state = WorkerState::Running as u32;
    let acts = t.msg(child, m, b"h\0child\0");
    let kinds: Vec<Kind> = sent_to(&acts, child).iter().map(|m| m.kind).collect();
    assert_eq!(kinds, vec![Kind::Accept, Kind::DoCheckpoint], "{acts:?}");
    assert_eq!(t.c.worker_count(), 2);
    // SUSPEND waits for the child too.
    assert!(t.arrive(parent, Barrier::Suspend, WorkerState::Presuspend).is_empty());
    let acts = t.arrive(child, Barrier::Suspend, WorkerState::Presuspend);
    assert_eq!(released(&acts, Barrier::Suspend), vec![parent, child]);
    for b in Barrier::CHECKPOINT.into_iter().skip(1) {
        t.arrive(parent, b, WorkerState::Checkpointing);
        assert_eq!(released(&t.arrive(child, b, WorkerState::Checkpointing), b), vec![parent, child]);
    }
    t.filename(parent, "/i/p");
    let (_, text) = script(&t.filename(child, "/i/c")).expect("both images in the script");
    assert!(text.contains("/i/p") && text.contains("/i/c"), "{text}");
    let acts = t.feed(Input::ScriptWritten(Ok("s".into())));
    assert_eq!(reply_to(&acts, req).unwrap().0.cmd_status, status::SUCCESS);
}

#[test]
fn kill_after_checkpoint_sets_the_flag_from_command_or_option() {
    let mut t = T::new();
    let a = t.join("a");
    let (_, acts) = t.command(Cmd::KillAfterCkpt, 0);
    assert_ne!(only_send(&acts, a).flags & FLAG_EXIT_AFTER_CKPT, 0);
    let mut t = T::with(Settings { kill_after_ckpt: true, ..settings() });
    let a = t.join("a");
    let acts = t.console("c");
    assert_ne!(only_send(&acts, a).flags & FLAG_EXIT_AFTER_CKPT, 0);
}

// ---- Restart --------------------------------------------------------------------------

#[test]
fn restart_waits_for_every_process_before_releasing() {
    let mut t = T::new();
    let (a, acts) = t.restart_worker(40000, 3, 0xabcdef);
    let acc = only_send(&acts, a);
    assert_eq!((acc.kind, acc.vpid, acc.comp_id, acc.generation), (Kind::Accept, 40000, 0xabcdef, 3));
    assert!(t.c.restarting());
    assert!(t.arrive(a, Barrier::Restart, WorkerState::Restarting).is_empty());
    let (b, _) = t.restart_worker(41000, 3, 0xabcdef);
    assert!(t.arrive(b, Barrier::Restart, WorkerState::Restarting).is_empty(), "2 of 3");
    // A new process may not join a restarting computation.
    let late = t.connect();
    assert_eq!(
        reply_to(&t.msg(late, Msg::new(Kind::NewWorker), b"h\0l\0"), late).unwrap().0.kind,
        Kind::RejectNotRunning
    );
    let (c, _) = t.restart_worker(42000, 3, 0xabcdef);
    let acts = t.arrive(c, Barrier::Restart, WorkerState::Restarting);
    assert_eq!(released(&acts, Barrier::Restart), vec![a, b, c]);
    assert_eq!(sent_to(&acts, a)[0].num_peers, 3);
    assert!(t.c.restarting() && !t.c.running(), "until every process runs");
    for id in [a, b] {
        t.worker_msg(id, Kind::WorkerResuming, WorkerState::Running, &[]);
    }
    assert!(t.c.restarting());
    t.worker_msg(c, Kind::WorkerResuming, WorkerState::Running, &[]);
    assert!(!t.c.restarting() && t.c.running());
    assert_eq!(t.c.generation(), 3);
    t.answer(Cmd::Checkpoint, 0);
    assert_eq!(t.c.generation(), 4, "checkpoints go on from the image's generation");
}

#[test]
fn restart_refuses_other_computations_counts_and_duplicate_vpids() {
    let mut t = T::new();
    let (a, _) = t.restart_worker(40000, 2, 0x1);
    let (w, acts) = t.restart_worker(41000, 2, 0x2);
    assert_eq!(reply_to(&acts, w).unwrap().0.kind, Kind::RejectWrongComp);
    let (w, acts) = t.restart_worker(41000, 3, 0x1);
    let (r, text) = reply_to(&acts, w).unwrap();
    assert_eq!(r.kind, Kind::RejectWrongComp);
    assert!(text.contains("image says 3 processes, restart has 2"), "{text}");
    let (w, acts) = t.restart_worker(40000, 2, 0x1);
    assert!(reply_to(&acts, w).unwrap().1.contains("virtual pid 40000 is already restarted"));
    assert_eq!(t.c.worker_count(), 1);
    let _ = a;
}

#[test]
fn restart_is_refused_by_a_running_computation_and_during_a_checkpoint() {
    let mut t = T::new();
    let a = t.join("running");
    let (w, acts) = t.restart_worker(40000, 1, 0x1);
    let (r, text) = reply_to(&acts, w).unwrap();
    assert_eq!(r.kind, Kind::RejectNotRestarting);
    assert!(text.contains("already serves"), "{text}");
    t.answer(Cmd::Checkpoint, 0);
    let (w, acts) = t.restart_worker(40000, 1, 0x1);
    assert!(reply_to(&acts, w).unwrap().1.contains("checkpoint is in progress"));
    let _ = a;
}

#[test]
fn a_process_dying_before_it_resumed_fails_the_restart_and_kills_the_others() {
    let mut t = T::new();
    let (a, _) = t.restart_worker(40000, 3, 0x9);
    let (b, _) = t.restart_worker(41000, 3, 0x9);
    t.arrive(a, Barrier::Restart, WorkerState::Restarting);
    // b dies before it resumed: a would resume a computation with a process missing.
    let acts = t.leave(b);
    assert_eq!(recipients(&acts, Kind::KillPeer), vec![a]);
    t.leave(a);
    let (st, _) = t.answer(Cmd::Status, 0);
    assert_eq!(st.flags & (dmtcp_proto::FLAG_RESTARTING | dmtcp_proto::FLAG_RESTART_DONE), 0, "{st:?}");
    // Nothing of it is left: the same images restart again, and complete.
    let ids: Vec<_> = [40000, 41000, 42000].iter().map(|&v| t.restart_worker(v, 3, 0x9)).collect();
    for (c, acts) in &ids {
        assert_eq!(only_send(acts, *c).kind, Kind::Accept);
    }
    let (st, _) = t.answer(Cmd::Status, 0);
    assert_ne!(st.flags & dmtcp_proto::FLAG_RESTARTING, 0, "{st:?}");
}

// ---- Timers ---------------------------------------------------------------------------

#[test]
fn interval_checkpoint_fires_at_its_time_and_rearms_after_the_checkpoint() {
    let mut t = T::with(Settings { interval: 10, ..settings() });
    let a = t.at(2.0).join("timed");
    assert_eq!(t.c.next_interval_ckpt(), Some(secs(12.0)));
    assert_eq!(t.c.next_deadline(), Some(secs(12.0)));
    assert!(t.tick(11.9).is_empty());
    let acts = t.tick(12.0);
    assert_eq!(recipients(&acts, Kind::DoCheckpoint), vec![a]);
    assert_eq!(t.c.next_interval_ckpt(), None, "not during a checkpoint");
    t.walk_barriers(&[a]);
    t.filename(a, "/i/a");
    t.at(13.0).feed(Input::ScriptWritten(Ok("s".into())));
    assert_eq!(t.c.next_interval_ckpt(), Some(secs(23.0)));
    // At 23 s the worker has not resumed: it is tried again a second later.
    assert!(recipients(&t.tick(23.0), Kind::DoCheckpoint).is_empty());
    assert_eq!(t.c.next_interval_ckpt(), Some(secs(23.0) + INTERVAL_RETRY));
    t.worker_msg(a, Kind::WorkerResuming, WorkerState::Running, &[]);
    assert_eq!(recipients(&t.tick(24.0), Kind::DoCheckpoint), vec![a]);
}

#[test]
fn interval_command_changes_and_disables_the_timer() {
    let mut t = T::new();
    let a = t.join("a");
    assert_eq!(t.c.next_interval_ckpt(), None);
    let (r, _) = t.at(1.0).answer(Cmd::UpdateInterval, 3);
    assert_eq!((r.cmd_status, r.interval), (status::SUCCESS, 3));
    assert_eq!(t.c.next_interval_ckpt(), Some(secs(4.0)));
    assert!(t.tick(3.5).is_empty());
    assert_eq!(recipients(&t.tick(4.0), Kind::DoCheckpoint), vec![a]);
    // INTERVAL_UNCHANGED leaves it; 0 stops it.
    t.answer(Cmd::UpdateInterval, INTERVAL_UNCHANGED);
    assert_eq!(t.c.interval(), 3);
    t.answer(Cmd::UpdateInterval, 0);
    assert_eq!((t.c.interval(), t.c.next_interval_ckpt()), (0, None));
}

#[test]
fn the_launchers_interval_applies_and_a_new_computation_gets_the_default() {
    let mut t = T::with(Settings { interval: 60, ..settings() });
    let (a, acc) = t.join_with("launched", 1, 7);
    assert_eq!(acc.interval, 7);
    assert_eq!(t.c.next_interval_ckpt(), Some(secs(7.0)));
    t.leave(a);
    assert_eq!(t.c.next_interval_ckpt(), None, "no worker, no timer");
    let (_, acc) = t.at(100.0).join_with("next", 2, 0);
    assert_eq!(acc.interval, 60);
    assert_eq!(t.c.next_interval_ckpt(), Some(secs(160.0)));
}

#[test]
fn checkpoint_without_progress_fails_after_ckpt_timeout() {
    let mut t = T::with(Settings { ckpt_timeout: Some(secs(5.0)), ..settings() });
    let a = t.join("a");
    let b = t.join("stuck");
    let (req, _) = t.at(10.0).command(Cmd::BlockingCkpt, 0);
    assert_eq!(t.c.next_deadline(), Some(secs(15.0)));
    t.at(13.0).arrive(a, Barrier::Suspend, WorkerState::Presuspend);
    assert_eq!(t.c.next_deadline(), Some(secs(18.0)), "an arrival is progress");
    assert!(t.tick(17.9).is_empty());
    let acts = t.tick(18.0);
    let (r, text) = reply_to(&acts, req).expect("failure");
    assert_eq!(r.cmd_status, status::CKPT_FAILED);
    assert!(text.contains("no progress for 5 s; 1 of 2 processes at barrier DMT:SUSPEND"), "{text}");
    let _ = b;
}

#[test]
fn timeout_and_stale_timeout_exit_with_status_0() {
    let mut t = T::with(Settings { timeout: Some(secs(30.0)), ..settings() });
    t.join("busy");
    assert!(exits(&t.tick(29.0)).is_empty());
    assert_eq!(exits(&t.tick(30.0)), vec![0]);
    assert!(t.tick(31.0).is_empty(), "exit is said once");

    let mut t = T::with(Settings { stale_timeout: Some(secs(10.0)), ..settings() });
    let a = t.at(1.0).join("a");
    assert!(exits(&t.tick(20.0)).is_empty(), "a worker is connected");
    t.at(25.0).leave(a);
    assert_eq!(t.c.next_deadline(), Some(secs(35.0)));
    assert!(exits(&t.tick(34.0)).is_empty());
    assert_eq!(exits(&t.tick(35.0)), vec![0]);
}

// ---- Kill, quit, status ---------------------------------------------------------------

#[test]
fn kill_tells_every_worker_and_refuses_joiners_until_all_are_gone() {
    let mut t = T::new();
    let a = t.join("a");
    let b = t.join("b");
    let (id, acts) = t.command(Cmd::Kill, 0);
    assert_eq!(recipients(&acts, Kind::KillPeer), vec![a, b]);
    assert_eq!(reply_to(&acts, id).unwrap().0.cmd_status, status::SUCCESS);
    let late = t.connect();
    let acts = t.msg(late, Msg::new(Kind::NewWorker), b"h\0l\0");
    assert_eq!(reply_to(&acts, late).unwrap().0.kind, Kind::KillPeer);
    assert_eq!(t.answer(Cmd::Checkpoint, 0).1, "the computation is being killed");
    t.leave(a);
    t.leave(b);
    t.join("new");
    assert_eq!(t.c.worker_count(), 1);
}

#[test]
fn kill_during_a_checkpoint_fails_it() {
    let mut t = T::new();
    let a = t.join("a");
    let (req, _) = t.command(Cmd::BlockingCkpt, 0);
    let acts = t.console("k");
    let (r, text) = reply_to(&acts, req).unwrap();
    assert_eq!(r.cmd_status, status::CKPT_FAILED);
    assert_eq!(text, "the computation was killed");
    assert_eq!(recipients(&acts, Kind::KillPeer), vec![a]);
}

#[test]
fn quit_and_signals_kill_the_workers_and_exit_once() {
    let mut t = T::new();
    let a = t.join("victim");
    let (id, acts) = t.command(Cmd::Quit, 0);
    assert_eq!(reply_to(&acts, id).unwrap().0.cmd_status, status::SUCCESS);
    assert_eq!(recipients(&acts, Kind::KillPeer), vec![a]);
    assert_eq!(exits(&acts), vec![0]);
    assert!(exits(&t.feed(Input::Signal("SIGTERM"))).is_empty(), "already exiting");

    let mut t = T::new();
    assert_eq!(exits(&t.feed(Input::Signal("SIGINT"))), vec![0]);
    let mut t = T::new();
    assert_eq!(exits(&t.console("q")), vec![0]);
}

#[test]
fn exit_on_last_quits_when_the_last_worker_leaves() {
    let mut t = T::with(Settings { exit_on_last: true, ..settings() });
    assert!(exits(&t.tick(100.0)).is_empty(), "never had a worker");
    let a = t.join("a");
    let b = t.join("b");
    assert!(exits(&t.leave(a)).is_empty());
    assert_eq!(exits(&t.leave(b)), vec![0]);
}

#[test]
fn status_and_list_count_workers_and_their_states() {
    let mut t = T::new();
    let (r, _) = t.answer(Cmd::Status, 0);
    assert_eq!((r.num_peers, r.running, r.state), (0, 0, WorkerState::Unknown as u32));
    let a = t.join_with("fakeprog", 4242, 0).0;
    let b = t.join_with("other", 4343, 0).0;
    let (r, _) = t.answer(Cmd::Status, 0);
    assert_eq!((r.num_peers, r.running, r.state), (2, 1, WorkerState::Running as u32));
    let (_, list) = t.answer(Cmd::List, 0);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 4, "{list}");
    assert!(lines[2].starts_with("1, fakeprog[40000:4242]@host, ") && lines[2].ends_with(", RUNNING"), "{list}");
    assert!(lines[3].starts_with("2, other[41000:4343]@host, "), "{list}");
    t.answer(Cmd::Checkpoint, 0);
    t.arrive(a, Barrier::Suspend, WorkerState::Presuspend);
    // The computation's state is its least advanced worker's.
    let (r, _) = t.answer(Cmd::Status, 0);
    assert_eq!((r.num_peers, r.running, r.state), (2, 0, WorkerState::Running as u32));
    t.arrive(b, Barrier::Suspend, WorkerState::Presuspend);
    let (r, _) = t.answer(Cmd::Status, 0);
    assert_eq!((r.num_peers, r.running, r.state), (2, 0, WorkerState::Presuspend as u32));
    let mut m = Msg::new(Kind::UserCmd);
    m.cmd = 99;
    let id = t.connect();
    assert_eq!(reply_to(&t.msg(id, m, &[]), id).unwrap().0.cmd_status, status::INVALID_COMMAND);
}

#[test]
fn console_commands_print_and_change_the_interval() {
    let mut t = T::new();
    let s = printed(&t.console("s"));
    assert!(s.contains("Port: 7779\n") && s.contains("NUM_PEERS=0\n") && s.contains("RUNNING=no\n"), "{s}");
    assert!(s.contains("Checkpoint Dir: /ckpt\n"), "{s}");
    assert_eq!(printed(&t.console("i 12")), "Checkpoint Interval: 12 s\n");
    assert_eq!(printed(&t.console("i7")), "Checkpoint Interval: 7 s\n");
    assert_eq!(printed(&t.console("  i  ")), "Checkpoint Interval: 7 s\n");
    assert_eq!(printed(&t.console("i x")), "not a number of seconds: x\n");
    assert_eq!(printed(&t.console("k")), "no process to kill\n");
    assert!(printed(&t.console("zap")).contains("unknown command 'zap'"));
    assert_eq!(printed(&t.console("?")), CONSOLE_HELP);
    assert!(t.console("").is_empty());
    // A new computation takes the interval set last.
    let (_, acc) = t.join_with("a", 1, 0);
    assert_eq!(acc.interval, 7);
}

#[test]
fn restart_script_quotes_images_and_names_the_coordinator() {
    let mut t = T::with(Settings { listen_host: "0.0.0.0".into(), interval: 5, ..settings() });
    let a = t.join("a");
    t.answer(Cmd::Checkpoint, 0);
    t.walk_barriers(&[a]);
    let (_, text) = script(&t.filename(a, "/i/it's.dmtcp")).unwrap();
    assert!(text.starts_with("#!/bin/bash\n"), "{text}");
    assert!(text.contains("coord_host=${DMTCP_COORD_HOST:-'testhost'}"), "unspecified address: host name: {text}");
    assert!(text.contains("coord_port=${DMTCP_COORD_PORT:-7779}"), "{text}");
    assert!(text.contains("checkpoint_interval=${DMTCP_CHECKPOINT_INTERVAL:-5}"), "{text}");
    assert!(text.contains("exec dmtcp_restart --coord-host"), "{text}");
    assert!(text.contains("'/i/it'\\''s.dmtcp'"), "{text}");
    assert!(text.ends_with("'\n"), "{text}");
}

#[test]
fn command_client_gone_before_the_answer_is_forgotten() {
    let mut t = T::new();
    let a = t.join("a");
    let (req, _) = t.command(Cmd::BlockingCkpt, 0);
    assert!(t.c.awaits_answer(req));
    t.leave(req);
    assert!(!t.c.awaits_answer(req));
    t.walk_barriers(&[a]);
    t.filename(a, "/i/a");
    let acts = t.feed(Input::ScriptWritten(Ok("s".into())));
    assert!(reply_to(&acts, req).is_none());
    assert!(!t.c.checkpointing());
}

mod adversary;

#[test]
fn an_image_name_before_the_last_barrier_drops_its_worker() {
    let mut t = T::new();
    let ids = [t.join("a"), t.join("b")];
    t.command(Cmd::BlockingCkpt, 0);
    for &id in &ids {
        t.arrive(id, Barrier::Suspend, WorkerState::Presuspend);
    }
    let acts = t.filename(ids[0], "/i/early.dmtcp");
    assert_eq!(dropped(&acts), vec![ids[0]], "{acts:?}");
    assert!(script(&acts).is_none());
    // Once it is gone, the checkpoint of the other goes on and its script has one image.
    t.leave(ids[0]);
    for b in Barrier::CHECKPOINT.into_iter().skip(1) {
        assert_eq!(released(&t.arrive(ids[1], b, WorkerState::Checkpointing), b), vec![ids[1]]);
    }
    let (_, text) = script(&t.filename(ids[1], "/i/b.dmtcp")).expect("script");
    assert!(text.contains("/i/b.dmtcp") && !text.contains("early"), "{text}");
}

// ---- Fds that cannot be restored -----------------------------------------------------------

impl T {
    fn fd_warning(&mut self, id: ClientId, text: &str, strict: bool) -> Vec<Action> {
        let mut m = Msg::new(Kind::FdWarning);
        m.state = WorkerState::Checkpointing as u32;
        if strict {
            m.flags |= FLAG_STRICT;
        }
        self.msg(id, m, text.as_bytes())
    }
    /// Walks `b` with every worker; returns the release each got.
    fn walk(&mut self, ids: &[ClientId], b: Barrier) -> Vec<Msg> {
        let mut acts = Vec::new();
        for &id in ids {
            acts = self.arrive(id, b, WorkerState::Checkpointing);
        }
        ids.iter().map(|&id| only_send(&acts, id)).collect()
    }
}

#[test]
fn an_unsupported_fd_is_a_warning_in_the_blocking_checkpoints_answer() {
    let mut t = T::new();
    let ids = [t.join("a"), t.join("netlinker")];
    let (req, _) = t.command(Cmd::BlockingCkpt, 0);
    t.walk(&ids, Barrier::Suspend);
    t.walk(&ids, Barrier::Checkpoint);
    assert!(t.fd_warning(ids[1], "fd 5 (netlink socket, socket:[77])", false).is_empty());
    for r in t.walk(&ids, Barrier::Drain) {
        assert_eq!(r.flags & FLAG_CKPT_ABANDONED, 0, "a warning does not abandon the checkpoint");
    }
    t.walk(&ids, Barrier::WriteCkpt);
    t.filename(ids[0], "/i/a.dmtcp");
    assert!(script(&t.filename(ids[1], "/i/b.dmtcp")).is_some());
    let acts = t.feed(Input::ScriptWritten(Ok("/ckpt/s.sh".into())));
    let (r, text) = reply_to(&acts, req).expect("answer");
    assert_eq!(r.cmd_status, status::SUCCESS);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with("netlinker[")
            && text.contains("]@host: fd 5 (netlink socket, socket:[77]) cannot be restored"),
        "{text}"
    );
    // The next checkpoint starts without the old warnings.
    for id in ids {
        t.worker_msg(id, Kind::WorkerResuming, WorkerState::Running, &[]);
    }
    let (req, _) = t.command(Cmd::BlockingCkpt, 0);
    t.walk_barriers(&ids);
    t.filename(ids[0], "/i/a.dmtcp");
    t.filename(ids[1], "/i/b.dmtcp");
    let acts = t.feed(Input::ScriptWritten(Ok("/ckpt/s.sh".into())));
    assert_eq!(reply_to(&acts, req).expect("answer").1, "");
}

#[test]
fn strict_abandons_the_checkpoint_at_drain_and_fails_it_after_writeckpt_with_the_message() {
    for (option, flag) in [(true, false), (false, true)] {
        let mut t = T::with(Settings { strict: option, ..settings() });
        let ids = [t.join("a"), t.join("b")];
        let (req, _) = t.command(Cmd::BlockingCkpt, 0);
        t.walk(&ids, Barrier::Suspend);
        t.walk(&ids, Barrier::Checkpoint);
        t.fd_warning(ids[0], "fd 9 (packet socket, socket:[5])", flag);
        for r in t.walk(&ids, Barrier::Drain) {
            assert_ne!(r.flags & FLAG_CKPT_ABANDONED, 0, "every process is told not to write its image");
        }
        // Nobody writes an image; after DMT:WriteCkpt the answer is the failure, naming it.
        let mut acts = Vec::new();
        for &id in &ids {
            assert!(reply_to(&acts, req).is_none());
            acts = t.arrive(id, Barrier::WriteCkpt, WorkerState::Running);
        }
        assert_eq!(released(&acts, Barrier::WriteCkpt), ids.to_vec());
        let (r, text) = reply_to(&acts, req).expect("answer");
        assert_eq!(r.cmd_status, status::CKPT_FAILED);
        assert!(
            text.contains("a[") && text.contains("fd 9 (packet socket, socket:[5]) cannot be restored (--strict)"),
            "{text}"
        );
        assert!(script(&acts).is_none());
        assert!(!t.c.checkpointing());
        // The computation goes on: once both run again, a checkpoint can start.
        for id in ids {
            t.worker_msg(id, Kind::WorkerResuming, WorkerState::Running, &[]);
        }
        assert_eq!(t.answer(Cmd::Checkpoint, 0).0.cmd_status, status::SUCCESS);
    }
}

#[test]
fn a_warning_outside_a_checkpoint_changes_nothing() {
    let mut t = T::new();
    let a = t.join("a");
    let mut m = Msg::new(Kind::FdWarning);
    m.state = WorkerState::Running as u32;
    m.flags = FLAG_STRICT;
    assert!(t.msg(a, m, b"fd 3 (socket)").is_empty());
    assert!(t.c.running());
    assert_eq!(t.answer(Cmd::Checkpoint, 0).0.cmd_status, status::SUCCESS);
}

#[test]
fn bcheckpoint_progress_sums_each_workers_last_figures_and_comes_before_the_answer() {
    use dmtcp_proto::{Progress, FLAG_PROGRESS};
    fn sums(acts: &[Action], req: ClientId) -> Vec<Progress> {
        acts.iter()
            .filter_map(|a| match a {
                Action::Send { to, msg, extra } if *to == req && msg.kind == Kind::CkptProgress => {
                    Progress::decode(extra)
                }
                _ => None,
            })
            .collect()
    }
    fn progress(t: &mut T, id: ClientId, written: u64, total: u64, stored: u64, done: u32) -> Vec<Action> {
        let p = Progress { written, total, stored, done, elapsed_ms: 0 };
        t.worker_msg(id, Kind::CkptProgress, WorkerState::Checkpointing, &p.encode())
    }
    let mut asking = Msg::new(Kind::UserCmd);
    asking.cmd = Cmd::BlockingCkpt as u32;
    asking.flags = FLAG_PROGRESS;

    let mut t = T::new();
    let ids = [t.join("a"), t.join("b")];
    let req = t.connect();
    t.at(1.0).msg(req, asking, &[]);
    let acts = progress(&mut t, ids[0], 10, 100, 0, 0);
    assert_eq!(sums(&acts, req).len(), 1, "{acts:?}");
    t.at(1.5);
    let s = sums(&progress(&mut t, ids[1], 5, 50, 0, 0), req)[0];
    assert_eq!((s.written, s.total, s.done, s.elapsed_ms), (15, 150, 0, 500));
    // A later report replaces the earlier one: nothing counts twice.
    let s = sums(&progress(&mut t, ids[0], 100, 100, 40, 1), req)[0];
    assert_eq!((s.written, s.total, s.stored, s.done), (105, 150, 40, 1));
    let s = sums(&progress(&mut t, ids[1], 60, 60, 20, 1), req)[0];
    assert_eq!((s.written, s.total, s.stored, s.done), (160, 160, 60, 2));
    // A payload too short to be progress drops the worker.
    assert_eq!(dropped(&t.msg(ids[0], Msg::new(Kind::CkptProgress), b"short")), vec![ids[0]]);

    // The final sums come right before the answer, to the client that asked only.
    let mut t = T::new();
    let ids = [t.join("a")];
    let req = t.connect();
    t.at(1.0).msg(req, asking, &[]);
    progress(&mut t, ids[0], 70, 70, 30, 1);
    t.walk_barriers(&ids);
    let _ = t.filename(ids[0], "/i/a.dmtcp");
    let acts = t.at(3.0).feed(Input::ScriptWritten(Ok("/ckpt/s.sh".into())));
    let to_req: Vec<&Action> = acts
        .iter()
        .filter(|a| matches!(a, Action::Send { to, .. } | Action::SendAndClose { to, .. } if *to == req))
        .collect();
    assert_eq!(to_req.len(), 2, "{acts:?}");
    let s = sums(&acts, req)[0];
    assert_eq!((s.written, s.stored, s.done, s.elapsed_ms), (70, 30, 1, 2000));
    assert!(matches!(to_req[1], Action::SendAndClose { msg, .. } if msg.kind == Kind::UserCmdResult));
}

// ---- Incremental or full, per checkpoint ------------------------------------------------

/// The DoCheckpoint each worker gets for a checkpoint command with `flags`.
fn ckpt_flags_for(t: &mut T, ids: &[ClientId], cmd: Cmd, flags: u32) -> Vec<u32> {
    let id = t.connect();
    let mut m = Msg::new(Kind::UserCmd);
    m.cmd = cmd as u32;
    m.flags = flags;
    let acts = t.msg(id, m, &[]);
    let got = ids.iter().map(|&w| only_send(&acts, w).flags & (FLAG_INCREMENTAL | FLAG_FULL)).collect();
    t.walk_barriers(ids);
    for (k, &w) in ids.iter().enumerate() {
        t.filename(w, &format!("/i/{k}"));
    }
    t.feed(Input::ScriptWritten(Ok("s".into())));
    for &w in ids {
        t.worker_msg(w, Kind::WorkerResuming, WorkerState::Running, &[]);
    }
    got
}

#[test]
fn a_command_asks_every_process_for_delta_or_full_images_of_one_checkpoint() {
    let mut t = T::new();
    let ids = [t.join("a"), t.join("b")];
    let inc = FLAG_INCREMENTAL;
    assert_eq!(ckpt_flags_for(&mut t, &ids, Cmd::BlockingCkpt, inc), vec![inc, inc]);
    assert_eq!(ckpt_flags_for(&mut t, &ids, Cmd::Checkpoint, FLAG_FULL), vec![FLAG_FULL, FLAG_FULL]);
    assert_eq!(ckpt_flags_for(&mut t, &ids, Cmd::Checkpoint, 0), vec![0, 0], "as launched");
    // Other bits of a command's flags are not passed on.
    assert_eq!(ckpt_flags_for(&mut t, &ids, Cmd::BlockingCkpt, FLAG_EXIT_AFTER_CKPT), vec![0, 0]);
}

#[test]
fn an_incremental_coordinator_asks_for_deltas_on_its_own_checkpoints_but_a_full_one_wins() {
    let mut t = T::with(Settings { incremental: true, interval: 10, ..settings() });
    let a = t.at(1.0).join("a");
    let acts = t.tick(11.0);
    assert_eq!(only_send(&acts, a).flags & (FLAG_INCREMENTAL | FLAG_FULL), FLAG_INCREMENTAL, "interval checkpoint");
    t.walk_barriers(&[a]);
    t.filename(a, "/i/a");
    t.feed(Input::ScriptWritten(Ok("s".into())));
    t.worker_msg(a, Kind::WorkerResuming, WorkerState::Running, &[]);
    assert_eq!(ckpt_flags_for(&mut t, &[a], Cmd::Checkpoint, 0), vec![FLAG_INCREMENTAL]);
    assert_eq!(ckpt_flags_for(&mut t, &[a], Cmd::KillAfterCkpt, FLAG_FULL), vec![FLAG_FULL]);
}
