//! Writing this process's checkpoint image (format: `dmtcp_proto::image`), from the checkpoint
//! thread while every other thread is stopped.
//!
//! The memory is streamed through a pipe into `dmtcp write-image` (the 64-bit `dmtcp` binary,
//! started here with a vfork-style clone and a raw execve), which compresses it, writes it under
//! a temporary name, checks the trailer, fsyncs and renames it; we never write the file
//! ourselves, so a crash or a full disk cannot leave a partial image under the final name.
//!
//! Rules: other threads are stopped, possibly inside malloc: no allocation, no locks. Memory
//! for the map and the tables comes from one mmap (`Scratch`), which is left out of the image.
//! Only raw-ish libc calls that do not allocate (open, read, pread, write, close, mmap, pipe2,
//! clone, waitpid, readlink, getcwd with a buffer, mincore, process_vm_readv).
//!
//! Memory: the area table comes from /proc/self/smaps, so that each area carries the kernel's
//! flags (VmFlags: MAP_NORESERVE, MAP_GROWSDOWN, mlock, madvise settings, hugetlb) for the
//! restorer. Which pages of an area go into the image (`data_of`): private anonymous memory,
//! the pages in its page table or swap (pagemap) that are not all zero, so a reservation of
//! tens of GiB costs nothing; a private file mapping, every page it can read (its copy may
//! differ from the file), or, when it cannot read it (PROT_NONE), its copied pages; shared
//! memory (anonymous, memfd, deleted or tmpfs files), the pages in memory (mincore: a page not
//! in memory is a hole, and reading it would allocate it), stored by the one process elected
//! for the object (`resources::shm`); a shared file mapping the process may write, every page.
//! Pages of file-backed areas are probed before they are written (`probe_pages`): past the
//! end of its file a page cannot be read (SIGBUS), and the pipe's write would fail (EFAULT).
// `Failure` carries its message inline (no allocation), so Results here are large by design.
#![allow(clippy::result_large_err)]
use crate::cstr::Fixed;
use crate::sys;
use crate::threads::{self, Slot, CKPT_SLOT};
use core::ffi::{c_int, c_void};
use dmtcp_proto::image::{
    self, hdr, Arch, AreaRecord, Chunk, Header, Span, ThreadRecord, Trailer, AREA_SIZE, HEADER_SIZE, THREAD_SIZE,
};

const PAGE: usize = 4096;
// The scratch mapping (MAP_NORESERVE: only what is used costs memory): /proc/self/smaps (about
// 1 KiB per mapping), the per-batch work buffers of `write_area`, then the area table.
const SCRATCH_LEN: usize = 64 << 20;
const MAPS_MAX: usize = 40 << 20;
/// Pages looked at per batch (pagemap entries, mincore bytes, probe vectors).
const BATCH: usize = 512;
const WORK_OFF: usize = MAPS_MAX;
const WORK_LEN: usize = 64 << 10;
const AREAS_OFF: usize = WORK_OFF + WORK_LEN;
const MAX_AREAS: usize = (SCRATCH_LEN - AREAS_OFF) / AREA_SIZE;

/// What the coordinator's DoCheckpoint told us, and who we are.
pub struct Request {
    pub comp_id: u64,
    pub generation: u32,
    pub num_peers: u32,
    pub vpid: i32,
    /// Slots 0..n_threads hold the stopped user threads.
    pub n_threads: usize,
    /// The DoCheckpoint's FLAG_INCREMENTAL / FLAG_FULL (`dirty::decide`).
    pub image_flags: u32,
}

/// A failed checkpoint, with a message for the coordinator and the log.
pub struct Failure(pub Fixed<512>);

fn fail(parts: &[&[u8]]) -> Failure {
    let mut f = Fixed::<512>::new();
    for p in parts {
        f.push(p);
    }
    Failure(f)
}

/// The image's final path, kept for the CkptFilename message.
static IMAGE_PATH: crate::cell::Exclusive<Fixed<4200>> = crate::cell::Exclusive::new(Fixed::new());

/// Calls `f` with the path of the last image.
pub fn with_image_path<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    IMAGE_PATH.with(|p| f(p.bytes()))
}

struct Scratch {
    base: *mut u8,
}

impl Scratch {
    fn new() -> Result<Scratch, Failure> {
        // SAFETY: a fresh anonymous mapping; unmapped in Drop.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                SCRATCH_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(fail(&[b"cannot map scratch memory: ", sys::strerror(sys::errno())]));
        }
        Ok(Scratch { base: p.cast() })
    }
    fn range(&self) -> (usize, usize) {
        (self.base as usize, self.base as usize + SCRATCH_LEN)
    }
    fn maps(&mut self) -> &mut [u8] {
        // SAFETY: the first MAPS_MAX bytes of our mapping.
        unsafe { core::slice::from_raw_parts_mut(self.base, MAPS_MAX) }
    }
    fn areas_ref(&self) -> &[u8] {
        // SAFETY: the rest of our mapping.
        unsafe { core::slice::from_raw_parts(self.base.add(AREAS_OFF), SCRATCH_LEN - AREAS_OFF) }
    }
    fn areas(&mut self) -> &mut [u8] {
        // SAFETY: the rest of our mapping.
        unsafe { core::slice::from_raw_parts_mut(self.base.add(AREAS_OFF), SCRATCH_LEN - AREAS_OFF) }
    }
    /// The work buffers of `write_area`, disjoint from the maps text and the area table.
    fn work(&self) -> Work {
        // SAFETY: WORK_LEN bytes of our mapping at WORK_OFF, used only by `write_area`; the
        // three parts (BATCH u64s, BATCH iovecs, 2 x BATCH bytes) fit in WORK_LEN.
        unsafe {
            let w = self.base.add(WORK_OFF);
            Work {
                entries: &mut *core::ptr::slice_from_raw_parts_mut(w.cast::<u64>(), BATCH),
                iov: &mut *core::ptr::slice_from_raw_parts_mut(w.add(BATCH * 8).cast::<libc::iovec>(), BATCH),
                bytes: &mut *core::ptr::slice_from_raw_parts_mut(w.add(BATCH * 8 + BATCH * 16), BATCH),
                probe: &mut *core::ptr::slice_from_raw_parts_mut(w.add(BATCH * 8 + BATCH * 17), BATCH),
            }
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no longer referenced.
        unsafe { libc::munmap(self.base.cast(), SCRATCH_LEN) };
    }
}

/// The pipe into the writer process. The checksum is not computed here: memory that changes
/// while we write (this thread's own stack) would make it disagree with the bytes sent, and it
/// would lengthen the program's pause; `dmtcp write-image` computes it on the bytes it
/// receives, on another core, and writes it into the trailer on disk. We send the length.
struct Stream {
    fd: c_int,
    len: u64,
}

impl Stream {
    fn put(&mut self, b: &[u8]) -> Result<(), Failure> {
        self.len += b.len() as u64;
        let r =
            sys::write_all(self.fd, b).map_err(|e| fail(&[b"the image writer stopped reading: ", sys::strerror(e)]));
        crate::progress::note(self.len);
        r
    }
}

/// A hex number's leading digits (the writer's status line, the restart info's chain line).
pub(crate) fn parse_hex(s: &[u8]) -> u64 {
    let mut v = 0u64;
    for &c in s {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => break,
        };
        v = (v << 4) | u64::from(d);
    }
    v
}

/// One parsed entry of /proc/self/smaps: its maps line, and its VmFlags and KernelPageSize.
#[derive(Clone, Copy)]
pub(crate) struct MapLine<'a> {
    pub start: u64,
    pub end: u64,
    pub perms: &'a [u8],
    pub offset: u64,
    pub dev: u64,
    pub inode: u64,
    pub name: &'a [u8],
    /// AREA_VM_* bits (AREA_VM_KNOWN once the VmFlags line was seen).
    vm: u32,
}

/// The AREA_VM_* bits of a smaps "VmFlags:" line (two-letter codes, `fs/proc/task_mmu.c`).
fn vm_flags(line: &[u8]) -> u32 {
    let mut vm = image::area::AREA_VM_KNOWN;
    for code in line.split(|&c| c == b' ').skip(1) {
        vm |= match code {
            b"nr" => image::area::AREA_VM_NORESERVE,
            b"gd" => image::area::AREA_VM_GROWSDOWN,
            b"lo" => image::area::AREA_VM_LOCKED,
            b"lf" => image::area::AREA_VM_LOCKONFAULT,
            b"dc" => image::area::AREA_VM_DONTFORK,
            b"wf" => image::area::AREA_VM_WIPEONFORK,
            b"dd" => image::area::AREA_VM_DONTDUMP,
            b"hg" => image::area::AREA_VM_HUGEPAGE,
            b"nh" => image::area::AREA_VM_NOHUGEPAGE,
            b"ht" => image::area::AREA_VM_HUGETLB,
            b"ac" => image::area::AREA_VM_ACCOUNT,
            b"mw" => image::area::AREA_VM_MAYWRITE,
            _ => 0,
        };
    }
    vm
}

/// Calls `f` for each entry of the smaps text, with its VmFlags folded in.
fn for_each_smaps_entry<'a>(
    text: &'a [u8],
    mut f: impl FnMut(MapLine<'a>) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let mut cur: Option<MapLine<'a>> = None;
    for line in text.split(|&c| c == b'\n') {
        if let Some(rest) = line.strip_prefix(b"VmFlags:") {
            if let Some(m) = cur.as_mut() {
                m.vm = vm_flags(rest.trim_ascii_end());
            }
        } else if let Some(rest) = line.strip_prefix(b"KernelPageSize:") {
            let kb = crate::cstr::parse_u64(rest.trim_ascii().split(|&c| c == b' ').next().unwrap_or(b"")).unwrap_or(4);
            if let Some(m) = cur.as_mut() {
                if kb >= 1 << 20 {
                    m.vm |= image::area::AREA_VM_HUGE_1G;
                }
            }
        } else if let Some(m) = parse_line(line) {
            if let Some(prev) = cur.replace(m) {
                f(prev)?;
            }
        }
    }
    match cur {
        Some(m) => f(m),
        None => Ok(()),
    }
}

/// One line of /proc/self/maps (the header line of a smaps entry); None for other lines.
pub(crate) fn parse_line(line: &[u8]) -> Option<MapLine<'_>> {
    let mut f = line.splitn(6, |&c| c == b' ');
    let range = f.next()?;
    let perms = f.next()?;
    let offset = parse_hex(f.next()?);
    let dev = f.next()?;
    let inode = crate::cstr::parse_u64(f.next()?).unwrap_or(0);
    let name = f.next().map(|n| n.trim_ascii_start()).unwrap_or(b"");
    let dash = range.iter().position(|&c| c == b'-')?;
    let colon = dev.iter().position(|&c| c == b':').unwrap_or(0);
    Some(MapLine {
        start: parse_hex(&range[..dash]),
        end: parse_hex(&range[dash + 1..]),
        perms,
        offset,
        dev: (parse_hex(&dev[..colon]) << 32) | parse_hex(&dev[colon + 1..]),
        inode,
        name,
        vm: 0,
    })
}

fn prot_of(perms: &[u8]) -> u32 {
    let mut p = 0;
    if perms.first() == Some(&b'r') {
        p |= libc::PROT_READ as u32;
    }
    if perms.get(1) == Some(&b'w') {
        p |= libc::PROT_WRITE as u32;
    }
    if perms.get(2) == Some(&b'x') {
        p |= libc::PROT_EXEC as u32;
    }
    p
}

/// Which pages of an area go into the image.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pick {
    /// Every page (private and shared file mappings: a page the process never touched may still
    /// differ from the file at restart).
    All,
    /// Pages in memory (mincore): shared memory the kernel holds (tmpfs, memfd, shared
    /// anonymous), where a page that is not in memory is a hole, and where reading a hole would
    /// allocate it.
    Resident,
    /// Pages the process has in its page table or in swap (pagemap): private anonymous memory,
    /// and the copied-on-write pages of a file mapping it cannot read.
    Touched,
}

/// What to store of an area.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Data {
    pick: Pick,
    /// Leave out pages that are all zero (the restored area starts as zeros: anonymous or a
    /// fresh memfd; never over a file, whose page may not be zero).
    skip_zero: bool,
    /// Whether a page may fail to read (past the end of its file, or a file truncated under
    /// the mapping: SIGBUS): each page is probed (process_vm_readv) before it is written.
    probe: bool,
}

/// What the image stores of `a` (None: nothing, the file or another process's image has it).
fn data_of(a: &AreaRecord) -> Option<Data> {
    // A System V segment the `sysv` kind took: the process elected for it stores its pages.
    if a.name.as_bytes().starts_with(b"/SYSV") && crate::resources::sysv::takes_segment(a.inode) {
        return None;
    }
    let file = a.flags & image::AREA_FILE != 0;
    let readable = a.prot & libc::PROT_READ as u32 != 0;
    let hugetlb = a.has_vm(image::area::AREA_VM_HUGETLB);
    if a.is_shared() {
        // One process of the computation writes a shared object's pages (resources::shm).
        if !crate::resources::shm::elected(a.dev, a.inode, a.offset, a.len()) {
            return None;
        }
        if a.is_shm() {
            return Some(Data { pick: Pick::Resident, skip_zero: true, probe: true });
        }
        // A shared file mapping: its pages, when the process may write them (otherwise the
        // file is as it was).
        if !a.has_vm(image::area::AREA_VM_MAYWRITE) {
            return None;
        }
        let tmpfs = a.name.as_bytes().starts_with(b"/dev/shm/") || is_tmpfs(a);
        let pick = if tmpfs { Pick::Resident } else { Pick::All };
        return Some(Data { pick, skip_zero: false, probe: true });
    }
    let name = a.name.as_bytes();
    if file && name == b"/dev/zero" {
        // A private mapping of /dev/zero is anonymous memory by another name.
        return Some(Data { pick: Pick::Touched, skip_zero: true, probe: false });
    }
    if file {
        if readable {
            return Some(Data { pick: Pick::All, skip_zero: false, probe: true });
        }
        return Some(Data { pick: Pick::Touched, skip_zero: false, probe: true });
    }
    // (A System V segment, "/SYSV... (deleted)", is shared memory whose holes reading would
    // allocate: its touched pages, as in 2.0.)
    let deleted_file = name.first() == Some(&b'/') && a.inode != 0 && !name.starts_with(b"/SYSV");
    if deleted_file && !hugetlb {
        // A private mapping of a deleted file comes back anonymous: every page it can read.
        return Some(Data { pick: Pick::All, skip_zero: true, probe: true });
    }
    Some(Data { pick: Pick::Touched, skip_zero: true, probe: false })
}

/// Whether the area's file lives on a tmpfs (its holes read as zero and cost nothing).
fn is_tmpfs(a: &AreaRecord) -> bool {
    let mut path = Fixed::<512>::new();
    path.set(a.name.as_bytes());
    sys::is_tmpfs(path.as_cstr())
}

/// The kind of an area, from its smaps entry: (AREA_* flags, whether to record it at all).
fn area_flags(m: &MapLine<'_>) -> u32 {
    let deleted = m.name.ends_with(b" (deleted)");
    let path_like = m.name.first() == Some(&b'/');
    let is_file = path_like && m.inode != 0 && !deleted && m.name.len() < image::area::NAME_LEN;
    let shared = m.perms.get(3) == Some(&b's');
    let hugetlb = m.vm & image::area::AREA_VM_HUGETLB != 0;
    // System V segments belong to their own kind; huge-page shared memory cannot be a memfd of
    // normal pages. Both keep the 2.0 treatment (the pages, restored private).
    let sysv = m.name.starts_with(b"/SYSV");
    let mut flags = 0;
    if is_file {
        flags |= image::AREA_FILE;
        if shared {
            flags |= image::AREA_SHARED;
        }
    } else if shared && path_like && m.inode != 0 && !sysv && !hugetlb {
        flags |= image::AREA_SHARED | image::AREA_SHM;
    }
    if m.name == b"[stack]" {
        flags |= image::AREA_STACK;
    }
    if m.name == b"[heap]" {
        flags |= image::AREA_HEAP;
    }
    flags
}

/// Writes the image; returns Ok(()) once `dmtcp write-image` has it safely on disk.
pub fn write_image(req: &Request) -> Result<(), Failure> {
    let c = crate::config::get();
    let mut scratch = Scratch::new()?;
    build_path(req)?;
    crate::dirty::decide(req.image_flags);
    let (child, data_fd, status_fd) = spawn_writer(c.dmtcp_bin(), c.compress())?;
    let mut stream = Stream { fd: data_fd, len: 0 };
    crate::progress::start();
    let result = stream_image(req, &mut scratch, &mut stream);
    sys::close(data_fd);
    let verdict = collect_status(child, status_fd);
    // The trailer went out past `Stream::put`.
    let written = stream.len + image::TRAILER_SIZE as u64;
    match (&result, &verdict) {
        (Ok(()), Ok(sum)) => crate::dirty::commit(*sum, written),
        _ => crate::dirty::abort(),
    }
    result?;
    verdict?;
    IMAGE_PATH.with(|p| crate::progress::finish(written, p.as_cstr()));
    Ok(())
}

/// The path an image of this process gets (for the C API's `dmtcp_get_ckpt_filename`).
pub fn image_path_for(comp_id: u64, vpid: i32, out: &mut Fixed<4200>) -> bool {
    let req = Request { comp_id, generation: 0, num_peers: 0, vpid, n_threads: 0, image_flags: 0 };
    build_path_in(&req, out).is_ok()
}

fn build_path(req: &Request) -> Result<(), Failure> {
    IMAGE_PATH.with(|p| build_path_in(req, p))
}

fn build_path_in(req: &Request, p: &mut Fixed<4200>) -> Result<(), Failure> {
    let c = crate::config::get();
    p.clear();
    let dir = c.ckpt_dir();
    if dir.is_empty() {
        let mut cwd = [0u8; 4096];
        // SAFETY: getcwd with our buffer does not allocate.
        let r = unsafe { libc::getcwd(cwd.as_mut_ptr().cast(), cwd.len()) };
        if r.is_null() {
            return Err(fail(&[b"no checkpoint folder"]));
        }
        let n = cwd.iter().position(|&b| b == 0).unwrap_or(0);
        p.push(&cwd[..n]);
    } else {
        p.push(dir);
    }
    // Make sure the folder exists (mode 0700 like DMTCP); an existing one is fine.
    {
        let mut d = Fixed::<4200>::new();
        d.set(p.bytes());
        // EEXIST is the usual answer; any other failure shows when the writer creates the image.
        let _ = sys::mkdir(d.as_cstr(), 0o700);
    }
    let mut num = [0u8; 20];
    let mut hex = [0u8; 16];
    for (i, h) in hex.iter_mut().enumerate() {
        let d = ((req.comp_id >> (60 - 4 * i)) & 0xf) as u8;
        *h = if d < 10 { b'0' + d } else { b'a' + d - 10 };
    }
    // DMTCP_UNIQUE_CKPT_PLUGIN=1 (--enable-unique-checkpoint-filenames): one subfolder per
    // generation, `ckpt_<computation>_<generation, 5 digits>`, as DMTCP's unique-ckpt plugin.
    if c.unique_ckpt() {
        let mut gen = [b'0'; 5];
        let mut g = req.generation;
        for d in gen.iter_mut().rev() {
            *d = b'0' + (g % 10) as u8;
            g /= 10;
        }
        if !(p.push(b"/ckpt_") && p.push(&hex) && p.push(b"_") && p.push(&gen)) {
            return Err(fail(&[b"checkpoint folder path too long"]));
        }
        let mut d = Fixed::<4200>::new();
        d.set(p.bytes());
        let _ = sys::mkdir(d.as_cstr(), 0o700);
    }
    let id = if req.vpid > 0 { req.vpid as u64 } else { sys::getpid() as u64 };
    let ok = p.push(b"/ckpt_")
        && p.push(c.progname.bytes())
        && p.push(b"_")
        && p.push(&hex)
        && p.push(b"-")
        && p.push(crate::cstr::fmt_u64(id, &mut num))
        && p.push(b".dmtcp");
    if !ok {
        return Err(fail(&[b"checkpoint folder path too long"]));
    }
    Ok(())
}

const CHILD_STACK: usize = 64 * 1024;
static mut CHILD_STACK_MEM: [u8; CHILD_STACK] = [0; CHILD_STACK];

/// Arguments for the writer child, prepared before the clone (the child only calls dup2 and
/// execve).
struct ChildArgs {
    argv: [*const u8; 8],
    envp: [*const u8; 2],
    data_r: c_int,
    status_w: c_int,
}

extern "C" fn writer_child(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the ChildArgs on the parent's stack, valid while the parent is
    // suspended (CLONE_VFORK). Raw system calls only: we share the parent's memory.
    unsafe {
        let a = &*(arg as *const ChildArgs);
        libc::syscall(libc::SYS_dup2 as _, a.data_r, 0);
        libc::syscall(libc::SYS_dup2 as _, a.status_w, 1);
        libc::syscall(libc::SYS_execve, a.argv[0], a.argv.as_ptr(), a.envp.as_ptr());
        let msg = b"error cannot run the dmtcp binary (DMTCP_BIN) to write the image\n";
        libc::syscall(libc::SYS_write, 1, msg.as_ptr(), msg.len());
        libc::syscall(libc::SYS_exit, 127);
    }
    127
}

/// Starts `dmtcp write-image --out PATH [--compress]`; returns (pid, data fd, status fd).
fn spawn_writer(bin: &[u8], compress: bool) -> Result<(i32, c_int, c_int), Failure> {
    if bin.is_empty() {
        return Err(fail(&[b"DMTCP_BIN is not set; cannot run the image writer"]));
    }
    let mut binz = Fixed::<4200>::new();
    binz.set(bin);
    let mut out = Fixed::<4200>::new();
    with_image_path(|p| out.set(p));
    let mut data = [0 as c_int; 2];
    let mut status = [0 as c_int; 2];
    // SAFETY: pipe2 fills two fds each.
    unsafe {
        if libc::pipe2(data.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(fail(&[b"pipe: ", sys::strerror(sys::errno())]));
        }
        if libc::pipe2(status.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            sys::close(data[0]);
            sys::close(data[1]);
            return Err(fail(&[b"pipe: ", sys::strerror(sys::errno())]));
        }
        libc::fcntl(data[1], libc::F_SETPIPE_SZ, 1 << 20);
    }
    // Incremental checkpoints: a delta keeps the image it builds on as `--chain-link NAME`
    // beside it; a full image of a chain lets the writer delete the old chain's links.
    let mut link = Fixed::<300>::new();
    let delta = crate::dirty::chain_link(&mut link);
    let mut argv: [*const u8; 8] = [core::ptr::null(); 8];
    let mut k = 0;
    let mut arg = |p: *const u8| {
        argv[k] = p;
        k += 1;
    };
    arg(binz.as_cstr().as_ptr().cast());
    arg(c"write-image".as_ptr().cast());
    arg(c"--out".as_ptr().cast());
    arg(out.as_cstr().as_ptr().cast());
    if compress {
        arg(c"--compress".as_ptr().cast());
    }
    if delta {
        arg(c"--chain-link".as_ptr().cast());
        arg(link.as_cstr().as_ptr().cast());
    } else if crate::dirty::in_chain() {
        arg(c"--chain-prune".as_ptr().cast());
    }
    let args = ChildArgs {
        argv,
        envp: [c"DMTCP_WRITER=1".as_ptr().cast(), core::ptr::null()],
        data_r: data[0],
        status_w: status[1],
    };
    // SAFETY: the child runs `writer_child` on its own static stack, sharing our memory until
    // it execs (CLONE_VFORK suspends us meanwhile); exit signal 0, so the program never sees a
    // SIGCHLD for it; we reap it with __WALL.
    let pid = unsafe {
        let stack = core::ptr::addr_of_mut!(CHILD_STACK_MEM).cast::<u8>().add(CHILD_STACK - 64);
        libc::clone(
            writer_child,
            stack.cast(),
            libc::CLONE_VM | libc::CLONE_VFORK,
            &args as *const ChildArgs as *mut c_void,
        )
    };
    let e = sys::errno();
    sys::close(data[0]);
    sys::close(status[1]);
    if pid <= 0 {
        sys::close(data[1]);
        sys::close(status[0]);
        return Err(fail(&[b"cannot start the image writer: ", sys::strerror(e)]));
    }
    Ok((pid, data[1], status[0]))
}

/// Reads the writer's verdict (`ok <bytes> <checksum in hex>`) and reaps it; returns the
/// image's checksum when the writer said it.
fn collect_status(pid: i32, fd: c_int) -> Result<Option<u64>, Failure> {
    let mut buf = [0u8; 480];
    let mut n = 0;
    while n < buf.len() {
        match sys::read_some(fd, &mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    sys::close(fd);
    let mut st: c_int = 0;
    // SAFETY: reaping our own child; __WALL because it has no exit signal.
    unsafe { libc::waitpid(pid, &mut st, libc::__WALL) };
    let text = buf[..n].split(|&c| c == b'\n').next().unwrap_or(b"");
    if text.starts_with(b"ok") {
        Ok(text.split(|&c| c == b' ').nth(2).filter(|h| !h.is_empty()).map(parse_hex))
    } else if let Some(msg) = text.strip_prefix(b"error ") {
        Err(fail(&[msg]))
    } else {
        Err(fail(&[b"the image writer failed without a message"]))
    }
}

fn stream_image(req: &Request, scratch: &mut Scratch, out: &mut Stream) -> Result<(), Failure> {
    let (skip_lo, skip_hi) = scratch.range();
    let n_maps = {
        let buf = scratch.maps();
        let n = sys::read_file(c"/proc/self/smaps", buf)
            .map_err(|e| fail(&[b"cannot read /proc/self/smaps: ", sys::strerror(e)]))?;
        if n == buf.len() {
            return Err(fail(&[b"too many memory areas"]));
        }
        n
    };
    let mut header = Header::new(Arch::NATIVE);
    let shared_addr = crate::config::get().shared.map(|s| s.as_ptr() as u64).unwrap_or(0);
    let restorer = crate::arch::RESTORER_BASE;

    // Area table.
    let mut n_areas = 0usize;
    {
        // SAFETY: the maps text and the area table are disjoint parts of the scratch mapping.
        let maps: &[u8] = unsafe { core::slice::from_raw_parts(scratch.base, n_maps) };
        let table = scratch.areas();
        for_each_smaps_entry(maps, |m| {
            if m.start >= skip_lo as u64 && m.end <= skip_hi as u64 {
                return Ok(());
            }
            if m.start == shared_addr || (m.start >= restorer && m.start < restorer + dmtcp_proto::RESTORER_SPAN) {
                return Ok(());
            }
            match m.name {
                b"[vdso]" => {
                    header.vdso = Span { start: m.start, end: m.end };
                    return Ok(());
                }
                b"[vvar]" => {
                    header.vvar = Span { start: m.start, end: m.end };
                    return Ok(());
                }
                b"[vvar_vclock]" => {
                    header.vclock = Span { start: m.start, end: m.end };
                    return Ok(());
                }
                b"[vsyscall]" => return Ok(()),
                _ => {}
            }
            if n_areas >= MAX_AREAS {
                return Err(fail(&[b"too many memory areas"]));
            }
            let flags = area_flags(&m);
            if m.perms.get(3) == Some(&b's') && m.vm & image::area::AREA_VM_HUGETLB != 0 {
                warn!(
                    "the shared huge-page mapping {} at {:#x} is saved, but comes back private to each process",
                    crate::log::Bytes(m.name),
                    m.start
                );
            }
            let rec = AreaRecord {
                start: m.start,
                end: m.end,
                offset: m.offset,
                prot: prot_of(m.perms),
                flags,
                dev: m.dev,
                inode: m.inode,
                vm: m.vm,
                name: image::Text::new(m.name),
                ..AreaRecord::EMPTY
            };
            rec.encode(area_slot(table, n_areas));
            n_areas += 1;
            Ok(())
        })?;
    }

    // Incremental checkpoints: full or delta, and the written pages listed, while stopped.
    header.chain = {
        let table = scratch.areas_ref();
        crate::dirty::prepare(n_areas, |i| AreaRecord::decode(&table[i * AREA_SIZE..(i + 1) * AREA_SIZE]).ok())
    };

    // Header.
    fill_header(&mut header, req, n_areas);
    let mut sealed = [0u8; HEADER_SIZE];
    header.encode(&mut sealed);
    out.put(&sealed)?;
    out.put(&scratch.areas()[..n_areas * AREA_SIZE])?;
    let pid = sys::getpid();
    let mut rec = [0u8; THREAD_SIZE];
    for i in (0..req.n_threads).chain(core::iter::once(CKPT_SLOT)) {
        thread_record(threads::slot(i), pid, &mut rec);
        out.put(&rec)?;
    }
    let mut r = Ok(());
    let mut fd_rec = [0u8; image::FD_SIZE];
    crate::resources::write_records(&mut |f| {
        if r.is_ok() {
            f.encode(&mut fd_rec);
            r = out.put(&fd_rec);
        }
    });
    r?;

    // Memory.
    let pagemap = sys::open_read(c"/proc/self/pagemap")
        .map_err(|e| fail(&[b"cannot open /proc/self/pagemap: ", sys::strerror(e)]))?;
    let mut r = Ok(());
    for i in 0..n_areas {
        // The table holds what was encoded above: a record that does not decode is our bug.
        let a = AreaRecord::decode(&scratch.areas()[i * AREA_SIZE..(i + 1) * AREA_SIZE])
            .map_err(|_| fail(&[b"internal error: an area record of this image does not decode"]))?;
        let how = crate::dirty::area(i);
        if how == crate::dirty::Area::Inherited {
            r = write_ranges(out, i as u32, &a);
        } else {
            if how == crate::dirty::Area::Fresh {
                // New since the last image of the chain: nothing of an older image shows.
                r = out.put(&zero_chunk(i as u32, 0, a.len()));
            }
            if let (Ok(()), Some(data)) = (&r, data_of(&a)) {
                r = write_area(out, pagemap, scratch.work(), i as u32, &a, data);
            }
        }
        if r.is_err() {
            break;
        }
    }
    sys::close(pagemap);
    r?;
    let mut end = [0u8; image::CHUNK_SIZE];
    Chunk::End.encode(&mut end);
    out.put(&end)?;
    // Checksum 0: `dmtcp write-image` computes it over the bytes it received.
    let mut trailer = [0u8; image::TRAILER_SIZE];
    Trailer { len: out.len, checksum: 0 }.encode(&mut trailer);
    sys::write_all(out.fd, &trailer).map_err(|e| fail(&[b"the image writer stopped reading: ", sys::strerror(e)]))
}

fn chunk_header(area: u32, offset: u64, len: u64) -> [u8; image::CHUNK_SIZE] {
    let mut h = [0u8; image::CHUNK_SIZE];
    Chunk::Data { area, offset, len }.encode(&mut h);
    h
}

fn zero_chunk(area: u32, offset: u64, len: u64) -> [u8; image::CHUNK_SIZE] {
    let mut h = [0u8; image::CHUNK_SIZE];
    Chunk::Zero { area, offset, len }.encode(&mut h);
    h
}

/// A delta's part of an area followed since the last image (`dirty::Area::Inherited`): zero
/// chunks for its pages that became absent, then its written pages.
fn write_ranges(out: &mut Stream, idx: u32, a: &AreaRecord) -> Result<(), Failure> {
    let readable = a.prot & libc::PROT_READ as u32 != 0;
    let mut made_readable = false;
    let r = crate::dirty::ranges_of(idx as usize, |written, s, e| {
        let (s, e) = (s.max(a.start), e.min(a.end));
        if e <= s {
            return Ok(());
        }
        if !written {
            return out.put(&zero_chunk(idx, s - a.start, e - s));
        }
        if !readable && !made_readable {
            // SAFETY: temporarily readable so that we can save it; restored below.
            unsafe {
                libc::mprotect(
                    a.start as usize as *mut c_void,
                    a.len() as usize,
                    (a.prot | libc::PROT_READ as u32) as c_int,
                )
            };
            made_readable = true;
        }
        let mut at = s;
        while at < e {
            let l = (e - at).min(64 << 20);
            out.put(&chunk_header(idx, at - a.start, l))?;
            // SAFETY: [at, at+l) lies inside this anonymous area of this process, readable
            // now, and no other thread runs.
            out.put(unsafe { core::slice::from_raw_parts(at as usize as *const u8, l as usize) })?;
            at += l;
        }
        Ok(())
    });
    if made_readable {
        // SAFETY: back to the area's own protection.
        unsafe { libc::mprotect(a.start as usize as *mut c_void, a.len() as usize, a.prot as c_int) };
    }
    r
}

/// Record `i` of the area table, as the fixed-size buffer `AreaRecord::encode` fills.
fn area_slot(table: &mut [u8], i: usize) -> &mut [u8; AREA_SIZE] {
    let slot = &mut table[i * AREA_SIZE..(i + 1) * AREA_SIZE];
    slot.try_into().expect("an area slot is AREA_SIZE bytes")
}

fn is_zero(p: &[u8]) -> bool {
    let (pre, words, post) = {
        // SAFETY: u64 has no invalid bit patterns; align_to only reinterprets the aligned middle.
        unsafe { p.align_to::<u64>() }
    };
    pre.iter().all(|&b| b == 0) && words.iter().all(|&w| w == 0) && post.iter().all(|&b| b == 0)
}

/// The per-batch buffers of `write_area` (in the scratch mapping).
struct Work {
    entries: &'static mut [u64],
    iov: &'static mut [libc::iovec],
    bytes: &'static mut [u8],
    probe: &'static mut [u8],
}

/// Marks in `keep[..n]` the pages of `[page, page + n * PAGE)` that `pick` selects.
fn pick_pages(pick: Pick, pagemap: c_int, w: &mut Work, page: usize, n: usize, keep: &mut [bool; BATCH]) {
    match pick {
        Pick::All => keep[..n].fill(true),
        Pick::Touched => {
            // SAFETY: u64 slice viewed as bytes for pread.
            let bytes = unsafe { core::slice::from_raw_parts_mut(w.entries.as_mut_ptr().cast::<u8>(), n * 8) };
            let known = matches!(sys::pread(pagemap, bytes, (page / PAGE) as u64 * 8), Ok(k) if k == n * 8);
            for (k, e) in w.entries[..n].iter().enumerate() {
                // present (63) or swapped (62); unknown: every page
                keep[k] = !known || e & (3 << 62) != 0;
            }
        }
        Pick::Resident => {
            // SAFETY: mincore fills n bytes for n pages of a mapped range of ours.
            let r = unsafe { libc::mincore(page as *mut c_void, n * PAGE, w.bytes.as_mut_ptr()) };
            for (k, b) in keep[..n].iter_mut().zip(w.bytes[..n].iter()) {
                *k = r != 0 || b & 1 != 0;
            }
        }
    }
}

/// Clears in `keep[..n]` the pages that cannot be read (a file mapping past the end of its
/// file: reading gives SIGBUS, and writing them to the pipe EFAULT). One process_vm_readv of
/// one byte per page, on ourselves, says how many pages in a row read; the one after them does
/// not.
fn probe_pages(w: &mut Work, page: usize, n: usize, keep: &mut [bool; BATCH]) {
    let pid = sys::getpid();
    let mut from = 0;
    while from < n {
        let mut m = 0;
        let mut idx = [0u16; BATCH];
        for (k, &kept) in keep[..n].iter().enumerate().skip(from) {
            if kept {
                w.iov[m] = libc::iovec { iov_base: (page + k * PAGE) as *mut c_void, iov_len: 1 };
                idx[m] = k as u16;
                m += 1;
            }
        }
        if m == 0 {
            return;
        }
        let local = libc::iovec { iov_base: w.probe.as_mut_ptr().cast(), iov_len: m };
        // SAFETY: reads one byte of each listed page of this process into our probe buffer
        // of m bytes; a page that cannot be read ends the transfer, no signal is raised.
        let got = unsafe { libc::process_vm_readv(pid, &local, 1, w.iov.as_ptr(), m as _, 0) };
        if got < 0 {
            // ESRCH/EPERM cannot be for ourselves; anything else: trust nothing of the batch.
            for k in idx[..m].iter() {
                keep[*k as usize] = false;
            }
            return;
        }
        let got = got as usize;
        if got >= m {
            return;
        }
        let bad = idx[got] as usize;
        keep[bad] = false;
        from = bad + 1;
    }
}

/// Writes the stored pages of one area as chunks of consecutive pages.
fn write_area(
    out: &mut Stream,
    pagemap: c_int,
    mut w: Work,
    idx: u32,
    a: &AreaRecord,
    data: Data,
) -> Result<(), Failure> {
    let w = &mut w;
    let (start, end, prot) = (a.start as usize, a.end as usize, a.prot);
    let readable = prot & libc::PROT_READ as u32 != 0;
    let mut made_readable = false;
    let mut page = start;
    let mut run_start = 0usize;
    let mut run_len = 0usize;
    let flush = |out: &mut Stream, s: usize, l: usize| -> Result<(), Failure> {
        if l == 0 {
            return Ok(());
        }
        out.put(&chunk_header(idx, (s - start) as u64, l as u64))?;
        // SAFETY: [s, s+l) lies inside a mapped area of this process whose pages were probed
        // readable (or are anonymous), and no other thread runs.
        out.put(unsafe { core::slice::from_raw_parts(s as *const u8, l) })
    };
    let mut keep = [false; BATCH];
    let mut result = Ok(());
    while page < end {
        let n = core::cmp::min(BATCH, (end - page) / PAGE);
        pick_pages(data.pick, pagemap, w, page, n, &mut keep);
        if !readable && !made_readable && keep[..n].iter().any(|&k| k) {
            // SAFETY: temporarily readable so that we can save it; restored below.
            unsafe { libc::mprotect(start as *mut c_void, end - start, (prot | libc::PROT_READ as u32) as c_int) };
            made_readable = true;
        }
        if data.probe {
            probe_pages(w, page, n, &mut keep);
        }
        for (k, &kept) in keep[..n].iter().enumerate() {
            let p = page + k * PAGE;
            let mut kept = kept;
            if kept && data.skip_zero {
                // SAFETY: p is a page of this area, readable now (picked and probed).
                kept = !is_zero(unsafe { core::slice::from_raw_parts(p as *const u8, PAGE) });
            }
            if kept {
                if run_len == 0 {
                    run_start = p;
                }
                run_len += PAGE;
                if run_len >= 64 << 20 {
                    result = flush(out, run_start, run_len);
                    run_len = 0;
                }
            } else if run_len > 0 {
                result = flush(out, run_start, run_len);
                run_len = 0;
            }
            if result.is_err() {
                break;
            }
        }
        if result.is_err() {
            break;
        }
        page += n * PAGE;
    }
    if result.is_ok() {
        result = flush(out, run_start, run_len);
    }
    if made_readable {
        // SAFETY: back to the area's own protection.
        unsafe { libc::mprotect(start as *mut c_void, end - start, prot as c_int) };
    }
    result
}

fn thread_record(s: &Slot, pid: i32, rec: &mut [u8; THREAD_SIZE]) {
    let flags = if s.tid == pid { s.flags | image::THREAD_MAIN } else { s.flags };
    ThreadRecord { regs: s.regs, tid: s.tid, flags, tls: s.tls, gs: s.gs, comm: s.comm }.encode(rec);
}

fn fill_header(h: &mut Header, req: &Request, n_areas: usize) {
    let c = crate::config::get();
    h.num_areas = n_areas as u32;
    h.num_threads = req.n_threads as u32 + 1;
    h.pid = sys::getpid();
    h.ppid = sys::getppid();
    // SAFETY: plain system calls without pointers.
    unsafe {
        h.pgid = libc::getpgid(0);
        h.sid = libc::getsid(0);
        h.uid = libc::getuid();
        h.brk = libc::syscall(libc::SYS_brk, 0) as usize as u64;
        h.ckpt_time = libc::time(core::ptr::null_mut()) as u64;
    }
    h.comp_id = req.comp_id;
    h.generation = req.generation;
    h.num_peers = req.num_peers;
    h.vpid = req.vpid;
    h.parent_pid = h.ppid;
    h.is_root = h.ppid == 1;
    h.compressed = c.compress();
    h.num_fds = crate::resources::records() as u32;
    h.clocks = crate::resources::timers::clocks_at_checkpoint();
    // The kernel's mm fields, from /proc/self/stat (fields 26-28 and 45-51).
    let mut stat = [0u8; 2048];
    let n = sys::read_file(c"/proc/self/stat", &mut stat).unwrap_or(0);
    let after = stat[..n].iter().rposition(|&b| b == b')').map(|i| &stat[i + 2..n]).unwrap_or(b"");
    let field = |k: usize| -> u64 {
        after.split(|&b| b == b' ').nth(k - 3).and_then(|f| crate::cstr::parse_u64(f.trim_ascii_end())).unwrap_or(0)
    };
    let mm = [field(26), field(27), field(45), field(46), field(28), field(48), field(49), field(50), field(51)];
    h.mm[..mm.len()].copy_from_slice(&mm);
    h.start_brk = field(47);
    let an = sys::read_file(c"/proc/self/auxv", &mut h.auxv).unwrap_or(0);
    h.auxv_len = an as u32;
    h.progname.set(c.progname.bytes());
    let mut buf = [0u8; hdr::PATH_LEN];
    if let Ok(k) = sys::readlink(c"/proc/self/exe", &mut buf) {
        h.exe.set(&buf[..core::cmp::min(k, hdr::PATH_LEN - 1)]);
    }
    crate::resources::process::with_saved_cwd(|cwd| h.cwd.set(cwd));
    h.hostname.set(c.hostname.bytes());
    let mut ns = [0u8; 64];
    if let Ok(k) = sys::readlink(c"/proc/self/ns/pid", &mut ns) {
        // "pid:[4026531836]"
        let digits: &[u8] = ns[..k].split(|&b| b == b'[' || b == b']').nth(1).unwrap_or(b"");
        h.pidns = crate::cstr::parse_u64(digits).unwrap_or(0);
    }
}
