//! The private pid namespace every launched computation runs in, and the small init that
//! lives at its pid 1. Used by `dmtcp_launch` (launch.rs) and `dmtcp_restart` (restart.rs).
//!
//! Why: a restarted process must see the same `getpid()`, `getppid()` and `gettid()` as before.
//! Instead of DMTCP's pid virtualisation (wrappers, a translation table, patching glibc's cached
//! tid), every launch runs its program in a new user + pid + mount namespace, which an ordinary
//! user may create. In the restarted computation `dmtcp_restart` builds a fresh namespace the same
//! way and creates each process with its old pid (`clone3` with `set_tid`), which the kernel
//! allows because we hold CAP_CHECKPOINT_RESTORE/CAP_SYS_ADMIN in our own user namespace. The
//! program never sees a virtual id: the kernel's ids *are* the old ids.
//!
//! The user namespace maps only our own uid and gid ("U U 1", "G G 1", after "deny" to
//! setgroups), so the program keeps its identity; files of other users show as the overflow
//! id. Mount propagation is made private and a fresh proc is mounted on /proc so that
//! `/proc/self` and `/proc/self/task` show the namespace's ids.
//!
//! Layout, at launch and per namespace at restart:
//! ```text
//!   X  dmtcp_launch / dmtcp_restart (outside: keeps the user's pid; waits, forwards signals)
//!   `- C  pid 1 of the namespace: our own code, no exec (it must keep its capabilities). It
//!      |  mounts /proc, creates the program, reaps every process, forwards signals, and when
//!      |  the program's root process is gone and nothing else is left, reports its status to
//!      |  X through a pipe and exits (which would kill whatever remained anyway).
//!      `- G  pid 2: the program (at restart: every restored process with its old pid)
//! ```
//! At restart the process that makes a group's namespaces (P in `restart::spawn`) also makes a time
//! namespace for C and everything below it (`unshare_time`, offsets from `restart::timens`), so that
//! the monotonic and boottime clocks go on from the checkpoint; a launch keeps the host's clocks (why:
//! `restart::timens`).
//! When the group's images hold System V objects or POSIX message queues, P also makes an IPC
//! namespace (`unshare_ipc`, owned by the group's user namespace) where C recreates them with
//! their old ids (`sysv_create` after writing the `*_next_id` sysctls, `restart::ipc`) and
//! mounts its mqueue fs on /dev/mqueue (`mount_mqueue`). A launch keeps the machine's IPC
//! namespace, so that a program may share keyed objects with programs outside, as without us.
//!
//! A pid-1 init cannot be killed from inside its namespace by signals it does not handle;
//! that is fine for C. X re-creates the program's end: the same exit code, or the same signal
//! (X resets the disposition and kills itself with it) so that a shell sees the same status.
//!
//! Signal forwarding: SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGALRM, SIGCONT and SIGWINCH
//! sent to X (or to C from outside the namespace) are passed down. Signals the kernel generated
//! (`SI_KERNEL`, e.g. Ctrl-C from the terminal) are not, because the terminal already sent them
//! to the whole foreground process group, the program included; forwarding them would deliver
//! them twice. C forwards only what its parent sent (so a program that signals its parent,
//! pid 1, does not get the signal back).
//!
//! Code that runs between `fork` and `exec`/`_exit` here is allocation-free and uses libc
//! directly: every string and array it needs is built before forking.
use nix::errno::Errno;
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// Signals X and C pass down to the program.
pub const FORWARDED: [libc::c_int; 8] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGALRM,
    libc::SIGCONT,
    libc::SIGWINCH,
];

/// `si_code` of a signal the kernel generated (terminal, SIGCHLD aside).
const SI_KERNEL: libc::c_int = 0x80;

/// Whether the user asked for no namespace (`DMTCP_PIDNS=0`).
pub fn disabled_by_env() -> bool {
    std::env::var(dmtcp_proto::env::PIDNS).is_ok_and(|v| v.trim() == "0")
}

/// Whether a namespace error means "not available here" (containers, sysctls, limits), after
/// which we fall back to running without a namespace.
pub fn is_unavailable(e: Errno) -> bool {
    matches!(e, Errno::EPERM | Errno::EINVAL | Errno::ENOSPC | Errno::EACCES | Errno::ENOSYS | Errno::EUSERS)
}

/// The ids to map, taken before the unshare (afterwards they read as the overflow id).
#[derive(Clone, Copy)]
pub struct Ids {
    uid: u32,
    gid: u32,
}

impl Ids {
    pub fn current() -> Ids {
        Ids { uid: nix::unistd::geteuid().as_raw(), gid: nix::unistd::getegid().as_raw() }
    }
}

/// Moves the caller into a new user and mount namespace, and makes its next child pid 1 of a
/// new pid namespace. Returns the errno of `unshare` (see `is_unavailable`), or an I/O error
/// writing the id maps (the caller is then in a user namespace without a mapping and must not
/// run the program).
pub fn unshare_all(ids: Ids) -> Result<(), NsError> {
    // SAFETY: unshare(2) only changes this (single-threaded) process's namespaces.
    let r = unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWNS) };
    if r != 0 {
        return Err(NsError::Unshare(Errno::last()));
    }
    let write =
        |file: &str, text: String| std::fs::write(file, text).map_err(|e| NsError::Maps(format!("{file}: {e}")));
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/uid_map", format!("{} {} 1\n", ids.uid, ids.uid))?;
    write("/proc/self/gid_map", format!("{} {} 1\n", ids.gid, ids.gid))?;
    // Our mounts (the /proc below) must not propagate back to the user's namespace.
    // SAFETY: mount(2) with a constant path and NULL source, type and data (a propagation change).
    let r = unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(NsError::Unshare(Errno::last()));
    }
    Ok(())
}

/// Moves the caller into a new IPC namespace, owned by its user namespace (call after
/// `unshare_all`), so that the restart can choose the ids of the System V objects it makes
/// there (`restart::ipc`) and nothing of another computation is in the way.
pub fn unshare_ipc() -> Result<(), String> {
    // SAFETY: unshare(2) only changes this (single-threaded) process's namespace.
    if unsafe { libc::unshare(libc::CLONE_NEWIPC) } != 0 {
        return Err(format!("cannot create an IPC namespace: {}", Errno::last().desc()));
    }
    Ok(())
}

/// Mounts the caller's IPC namespace's mqueue fs over /dev/mqueue when the machine has one
/// there (in a private mount namespace: after `unshare_all` and `unshare_ipc`); quietly
/// nothing otherwise (a program rarely looks, and mq_open does not need it).
pub fn mount_mqueue() {
    let on_dev = std::fs::read_to_string("/proc/self/mounts")
        .is_ok_and(|m| m.lines().any(|l| l.split_whitespace().nth(1) == Some("/dev/mqueue")));
    if !on_dev {
        return;
    }
    // SAFETY: mount(2) with constant NUL-terminated strings and no data.
    let r =
        unsafe { libc::mount(c"mqueue".as_ptr(), c"/dev/mqueue".as_ptr(), c"mqueue".as_ptr(), 0, std::ptr::null()) };
    if r != 0 {
        log::debug!("cannot mount the new mqueue fs on /dev/mqueue: {}", Errno::last().desc());
    }
}

/// The kinds of System V object (`sysv_create`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SysvKind {
    Shm,
    Sem,
    Msg,
}

/// shmget, semget or msgget with IPC_CREAT | IPC_EXCL and the permission bits of `mode`:
/// the id the kernel gave (`size`: the segment's bytes, or the set's semaphores).
pub fn sysv_create(kind: SysvKind, key: i32, size: u64, mode: u32) -> io::Result<i32> {
    let flags = libc::IPC_CREAT | libc::IPC_EXCL | (mode & 0o777) as i32;
    // SAFETY: the get calls take plain integers.
    let got = unsafe {
        match kind {
            SysvKind::Shm => libc::shmget(key, size as usize, flags),
            SysvKind::Sem => libc::semget(key, size as i32, flags),
            SysvKind::Msg => libc::msgget(key, flags),
        }
    };
    if got < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(got)
    }
}

/// IPC_STAT then IPC_SET of a System V object's owner and permission bits.
pub fn sysv_set_owner(kind: SysvKind, id: i32, uid: u32, gid: u32, mode: u32) -> io::Result<()> {
    let mode = (mode & 0o777) as libc::c_ushort;
    // SAFETY: IPC_STAT fills a zeroed C struct of the object's kind and IPC_SET reads it back;
    // semctl's fourth argument is the union's buffer pointer.
    let r = unsafe {
        match kind {
            SysvKind::Shm => {
                let mut ds: libc::shmid_ds = std::mem::zeroed();
                if libc::shmctl(id, libc::IPC_STAT, &mut ds) < 0 {
                    -1
                } else {
                    ds.shm_perm.uid = uid;
                    ds.shm_perm.gid = gid;
                    ds.shm_perm.mode = mode;
                    libc::shmctl(id, libc::IPC_SET, &mut ds)
                }
            }
            SysvKind::Sem => {
                let mut ds: libc::semid_ds = std::mem::zeroed();
                if libc::semctl(id, 0, libc::IPC_STAT, &mut ds as *mut libc::semid_ds) < 0 {
                    -1
                } else {
                    ds.sem_perm.uid = uid;
                    ds.sem_perm.gid = gid;
                    ds.sem_perm.mode = mode;
                    libc::semctl(id, 0, libc::IPC_SET, &mut ds as *mut libc::semid_ds)
                }
            }
            SysvKind::Msg => {
                let mut ds: libc::msqid_ds = std::mem::zeroed();
                if libc::msgctl(id, libc::IPC_STAT, &mut ds) < 0 {
                    -1
                } else {
                    ds.msg_perm.uid = uid;
                    ds.msg_perm.gid = gid;
                    ds.msg_perm.mode = mode;
                    libc::msgctl(id, libc::IPC_SET, &mut ds)
                }
            }
        }
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Makes the caller's next children enter a new time namespace whose CLOCK_MONOTONIC and
/// CLOCK_BOOTTIME are shifted by `offsets` (the text of /proc/self/timens_offsets, see
/// `restart::timens`). Needs CAP_SYS_ADMIN in the caller's user namespace (ours, after
/// `unshare_all`); the caller itself stays in its namespace, and the offsets must be written
/// before any process enters the new one, i.e. before the next fork. Errors: unshare's errno
/// (EINVAL: a kernel without time namespaces), or the write's.
pub fn unshare_time(offsets: &str) -> Result<(), String> {
    // SAFETY: unshare(2) only changes this (single-threaded) process's namespace for children.
    if unsafe { libc::unshare(libc::CLONE_NEWTIME) } != 0 {
        return Err(format!("cannot create a time namespace: {}", Errno::last().desc()));
    }
    // One write: the kernel takes every line of a write at once.
    std::fs::write("/proc/self/timens_offsets", offsets.as_bytes())
        .map_err(|e| format!("cannot set the time namespace's offsets ({}): {e}", offsets.trim().replace('\n', ", ")))
}

/// Why a private namespace cannot be had here.
#[derive(Debug)]
pub enum NsError {
    Unshare(Errno),
    /// Writing the id maps failed: the file and the reason (empty when only a probe child knows).
    Maps(String),
    Fork(Errno),
    /// The probe child could not mount /proc or ended otherwise: what it reported.
    Probe(String),
}

impl std::fmt::Display for NsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NsError::Unshare(e) => write!(f, "cannot create the user/pid/mount namespace: {}", e.desc()),
            NsError::Maps(m) if m.is_empty() => write!(f, "cannot write the user namespace's id maps"),
            NsError::Maps(m) => write!(f, "cannot write the user namespace's id maps: {m}"),
            NsError::Fork(e) => write!(f, "fork: {}", e.desc()),
            NsError::Probe(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for NsError {}

/// Mounts a fresh proc on /proc, for pid 1 of the new namespace. Allocation-free.
pub fn mount_proc() -> Result<(), Errno> {
    const PROC: &CStr = c"proc";
    const TARGET: &CStr = c"/proc";
    // SAFETY: mount(2) with NUL-terminated constant strings and no data argument.
    let r = unsafe {
        libc::mount(
            PROC.as_ptr(),
            TARGET.as_ptr(),
            PROC.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// Tries, in a throw-away child, everything a namespace needs (unshare, maps, proc mount), so
/// that `dmtcp_restart` can decide once, before creating anything, whether pids can be kept.
pub fn probe() -> Result<(), NsError> {
    let ids = Ids::current();
    // dmtcp_restart is single-threaded here (fork's contract); the child only makes system
    // calls, writes small files and exits.
    match fork().map_err(NsError::Fork)? {
        0 => {
            let code = match unshare_all(ids) {
                Err(NsError::Unshare(e)) => e as i32,
                Err(_) => 255,
                // The grandchild is pid 1 of the new namespace.
                Ok(()) => match fork() {
                    Err(e) => e as i32,
                    Ok(0) => child_exit(match mount_proc() {
                        Ok(()) => 0,
                        Err(e) => e as i32,
                    }),
                    Ok(pid) => match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None) {
                        Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => c,
                        _ => 254,
                    },
                },
            };
            child_exit(code)
        }
        pid => match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
            Ok(nix::sys::wait::WaitStatus::Exited(_, 255)) => Err(NsError::Maps(String::new())),
            Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => Err(NsError::Probe(Errno::from_raw(c).desc().to_string())),
            other => Err(NsError::Probe(format!("namespace probe ended with {other:?}"))),
        },
    }
}

/// Makes the caller (a child of X) die with SIGKILL when its parent dies, so that killing
/// `dmtcp_launch`/`dmtcp_restart`, even with SIGKILL, ends the computation it runs (as killing
/// the program itself did before the namespace). For pid 1 of a namespace that takes the whole
/// namespace with it. `lifeline` is the read end of a pipe whose write end only X holds: if it
/// already reads as hung up, X died before the death signal was armed; the caller's inherited
/// copy of the write end, `lifeline_w`, is closed first. Allocation-free.
pub fn die_with_parent(lifeline: RawFd, lifeline_w: RawFd) {
    // SAFETY: close(2) of our copy of X's end (its OwnedFd is never dropped here: the caller
    // ends with exec or _exit), prctl(PR_SET_PDEATHSIG) and poll(2) on a local pollfd.
    unsafe {
        libc::close(lifeline_w);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
        let mut p = libc::pollfd { fd: lifeline, events: libc::POLLIN, revents: 0 };
        if libc::poll(&mut p, 1, 0) == 1 && p.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            libc::_exit(128 + libc::SIGKILL);
        }
    }
}

/// `_exit` without running Rust or libc exit handlers (for forked children).
pub fn child_exit(code: i32) -> ! {
    // SAFETY: _exit(2) ends the process immediately; nothing is shared with the parent.
    unsafe { libc::_exit(code) }
}

/// Writes all of `buf` to `fd`, ignoring errors (allocation-free, for children).
pub fn write_all_raw(fd: RawFd, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: write(2) from a valid slice.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 && Errno::last() == Errno::EINTR {
            continue;
        }
        if n <= 0 {
            return;
        }
        buf = &buf[n as usize..];
    }
}

/// Records that C (and its children before they exec) send to X through the status pipe. Each
/// is 8 bytes, so one write is atomic.
pub mod record {
    /// Raw wait status of the root process.
    pub const STATUS: u32 = 1;
    /// The program could not be executed (value: errno).
    pub const EXEC_ERRNO: u32 = 2;
    /// /proc could not be mounted in the new namespace (value: errno).
    pub const PROC_ERRNO: u32 = 3;
    /// Creating the restored processes failed (the message went to stderr). Also written by
    /// a failing restorer (`mtcp_restart --fail-fd`, its `RECORD_FAILED`; value: its exit code).
    pub const FAILED: u32 = 4;
    /// Pid of C in X's namespace (so that X can kill a whole namespace).
    pub const INIT_PID: u32 = 5;
    /// A restored process died before `dmtcp_restart` said the restart was complete (value:
    /// its pid in the group's namespace); the next record, DIED_STATUS, is its wait status.
    pub const DIED: u32 = 6;
    pub const DIED_STATUS: u32 = 7;
    /// A restored process was accepted by the coordinator (value: the low 32 bits of the
    /// coordinator's timestamp of this restart, which tells this restart from an earlier one);
    /// sent with ACCEPTED_PID.
    pub const ACCEPTED: u32 = 8;

    /// Value of ACCEPTED_PID: the pid (in the group's namespace) of the accepted process.
    pub const ACCEPTED_PID: u32 = 9;

    /// DIED and DIED_STATUS in one write (16 bytes: atomic on a pipe).
    pub fn send_died(fd: super::RawFd, pid: i32, status: i32) {
        send_pair(fd, (DIED, pid), (DIED_STATUS, status));
    }

    /// Two records in one write (16 bytes: atomic on a pipe).
    pub fn send_pair(fd: super::RawFd, a: (u32, i32), b: (u32, i32)) {
        let mut buf = [0u8; 16];
        buf[..4].copy_from_slice(&a.0.to_le_bytes());
        buf[4..8].copy_from_slice(&a.1.to_le_bytes());
        buf[8..12].copy_from_slice(&b.0.to_le_bytes());
        buf[12..].copy_from_slice(&b.1.to_le_bytes());
        super::write_all_raw(fd, &buf);
    }

    pub fn send(fd: super::RawFd, tag: u32, value: i32) {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&tag.to_le_bytes());
        b[4..].copy_from_slice(&value.to_le_bytes());
        super::write_all_raw(fd, &b);
    }

    /// Decodes what was read from the pipe.
    pub fn parse(bytes: &[u8]) -> Vec<(u32, i32)> {
        bytes
            .chunks_exact(8)
            .map(|c| (u32::from_le_bytes([c[0], c[1], c[2], c[3]]), i32::from_le_bytes([c[4], c[5], c[6], c[7]])))
            .collect()
    }
}

/// A close-on-exec pipe (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)
}

/// Reads what is available from `fd` without blocking and appends it to `out`.
pub fn drain_nonblocking(fd: &OwnedFd, out: &mut Vec<u8>) {
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let fl = libc::fcntl(raw, libc::F_GETFL);
        libc::fcntl(raw, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    let mut buf = [0u8; 512];
    loop {
        // SAFETY: read(2) into a local buffer.
        let n = unsafe { libc::read(raw, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            out.extend_from_slice(&buf[..n as usize]);
        } else if n < 0 && Errno::last() == Errno::EINTR {
            continue;
        } else {
            return;
        }
    }
}

/// The set of forwarded signals plus SIGCHLD.
fn wait_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise a local sigset_t.
    unsafe {
        let mut s: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut s);
        for sig in FORWARDED {
            libc::sigaddset(&mut s, sig);
        }
        libc::sigaddset(&mut s, libc::SIGCHLD);
        s
    }
}

/// Blocks the forwarded signals and SIGCHLD (to be taken with sigwaitinfo) and returns the
/// previous mask, which children restore before they exec. Call before forking, so that no
/// signal is lost between the fork and the wait loop.
pub fn block_signals() -> libc::sigset_t {
    let set = wait_set();
    // SAFETY: sigprocmask with valid local sets.
    unsafe {
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old);
        old
    }
}

/// Restores a mask saved by `block_signals` (allocation-free, for children before exec).
pub fn restore_mask(old: &libc::sigset_t) {
    // SAFETY: sigprocmask with a mask obtained from the kernel.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, old, std::ptr::null_mut()) };
}

/// Waits for the next blocked signal, at most `limit` (None: for ever). Returns (signo,
/// si_code, si_pid), or None when `limit` passed.
fn next_signal_within(
    set: &libc::sigset_t,
    limit: Option<std::time::Duration>,
) -> Option<(libc::c_int, libc::c_int, libc::pid_t)> {
    let Some(limit) = limit else { return Some(next_signal(set)) };
    let ts = libc::timespec { tv_sec: limit.as_secs() as libc::time_t, tv_nsec: limit.subsec_nanos() as libc::c_long };
    loop {
        // SAFETY: sigtimedwait fills a local siginfo_t (see next_signal) and reads a local timespec.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let sig = libc::sigtimedwait(set, &mut info, &ts);
            if sig > 0 {
                return Some((sig, info.si_code, info.si_pid()));
            }
            if Errno::last() == Errno::EAGAIN {
                return None;
            }
        }
    }
}

/// Waits for the next blocked signal. Returns (signo, si_code, si_pid).
fn next_signal(set: &libc::sigset_t) -> (libc::c_int, libc::c_int, libc::pid_t) {
    loop {
        // SAFETY: sigwaitinfo fills a local siginfo_t; si_pid is read for every signal, which is
        // defined for kill()-sent and SIGCHLD signals and reads as 0 or garbage-free padding
        // otherwise (the kernel zeroes siginfo before filling it).
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let sig = libc::sigwaitinfo(set, &mut info);
            if sig > 0 {
                return (sig, info.si_code, info.si_pid());
            }
        }
    }
}

/// X's loop: waits until every child in `pids` has exited, passing the forwarded signals that
/// did not come from the kernel to every child still running. `on_exit` is called as each one
/// ends, with its index and raw wait status, and may return more pids to kill with SIGKILL.
pub fn wait_forwarding(pids: &[libc::pid_t], mut on_exit: impl FnMut(usize, i32) -> Vec<libc::pid_t>) {
    wait_forwarding_ticking(pids, |e| match e {
        Waited::Exited(i, status) => on_exit(i, status),
        Waited::Tick => Vec::new(),
    })
}

/// What `wait_forwarding_ticking` tells its caller.
pub enum Waited {
    /// Child `pids[i]` ended with this raw wait status.
    Exited(usize, i32),
    /// About every `TICK`, whatever happened.
    Tick,
}

/// How often `wait_forwarding_ticking` calls back when nothing happens.
pub const TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// `wait_forwarding` that also calls `on` with `Waited::Tick` about every `TICK` (so that a
/// caller can bound what it waits for); whatever `on` returns is killed with SIGKILL.
pub fn wait_forwarding_ticking(pids: &[libc::pid_t], mut on: impl FnMut(Waited) -> Vec<libc::pid_t>) {
    let mut on_exit = |i: usize, status| on(if i == usize::MAX { Waited::Tick } else { Waited::Exited(i, status) });
    let set = wait_set();
    let mut live: Vec<bool> = vec![true; pids.len()];
    while live.iter().any(|&l| l) {
        // Reap first: a child may have ended before the loop started.
        for (i, &pid) in pids.iter().enumerate() {
            if !live[i] {
                continue;
            }
            let mut status = 0;
            // SAFETY: waitpid on our own child.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid || (r < 0 && Errno::last() == Errno::ECHILD) {
                live[i] = false;
                for victim in on_exit(i, status) {
                    // SAFETY: kill(2) of a process we were told belongs to our tree.
                    unsafe { libc::kill(victim, libc::SIGKILL) };
                }
            }
        }
        if !live.iter().any(|&l| l) {
            break;
        }
        let Some((sig, code, _)) = next_signal_within(&set, Some(TICK)) else {
            for victim in on_exit(usize::MAX, 0) {
                // SAFETY: kill(2) of a process we were told belongs to our tree.
                unsafe { libc::kill(victim, libc::SIGKILL) };
            }
            continue;
        };
        if sig == libc::SIGCHLD || code == SI_KERNEL {
            continue;
        }
        for (i, &pid) in pids.iter().enumerate() {
            if live[i] {
                // SAFETY: kill(2) of our own live child.
                unsafe { libc::kill(pid, sig) };
            }
        }
    }
}

/// C's loop (pid 1 of the namespace; also used without a namespace as a child subreaper):
/// reaps every child, forwards the signals its parent sent to `root` (or, once `root` is
/// gone, to every remaining process), and returns `root`'s raw wait status when `root` has
/// exited and no child is left. Allocation-free.
pub fn init_loop(root: libc::pid_t) -> i32 {
    init_loop_watching(root, &mut [], -1, -1)
}

/// `init_loop` that, until `done` (a pipe's read end) becomes readable or hangs up, reports
/// through `wfd` (record DIED) each process of `watch` that dies: reaped here, or a zombie
/// of another process of the group (its status read from /proc). `watch` holds pids, each set
/// to 0 once reported. Allocation-free but for reading /proc.
pub fn init_loop_watching(root: libc::pid_t, watch: &mut [libc::pid_t], done: RawFd, wfd: RawFd) -> i32 {
    let set = wait_set();
    let mut watching = !watch.is_empty() && done >= 0;
    // SAFETY: getppid(2) has no preconditions. Inside a new namespace it is 0 (the parent is
    // outside), which is also the si_pid of signals sent from outside.
    let parent = unsafe { libc::getppid() };
    let mut root_status: Option<i32> = None;
    loop {
        loop {
            let mut status = 0;
            // SAFETY: waitpid(-1) reaps any of our children.
            let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if r > 0 {
                if r == root {
                    root_status = Some(status);
                }
                if watching {
                    if let Some(w) = watch.iter_mut().find(|w| **w == r) {
                        record::send_died(wfd, r, status);
                        *w = 0;
                    }
                }
                continue;
            }
            if r < 0 && Errno::last() == Errno::ECHILD {
                if let Some(s) = root_status {
                    return s;
                }
                // No child at all and no root status: the root was never ours (cannot happen).
                return 0;
            }
            break;
        }
        if watching {
            let mut p = libc::pollfd { fd: done, events: libc::POLLIN, revents: 0 };
            // SAFETY: poll(2) on a local pollfd.
            if unsafe { libc::poll(&mut p, 1, 0) } == 1 {
                watching = false;
            }
            for w in watch.iter_mut().filter(|w| **w > 0) {
                if let Some(status) = zombie_status(*w) {
                    record::send_died(wfd, *w, status);
                    *w = 0;
                }
            }
        }
        let Some((sig, code, from)) = next_signal_within(&set, watching.then_some(TICK)) else { continue };
        if sig == libc::SIGCHLD || code == SI_KERNEL || (from != parent && from != 0) {
            continue;
        }
        // SAFETY: kill(2); -1 means every process we may signal (in a namespace: all of it).
        unsafe { libc::kill(if root_status.is_none() { root } else { -1 }, sig) };
    }
}

/// The wait status of `pid` if it is a zombie (the last field of /proc/<pid>/stat, exit_code),
/// or -1 if it is gone (reaped by its parent: a process of the group that already resumed).
fn zombie_status(pid: libc::pid_t) -> Option<i32> {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return Some(-1) };
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace();
    if fields.next()? != "Z" {
        return None;
    }
    fields.last()?.parse().ok()
}

/// Ends X the way the program ended: the same exit code, or the same signal.
pub fn exit_like(status: i32) -> ! {
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        // SAFETY: resetting a disposition, unblocking and raising a signal in our own process;
        // RLIMIT_CORE 0 keeps X from writing a second core file after the program's.
        unsafe {
            let lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            libc::setrlimit(libc::RLIMIT_CORE, &lim);
            libc::signal(sig, libc::SIG_DFL);
            let mut s: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut s);
            libc::sigaddset(&mut s, sig);
            libc::sigprocmask(libc::SIG_UNBLOCK, &s, std::ptr::null_mut());
            libc::kill(libc::getpid(), sig);
        }
        std::process::exit(128 + sig);
    }
    if libc::WIFEXITED(status) {
        std::process::exit(libc::WEXITSTATUS(status));
    }
    std::process::exit(1)
}

/// `struct clone_args` of clone3(2), up to `set_tid_size` (CLONE_ARGS_SIZE_VER1).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
}

/// Forks with the given pid in the caller's pid namespace (clone3 with `set_tid`), like
/// fork(2): returns 0 in the child and the child's pid in the parent. Needs
/// CAP_CHECKPOINT_RESTORE (or CAP_SYS_ADMIN) in the user namespace that owns the pid namespace.
/// Only for single-threaded callers that exec or _exit soon (glibc's cached thread id in the
/// child is the parent's until then).
pub fn fork_with_pid(pid: libc::pid_t) -> Result<libc::pid_t, Errno> {
    let tids = [pid];
    let args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        set_tid: tids.as_ptr() as u64,
        set_tid_size: 1,
        ..Default::default()
    };
    // SAFETY: clone3 without CLONE_VM or a new stack behaves like fork: the child continues on
    // a copy of this stack; `args` and `tids` outlive the call.
    let r = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r as libc::pid_t)
    }
}

/// fork(2), for single-threaded callers only (launch, restart, the coordinator's daemonize,
/// all before they start a thread): the child is a copy of the one thread, so no lock or
/// allocator state can be held there by a thread that does not exist. Returns 0 in the child
/// and the child's pid in the parent.
pub fn fork() -> Result<libc::pid_t, Errno> {
    // SAFETY: the callers are single-threaded (contract above), which is what makes the
    // child's use of locks and the allocator sound.
    let r = unsafe { libc::fork() };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}

/// A program ready for execve in a forked child: path, argv and envp as C arrays, all
/// allocated before the fork so that the child only makes the system call.
pub struct Exec {
    path: std::ffi::CString,
    _strings: Vec<std::ffi::CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

impl Exec {
    /// Err names what held a NUL byte ("program path" or "argument").
    pub fn new(
        path: &std::path::Path,
        argv: &[&std::ffi::OsStr],
        env: Vec<std::ffi::CString>,
    ) -> Result<Exec, &'static str> {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let path = CString::new(path.as_os_str().as_bytes()).map_err(|_| "program path")?;
        let args: Vec<CString> =
            argv.iter().map(|a| CString::new(a.as_bytes())).collect::<Result<_, _>>().map_err(|_| "argument")?;
        let nul = std::iter::once(std::ptr::null());
        let argv_p = args.iter().map(|c| c.as_ptr()).chain(nul.clone()).collect();
        let envp_p = env.iter().map(|c| c.as_ptr()).chain(nul).collect();
        let mut strings = args;
        strings.extend(env);
        Ok(Exec { path, _strings: strings, argv: argv_p, envp: envp_p })
    }

    /// execve; returns only when it failed, with its errno. Allocation-free.
    pub fn exec(&self) -> Errno {
        // SAFETY: a NUL-terminated path and NULL-terminated arrays of pointers into `_strings`,
        // which `self` owns and keeps alive for the call.
        unsafe { libc::execve(self.path.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr()) };
        Errno::last()
    }
}

/// Kernel features `dmtcp doctor` probes that need a raw system call (here, with the module's
/// other unsafe code). Each is a real attempt, never a version guess.
pub mod probes {
    use nix::errno::Errno;

    /// PR_SET_MM_MAP as the restorer makes it (`mtcp_restart`'s `set_mm`), with the caller's
    /// own current values, so that it changes nothing. Call it in a throw-away child inside
    /// our user namespace, as the restorer runs.
    pub fn mm_map() -> Result<(), Errno> {
        const PR_SET_MM: libc::c_int = 35;
        const PR_SET_MM_MAP: libc::c_ulong = 14;
        let stat = std::fs::read_to_string("/proc/self/stat").map_err(|_| Errno::EIO)?;
        // Fields after the command name, which may hold spaces: field 3 (state) is first.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or(Errno::EIO)?;
        let f: Vec<u64> = rest.split_whitespace().map(|w| w.parse().unwrap_or(0)).collect();
        let field = |n: usize| f.get(n - 3).copied().unwrap_or(0);
        // SAFETY: sbrk(0) only reads the current program break.
        let brk = unsafe { libc::sbrk(0) } as u64;
        let map: [u64; 13] = [
            field(26), // start_code
            field(27), // end_code
            field(45), // start_data
            field(46), // end_data
            field(47), // start_brk
            brk.max(field(47)),
            field(28),                 // start_stack
            field(48),                 // arg_start
            field(49),                 // arg_end
            field(50),                 // env_start
            field(51),                 // env_end
            0,                         // auxv: unchanged
            u64::from(u32::MAX) << 32, // auxv_size 0, exe_fd -1
        ];
        // SAFETY: prctl with a pointer to our local struct prctl_mm_map and its size.
        let r = unsafe { libc::prctl(PR_SET_MM, PR_SET_MM_MAP, map.as_ptr(), std::mem::size_of_val(&map), 0) };
        if r == 0 {
            Ok(())
        } else {
            Err(Errno::last())
        }
    }

    /// userfaultfd(2) as an unprivileged process may make it (UFFD_USER_MODE_ONLY), then
    /// without that flag; the descriptor is closed at once. Ok(true): user-mode only.
    pub fn userfaultfd() -> Result<bool, Errno> {
        const UFFD_USER_MODE_ONLY: libc::c_long = 1;
        let attempt = |flags: libc::c_long| {
            // SAFETY: userfaultfd(2) takes only flags; the new fd is ours and closed below.
            let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, flags) };
            if fd >= 0 {
                // SAFETY: closing the descriptor we just got.
                unsafe { libc::close(fd as libc::c_int) };
                Ok(())
            } else {
                Err(Errno::last())
            }
        };
        match attempt(libc::O_CLOEXEC as libc::c_long) {
            Ok(()) => Ok(false),
            Err(e) => attempt(libc::O_CLOEXEC as libc::c_long | UFFD_USER_MODE_ONLY).map(|()| true).map_err(|_| e),
        }
    }

    /// What incremental checkpoints need that is missing (`incremental`): the step that failed
    /// and its errno (None: the step ran but the kernel did not report the written page).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct IncrementalGap {
        pub what: IncrementalStep,
        pub errno: Option<Errno>,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum IncrementalStep {
        /// userfaultfd(UFFD_USER_MODE_ONLY).
        Userfaultfd,
        /// UFFDIO_API with UFFD_FEATURE_WP_ASYNC (and WP_UNPOPULATED, as libdmtcp asks).
        WpAsync,
        /// UFFDIO_REGISTER in write-protect mode and UFFDIO_WRITEPROTECT on an anonymous page.
        WriteProtect,
        /// The PAGEMAP_SCAN ioctl of /proc/self/pagemap listing the page written since.
        PagemapScan,
    }

    /// What `payloads/libdmtcp/src/dirty.rs` does, on one page of our own, as an unprivileged
    /// process: a user-mode-only userfaultfd with asynchronous write-protection, the page
    /// registered and protected, written, and found written by PAGEMAP_SCAN. Everything made is
    /// undone (descriptors closed, page unmapped). The constants are the kernel's
    /// `include/uapi/linux/{userfaultfd,fs}.h` (as `payloads/libdmtcp/src/sys/uffd.rs`).
    pub fn incremental() -> Result<(), IncrementalGap> {
        const UFFD_USER_MODE_ONLY: libc::c_long = 1;
        const UFFD_API: u64 = 0xAA;
        const FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
        const FEATURE_WP_ASYNC: u64 = 1 << 15;
        const UFFDIO_API: libc::c_ulong = 0xC018_AA3F;
        const UFFDIO_REGISTER: libc::c_ulong = 0xC020_AA00;
        const UFFDIO_WRITEPROTECT: libc::c_ulong = 0xC018_AA06;
        const PAGEMAP_SCAN: libc::c_ulong = 0xC060_6610;
        const PAGE_IS_WRITTEN: u64 = 1 << 1;
        const PM_SCAN_WP_MATCHING: u64 = 1;
        const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;
        const PAGE: usize = 4096;
        let gap = |what, errno| IncrementalGap { what, errno };
        // SAFETY: userfaultfd(2) takes only flags; the new fd is ours and closed below.
        let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC as libc::c_long | UFFD_USER_MODE_ONLY) };
        if fd < 0 {
            return Err(gap(IncrementalStep::Userfaultfd, Some(Errno::last())));
        }
        let fd = fd as libc::c_int;
        let ioctl = |fd: libc::c_int, req: libc::c_ulong, arg: &mut [u64]| -> Result<libc::c_long, Errno> {
            // SAFETY: `arg` is the structure of u64 fields the request reads and writes, of the
            // size the request number encodes (checked by each caller's array length).
            let r = unsafe { libc::ioctl(fd, req as _, arg.as_mut_ptr()) };
            if r < 0 {
                Err(Errno::last())
            } else {
                Ok(r as libc::c_long)
            }
        };
        // SAFETY: a fresh private anonymous page of our own, unmapped below.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        let result = (|| {
            let mut api = [UFFD_API, FEATURE_WP_ASYNC | FEATURE_WP_UNPOPULATED, 0];
            ioctl(fd, UFFDIO_API, &mut api).map_err(|e| gap(IncrementalStep::WpAsync, Some(e)))?;
            if page == libc::MAP_FAILED {
                return Err(gap(IncrementalStep::WriteProtect, Some(Errno::last())));
            }
            let addr = page as u64;
            // SAFETY: `page` is our mapping, PAGE bytes, readable and writable.
            unsafe { std::ptr::write_volatile(page.cast::<u8>(), 1) };
            let wp = |e| gap(IncrementalStep::WriteProtect, Some(e));
            ioctl(fd, UFFDIO_REGISTER, &mut [addr, PAGE as u64, 1 << 1, 0]).map_err(wp)?;
            ioctl(fd, UFFDIO_WRITEPROTECT, &mut [addr, PAGE as u64, 1]).map_err(wp)?;
            // The write fault is resolved by the kernel itself (asynchronous mode).
            // SAFETY: as above; the page is ours, only write-protected for the userfaultfd.
            unsafe { std::ptr::write_volatile(page.cast::<u8>(), 2) };
            let scan = |e| gap(IncrementalStep::PagemapScan, Some(e));
            let pagemap = std::fs::File::open("/proc/self/pagemap")
                .map_err(|e| scan(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))?;
            let mut region = [0u64; 3];
            let mut arg = [
                12 * 8,
                PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
                addr,
                addr + PAGE as u64,
                0,
                region.as_mut_ptr() as u64,
                1,
                0,
                0,
                PAGE_IS_WRITTEN,
                0,
                PAGE_IS_WRITTEN,
            ];
            use std::os::fd::AsRawFd;
            let n = ioctl(pagemap.as_raw_fd(), PAGEMAP_SCAN, &mut arg).map_err(scan)?;
            if n == 1 && region[0] == addr && region[2] & PAGE_IS_WRITTEN != 0 {
                Ok(())
            } else {
                Err(gap(IncrementalStep::PagemapScan, None))
            }
        })();
        if page != libc::MAP_FAILED {
            // SAFETY: unmapping the page mapped above, which nothing refers to any more.
            unsafe { libc::munmap(page, PAGE) };
        }
        // SAFETY: closing the userfaultfd we opened.
        unsafe { libc::close(fd) };
        result
    }
}
