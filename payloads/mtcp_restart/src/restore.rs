//! The restore itself (see the crate documentation for the order of steps). Everything here runs
//! in the process that becomes the program, with no libc and no allocation; scratch memory is
//! mapped inside the restorer's own address range.
use crate::arch::{self, ARCH, RESTORER_BASE};
use crate::out::Out;
use crate::sys::{self, *};
use crate::{Args, Region};
use core::sync::atomic::{AtomicIsize, AtomicUsize, Ordering::Relaxed};
use dmtcp_proto::image::{self, AreaRecord, Chunk, Header, ImageError, ThreadRecord, AREA_SIZE, HEADER_SIZE, THREAD_SIZE};

const PAGE: usize = 4096;
const SPAN: usize = dmtcp_proto::RESTORER_SPAN as usize;
/// Where the header and tables are kept (inside our range, after the binary).
const SCRATCH: usize = RESTORER_BASE + 0x0100_0000;
const SCRATCH_MAX: usize = 0x0200_0000;
/// Where the kernel's vdso and vvar wait while they move (inside our range).
const PARK: usize = RESTORER_BASE + 0x0300_0000;

/// The process-wide state of the restore, in .bss so that it survives the unmapping.
#[allow(unsafe_code)]
static mut MAPS_BUF: [u8; 65536] = [0; 65536];

struct Ctx {
    err: usize,
    fd: usize,
    header: Header,
    areas: &'static [u8],
    threads: &'static [u8],
    /// Where the tables of an older image of the chain go (after this image's tables).
    spare: usize,
    /// Older images of the chain were applied (zero chunks of this image then matter).
    chained: bool,
}

/// A buffer for the bytes of an older image that no area of the newest takes.
const DISCARD: usize = RESTORER_BASE + 0x0380_0000;
const DISCARD_LEN: usize = 1 << 20;

/// Where a failure is told (`--fail-fd`: the write end of the group's record pipe of
/// `dmtcp_restart`), and which processes go down with it (`--fail-kill`: -1, every process of
/// the restart's pid namespace, or the pid of the group's init without one; 0 none). Set once
/// by `run`, before anything can fail, and forgotten once the fds are closed.
static FAIL_FD: AtomicUsize = AtomicUsize::new(usize::MAX);
static FAIL_KILL: AtomicIsize = AtomicIsize::new(0);

/// The tag of a failure in `dmtcp_restart`'s record pipe (`common::ns::record::FAILED`).
const RECORD_FAILED: u32 = 4;

/// Ends a restore that cannot go on, so that `dmtcp_restart` learns of it instead of waiting
/// for a process that will never join: the failure record goes into its pipe, the processes of
/// the restart are killed (their peers would wait for this one forever; the group's init then
/// reports and `dmtcp_restart` exits non-zero), then this process exits with `code`. The
/// message itself was written before, on the error fd (`dmtcp_restart`'s own stderr).
pub fn fail(code: usize) -> ! {
    let fd = FAIL_FD.load(Relaxed);
    if fd != usize::MAX {
        let mut rec = [0u8; 8];
        rec[..4].copy_from_slice(&RECORD_FAILED.to_le_bytes());
        rec[4..].copy_from_slice(&(code as u32).to_le_bytes());
        let _ = sys::write(fd, &rec);
    }
    let kill = FAIL_KILL.load(Relaxed);
    if kill != 0 {
        let _ = sys::kill(kill, SIGKILL);
    }
    sys::exit(code)
}

fn die(err: usize, what: &str) -> ! {
    Out::new(err).s("mtcp_restart: ").s(what).s("\n");
    fail(3)
}

fn die_errno(err: usize, what: &str, e: Errno) -> ! {
    Out::new(err).s("mtcp_restart: ").s(what).s(" (errno ").dec(e.0 as u64).s(")\n");
    fail(3)
}

fn read_exact(fd: usize, mut p: *mut u8, mut len: usize) -> Result<(), Errno> {
    while len > 0 {
        match sys::read(fd, p, len) {
            Ok(0) => return Err(Errno(0)),
            Ok(n) => {
                // SAFETY-free pointer arithmetic: `wrapping_add` stays within the caller's range.
                p = p.wrapping_add(n);
                len -= n;
            }
            Err(Errno(4)) => continue, // EINTR
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn page_up(x: usize) -> usize {
    (x + PAGE - 1) & !(PAGE - 1)
}

/// A mapping of this process, from /proc/self/maps.
#[derive(Clone, Copy)]
struct Map {
    start: usize,
    end: usize,
    kind: MapKind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MapKind {
    Other,
    Vdso,
    Vvar,
    Vclock,
    Vsyscall,
}

fn parse_hex(s: &[u8]) -> usize {
    let mut v = 0usize;
    for &c in s {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => break,
        };
        v = (v << 4) | d as usize;
    }
    v
}

/// Reads our own mappings into `out`, returns how many.
fn own_maps(err: usize, out: &mut [Map; 64]) -> usize {
    let fd =
        sys::open(b"/proc/self/maps\0", O_RDONLY).unwrap_or_else(|e| die_errno(err, "cannot open /proc/self/maps", e));
    // SAFETY: single-threaded at this point; the buffer is only used here.
    #[allow(unsafe_code)]
    let buf: &mut [u8; 65536] = unsafe { &mut *core::ptr::addr_of_mut!(MAPS_BUF) };
    let mut len = 0;
    loop {
        match sys::read(fd, buf[len..].as_mut_ptr(), buf.len() - len) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(Errno(4)) => continue,
            Err(e) => die_errno(err, "cannot read /proc/self/maps", e),
        }
        if len == buf.len() {
            die(err, "/proc/self/maps of the restorer is unexpectedly large");
        }
    }
    let _ = sys::close(fd);
    let mut n = 0;
    for line in buf[..len].split(|&c| c == b'\n') {
        if line.is_empty() {
            continue;
        }
        let dash = line.iter().position(|&c| c == b'-').unwrap_or(0);
        let start = parse_hex(&line[..dash]);
        let end = parse_hex(&line[dash + 1..]);
        let name = line.rsplit(|&c| c == b' ').next().unwrap_or(b"");
        let kind = match name {
            b"[vdso]" => MapKind::Vdso,
            b"[vvar]" => MapKind::Vvar,
            b"[vvar_vclock]" => MapKind::Vclock,
            b"[vsyscall]" => MapKind::Vsyscall,
            _ => MapKind::Other,
        };
        if n == out.len() {
            die(err, "the restorer has too many mappings");
        }
        out[n] = Map { start, end, kind };
        n += 1;
    }
    n
}

fn ours(start: usize, end: usize) -> bool {
    start >= RESTORER_BASE && end <= RESTORER_BASE + SPAN
}

/// Area `i`, decoded from the table (`check_tables` decoded every one already).
fn area_rec(c: &Ctx, i: usize) -> AreaRecord {
    AreaRecord::decode(&c.areas[i * AREA_SIZE..(i + 1) * AREA_SIZE]).unwrap_or_else(|e| die_image(c.err, e))
}

/// Thread record `t` of the table, decoded.
fn thread_rec(c: &Ctx, t: &[u8]) -> ThreadRecord {
    ThreadRecord::decode(t).unwrap_or_else(|e| die_image(c.err, e))
}

/// Dies with the format's own words for what is wrong with the image.
fn die_image(err: usize, e: ImageError) -> ! {
    let mut msg = [0u8; 160];
    let mut w = Buf { b: &mut msg, n: 0 };
    let _ = core::fmt::write(&mut w, format_args!("{e}"));
    let n = w.n;
    Out::new(err).s("mtcp_restart: ").b(&msg[..n]).s("\n");
    fail(3)
}

pub fn run(args: Args) -> ! {
    let err = args.err_fd;
    FAIL_FD.store(args.fail_fd, Relaxed);
    FAIL_KILL.store(args.fail_kill, Relaxed);
    sys::block_all_signals();

    // 1. Header and tables.
    let hdr_buf = sys::mmap(
        SCRATCH,
        PAGE,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
        usize::MAX,
        0,
    )
    .unwrap_or_else(|e| die_errno(err, "cannot map scratch memory", e));
    read_exact(args.image_fd, hdr_buf as *mut u8, HEADER_SIZE)
        .unwrap_or_else(|_| die(err, "image is truncated (no header)"));
    // SAFETY: the page at SCRATCH was just mapped read-write and stays mapped.
    #[allow(unsafe_code)]
    let raw: &'static [u8] = unsafe { core::slice::from_raw_parts(hdr_buf as *const u8, HEADER_SIZE) };
    let header = Header::decode(raw).unwrap_or_else(|e| die_image(err, e));
    if header.arch != ARCH {
        Out::new(err)
            .s("mtcp_restart: this restorer is for ")
            .s(ARCH.name())
            .s(" but the image is ")
            .s(header.arch.name())
            .s("\n");
        fail(3)
    }
    let tables = header.tables_len();
    if PAGE + tables > SCRATCH_MAX {
        die(err, "image has too many areas or threads for this restorer");
    }
    let tab = SCRATCH + PAGE;
    if tables > 0 {
        sys::mmap(
            tab,
            page_up(tables),
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
            usize::MAX,
            0,
        )
        .unwrap_or_else(|e| die_errno(err, "cannot map scratch memory", e));
        read_exact(args.image_fd, tab as *mut u8, tables).unwrap_or_else(|_| die(err, "image is truncated (tables)"));
    }
    let n_areas = header.num_areas as usize;
    let n_threads = header.num_threads as usize;
    // SAFETY: `tables` bytes at `tab` were mapped and filled above and stay mapped.
    #[allow(unsafe_code)]
    let all: &'static [u8] = unsafe { core::slice::from_raw_parts(tab as *const u8, tables) };
    let c = Ctx {
        err,
        fd: args.image_fd,
        header,
        areas: &all[..n_areas * AREA_SIZE],
        // The fd table after it is dmtcp_restart's (it has put the pipes in place already).
        threads: &all[n_areas * AREA_SIZE..n_areas * AREA_SIZE + n_threads * THREAD_SIZE],
        spare: tab + page_up(tables),
        chained: args.n_bases > 0,
    };
    check_tables(&c);

    // 2. Clear the address space and put the vdso where the program had it.
    let mut maps = [Map { start: 0, end: 0, kind: MapKind::Other }; 64];
    let n = own_maps(err, &mut maps);
    for m in &maps[..n] {
        if m.kind == MapKind::Other && !ours(m.start, m.end) {
            let _ = sys::munmap(m.start, m.end - m.start);
        }
    }
    move_vdso(&c, &maps[..n]);

    // 3. Memory.
    map_areas(&c, &args.regions[..args.n_regions]);
    for r in &args.regions[..args.n_regions] {
        let _ = sys::close(r.fd);
    }
    // An incremental chain: the older images' pages first, oldest first (see `apply_older`).
    for &fd in &args.bases[..args.n_bases] {
        apply_older(&c, fd);
    }
    read_data(&c);
    protect_areas(&c);
    set_mm(&c);
    let _ = sys::close(c.fd);

    // 4. Threads, then this one as the main thread. The error and failure fds are
    // dmtcp_restart's, not the program's: closed before any thread of the program runs (its
    // checkpoint thread makes fds as it restores). What still fails reports on fd 2.
    let pid = sys::getpid() as i32;
    for raw in c.threads.chunks_exact(THREAD_SIZE) {
        let t = thread_rec(&c, raw);
        if t.is_main() && t.tid != pid {
            Out::new(c.err).s("mtcp_restart: warning: restored without its old pid ").dec(t.tid as u64).s("\n");
        }
    }
    if args.fail_fd != usize::MAX {
        FAIL_FD.store(usize::MAX, Relaxed);
        let _ = sys::close(args.fail_fd);
    }
    if c.err != 2 {
        let _ = sys::close(c.err);
    }
    start_threads(&Ctx { err: 2, ..c })
}

struct Buf<'a> {
    b: &'a mut [u8],
    n: usize,
}

impl core::fmt::Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let k = core::cmp::min(s.len(), self.b.len() - self.n);
        self.b[self.n..self.n + k].copy_from_slice(&s.as_bytes()[..k]);
        self.n += k;
        Ok(())
    }
}

fn check_tables(c: &Ctx) {
    let n_areas = c.areas.len() / AREA_SIZE;
    for i in 0..n_areas {
        let a = area_rec(c, i);
        let (s, e) = (a.start as usize, a.end as usize);
        if a.end as usize as u64 != a.end {
            die(c.err, "image is corrupt (an area beyond this architecture's addresses)");
        }
        if s < RESTORER_BASE + SPAN && e > RESTORER_BASE {
            Out::new(c.err)
                .s("mtcp_restart: the program had memory at ")
                .hex(s as u64)
                .s("-")
                .hex(e as u64)
                .s(", inside the range this restorer occupies; it cannot be restored\n");
            fail(3);
        }
    }
    let mut mains = 0;
    for t in c.threads.chunks_exact(THREAD_SIZE) {
        if thread_rec(c, t).is_main() {
            mains += 1;
        }
    }
    if mains != 1 {
        die(c.err, "image has no main thread (the program's first thread had exited); not supported");
    }
}

fn move_vdso(c: &Ctx, maps: &[Map]) {
    let h = &c.header;
    let pairs = [(MapKind::Vvar, h.vvar), (MapKind::Vclock, h.vclock), (MapKind::Vdso, h.vdso)];
    if h.vdso.start == 0 {
        return; // The program had no vdso; leave ours where the kernel put it.
    }
    let mut park = PARK;
    let mut parked = [(0usize, 0usize); 3];
    for (i, (kind, span)) in pairs.iter().enumerate() {
        let want = (span.start as usize, span.end as usize);
        let cur = maps.iter().find(|m| m.kind == *kind);
        match cur {
            None if want.0 == 0 => continue,
            Some(m) if want.0 != 0 && m.end - m.start == want.1 - want.0 => {
                let len = m.end - m.start;
                sys::mremap_fixed(m.start, len, park).unwrap_or_else(|e| die_errno(c.err, "cannot move the vdso", e));
                parked[i] = (park, len);
                park += len + PAGE;
            }
            _ => die(
                c.err,
                "the kernel's vdso/vvar layout differs from the one at checkpoint time (a different kernel); cannot restart here",
            ),
        }
    }
    for (i, (_, span)) in pairs.iter().enumerate() {
        let (from, len) = parked[i];
        if len == 0 {
            continue;
        }
        let to = span.start as usize;
        sys::mremap_fixed(from, len, to)
            .unwrap_or_else(|e| die_errno(c.err, "cannot move the vdso to its old place", e));
    }
}

/// The protection an area is mapped with while its data is read in: writable where the
/// program could read or write it (and a shared object may be written), its own otherwise (a
/// PROT_NONE reservation stays PROT_NONE: no memory is committed for it; a chunk that goes into
/// such an area makes just that range writable for the time of the read, see `read_data`).
fn map_prot(a: &AreaRecord) -> usize {
    let prot = a.prot as usize;
    if a.is_shared() && !a.is_shm() && !a.has_vm(image::area::AREA_VM_MAYWRITE) {
        // A shared file mapping opened read-only: the kernel refuses PROT_WRITE.
        return prot;
    }
    if a.is_shm() || prot & (PROT_READ | PROT_WRITE) != 0 {
        prot | PROT_READ | PROT_WRITE
    } else {
        prot
    }
}

/// The memfd `dmtcp_restart` made for the shared object (dev, inode) (`--region`).
fn region_fd(regions: &[Region], dev: u64, inode: u64) -> Option<usize> {
    regions.iter().find(|r| r.dev == dev && r.inode == inode).map(|r| r.fd)
}

fn map_areas(c: &Ctx, regions: &[Region]) {
    let mut path = [0u8; image::area::NAME_LEN + 1];
    for i in 0..c.areas.len() / AREA_SIZE {
        let a = area_rec(c, i);
        let start = a.start as usize;
        let len = a.len() as usize;
        let flags = a.flags;
        let name = a.name.as_bytes();
        let mprot = map_prot(&a);
        path[..name.len()].copy_from_slice(name);
        path[name.len()] = 0;
        let result = if a.is_shm() {
            // Shared memory only the kernel held: the memfd made once for every process.
            match region_fd(regions, a.dev, a.inode) {
                Some(fd) => sys::mmap(start, len, mprot, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, a.offset),
                None => {
                    Out::new(c.err)
                        .s("mtcp_restart: no memory object was made for the shared mapping ")
                        .hex(start as u64)
                        .s("-")
                        .hex((start + len) as u64)
                        .s(" ")
                        .b(name)
                        .s(" (run by dmtcp_restart)\n");
                    fail(3)
                }
            }
        } else if a.is_shared() {
            // Shared file mapping: map the file shared again; it keeps writing to its file.
            let oflags = if a.has_vm(image::area::AREA_VM_MAYWRITE) || a.prot as usize & PROT_WRITE != 0 {
                O_RDWR
            } else {
                O_RDONLY
            };
            let mut opened = sys::open(&path[..=name.len()], oflags);
            if opened == Err(Errno(ENOENT)) && oflags == O_RDWR && name.starts_with(b"/dev/shm/") {
                opened = recreate_backing(c, &path[..=name.len()], a.offset + a.len());
            }
            match opened {
                Ok(fd) => {
                    let r = sys::mmap(start, len, mprot, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, a.offset);
                    let _ = sys::close(fd);
                    r
                }
                Err(e) => {
                    Out::new(c.err).s("mtcp_restart: cannot reopen shared mapping of ").b(name).s(" (errno ").dec(e.0 as u64).s(")\n");
                    die_errno(c.err, "open failed", e)
                }
            }
        } else {
            let mut extra = 0;
            if a.vm_known() {
                if a.has_vm(image::area::AREA_VM_GROWSDOWN) {
                    extra |= MAP_GROWSDOWN;
                }
                // A reservation made without commitment comes back without it (a 64 GiB
                // MAP_NORESERVE heap on a machine with less memory).
                if a.has_vm(image::area::AREA_VM_NORESERVE) {
                    extra |= MAP_NORESERVE;
                }
            } else if flags & image::AREA_STACK != 0 {
                extra |= MAP_GROWSDOWN;
            }
            let mut r = Err(Errno(0));
            if flags & image::AREA_FILE != 0 && !name.is_empty() {
                // Map the file privately so the mapping keeps its name; the stored pages go on top.
                if let Ok(fd) = sys::open(&path[..=name.len()], O_RDONLY) {
                    r = sys::mmap(start, len, mprot, MAP_PRIVATE | MAP_FIXED_NOREPLACE | (extra & MAP_NORESERVE), fd, a.offset);
                    let _ = sys::close(fd);
                }
            }
            if r.is_err() {
                if a.has_vm(image::area::AREA_VM_HUGETLB) {
                    extra |= MAP_HUGETLB
                        | if a.has_vm(image::area::AREA_VM_HUGE_1G) { MAP_HUGE_1GB } else { MAP_HUGE_2MB };
                }
                r = sys::mmap(start, len, mprot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | extra, usize::MAX, 0);
                if r.is_err() && extra & MAP_HUGETLB != 0 {
                    Out::new(c.err)
                        .s("mtcp_restart: cannot map the huge-page area ")
                        .hex(start as u64)
                        .s("-")
                        .hex((start + len) as u64)
                        .s(" (MAP_HUGETLB: are huge pages reserved here, vm.nr_hugepages?)\n");
                }
            }
            r
        };
        match result {
            Ok(got) if got == start => {}
            Ok(_) => die(c.err, "the kernel placed an area elsewhere than asked"),
            Err(e) => {
                Out::new(c.err)
                    .s("mtcp_restart: cannot map ")
                    .hex(start as u64)
                    .s("-")
                    .hex((start + len) as u64)
                    .s(" ")
                    .b(name)
                    .s("\n");
                die_errno(c.err, "mmap failed", e)
            }
        }
    }
}

/// The mode a recreated /dev/shm backing file gets (the image does not record the file's own;
/// owner-only, as Open MPI and most programs create theirs).
const BACKING_MODE: u32 = 0o600;

/// Makes again a /dev/shm file that backed a writable MAP_SHARED area and is gone (mpirun
/// removes its ranks' segment files when it is killed): created with O_EXCL (another process
/// of the restart that maps it too may have made it first: then that one is opened), grown to
/// `size` (at least the area's end in the file) with fallocate, or ftruncate where the file
/// system cannot allocate. The image's pages then fill it like any shared file mapping: the
/// elected process's image holds the resident pages of a writable tmpfs mapping, and a page
/// it did not hold was a hole (zeros). The processes wait at the RESTART barrier before any
/// runs, so none sees the file before it is filled.
fn recreate_backing(c: &Ctx, path: &[u8], size: u64) -> Result<usize, Errno> {
    let fd = match sys::create_excl(path, BACKING_MODE) {
        Ok(fd) => fd,
        Err(Errno(EEXIST)) => {
            // Made by another restorer a moment ago: it may not have grown it yet, and this
            // process may be the one whose image fills it (fallocate never shrinks a file).
            let fd = sys::open(path, O_RDWR)?;
            let _ = sys::fallocate(fd, size);
            return Ok(fd);
        }
        Err(e) => return Err(e),
    };
    let _ = sys::fchmod(fd, BACKING_MODE);
    if sys::fallocate(fd, size).is_err() {
        if let Err(e) = sys::ftruncate(fd, size) {
            let _ = sys::close(fd);
            return Err(e);
        }
    }
    Out::new(c.err).s("mtcp_restart: note: recreated the missing shared memory file ").b(&path[..path.len() - 1]).s("\n");
    Ok(fd)
}

fn read_data(c: &Ctx) {
    let n_areas = c.areas.len() / AREA_SIZE;
    let mut h = [0u8; image::CHUNK_SIZE];
    loop {
        read_exact(c.fd, h.as_mut_ptr(), h.len()).unwrap_or_else(|_| die(c.err, "image is truncated (memory data)"));
        let (idx, off, len) = match Chunk::decode(&h).unwrap_or_else(|e| die_image(c.err, e)) {
            Chunk::End => break,
            Chunk::Data { area, offset, len } => (area as usize, offset, len),
            Chunk::Zero { area, offset, len } => {
                if (area as usize) >= n_areas {
                    die(c.err, "image is corrupt (chunk names no area)");
                }
                let a = area_rec(c, area as usize);
                if !Chunk::fits(offset, len, a.len()) || !restored_anonymous(&a) {
                    die(c.err, "image is corrupt (zero chunk outside private memory)");
                }
                // A fresh mapping is zeros already; over older images' pages it is not.
                if c.chained {
                    zero_range(c, (a.start + offset) as usize, len as usize);
                }
                continue;
            }
        };
        if idx >= n_areas {
            die(c.err, "image is corrupt (chunk names no area)");
        }
        let a = area_rec(c, idx);
        if !Chunk::fits(off, len, a.len()) || (a.is_shared() && map_prot(&a) & PROT_WRITE == 0) {
            die(c.err, "image is corrupt (chunk outside its area)");
        }
        let at = (a.start + off) as usize;
        if map_prot(&a) & PROT_WRITE == 0 {
            // Saved data in an area the program cannot write (a PROT_NONE area of a file, as
            // emacs's dump has): writable for the read; `protect_areas` puts its protection back.
            if let Err(e) = sys::mprotect(at, len as usize, PROT_READ | PROT_WRITE) {
                fill_failed(c, &a, e);
            }
        }
        match read_exact(c.fd, at as *mut u8, len as usize) {
            Ok(()) => {}
            Err(Errno(0)) => die(c.err, "image is truncated (memory data)"),
            Err(e) => fill_failed(c, &a, e),
        }
    }
    let mut t = [0u8; image::TRAILER_SIZE];
    let _ = read_exact(c.fd, t.as_mut_ptr(), t.len());
}

/// Whether the restorer maps `a` as private anonymous memory: where a delta's zero chunks and
/// older images' pages go (the writer's `dirty::restored_anonymous`).
fn restored_anonymous(a: &AreaRecord) -> bool {
    !a.is_shared() && a.flags & image::AREA_FILE == 0
}

/// Makes `[at, at + len)` of a private anonymous area read as zeros.
fn zero_range(c: &Ctx, at: usize, len: usize) {
    if sys::madvise(at, len, MADV_DONTNEED).is_ok() {
        return;
    }
    // (A huge-page area not aligned to its pages, say): write the zeros.
    if let Err(e) = sys::mprotect(at, len, PROT_READ | PROT_WRITE) {
        die_errno(c.err, "cannot clear memory of an incremental image", e);
    }
    let mut p = at;
    while p < at + len {
        #[allow(unsafe_code)]
        // SAFETY: [at, at + len) lies in one of the areas mapped by `map_areas`, writable now.
        unsafe {
            core::ptr::write_volatile(p as *mut u64, 0)
        };
        p += 8;
    }
}

/// The first area of the newest image whose end lies above `addr` (areas are in address order).
fn first_area_after(c: &Ctx, addr: u64) -> usize {
    let (mut lo, mut hi) = (0usize, c.areas.len() / AREA_SIZE);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if area_rec(c, mid).end <= addr {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Reads and drops `len` bytes of `fd`.
fn discard(c: &Ctx, fd: usize, mut len: usize) {
    while len > 0 {
        let k = len.min(DISCARD_LEN);
        read_exact(fd, DISCARD as *mut u8, k).unwrap_or_else(|_| die(c.err, "an older image of the chain is truncated"));
        len -= k;
    }
}

/// Applies an older image of an incremental chain (`dmtcp_proto::image::chain`): its data and
/// zero chunks land where they fall inside private anonymous areas of the newest image; the
/// rest of its bytes is read past. Its own area table only says where its chunks belong.
fn apply_older(c: &Ctx, fd: usize) {
    let hdr_at = c.spare;
    if hdr_at + PAGE > SCRATCH + SCRATCH_MAX {
        die(c.err, "the images of the chain have too many areas for this restorer");
    }
    sys::mmap(hdr_at, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, usize::MAX, 0)
        .unwrap_or_else(|e| die_errno(c.err, "cannot map scratch memory", e));
    // (EEXIST: mapped already for an earlier image of the chain.)
    let _ = sys::mmap(DISCARD, DISCARD_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, usize::MAX, 0);
    read_exact(fd, hdr_at as *mut u8, HEADER_SIZE).unwrap_or_else(|_| die(c.err, "an older image of the chain is truncated (no header)"));
    // SAFETY: the page at hdr_at was just mapped read-write and filled.
    #[allow(unsafe_code)]
    let raw: &[u8] = unsafe { core::slice::from_raw_parts(hdr_at as *const u8, HEADER_SIZE) };
    let h = Header::decode(raw).unwrap_or_else(|e| die_image(c.err, e));
    if h.arch != ARCH {
        die(c.err, "an older image of the chain is of another architecture");
    }
    let tables = h.tables_len();
    let tab = hdr_at + PAGE;
    if tab + page_up(tables) > SCRATCH + SCRATCH_MAX {
        die(c.err, "the images of the chain have too many areas for this restorer");
    }
    if tables > 0 {
        sys::mmap(tab, page_up(tables), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, usize::MAX, 0)
            .unwrap_or_else(|e| die_errno(c.err, "cannot map scratch memory", e));
        read_exact(fd, tab as *mut u8, tables).unwrap_or_else(|_| die(c.err, "an older image of the chain is truncated (tables)"));
    }
    let n_old = h.num_areas as usize;
    // SAFETY: `tables` bytes at `tab` were mapped and filled above.
    #[allow(unsafe_code)]
    let old: &[u8] = unsafe { core::slice::from_raw_parts(tab as *const u8, n_old * AREA_SIZE) };
    let n_new = c.areas.len() / AREA_SIZE;
    let mut hb = [0u8; image::CHUNK_SIZE];
    loop {
        read_exact(fd, hb.as_mut_ptr(), hb.len()).unwrap_or_else(|_| die(c.err, "an older image of the chain is truncated (memory data)"));
        let (idx, off, len, data) = match Chunk::decode(&hb).unwrap_or_else(|e| die_image(c.err, e)) {
            Chunk::End => break,
            Chunk::Data { area, offset, len } => (area as usize, offset, len, true),
            Chunk::Zero { area, offset, len } => (area as usize, offset, len, false),
        };
        if idx >= n_old {
            die(c.err, "an older image of the chain is corrupt (chunk names no area)");
        }
        let oa = AreaRecord::decode(&old[idx * AREA_SIZE..(idx + 1) * AREA_SIZE]).unwrap_or_else(|e| die_image(c.err, e));
        if !Chunk::fits(off, len, oa.len()) {
            die(c.err, "an older image of the chain is corrupt (chunk outside its area)");
        }
        let (start, end) = (oa.start + off, oa.start + off + len);
        let mut pos = start;
        let mut i = first_area_after(c, pos);
        while pos < end {
            let a = if i < n_new { Some(area_rec(c, i)) } else { None };
            let (lo, hi) = match a {
                Some(a) if a.start < end => (a.start.max(pos), a.end.min(end)),
                _ => (end, end),
            };
            if lo > pos && data {
                discard(c, fd, (lo - pos) as usize);
            }
            pos = lo;
            if hi > lo {
                let a = a.expect("an area");
                let n = (hi - lo) as usize;
                if !restored_anonymous(&a) {
                    if data {
                        discard(c, fd, n);
                    }
                } else if data {
                    if map_prot(&a) & PROT_WRITE == 0 {
                        if let Err(e) = sys::mprotect(lo as usize, n, PROT_READ | PROT_WRITE) {
                            fill_failed(c, &a, e);
                        }
                    }
                    match read_exact(fd, lo as usize as *mut u8, n) {
                        Ok(()) => {}
                        Err(Errno(0)) => die(c.err, "an older image of the chain is truncated (memory data)"),
                        Err(e) => fill_failed(c, &a, e),
                    }
                } else {
                    zero_range(c, lo as usize, n);
                }
                pos = hi;
            }
            i += 1;
        }
    }
    let mut t = [0u8; image::TRAILER_SIZE];
    let _ = read_exact(fd, t.as_mut_ptr(), t.len());
    let _ = sys::close(fd);
    let _ = sys::munmap(hdr_at, PAGE + page_up(tables));
}

/// The saved pages of `a` cannot go back into it (EFAULT: its file is now shorter than at the
/// checkpoint, say).
fn fill_failed(c: &Ctx, a: &AreaRecord, e: Errno) -> ! {
    Out::new(c.err)
        .s("mtcp_restart: cannot put the saved pages back into ")
        .hex(a.start)
        .s("-")
        .hex(a.end)
        .s(" ")
        .b(a.name.as_bytes())
        .s(if e.0 == EFAULT { " (the memory cannot be written: is its file shorter than at checkpoint?)" } else { "" })
        .s("\n");
    die_errno(c.err, "read of the image failed", e)
}

/// Every area gets its own protection back, then the kernel flags the image recorded
/// (madvise settings, mlock). A setting the kernel refuses here is a warning, not a failure.
fn protect_areas(c: &Ctx) {
    for i in 0..c.areas.len() / AREA_SIZE {
        let a = area_rec(c, i);
        let start = a.start as usize;
        let len = a.len() as usize;
        let _ = sys::mprotect(start, len, a.prot as usize);
        if !a.vm_known() {
            continue;
        }
        let advice = [
            (image::area::AREA_VM_DONTFORK, MADV_DONTFORK, "MADV_DONTFORK"),
            (image::area::AREA_VM_WIPEONFORK, MADV_WIPEONFORK, "MADV_WIPEONFORK"),
            (image::area::AREA_VM_DONTDUMP, MADV_DONTDUMP, "MADV_DONTDUMP"),
            (image::area::AREA_VM_HUGEPAGE, MADV_HUGEPAGE, "MADV_HUGEPAGE"),
            (image::area::AREA_VM_NOHUGEPAGE, MADV_NOHUGEPAGE, "MADV_NOHUGEPAGE"),
        ];
        for (bit, adv, what) in advice {
            if a.has_vm(bit) {
                if let Err(e) = sys::madvise(start, len, adv) {
                    warn_area(c, &a, what, e);
                }
            }
        }
        if a.has_vm(image::area::AREA_VM_LOCKED) {
            let f = if a.has_vm(image::area::AREA_VM_LOCKONFAULT) { MLOCK_ONFAULT } else { 0 };
            if let Err(e) = sys::mlock2(start, len, f) {
                warn_area(c, &a, "mlock", e);
            }
        }
    }
}

fn warn_area(c: &Ctx, a: &AreaRecord, what: &str, e: Errno) {
    Out::new(c.err)
        .s("mtcp_restart: warning: ")
        .s(what)
        .s(" of ")
        .hex(a.start)
        .s("-")
        .hex(a.end)
        .s(" ")
        .b(a.name.as_bytes())
        .s(" failed (errno ")
        .dec(e.0 as u64)
        .s(")\n");
}

/// Gives the kernel the program's brk, code, data, argument and auxv addresses, so that brk()
/// extends the program's heap and /proc shows its command line (PR_SET_MM_MAP needs no
/// privilege). A failure is reported but not fatal: malloc falls back to mmap.
fn set_mm(c: &Ctx) {
    const PR_SET_MM: usize = 35;
    const PR_SET_MM_MAP: usize = 14;
    let h = &c.header;
    let mm = |k: usize| h.mm[k];
    if mm(0) == 0 {
        return;
    }
    let auxv = h.auxv();
    let auxv_len = auxv.len();
    // struct prctl_mm_map: eleven u64 addresses, u64 auxv pointer, u32 auxv_size, u32 exe_fd.
    let mut map = [0u64; 13];
    map[0] = mm(0); // start_code
    map[1] = mm(1); // end_code
    map[2] = mm(2); // start_data
    map[3] = mm(3); // end_data
    map[4] = h.start_brk;
    map[5] = h.brk;
    map[6] = mm(4); // start_stack
    map[7] = mm(5); // arg_start
    map[8] = mm(6); // arg_end
    map[9] = mm(7); // env_start
    map[10] = mm(8); // env_end
    map[11] = if auxv_len > 0 { auxv.as_ptr() as usize as u64 } else { 0 };
    map[12] = (auxv_len as u64) | (u64::from(u32::MAX) << 32); // auxv_size, exe_fd = -1
    if let Err(e) = sys::prctl(PR_SET_MM, PR_SET_MM_MAP, map.as_ptr() as usize, core::mem::size_of_val(&map), 0) {
        Out::new(c.err)
            .s("mtcp_restart: warning: cannot restore the program's brk and mm fields (errno ")
            .dec(e.0 as u64)
            .s("); its heap continues in new memory\n");
    }
}

/// What a new thread needs: its record, and whether it may keep the tid it got.
fn start_threads(c: &Ctx) -> ! {
    const CLONE_VM: u64 = 0x100;
    const CLONE_FS: u64 = 0x200;
    const CLONE_FILES: u64 = 0x400;
    const CLONE_SIGHAND: u64 = 0x800;
    const CLONE_THREAD: u64 = 0x10000;
    const CLONE_SYSVSEM: u64 = 0x40000;
    const CLONE_SETTLS: u64 = 0x80000;
    let pid = sys::getpid() as i32;
    let mut main = None;
    let mut warned = false;
    for raw in c.threads.chunks_exact(THREAD_SIZE) {
        let t = thread_rec(c, raw);
        let tid = t.tid;
        if t.is_main() {
            if tid != pid {
                // Told by `run`; the other threads' ids then cannot be the old ones either.
                warned = true;
            }
            main = Some(t);
            continue;
        }
        // Start the thread on its own stack, below the point where it stopped.
        let sp = t.regs[SP_SLOT] as usize;
        let top = (sp - 512) & !15;
        let set_tid = [tid, 0];
        let mut args = [0u64; 11];
        args[0] = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS;
        args[5] = (top - 4096) as u64; // stack
        args[6] = 4096; // stack_size
        args[7] = arch::clone_tls(&t);
        args[8] = set_tid.as_ptr() as usize as u64;
        args[9] = 1;
        // SAFETY: `args` is a complete clone_args; the stack is the thread's own restored stack
        // below its saved sp, unused; the record `t` lives in scratch until the library unmaps
        // our range after every thread is back.
        #[allow(unsafe_code)]
        let mut r = unsafe { arch::clone3_thread(args.as_ptr(), 88, raw.as_ptr() as usize) };
        if r < 0 && (r == -(EPERM as isize) || r == -22 || r == -(EEXIST as isize)) {
            if !warned {
                Out::new(c.err)
                    .s("mtcp_restart: warning: cannot give threads their old ids (errno ")
                    .dec((-r) as u64)
                    .s(")\n");
                warned = true;
            }
            args[8] = 0;
            args[9] = 0;
            #[allow(unsafe_code)]
            {
                // SAFETY: as above, without set_tid.
                r = unsafe { arch::clone3_thread(args.as_ptr(), 88, raw.as_ptr() as usize) };
            }
        }
        if r < 0 {
            die_errno(c.err, "cannot recreate a thread", Errno(-r as i32));
        }
    }
    let t = main.unwrap_or_else(|| die(c.err, "no main thread"));
    if arch::set_tls(&t) < 0 {
        die(c.err, "cannot restore the main thread's TLS");
    }
    // Capabilities: each thread sets its own back to what it had at checkpoint time (the
    // preload library does it as it resumes), which also drops the CAP_CHECKPOINT_RESTORE
    // that dmtcp_restart gave us for set_tid.
    // SAFETY: the record holds the main thread's saved context, whose stack is restored.
    #[allow(unsafe_code)]
    unsafe {
        arch::resume(t.regs.as_ptr())
    }
}

#[cfg(target_arch = "x86_64")]
const SP_SLOT: usize = 6;
#[cfg(target_arch = "x86")]
const SP_SLOT: usize = 4;

/// Runs first in every recreated thread (see `arch::clone3_thread`).
pub fn thread_start(rec_addr: usize) -> ! {
    // SAFETY: `rec_addr` points at a THREAD_SIZE record in scratch, valid until the library
    // unmaps our range after all threads are back.
    #[allow(unsafe_code)]
    let raw: &[u8] = unsafe { core::slice::from_raw_parts(rec_addr as *const u8, THREAD_SIZE) };
    // Decoded onto this thread's temporary stack (below its saved sp), which `resume` leaves.
    let t = ThreadRecord::decode(raw).unwrap_or_else(|_| fail(3));
    #[cfg(target_arch = "x86")]
    arch::load_gs(t.gs as u32);
    // SAFETY: the record holds this thread's saved context, whose stack is restored.
    #[allow(unsafe_code)]
    unsafe {
        arch::resume(t.regs.as_ptr())
    }
}
