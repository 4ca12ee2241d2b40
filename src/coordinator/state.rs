//! The computation as a state machine: which clients are workers and which are command clients,
//! virtual pids, the checkpoint and restart in flight, their barriers, the interval timer and the
//! user commands. It does no I/O and reads no clock: the event loop passes every input with the
//! time it happened (`now`, monotonic, from any fixed origin) and carries out the `Action`s
//! returned, in order.
//!
//! Barriers come in the order of `dmtcp_proto::barrier::Barrier` (the one the preload library
//! runs): a worker that arrives at another barrier than the one due is dropped.
use dmtcp_proto::barrier::Barrier;
use dmtcp_proto::{
    split_worker_payload, status, Cmd, Kind, Msg, WorkerState, FLAG_CKPT_ABANDONED, FLAG_EXIT_AFTER_CKPT, FLAG_FULL,
    FLAG_INCREMENTAL, FLAG_STRICT, INTERVAL_UNCHANGED,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

/// A connection, as the event loop numbers them.
pub type ClientId = u64;

pub const FIRST_VPID: i32 = 40000;
pub const VPID_STEP: i32 = 1000;
pub const VPID_LIMIT: i32 = 1_000_000;
/// An interval checkpoint that cannot start (not every process runs) is tried again this late.
pub const INTERVAL_RETRY: Duration = Duration::from_secs(1);

/// What the options and the host decide, for the coordinator's life (but `interval`).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Checkpoint interval in seconds (0 = manually) each new computation starts with; an
    /// interval command changes it.
    pub interval: u32,
    pub exit_on_last: bool,
    pub kill_after_ckpt: bool,
    /// `--incremental`: every checkpoint this coordinator starts asks for delta images
    /// (FLAG_INCREMENTAL), but one a command asks to be full.
    pub incremental: bool,
    /// `--strict`: an fd that cannot be restored abandons the checkpoint (a process can ask
    /// for it too, FLAG_STRICT on its FdWarning).
    pub strict: bool,
    /// Quit this long after the start, whatever happens.
    pub timeout: Option<Duration>,
    /// Quit after this long without any worker.
    pub stale_timeout: Option<Duration>,
    /// Fail a checkpoint that makes no progress for this long.
    pub ckpt_timeout: Option<Duration>,
    /// This host's name (status text, restart script, computation id).
    pub hostname: String,
    /// The address the coordinator listens on, as given.
    pub listen_host: String,
    pub port: u16,
    /// The directory of the restart script, for messages.
    pub ckptdir: String,
    /// How the restart script runs dmtcp_restart (already shell-quoted).
    pub restart_command: String,
    /// Mixed into computation ids so that two coordinators do not make the same one.
    pub seed: u64,
}

/// What happened.
#[derive(Debug)]
pub enum Input<'a> {
    /// A new connection; it says what it is with its first message.
    Connected { client: ClientId, peer: &'a str },
    /// A complete message (header and payload) from a client.
    Message { client: ClientId, msg: Msg, extra: &'a [u8] },
    /// The connection is gone (closed, error, or dropped on request).
    Disconnected { client: ClientId },
    /// One line typed on the coordinator's stdin.
    Console(&'a str),
    /// A signal asking the coordinator to quit (SIGINT, SIGTERM), by name.
    Signal(&'a str),
    /// The outcome of `Action::WriteRestartScript`: the script's path, or why it failed.
    ScriptWritten(Result<String, String>),
    /// Time passed; timers may fire.
    Tick,
}

/// What the event loop must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Queue a message (with `extra_len` set from `extra`) for a client.
    Send { to: ClientId, msg: Msg, extra: Vec<u8> },
    /// Queue a reply and close the connection once it is written.
    SendAndClose { to: ClientId, msg: Msg, extra: Vec<u8> },
    /// Close a connection at once; `reason` is worth a warning.
    Drop { client: ClientId, reason: Option<String> },
    /// Write `contents` to `file_name` in the checkpoint directory, point
    /// `dmtcp_restart_script.sh` at it, and report with `Input::ScriptWritten` before anything
    /// else happens.
    WriteRestartScript { file_name: String, contents: String },
    /// Print text on stdout (answers to console commands).
    Print(String),
    /// Flush what is queued and exit with this status.
    Exit(i32),
}

/// What a client is, as far as the computation is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// Connected; its first message has not arrived yet.
    Pending,
    /// A process of the computation.
    Worker,
    /// A command client, or a refused connection: nothing more is read from it.
    User,
}

/// A process of the computation, as the coordinator knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Worker {
    pub vpid: i32,
    pub pid: i32,
    pub host: String,
    pub prog: String,
    pub state: WorkerState,
    /// DMTCP-style unique pid: hostid-vpid-time.
    pub unique: String,
}

enum Role {
    Pending,
    Worker(Worker),
    User,
}

struct Client {
    peer: String,
    role: Role,
    /// A drop was asked for; it no longer counts, its departure is still to come.
    dead: bool,
}

impl Client {
    fn worker(&self) -> Option<&Worker> {
        match &self.role {
            Role::Worker(w) if !self.dead => Some(w),
            _ => None,
        }
    }
    fn label(&self) -> String {
        match &self.role {
            Role::Worker(w) => format!("{}[{}:{}]@{}", w.prog, w.vpid, w.pid, w.host),
            Role::User => format!("command client {}", self.peer),
            Role::Pending => format!("connection from {}", self.peer),
        }
    }
}

struct Ckpt {
    generation: u32,
    kill_after: bool,
    /// FLAG_INCREMENTAL or FLAG_FULL (or 0: as the processes were launched), for DoCheckpoint.
    image_flags: u32,
    /// Workers taking part that are still connected.
    participants: BTreeSet<ClientId>,
    /// Image paths reported, by client (kept when the worker exits afterwards).
    filenames: BTreeMap<ClientId, (i32, String)>,
    /// `--bcheckpoint` clients waiting for the outcome.
    requesters: Vec<ClientId>,
    started: Duration,
    last_progress: Duration,
    /// The restart script was asked for; its outcome decides.
    writing_script: bool,
    /// Fds that cannot be restored, as "process: fd N (kind) cannot be restored": warnings,
    /// and under `--strict` the reasons the checkpoint is abandoned.
    warnings: Vec<String>,
    abandon: Vec<String>,
    /// Each worker's last image progress, and the `--bcheckpoint` clients that want the sums
    /// (`progress.rs`).
    progress: BTreeMap<ClientId, dmtcp_proto::Progress>,
    progress_to: Vec<ClientId>,
}

struct Restart {
    /// How many processes the images say the computation has.
    expected: u32,
    participants: BTreeSet<ClientId>,
}

/// The barrier some members of the group arrived at.
struct Arrivals {
    barrier: Barrier,
    arrived: BTreeSet<ClientId>,
}

/// The coordinator's whole computation state.
pub struct Computation {
    cfg: Settings,
    clients: HashMap<ClientId, Client>,
    comp_id: u64,
    timestamp: u64,
    generation: u32,
    interval: u32,
    next_ckpt: Option<Duration>,
    next_vpid: i32,
    ckpt: Option<Ckpt>,
    restart: Option<Restart>,
    /// The last restart begun here completed (every process resumed); false while one runs
    /// and after one failed. `dmtcp_restart` watches it (FLAG_RESTART_DONE in the status).
    restart_done: bool,
    /// The barrier being gathered, if anyone arrived.
    barrier: Option<Arrivals>,
    /// The barrier the group must pass next (None: no barrier is due).
    next_barrier: Option<Barrier>,
    kill_in_progress: bool,
    ever_had_worker: bool,
    no_workers_since: Duration,
    started: Duration,
    exiting: bool,
    out: Vec<Action>,
}

/// DMTCP's host id: a hash of the host name (h = c + 331·h).
pub fn host_id(name: &str) -> u32 {
    name.bytes().fold(0u32, |h, c| (c as u32).wrapping_add(h.wrapping_mul(331)))
}

pub fn interval_text(i: u32) -> String {
    if i == 0 {
        "disabled (checkpoint manually)".to_string()
    } else {
        format!("{i} s")
    }
}

/// Text of a NUL-terminated payload (up to the first NUL), lossily as UTF-8.
fn payload_text(extra: &[u8]) -> String {
    let end = extra.iter().position(|&c| c == 0).unwrap_or(extra.len());
    String::from_utf8_lossy(&extra[..end]).into_owned()
}

/// Quotes `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos() as u64
}

pub const CONSOLE_HELP: &str = "\
COMMANDS:
  l : List connected nodes
  s : Print status message
  c : Checkpoint all nodes
  kc : Checkpoint all nodes, and kill them afterwards
  i : Print current checkpoint interval
      (To change checkpoint interval, use 'i <val>', where <val> is in seconds)
  k : Kill all nodes
  q : Kill all nodes and quit
  ? : Show this message
";

/// The outcome of a user command: status, header fields, text payload.
struct Reply {
    msg: Msg,
    text: String,
}

impl Computation {
    pub fn new(cfg: Settings, now: Duration) -> Computation {
        Computation {
            clients: HashMap::new(),
            comp_id: 0,
            timestamp: 0,
            generation: 0,
            interval: cfg.interval,
            next_ckpt: None,
            next_vpid: FIRST_VPID,
            ckpt: None,
            restart: None,
            restart_done: false,
            barrier: None,
            next_barrier: None,
            kill_in_progress: false,
            ever_had_worker: false,
            no_workers_since: now,
            started: now,
            exiting: false,
            out: Vec::new(),
            cfg,
        }
    }

    /// Feeds one input; returns what to do, in order.
    pub fn handle(&mut self, now: Duration, input: Input<'_>) -> Vec<Action> {
        match input {
            Input::Connected { client, peer } => {
                self.clients.insert(client, Client { peer: peer.to_string(), role: Role::Pending, dead: false });
            }
            Input::Message { client, msg, extra } => self.message(now, client, msg, extra),
            Input::Disconnected { client } => self.disconnected(now, client),
            Input::Console(line) => self.console(now, line),
            Input::Signal(name) => self.quit_at(now, &format!("received {name}")),
            Input::ScriptWritten(r) => self.script_written(now, r),
            Input::Tick => self.tick(now),
        }
        std::mem::take(&mut self.out)
    }

    // ---- Queries for the event loop and the tests --------------------------------------

    /// What a client is; None for one the computation does not know.
    pub fn peer(&self, client: ClientId) -> Option<Peer> {
        self.clients.get(&client).map(|c| match c.role {
            Role::Pending => Peer::Pending,
            Role::Worker(_) => Peer::Worker,
            Role::User => Peer::User,
        })
    }

    /// Whether a command client still waits for an answer (a blocking checkpoint's).
    pub fn awaits_answer(&self, client: ClientId) -> bool {
        self.ckpt.as_ref().is_some_and(|c| c.requesters.contains(&client))
    }

    /// The earliest time at which `Input::Tick` has something to do.
    pub fn next_deadline(&self) -> Option<Duration> {
        let mut d: Option<Duration> = None;
        let mut consider = |t: Duration| d = Some(d.map_or(t, |x| x.min(t)));
        if let Some(t) = self.cfg.timeout {
            consider(self.started + t);
        }
        if let Some(t) = self.next_ckpt {
            consider(t);
        }
        if let (Some(c), Some(t)) = (&self.ckpt, self.cfg.ckpt_timeout) {
            consider(c.last_progress + t);
        }
        if let Some(t) = self.cfg.stale_timeout {
            if self.worker_count() == 0 {
                consider(self.no_workers_since + t);
            }
        }
        d
    }

    /// How messages name a client: `prog[vpid:pid]@host`, `command client ADDR`, ...
    pub fn label(&self, client: ClientId) -> Option<String> {
        self.clients.get(&client).map(|c| c.label())
    }

    pub fn worker(&self, client: ClientId) -> Option<&Worker> {
        self.clients.get(&client).and_then(|c| c.worker())
    }

    pub fn worker_count(&self) -> usize {
        self.clients.values().filter(|c| c.worker().is_some()).count()
    }

    pub fn comp_id(&self) -> u64 {
        self.comp_id
    }

    pub fn generation(&self) -> u32 {
        self.generation
    }

    pub fn interval(&self) -> u32 {
        self.interval
    }

    /// When the next interval checkpoint is due.
    pub fn next_interval_ckpt(&self) -> Option<Duration> {
        self.next_ckpt
    }

    pub fn checkpointing(&self) -> bool {
        self.ckpt.is_some()
    }

    pub fn restarting(&self) -> bool {
        self.restart.is_some()
    }

    /// Every worker RUNNING, no checkpoint or restart in flight: what status calls running.
    pub fn running(&self) -> bool {
        self.all_running() && self.ckpt.is_none() && self.restart.is_none()
    }

    // ---- Internals ---------------------------------------------------------------------

    fn emit(&mut self, a: Action) {
        self.out.push(a);
    }

    fn send(&mut self, to: ClientId, msg: Msg, extra: &[u8]) {
        self.emit(Action::Send { to, msg, extra: extra.to_vec() });
    }

    fn send_and_close(&mut self, to: ClientId, msg: Msg, extra: &[u8]) {
        self.emit(Action::SendAndClose { to, msg, extra: extra.to_vec() });
    }

    fn drop_client(&mut self, client: ClientId, reason: String) {
        if let Some(c) = self.clients.get_mut(&client) {
            if c.dead {
                return;
            }
            c.dead = true;
        }
        self.emit(Action::Drop { client, reason: Some(reason) });
    }

    fn workers(&self) -> impl Iterator<Item = (ClientId, &Worker)> {
        self.clients.iter().filter_map(|(&t, c)| c.worker().map(|w| (t, w)))
    }

    fn sorted_workers(&self) -> Vec<ClientId> {
        let mut v: Vec<ClientId> = self.workers().map(|(t, _)| t).collect();
        v.sort_unstable();
        v
    }

    /// Every worker RUNNING (and at least one).
    fn all_running(&self) -> bool {
        let mut n = 0;
        for (_, w) in self.workers() {
            if w.state != WorkerState::Running {
                return false;
            }
            n += 1;
        }
        n > 0
    }

    fn min_state(&self) -> WorkerState {
        self.workers().map(|(_, w)| w.state).min_by_key(|s| *s as u32).unwrap_or(WorkerState::Unknown)
    }

    fn message(&mut self, now: Duration, client: ClientId, msg: Msg, extra: &[u8]) {
        let Some(c) = self.clients.get_mut(&client) else { return };
        if c.dead {
            return;
        }
        match c.role {
            Role::Pending => match msg.kind {
                Kind::UserCmd => {
                    c.role = Role::User;
                    self.user_cmd_from(now, client, &msg);
                }
                Kind::NewWorker => self.new_worker(now, client, &msg, extra),
                Kind::RestartWorker => self.restart_worker(now, client, &msg, extra),
                k => self.drop_client(client, format!("unexpected first message {k:?}")),
            },
            Role::Worker(ref mut w) => {
                if let Some(s) = WorkerState::from_u32(msg.state) {
                    if s != WorkerState::Unknown {
                        w.state = s;
                    }
                }
                match msg.kind {
                    Kind::UpdateAfterExec => self.update_after_exec(now, client, &msg, extra),
                    Kind::Barrier => self.barrier_arrival(now, client, &msg),
                    Kind::CkptFilename => self.ckpt_filename(now, client, extra),
                    Kind::CkptFailed => self.ckpt_failed_by(now, client, extra),
                    Kind::FdWarning => self.fd_warning(now, client, &msg, extra),
                    Kind::CkptProgress => self.ckpt_progress(now, client, extra),
                    Kind::WorkerResuming => self.check_restart_done(now),
                    k => self.drop_client(client, format!("unexpected message {k:?} from a worker")),
                }
            }
            Role::User => {}
        }
    }

    /// A fresh computation: the first worker of an empty coordinator defines it.
    fn init_computation(&mut self, now: Duration) {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.cfg.hostname.bytes().chain(self.cfg.seed.to_le_bytes()).chain(nanos(now).to_le_bytes()) {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        self.comp_id = h.max(1);
        self.timestamp = nanos(now);
        self.generation = 0;
        self.next_vpid = FIRST_VPID;
        self.interval = self.cfg.interval;
        self.ckpt = None;
        self.restart = None;
        self.barrier = None;
        self.next_barrier = None;
        self.kill_in_progress = false;
    }

    fn alloc_vpid(&mut self) -> i32 {
        let used: BTreeSet<i32> = self.workers().map(|(_, w)| w.vpid).collect();
        loop {
            let v = self.next_vpid;
            self.next_vpid += VPID_STEP;
            if self.next_vpid >= VPID_LIMIT {
                self.next_vpid = FIRST_VPID;
            }
            if !used.contains(&v) {
                return v;
            }
        }
    }

    fn apply_handshake_interval(&mut self, now: Duration, msg: &Msg) {
        if msg.interval != INTERVAL_UNCHANGED && msg.interval != 0 && msg.interval != self.interval {
            log::info!("checkpoint interval set to {} s by a process of the computation", msg.interval);
            self.interval = msg.interval;
            self.arm_interval(now);
        }
    }

    fn arm_interval(&mut self, now: Duration) {
        self.next_ckpt = (self.interval > 0).then(|| now + Duration::from_secs(self.interval as u64));
    }

    fn make_worker(now: Duration, vpid: i32, msg: &Msg, extra: &[u8], state: WorkerState) -> Worker {
        let (host, prog) = split_worker_payload(extra);
        let host = String::from_utf8_lossy(host).into_owned();
        let prog = String::from_utf8_lossy(prog).into_owned();
        let unique = format!("{:x}-{}-{:x}", host_id(&host), vpid, nanos(now));
        Worker {
            vpid,
            pid: msg.pid,
            host: if host.is_empty() { "?".into() } else { host },
            prog: if prog.is_empty() { "?".into() } else { prog },
            state,
            unique,
        }
    }

    fn accept_msg(&self, vpid: i32) -> Msg {
        let mut m = Msg::new(Kind::Accept);
        m.vpid = vpid;
        m.comp_id = self.comp_id;
        m.coord_timestamp = self.timestamp;
        m.generation = self.generation;
        m.interval = self.interval;
        m.num_peers = self.worker_count() as u32;
        m.state = WorkerState::Running as u32;
        m
    }

    /// Refuses a would-be worker: a reply of `kind` with the reason, then close.
    fn reject(&mut self, client: ClientId, kind: Kind, why: &str) {
        log::warn!("refusing {}: {why}", self.label(client).unwrap_or_default());
        let mut m = Msg::new(kind);
        m.comp_id = self.comp_id;
        m.state = self.min_state() as u32;
        self.send_and_close(client, m, why.as_bytes());
        self.set_user(client);
    }

    /// Nothing more is read from this client.
    fn set_user(&mut self, client: ClientId) {
        if let Some(c) = self.clients.get_mut(&client) {
            c.role = Role::User;
        }
    }

    fn refuse_during_kill(&mut self, client: ClientId) {
        self.send_and_close(client, Msg::new(Kind::KillPeer), &[]);
        self.set_user(client);
    }

    fn new_worker(&mut self, now: Duration, client: ClientId, msg: &Msg, extra: &[u8]) {
        if self.kill_in_progress {
            return self.refuse_during_kill(client);
        }
        // A process that a worker forked just before the checkpoint reached it (a child whose
        // parent is stopped only after the fork returned) joins before every process has
        // stopped: it belongs in this checkpoint, as in DMTCP, so it is taken in and told to
        // checkpoint. Later joiners are refused until the checkpoint is over.
        let suspending = self.ckpt.is_some()
            && match &self.barrier {
                Some(b) => b.barrier == Barrier::first_of_checkpoint(),
                None => self.next_barrier == Some(Barrier::first_of_checkpoint()),
            };
        if suspending && self.restart.is_none() {
            return self.join_checkpoint(now, client, msg, extra);
        }
        // Once the last barrier of a checkpoint or restart is released, the processes run
        // again and may fork before the coordinator has heard from all of them (their image
        // reports, WorkerResuming): such a child is an ordinary new worker. (The preload
        // library registers a child before it exists and never while its own process is
        // between DMT:SUSPEND and that release, so a refusal below means a process that is not
        // ours to wait for.)
        let last_released = self.barrier.is_none() && self.next_barrier.is_none();
        if (self.ckpt.is_some() || self.restart.is_some()) && !last_released {
            let what = if self.ckpt.is_some() { "checkpoint" } else { "restart" };
            return self.reject(client, Kind::RejectNotRunning, &format!("a {what} is in progress"));
        }
        let stopped =
            |s: WorkerState| matches!(s, WorkerState::Presuspend | WorkerState::Suspended | WorkerState::Checkpointing);
        if self.ckpt.is_none() && self.restart.is_none() && self.workers().any(|(_, w)| stopped(w.state)) {
            return self.reject(
                client,
                Kind::RejectNotRunning,
                "the computation is not running (a checkpoint did not finish)",
            );
        }
        let first = self.worker_count() == 0;
        if first {
            self.init_computation(now);
        }
        self.apply_handshake_interval(now, msg);
        let vpid = self.alloc_vpid();
        // A new process counts as running unless it says otherwise.
        let state = match WorkerState::from_u32(msg.state) {
            Some(WorkerState::Unknown) | None => WorkerState::Running,
            Some(s) => s,
        };
        let w = Self::make_worker(now, vpid, msg, extra, state);
        log::info!("process {}[{}:{}]@{} joined", w.prog, w.vpid, w.pid, w.host);
        if let Some(c) = self.clients.get_mut(&client) {
            c.role = Role::Worker(w);
        }
        let reply = self.accept_msg(vpid);
        self.send(client, reply, &[]);
        if first {
            self.ever_had_worker = true;
            self.arm_interval(now);
        }
    }

    /// A new worker while the checkpoint waits for every process to stop (see `new_worker`).
    fn join_checkpoint(&mut self, now: Duration, client: ClientId, msg: &Msg, extra: &[u8]) {
        let vpid = self.alloc_vpid();
        let w = Self::make_worker(now, vpid, msg, extra, WorkerState::Running);
        log::info!("process {}[{}:{}]@{} joined the checkpoint in flight", w.prog, w.vpid, w.pid, w.host);
        if let Some(c) = self.clients.get_mut(&client) {
            c.role = Role::Worker(w);
        }
        if let Some(c) = &mut self.ckpt {
            c.participants.insert(client);
            c.last_progress = now;
        }
        let reply = self.accept_msg(vpid);
        self.send(client, reply, &[]);
        let m = self.do_checkpoint_msg();
        self.send(client, m, &[]);
        // Everyone else is told how many take part only at each release; nothing else to do.
    }

    fn restart_worker(&mut self, now: Duration, client: ClientId, msg: &Msg, extra: &[u8]) {
        if self.kill_in_progress {
            return self.refuse_during_kill(client);
        }
        if self.ckpt.is_some() {
            return self.reject(client, Kind::RejectNotRestarting, "a checkpoint is in progress");
        }
        match &self.restart {
            None if self.worker_count() > 0 => {
                return self.reject(
                    client,
                    Kind::RejectNotRestarting,
                    "this coordinator already serves a running computation",
                )
            }
            None => {
                self.init_computation(now);
                if msg.comp_id != 0 {
                    self.comp_id = msg.comp_id;
                }
                self.generation = msg.generation;
                self.restart = Some(Restart { expected: msg.num_peers.max(1), participants: BTreeSet::new() });
                self.restart_done = false;
                self.next_barrier = Some(Barrier::first_of_restart());
                self.ever_had_worker = true;
                log::info!(
                    "restarting computation {:x} (generation {}) of {} processes",
                    self.comp_id,
                    self.generation,
                    msg.num_peers.max(1)
                );
            }
            Some(r) => {
                if msg.comp_id != self.comp_id {
                    let why = format!("image of computation {:x}, restarting {:x}", msg.comp_id, self.comp_id);
                    return self.reject(client, Kind::RejectWrongComp, &why);
                }
                if msg.num_peers.max(1) != r.expected {
                    let why = format!("image says {} processes, restart has {}", msg.num_peers, r.expected);
                    return self.reject(client, Kind::RejectWrongComp, &why);
                }
            }
        }
        self.apply_handshake_interval(now, msg);
        let vpid = if msg.vpid > 0 { msg.vpid } else { self.alloc_vpid() };
        if self.workers().any(|(_, w)| w.vpid == vpid) {
            return self.reject(client, Kind::RejectWrongComp, &format!("virtual pid {vpid} is already restarted"));
        }
        let w = Self::make_worker(now, vpid, msg, extra, WorkerState::Restarting);
        log::info!("process {}[{}:{}]@{} restarting", w.prog, w.vpid, w.pid, w.host);
        if let Some(c) = self.clients.get_mut(&client) {
            c.role = Role::Worker(w);
        }
        if let Some(r) = &mut self.restart {
            r.participants.insert(client);
        }
        let reply = self.accept_msg(vpid);
        self.send(client, reply, &[]);
        self.check_barrier(now);
    }

    fn update_after_exec(&mut self, now: Duration, client: ClientId, msg: &Msg, extra: &[u8]) {
        let prog = payload_text(extra);
        if let Some(Role::Worker(w)) = self.clients.get_mut(&client).map(|c| &mut c.role) {
            if !prog.is_empty() {
                log::info!("process {}[{}] is now {}", w.prog, w.vpid, prog);
                w.prog = prog;
            }
            if msg.pid > 0 {
                w.pid = msg.pid;
            }
        }
        // The new program image knows nothing of a checkpoint in flight: tell it again.
        let resend = match &self.ckpt {
            Some(c) => {
                c.participants.contains(&client)
                    && !c.filenames.contains_key(&client)
                    && !self.barrier.as_ref().is_some_and(|b| b.arrived.contains(&client))
            }
            None => false,
        };
        if resend {
            let m = self.do_checkpoint_msg();
            self.send(client, m, &[]);
        }
        self.check_restart_done(now);
    }

    // ---- Checkpoint --------------------------------------------------------------------

    fn can_start_ckpt(&self) -> bool {
        self.ckpt.is_none() && self.restart.is_none() && !self.kill_in_progress && self.all_running()
    }

    fn do_checkpoint_msg(&self) -> Msg {
        let mut m = Msg::new(Kind::DoCheckpoint);
        m.comp_id = self.comp_id;
        m.coord_timestamp = self.timestamp;
        m.interval = self.interval;
        if let Some(c) = &self.ckpt {
            m.generation = c.generation;
            m.num_peers = c.participants.len() as u32;
            if c.kill_after {
                m.flags |= FLAG_EXIT_AFTER_CKPT;
            }
            m.flags |= c.image_flags;
        }
        m
    }

    /// Starts a checkpoint of every worker if they are all running; false if it cannot start.
    /// `asked`: the command's FLAG_INCREMENTAL / FLAG_FULL (0 for the coordinator's own).
    fn start_ckpt(&mut self, now: Duration, kill_after: bool, requester: Option<ClientId>, asked: u32) -> bool {
        if !self.can_start_ckpt() {
            return false;
        }
        let image_flags = match asked & (FLAG_INCREMENTAL | FLAG_FULL) {
            0 if self.cfg.incremental => FLAG_INCREMENTAL,
            f if f & FLAG_FULL != 0 => FLAG_FULL,
            f => f,
        };
        self.generation += 1;
        let participants: BTreeSet<ClientId> = self.sorted_workers().into_iter().collect();
        let n = participants.len();
        let kill_after = kill_after || self.cfg.kill_after_ckpt;
        self.ckpt = Some(Ckpt {
            generation: self.generation,
            kill_after,
            image_flags,
            participants: participants.clone(),
            filenames: BTreeMap::new(),
            requesters: requester.into_iter().collect(),
            started: now,
            last_progress: now,
            writing_script: false,
            warnings: Vec::new(),
            abandon: Vec::new(),
            progress: BTreeMap::new(),
            progress_to: Vec::new(),
        });
        self.barrier = None;
        self.next_barrier = Some(Barrier::first_of_checkpoint());
        self.next_ckpt = None;
        log::info!(
            "checkpoint {} of {n} process{} started{}{}",
            self.generation,
            if n == 1 { "" } else { "es" },
            match image_flags {
                FLAG_INCREMENTAL => " (incremental)",
                FLAG_FULL => " (full images)",
                _ => "",
            },
            if kill_after { " (they exit afterwards)" } else { "" }
        );
        let m = self.do_checkpoint_msg();
        for client in participants {
            self.send(client, m, &[]);
        }
        true
    }

    /// The group that the current barrier is for, and how many must be in it.
    fn barrier_group(&self) -> Option<(&BTreeSet<ClientId>, usize)> {
        if let Some(c) = &self.ckpt {
            Some((&c.participants, 1))
        } else {
            self.restart.as_ref().map(|r| (&r.participants, r.expected as usize))
        }
    }

    fn barrier_arrival(&mut self, now: Duration, client: ClientId, msg: &Msg) {
        let shown = String::from_utf8_lossy(msg.name_bytes()).into_owned();
        let member = self.barrier_group().is_some_and(|(g, _)| g.contains(&client));
        if !member {
            log::warn!(
                "{} arrived at barrier {shown} outside a checkpoint or restart; ignored",
                self.label(client).unwrap_or_default()
            );
            return;
        }
        let Some(which) = Barrier::from_name(msg.name_bytes()) else {
            return self.drop_client(client, format!("arrived at unknown barrier {shown}"));
        };
        match &mut self.barrier {
            Some(b) if b.barrier == which => {
                b.arrived.insert(client);
            }
            Some(b) => {
                let active = b.barrier.as_str();
                return self
                    .drop_client(client, format!("arrived at barrier {shown} while barrier {active} is active"));
            }
            None if self.next_barrier == Some(which) => {
                self.barrier = Some(Arrivals { barrier: which, arrived: BTreeSet::from([client]) })
            }
            None => {
                let due = self.next_barrier.map_or("none", |b| b.as_str());
                return self.drop_client(client, format!("arrived at barrier {shown} while the next one is {due}"));
            }
        }
        log::trace!("barrier {shown}: arrival of {client}");
        if let Some(c) = &mut self.ckpt {
            c.last_progress = now;
        }
        self.check_barrier(now);
    }

    /// Releases the current barrier once every member of its group has arrived.
    fn check_barrier(&mut self, now: Duration) {
        let Some(b) = &self.barrier else { return };
        let Some((group, needed)) = self.barrier_group() else {
            self.barrier = None;
            return;
        };
        if group.is_empty() || group.len() < needed || !group.iter().all(|t| b.arrived.contains(t)) {
            return;
        }
        let members: Vec<ClientId> = group.iter().copied().collect();
        let which = b.barrier;
        let mut m = Msg::new(Kind::BarrierReleased).with_name(which.name());
        m.num_peers = members.len() as u32;
        m.comp_id = self.comp_id;
        m.coord_timestamp = self.timestamp;
        m.generation = self.ckpt.as_ref().map(|c| c.generation).unwrap_or(self.generation);
        log::debug!("barrier {} released for {} processes", which.as_str(), members.len());
        self.barrier = None;
        self.next_barrier = which.next();
        let mut abandoned = None;
        if let Some(c) = &mut self.ckpt {
            c.last_progress = now;
            if !c.abandon.is_empty() {
                if which == Barrier::Drain {
                    m.flags |= FLAG_CKPT_ABANDONED;
                } else if which == Barrier::WriteCkpt {
                    abandoned = Some(format!("{} (--strict)", c.abandon.join("; ")));
                }
            }
        }
        for client in members {
            self.send(client, m, &[]);
        }
        if let Some(reason) = abandoned {
            // Nobody wrote an image (DMT:Drain told them); every process goes on.
            self.fail_ckpt(now, reason);
        }
    }

    /// A process names one of its fds that no kind restores (before DMT:Drain): a warning in
    /// the log and in the `--bcheckpoint` answer, or, with `--strict`, the checkpoint is
    /// abandoned at DMT:Drain.
    fn fd_warning(&mut self, now: Duration, client: ClientId, msg: &Msg, extra: &[u8]) {
        let text = format!("{}: {} cannot be restored", self.label(client).unwrap_or_default(), payload_text(extra));
        let strict = self.cfg.strict || msg.flags & FLAG_STRICT != 0;
        match &mut self.ckpt {
            Some(c) if c.participants.contains(&client) => {
                c.last_progress = now;
                if strict {
                    log::error!("checkpoint {}: {text} (--strict: the checkpoint is abandoned)", c.generation);
                    c.abandon.push(text);
                } else {
                    log::warn!(
                        "checkpoint {}: {text}; after a restart it holds a placeholder that fails every call",
                        c.generation
                    );
                    c.warnings.push(text);
                }
            }
            _ => log::warn!("{text} (outside a checkpoint; ignored)"),
        }
    }

    fn ckpt_filename(&mut self, now: Duration, client: ClientId, extra: &[u8]) {
        let path = payload_text(extra);
        let vpid = self.worker(client).map(|w| w.vpid).unwrap_or(0);
        // A worker names its image after the last checkpoint barrier (WRITE_CKPT) is released;
        // one that does so earlier breaks the protocol and would make a partial image set look
        // complete.
        let all_released = self.barrier.is_none() && self.next_barrier.is_none();
        match &mut self.ckpt {
            Some(c) if c.participants.contains(&client) && !all_released => {
                let b = self.barrier.as_ref().map(|b| b.barrier).or(self.next_barrier).map_or("", |b| b.as_str());
                return self.drop_client(client, format!("image name {path:?} before barrier {b} was released"));
            }
            Some(c) if c.participants.contains(&client) => {
                log::debug!("image of process {vpid}: {path}");
                c.filenames.insert(client, (vpid, path));
                c.last_progress = now;
            }
            _ => {
                log::warn!("image name {path:?} from process {vpid} outside a checkpoint; ignored");
                return;
            }
        }
        self.check_ckpt_done(now);
    }

    fn ckpt_failed_by(&mut self, now: Duration, client: ClientId, extra: &[u8]) {
        let reason = payload_text(extra);
        let label = self.label(client).unwrap_or_default();
        let reason = if reason.is_empty() { "no reason given".to_string() } else { reason };
        if self.ckpt.as_ref().is_some_and(|c| c.participants.contains(&client)) {
            self.fail_ckpt(now, format!("{label}: {reason}"));
        } else {
            log::warn!("{label} reports a failed checkpoint outside a checkpoint: {reason}");
        }
    }

    fn check_ckpt_done(&mut self, now: Duration) {
        let Some(c) = &self.ckpt else { return };
        if c.writing_script {
            return;
        }
        if c.participants.is_empty() && c.filenames.is_empty() {
            return self.fail_ckpt(now, "every process exited during the checkpoint".into());
        }
        if c.filenames.is_empty() || !c.participants.iter().all(|t| c.filenames.contains_key(t)) {
            return;
        }
        let images = self.images();
        let (file_name, contents) = self.restart_script(&images);
        if let Some(c) = &mut self.ckpt {
            c.writing_script = true;
        }
        self.emit(Action::WriteRestartScript { file_name, contents });
    }

    /// The image paths of the checkpoint in flight, by virtual pid.
    fn images(&self) -> Vec<String> {
        let Some(c) = &self.ckpt else { return Vec::new() };
        let mut images: Vec<(i32, String)> = c.filenames.values().cloned().collect();
        images.sort();
        images.into_iter().map(|(_, p)| p).collect()
    }

    fn script_written(&mut self, now: Duration, result: Result<String, String>) {
        let Some(c) = &self.ckpt else { return };
        if !c.writing_script {
            return;
        }
        let images = self.images();
        match result {
            Ok(script) => {
                // The final figures go to the clients that asked, before the result.
                let sums = self.progress_sums(now);
                self.send_progress(sums);
                let c = self.ckpt.take().expect("checkpoint in flight");
                self.barrier = None;
                self.next_barrier = None;
                log::info!(
                    "checkpoint {} complete in {:.1} s: {} image{} ({}); restart script {script}{}",
                    c.generation,
                    now.saturating_sub(c.started).as_secs_f64(),
                    images.len(),
                    if images.len() == 1 { "" } else { "s" },
                    progress::figures(&sums),
                    match c.warnings.len() {
                        0 => String::new(),
                        n => format!("; {n} fd{} cannot be restored", if n == 1 { "" } else { "s" }),
                    }
                );
                let mut m = Msg::new(Kind::UserCmdResult);
                m.cmd = Cmd::BlockingCkpt as u32;
                m.cmd_status = status::SUCCESS;
                m.num_peers = images.len() as u32;
                m.comp_id = self.comp_id;
                m.generation = c.generation;
                m.interval = self.interval;
                // The warnings, one per line, for `dmtcp_command --bcheckpoint`.
                let text = c.warnings.join("\n");
                for r in c.requesters {
                    self.send_and_close(r, m, text.as_bytes());
                }
                self.rearm_after_ckpt(now);
            }
            Err(e) => {
                let why = format!("the images were written, but not the restart script in {}: {e}", self.cfg.ckptdir);
                self.fail_ckpt(now, why);
            }
        }
    }

    /// After a checkpoint the interval timer starts again, unless nobody is left.
    fn rearm_after_ckpt(&mut self, now: Duration) {
        if self.worker_count() > 0 {
            self.arm_interval(now);
        } else {
            self.next_ckpt = None;
        }
    }

    /// Forgets the checkpoint in flight and tells the `--bcheckpoint` clients why it failed.
    fn fail_ckpt(&mut self, now: Duration, reason: String) {
        let Some(c) = self.ckpt.take() else { return };
        self.barrier = None;
        self.next_barrier = None;
        log::error!("checkpoint {} failed: {reason}", c.generation);
        let mut m = Msg::new(Kind::UserCmdResult);
        m.cmd = Cmd::BlockingCkpt as u32;
        m.cmd_status = status::CKPT_FAILED;
        m.num_peers = c.participants.len() as u32;
        m.comp_id = self.comp_id;
        m.generation = c.generation;
        for r in c.requesters {
            self.send_and_close(r, m, reason.as_bytes());
        }
        self.rearm_after_ckpt(now);
    }

    /// The host name that workers can reach this coordinator at.
    fn public_host(&self) -> String {
        match self.cfg.listen_host.parse::<std::net::IpAddr>() {
            Ok(ip) if ip.is_unspecified() => self.cfg.hostname.clone(),
            _ => self.cfg.listen_host.clone(),
        }
    }

    /// `dmtcp_restart_script_<compid>.sh`: its name and contents.
    fn restart_script(&self, images: &[String]) -> (String, String) {
        let name = format!("dmtcp_restart_script_{:016x}.sh", self.comp_id);
        let mut s = String::new();
        s.push_str("#!/bin/bash\n");
        s.push_str(&format!(
            "# Restarts computation {:016x} from its checkpoint {} (written by {} on {}).\n",
            self.comp_id,
            self.ckpt.as_ref().map(|c| c.generation).unwrap_or(self.generation),
            super::PROGRAM,
            self.cfg.hostname
        ));
        s.push_str("# Usage: dmtcp_restart_script.sh [--coord-host H] [--coord-port P] [--interval S] [dmtcp_restart options]\n");
        s.push_str("set -m\n");
        s.push_str(&format!(
            "coord_host=${{{}:-{}}}\n",
            dmtcp_proto::env::COORD_HOST,
            shell_quote(&self.public_host())
        ));
        s.push_str(&format!("coord_port=${{{}:-{}}}\n", dmtcp_proto::env::COORD_PORT, self.cfg.port));
        s.push_str(&format!("checkpoint_interval=${{{}:-{}}}\n", dmtcp_proto::env::CHECKPOINT_INTERVAL, self.interval));
        s.push_str(
            "while [ $# -gt 0 ]; do\n\
             \x20 case \"$1\" in\n\
             \x20   -h|--coord-host|--host) coord_host=\"$2\"; shift 2 ;;\n\
             \x20   -p|--coord-port|--port) coord_port=\"$2\"; shift 2 ;;\n\
             \x20   -i|--interval) checkpoint_interval=\"$2\"; shift 2 ;;\n\
             \x20   --help) sed -n 3p \"$0\"; exit 0 ;;\n\
             \x20   *) break ;;\n\
             \x20 esac\n\
             done\n",
        );
        s.push_str(
            "interval_opt=()\n\
             if [ -n \"$checkpoint_interval\" ] && [ \"$checkpoint_interval\" != 0 ]; then\n\
             \x20 interval_opt=(--interval \"$checkpoint_interval\")\n\
             fi\n",
        );
        s.push_str(&format!(
            "exec {} --coord-host \"$coord_host\" --coord-port \"$coord_port\" \"${{interval_opt[@]}}\" \"$@\"",
            self.cfg.restart_command
        ));
        for img in images {
            s.push_str(" \\\n  ");
            s.push_str(&shell_quote(img));
        }
        s.push('\n');
        (name, s)
    }

    // ---- Departures --------------------------------------------------------------------

    fn disconnected(&mut self, now: Duration, client: ClientId) {
        let Some(c) = self.clients.remove(&client) else { return };
        match c.role {
            Role::Worker(w) => self.worker_gone(now, client, w),
            Role::User => {
                if let Some(c) = &mut self.ckpt {
                    c.requesters.retain(|&t| t != client);
                }
            }
            Role::Pending => {}
        }
    }

    fn worker_gone(&mut self, now: Duration, client: ClientId, w: Worker) {
        log::info!("process {}[{}:{}]@{} disconnected", w.prog, w.vpid, w.pid, w.host);
        if let Some(b) = &mut self.barrier {
            b.arrived.remove(&client);
        }
        if let Some(c) = &mut self.ckpt {
            if c.participants.remove(&client) {
                c.last_progress = now;
            }
        }
        let mut restart_failed = false;
        if let Some(r) = &mut self.restart {
            if r.participants.remove(&client) {
                if w.state == WorkerState::Running {
                    // It resumed (the last restart barrier was passed) and then ended: the
                    // program's own doing.
                    log::warn!("process {} exited during the restart", w.vpid);
                    r.expected = r.expected.saturating_sub(1);
                    if r.participants.is_empty() {
                        self.restart = None;
                    }
                } else {
                    // Died before it resumed: the others would resume a computation with a
                    // process missing. The restart fails and its other processes are killed.
                    log::error!(
                        "process {}[{}:{}] died before the restart completed; the restart failed and its other \
                         processes are killed",
                        w.prog,
                        w.vpid,
                        w.pid
                    );
                    self.restart = None;
                    self.barrier = None;
                    self.next_barrier = None;
                    restart_failed = true;
                }
            }
        }
        if restart_failed {
            self.kill_all(now);
        }
        self.check_barrier(now);
        self.check_ckpt_done(now);
        self.check_restart_done(now);
        if self.worker_count() == 0 {
            self.kill_in_progress = false;
            self.no_workers_since = now;
            self.next_ckpt = None;
            self.restart = None;
            if self.cfg.exit_on_last && self.ever_had_worker && !self.exiting {
                log::info!("the last process disconnected; quitting (--exit-on-last)");
                self.exit(0);
            }
        }
    }

    /// A restart is over once every restarted process runs again.
    fn check_restart_done(&mut self, now: Duration) {
        let Some(r) = &self.restart else { return };
        let done = r.participants.len() >= r.expected as usize
            && r.participants.iter().all(|t| self.worker(*t).is_some_and(|w| w.state == WorkerState::Running));
        if done {
            log::info!("restart complete: {} processes running", r.participants.len());
            self.restart = None;
            self.restart_done = true;
            self.barrier = None;
            self.next_barrier = None;
            self.arm_interval(now);
        }
    }

    // ---- User commands -----------------------------------------------------------------

    fn user_cmd_from(&mut self, now: Duration, client: ClientId, msg: &Msg) {
        let cmd = Cmd::from_u32(msg.cmd);
        if let Some(c @ Cmd::BlockingCkpt) = cmd {
            if self.start_ckpt(now, false, Some(client), msg.flags) {
                if msg.flags & dmtcp_proto::FLAG_PROGRESS != 0 {
                    self.want_progress(client);
                }
                return; // answered when the checkpoint completes or fails
            }
            let r = self.not_running_reply(c);
            return self.send_and_close(client, r.msg, r.text.as_bytes());
        }
        let r = match cmd {
            Some(c) => self.user_cmd(now, c, msg.interval, msg.flags),
            None => {
                let mut m = Msg::new(Kind::UserCmdResult);
                m.cmd = msg.cmd;
                m.cmd_status = status::INVALID_COMMAND;
                Reply { msg: m, text: format!("unknown command {}", msg.cmd) }
            }
        };
        self.send_and_close(client, r.msg, r.text.as_bytes());
    }

    fn result_msg(&self, cmd: Cmd, st: i32) -> Msg {
        let mut m = Msg::new(Kind::UserCmdResult);
        m.cmd = cmd as u32;
        m.cmd_status = st;
        m.num_peers = self.worker_count() as u32;
        m.running = self.running() as u32;
        m.interval = self.interval;
        m.comp_id = self.comp_id;
        m.coord_timestamp = self.timestamp;
        m.generation = self.generation;
        m.state = self.min_state() as u32;
        if self.restart.is_some() {
            m.flags |= dmtcp_proto::FLAG_RESTARTING;
        }
        if self.restart_done {
            m.flags |= dmtcp_proto::FLAG_RESTART_DONE;
        }
        m
    }

    fn not_running_reply(&self, cmd: Cmd) -> Reply {
        let text = if self.worker_count() == 0 {
            "no process is connected to the coordinator".to_string()
        } else if self.ckpt.is_some() {
            "a checkpoint is already in progress".to_string()
        } else if self.restart.is_some() {
            "a restart is in progress".to_string()
        } else if self.kill_in_progress {
            "the computation is being killed".to_string()
        } else {
            format!("the computation is not running (state {})", self.min_state().name())
        };
        Reply { msg: self.result_msg(cmd, status::NOT_RUNNING), text }
    }

    fn list_text(&self) -> String {
        let mut s = String::from("Client List:\n#, PROG[virtPID:realPID]@HOST, DMTCP-UNIQUEPID, STATE\n");
        for (i, client) in self.sorted_workers().iter().enumerate() {
            if let Some(w) = self.worker(*client) {
                s.push_str(&format!(
                    "{}, {}[{}:{}]@{}, {}, {}\n",
                    i + 1,
                    w.prog,
                    w.vpid,
                    w.pid,
                    w.host,
                    w.unique,
                    w.state.name()
                ));
            }
        }
        s
    }

    /// Every command but a blocking checkpoint (whose reply comes later).
    fn user_cmd(&mut self, now: Duration, cmd: Cmd, interval: u32, flags: u32) -> Reply {
        let ok = |me: &Self| Reply { msg: me.result_msg(cmd, status::SUCCESS), text: String::new() };
        match cmd {
            Cmd::Status => ok(self),
            Cmd::List => Reply { text: self.list_text(), ..ok(self) },
            Cmd::Checkpoint | Cmd::KillAfterCkpt | Cmd::BlockingCkpt => {
                if self.start_ckpt(now, cmd == Cmd::KillAfterCkpt, None, flags) {
                    ok(self)
                } else {
                    self.not_running_reply(cmd)
                }
            }
            Cmd::UpdateInterval => {
                if interval != INTERVAL_UNCHANGED {
                    self.set_interval(now, interval);
                }
                ok(self)
            }
            Cmd::Kill => {
                self.kill_all(now);
                ok(self)
            }
            Cmd::Quit => {
                let r = ok(self);
                self.quit_at(now, "quit command");
                r
            }
        }
    }

    fn set_interval(&mut self, now: Duration, interval: u32) {
        self.interval = interval;
        self.cfg.interval = interval;
        log::info!("checkpoint interval: {}", interval_text(interval));
        if self.worker_count() > 0 && self.ckpt.is_none() {
            self.arm_interval(now);
        } else if interval == 0 {
            self.next_ckpt = None;
        }
    }

    fn kill_all(&mut self, now: Duration) {
        let clients = self.sorted_workers();
        if clients.is_empty() {
            return;
        }
        log::info!("killing {} process{}", clients.len(), if clients.len() == 1 { "" } else { "es" });
        if self.ckpt.is_some() {
            self.fail_ckpt(now, "the computation was killed".into());
        }
        self.kill_in_progress = true;
        let m = Msg::new(Kind::KillPeer);
        for client in clients {
            self.send(client, m, &[]);
        }
    }

    fn exit(&mut self, code: i32) {
        if !self.exiting {
            self.exiting = true;
            self.emit(Action::Exit(code));
        }
    }

    fn quit_at(&mut self, now: Duration, why: &str) {
        log::info!("quitting ({why})");
        self.kill_all(now);
        self.exit(0);
    }

    // ---- Timers ------------------------------------------------------------------------

    fn tick(&mut self, now: Duration) {
        if self.exiting {
            return;
        }
        if let Some(t) = self.cfg.timeout {
            if now.saturating_sub(self.started) >= t {
                log::info!("quitting: --timeout of {} s reached", t.as_secs());
                return self.exit(0);
            }
        }
        if let Some(t) = self.cfg.stale_timeout {
            if self.worker_count() == 0 && now.saturating_sub(self.no_workers_since) >= t {
                log::info!("quitting: no process connected for {} s (--stale-timeout)", t.as_secs());
                return self.exit(0);
            }
        }
        if let (Some(c), Some(t)) = (&self.ckpt, self.cfg.ckpt_timeout) {
            if now.saturating_sub(c.last_progress) >= t {
                let at = match &self.barrier {
                    Some(b) => format!(
                        "; {} of {} processes at barrier {}",
                        b.arrived.len(),
                        c.participants.len(),
                        b.barrier.as_str()
                    ),
                    None => format!("; {} of {} images written", c.filenames.len(), c.participants.len()),
                };
                self.fail_ckpt(now, format!("no progress for {} s{at}", t.as_secs()));
            }
        }
        if let Some(t) = self.next_ckpt {
            if now >= t && self.interval > 0 && !self.start_ckpt(now, false, None, 0) {
                // Not every process is running: try again shortly.
                self.next_ckpt = Some(now + INTERVAL_RETRY);
            }
        }
    }

    // ---- Console (stdin) ---------------------------------------------------------------

    fn console(&mut self, now: Duration, line: &str) {
        let line = line.trim();
        let (word, arg) = match line.split_once(char::is_whitespace) {
            Some((w, a)) => (w, a.trim()),
            None => (line, ""),
        };
        // DMTCP also accepts `i10`.
        let (word, arg) = match word.strip_prefix('i') {
            Some(n) if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) => ("i", n),
            _ => (word, arg),
        };
        let mut out = String::new();
        match word {
            "" => return,
            "s" | "status" => out = self.status_text(),
            "l" | "t" | "list" => out = self.list_text(),
            "c" | "checkpoint" => {
                if !self.start_ckpt(now, false, None, 0) {
                    out = format!("cannot checkpoint: {}\n", self.not_running_reply(Cmd::Checkpoint).text);
                }
            }
            "kc" | "ck" | "kcheckpoint" => {
                if !self.start_ckpt(now, true, None, 0) {
                    out = format!("cannot checkpoint: {}\n", self.not_running_reply(Cmd::KillAfterCkpt).text);
                }
            }
            "k" | "kill" => {
                if self.worker_count() == 0 {
                    out = "no process to kill\n".into();
                }
                self.kill_all(now);
            }
            "q" | "quit" => self.quit_at(now, "q on stdin"),
            "i" | "interval" => {
                if arg.is_empty() {
                    out = format!("Checkpoint Interval: {}\n", interval_text(self.interval));
                } else {
                    match arg.parse::<u32>() {
                        Ok(v) if v != INTERVAL_UNCHANGED => {
                            self.set_interval(now, v);
                            out = format!("Checkpoint Interval: {}\n", interval_text(v));
                        }
                        _ => out = format!("not a number of seconds: {arg}\n"),
                    }
                }
            }
            "?" | "h" | "help" => out = CONSOLE_HELP.to_string(),
            other => out = format!("unknown command '{other}'; type '?' for help\n"),
        }
        if !out.is_empty() {
            self.emit(Action::Print(out));
        }
    }

    fn status_text(&self) -> String {
        format!(
            "Status...\n\
             Host: {} ({})\n\
             Port: {}\n\
             Checkpoint Interval: {}\n\
             Exit on last client: {}\n\
             Kill after checkpoint: {}\n\
             Computation Id: {:016x}\n\
             Checkpoint Dir: {}\n\
             NUM_PEERS={}\n\
             RUNNING={}\n",
            self.cfg.hostname,
            self.cfg.listen_host,
            self.cfg.port,
            interval_text(self.interval),
            self.cfg.exit_on_last as u8,
            self.cfg.kill_after_ckpt as u8,
            self.comp_id,
            self.cfg.ckptdir,
            self.worker_count(),
            if self.running() { "yes" } else { "no" }
        )
    }
}

mod progress;

#[cfg(test)]
mod tests;
