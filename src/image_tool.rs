//! `dmtcp image info|verify|ls IMAGE...`: look inside checkpoint images (CRIU's `crit`).
//!
//! - `info`: architecture, format version, program, ids, generation, every memory area (range,
//!   protection, size, bytes of data in the image, kind, name), threads, the fd table (each
//!   fd's kind and record), sizes on disk and once decompressed, checksum status.
//! - `verify`: what `dmtcp_restart` checks before it creates any process: each image through
//!   `common::image_reader::check_file` (header, tables, chunks, trailer, checksum), a restorer
//!   for its architecture in the payload tree, and, for the whole set, the restart plan
//!   (`restart::plan`: parents, sessions, shared pipes and files that must fit together). It
//!   says what is wrong and exits non-zero.
//! - `ls`: one line per image, a delta marked with its position in its chain.
//! - every verb: an image's incremental chain (`dmtcp_proto::image::chain`): a full image, or a
//!   delta at position N with each older image it needs (the file name beside it, whether it
//!   is there and whether it matches), walked by the restart's own `restart::chain_bases`; a
//!   broken chain makes the image unusable, as it is for `dmtcp_restart`.
//!
//! `--json` prints one JSON object on stdout instead of text.
//!
//! Design: nothing here checks bytes itself. The checks are `image_reader`'s (the one
//! validating reader) and the planner's; the tables `info` lists are decoded again, from the
//! checked stream, with the proto's own record decoders. The planner is borrowed from the
//! restart role (it is pure: facts in, plan or error out) so that `verify` and `dmtcp_restart`
//! cannot disagree.
use crate::common::cli::{self, EXIT_FAILURE};
use crate::common::image_reader::{self, CheckedImage, FdEntry};
use crate::common::payloads;
use argh::FromArgs;
use dmtcp_proto::image::{self, Arch, AreaRecord, Header, ThreadRecord, AREA_SIZE, HEADER_SIZE, THREAD_SIZE};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};

const PROGRAM: &str = "dmtcp image";

#[derive(FromArgs)]
#[argh(help_triggers("--help"))]
/// Look inside checkpoint images: dmtcp image info|verify|ls [--json] IMAGE...
struct ImageArgs {
    #[argh(subcommand)]
    cmd: Option<Sub>,
    /// print the version and exit
    #[argh(switch, long = "version")]
    version: bool,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Sub {
    Info(InfoArgs),
    Verify(VerifyArgs),
    Ls(LsArgs),
}

#[derive(FromArgs)]
#[argh(subcommand, name = "info", help_triggers("--help"))]
/// everything an image holds: ids, chain, areas, threads, fds, sizes, checksum
struct InfoArgs {
    /// print one JSON object instead of text
    #[argh(switch, long = "json")]
    json: bool,
    /// checkpoint images (ckpt_*.dmtcp)
    #[argh(positional, greedy)]
    images: Vec<PathBuf>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "verify", help_triggers("--help"))]
/// check the images as dmtcp_restart would; exit 2 when something is wrong
struct VerifyArgs {
    /// print one JSON object instead of text
    #[argh(switch, long = "json")]
    json: bool,
    /// checkpoint images (ckpt_*.dmtcp), checked one by one and as a set
    #[argh(positional, greedy)]
    images: Vec<PathBuf>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "ls", help_triggers("--help"))]
/// one line per image: architecture, program, pid, generation, full or delta N, sizes, status
struct LsArgs {
    /// print one JSON object instead of text
    #[argh(switch, long = "json")]
    json: bool,
    /// checkpoint images (ckpt_*.dmtcp)
    #[argh(positional, greedy)]
    images: Vec<PathBuf>,
}

pub fn main(args: &[std::ffi::OsString]) -> i32 {
    let args = match cli::utf8(PROGRAM, args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let a: ImageArgs = match cli::start(PROGRAM, &args, |a: &ImageArgs| (a.version, false)) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (verb, json, images) = match a.cmd {
        Some(Sub::Info(i)) => (Verb::Info, i.json, i.images),
        Some(Sub::Verify(v)) => (Verb::Verify, v.json, v.images),
        Some(Sub::Ls(l)) => (Verb::Ls, l.json, l.images),
        None => {
            eprintln!("{PROGRAM}: no command given: use info, verify or ls; see `{PROGRAM} --help`");
            return cli::EXIT_USAGE;
        }
    };
    if images.is_empty() {
        eprintln!("{PROGRAM}: no checkpoint images given; see `{PROGRAM} {} --help`", verb.name());
        return cli::EXIT_USAGE;
    }
    let reports: Vec<Report> = images.iter().map(|p| Report::of(p, verb == Verb::Verify)).collect();
    let set = if verb == Verb::Verify { Some(check_set(&reports)) } else { None };
    let ok = reports.iter().all(|r| r.problem.is_none()) && set.as_ref().is_none_or(|s| s.is_ok());
    let out =
        if json { to_json(verb, &reports, set.as_ref(), ok) + "\n" } else { to_text(verb, &reports, set.as_ref()) };
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::stdout().write_all(out.as_bytes());
    if ok {
        0
    } else {
        EXIT_FAILURE
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verb {
    Info,
    Verify,
    Ls,
}

impl Verb {
    fn name(self) -> &'static str {
        match self {
            Verb::Info => "info",
            Verb::Verify => "verify",
            Verb::Ls => "ls",
        }
    }
}

/// What one image holds, or why it cannot be used.
struct Report {
    path: PathBuf,
    disk_size: Option<u64>,
    /// Set when the image passed `check_file`.
    image: Option<Checked>,
    problem: Option<String>,
}

struct Checked {
    img: CheckedImage,
    header: Header,
    areas: Vec<AreaRecord>,
    threads: Vec<ThreadRecord>,
    /// Bytes of data in the image, per area.
    area_data: Vec<u64>,
    chain: ChainView,
}

/// Where an image stands in its incremental chain, as `dmtcp_restart` would walk it.
struct ChainView {
    /// 0: a full image.
    position: u32,
    /// 0: a full image in no chain (written without `--incremental`).
    image_id: u64,
    /// For a delta: the older images, nearest first, up to the first broken link.
    links: Vec<Link>,
    /// The restart's message for the broken link.
    broken: Option<String>,
}

struct Link {
    name: String,
    path: PathBuf,
    position: u32,
    /// False: missing.
    present: bool,
    /// Why it does not fit (None: it matches).
    mismatch: Option<String>,
}

impl ChainView {
    fn of(path: &Path, img: &CheckedImage, h: &Header) -> ChainView {
        let mut seen: Vec<(PathBuf, u32)> = Vec::new();
        let walk = crate::restart::chain_bases(path, img, |q, f| seen.push((q.to_path_buf(), f.position)));
        let name = |p: &Path| p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into());
        let good = |(p, position): &(PathBuf, u32)| Link {
            name: name(p),
            path: p.clone(),
            position: *position,
            present: true,
            mismatch: None,
        };
        let (mut links, mut broken) = (Vec::new(), None);
        match walk {
            Ok(_) => links.extend(seen.iter().map(good)),
            Err(e) => {
                let bad = e.base().to_path_buf();
                links.extend(seen.iter().filter(|(p, _)| *p != bad).map(good));
                // The position the broken link should have: one below the image naming it.
                let above = links.last().map_or(h.chain.position, |l| l.position);
                use crate::restart::chain::ChainError;
                let (present, mismatch) = match &e {
                    ChainError::Missing { .. } => (false, None),
                    ChainError::Unreadable { why, .. } => (true, Some(why.clone())),
                    ChainError::Checksum { want, got, .. } => {
                        (true, Some(format!("its checksum is {got:016x}, the delta names {want:016x}")))
                    }
                    ChainError::Mismatch { what, .. } => (true, Some(format!("it is {what}"))),
                };
                links.push(Link { name: name(&bad), path: bad, position: above.saturating_sub(1), present, mismatch });
                broken = Some(e.to_string());
            }
        }
        ChainView { position: h.chain.position, image_id: h.chain.image_id, links, broken }
    }

    fn is_delta(&self) -> bool {
        self.position > 0
    }

    /// `full` or `delta N` (ls's column).
    fn short(&self) -> String {
        if self.is_delta() {
            format!("delta {}", self.position)
        } else {
            "full".into()
        }
    }
}

impl Link {
    fn state(&self) -> String {
        match (&self.mismatch, self.present) {
            (_, false) => "missing".into(),
            (None, true) => "there, matches".into(),
            (Some(why), true) => format!("there, does not match: {why}"),
        }
    }
}

impl Report {
    fn of(path: &Path, verify: bool) -> Report {
        let disk_size = std::fs::metadata(path).ok().map(|m| m.len());
        let img = match image_reader::check_file(path) {
            Ok(i) => i,
            Err(e) => return Report { path: path.into(), disk_size, image: None, problem: Some(e.to_string()) },
        };
        let header = img.header();
        let (areas, threads, area_data) = match tables(&img, &header) {
            Ok(t) => t,
            Err(e) => return Report { path: path.into(), disk_size, image: None, problem: Some(e) },
        };
        let chain = ChainView::of(path, &img, &header);
        // A delta whose chain is broken cannot be restarted: unusable, as for dmtcp_restart.
        let mut problem = chain.broken.clone();
        if verify && problem.is_none() {
            // dmtcp_restart needs the restorer of the image's architecture.
            match payloads::tree() {
                Ok(tree) => {
                    let arch = if header.arch == Arch::I686 { payloads::Arch::I686 } else { payloads::Arch::X86_64 };
                    let r = tree.restorer(arch);
                    if !r.is_file() {
                        problem = Some(format!(
                            "no restorer for {} images ({} is missing); run `dmtcp self-install`",
                            header.arch.name(),
                            r.display()
                        ));
                    }
                }
                Err(e) => problem = Some(format!("cannot unpack the restorers: {e}")),
            }
        }
        Report {
            path: path.into(),
            disk_size,
            image: Some(Checked { img, header, areas, threads, area_data, chain }),
            problem,
        }
    }
}

/// The area and thread tables of a checked image, decoded again from its stream, and the bytes
/// of data each area has in the image.
type Tables = (Vec<AreaRecord>, Vec<ThreadRecord>, Vec<u64>);

fn tables(img: &CheckedImage, h: &Header) -> Result<Tables, String> {
    let fd = img.stream.try_clone().map_err(|e| format!("cannot read the image again: {e}"))?;
    let mut f = File::from(fd);
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(HEADER_SIZE as u64)).map_err(|e| format!("seek: {e}"))?;
    let mut read = |n: usize| -> Result<Vec<u8>, String> {
        let mut b = vec![0u8; n];
        f.read_exact(&mut b).map_err(|e| format!("cannot read the image again: {e}"))?;
        Ok(b)
    };
    let mut areas = Vec::with_capacity(h.num_areas as usize);
    for _ in 0..h.num_areas {
        areas.push(AreaRecord::decode(&read(AREA_SIZE)?).map_err(|e| e.to_string())?);
    }
    let mut threads = Vec::with_capacity(h.num_threads as usize);
    for _ in 0..h.num_threads {
        threads.push(ThreadRecord::decode(&read(THREAD_SIZE)?).map_err(|e| e.to_string())?);
    }
    // Bytes of data per area, from the chunk headers (the reader checked that each fits).
    let mut data = vec![0u64; areas.len()];
    f.seek(SeekFrom::Current((h.num_fds as usize * image::FD_SIZE) as i64)).map_err(|e| format!("seek: {e}"))?;
    loop {
        let mut b = [0u8; image::CHUNK_SIZE];
        f.read_exact(&mut b).map_err(|e| format!("cannot read the image again: {e}"))?;
        match image::Chunk::decode(&b).map_err(|e| e.to_string())? {
            image::Chunk::End => break,
            image::Chunk::Zero { .. } => {}
            image::Chunk::Data { area, len, .. } => {
                if let Some(d) = data.get_mut(area as usize) {
                    *d += len;
                }
                f.seek(SeekFrom::Current(len as i64)).map_err(|e| format!("seek: {e}"))?;
            }
        }
    }
    // The duplicate shares its offset with `img.stream`: put it back at the start.
    let _ = f.seek(SeekFrom::Start(0));
    Ok((areas, threads, data))
}

/// The restart plan for the images that passed, as dmtcp_restart makes it.
fn check_set(reports: &[Report]) -> Result<(), String> {
    let good: Vec<&CheckedImage> = reports.iter().filter_map(|r| r.image.as_ref().map(|c| &c.img)).collect();
    if good.len() != reports.len() {
        return Err("not checked as a set: some images are unusable".into());
    }
    let facts: Vec<_> = good.iter().map(|i| crate::restart::facts(i)).collect();
    crate::restart::plan::plan(&facts).map(|_| ()).map_err(|e| e.to_string())
}

fn area_kind(a: &AreaRecord) -> &'static str {
    let n = a.name.as_bytes();
    if a.is_shm() {
        "shm"
    } else if a.flags & image::AREA_HEAP != 0 {
        "heap"
    } else if a.flags & image::AREA_STACK != 0 {
        "stack"
    } else if n.starts_with(b"[vdso") || n.starts_with(b"[vvar") || n == b"[vsyscall]" {
        "kernel"
    } else if a.is_shared() && a.flags & image::AREA_FILE != 0 {
        "shared-file"
    } else if a.is_shared() {
        "shared-anon"
    } else if a.flags & image::AREA_FILE != 0 {
        "file"
    } else {
        "anon"
    }
}

fn prot_text(p: u32) -> String {
    let c = |bit, ch| if p & bit != 0 { ch } else { '-' };
    [c(1, 'r'), c(2, 'w'), c(4, 'x')].iter().collect()
}

/// The kind of an fd record, named after its variant (`Pipe`, `File`, ...), lower case.
fn fd_kind(f: &FdEntry) -> String {
    let d = format!("{:?}", f.record.body);
    let name = d.split(['(', ' ', '{']).next().unwrap_or("");
    let mut out = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_uppercase() && i > 0 {
            out.push('-');
        }
        out.extend(ch.to_lowercase());
    }
    out
}

fn fd_detail(f: &FdEntry) -> String {
    if !f.path.is_empty() {
        return String::from_utf8_lossy(&f.path).into_owned();
    }
    let d = format!("{:?}", f.record.body);
    match (d.find('('), d.rfind(')')) {
        (Some(a), Some(b)) if b > a => d[a + 1..b].to_string(),
        _ => d,
    }
}

fn thread_role(t: &ThreadRecord) -> &'static str {
    if t.flags & image::THREAD_CKPT != 0 {
        "checkpoint thread"
    } else if t.is_main() {
        "main"
    } else {
        "thread"
    }
}

fn comm(t: &ThreadRecord) -> String {
    let n = t.comm.iter().position(|&b| b == 0).unwrap_or(t.comm.len());
    String::from_utf8_lossy(&t.comm[..n]).into_owned()
}

fn text_of<const N: usize>(t: &image::Text<N>) -> String {
    String::from_utf8_lossy(t.as_bytes()).into_owned()
}

fn size(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < U.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[u])
    }
}

fn arch_name(a: Arch) -> &'static str {
    a.name()
}

fn to_text(verb: Verb, reports: &[Report], set: Option<&Result<(), String>>) -> String {
    let mut s = String::new();
    for r in reports {
        let p = r.path.display();
        let Some(c) = &r.image else {
            let _ = writeln!(s, "{p}: {}", r.problem.as_deref().unwrap_or("unusable"));
            continue;
        };
        let h = &c.header;
        let raw = c.img.summary.len;
        let disk = r.disk_size.unwrap_or(0);
        let status = r.problem.as_deref().unwrap_or("ok");
        match verb {
            Verb::Ls => {
                let _ = writeln!(
                    s,
                    "{p}  {}  {}  pid {}  generation {}  {}  {} on disk, {} raw  {status}",
                    arch_name(h.arch),
                    text_of(&h.progname),
                    h.vpid,
                    h.generation,
                    c.chain.short(),
                    size(disk),
                    size(raw)
                );
            }
            Verb::Verify => {
                let _ = writeln!(s, "{p}: {status}");
            }
            Verb::Info => {
                let _ = writeln!(s, "{p}: {status}");
                let _ = writeln!(
                    s,
                    "  format {}, {}, {} on disk{}, {} raw, checksum ok",
                    h.version,
                    arch_name(h.arch),
                    size(disk),
                    if c.img.compressed { " (zstd)" } else { " (uncompressed)" },
                    size(raw)
                );
                let _ = writeln!(
                    s,
                    "  program {} (exe {}, cwd {}, host {})",
                    text_of(&h.progname),
                    text_of(&h.exe),
                    text_of(&h.cwd),
                    text_of(&h.hostname)
                );
                let _ = writeln!(
                    s,
                    "  pid {} (vpid {}), parent {}, pgid {}, sid {}, uid {}, pid namespace {:#x}{}",
                    h.pid,
                    h.vpid,
                    h.parent_pid,
                    h.pgid,
                    h.sid,
                    h.uid,
                    h.pidns,
                    if h.is_root { " (its init)" } else { "" }
                );
                let _ = writeln!(
                    s,
                    "  computation {:#018x}, generation {}, {} process{}, checkpointed at {} (unix time)",
                    h.comp_id,
                    h.generation,
                    h.num_peers,
                    if h.num_peers == 1 { "" } else { "es" },
                    h.ckpt_time
                );
                chain_text(&mut s, &c.chain);
                let mapped: u64 = c.areas.iter().map(|a| a.len()).sum();
                let _ = writeln!(
                    s,
                    "  memory: {} areas, {} mapped, {} of data in {} chunks",
                    c.areas.len(),
                    size(mapped),
                    size(c.img.summary.data_bytes),
                    c.img.summary.chunks
                );
                for (a, data) in c.areas.iter().zip(&c.area_data) {
                    let _ = writeln!(
                        s,
                        "    {:016x}-{:016x} {} {:>10} {:>10} {:<11} {}",
                        a.start,
                        a.end,
                        prot_text(a.prot),
                        size(a.len()),
                        size(*data),
                        area_kind(a),
                        text_of(&a.name)
                    );
                }
                let _ = writeln!(s, "  threads: {}", c.threads.len());
                for t in &c.threads {
                    let _ = writeln!(s, "    tid {:<8} {:<18} {}", t.tid, thread_role(t), comm(t));
                }
                let fds = &c.img.summary.fds;
                let _ = writeln!(s, "  fds: {}", fds.len());
                for f in fds {
                    let _ = writeln!(s, "    fd {:<5} {:<14} {}", f.fd, fd_kind(f), fd_detail(f));
                }
                if !c.img.summary.shm.is_empty() {
                    let _ = writeln!(s, "  shared memory objects: {}", c.img.summary.shm.len());
                    for m in &c.img.summary.shm {
                        let _ = writeln!(s, "    {} ({} at offset {})", m.name, size(m.len), m.offset);
                    }
                }
            }
        }
    }
    if let Some(set) = set {
        match set {
            Ok(()) => {
                let _ = writeln!(s, "the {} image(s) restart together: ok", reports.len());
            }
            Err(e) => {
                let _ = writeln!(s, "as a set: {e}");
            }
        }
    }
    s
}

fn chain_text(s: &mut String, c: &ChainView) {
    if !c.is_delta() {
        let _ = if c.image_id == 0 {
            writeln!(s, "  chain: a full image (not incremental)")
        } else {
            writeln!(s, "  chain: a full image, the base of an incremental chain (image id {:#018x})", c.image_id)
        };
        return;
    }
    let _ = writeln!(
        s,
        "  chain: a delta at position {} (image id {:#018x}), on {} older image{}: {}",
        c.position,
        c.image_id,
        c.position,
        if c.position == 1 { "" } else { "s" },
        if c.broken.is_some() { "broken" } else { "complete" }
    );
    for l in &c.links {
        let _ = writeln!(s, "    position {:<4} {}: {}", l.position, l.name, l.state());
    }
}

fn chain_json(c: &ChainView) -> String {
    let links: Vec<String> = c
        .links
        .iter()
        .map(|l| {
            format!(
                "{{\"position\":{},\"name\":{},\"path\":{},\"present\":{},\"matches\":{},\"problem\":{}}}",
                l.position,
                js(&l.name),
                js(&l.path.to_string_lossy()),
                l.present,
                l.present && l.mismatch.is_none(),
                opt_js(l.mismatch.as_deref())
            )
        })
        .collect();
    format!(
        "{{\"kind\":{},\"position\":{},\"image_id\":{},\"complete\":{},\"problem\":{},\"bases\":[{}]}}",
        js(if c.is_delta() { "delta" } else { "full" }),
        c.position,
        c.image_id,
        c.broken.is_none(),
        opt_js(c.broken.as_deref()),
        links.join(",")
    )
}

fn js(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn opt_js(s: Option<&str>) -> String {
    s.map_or_else(|| "null".to_string(), js)
}

fn image_json(verb: Verb, r: &Report) -> String {
    let mut o = format!(
        "{{\"path\":{},\"ok\":{},\"problem\":{},\"size_on_disk\":{}",
        js(&r.path.to_string_lossy()),
        r.problem.is_none(),
        opt_js(r.problem.as_deref()),
        r.disk_size.map_or("null".into(), |n| n.to_string())
    );
    if let Some(c) = &r.image {
        let h = &c.header;
        let _ = write!(
            o,
            ",\"format\":{},\"arch\":{},\"program\":{},\"pid\":{},\"vpid\":{},\"parent_pid\":{},\"ppid\":{},\
             \"pgid\":{},\"sid\":{},\"uid\":{},\"pidns\":{},\"pidns_init\":{},\"computation\":{},\"generation\":{},\
             \"num_peers\":{},\"ckpt_time\":{},\"compressed\":{},\"uncompressed_size\":{},\"checksum\":\"ok\"",
            js(&h.version.to_string()),
            js(arch_name(h.arch)),
            js(&text_of(&h.progname)),
            h.pid,
            h.vpid,
            h.parent_pid,
            h.ppid,
            h.pgid,
            h.sid,
            h.uid,
            h.pidns,
            h.is_root,
            js(&format!("{:#018x}", h.comp_id)),
            h.generation,
            h.num_peers,
            h.ckpt_time,
            c.img.compressed,
            c.img.summary.len
        );
        let _ = write!(o, ",\"chain\":{}", chain_json(&c.chain));
        if verb == Verb::Info {
            let _ = write!(
                o,
                ",\"exe\":{},\"cwd\":{},\"hostname\":{},\"data_bytes\":{},\"chunks\":{}",
                js(&text_of(&h.exe)),
                js(&text_of(&h.cwd)),
                js(&text_of(&h.hostname)),
                c.img.summary.data_bytes,
                c.img.summary.chunks
            );
            let areas: Vec<String> = c
                .areas
                .iter()
                .zip(&c.area_data)
                .map(|(a, data)| {
                    format!(
                        "{{\"start\":{},\"end\":{},\"size\":{},\"prot\":{},\"kind\":{},\"data_bytes\":{},\"name\":{}}}",
                        a.start,
                        a.end,
                        a.len(),
                        js(&prot_text(a.prot)),
                        js(area_kind(a)),
                        data,
                        js(&text_of(&a.name))
                    )
                })
                .collect();
            let threads: Vec<String> = c
                .threads
                .iter()
                .map(|t| format!("{{\"tid\":{},\"role\":{},\"name\":{}}}", t.tid, js(thread_role(t)), js(&comm(t))))
                .collect();
            let fds: Vec<String> = c
                .img
                .summary
                .fds
                .iter()
                .map(|f| format!("{{\"fd\":{},\"kind\":{},\"detail\":{}}}", f.fd, js(&fd_kind(f)), js(&fd_detail(f))))
                .collect();
            let _ = write!(
                o,
                ",\"areas\":[{}],\"threads\":[{}],\"fds\":[{}]",
                areas.join(","),
                threads.join(","),
                fds.join(",")
            );
        }
    }
    o.push('}');
    o
}

fn to_json(verb: Verb, reports: &[Report], set: Option<&Result<(), String>>, ok: bool) -> String {
    let imgs: Vec<String> = reports.iter().map(|r| image_json(verb, r)).collect();
    let mut o = format!("{{\"command\":{},\"ok\":{},\"images\":[{}]", js(verb.name()), ok, imgs.join(","));
    if let Some(set) = set {
        let _ = write!(
            o,
            ",\"set\":{{\"ok\":{},\"problem\":{}}}",
            set.is_ok(),
            opt_js(set.as_ref().err().map(|s| s.as_str()))
        );
    }
    o.push('}');
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(js("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(3 << 20), "3.0 MiB");
    }

    #[test]
    fn area_kinds_follow_the_flags() {
        let mut a = AreaRecord::EMPTY;
        a.flags = image::AREA_HEAP;
        assert_eq!(area_kind(&a), "heap");
        a.flags = image::AREA_SHARED | image::AREA_FILE;
        assert_eq!(area_kind(&a), "shared-file");
        a.flags = image::AREA_FILE;
        assert_eq!(area_kind(&a), "file");
        a.flags = 0;
        assert_eq!(area_kind(&a), "anon");
        assert_eq!(prot_text(5), "r-x");
    }
}
