//! Carrying out a restart plan: the processes X (`dmtcp_restart`), P (one per group, makes the
//! namespaces), C (the group's init, pid 1 there) and the restored processes, each created with
//! its old pid (clone3 `set_tid`) by its old parent, which then become their restorers.
//! Every decision (who creates whom, in which order, sessions and groups, which fd gets what)
//! is the plan's (`plan.rs`); this file only does it.
use super::plan::{FdSource, GroupStep, Plan};
use super::watch::{self, Verdict};
use super::{events, files, ipc, pipes, ptys, shm, sockets, timens, Never, Target, IMAGE_FD, PROGRAM};
use crate::common::cli::EXIT_FAILURE;
use crate::common::client;
use crate::common::image_reader;
use crate::common::ns;
use crate::common::setup::{self, Fail};
use dmtcp_proto::env as ev;
use dmtcp_proto::{Kind, Msg, WorkerState};
use std::ffi::CString;
use std::io::{Seek, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering::Relaxed};
use std::time::Duration;

/// What the processes of the restart share, fixed before the first fork.
struct Ctx<'a> {
    plan: &'a Plan,
    targets: &'a [Target],
    host: &'a str,
    port: u16,
    use_ns: bool,
    lifeline: RawFd,
    lifeline_w: RawFd,
    /// X writes a byte into `done_w` once the restart is complete; each group's init watches
    /// its processes until then (`ns::init_loop_watching`).
    done: RawFd,
    done_w: RawFd,
    /// `-i/--interval` (seconds), or INTERVAL_UNCHANGED.
    interval: u32,
    /// The computation's sockets (`Plan::sockets`), made before the groups.
    sockets: &'a sockets::Made,
    /// Shared memory that several groups map, made before the groups (`shm::across_groups`).
    shm_across: &'a shm::Across,
    /// The time namespace's offsets (`timens`), when the images record their clocks.
    time: Option<String>,
}

/// The objects the group's init makes before it creates any process, one field per kind, and
/// the computation's sockets, which `dmtcp_restart` made before any group (inherited).
struct Objects<'a> {
    pipes: pipes::Made,
    files: files::Made,
    shm: shm::Made,
    ptys: ptys::Made,
    eventfds: events::Made,
    sockets: &'a sockets::Made,
}

impl<'a> Objects<'a> {
    fn make(ctx: &Ctx<'a>, g: usize) -> Result<Objects<'a>, String> {
        // No fds: the System V objects are in the group's IPC namespace, with their ids.
        ipc::make(&ctx.plan.groups[g].ipc)?;
        Ok(Objects {
            pipes: pipes::make(&ctx.plan.groups[g].pipes)?,
            files: files::make(&ctx.plan.groups[g].files)?,
            shm: shm::make(&ctx.plan.groups[g].shm, ctx.shm_across)?,
            ptys: ptys::make(&ctx.plan.groups[g].ptys)?,
            eventfds: events::make(&ctx.plan.groups[g].eventfds)?,
            sockets: ctx.sockets,
        })
    }

    /// The fd (of the init's, inherited) that a placement copies.
    fn fd(&self, source: FdSource) -> RawFd {
        match source {
            FdSource::Pipe { pipe, end } => self.pipes.fd(pipe, end),
            FdSource::Socket { sock, end } => self.sockets.fd(sock, end),
            FdSource::Stdio(fd) => fd,
            FdSource::File(_) | FdSource::Placeholder => self.files.fd(source),
            FdSource::Shm(k) => self.shm.fd(k),
            FdSource::Pty { pty, side } => self.ptys.fd(pty, side),
            FdSource::Eventfd(i) => self.eventfds.fd(i),
        }
    }
}

/// Carries out `plan` (`targets`: one per image, in the plan's order) and ends like the
/// computation's root process: its exit code or its signal.
pub(super) fn carry_out(plan: &Plan, targets: &[Target], host: &str, port: u16, interval: u32) -> Result<Never, Fail> {
    let use_ns = if ns::disabled_by_env() {
        log::warn!("{}=0: restarting without a private pid namespace; pids will change", ev::PIDNS);
        false
    } else {
        match ns::probe() {
            Ok(()) => true,
            Err(e) => {
                log::warn!("no private pid namespace here ({e}): restarted processes get new pids");
                false
            }
        }
    };
    // X keeps `lifeline_w` until it exits; P and C watch the other end (ns::die_with_parent).
    let (lifeline_r, lifeline_w) = ns::pipe().map_err(|e| setup::fail(format!("pipe: {e}")))?;
    let (done_r, done_w) = ns::pipe().map_err(|e| setup::fail(format!("pipe: {e}")))?;
    // Made here, before any group: every group inherits them, and each process that holds one
    // gets it at its fd. Each holder of these copies (we, each P, each C) closes its own once
    // its children have theirs, so that only the restored processes hold them.
    let made = sockets::make(&plan.sockets).map_err(setup::fail)?;
    let shm_groups: Vec<&[shm::ShmPlan]> = plan.groups.iter().map(|g| g.shm.as_slice()).collect();
    let shm_across = shm::across_groups(&shm_groups).map_err(setup::fail)?;
    let time = match timens::plan(targets.iter().map(|t| t.img.header().clocks)) {
        Ok(t) if use_ns => Some(t),
        Ok(_) => {
            log::warn!("without a private namespace CLOCK_MONOTONIC and CLOCK_BOOTTIME jump by the downtime");
            None
        }
        Err(why) => {
            log::warn!("{why}: CLOCK_MONOTONIC and CLOCK_BOOTTIME jump by the downtime");
            None
        }
    };
    let ctx = Ctx {
        plan,
        targets,
        host,
        port,
        use_ns,
        lifeline: lifeline_r.as_raw_fd(),
        lifeline_w: lifeline_w.as_raw_fd(),
        done: done_r.as_raw_fd(),
        done_w: done_w.as_raw_fd(),
        interval,
        sockets: &made,
        shm_across: &shm_across,
        time,
    };

    let old_mask = ns::block_signals();
    let ids = ns::Ids::current();
    let mut pids = Vec::new();
    let mut pipes = Vec::new();
    for g in 0..plan.groups.len() {
        let (r, w) = ns::pipe().map_err(|e| setup::fail(format!("pipe: {e}")))?;
        // SAFETY: fork in a single-threaded process; the child runs `group_main`, which ends
        // with _exit.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(setup::fail(format!("fork: {}", nix::errno::Errno::last().desc())));
        }
        if pid == 0 {
            drop(r);
            group_main(&ctx, g, ids, &old_mask, w);
        }
        drop(w);
        pids.push(pid);
        pipes.push(r);
    }
    drop(made);

    // Wait, watching the restart until it completes, and end like the root process.
    let mut watch = watch::Watch::new(plan, targets, host, port, use_ns).map_err(setup::fail)?;
    let groups = plan.groups.len();
    let mut records: Vec<Vec<u8>> = vec![Vec::new(); groups];
    let mut exits: Vec<Option<i32>> = vec![None; groups];
    let mut failed = false;
    let mut done_w = Some(done_w);
    let victims = |exits: &[Option<i32>], records: &[Vec<u8>]| {
        let mut v = Vec::new();
        for (j, rec) in records.iter().enumerate() {
            if exits[j].is_none() {
                v.extend(ns::record::parse(rec).iter().filter(|&&(t, _)| t == ns::record::INIT_PID).map(|&(_, p)| p));
                v.push(pids[j]);
            }
        }
        v
    };
    let fail = |msg: &str| {
        if !msg.is_empty() {
            eprintln!("{PROGRAM}: restart failed: {msg}; the other processes of the restart are killed");
        }
    };
    ns::wait_forwarding_ticking(&pids, |ev| {
        for (j, p) in pipes.iter().enumerate() {
            ns::drain_nonblocking(p, &mut records[j]);
        }
        for (j, rec) in records.iter().enumerate() {
            watch.records(j, &ns::record::parse(rec));
        }
        if failed {
            return Vec::new();
        }
        let mut verdict = Verdict::Going;
        if let ns::Waited::Exited(i, status) = ev {
            exits[i] = Some(status);
            let recs = ns::record::parse(&records[i]);
            if recs.iter().any(|&(t, _)| t == ns::record::FAILED) {
                // Said by the process that failed.
                verdict = Verdict::Failed(String::new());
            } else if recs.iter().all(|&(t, _)| t != ns::record::STATUS) {
                // The group's init was killed: its processes are gone with it.
                verdict = Verdict::Failed(format!("the init of namespace group {i} {}", watch::how(status)));
            } else if !watch.complete {
                watch.group_ended(i, status);
            }
        }
        if matches!(verdict, Verdict::Going) {
            verdict = watch.tick();
        }
        match verdict {
            Verdict::Going => Vec::new(),
            Verdict::Complete => {
                log::debug!("the restart is complete");
                if let Some(w) = done_w.take() {
                    ns::write_all_raw(w.as_raw_fd(), b"1");
                }
                Vec::new()
            }
            Verdict::Failed(msg) => {
                failed = true;
                fail(&msg);
                victims(&exits, &records)
            }
        }
    });
    for (j, p) in pipes.iter().enumerate() {
        ns::drain_nonblocking(p, &mut records[j]);
        watch.records(j, &ns::record::parse(&records[j]));
    }
    if !failed && !watch.complete {
        if let Verdict::Failed(msg) = watch.settle() {
            failed = true;
            fail(&msg);
        }
    }
    if failed {
        std::process::exit(EXIT_FAILURE);
    }
    let root_group = plan.root_group;
    let status = ns::record::parse(&records[root_group])
        .iter()
        .find(|&&(t, _)| t == ns::record::STATUS)
        .map(|&(_, v)| v)
        .or(exits[root_group])
        .unwrap_or(0);
    ns::exit_like(status)
}

/// P: makes the group's namespace and forks C, then waits for it (forwarding signals).
/// Without a namespace P itself plays C's part as a child subreaper.
fn group_main(ctx: &Ctx<'_>, g: usize, ids: ns::Ids, old_mask: &libc::sigset_t, w: OwnedFd) -> ! {
    let wfd = w.as_raw_fd();
    ns::die_with_parent(ctx.lifeline, ctx.lifeline_w);
    // SAFETY: close(2) of our inherited copy of X's end (its OwnedFd is X's, never dropped here).
    unsafe { libc::close(ctx.done_w) };
    if !ctx.use_ns {
        // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) on ourselves: orphans of the group come to us.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        init_main(ctx, g, old_mask, wfd);
    }
    if let Err(e) = ns::unshare_all(ids) {
        eprintln!("{PROGRAM}: error: {e}");
        ns::record::send(wfd, ns::record::FAILED, 0);
        ns::child_exit(EXIT_FAILURE);
    }
    // The group's System V objects get an IPC namespace of their own, where their ids are free.
    if ctx.plan.groups[g].ipc_ns {
        if let Err(e) = ns::unshare_ipc() {
            eprintln!("{PROGRAM}: error: {e}");
            ns::record::send(wfd, ns::record::FAILED, 0);
            ns::child_exit(EXIT_FAILURE);
        }
    }
    // Before C exists: the first process to enter the time namespace freezes its offsets.
    if let Some(offsets) = &ctx.time {
        if let Err(e) = ns::unshare_time(offsets) {
            eprintln!("{PROGRAM}: warning: {e}; CLOCK_MONOTONIC and CLOCK_BOOTTIME jump by the downtime");
        }
    }
    // SAFETY: fork in a single-threaded process; C runs `init_main`, which ends with _exit.
    let c = unsafe { libc::fork() };
    if c == 0 {
        ns::die_with_parent(ctx.lifeline, ctx.lifeline_w);
        if let Err(e) = ns::mount_proc() {
            eprintln!("{PROGRAM}: error: cannot mount /proc in the new pid namespace: {}", e.desc());
            ns::record::send(wfd, ns::record::FAILED, 0);
            ns::child_exit(EXIT_FAILURE);
        }
        if ctx.plan.groups[g].ipc_ns {
            // /dev/mqueue shows the new namespace's queues (our mount namespace is private).
            ns::mount_mqueue();
        }
        init_main(ctx, g, old_mask, wfd);
    }
    if c < 0 {
        eprintln!("{PROGRAM}: error: fork: {}", nix::errno::Errno::last().desc());
        ns::record::send(wfd, ns::record::FAILED, 0);
        ns::child_exit(EXIT_FAILURE);
    }
    ctx.sockets.close_copies();
    ns::record::send(wfd, ns::record::INIT_PID, c);
    drop(w);
    let mut st = 0;
    ns::wait_forwarding(&[c], |_, s| {
        st = s;
        Vec::new()
    });
    ns::child_exit(if libc::WIFEXITED(st) { libc::WEXITSTATUS(st) } else { 128 + libc::WTERMSIG(st) })
}

/// The pid of the group's init (C, or P without a namespace) as this process sees it, which a
/// failing restorer kills when it cannot kill the whole namespace (`--fail-kill`): P's exit
/// then tells X of the failure. Set by `init_main`; its children inherit it.
static GROUP_INIT: AtomicI32 = AtomicI32::new(0);

/// C: makes the group's objects, creates the processes the plan gives it, then reaps and
/// forwards until the root is gone.
fn init_main(ctx: &Ctx<'_>, g: usize, old_mask: &libc::sigset_t, wfd: RawFd) -> ! {
    GROUP_INIT.store(std::process::id() as i32, Relaxed);
    let group = &ctx.plan.groups[g];
    let mut root_pid = 0;
    let objects = match Objects::make(ctx, g) {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("{PROGRAM}: {msg}");
            ns::record::send(wfd, ns::record::FAILED, 0);
            ns::child_exit(EXIT_FAILURE);
        }
    };
    let mut tops = Vec::new();
    for &i in &group.tops {
        match spawn(ctx, &objects, i, old_mask, wfd) {
            Ok(pid) => {
                tops.push(pid);
                if i == group.root {
                    root_pid = pid;
                }
            }
            Err(msg) => {
                eprintln!("{PROGRAM}: {msg}");
                ns::record::send(wfd, ns::record::FAILED, 0);
                // SAFETY: kill(2): in our namespace -1 is the processes we created; without a
                // namespace, they are killed by pid below instead.
                unsafe {
                    if ctx.use_ns {
                        libc::kill(-1, libc::SIGKILL);
                    }
                }
                ns::child_exit(EXIT_FAILURE);
            }
        }
    }
    // Only the restored processes hold the objects now (a reader must see the end of its input).
    drop(objects);
    ctx.sockets.close_copies();
    if root_pid == 0 {
        // The root was created by another process of the group: its pid is the image's.
        root_pid = ctx.plan.procs[group.root].pid;
        if !ctx.use_ns {
            eprintln!("{PROGRAM}: warning: without a pid namespace the root process is not ours to wait for");
        }
    }
    // Until X says the restart is complete, each death of a process of the group is told to X.
    let mut watch: Vec<i32> =
        if ctx.use_ns { ctx.plan.creation_order(g).iter().map(|&i| ctx.plan.procs[i].pid).collect() } else { tops };
    let status = ns::init_loop_watching(root_pid, &mut watch, ctx.done, wfd);
    ns::record::send(wfd, ns::record::STATUS, status);
    ns::child_exit(0)
}

/// Creates the process of image `i` (with its old pid in a namespace), which creates its own
/// children and then becomes the restorer. Returns its pid once it has exec'd the restorer, or
/// what went wrong before that.
fn spawn(ctx: &Ctx<'_>, objects: &Objects<'_>, i: usize, old_mask: &libc::sigset_t, wfd: RawFd) -> Result<i32, String> {
    let t = &ctx.targets[i];
    let pid_wanted = ctx.plan.procs[i].pid;
    let name = t.img.path.display().to_string();
    let (r, w) = ns::pipe().map_err(|e| format!("{name}: pipe: {e}"))?;
    let pid = if ctx.use_ns {
        ns::fork_with_pid(pid_wanted)
            .map_err(|e| format!("{name}: cannot create process {pid_wanted}: {}", e.desc()))?
    } else {
        // SAFETY: fork in a single-threaded process; the child ends in exec or _exit.
        match unsafe { libc::fork() } {
            -1 => return Err(format!("{name}: fork: {}", nix::errno::Errno::last().desc())),
            p => p,
        }
    };
    if pid == 0 {
        drop(r);
        let mut confirm = w.as_raw_fd();
        let err = become_restored(ctx, objects, i, old_mask, wfd, &mut confirm);
        ns::write_all_raw(confirm, err.as_bytes());
        ns::child_exit(EXIT_FAILURE);
    }
    drop(w);
    let mut out = Vec::new();
    let mut f = std::fs::File::from(r);
    let _ = std::io::Read::read_to_end(&mut f, &mut out);
    if out.is_empty() {
        Ok(pid)
    } else {
        let mut st = 0;
        // SAFETY: reap the child that just failed.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        Err(String::from_utf8_lossy(&out).into_owned())
    }
}

/// In the new process: session and group, children (in the plan's order), then the
/// coordinator, the fds, the capability and the restorer. Returns only on failure, with the
/// message for the creator.
fn become_restored(
    ctx: &Ctx<'_>,
    objects: &Objects<'_>,
    i: usize,
    old_mask: &libc::sigset_t,
    wfd: RawFd,
    confirm: &mut RawFd,
) -> String {
    let t = &ctx.targets[i];
    let name = t.img.path.display().to_string();
    let me = ctx.plan.procs[i].pid;
    if ctx.use_ns && nix::unistd::getpid().as_raw() != me {
        return format!("{name}: got pid {} instead of {me}", nix::unistd::getpid());
    }
    if ctx.use_ns {
        if let Err(e) = join_group_and_session(ctx, i) {
            return format!("{name}: {e}");
        }
    }
    for &c in &ctx.plan.procs[i].children {
        if let Err(e) = spawn(ctx, objects, c, old_mask, wfd) {
            return e;
        }
    }
    let (bases, err_fd, fail_fd) = match prepare(ctx, objects, i, wfd, confirm) {
        Ok(b) => b,
        Err(e) => return format!("{name}: {e}"),
    };
    ns::restore_mask(old_mask);
    let argv0 = c"mtcp_restart";
    let fd_arg = CString::new(IMAGE_FD.to_string()).expect("digits");
    let regions: Vec<CString> = ctx.plan.procs[i]
        .regions
        .iter()
        .map(|r| CString::new(format!("{}:{}:{}", r.fd, r.dev, r.inode)).expect("digits"))
        .collect();
    // The restorer's messages go to our stderr (the program's fd 2 may be a pipe to a process
    // that is being restored too, as a rank's is to mpirun), and a failure is told through
    // the group's record pipe and takes the restart's processes down, so that a restart that
    // cannot be done ends with the restorer's message and a non-zero exit, never waits.
    let err_arg = CString::new(err_fd.to_string()).expect("digits");
    let fail_arg = CString::new(fail_fd.to_string()).expect("digits");
    let kill_arg =
        CString::new(if ctx.use_ns { "-1".to_string() } else { GROUP_INIT.load(Relaxed).to_string() }).expect("digits");
    let mut argv = vec![
        argv0.as_ptr(),
        c"--fd".as_ptr(),
        fd_arg.as_ptr(),
        c"--stderr-fd".as_ptr(),
        err_arg.as_ptr(),
        c"--fail-fd".as_ptr(),
        fail_arg.as_ptr(),
        c"--fail-kill".as_ptr(),
        kill_arg.as_ptr(),
    ];
    for r in &regions {
        argv.extend([c"--region".as_ptr(), r.as_ptr()]);
    }
    // An incremental chain: its older images, oldest first.
    let bases: Vec<CString> = bases.iter().map(|fd| CString::new(fd.to_string()).expect("digits")).collect();
    for b in &bases {
        argv.extend([c"--base".as_ptr(), b.as_ptr()]);
    }
    argv.push(std::ptr::null());
    // SAFETY: execv with NUL-terminated strings and a NULL-terminated array that outlive it;
    // the environment is ours (the restorer restores the program's own).
    unsafe { libc::execv(t.restorer.as_ptr(), argv.as_ptr()) };
    format!("{name}: cannot run the restorer {}: {}", t.restorer.to_string_lossy(), std::io::Error::last_os_error())
}

/// Gives the new process its old session and process group, as the plan says: a session or
/// group it led is made anew; a group led by another process of the namespace is joined (its
/// leader was created first: an ancestor, or an earlier sibling).
fn join_group_and_session(ctx: &Ctx<'_>, i: usize) -> Result<(), String> {
    let p = &ctx.plan.procs[i];
    // SAFETY: setsid/setpgid/getpgid on this process only.
    unsafe {
        if p.ids.new_session && libc::setsid() < 0 {
            return Err(format!("cannot lead a session again (setsid: {})", std::io::Error::last_os_error()));
        }
        match p.ids.group {
            GroupStep::Keep => {}
            GroupStep::Lead => {
                if libc::setpgid(0, 0) < 0 {
                    return Err(format!(
                        "cannot lead process group {} again (setpgid: {})",
                        p.pid,
                        std::io::Error::last_os_error()
                    ));
                }
            }
            GroupStep::Join(pgid) => {
                if libc::getpgid(0) != pgid && libc::setpgid(0, pgid) < 0 {
                    return Err(format!(
                        "cannot join process group {pgid} again (setpgid: {})",
                        std::io::Error::last_os_error()
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Joins the coordinator (fd 821), writes the restart facts (fd 820), puts the image on
/// IMAGE_FD, raises CAP_CHECKPOINT_RESTORE for the restorer, places the planned fds and closes
/// every other fd but `confirm` (close-on-exec: it tells our creator that the exec happened,
/// or why not).
fn prepare(
    ctx: &Ctx<'_>,
    objects: &Objects<'_>,
    i: usize,
    wfd: RawFd,
    confirm: &mut RawFd,
) -> Result<(Vec<RawFd>, RawFd, RawFd), String> {
    let t = &ctx.targets[i];
    let mut s = client::connect(ctx.host, ctx.port, Duration::from_secs(10))
        .map_err(|e| format!("cannot reach the coordinator at {}:{}: {e}", ctx.host, ctx.port))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut m = Msg::new(Kind::RestartWorker);
    m.state = WorkerState::Restarting as u32;
    m.pid = nix::unistd::getpid().as_raw();
    m.vpid = t.img.vpid();
    m.comp_id = t.img.comp_id();
    m.generation = t.img.generation();
    // The processes of this restart are the images given, not the count an image was told at
    // checkpoint: a process that joined or left during the checkpoint makes that count differ
    // from the images written, and the restart then waited forever for one that has no image.
    m.num_peers = ctx.targets.len() as u32;
    m.interval = ctx.interval;
    client::send(&mut s, &m, &t.hello).map_err(|e| format!("coordinator: {e}"))?;
    let (reply, extra) = client::recv(&mut s).map_err(|e| format!("no answer from the coordinator: {e}"))?;
    let why = String::from_utf8_lossy(&extra).trim_end_matches('\0').to_string();
    match reply.kind {
        Kind::Accept => {}
        Kind::RejectNotRestarting => {
            return Err(format!("the coordinator at {}:{} refuses the restart: {why}", ctx.host, ctx.port))
        }
        Kind::RejectWrongComp => {
            return Err(format!("the coordinator at {}:{} serves another computation: {why}", ctx.host, ctx.port))
        }
        Kind::RejectNotRunning => return Err(format!("the coordinator at {}:{} refuses: {why}", ctx.host, ctx.port)),
        k => return Err(format!("unexpected answer {k:?} from the coordinator")),
    }
    // X tells this restart at the coordinator from an earlier one by its timestamp.
    ns::record::send_pair(
        wfd,
        (ns::record::ACCEPTED, reply.coord_timestamp as u32 as i32),
        (ns::record::ACCEPTED_PID, nix::unistd::getpid().as_raw()),
    );
    let _ = s.set_read_timeout(None);
    let info = image_reader::memfd("dmtcp-restart-info").map_err(|e| format!("memfd: {e}"))?;
    let mut f = std::fs::File::from(info);
    f.write_all(&t.info).and_then(|_| f.rewind()).map_err(|e| format!("restart info: {e}"))?;
    let image_fd = t.img.stream.as_raw_fd();
    // SAFETY: lseek on the image fd we own (the stream is read from its start).
    unsafe { libc::lseek(image_fd, 0, libc::SEEK_SET) };
    for (from, to) in
        [(s.as_raw_fd(), dmtcp_proto::COORD_FD), (f.as_raw_fd(), ev::RESTART_INFO_FD), (image_fd, IMAGE_FD)]
    {
        // SAFETY: dup2 between fds we own; the targets are free or ours, and dup2 clears CLOEXEC.
        if unsafe { libc::dup2(from, to) } < 0 {
            return Err(format!("dup2 to fd {to}: {}", std::io::Error::last_os_error()));
        }
    }
    drop(s);
    drop(f);
    raise_checkpoint_restore()?;
    // Nothing owned may be dropped after this (it would close a closed fd): the caller execs
    // or _exits.
    let p = &ctx.plan.procs[i];
    for &fd in &p.skipped_fds {
        eprintln!("{PROGRAM}: warning: {}: fd {fd} collides with dmtcp's own fds; not restored", t.img.path.display());
    }
    let wanted: Vec<(RawFd, RawFd)> = p.fds.iter().map(|pl| (pl.fd, objects.fd(pl.source))).collect();
    // The older images of an incremental chain: copies above every number the plan places
    // (before `place_fds`, which may put a program's fd where an image's fd is now), passed
    // to the restorer as `--base`; it closes them once read.
    let mut bases = Vec::with_capacity(t.bases.len());
    let above = wanted.iter().map(|&(fd, _)| fd).chain([IMAGE_FD, *confirm]).max().unwrap_or(IMAGE_FD) + 1;
    for b in &t.bases {
        let fd = b.stream.as_raw_fd();
        // SAFETY: lseek and fcntl(F_DUPFD) on an image fd we own; the copy is a new number.
        let n = unsafe {
            libc::lseek(fd, 0, libc::SEEK_SET);
            libc::fcntl(fd, libc::F_DUPFD, above)
        };
        if n < 0 {
            return Err(format!(
                "cannot pass {} to the restorer: {}",
                b.path.display(),
                std::io::Error::last_os_error()
            ));
        }
        bases.push(n);
    }
    // Our stderr and the group's record pipe, for the restorer's messages and failures
    // (`--stderr-fd`, `--fail-fd`), above the program's numbers too; it closes them.
    let mut ours = [2, wfd];
    for fd in &mut ours {
        // SAFETY: fcntl(F_DUPFD) of an fd we hold to a new number (not close-on-exec).
        let n = unsafe { libc::fcntl(*fd, libc::F_DUPFD, above) };
        if n < 0 {
            return Err(format!("cannot pass fd {fd} to the restorer: {}", std::io::Error::last_os_error()));
        }
        *fd = n;
    }
    let mut keep = vec![0, 1, 2, ev::RESTART_INFO_FD, dmtcp_proto::COORD_FD, IMAGE_FD];
    keep.extend(&bases);
    keep.extend(ours);
    keep.extend(place_fds(&wanted, confirm)?);
    keep.push(*confirm);
    close_others(&keep);
    Ok((bases, ours[0], ours[1]))
}

/// Puts copies of fds at the numbers the plan gives, `wanted`: (number, fd to copy), via
/// temporary fds above all of them, so that no source is overwritten before it is copied (the
/// creator's `confirm` fd moves too if it is in the way). Returns the numbers placed.
fn place_fds(wanted: &[(RawFd, RawFd)], confirm: &mut RawFd) -> Result<Vec<RawFd>, String> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let above = wanted.iter().map(|&(fd, _)| fd).chain([IMAGE_FD, *confirm]).max().unwrap_or(IMAGE_FD) + 1;
    let dup_above = |fd: RawFd| -> Result<RawFd, String> {
        // SAFETY: F_DUPFD_CLOEXEC of an fd we hold, to a free number above `above`.
        let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, above) };
        if n < 0 {
            Err(format!("cannot duplicate an fd to place: {}", std::io::Error::last_os_error()))
        } else {
            Ok(n)
        }
    };
    if wanted.iter().any(|&(fd, _)| fd == *confirm) {
        *confirm = dup_above(*confirm)?;
    }
    let mut temps = Vec::with_capacity(wanted.len());
    for &(_, src) in wanted {
        temps.push(dup_above(src)?);
    }
    for (&(fd, _), &tmp) in wanted.iter().zip(&temps) {
        // SAFETY: dup2 of our temporary copy onto the program's number (dup2 clears CLOEXEC;
        // the library restores the program's own flags).
        if unsafe { libc::dup2(tmp, fd) } < 0 {
            return Err(format!("cannot put an fd at {fd}: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(wanted.iter().map(|&(fd, _)| fd).collect())
}

const CAP_CHECKPOINT_RESTORE: u32 = 40;

/// Puts CAP_CHECKPOINT_RESTORE into the inheritable and ambient sets, so that it survives the
/// exec of the (unprivileged) restorer. We hold it in our own user namespace; without one
/// (no namespace) the restorer cannot choose tids and pids change anyway, so failure there is
/// only reported when a namespace is in use.
fn raise_checkpoint_restore() -> Result<(), String> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const V3: u32 = 0x2008_0522;
    let mut h = Header { version: V3, pid: 0 };
    let mut d = [Data::default(); 2];
    // SAFETY: capget/capset with a version-3 header and the two data words it expects.
    let ok = unsafe {
        libc::syscall(libc::SYS_capget, &mut h as *mut Header, d.as_mut_ptr()) == 0 && {
            let (w, bit) = ((CAP_CHECKPOINT_RESTORE / 32) as usize, 1u32 << (CAP_CHECKPOINT_RESTORE % 32));
            if d[w].permitted & bit == 0 {
                false
            } else {
                d[w].inheritable |= bit;
                h = Header { version: V3, pid: 0 };
                libc::syscall(libc::SYS_capset, &mut h as *mut Header, d.as_ptr()) == 0
                    && libc::prctl(
                        libc::PR_CAP_AMBIENT,
                        libc::PR_CAP_AMBIENT_RAISE,
                        CAP_CHECKPOINT_RESTORE as libc::c_ulong,
                        0,
                        0,
                    ) == 0
            }
        }
    };
    if ok || !in_own_userns() {
        Ok(())
    } else {
        Err(format!("cannot keep CAP_CHECKPOINT_RESTORE for the restorer: {}", std::io::Error::last_os_error()))
    }
}

/// Whether we run in a user namespace of our own (uid_map is not the identity of everything).
fn in_own_userns() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| !m.split_whitespace().eq(["0", "0", "4294967295"]))
}

/// Closes every fd except `keep` (close_range where available).
fn close_others(keep: &[RawFd]) {
    let mut keep = keep.to_vec();
    keep.sort_unstable();
    let mut from: u32 = 0;
    for &k in &keep {
        let k = k as u32;
        if k > from {
            // SAFETY: close_range(2) on fds of this process that nothing here uses any more.
            if unsafe { libc::syscall(libc::SYS_close_range, from, k - 1, 0) } != 0 {
                for fd in from..k {
                    // SAFETY: as above, one fd at a time.
                    unsafe { libc::close(fd as i32) };
                }
            }
        }
        from = k + 1;
    }
    // SAFETY: as above.
    if unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, 0) } != 0 {
        for fd in from..65536 {
            // SAFETY: as above.
            unsafe { libc::close(fd as i32) };
        }
    }
}
