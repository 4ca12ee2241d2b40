//! `dmtcp_restart [options] IMAGES...`: restarts a computation from its checkpoint images.
//!
//! 1. Every image is checked first (`common::image_reader`: header, tables, chunks, trailer checksum; a
//!    zstd image is decompressed into a memfd on the way, which later feeds the restorer). Any
//!    problem ends the run with `dmtcp_restart: <file>: <problem>` and exit code 2 before any
//!    process exists. An image whose architecture has no restorer is refused the same way.
//! 2. The coordinator is found or started with the same modes and defaults as `dmtcp_launch`,
//!    and a fresh shared-data area is written.
//! 3. The plan (`plan.rs`, pure, from one `ImageFacts` per image): images are grouped by the
//!    pid namespace they ran in (header PIDNS: one launch is one namespace), with the creator
//!    tree, sessions and groups, and the fds of each process (`pipes.rs` for the pipes).
//!    Carrying it out (`spawn.rs`): for each group a process P makes a new user + pid + mount namespace (see `ns`)
//!    and forks C, pid 1 there, which mounts /proc and creates the group's processes with their
//!    old pids (clone3 `set_tid`): C creates those whose parent is not in the group, and each
//!    created process first creates its own children (header PARENT_PID), so that getppid()
//!    and waitpid() see the same family as before. A process that led a session or a process
//!    group (header SID, PGID) does so again (setsid/setpgid) before it creates its children,
//!    which are created leaders first, so that members find their group. C makes the group's
//!    pipes before any process exists and each process gets their ends at its old fds. Each
//!    process then joins the coordinator (RestartWorker; the socket at fd 821), gets the facts of the new run on a memfd at fd 820
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
//!
//! DMTCP's restart options: `--no-strict-checking` (images of another user are refused
//! otherwise, `check_owner`), `--debug-restart-pause N` and `--tmpdir`, `--port-file`,
//! `--coord-logfile`; the restart facts on fd 820 also carry DMTCP's modify-env changes from a
//! dmtcp_env.txt (`env_changes`) and the pause, which the library applies.
pub mod chain;
mod events;
mod files;
mod ipc;
mod pathvirt;
mod pipes;
pub mod plan;
mod ptys;
mod shm;
mod sockets;
// Forks, clone3 with set_tid, exec of the restorer: one of the two places of `unsafe` in src/.
#[allow(unsafe_code)]
mod spawn;
pub mod timens;
mod watch;

use crate::common::cli::{self, EXIT_FAILURE, EXIT_USAGE};
use crate::common::client;
use crate::common::image_reader::{self, CheckedImage};
use crate::common::payloads::{self, Arch};
use crate::common::setup::{self, Fail, Mode};
use argh::FromArgs;
use dmtcp_proto::env as ev;
use plan::{End, FdFact, FdWhat, ImageFacts, PtySide, ShmFact};
use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The fd on which the restorer reads its image (`--fd`).
pub const IMAGE_FD: RawFd = 822;

#[derive(FromArgs)]
#[argh(help_triggers("--help"))]
#[argh(
    note = "Environment: DMTCP_PATH_PREFIX and DMTCP_NEW_PATH_PREFIX (colon-separated, paired in order): open files and the working folder under an old prefix are taken from the new one (DMTCP's pathvirt; paths the program opens later are not translated). DMTCP_ALLOW_OVERWRITE_WITH_CKPTED_FILES=1: the contents saved by --checkpoint-open-files replace a file that changed since the checkpoint."
)]
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
    /// write the coordinator's port to this file
    #[argh(option, long = "port-file")]
    port_file: Option<PathBuf>,
    /// folder for temporary files, e.g. the shared-data area (env DMTCP_TMPDIR, default $TMPDIR
    /// or /tmp)
    #[argh(option, short = 't', long = "tmpdir")]
    tmpdir: Option<PathBuf>,
    /// a coordinator that this restart starts writes its log to this file (env
    /// DMTCP_COORD_LOG_FILENAME)
    #[argh(option, long = "coord-logfile")]
    coord_logfile: Option<PathBuf>,
    /// restart images that belong to another user too (env DMTCP_DISABLE_STRICT_CHECKING=1)
    #[argh(switch, long = "no-strict-checking")]
    no_strict_checking: bool,
    /// every restarted process stops (SIGSTOP) before it resumes, says its pid, and waits for
    /// a debugger or SIGCONT; N is DMTCP's level 1..7, all levels stop at that one point (env
    /// DMTCP_RESTART_PAUSE, or MTCP_RESTART_PAUSE)
    #[argh(option, long = "debug-restart-pause")]
    debug_restart_pause: Option<u32>,
    /// print fewer messages: once, no notes; twice, only errors (adds to env DMTCP_QUIET)
    #[argh(switch, short = 'q', long = "quiet")]
    quiet: u8,
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
    let args: Vec<String> = cli::normalize(
        &args,
        &['p', 'h', 'c', 'r', 'i', 't'],
        &[
            "--coord-host",
            "--coord-port",
            "--ckptdir",
            "--restartdir",
            "--interval",
            "--port-file",
            "--tmpdir",
            "--coord-logfile",
            "--debug-restart-pause",
        ],
        false,
    )
    .into_iter()
    .map(|a| match a.as_str() {
        // DMTCP's other spellings.
        "--host" => "--coord-host".to_string(),
        "--port" => "--coord-port".to_string(),
        "--join" => "--join-coordinator".to_string(),
        _ => a,
    })
    .collect();
    let a: RestartArgs = match cli::start(PROGRAM, &args, |a: &RestartArgs| (a.version, a.quiet)) {
        Ok(a) => a,
        Err(code) => return code,
    };
    match run(a) {
        Ok(never) => match never {},
        Err(Fail { code, msg }) => {
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

/// The `--help` text (for `dmtcp man`).
pub fn help() -> String {
    cli::help_of::<RestartArgs>(PROGRAM)
}

enum Never {}

fn usage_err(msg: impl std::fmt::Display) -> Fail {
    Fail::usage(PROGRAM, msg)
}

/// One image as a process to create, with everything its process needs prepared before any fork.
struct Target {
    img: CheckedImage,
    /// The older images of its incremental chain, oldest first (`chain`; empty: a full image).
    bases: Vec<CheckedImage>,
    /// `KEY=VALUE` lines for fd 820.
    info: Vec<u8>,
    restorer: CString,
    hello: Vec<u8>,
}

fn run(a: RestartArgs) -> Result<Never, Fail> {
    let mode = Mode::from_switches(PROGRAM, a.join, a.new, a.any)?;
    let env_set = |n: &str| std::env::var(n).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let pause = match a.debug_restart_pause {
        Some(n) => n,
        None => match env_set(ev::RESTART_PAUSE).or_else(|| env_set(ev::MTCP_RESTART_PAUSE)) {
            Some(v) => v.parse().map_err(|_| usage_err(format!("{}={v:?} is not a number", ev::RESTART_PAUSE)))?,
            None => 0,
        },
    };
    let moved = pathvirt::PathMap::from_env().map_err(usage_err)?;
    let strict = !(a.no_strict_checking || env_set(ev::DISABLE_STRICT_CHECKING).is_some_and(|v| v != "0"));
    // Setup (the shared-data area) and a coordinator it starts read these from our environment;
    // dmtcp_restart is single-threaded, so changing it is sound.
    if let Some(t) = &a.tmpdir {
        let t = setup::absolute(t);
        std::fs::create_dir_all(&t).map_err(|e| setup::fail(format!("--tmpdir {}: {e}", t.display())))?;
        std::env::set_var(ev::TMPDIR, &t);
    }
    if let Some(f) = &a.coord_logfile {
        std::env::set_var(ev::COORD_LOG_FILENAME, setup::absolute(f));
    }
    // DMTCP's saved-files folders (`ckpt_*_files`) may come along with a glob: not images.
    let mut paths: Vec<PathBuf> =
        a.images.iter().filter(|p| !p.to_string_lossy().trim_end_matches('/').ends_with("_files")).cloned().collect();
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
            Fail { code: EXIT_FAILURE, msg: String::new() }
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
        if strict {
            check_owner(p)?;
        }
        // A delta image: the rest of its chain, found beside it, every link checked.
        let bases = chain_bases(p, &img, |_, _| {}).map_err(|e| {
            eprintln!("{PROGRAM}: {e}");
            Fail { code: EXIT_FAILURE, msg: String::new() }
        })?;
        if !bases.is_empty() {
            log::debug!("{}: a delta image on {} older images of its chain", p.display(), bases.len());
        }
        let restorer = tree.restorer(arch_of(&img));
        if !restorer.is_file() {
            return Err(setup::fail(format!(
                "{}: no restorer for {} images ({} is missing)",
                p.display(),
                arch_of(&img).name(),
                restorer.display()
            )));
        }
        images.push((img, restorer, bases));
    }
    // Images of one computation must come from one checkpoint: process A of generation 3 with
    // process B of generation 4 would resume a state that never existed. Images of different
    // computations restarted together are fine.
    if let Some(msg) =
        mixed_generations(images.iter().map(|(img, _, _)| (img.path.as_path(), img.comp_id(), img.generation())))
    {
        eprintln!("{PROGRAM}: {msg}");
        return Err(Fail { code: EXIT_FAILURE, msg: String::new() });
    }
    // The plan, from what the images say (pure; its errors name the image).
    let mut facts: Vec<ImageFacts> = images.iter().map(|(img, _, _)| facts(img)).collect();
    // Path virtualisation (pathvirt.rs): open files under an old prefix are opened at the new one.
    if !moved.is_empty() {
        log::debug!("path prefixes taken from new ones: {moved:?}");
    }
    for f in &mut facts {
        for p in &mut f.paths {
            *p = moved.apply(p);
        }
    }
    let plan = plan::plan(&facts).map_err(|e| setup::fail(e.to_string()))?;
    for g in 0..plan.groups.len() {
        let order: Vec<i32> = plan.creation_order(g).iter().map(|&i| plan.procs[i].pid).collect();
        log::debug!(
            "pid namespace {:#x}: processes {order:?}, {} pipes, {} file descriptions",
            plan.groups[g].pidns,
            plan.groups[g].pipes.len(),
            plan.groups[g].files.len()
        );
    }

    for w in &plan.warnings {
        log::warn!("{w}");
    }
    // A listener's port taken by another program now: say so before anything is made.
    let listeners: Vec<sockets::Listener<'_>> = facts
        .iter()
        .zip(&images)
        .flat_map(|(f, (img, _, _))| {
            f.fds.iter().filter_map(move |fd| match fd.what {
                FdWhat::InetSocket(rec) => Some(sockets::Listener { image: f, program: img.progname(), rec }),
                _ => None,
            })
        })
        .collect();
    sockets::check_ports(&listeners).map_err(setup::fail)?;
    // Saved contents of open files (--checkpoint-open-files), before anything opens them.
    let moved_ref = &moved;
    let saved: Vec<files::Saved<'_>> = images
        .iter()
        .flat_map(|(img, _, _)| {
            img.summary.fds.iter().filter_map(move |f| {
                f.contents.as_ref().map(|contents| files::Saved {
                    path: moved_ref.apply(Path::new(std::ffi::OsStr::from_bytes(&f.path))),
                    image: img.path.as_path(),
                    fd: f.fd,
                    contents,
                })
            })
        })
        .collect();
    files::put_back(&saved, env_set(ev::ALLOW_OVERWRITE).is_some_and(|v| v == "1"));

    // 2. The coordinator, and the facts of the new run.
    let (host, port) = client::coord_address(a.coord_host.as_deref(), a.coord_port).map_err(usage_err)?;
    let ckptdir_arg = a
        .ckptdir
        .clone()
        .or_else(|| std::env::var_os(ev::CHECKPOINT_DIR).filter(|v| !v.is_empty()).map(PathBuf::from))
        .map(|d| setup::absolute(&d));
    let image_dir = |p: &Path| {
        let dir = setup::absolute(p).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
        // An image of --enable-unique-checkpoint-filenames sits in its generation's subfolder:
        // later generations go next to it, not inside it (as DMTCP's unique-ckpt plugin does).
        match dir.file_name().and_then(|n| n.to_str()) {
            Some(n) if is_generation_folder(n) => dir.parent().map(Path::to_path_buf).unwrap_or(dir),
            _ => dir,
        }
    };
    let coord_dir = ckptdir_arg.clone().unwrap_or_else(|| image_dir(&paths[0]));
    let port = setup::coordinator(mode, &host, port, None, &coord_dir)?;
    if let Some(f) = &a.port_file {
        payloads::write_atomic(f, format!("{port}\n").as_bytes(), 0o644)
            .map_err(|e| setup::fail(format!("--port-file {}: {e}", f.display())))?;
    }
    let (shared, off64, off32) = setup::write_shared_area(&tree, &host, port, &coord_dir)?;
    let bin = setup::own_binary()?;
    let hostname = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default();

    let mut targets = Vec::with_capacity(images.len());
    for (img, restorer, bases) in images {
        let dir = ckptdir_arg.clone().unwrap_or_else(|| image_dir(&img.path));
        let mut info = String::new();
        let mut kv = |k: &str, v: &dyn std::fmt::Display| info.push_str(&format!("{k}={v}\n"));
        kv(ev::COORD_HOST, &host);
        kv(ev::COORD_PORT, &port);
        if let Some(t) = crate::common::token::for_client(port) {
            kv(ev::COORD_TOKEN, &t);
        }
        kv(ev::CHECKPOINT_DIR, &dir.display());
        kv(ev::BIN, &bin.display());
        kv(ev::HIJACK_LIBS, &tree.preload_lib(Arch::X86_64).display());
        kv(ev::HIJACK_LIBS_M32, &tree.preload_lib(Arch::I686).display());
        kv(ev::SHARED_AREA, &shared.display());
        kv(ev::DLSYM_OFFSET, &off64.map(|o| o.to_string()).unwrap_or_default());
        kv(ev::DLSYM_OFFSET_M32, &off32.map(|o| o.to_string()).unwrap_or_default());
        if pause > 0 {
            kv(ev::RESTART_PAUSE, &pause);
        }
        // The image of a chain this process comes from: its next checkpoint may be a delta on
        // it (the library's `dirty`).
        let ch = img.header().chain;
        if ch.image_id != 0 {
            let lens = bases.iter().map(|b| b.summary.len).chain([img.summary.len]);
            let (base_len, delta_len) =
                lens.enumerate().fold((0, 0), |(b, d), (k, l)| if k == 0 { (l, d) } else { (b, d + l) });
            let abs = setup::absolute(&img.path);
            kv(
                ev::RESTART_CHAIN,
                &format!(
                    "{:x} {:x} {} {base_len} {delta_len} {}",
                    ch.image_id,
                    img.summary.checksum,
                    ch.position,
                    abs.display()
                ),
            );
        }
        let cwd = img.header().cwd;
        if let Some(new) = moved.translate(Path::new(std::ffi::OsStr::from_bytes(cwd.as_bytes()))) {
            log::debug!(
                "{}: working folder {} becomes {}",
                img.path.display(),
                cwd.as_bytes().escape_ascii(),
                new.display()
            );
            kv(ev::RESTART_CWD, &new.display());
        }
        for (name, value) in env_changes(&img.path)? {
            match value {
                Some(v) => kv(ev::ENV_SET, &format!("{name}={v}")),
                None => kv(ev::ENV_UNSET, &name),
            }
        }
        let mut hello = hostname.as_bytes().to_vec();
        hello.push(0);
        hello.extend_from_slice(img.progname().as_bytes());
        hello.push(0);
        let restorer = CString::new(restorer.as_os_str().as_bytes())
            .map_err(|_| setup::fail("restorer path contains a NUL byte"))?;
        targets.push(Target { img, bases, info: info.into_bytes(), restorer, hello });
    }

    // 3. Carry the plan out.
    spawn::carry_out(&plan, &targets, &host, port, a.interval.unwrap_or(dmtcp_proto::INTERVAL_UNCHANGED))
}

/// The first two images of one computation (same nonzero id) from different checkpoints
/// (generations), as the message that refuses them.
pub fn mixed_generations<'a>(images: impl Iterator<Item = (&'a Path, u64, u32)>) -> Option<String> {
    let mut first: std::collections::HashMap<u64, (&Path, u32)> = std::collections::HashMap::new();
    for (path, comp, generation) in images {
        if comp == 0 {
            continue;
        }
        match first.get(&comp) {
            Some(&(p, g)) if g != generation => {
                return Some(format!(
                    "{} (generation {g}) and {} (generation {generation}) are images of computation {comp:x} \
                     from two different checkpoints; restart the images of one checkpoint",
                    p.display(),
                    path.display()
                ))
            }
            Some(_) => {}
            None => {
                first.insert(comp, (path, generation));
            }
        }
    }
    None
}

/// DMTCP's modify-env: the variable changes that the restarted process of `image` applies to
/// its environment before it runs again, from `$DMTCP_ENV_FILE`, else `dmtcp_env.txt` in the
/// image's folder, else in the current folder; none when there is no such file.
fn env_changes(image: &Path) -> Result<Vec<(String, Option<String>)>, Fail> {
    let file = match std::env::var_os(ev::ENV_FILE).filter(|v| !v.is_empty()) {
        Some(f) => Some(PathBuf::from(f)),
        None => [setup::absolute(image).with_file_name("dmtcp_env.txt"), PathBuf::from("dmtcp_env.txt")]
            .into_iter()
            .find(|p| p.is_file()),
    };
    let Some(file) = file else { return Ok(Vec::new()) };
    let text = std::fs::read_to_string(&file).map_err(|e| setup::fail(format!("{}: {e}", file.display())))?;
    parse_env_file(&text, |n| std::env::var(n).ok()).map_err(|e| setup::fail(format!("{}: {e}", file.display())))
}

/// The lines of a dmtcp_env.txt (DMTCP's format): `NAME=value` sets (the restarting host's
/// `$VAR` and `${VAR}` expanded, `"..."` keeps spaces), `NAME` alone removes, `#` starts a comment.
pub fn parse_env_file(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Option<String>)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let bad = |why: &str| format!("line {}: {why}: {line:?}", i + 1);
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let name_len = l.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(l.len());
        let name = &l[..name_len];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(bad("not a variable name"));
        }
        let rest = &l[name_len..];
        let Some(rest) = rest.strip_prefix('=') else {
            let rest = rest.trim_start();
            if !(rest.is_empty() || rest.starts_with('#')) {
                return Err(bad("expected NAME=value or NAME"));
            }
            out.push((name.to_string(), None));
            continue;
        };
        let mut value = String::new();
        let mut chars = rest.chars().peekable();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match c {
                '"' => quoted = !quoted,
                '$' => {
                    let braced = chars.peek() == Some(&'{');
                    if braced {
                        chars.next();
                    }
                    let mut var = String::new();
                    while let Some(&d) = chars.peek() {
                        if d.is_ascii_alphanumeric() || d == '_' {
                            var.push(d);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    if braced && chars.next() != Some('}') {
                        return Err(bad("unclosed ${"));
                    }
                    if var.is_empty() {
                        value.push('$');
                    } else {
                        value.push_str(&lookup(&var).unwrap_or_default());
                    }
                }
                c if !quoted && (c.is_whitespace() || c == '#') => {
                    let tail: String = std::iter::once(c).chain(chars).collect();
                    let tail = tail.trim_start();
                    if !(tail.is_empty() || tail.starts_with('#')) {
                        return Err(bad("spaces in a value need quotes"));
                    }
                    break;
                }
                c => value.push(c),
            }
        }
        if quoted {
            return Err(bad("unclosed quote"));
        }
        out.push((name.to_string(), Some(value)));
    }
    Ok(out)
}

/// `ckpt_<16 hex digits>_<5 digits>`: the folder of one generation of unique checkpoints.
fn is_generation_folder(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("ckpt_") else { return false };
    let b = rest.as_bytes();
    b.len() == 22
        && b[16] == b'_'
        && b[..16].iter().all(u8::is_ascii_hexdigit)
        && b[17..].iter().all(u8::is_ascii_digit)
}

/// DMTCP's strict checking: an image that belongs to another user is refused unless
/// `--no-strict-checking` says that restarting someone else's computation is meant.
fn check_owner(p: &Path) -> Result<(), Fail> {
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(p).map_err(|e| setup::fail(format!("{}: {e}", p.display())))?.uid();
    let me = nix::unistd::getuid().as_raw();
    if owner != me {
        return Err(setup::fail(format!(
            "{}: the image belongs to uid {owner}, not to you (uid {me}); restart it as its owner, or pass \
             --no-strict-checking (DMTCP_DISABLE_STRICT_CHECKING=1) if restarting it is meant",
            p.display()
        )));
    }
    Ok(())
}

fn arch_of(img: &CheckedImage) -> Arch {
    if img.summary.arch == dmtcp_proto::image::ARCH_I686 {
        Arch::I686
    } else {
        Arch::X86_64
    }
}

/// The older images of `img`'s chain (the image at `p`), oldest first, every link checked as
/// the restart checks it (`chain::resolve` over files beside it); `seen` is told each base read
/// and checked by `image_reader`, nearest first, before its link is checked. Public for
/// `dmtcp image info`, which shows a chain as dmtcp_restart would walk it.
pub fn chain_bases(
    p: &Path,
    img: &CheckedImage,
    mut seen: impl FnMut(&Path, &chain::LinkFacts),
) -> Result<Vec<CheckedImage>, chain::ChainError> {
    chain::resolve(p, &link_facts(img), |q| {
        if !q.exists() {
            return Ok(None);
        }
        let b = image_reader::check_file(q).map_err(|e| e.to_string())?;
        if arch_of(&b) != arch_of(img) {
            return Err(format!("an image of another architecture ({})", arch_of(&b).name()));
        }
        let f = link_facts(&b);
        seen(q, &f);
        Ok(Some((f, b)))
    })
}

/// What the chain walk needs of an image (`chain::resolve`).
fn link_facts(img: &CheckedImage) -> chain::LinkFacts {
    let h = img.header();
    let c = h.chain;
    chain::LinkFacts {
        image_id: c.image_id,
        position: c.position,
        checksum: img.summary.checksum,
        base: c
            .is_delta()
            .then(|| (String::from_utf8_lossy(c.base_name.as_bytes()).into_owned(), c.base_checksum, c.base_id)),
        comp_id: h.comp_id,
        vpid: h.vpid,
    }
}

/// What the plan needs of a checked image (the adapter that keeps `plan` independent of the
/// image reader). Public for `dmtcp image verify`, which plans as dmtcp_restart does.
pub fn facts(img: &CheckedImage) -> ImageFacts {
    use dmtcp_proto::image::FdBody;
    let mut paths = Vec::new();
    let fds = img
        .summary
        .fds
        .iter()
        .map(|f| FdFact {
            fd: f.fd,
            what: match &f.record.body {
                FdBody::Pipe(_) => {
                    let end = match f.end {
                        dmtcp_proto::image::FD_READ => Some(End::Read),
                        dmtcp_proto::image::FD_WRITE => Some(End::Write),
                        _ => None,
                    };
                    FdWhat::Pipe { id: f.id, end, capacity: f.pipe_size }
                }
                FdBody::File(file) => {
                    paths.push(PathBuf::from(std::ffi::OsStr::from_bytes(&f.path)));
                    FdWhat::File {
                        desc: (file.desc_pid, file.desc_fd),
                        path: paths.len() - 1,
                        offset: file.offset,
                        status: f.record.status,
                    }
                }
                FdBody::Placeholder(_) => FdWhat::Placeholder,
                FdBody::Memfd(_) => FdWhat::Memfd { dev: f.dev, inode: f.id, size: f.size },
                FdBody::UnixSocket(r) => FdWhat::UnixSocket(*r),
                FdBody::Sysv(r) => FdWhat::Sysv(*r),
                FdBody::InetSocket(r) => FdWhat::InetSocket(*r),
                FdBody::Pty(_) => {
                    let side = if f.end == dmtcp_proto::image::PTY_MASTER { PtySide::Master } else { PtySide::Slave };
                    FdWhat::Pty { index: f.id as u32, side }
                }
                FdBody::Eventfd(e) if f.record.fd_flags & dmtcp_proto::image::FD_SHARED != 0 => {
                    FdWhat::Eventfd { desc: e.desc, count: e.count, semaphore: e.semaphore }
                }
                _ => FdWhat::Other(f.kind),
            },
        })
        .collect();
    ImageFacts {
        path: img.path.clone(),
        pid: img.pid(),
        parent_pid: img.parent_pid(),
        pgid: img.pgid(),
        sid: img.sid(),
        pidns: img.pidns(),
        is_root: img.is_root(),
        fds,
        paths,
        shm: img
            .summary
            .shm
            .iter()
            .map(|a| ShmFact { dev: a.dev, inode: a.inode, end: a.offset + a.len, name: a.name.clone() })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::{is_generation_folder, parse_env_file};

    #[test]
    fn dmtcp_env_files_are_read_as_dmtcp_reads_them() {
        let text = "# comment\nHOME=me # new HOME\n  EDITOR\nFOO=\"a b c\"\nD=$DISPLAY:${N}x\nE=\n";
        let look = |n: &str| match n {
            "DISPLAY" => Some(":1".to_string()),
            "N" => Some("7".to_string()),
            _ => None,
        };
        let got = parse_env_file(text, look).unwrap();
        let want: Vec<(String, Option<String>)> = vec![
            ("HOME".into(), Some("me".into())),
            ("EDITOR".into(), None),
            ("FOO".into(), Some("a b c".into())),
            ("D".into(), Some(":1:7x".into())),
            ("E".into(), Some(String::new())),
        ];
        assert_eq!(got, want);
        assert!(parse_env_file("A=b c\n", look).unwrap_err().contains("line 1"));
        assert!(parse_env_file("1A=b\n", look).is_err());
        assert!(parse_env_file("A=\"b\n", look).is_err());
    }

    #[test]
    fn images_of_two_checkpoints_of_one_computation_are_refused() {
        use super::mixed_generations;
        use std::path::Path;
        let (a, b, c) = (Path::new("/i/a.dmtcp"), Path::new("/i/b.dmtcp"), Path::new("/i/c.dmtcp"));
        assert_eq!(mixed_generations([(a, 7, 3), (b, 7, 3), (c, 9, 4)].into_iter()), None);
        assert_eq!(mixed_generations([(a, 0, 3), (b, 0, 4)].into_iter()), None, "no computation id");
        let msg = mixed_generations([(a, 7, 3), (c, 9, 1), (b, 7, 4)].into_iter()).unwrap();
        assert!(msg.contains("/i/a.dmtcp (generation 3)") && msg.contains("/i/b.dmtcp (generation 4)"), "{msg}");
    }

    #[test]
    fn generation_folders_of_unique_checkpoints_are_recognised() {
        assert!(is_generation_folder("ckpt_00ab12cd34ef5678_00002"));
        assert!(!is_generation_folder("ckpt_00ab12cd34ef5678_2"));
        assert!(!is_generation_folder("ckpt_hello_00002"));
        assert!(!is_generation_folder("work"));
    }
}
