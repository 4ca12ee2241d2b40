//! The coordinator's I/O: one thread runs one epoll loop over the listener, stdin, a signalfd
//! and every client socket, reads the clock, turns what happens into `state::Input`s and carries
//! out the `state::Action`s the computation returns.
//!
//! Sockets are non-blocking; each client has a read buffer that never holds more than one
//! message plus one read chunk (a header that announces more than `MAX_EXTRA` bytes is refused
//! before anything is allocated for it) and an out-buffer with a hard limit (EPOLLOUT is armed
//! only while it holds data). Idle clients therefore cost a few hundred bytes each and no thread.
use super::state::{Action, ClientId, Computation, Input, Peer, Settings};
use super::{hostname, remove_port_file, restart_command, write_restart_script, Config};
use crate::common::cli;
use dmtcp_proto::{Kind, Msg, MAX_EXTRA, MSG_SIZE};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// A new connection must complete its first message within this time.
const FIRST_MSG_TIMEOUT: Duration = Duration::from_secs(10);
/// A worker that stops in the middle of a message for this long is dropped.
const PARTIAL_MSG_TIMEOUT: Duration = Duration::from_secs(30);
/// Most bytes queued for one client; a peer that does not read is dropped beyond this.
const OUT_LIMIT: usize = MAX_EXTRA as usize + 64 * 1024;
const READ_CHUNK: usize = 64 * 1024;
/// Reads per readiness event, so that one busy client cannot starve the others.
const READS_PER_WAKE: usize = 16;
/// Longest stdin command line we keep; longer lines are discarded.
const STDIN_LINE_MAX: usize = 4096;

const TOK_LISTENER: u64 = 0;
const TOK_STDIN: u64 = 1;
const TOK_SIGNAL: u64 = 2;
const FIRST_CONN_TOK: u64 = 16;

struct Conn {
    stream: TcpStream,
    peer: String,
    since: Instant,
    inbuf: Vec<u8>,
    /// When the current incomplete message started arriving.
    partial_since: Option<Instant>,
    out: Vec<u8>,
    out_pos: usize,
    out_armed: bool,
    /// The peer shut down its side; only the reply still goes out.
    read_shut: bool,
    /// A client from another host: its first message must be our token (`common::token`).
    needs_token: bool,
    close_after_flush: bool,
    dead: bool,
}

pub(super) struct Coord {
    cfg: Config,
    epoll: Epoll,
    listener: TcpListener,
    listener_paused_until: Option<Instant>,
    sigfd: SignalFd,
    stdin_open: bool,
    stdin_buf: Vec<u8>,
    stdin_discarding: bool,
    conns: HashMap<ClientId, Conn>,
    next_tok: u64,
    doomed: Vec<ClientId>,
    comp: Computation,
    /// The origin of the times given to `comp`.
    epoch: Instant,
    next_scan: Instant,
    exit: Option<i32>,
    /// When to look next for workers in group stop during the checkpoint in flight, and those
    /// already minded in it (see `stopped`).
    stop_watch: Option<(Instant, std::collections::HashSet<ClientId>)>,
    /// The uid that may use this coordinator (module `owner`).
    owner: u32,
    /// What clients from other hosts must present first (when we listen beyond loopback).
    token: Option<String>,
}

impl Coord {
    pub(super) fn new(
        cfg: Config,
        listener: TcpListener,
        port: u16,
        token: Option<String>,
    ) -> Result<Coord, io::Error> {
        let (epoll, sigfd, stdin_open) = Self::setup(&cfg, &listener)?;
        let epoch = Instant::now();
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let settings = Settings {
            interval: cfg.interval,
            exit_on_last: cfg.exit_on_last,
            kill_after_ckpt: cfg.kill_after_ckpt,
            incremental: cfg.incremental,
            strict: cfg.strict,
            timeout: cfg.timeout,
            stale_timeout: cfg.stale_timeout,
            ckpt_timeout: cfg.ckpt_timeout,
            hostname: hostname(),
            listen_host: cfg.host.clone(),
            port,
            ckptdir: cfg.ckptdir.display().to_string(),
            restart_command: restart_command(),
            seed: wall ^ ((std::process::id() as u64) << 32) ^ monotonic_ns(),
        };
        Ok(Coord {
            epoll,
            listener,
            listener_paused_until: None,
            sigfd,
            stdin_open,
            stdin_buf: Vec::new(),
            stdin_discarding: false,
            conns: HashMap::new(),
            next_tok: FIRST_CONN_TOK,
            doomed: Vec::new(),
            comp: Computation::new(settings, Duration::ZERO),
            epoch,
            next_scan: epoch,
            exit: None,
            stop_watch: None,
            owner: nix::unistd::getuid().as_raw(),
            token,
            cfg,
        })
    }

    fn setup(cfg: &Config, listener: &TcpListener) -> io::Result<(Epoll, SignalFd, bool)> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        epoll.add(listener, EpollEvent::new(EpollFlags::EPOLLIN, TOK_LISTENER))?;
        // SIGINT/SIGTERM arrive through a signalfd. SIGTTIN is blocked so that reading a
        // terminal from the background gives EIO instead of stopping the coordinator.
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGINT);
        mask.add(Signal::SIGTERM);
        let mut blocked = mask;
        blocked.add(Signal::SIGTTIN);
        blocked.thread_block()?;
        let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        epoll.add(&sigfd, EpollEvent::new(EpollFlags::EPOLLIN, TOK_SIGNAL))?;
        let mut stdin_open = false;
        if !cfg.daemon {
            let stdin = io::stdin();
            match epoll.add(stdin.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, TOK_STDIN)) {
                Ok(()) => stdin_open = true,
                // A regular file or /dev/null cannot be polled; it never blocks either, so its
                // commands are read once the loop runs (see `run`).
                Err(Errno::EPERM) => {}
                Err(e) => log::debug!("not reading commands from stdin: {e}"),
            }
        }
        Ok((epoll, sigfd, stdin_open))
    }

    pub(super) fn run(&mut self) -> i32 {
        if !self.cfg.daemon && !self.stdin_open {
            self.read_unpollable_stdin();
        }
        let mut events = vec![EpollEvent::empty(); 256];
        loop {
            self.reap();
            if let Some(code) = self.exit {
                return self.shutdown(code);
            }
            let timeout = self.wait_ms();
            let n = match self.epoll.wait(&mut events, EpollTimeout::from(timeout)) {
                Ok(n) => n,
                Err(Errno::EINTR) => 0,
                Err(e) => {
                    log::error!("epoll_wait: {e}");
                    return self.shutdown(cli::EXIT_FAILURE);
                }
            };
            for ev in &events[..n] {
                match ev.data() {
                    TOK_LISTENER => self.accept_all(),
                    TOK_STDIN => self.read_stdin(),
                    TOK_SIGNAL => self.read_signals(),
                    tok => self.conn_event(tok, ev.events()),
                }
                self.reap();
                if self.exit.is_some() {
                    break;
                }
            }
            if self.exit.is_none() {
                self.tick();
            }
        }
    }

    // ---- Feeding the computation -------------------------------------------------------

    /// The time for the computation: since this loop's start.
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn feed(&mut self, input: Input<'_>) {
        let now = self.now();
        let actions = self.comp.handle(now, input);
        self.apply(actions);
    }

    /// Carries out the computation's actions, in order.
    fn apply(&mut self, actions: Vec<Action>) {
        let mut killed = Vec::new();
        for a in actions {
            match a {
                Action::Send { to, msg, extra } => {
                    self.send(to, &msg, &extra);
                    if msg.kind == Kind::KillPeer {
                        killed.push(to);
                    }
                }
                Action::SendAndClose { to, msg, extra } => self.send_and_close(to, &msg, &extra),
                Action::Drop { client, reason } => self.drop_conn(client, reason),
                Action::WriteRestartScript { file_name, contents } => {
                    let r = write_restart_script(&self.cfg.ckptdir, &file_name, &contents)
                        .map(|p| p.display().to_string())
                        .map_err(|e| e.to_string());
                    self.feed(Input::ScriptWritten(r));
                }
                Action::Print(text) => {
                    // A closed stdout is no reason to stop coordinating.
                    let _ = io::stdout().lock().write_all(text.as_bytes());
                    let _ = io::stdout().lock().flush();
                }
                Action::Exit(code) => {
                    if self.exit.is_none() {
                        self.exit = Some(code);
                    }
                }
            }
        }
        if !killed.is_empty() {
            self.kill_stopped(&killed);
        }
    }

    /// How long epoll may sleep: until the nearest deadline, at most one second.
    fn wait_ms(&self) -> u16 {
        let now = Instant::now();
        let mut wake = now + Duration::from_millis(1000);
        let mut consider = |t: Instant| {
            if t < wake {
                wake = t;
            }
        };
        if let Some(t) = self.comp.next_deadline() {
            consider(self.epoch + t);
        }
        if let Some(t) = self.listener_paused_until {
            consider(t);
        }
        if self.comp.checkpointing() {
            consider(now + Duration::from_millis(100));
        }
        if self.conns.iter().any(|(&tok, c)| self.comp.peer(tok) == Some(Peer::Pending) || c.partial_since.is_some()) {
            consider(self.next_scan.max(now + Duration::from_millis(100)));
        }
        wake.saturating_duration_since(now).as_millis().min(1000) as u16 + 1
    }

    // ---- Connections -------------------------------------------------------------------

    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, addr)) => self.add_conn(stream, addr),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if !matches!(
                        e.raw_os_error(),
                        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                    ) =>
                {
                    // ECONNABORTED and the like concern one connection only.
                    log::debug!("accept: {e}");
                    continue;
                }
                Err(e) => {
                    // Out of descriptors (EMFILE) or similar: the listener stays readable, so
                    // stop watching it for a moment instead of spinning.
                    log::error!("accept: {e}; not accepting connections for 1 s");
                    let _ = self.epoll.delete(&self.listener);
                    self.listener_paused_until = Some(Instant::now() + Duration::from_secs(1));
                    break;
                }
            }
        }
    }

    fn add_conn(&mut self, stream: TcpStream, addr: SocketAddr) {
        if let Err(e) = stream.set_nonblocking(true) {
            log::warn!("dropping connection from {addr}: {e}");
            return;
        }
        let _ = stream.set_nodelay(true);
        // Only the owner (module `owner`): another user's connection is answered and closed
        // before the computation hears of it.
        let found =
            stream.local_addr().map(|local| super::owner::peer(addr, local)).unwrap_or(super::owner::Peer::Remote);
        if !super::owner::allowed(found, addr, self.owner) {
            refuse(&stream, addr, &super::owner::refusal(found, self.owner));
            return;
        }
        let needs_token = found == super::owner::Peer::Remote && self.token.is_some();
        let tok = self.next_tok;
        self.next_tok += 1;
        let ev = EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP, tok);
        if let Err(e) = self.epoll.add(&stream, ev) {
            log::warn!("dropping connection from {addr}: epoll: {e}");
            return;
        }
        log::trace!("connection from {addr}");
        let peer = addr.to_string();
        self.feed(Input::Connected { client: tok, peer: &peer });
        self.conns.insert(
            tok,
            Conn {
                stream,
                peer,
                since: Instant::now(),
                inbuf: Vec::new(),
                partial_since: None,
                out: Vec::new(),
                out_pos: 0,
                out_armed: false,
                read_shut: false,
                needs_token,
                close_after_flush: false,
                dead: false,
            },
        );
    }

    fn label(&self, tok: ClientId) -> String {
        match (self.comp.label(tok), self.conns.get(&tok)) {
            (Some(l), _) => l,
            (None, Some(c)) => format!("connection from {}", c.peer),
            (None, None) => String::new(),
        }
    }

    /// Marks a connection for removal; `reason` is logged as a warning.
    fn drop_conn(&mut self, tok: ClientId, reason: Option<String>) {
        let label = if reason.is_some() { self.label(tok) } else { String::new() };
        if let Some(c) = self.conns.get_mut(&tok) {
            if c.dead {
                return;
            }
            c.dead = true;
            if let Some(r) = reason {
                log::warn!("dropping {label}: {r}");
            }
            self.doomed.push(tok);
        }
    }

    /// Removes the connections marked dead; the computation hears of each departure.
    fn reap(&mut self) {
        while let Some(tok) = self.doomed.pop() {
            let Some(conn) = self.conns.remove(&tok) else {
                continue;
            };
            let _ = self.epoll.delete(&conn.stream);
            self.feed(Input::Disconnected { client: tok });
        }
    }

    fn is_user(&self, tok: ClientId) -> bool {
        self.comp.peer(tok) == Some(Peer::User)
    }

    fn conn_event(&mut self, tok: ClientId, ev: EpollFlags) {
        if ev.intersects(EpollFlags::EPOLLOUT) {
            self.flush(tok);
        }
        if ev.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR | EpollFlags::EPOLLRDHUP) {
            self.read_conn(tok);
        }
    }

    fn read_conn(&mut self, tok: ClientId) {
        let mut buf = [0u8; READ_CHUNK];
        for _ in 0..READS_PER_WAKE {
            let user = self.is_user(tok);
            let Some(conn) = self.conns.get_mut(&tok) else {
                return;
            };
            if conn.dead {
                return;
            }
            match conn.stream.read(&mut buf) {
                Ok(0) => {
                    self.eof(tok);
                    return;
                }
                Ok(n) => {
                    if user {
                        continue; // a command client has nothing more to say; ignore it
                    }
                    conn.inbuf.extend_from_slice(&buf[..n]);
                    self.parse_messages(tok);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.drop_conn(tok, (!user).then(|| format!("read error: {e}")));
                    return;
                }
            }
        }
    }

    fn eof(&mut self, tok: ClientId) {
        let Some(conn) = self.conns.get(&tok) else {
            return;
        };
        match self.comp.peer(tok) {
            Some(Peer::Worker) if !conn.inbuf.is_empty() => {
                let r = format!("disconnected in the middle of a message ({} bytes)", conn.inbuf.len());
                self.drop_conn(tok, Some(r));
            }
            // A command client may half-close after its request: its answer (queued, or a
            // blocking checkpoint's, later) still goes out; a full close shows up as a write
            // error or a hang-up then.
            Some(Peer::User) if !conn.read_shut && (conn.out_pos < conn.out.len() || self.comp.awaits_answer(tok)) => {
                if let Some(c) = self.conns.get_mut(&tok) {
                    c.read_shut = true;
                }
                self.update_interest(tok);
            }
            Some(Peer::Pending) | None if conn.inbuf.is_empty() => {
                // A port probe, most likely: not worth a warning.
                log::debug!("connection from {} closed without sending anything", conn.peer);
                self.drop_conn(tok, None)
            }
            Some(Peer::Pending) | None => {
                let r = format!("disconnected in the middle of its first message ({} bytes)", conn.inbuf.len());
                self.drop_conn(tok, Some(r))
            }
            Some(Peer::Worker | Peer::User) => self.drop_conn(tok, None),
        }
    }

    /// Takes every complete message out of the connection's buffer and hands it on.
    fn parse_messages(&mut self, tok: ClientId) {
        loop {
            let user = self.is_user(tok);
            let Some(conn) = self.conns.get_mut(&tok) else {
                return;
            };
            if conn.dead || user {
                return;
            }
            if conn.inbuf.len() < MSG_SIZE {
                conn.partial_since =
                    if conn.inbuf.is_empty() { None } else { conn.partial_since.or(Some(Instant::now())) };
                return;
            }
            let mut hdr = [0u8; MSG_SIZE];
            hdr.copy_from_slice(&conn.inbuf[..MSG_SIZE]);
            let msg = match Msg::decode(&hdr) {
                Ok(m) => m,
                Err(e) => {
                    self.drop_conn(tok, Some(format!("protocol error: {e}")));
                    return;
                }
            };
            let need = MSG_SIZE + msg.extra_len as usize;
            if conn.inbuf.len() < need {
                conn.partial_since = conn.partial_since.or(Some(Instant::now()));
                return;
            }
            let extra = conn.inbuf[MSG_SIZE..need].to_vec();
            conn.inbuf.drain(..need);
            conn.partial_since = None;
            if conn.inbuf.capacity() > 2 * READ_CHUNK && conn.inbuf.len() < READ_CHUNK {
                conn.inbuf.shrink_to(READ_CHUNK);
            }
            if conn.needs_token || msg.kind == Kind::Token {
                let good = msg.kind == Kind::Token
                    && self.token.as_ref().is_some_and(|t| crate::common::token::same(t.as_bytes(), &extra));
                if conn.needs_token && !good {
                    let text = if msg.kind == Kind::Token {
                        "this coordinator listens beyond its host and the token given is not its token".to_string()
                    } else {
                        format!(
                            "this coordinator listens beyond its host and needs its token from clients on other hosts: \
                             set {} to the content of its token file (or {} to the file)",
                            dmtcp_proto::env::COORD_TOKEN,
                            dmtcp_proto::env::COORD_TOKEN_FILE
                        )
                    };
                    let peer = conn.peer.clone();
                    conn.dead = true;
                    refuse_text(&conn.stream, &peer, &text);
                    self.doomed.push(tok);
                    return;
                }
                // The owner's local clients are known by uid: their token, if any, adds nothing.
                conn.needs_token = false;
                continue;
            }
            self.feed(Input::Message { client: tok, msg, extra: &extra });
        }
    }

    /// Queues a message; the connection is dropped if its out-buffer would exceed the limit.
    fn send(&mut self, tok: ClientId, msg: &Msg, extra: &[u8]) {
        let Some(conn) = self.conns.get_mut(&tok) else {
            return;
        };
        if conn.dead {
            return;
        }
        if conn.out.len() - conn.out_pos + MSG_SIZE + extra.len() > OUT_LIMIT {
            self.drop_conn(tok, Some("does not read its messages (out-buffer full)".into()));
            return;
        }
        let mut m = *msg;
        m.extra_len = extra.len() as u32;
        conn.out.extend_from_slice(&m.encode());
        conn.out.extend_from_slice(extra);
        if !conn.out_armed {
            self.flush(tok);
        }
    }

    fn flush(&mut self, tok: ClientId) {
        let user = self.is_user(tok);
        let Some(conn) = self.conns.get_mut(&tok) else {
            return;
        };
        if conn.dead {
            return;
        }
        while conn.out_pos < conn.out.len() {
            match conn.stream.write(&conn.out[conn.out_pos..]) {
                Ok(0) => break,
                Ok(n) => conn.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.drop_conn(tok, (!user).then(|| format!("write error: {e}")));
                    return;
                }
            }
        }
        if conn.out_pos == conn.out.len() {
            conn.out.clear();
            conn.out_pos = 0;
            if conn.out.capacity() > READ_CHUNK {
                conn.out.shrink_to(READ_CHUNK);
            }
        } else if conn.out_pos > READ_CHUNK {
            conn.out.drain(..conn.out_pos);
            conn.out_pos = 0;
        }
        let want_out = !conn.out.is_empty();
        let close = !want_out && conn.close_after_flush;
        if want_out != conn.out_armed {
            self.update_interest(tok);
        }
        if close {
            self.drop_conn(tok, None);
        }
    }

    /// Watches for input unless the peer shut down, for output while some is queued.
    fn update_interest(&mut self, tok: ClientId) {
        let Some(conn) = self.conns.get_mut(&tok) else {
            return;
        };
        let want_out = !conn.out.is_empty();
        let mut flags = EpollFlags::empty();
        if !conn.read_shut {
            flags |= EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP;
        }
        if want_out {
            flags |= EpollFlags::EPOLLOUT;
        }
        let mut ev = EpollEvent::new(flags, tok);
        if let Err(e) = self.epoll.modify(&conn.stream, &mut ev) {
            self.drop_conn(tok, Some(format!("epoll: {e}")));
            return;
        }
        conn.out_armed = want_out;
    }

    /// Sends a reply and closes the connection once it is written.
    fn send_and_close(&mut self, tok: ClientId, msg: &Msg, extra: &[u8]) {
        if let Some(c) = self.conns.get_mut(&tok) {
            c.close_after_flush = true;
        }
        self.send(tok, msg, extra);
        // `send` flushes at once when it can; an empty out-buffer means the reply is gone.
        if let Some(c) = self.conns.get(&tok) {
            if c.out.is_empty() && !c.dead {
                self.drop_conn(tok, None);
            }
        }
    }

    // ---- Timers ------------------------------------------------------------------------

    fn tick(&mut self) {
        let now = Instant::now();
        if let Some(t) = self.listener_paused_until {
            if now >= t {
                self.listener_paused_until = None;
                if let Err(e) = self.epoll.add(&self.listener, EpollEvent::new(EpollFlags::EPOLLIN, TOK_LISTENER)) {
                    log::error!("cannot watch the listener again: {e}");
                    self.exit = Some(cli::EXIT_FAILURE);
                    return;
                }
            }
        }
        if now >= self.next_scan {
            self.next_scan = now + Duration::from_millis(100);
            let mut stale = Vec::new();
            for (&tok, c) in &self.conns {
                if c.dead {
                    continue;
                }
                let peer = self.comp.peer(tok);
                if peer == Some(Peer::Pending) && now.duration_since(c.since) >= FIRST_MSG_TIMEOUT {
                    let why = if c.inbuf.is_empty() {
                        format!("sent nothing within {} s", FIRST_MSG_TIMEOUT.as_secs())
                    } else {
                        format!(
                            "sent only {} bytes of its first message within {} s",
                            c.inbuf.len(),
                            FIRST_MSG_TIMEOUT.as_secs()
                        )
                    };
                    stale.push((tok, why));
                } else if let Some(p) = c.partial_since {
                    if self.comp.worker(tok).is_some() && now.duration_since(p) >= PARTIAL_MSG_TIMEOUT {
                        stale.push((
                            tok,
                            format!("stalled in the middle of a message for {} s", PARTIAL_MSG_TIMEOUT.as_secs()),
                        ));
                    }
                }
            }
            for (tok, why) in stale {
                // What it sent may be waiting unread behind a burst of accepts: read it first.
                if self.comp.peer(tok) == Some(Peer::Pending) {
                    self.read_conn(tok);
                    if self.comp.peer(tok) != Some(Peer::Pending) {
                        continue;
                    }
                }
                if self.conns.get(&tok).is_some_and(|c| !c.dead) {
                    self.drop_conn(tok, Some(why));
                }
            }
            self.reap();
        }
        if self.exit.is_none() {
            self.feed(Input::Tick);
        }
        self.watch_stopped();
    }

    /// A worker still RUNNING 100 ms into a checkpoint may be in group stop: if all its
    /// threads are, it is minded through the checkpoint (`stopped`) and told so.
    fn watch_stopped(&mut self) {
        if !self.comp.checkpointing() {
            self.stop_watch = None;
            return;
        }
        let now = Instant::now();
        // First look 100 ms into the checkpoint, then once a second (one pass over /proc).
        let (next, seen) =
            self.stop_watch.get_or_insert_with(|| (now + Duration::from_millis(100), Default::default()));
        if now < *next {
            return;
        }
        *next = now + Duration::from_secs(1);
        let mut todo = Vec::new();
        for (&tok, c) in &self.conns {
            let running = self.comp.worker(tok).is_some_and(|w| w.state == dmtcp_proto::WorkerState::Running);
            if !c.dead && running && !seen.contains(&tok) {
                if let (Ok(p), Ok(l)) = (c.stream.peer_addr(), c.stream.local_addr()) {
                    todo.push((tok, p, l));
                }
            }
        }
        let pids = super::stopped::client_pids(&todo.iter().map(|&(_, p, l)| (p, l)).collect::<Vec<_>>());
        for ((tok, _, _), pid) in todo.into_iter().zip(pids) {
            let Some(pid) = pid else { continue };
            if !super::stopped::group_stopped(pid) {
                continue;
            }
            if let Some((_, seen)) = &mut self.stop_watch {
                seen.insert(tok);
            }
            let label = self.comp.label(tok).unwrap_or_default();
            match super::stopped::mind(pid, self.cfg.ckpt_timeout.unwrap_or(Duration::from_secs(300))) {
                Ok(m) => {
                    log::info!("{label} is stopped (signal {}): minded through the checkpoint", m.stop_signal);
                    let mut msg = Msg::new(Kind::Minded);
                    msg.cmd_status = m.stop_signal;
                    self.send(tok, &msg, b"");
                    let _ = m.go.send(());
                }
                Err(e) => log::warn!("{label} is stopped and cannot take part in the checkpoint: {e}"),
            }
        }
    }

    /// After KillPeer: a worker in group stop cannot read it; it gets SIGKILL instead.
    fn kill_stopped(&mut self, toks: &[ClientId]) {
        let addrs: Vec<(SocketAddr, SocketAddr)> = toks
            .iter()
            .filter_map(|t| self.conns.get(t))
            .filter_map(|c| Some((c.stream.peer_addr().ok()?, c.stream.local_addr().ok()?)))
            .collect();
        for pid in super::stopped::client_pids(&addrs).into_iter().flatten() {
            if super::stopped::group_stopped(pid) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }

    fn read_signals(&mut self) {
        loop {
            match self.sigfd.read_signal() {
                Ok(Some(info)) => {
                    let name = Signal::try_from(info.ssi_signo as i32).map(|s| s.as_str()).unwrap_or("a signal");
                    self.feed(Input::Signal(name));
                }
                Ok(None) => return,
                Err(Errno::EINTR) => {}
                Err(e) => {
                    log::error!("reading signals: {e}");
                    return;
                }
            }
        }
    }

    // ---- Stdin -------------------------------------------------------------------------

    fn stop_stdin(&mut self) {
        if self.stdin_open {
            let _ = self.epoll.delete(io::stdin().as_fd());
            self.stdin_open = false;
        }
    }

    fn read_stdin(&mut self) {
        let mut buf = [0u8; 4096];
        // One read per readiness event: stdin stays blocking (it may be shared with a shell),
        // and epoll said a read will not block.
        let n = match nix::unistd::read(io::stdin().as_fd(), &mut buf) {
            Ok(n) => n,
            Err(Errno::EINTR | Errno::EAGAIN) => return,
            Err(e) => {
                log::info!("not reading commands from stdin any more: {e}");
                self.stop_stdin();
                return;
            }
        };
        if n == 0 {
            log::debug!("stdin closed; not reading commands any more");
            self.stop_stdin();
            let rest = std::mem::take(&mut self.stdin_buf);
            if !rest.is_empty() && !self.stdin_discarding {
                self.feed(Input::Console(&String::from_utf8_lossy(&rest)));
            }
            return;
        }
        self.feed_stdin(&buf[..n]);
    }

    fn feed_stdin(&mut self, data: &[u8]) {
        for &b in data {
            if b == b'\n' {
                let line = std::mem::take(&mut self.stdin_buf);
                if !std::mem::replace(&mut self.stdin_discarding, false) {
                    self.feed(Input::Console(&String::from_utf8_lossy(&line)));
                }
            } else if self.stdin_buf.len() < STDIN_LINE_MAX {
                self.stdin_buf.push(b);
            } else {
                self.stdin_discarding = true;
                self.stdin_buf.clear();
            }
            if self.exit.is_some() {
                return;
            }
        }
    }

    /// stdin that epoll refuses (a regular file, /dev/null) never blocks: read it all now.
    fn read_unpollable_stdin(&mut self) {
        let mut data = Vec::new();
        let mut stdin = io::stdin().lock();
        let mut buf = [0u8; 4096];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) if data.len() < 1 << 20 => data.extend_from_slice(&buf[..n]),
                Ok(_) => break,
            }
        }
        drop(stdin);
        self.feed_stdin(&data);
        if !self.stdin_buf.is_empty() {
            let rest = std::mem::take(&mut self.stdin_buf);
            self.feed(Input::Console(&String::from_utf8_lossy(&rest)));
        }
    }

    // ---- Exit --------------------------------------------------------------------------

    /// Writes what is still queued (briefly, blocking), removes the port file.
    fn shutdown(&mut self, code: i32) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(1);
        for conn in self.conns.values_mut() {
            if conn.dead || conn.out_pos >= conn.out.len() {
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if conn.stream.set_nonblocking(false).is_ok() && conn.stream.set_write_timeout(Some(left)).is_ok() {
                let _ = conn.stream.write_all(&conn.out[conn.out_pos..]);
            }
        }
        self.conns.clear();
        remove_port_file(&self.cfg);
        code
    }
}

/// Tells a refused client why and closes the connection.
fn refuse(stream: &TcpStream, addr: SocketAddr, text: &str) {
    refuse_text(stream, &addr.to_string(), text)
}

fn refuse_text(stream: &TcpStream, peer: &str, text: &str) {
    log::warn!("refused the connection from {peer}: {text}");
    let mut m = Msg::new(Kind::RejectNotOwner);
    m.extra_len = text.len() as u32;
    let mut bytes = m.encode().to_vec();
    bytes.extend_from_slice(text.as_bytes());
    // A fresh socket's send buffer takes this at once; what does not fit is dropped.
    let mut w = stream;
    let _ = w.write(&bytes);
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

fn monotonic_ns() -> u64 {
    use nix::time::{clock_gettime, ClockId};
    clock_gettime(ClockId::CLOCK_MONOTONIC).map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64).unwrap_or(0)
}
