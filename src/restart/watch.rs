//! Watching a restart until it completes (every process rejoined the coordinator and resumed).
//! Until then the death of any restored process, a lost coordinator, or a restart that takes
//! longer than DMTCP_RESTART_TIMEOUT (default 300 s) fails the whole restart: `dmtcp_restart`
//! names what happened, kills the rest of the group and exits non-zero. Safe code, in X only.
//!
//! What it hears: the records of each group's init (`ns::record`: ACCEPTED when a process was
//! accepted by the coordinator, DIED for a restored process that died while it was watched),
//! and the coordinator's status (FLAG_RESTARTING, FLAG_RESTART_DONE, and its timestamp, which
//! tells this restart from an earlier one at the same coordinator). A death is judged by the
//! coordinator: a process that had resumed may end (the program's own doing) and the restart
//! still completes; one that had not makes the coordinator fail the restart.
use super::plan::Plan;
use super::Target;
use crate::common::client;
use crate::common::ns::record;
use dmtcp_proto::{Cmd, Kind, Msg};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// The variable that bounds a whole restart (seconds).
pub const RESTART_TIMEOUT: &str = "DMTCP_RESTART_TIMEOUT";
const DEFAULT_LIMIT: Duration = Duration::from_secs(300);
/// How often the coordinator is asked while nothing happens.
const POLL_EVERY: Duration = Duration::from_millis(250);
/// How long a death waits for the coordinator's verdict.
const VERDICT_WITHIN: Duration = Duration::from_secs(10);
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) enum Verdict {
    Going,
    Complete,
    Failed(String),
}

pub(super) struct Watch<'a> {
    host: &'a str,
    port: u16,
    /// (group, pid in it) -> image name.
    names: HashMap<(usize, i32), String>,
    total: usize,
    start: Instant,
    limit: Duration,
    /// The coordinator's timestamp of this restart (low 32 bits), once a process was accepted.
    ours: Option<u32>,
    accepted: HashSet<(usize, i32)>,
    /// Records already read, per group.
    seen: Vec<usize>,
    /// A death that waits for the coordinator's verdict: what to say, since when.
    pending: Option<(String, Instant)>,
    last_poll: Option<Instant>,
    pub complete: bool,
}

impl<'a> Watch<'a> {
    pub fn new(plan: &Plan, targets: &[Target], host: &'a str, port: u16, use_ns: bool) -> Result<Watch<'a>, String> {
        let mut names = HashMap::new();
        if use_ns {
            for g in 0..plan.groups.len() {
                for i in plan.creation_order(g) {
                    names.insert((g, plan.procs[i].pid), targets[i].img.path.display().to_string());
                }
            }
        }
        let limit = match std::env::var(RESTART_TIMEOUT).ok().filter(|v| !v.trim().is_empty()) {
            Some(v) => match v.trim().parse::<u64>() {
                Ok(s) if s > 0 => Duration::from_secs(s),
                _ => return Err(format!("{RESTART_TIMEOUT}={v:?} is not a number of seconds")),
            },
            None => DEFAULT_LIMIT,
        };
        Ok(Watch {
            host,
            port,
            names,
            total: targets.len(),
            start: Instant::now(),
            limit,
            ours: None,
            accepted: HashSet::new(),
            seen: vec![0; plan.groups.len()],
            pending: None,
            last_poll: None,
            complete: false,
        })
    }

    fn name(&self, g: usize, pid: i32) -> String {
        match self.names.get(&(g, pid)) {
            Some(n) => format!("the process of {n} (pid {pid})"),
            None => format!("process {pid}"),
        }
    }

    /// Takes the records of group `g` read so far (all of them; the new ones are handled).
    pub fn records(&mut self, g: usize, recs: &[(u32, i32)]) {
        let new = &recs[self.seen[g].min(recs.len())..];
        self.seen[g] = recs.len();
        let mut k = 0;
        while k < new.len() {
            match (new[k], new.get(k + 1)) {
                ((record::ACCEPTED, ts), Some(&(record::ACCEPTED_PID, pid))) => {
                    self.ours = Some(ts as u32);
                    self.accepted.insert((g, pid));
                    k += 2;
                }
                ((record::DIED, pid), Some(&(record::DIED_STATUS, status))) => {
                    if !self.complete && self.pending.is_none() {
                        let step = if self.accepted.contains(&(g, pid)) {
                            "after it had joined the coordinator, while it was restored or waited at the restart \
                             barriers"
                        } else {
                            "before it joined the coordinator"
                        };
                        let what = format!("{} {} {step}", self.name(g, pid), how(status));
                        self.pending = Some((what, Instant::now()));
                    }
                    k += 2;
                }
                _ => k += 1,
            }
        }
    }

    /// Group `g`'s init ended before the restart was known complete, with `status`.
    pub fn group_ended(&mut self, g: usize, status: i32) {
        if !self.complete && self.pending.is_none() {
            let what = format!("the init of namespace group {g} {}", how(status));
            self.pending = Some((what, Instant::now()));
        }
    }

    /// Asks the coordinator when it is time; the verdict so far.
    pub fn tick(&mut self) -> Verdict {
        if self.complete {
            return Verdict::Going;
        }
        let due = self.pending.is_some() || self.last_poll.is_none_or(|t| t.elapsed() >= POLL_EVERY);
        if due {
            self.last_poll = Some(Instant::now());
            match ask(self.host, self.port) {
                Err(e) => {
                    let also = self.pending.as_ref().map(|(w, _)| format!("; {w}")).unwrap_or_default();
                    return Verdict::Failed(format!(
                        "lost the coordinator at {}:{} during the restart: {e}{also}",
                        self.host, self.port
                    ));
                }
                Ok(m) => {
                    let ours = self.ours.is_some_and(|t| t == m.coord_timestamp as u32);
                    if ours && m.flags & dmtcp_proto::FLAG_RESTART_DONE != 0 {
                        self.complete = true;
                        self.pending = None;
                        return Verdict::Complete;
                    }
                    if let Some((what, since)) = &self.pending {
                        let still = ours && m.flags & dmtcp_proto::FLAG_RESTARTING != 0;
                        if !still || since.elapsed() > VERDICT_WITHIN {
                            return Verdict::Failed(format!("{what}, before the restart completed"));
                        }
                    }
                }
            }
        }
        if self.start.elapsed() > self.limit {
            return Verdict::Failed(format!(
                "the restart did not complete within {} s ({RESTART_TIMEOUT}): {} of {} processes joined the \
                 coordinator at {}:{}, and the computation has not resumed",
                self.limit.as_secs(),
                self.accepted.len(),
                self.total,
                self.host,
                self.port
            ));
        }
        Verdict::Going
    }

    /// Every group ended before the restart was known complete: waits (bounded) for the
    /// coordinator's verdict on the last deaths.
    pub fn settle(&mut self) -> Verdict {
        let until = Instant::now() + VERDICT_WITHIN + ASK_TIMEOUT;
        if self.pending.is_none() {
            self.pending = Some(("every process of the restart ended".to_string(), Instant::now()));
        }
        loop {
            match self.tick() {
                Verdict::Going if Instant::now() < until => std::thread::sleep(POLL_EVERY / 2),
                Verdict::Going => return Verdict::Failed("no verdict from the coordinator on the restart".to_string()),
                v => return v,
            }
        }
    }
}

/// "was killed by signal 9 (SIGKILL)" or "exited with code N", of a raw wait status (-1: it
/// was gone, reaped by its parent).
pub fn how(status: i32) -> String {
    if status == -1 {
        "ended and was reaped by its parent".to_string()
    } else if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        let name = nix::sys::signal::Signal::try_from(sig).map(|s| s.as_str()).unwrap_or("?");
        format!("was killed by signal {sig} ({name})")
    } else if libc::WIFEXITED(status) {
        format!("exited with code {}", libc::WEXITSTATUS(status))
    } else {
        format!("ended (wait status {status:#x})")
    }
}

/// The coordinator's status.
fn ask(host: &str, port: u16) -> Result<Msg, String> {
    let mut s = client::connect(host, port, ASK_TIMEOUT).map_err(|e| e.to_string())?;
    let mut m = Msg::new(Kind::UserCmd);
    m.cmd = Cmd::Status as u32;
    m.pid = std::process::id() as i32;
    client::send(&mut s, &m, &[]).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(ASK_TIMEOUT)).map_err(|e| e.to_string())?;
    loop {
        let (reply, _) = client::recv(&mut s).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                format!("no answer within {} s", ASK_TIMEOUT.as_secs())
            }
            std::io::ErrorKind::UnexpectedEof => "it closed the connection without answering".to_string(),
            _ => e.to_string(),
        })?;
        match reply.kind {
            Kind::UserCmdResult => return Ok(reply),
            // Killing its computation (a failed restart is killed so): neither restarting nor done.
            Kind::KillPeer => return Ok(Msg::new(Kind::UserCmdResult)),
            Kind::RejectNotOwner => return Err("it refused our status request".to_string()),
            _ => continue,
        }
    }
}
