//! The coordinator protocol: one fixed 128-byte header per message, optionally followed by
//! `extra_len` payload bytes (at most `MAX_EXTRA`).
//!
//! ```text
//!  off size field
//!    0    8 magic "DMTCP-RS"
//!    8    4 version (PROTO_VERSION; a different one is refused)
//!   12    4 kind       (Kind)
//!   16    4 state      (WorkerState of the sender, or of the computation in replies)
//!   20    4 cmd        (Cmd, for UserCmd / UserCmdResult)
//!   24    4 cmd_status (CmdStatus, i32)
//!   28    4 pid        (real pid of the sender)
//!   32    4 vpid       (virtual pid; 0 = none)
//!   36    4 ppid
//!   40    4 num_peers
//!   44    4 running    (0 or 1)
//!   48    4 interval   (seconds; INTERVAL_UNCHANGED = leave as is)
//!   52    4 extra_len
//!   56    8 comp_id
//!   64    8 coord_timestamp
//!   72    4 generation
//!   76    4 flags
//!   80   48 name       (barrier name, NUL-terminated)
//!  128      end
//! ```
use crate::le::*;

pub const MAGIC: [u8; 8] = *b"DMTCP-RS";
pub const PROTO_VERSION: u32 = 1;
pub const MSG_SIZE: usize = 128;
/// Largest payload a peer may announce; more is a protocol error, not an allocation.
pub const MAX_EXTRA: u32 = 1 << 20;
pub const NAME_LEN: usize = 48;
pub const INTERVAL_UNCHANGED: u32 = u32::MAX;

/// Flag in `Msg::flags` of DoCheckpoint: exit after the checkpoint is written.
pub const FLAG_EXIT_AFTER_CKPT: u32 = 1;
/// Flag in `Msg::flags` of FdWarning: the process runs with DMTCP_STRICT=1, so an fd that
/// cannot be restored fails the checkpoint.
pub const FLAG_STRICT: u32 = 2;
/// Flag in `Msg::flags` of the BarrierReleased of DMT:Drain: the checkpoint is abandoned
/// (`--strict` and an fd that cannot be restored); no process writes its image, each refills
/// what it took and goes on after DMT:WriteCkpt.
pub const FLAG_CKPT_ABANDONED: u32 = 4;

/// Flag in `Msg::flags` of a BlockingCkpt UserCmd: send CkptProgress messages before the result.
pub const FLAG_PROGRESS: u32 = 8;
/// Flag in `Msg::flags` of a UserCmdResult: a restart is in progress.
pub const FLAG_RESTARTING: u32 = 16;
/// Flag in `Msg::flags` of a UserCmdResult: the last restart begun at this coordinator
/// completed (every process resumed); not set while it runs or after it failed.
pub const FLAG_RESTART_DONE: u32 = 32;

/// Flags in `Msg::flags` of a checkpoint UserCmd and of DoCheckpoint: this one checkpoint
/// writes a delta image where a process can (FLAG_INCREMENTAL: it has a chain to build on, else
/// a full image that starts one), or a full image (FLAG_FULL: a new chain where the process
/// keeps one), whatever the processes were launched with. Neither: as launched (a coordinator
/// started with `--incremental` sets FLAG_INCREMENTAL on every checkpoint it starts).
pub const FLAG_INCREMENTAL: u32 = 16;
pub const FLAG_FULL: u32 = 32;

/// Payload of `CkptProgress`: image stream bytes written of the expected total, and the bytes
/// stored on disk (after compression) once the image is complete (0 before). From the
/// coordinator, the sums over the computation: `done` processes have stored their image, and
/// `elapsed_ms` have passed since the checkpoint started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub written: u64,
    pub total: u64,
    pub stored: u64,
    pub done: u32,
    pub elapsed_ms: u64,
}

pub const PROGRESS_SIZE: usize = 40;

impl Progress {
    pub fn encode(&self) -> [u8; PROGRESS_SIZE] {
        let mut b = [0u8; PROGRESS_SIZE];
        put_u64(&mut b, 0, self.written);
        put_u64(&mut b, 8, self.total);
        put_u64(&mut b, 16, self.stored);
        put_u32(&mut b, 24, self.done);
        put_u64(&mut b, 32, self.elapsed_ms);
        b
    }

    /// None when the payload is too short.
    pub fn decode(b: &[u8]) -> Option<Progress> {
        if b.len() < PROGRESS_SIZE {
            return None;
        }
        Some(Progress {
            written: get_u64(b, 0),
            total: get_u64(b, 8),
            stored: get_u64(b, 16),
            done: get_u32(b, 24),
            elapsed_ms: get_u64(b, 32),
        })
    }
}

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($v:ident = $n:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u32)]
        pub enum $name { $($v = $n),* }
        impl $name {
            pub fn from_u32(x: u32) -> Option<Self> {
                match x { $($n => Some(Self::$v),)* _ => None }
            }
        }
    };
}

wire_enum!(
    /// What a message is.
    Kind {
        NewWorker = 1,
        RestartWorker = 3,
        Accept = 4,
        RejectNotRestarting = 5,
        RejectWrongComp = 6,
        RejectNotRunning = 7,
        UpdateAfterExec = 10,
        CkptFilename = 14,
        UserCmd = 16,
        UserCmdResult = 17,
        DoCheckpoint = 18,
        Barrier = 19,
        BarrierReleased = 20,
        WorkerResuming = 21,
        KillPeer = 22,
        CkptFailed = 23,
        // The coordinator serves only the user who started it; the text says whose it is.
        RejectNotOwner = 30,
        // First message of a client from another host (and of any client that has it): the
        // coordinator's secret token as the payload. A coordinator that listens beyond
        // loopback refuses a remote client without it (RejectNotOwner, with the reason).
        Token = 31,
        // During a checkpoint, before DMT:Drain: one fd of the sender that no kind restores;
        // the payload names it ("fd 5 (netlink socket, socket:[123])"), the coordinator adds
        // the process.
        FdWarning = 24,
        // How far an image is written (payload: `Progress`). From a worker while it streams its
        // image and once when it is stored; from the coordinator to a `--bcheckpoint` client
        // that set FLAG_PROGRESS, the sums over the computation, last just before the result.
        CkptProgress = 25,
        // Coordinator to a worker that was in group stop when a checkpoint came: it is minded
        // (see the coordinator's `stopped`); `cmd_status` is the signal that stopped it. The
        // worker goes back into that stop after the checkpoint, and after a restart.
        Minded = 26,
    }
);

wire_enum!(
    /// Where a worker is in the checkpoint sequence.
    WorkerState {
        Unknown = 0,
        Running = 1,
        Presuspend = 2,
        Suspended = 3,
        Checkpointing = 4,
        Checkpointed = 5,
        Restarting = 6,
    }
);

impl WorkerState {
    pub fn name(self) -> &'static str {
        match self {
            WorkerState::Unknown => "UNKNOWN",
            WorkerState::Running => "RUNNING",
            WorkerState::Presuspend => "PRESUSPEND",
            WorkerState::Suspended => "SUSPENDED",
            WorkerState::Checkpointing => "CHECKPOINTING",
            WorkerState::Checkpointed => "CHECKPOINTED",
            WorkerState::Restarting => "RESTARTING",
        }
    }
}

wire_enum!(
    /// A user command, from `dmtcp_command` or the coordinator's own stdin.
    Cmd {
        Status = 1,
        List = 2,
        Checkpoint = 3,
        BlockingCkpt = 4,
        KillAfterCkpt = 5,
        UpdateInterval = 6,
        Kill = 7,
        Quit = 8,
    }
);

impl Cmd {
    /// The name DMTCP's JSON output uses for the command.
    pub fn json_name(self) -> &'static str {
        match self {
            Cmd::Status => "DMT_STATUS",
            Cmd::List => "DMT_LIST",
            Cmd::Checkpoint => "DMT_CHECKPOINT",
            Cmd::BlockingCkpt => "DMT_BLOCKING_CKPT",
            Cmd::KillAfterCkpt => "DMT_KILL_AFTER_CKPT",
            Cmd::UpdateInterval => "DMT_UPDATE_CKPT_INTERVAL",
            Cmd::Kill => "DMT_KILL",
            Cmd::Quit => "DMT_QUIT",
        }
    }
}

/// Result of a user command (`cmd_status`).
pub mod status {
    pub const SUCCESS: i32 = 0;
    pub const INVALID_COMMAND: i32 = -1;
    pub const NOT_RUNNING: i32 = -2;
    pub const CKPT_FAILED: i32 = -4;

    pub fn json_name(s: i32) -> &'static str {
        match s {
            SUCCESS => "DMT_COORD_SUCCESS",
            INVALID_COMMAND => "DMT_COORD_INVALID_COMMAND",
            NOT_RUNNING => "DMT_COORD_NOT_RUNNING",
            CKPT_FAILED => "DMT_COORD_CKPT_FAILED",
            _ => "DMT_COORD_UNKNOWN",
        }
    }
}

/// Why a header was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    BadMagic,
    BadVersion(u32),
    BadKind(u32),
    ExtraTooLarge(u32),
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::BadMagic => write!(f, "bad magic (not a dmtcp peer)"),
            DecodeError::BadVersion(v) => {
                write!(f, "protocol version {v}, expected {PROTO_VERSION}")
            }
            DecodeError::BadKind(k) => write!(f, "unknown message kind {k}"),
            DecodeError::ExtraTooLarge(n) => {
                write!(f, "payload of {n} bytes announced, limit is {MAX_EXTRA}")
            }
        }
    }
}

/// One message header. `extra_len` says how many payload bytes follow on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msg {
    pub kind: Kind,
    pub state: u32,
    pub cmd: u32,
    pub cmd_status: i32,
    pub pid: i32,
    pub vpid: i32,
    pub ppid: i32,
    pub num_peers: u32,
    pub running: u32,
    pub interval: u32,
    pub extra_len: u32,
    pub comp_id: u64,
    pub coord_timestamp: u64,
    pub generation: u32,
    pub flags: u32,
    pub name: [u8; NAME_LEN],
}

impl Msg {
    pub const fn new(kind: Kind) -> Msg {
        Msg {
            kind,
            state: 0,
            cmd: 0,
            cmd_status: 0,
            pid: 0,
            vpid: 0,
            ppid: 0,
            num_peers: 0,
            running: 0,
            interval: INTERVAL_UNCHANGED,
            extra_len: 0,
            comp_id: 0,
            coord_timestamp: 0,
            generation: 0,
            flags: 0,
            name: [0; NAME_LEN],
        }
    }

    pub fn with_name(mut self, name: &[u8]) -> Msg {
        let n = core::cmp::min(name.len(), NAME_LEN - 1);
        self.name = [0; NAME_LEN];
        self.name[..n].copy_from_slice(&name[..n]);
        self
    }

    pub fn name_bytes(&self) -> &[u8] {
        let n = self.name.iter().position(|&c| c == 0).unwrap_or(NAME_LEN);
        &self.name[..n]
    }

    pub fn encode(&self) -> [u8; MSG_SIZE] {
        let mut b = [0u8; MSG_SIZE];
        b[0..8].copy_from_slice(&MAGIC);
        put_u32(&mut b, 8, PROTO_VERSION);
        put_u32(&mut b, 12, self.kind as u32);
        put_u32(&mut b, 16, self.state);
        put_u32(&mut b, 20, self.cmd);
        put_i32(&mut b, 24, self.cmd_status);
        put_i32(&mut b, 28, self.pid);
        put_i32(&mut b, 32, self.vpid);
        put_i32(&mut b, 36, self.ppid);
        put_u32(&mut b, 40, self.num_peers);
        put_u32(&mut b, 44, self.running);
        put_u32(&mut b, 48, self.interval);
        put_u32(&mut b, 52, self.extra_len);
        put_u64(&mut b, 56, self.comp_id);
        put_u64(&mut b, 64, self.coord_timestamp);
        put_u32(&mut b, 72, self.generation);
        put_u32(&mut b, 76, self.flags);
        b[80..128].copy_from_slice(&self.name);
        b
    }

    pub fn decode(b: &[u8; MSG_SIZE]) -> Result<Msg, DecodeError> {
        if b[0..8] != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let version = get_u32(b, 8);
        if version != PROTO_VERSION {
            return Err(DecodeError::BadVersion(version));
        }
        let kind_raw = get_u32(b, 12);
        let kind = Kind::from_u32(kind_raw).ok_or(DecodeError::BadKind(kind_raw))?;
        let extra_len = get_u32(b, 52);
        if extra_len > MAX_EXTRA {
            return Err(DecodeError::ExtraTooLarge(extra_len));
        }
        let mut name = [0u8; NAME_LEN];
        name.copy_from_slice(&b[80..128]);
        Ok(Msg {
            kind,
            state: get_u32(b, 16),
            cmd: get_u32(b, 20),
            cmd_status: get_i32(b, 24),
            pid: get_i32(b, 28),
            vpid: get_i32(b, 32),
            ppid: get_i32(b, 36),
            num_peers: get_u32(b, 40),
            running: get_u32(b, 44),
            interval: get_u32(b, 48),
            extra_len,
            comp_id: get_u64(b, 56),
            coord_timestamp: get_u64(b, 64),
            generation: get_u32(b, 72),
            flags: get_u32(b, 76),
            name,
        })
    }
}

/// The payload of `NewWorker`: "hostname\0progname\0".
pub fn split_worker_payload(extra: &[u8]) -> (&[u8], &[u8]) {
    let mut it = extra.split(|&c| c == 0);
    let host = it.next().unwrap_or(&[]);
    let prog = it.next().unwrap_or(&[]);
    (host, prog)
}

#[cfg(test)]
mod tests {
    #[test]
    fn progress_round_trips_and_short_payloads_are_refused() {
        let p = super::Progress { written: 1 << 40, total: 3, stored: 7, done: 2, elapsed_ms: 9 };
        assert_eq!(super::Progress::decode(&p.encode()), Some(p));
        assert_eq!(super::Progress::decode(&p.encode()[..super::PROGRESS_SIZE - 1]), None);
    }

    use super::*;

    #[test]
    fn roundtrip() {
        let mut m = Msg::new(Kind::Barrier).with_name(b"DMT:SUSPEND");
        m.pid = 1234;
        m.comp_id = 0xdead_beef_0000_0001;
        m.extra_len = 7;
        let b = m.encode();
        assert_eq!(Msg::decode(&b), Ok(m));
        assert_eq!(Msg::decode(&b).unwrap().name_bytes(), b"DMT:SUSPEND");
    }

    #[test]
    fn refuses_bad_input() {
        let good = Msg::new(Kind::UserCmd).encode();
        let mut b = good;
        b[0] = b'X';
        assert_eq!(Msg::decode(&b), Err(DecodeError::BadMagic));
        let mut b = good;
        put_u32(&mut b, 8, 99);
        assert_eq!(Msg::decode(&b), Err(DecodeError::BadVersion(99)));
        let mut b = good;
        put_u32(&mut b, 12, 999);
        assert_eq!(Msg::decode(&b), Err(DecodeError::BadKind(999)));
        let mut b = good;
        put_u32(&mut b, 52, MAX_EXTRA + 1);
        assert_eq!(Msg::decode(&b), Err(DecodeError::ExtraTooLarge(MAX_EXTRA + 1)));
    }
}
