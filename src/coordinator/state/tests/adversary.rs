//! Adversarial input: thousands of random sequences of connections, messages, departures,
//! console lines and ticks, as fake workers and command clients could send them (wrong order,
//! wrong barrier, wrong computation id, a worker claiming another's pid, junk payloads). The
//! driver behaves as `event_loop.rs` does (a dropped or answered-and-closed client is reaped
//! with `Disconnected` after the batch; a script write is answered at once), so only the
//! clients misbehave. After each sequence every client leaves, and the computation must still
//! take two honest workers through a whole blocking checkpoint: junk never wedges it.
use super::*;

/// xorshift64*: deterministic, so a failing seed reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

/// Every kind, the ones that drive a checkpoint several times over.
const KINDS: [Kind; 27] = [
    Kind::NewWorker,
    Kind::NewWorker,
    Kind::NewWorker,
    Kind::UserCmd,
    Kind::UserCmd,
    Kind::UserCmd,
    Kind::Barrier,
    Kind::Barrier,
    Kind::Barrier,
    Kind::Barrier,
    Kind::CkptFilename,
    Kind::NewWorker,
    Kind::RestartWorker,
    Kind::Accept,
    Kind::RejectNotRestarting,
    Kind::RejectWrongComp,
    Kind::RejectNotRunning,
    Kind::UpdateAfterExec,
    Kind::CkptFilename,
    Kind::UserCmd,
    Kind::UserCmdResult,
    Kind::DoCheckpoint,
    Kind::Barrier,
    Kind::BarrierReleased,
    Kind::WorkerResuming,
    Kind::KillPeer,
    Kind::CkptFailed,
];

const CONSOLE: [&str; 9] = ["c", "s", "l", "k", "i 3", "i 0", "?", "bogus line", ""];

/// The fake network: who is connected, who is doomed, what every action targeted.
struct Driver {
    t: T,
    open: Vec<ClientId>,
    doomed: Vec<ClientId>,
    exited: bool,
    trace: Vec<String>,
    /// Whether the junk ever got a checkpoint or a restart going (the test checks it does).
    saw_ckpt: bool,
    saw_restart: bool,
}

impl Driver {
    fn new() -> Driver {
        Driver {
            t: T::new(),
            open: Vec::new(),
            doomed: Vec::new(),
            exited: false,
            trace: Vec::new(),
            saw_ckpt: false,
            saw_restart: false,
        }
    }

    /// Feeds one input and carries out the actions the way the event loop does.
    fn feed(&mut self, input: Input<'_>) {
        self.trace.push(format!("{input:?}"));
        let acts = self.t.feed(input);
        self.carry_out(acts);
        while let Some(c) = self.doomed.pop() {
            self.open.retain(|&o| o != c);
            self.trace.push(format!("reap {c}"));
            let acts = self.t.feed(Input::Disconnected { client: c });
            self.carry_out(acts);
        }
    }

    /// Checks every action names a connected client, dooms the ones to close, and answers a
    /// script write at once (and what that answer brings), as `event_loop.rs` does.
    fn carry_out(&mut self, mut acts: Vec<Action>) {
        loop {
            self.saw_ckpt |= self.t.c.checkpointing();
            self.saw_restart |= self.t.c.restarting();
            let mut script = false;
            for a in &acts {
                match a {
                    Action::Send { to, .. } | Action::SendAndClose { to, .. } | Action::Drop { client: to, .. } => {
                        assert!(self.open.contains(to), "an action for a client that is not connected: {a:?}");
                        if !matches!(a, Action::Send { .. }) && !self.doomed.contains(to) {
                            self.doomed.push(*to);
                        }
                    }
                    Action::WriteRestartScript { .. } => script = true,
                    Action::Exit(_) => self.exited = true,
                    Action::Print(_) => {}
                }
            }
            if !script {
                return;
            }
            self.trace.push("script written".into());
            acts = self.t.feed(Input::ScriptWritten(Ok("/ckpt/dmtcp_restart_script.sh".into())));
        }
    }

    fn connect(&mut self) {
        let id = self.t.next_id;
        self.t.next_id += 1;
        self.open.push(id);
        self.feed(Input::Connected { client: id, peer: "127.0.0.1:4000" });
    }

    /// A message with fields drawn so that they often collide with real ones.
    fn junk(&mut self, r: &mut Rng) -> (Msg, Vec<u8>) {
        let mut m = Msg::new(*r.pick(&KINDS));
        m.state = r.below(9) as u32;
        m.cmd = r.below(11) as u32;
        m.pid = r.below(6) as i32 + 1000;
        m.vpid = *r.pick(&[0, 40000, 40001, 40002, -1, i32::MAX]);
        m.num_peers = *r.pick(&[0, 1, 2, 3, u32::MAX]);
        let other = r.next();
        m.comp_id = *r.pick(&[0, self.t.c.comp_id(), other]);
        m.generation = r.below(4) as u32;
        m.interval = *r.pick(&[0, 1, 5, INTERVAL_UNCHANGED]);
        m.flags = r.below(4) as u32;
        let names: [&[u8]; 7] = [
            Barrier::Suspend.name(),
            Barrier::Checkpoint.name(),
            Barrier::Drain.name(),
            Barrier::WriteCkpt.name(),
            Barrier::Restart.name(),
            b"DMT:NOPE",
            b"",
        ];
        m = m.with_name(r.pick::<&[u8]>(&names));
        let extra: Vec<u8> = match r.below(5) {
            0 => Vec::new(),
            1 => b"host\0prog\0".to_vec(),
            2 => b"/i/x.dmtcp\0".to_vec(),
            3 => b"no terminator".to_vec(),
            _ => (0..r.below(64)).map(|_| r.next() as u8).collect(),
        };
        // Half the time, a message that is well formed for some role, so that the junk gets
        // workers accepted, checkpoints started and barriers walked (and then misbehaves).
        if r.below(2) == 0 {
            match m.kind {
                Kind::NewWorker | Kind::RestartWorker => {
                    m.state =
                        if m.kind == Kind::NewWorker { WorkerState::Running } else { WorkerState::Restarting } as u32;
                    return (m, b"host\0prog\0".to_vec());
                }
                Kind::UserCmd => m.cmd = *r.pick(&[Cmd::Checkpoint, Cmd::BlockingCkpt, Cmd::Status, Cmd::Kill]) as u32,
                Kind::Barrier => m.state = WorkerState::Checkpointing as u32,
                Kind::CkptFilename => return (m, b"/i/x.dmtcp\0".to_vec()),
                _ => {}
            }
        }
        (m, extra)
    }

    fn step(&mut self, r: &mut Rng) {
        match r.below(100) {
            0..=14 if self.open.len() < 8 => self.connect(),
            0..=59 if !self.open.is_empty() => {
                let c = *r.pick(&self.open.clone());
                // The event loop reads nothing more from a user client or a doomed one.
                if self.t.c.peer(c) == Some(Peer::User) || self.doomed.contains(&c) {
                    return;
                }
                let (msg, extra) = self.junk(r);
                self.feed(Input::Message { client: c, msg, extra: &extra });
            }
            60..=74 if !self.open.is_empty() => {
                let c = *r.pick(&self.open.clone());
                self.open.retain(|&o| o != c);
                self.feed(Input::Disconnected { client: c });
            }
            75..=84 => {
                let line = *r.pick(&CONSOLE);
                self.feed(Input::Console(line));
            }
            _ => {
                self.t.now += Duration::from_millis(r.below(3000));
                self.feed(Input::Tick);
            }
        }
    }

    /// Everyone leaves; then two honest workers must get through a blocking checkpoint.
    fn honest_checkpoint_still_works(&mut self) {
        for c in self.open.clone() {
            self.open.retain(|&o| o != c);
            self.feed(Input::Disconnected { client: c });
        }
        assert_eq!(self.t.c.worker_count(), 0);
        assert!(
            !self.t.c.checkpointing() && !self.t.c.restarting(),
            "state left behind after everyone left: checkpointing {}, restarting {}",
            self.t.c.checkpointing(),
            self.t.c.restarting()
        );
        // No interval checkpoint in the honest part: the junk may have set one.
        let a = self.t.join("honest-a");
        let b = self.t.join("honest-b");
        let (req, acts) = self.t.command(Cmd::BlockingCkpt, 0);
        assert_eq!(recipients(&acts, Kind::DoCheckpoint), vec![a, b], "{acts:?}");
        self.t.walk_barriers(&[a, b]);
        self.t.filename(a, "/i/a.dmtcp");
        let acts = self.t.filename(b, "/i/b.dmtcp");
        assert!(script(&acts).is_some(), "{acts:?}");
        let acts = self.t.feed(Input::ScriptWritten(Ok("/ckpt/dmtcp_restart_script.sh".into())));
        let (r, text) = reply_to(&acts, req).expect("the blocking checkpoint's answer");
        assert_eq!(r.cmd_status, status::SUCCESS, "{text}");
    }
}

#[test]
fn random_message_sequences_never_wedge_the_computation() {
    const RUNS: u64 = 3000;
    const STEPS: usize = 80;
    let (mut exits, mut ckpts, mut restarts) = (0, 0, 0);
    for seed in 1..=RUNS {
        let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut d = Driver::new();
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for _ in 0..STEPS {
                d.step(&mut r);
                if d.exited {
                    return;
                }
            }
            d.honest_checkpoint_still_works();
        }));
        exits += d.exited as u64;
        ckpts += d.saw_ckpt as u64;
        restarts += d.saw_restart as u64;
        if let Err(e) = run {
            let msg = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
            let tail: Vec<&String> = d.trace.iter().rev().take(40).collect();
            panic!("seed {seed}: {}\nlast inputs, newest first:\n{tail:#?}", msg.unwrap_or_default());
        }
    }
    // The console's "k" ends some runs; most must reach the honest part.
    eprintln!("{RUNS} runs: {exits} exited, {ckpts} checkpointed, {restarts} restarted");
    assert!(exits < RUNS / 2, "{exits} of {RUNS} runs exited before the honest checkpoint");
    // The junk must reach the interesting states, or the test proves nothing.
    assert!(ckpts > RUNS / 20 && restarts > RUNS / 100, "checkpoints in {ckpts} runs, restarts in {restarts}");
}
