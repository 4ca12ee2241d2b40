//! `dmtcp_restart [options] IMAGES...`: restarts a computation from its checkpoint images.
//!
//! 1. Every image is checked first (`common::image_reader`: header, tables, chunks, trailer checksum; a
//!    zstd image is decompressed into a memfd on the way, which later feeds the restorer). Any
//!    problem ends the run with `dmtcp_restart: <file>: <problem>` and exit code 2 before any
//!    process exists. An image whose architecture has no restorer is refused the same way.
//! 2. The coordinator is found or started with the same modes and defaults as `dmtcp_launch`,
//!    and a fresh shared-data area is written.
//! 3. Images are grouped by the pid namespace they ran in (header PIDNS: one launch is one
//!    namespace). For each group a process P makes a new user + pid + mount namespace (see `ns`)
//!    and forks C, pid 1 there, which mounts /proc and creates the group's processes with their
//!    old pids (clone3 `set_tid`): C creates those whose parent is not in the group, and each
//!    created process first creates its own children (header PARENT_PID), so that getppid()
//!    and waitpid() see the same family as before. A process that led a session or a process
//!    group (header SID, PGID) does so again (setsid/setpgid) before it creates its children,
//!    which are created leaders first, so that members find their group. Each process then joins the coordinator
//!    (RestartWorker; the socket at fd 821), gets the facts of the new run on a memfd at fd 820
//!    (`KEY=VALUE` lines), raises CAP_CHECKPOINT_RESTORE into its inheritable and ambient sets
//!    (the restorer gives threads their old tids with clone3 `set_tid` too), closes every other
//!    fd and execs the restorer of its architecture: `mtcp_restart --fd 822 --stderr-fd 2`.
//!    Each creator waits for its child's exec (a close-on-exec pipe), so a failure before the
//!    restorer runs is reported with the image's name and ends the whole restart (exit 2)
//!    instead of leaving the other processes waiting for their peer.
//! 4. C reaps and forwards signals like the launcher's init and reports the status of the
//!    group's root (header IS_ROOT, else its first image); `dmtcp_restart` waits for every group
//!    and ends like the computation's root process: its exit code or its signal.
//!
//! Without namespace support (or with DMTCP_PIDNS=0) processes are forked normally, with new
//! pids, after one warning.
use crate::common::cli::{self, EXIT_FAILURE, EXIT_USAGE};
use crate::common::client;
use crate::common::image_reader::{self, CheckedImage};
use crate::common::ns;
use crate::common::payloads::{self, Arch};
use crate::common::setup::{self, Fail, Mode};
use argh::FromArgs;
use dmtcp_proto::env as ev;
use dmtcp_proto::{Kind, Msg, WorkerState};
use std::ffi::CString;
use std::io::{Seek, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The fd on which the restorer reads its image (`--fd`).
pub const IMAGE_FD: RawFd = 822;

#[derive(FromArgs)]
#[argh(help_triggers("--help"))]
/// Restart a computation from checkpoint images: dmtcp_restart [options] ckpt_*.dmtcp
struct RestartArgs {
    /// coordinator host (env DMTCP_COORD_HOST, default 127.0.0.1)
    #[argh(option, short = 'h', long = "coord-host")]
    coord_host: Option<String>,
    /// coordinator port (env DMTCP_COORD_PORT, default 7779)
    #[argh(option, short = 'p', long = "coord-port")]
    coord_port: Option<u16>,
    /// join the coordinator at host:port; fail if there is none
    #[argh(switch, short = 'j', long = "join-coordinator")]
    join: bool,
    /// start a new coordinator on the port; fail if one is there
    #[argh(switch, long = "new-coordinator")]
    new: bool,
    /// join the coordinator at host:port, or start one when there is none (the default)
    #[argh(switch, long = "any-coordinator")]
    any: bool,
    /// folder for later checkpoint images (env DMTCP_CHECKPOINT_DIR, default each image's folder)
    #[argh(option, short = 'c', long = "ckptdir")]
    ckptdir: Option<PathBuf>,
    /// checkpoint every N seconds after the restart (as dmtcp_launch -i)
    #[argh(option, short = 'i', long = "interval")]
    interval: Option<u32>,
    /// restart every ckpt_*.dmtcp image in this folder
    #[argh(option, short = 'r', long = "restartdir")]
    restartdir: Option<PathBuf>,
    /// print only errors
    #[argh(switch, short = 'q', long = "quiet")]
    quiet: bool,
    /// print the version and exit
    #[argh(switch, long = "version")]
    version: bool,
    /// checkpoint images
    #[argh(positional)]
    images: Vec<PathBuf>,
}

const PROGRAM: &str = "dmtcp_restart";

pub fn main(args: &[std::ffi::OsString]) -> i32 {
    let args = match cli::utf8(PROGRAM, args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let args = &args[..];
    let args = cli::normalize(
        args,
        &['p', 'h', 'c', 'r', 'i'],
        &["--coord-host", "--coord-port", "--ckptdir", "--restartdir", "--interval"],
        false,
    );
    let a: RestartArgs = match cli::start(PROGRAM, &args, |a: &RestartArgs| (a.version, a.quiet)) {
        Ok(a) => a,
        Err(code) => return code,
    };
    match run(a) {
        Ok(never) => match never {},
        Err((code, msg)) => {
            if msg.is_empty() {
                // Already said.
            } else if code == EXIT_USAGE {
                eprintln!("{PROGRAM}: {msg}");
            } else {
                log::error!("{msg}");
            }
            code
        }
    }
}

enum Never {}

fn usage_err(msg: impl Into<String>) -> Fail {
    (EXIT_USAGE, format!("{}; see `{PROGRAM} --help`", msg.into()))
}

/// One image as a process to create, with everything its process needs prepared before any fork.
struct Target {
    img: CheckedImage,
    /// `KEY=VALUE` lines for fd 820.
    info: Vec<u8>,
    restorer: CString,
    hello: Vec<u8>,
}

fn run(a: RestartArgs) -> Result<Never, Fail> {
    let mode = match (a.join, a.new, a.any) {
        (false, false, _) => Mode::Any,
        (true, false, false) => Mode::Join,
        (false, true, false) => Mode::New,
        _ => return Err(usage_err("choose one of --join-coordinator, --new-coordinator, --any-coordinator")),
    };
    let mut paths = a.images.clone();
    if let Some(dir) = &a.restartdir {
        let rd = std::fs::read_dir(dir).map_err(|e| setup::fail(format!("--restartdir {}: {e}", dir.display())))?;
        let mut found: Vec<PathBuf> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("ckpt_") && n.ends_with(".dmtcp"))
            })
            .collect();
        found.sort();
        paths.extend(found);
    }
    if paths.is_empty() {
        return Err(usage_err("no checkpoint images given"));
    }

    // 1. Check everything before creating anything.
    let tree = payloads::tree().map_err(|e| setup::fail(e.to_string()))?;
    let mut images = Vec::with_capacity(paths.len());
    for p in &paths {
        // The exact form `dmtcp_restart: <file>: <problem>`, without the log's "error: ".
        let img = image_reader::check_file(p).map_err(|e| {
            eprintln!("{PROGRAM}: {}: {e}", p.display());
            (EXIT_FAILURE, String::new())
        })?;
        log::debug!(
            "{}: {} image of {} ({} bytes{}, {} chunks, {} bytes of memory), pid {}",
            p.display(),
            arch_of(&img).name(),
            img.progname(),
            img.summary.len,
            if img.compressed { " once decompressed" } else { "" },
            img.summary.chunks,
            img.summary.data_bytes,
            img.pid()
        );
        let restorer = tree.restorer(arch_of(&img));
        if !restorer.is_file() {
            return Err(setup::fail(format!(
                "{}: no restorer for {} images ({} is missing)",
                p.display(),
                arch_of(&img).name(),
                restorer.display()
            )));
        }
        images.push((img, restorer));
    }
    let groups = group_images(&images.iter().map(|(i, _)| i).collect::<Vec<_>>())?;

    // 2. The coordinator, and the facts of the new run.
    let (host, port) = client::coord_address(a.coord_host.as_deref(), a.coord_port).map_err(usage_err)?;
    let ckptdir_arg = a
        .ckptdir
        .clone()
        .or_else(|| std::env::var_os(ev::CHECKPOINT_DIR).filter(|v| !v.is_empty()).map(PathBuf::from))
        .map(|d| setup::absolute(&d));
    let image_dir = |p: &Path| setup::absolute(p).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
    let coord_dir = ckptdir_arg.clone().unwrap_or_else(|| image_dir(&paths[0]));
    let port = setup::coordinator(mode, &host, port, None, &coord_dir)?;
    let (shared, off64, off32) = setup::write_shared_area(&tree, &host, port, &coord_dir)?;
    let bin = setup::own_binary()?;
    let hostname = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default();

    let mut targets = Vec::with_capacity(images.len());
    for (img, restorer) in images {
        let dir = ckptdir_arg.clone().unwrap_or_else(|| image_dir(&img.path));
        let mut info = String::new();
        let mut kv = |k: &str, v: &dyn std::fmt::Display| info.push_str(&format!("{k}={v}\n"));
        kv(ev::COORD_HOST, &host);
        kv(ev::COORD_PORT, &port);
        kv(ev::CHECKPOINT_DIR, &dir.display());
        kv(ev::BIN, &bin.display());
        kv(ev::HIJACK_LIBS, &tree.preload_lib(Arch::X86_64).display());
        kv(ev::HIJACK_LIBS_M32, &tree.preload_lib(Arch::I686).display());
        kv(ev::SHARED_AREA, &shared.display());
        kv(ev::DLSYM_OFFSET, &off64.map(|o| o.to_string()).unwrap_or_default());
        kv(ev::DLSYM_OFFSET_M32, &off32.map(|o| o.to_string()).unwrap_or_default());
        let mut hello = hostname.as_bytes().to_vec();
        hello.push(0);
        hello.extend_from_slice(img.progname().as_bytes());
        hello.push(0);
        let restorer = CString::new(restorer.as_os_str().as_bytes())
            .map_err(|_| setup::fail("restorer path contains a NUL byte"))?;
        targets.push(Target { img, info: info.into_bytes(), restorer, hello });
    }

    // 3. The namespaces.
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
    let ctx = Ctx {
        targets: &targets,
        host: &host,
        port,
        use_ns,
        lifeline: lifeline_r.as_raw_fd(),
        lifeline_w: lifeline_w.as_raw_fd(),
        interval: a.interval.unwrap_or(dmtcp_proto::INTERVAL_UNCHANGED),
    };
    let root_group = groups.iter().position(|g| g.members.iter().any(|&i| targets[i].img.is_root())).unwrap_or(0);

    let old_mask = ns::block_signals();
    let ids = ns::Ids::current();
    let mut pids = Vec::new();
    let mut pipes = Vec::new();
    for g in &groups {
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

    // 4. Wait, and end like the root process.
    let mut records: Vec<Vec<u8>> = vec![Vec::new(); groups.len()];
    let mut exits: Vec<Option<i32>> = vec![None; groups.len()];
    let mut failed = false;
    ns::wait_forwarding(&pids, |i, status| {
        exits[i] = Some(status);
        for (j, p) in pipes.iter().enumerate() {
            ns::drain_nonblocking(p, &mut records[j]);
        }
        let bad = ns::record::parse(&records[i]).iter().any(|&(t, _)| t == ns::record::FAILED)
            || ns::record::parse(&records[i]).iter().all(|&(t, _)| t != ns::record::STATUS);
        if bad && !failed {
            failed = true;
            // Take every other namespace down with it: its processes would wait for their peers.
            let mut victims = Vec::new();
            for (j, rec) in records.iter().enumerate() {
                if j != i && exits[j].is_none() {
                    victims.extend(
                        ns::record::parse(rec).iter().filter(|&&(t, _)| t == ns::record::INIT_PID).map(|&(_, v)| v),
                    );
                    victims.push(pids[j]);
                }
            }
            return victims;
        }
        Vec::new()
    });
    for (j, p) in pipes.iter().enumerate() {
        ns::drain_nonblocking(p, &mut records[j]);
    }
    if failed {
        std::process::exit(EXIT_FAILURE);
    }
    let status = ns::record::parse(&records[root_group])
        .iter()
        .find(|&&(t, _)| t == ns::record::STATUS)
        .map(|&(_, v)| v)
        .or(exits[root_group])
        .unwrap_or(0);
    ns::exit_like(status)
}

fn arch_of(img: &CheckedImage) -> Arch {
    if img.summary.arch == dmtcp_proto::image::ARCH_I686 {
        Arch::I686
    } else {
        Arch::X86_64
    }
}

/// Images that ran in one pid namespace.
struct Group {
    members: Vec<usize>,
    /// The group's pipes, made by C before it creates any process (see `make_pipes`): the old
    /// inode, the read end and the write end (close-on-exec fds, inherited down the tree).
    pipes: std::cell::RefCell<Vec<(u64, RawFd, RawFd)>>,
    /// Index of the group's root (IS_ROOT, else the first image).
    root: usize,
}

fn group_images(images: &[&CheckedImage]) -> Result<Vec<Group>, Fail> {
    let mut groups: Vec<(u64, Group)> = Vec::new();
    for (i, img) in images.iter().enumerate() {
        match groups.iter_mut().find(|(ns, _)| *ns == img.pidns()) {
            Some((_, g)) => g.members.push(i),
            None => groups.push((img.pidns(), Group { members: vec![i], root: i, pipes: Default::default() })),
        }
    }
    for (_, g) in &mut groups {
        if let Some(&r) = g.members.iter().find(|&&i| images[i].is_root()) {
            g.root = r;
        }
        for (k, &i) in g.members.iter().enumerate() {
            let pid = images[i].pid();
            if pid <= 1 {
                return Err(setup::fail(format!("{}: corrupt image (process id {pid})", images[i].path.display())));
            }
            if let Some(&j) = g.members[..k].iter().find(|&&j| images[j].pid() == pid) {
                return Err(setup::fail(format!(
                    "{} and {} are images of the same process (pid {pid}); give only one",
                    images[j].path.display(),
                    images[i].path.display()
                )));
            }
        }
    }
    Ok(groups.into_iter().map(|(_, g)| g).collect())
}

struct Ctx<'a> {
    targets: &'a [Target],
    host: &'a str,
    port: u16,
    use_ns: bool,
    lifeline: RawFd,
    lifeline_w: RawFd,
    /// `-i/--interval` (seconds), or INTERVAL_UNCHANGED.
    interval: u32,
}

/// P: makes the group's namespace and forks C, then waits for it (forwarding signals).
/// Without a namespace P itself plays C's part as a child subreaper.
fn group_main(ctx: &Ctx<'_>, g: &Group, ids: ns::Ids, old_mask: &libc::sigset_t, w: OwnedFd) -> ! {
    let wfd = w.as_raw_fd();
    ns::die_with_parent(ctx.lifeline, ctx.lifeline_w);
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
    // SAFETY: fork in a single-threaded process; C runs `init_main`, which ends with _exit.
    let c = unsafe { libc::fork() };
    if c == 0 {
        ns::die_with_parent(ctx.lifeline, ctx.lifeline_w);
        if let Err(e) = ns::mount_proc() {
            eprintln!("{PROGRAM}: error: cannot mount /proc in the new pid namespace: {}", e.desc());
            ns::record::send(wfd, ns::record::FAILED, 0);
            ns::child_exit(EXIT_FAILURE);
        }
        init_main(ctx, g, old_mask, wfd);
    }
    if c < 0 {
        eprintln!("{PROGRAM}: error: fork: {}", nix::errno::Errno::last().desc());
        ns::record::send(wfd, ns::record::FAILED, 0);
        ns::child_exit(EXIT_FAILURE);
    }
    ns::record::send(wfd, ns::record::INIT_PID, c);
    drop(w);
    let mut st = 0;
    ns::wait_forwarding(&[c], |_, s| {
        st = s;
        Vec::new()
    });
    ns::child_exit(if libc::WIFEXITED(st) { libc::WEXITSTATUS(st) } else { 128 + libc::WTERMSIG(st) })
}

/// C: creates the group's processes, then reaps and forwards until the root is gone.
fn init_main(ctx: &Ctx<'_>, g: &Group, old_mask: &libc::sigset_t, wfd: RawFd) -> ! {
    let pids: Vec<i32> = g.members.iter().map(|&i| ctx.targets[i].img.pid()).collect();
    let tops: Vec<usize> =
        g.members.iter().copied().filter(|&i| !pids.contains(&ctx.targets[i].img.parent_pid())).collect();
    let mut root_pid = 0;
    if let Err(msg) = make_pipes(ctx, g) {
        eprintln!("{PROGRAM}: {msg}");
        ns::record::send(wfd, ns::record::FAILED, 0);
        ns::child_exit(EXIT_FAILURE);
    }
    for i in tops.iter().copied() {
        match spawn(ctx, g, i, old_mask, wfd) {
            Ok(pid) => {
                if i == g.root {
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
    // Only the restored processes hold the pipes now (a reader must see the end of its input).
    for &(_, r, w) in g.pipes.borrow().iter() {
        // SAFETY: closing C's own copies, which nothing here uses any more.
        unsafe {
            libc::close(r);
            libc::close(w);
        }
    }
    if root_pid == 0 {
        // The root was created by another process of the group: its pid is the image's.
        root_pid = ctx.targets[g.root].img.pid();
        if !ctx.use_ns {
            eprintln!("{PROGRAM}: warning: without a pid namespace the root process is not ours to wait for");
        }
    }
    let status = ns::init_loop(root_pid);
    ns::record::send(wfd, ns::record::STATUS, status);
    ns::child_exit(0)
}

/// Creates the process of image `i` (with its old pid in a namespace), which creates its own
/// children and then becomes the restorer. Returns its pid once it has exec'd the restorer, or
/// what went wrong before that.
fn spawn(ctx: &Ctx<'_>, g: &Group, i: usize, old_mask: &libc::sigset_t, wfd: RawFd) -> Result<i32, String> {
    let t = &ctx.targets[i];
    let name = t.img.path.display().to_string();
    let (r, w) = ns::pipe().map_err(|e| format!("{name}: pipe: {e}"))?;
    let pid = if ctx.use_ns {
        ns::fork_with_pid(t.img.pid())
            .map_err(|e| format!("{name}: cannot create process {}: {}", t.img.pid(), e.desc()))?
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
        let err = become_restored(ctx, g, i, old_mask, wfd, &mut confirm);
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

/// In the new process: children first, then the coordinator, the fds, the capability and the
/// restorer. Returns only on failure, with the message for the creator.
fn become_restored(
    ctx: &Ctx<'_>,
    g: &Group,
    i: usize,
    old_mask: &libc::sigset_t,
    wfd: RawFd,
    confirm: &mut RawFd,
) -> String {
    let t = &ctx.targets[i];
    let name = t.img.path.display().to_string();
    let me = t.img.pid();
    if ctx.use_ns && nix::unistd::getpid().as_raw() != me {
        return format!("{name}: got pid {} instead of {me}", nix::unistd::getpid());
    }
    if ctx.use_ns {
        if let Err(e) = join_group_and_session(ctx, g, i) {
            return format!("{name}: {e}");
        }
    }
    // Leaders of sessions and process groups first, so that their members can join them.
    let mut kids: Vec<usize> =
        g.members.iter().copied().filter(|&c| c != i && ctx.targets[c].img.parent_pid() == me).collect();
    kids.sort_by_key(|&c| {
        let img = &ctx.targets[c].img;
        (img.sid() != img.pid(), img.pgid() != img.pid())
    });
    for c in kids {
        if let Err(e) = spawn(ctx, g, c, old_mask, wfd) {
            return e;
        }
    }
    match prepare(ctx, g, t, confirm) {
        Ok(()) => {}
        Err(e) => return format!("{name}: {e}"),
    }
    ns::restore_mask(old_mask);
    let argv0 = c"mtcp_restart";
    let fd_arg = CString::new(IMAGE_FD.to_string()).expect("digits");
    let argv =
        [argv0.as_ptr(), c"--fd".as_ptr(), fd_arg.as_ptr(), c"--stderr-fd".as_ptr(), c"2".as_ptr(), std::ptr::null()];
    // SAFETY: execv with NUL-terminated strings and a NULL-terminated array that outlive it;
    // the environment is ours (the restorer restores the program's own).
    unsafe { libc::execv(t.restorer.as_ptr(), argv.as_ptr()) };
    format!("{name}: cannot run the restorer {}: {}", t.restorer.to_string_lossy(), std::io::Error::last_os_error())
}

/// Gives the new process its old session and process group (header SID, PGID): a session or
/// group it led is made anew; a group led by another process of the namespace is joined (its
/// leader was created first: an ancestor, or an earlier sibling). Ids outside the namespace
/// read as 0 and are left as inherited.
fn join_group_and_session(ctx: &Ctx<'_>, g: &Group, i: usize) -> Result<(), String> {
    let img = &ctx.targets[i].img;
    let (me, pgid, sid) = (img.pid(), img.pgid(), img.sid());
    // SAFETY: setsid/setpgid/getpgid on this process only.
    unsafe {
        if sid == me && libc::setsid() < 0 {
            return Err(format!("cannot lead a session again (setsid: {})", std::io::Error::last_os_error()));
        }
        if pgid == me && sid != me && libc::setpgid(0, 0) < 0 {
            return Err(format!("cannot lead process group {me} again (setpgid: {})", std::io::Error::last_os_error()));
        }
        let known = g.members.iter().any(|&m| ctx.targets[m].img.pid() == pgid);
        if pgid != me && pgid > 1 && known && libc::getpgid(0) != pgid && libc::setpgid(0, pgid) < 0 {
            return Err(format!(
                "cannot join process group {pgid} again (setpgid: {})",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Joins the coordinator (fd 821), writes the restart facts (fd 820), puts the image on
/// IMAGE_FD, raises CAP_CHECKPOINT_RESTORE for the restorer and closes every other fd but
/// `confirm` (close-on-exec: it tells our creator that the exec happened, or why not).
fn prepare(ctx: &Ctx<'_>, g: &Group, t: &Target, confirm: &mut RawFd) -> Result<(), String> {
    let mut s = client::connect(ctx.host, ctx.port, Duration::from_secs(10))
        .map_err(|e| format!("cannot reach the coordinator at {}:{}: {e}", ctx.host, ctx.port))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut m = Msg::new(Kind::RestartWorker);
    m.state = WorkerState::Restarting as u32;
    m.pid = nix::unistd::getpid().as_raw();
    m.vpid = t.img.vpid();
    m.comp_id = t.img.comp_id();
    m.generation = t.img.generation();
    m.num_peers = t.img.num_peers();
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
    let mut keep = vec![0, 1, 2, ev::RESTART_INFO_FD, dmtcp_proto::COORD_FD, IMAGE_FD];
    keep.extend(place_pipes(g, t, confirm)?);
    keep.push(*confirm);
    close_others(&keep);
    Ok(())
}

/// C's part: one new pipe per pipe of the computation (an old inode that some process of the
/// group held at fd 3 or above; a pipe seen only at fds 0-2 is the outside world's, like a
/// shell pipeline's, and those fds stay dmtcp_restart's own), with the largest capacity any
/// process saw.
fn make_pipes(ctx: &Ctx<'_>, g: &Group) -> Result<(), String> {
    let mut ids: Vec<(u64, u32)> = Vec::new();
    for &m in &g.members {
        for e in ctx.targets[m].img.pipe_ends() {
            match ids.iter_mut().find(|(id, _)| *id == e.id) {
                Some(p) => p.1 = p.1.max(e.pipe_size),
                None => ids.push((e.id, e.pipe_size)),
            }
        }
    }
    // A pipe belongs to the computation when its images hold both a read and a write end of
    // it. One held from one side only leads outside (a shell's saved copy of the program's
    // stdout at fd 11, say): it is not recreated, see `place_pipes`.
    let holds = |id: u64, end: u32| {
        g.members.iter().any(|&m| ctx.targets[m].img.pipe_ends().any(|e| e.id == id && e.end == end))
    };
    let internal = |id: u64| holds(id, dmtcp_proto::image::FD_READ) && holds(id, dmtcp_proto::image::FD_WRITE);
    let mut pipes = g.pipes.borrow_mut();
    for (id, size) in ids.into_iter().filter(|&(id, _)| internal(id)) {
        let (r, w) = ns::pipe().map_err(|e| format!("pipe: {e}"))?;
        let (r, w) = (std::os::fd::IntoRawFd::into_raw_fd(r), std::os::fd::IntoRawFd::into_raw_fd(w));
        if size > 0 {
            // SAFETY: fcntl on our own new pipe; a smaller capacity than asked is not fatal.
            unsafe { libc::fcntl(w, libc::F_SETPIPE_SZ, size as libc::c_int) };
        }
        pipes.push((id, r, w));
    }
    Ok(())
}

/// In a new process: puts the ends of the group's pipes at the fd numbers the image lists (via
/// temporary fds above all of them, so that no end is overwritten before it is placed; the
/// creator's `confirm` fd moves too if it is in the way). Returns the fds placed.
fn place_pipes(g: &Group, t: &Target, confirm: &mut RawFd) -> Result<Vec<RawFd>, String> {
    let pipes = g.pipes.borrow();
    let reserved = [ev::RESTART_INFO_FD, dmtcp_proto::COORD_FD, IMAGE_FD];
    let mut wanted = Vec::new();
    for e in t.img.pipe_ends() {
        let Some(&(_, r, w)) = pipes.iter().find(|p| p.0 == e.id) else {
            // A pipe to the outside: where this process also had it at 0-2, the copy at a
            // higher fd becomes a copy of dmtcp_restart's own stdio there.
            if e.fd > 2 {
                if let Some(k) = t.img.pipe_ends().find(|o| o.id == e.id && (0..=2).contains(&o.fd)) {
                    wanted.push((e.fd, k.fd));
                }
            }
            continue;
        };
        if reserved.contains(&e.fd) || e.fd < 0 {
            eprintln!(
                "{PROGRAM}: warning: {}: pipe at fd {} collides with dmtcp's own fds; not restored",
                t.img.path.display(),
                e.fd
            );
            continue;
        }
        wanted.push((e.fd, if e.end == dmtcp_proto::image::FD_READ { r } else { w }));
    }
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let above = wanted.iter().map(|&(fd, _)| fd).chain([IMAGE_FD, *confirm]).max().unwrap_or(IMAGE_FD) + 1;
    let dup_above = |fd: RawFd| -> Result<RawFd, String> {
        // SAFETY: F_DUPFD_CLOEXEC of an fd we hold, to a free number above `above`.
        let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, above) };
        if n < 0 {
            Err(format!("cannot duplicate a pipe: {}", std::io::Error::last_os_error()))
        } else {
            Ok(n)
        }
    };
    if wanted.iter().any(|&(fd, _)| fd == *confirm) {
        *confirm = dup_above(*confirm)?;
    }
    let mut temps = Vec::with_capacity(wanted.len());
    for &(_, src) in &wanted {
        temps.push(dup_above(src)?);
    }
    for (&(fd, _), &tmp) in wanted.iter().zip(&temps) {
        // SAFETY: dup2 of our temporary copy onto the program's number (dup2 clears CLOEXEC;
        // the library restores the program's own flags).
        if unsafe { libc::dup2(tmp, fd) } < 0 {
            return Err(format!("cannot put a pipe at fd {fd}: {}", std::io::Error::last_os_error()));
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
