//! Incremental checkpoints (`--incremental`, DMTCP_INCREMENTAL=1): which pages of private
//! anonymous memory changed since the last image, so that the writer sends a delta image
//! (format: `dmtcp_proto::image::chain`) instead of a full one.
//!
//! Design: userfaultfd write-protection in its asynchronous mode (UFFD_FEATURE_WP_ASYNC, Linux
//! 6.7; no privilege with UFFD_USER_MODE_ONLY): the kernel resolves a write fault itself by
//! dropping the page's protection (no message, no signal: nothing the program sees), and the
//! ioctl PAGEMAP_SCAN of /proc/self/pagemap lists the pages written since and protects them
//! again in the same call. The kernel's soft-dirty bits would do as well on one process, but
//! they are also cleared by the kernel for its own reasons (VMA merges) and need a write to
//! /proc/self/clear_refs that walks every area; the scan is one call per area.
//!
//! At a checkpoint, in the stop, before any page is read (`prepare`, called by the writer with
//! its area table): an area that is private anonymous memory (`candidate`) and has exactly the
//! range it had when it was protected at the last checkpoint or restart (`tracked`) is
//! *inherited*: two scans list its pages that are now absent (neither present nor swapped:
//! they must come back as zeros) and those written since (protected again). Every other
//! candidate is *fresh* (new, moved, resized, split, or unmapped and mapped again at the same
//! place, which drops its registration: the scan then fails with EPERM): it is registered and
//! protected now and written whole, after one zero chunk over it. Shared memory and file
//! mappings are written whole every time, as in a full image. The ranges go into a table of
//! their own (`Regions`), so that the writing, which may move into another process after the
//! stop, only reads them.
//!
//! The chain: the last durable image (`Last`: its id, position, checksum, sizes and path),
//! updated by `commit` when `dmtcp write-image` reported it on disk. A delta is written only
//! when that image is the one at this checkpoint's path, the chain is shorter than
//! DMTCP_INCREMENTAL_CHAIN deltas and the deltas together are below DMTCP_INCREMENTAL_RATIO
//! percent of the base; otherwise a full image starts a new chain. Any failure forgets the
//! chain (the scan already protected pages again whose change is in no image). A fork child
//! inherits no registration (no EVENT_FORK) and a copy of the parent's userfaultfd: it closes
//! that and starts with a full image. After a restart (`after_restart`) every candidate area is
//! registered and protected, and the chain continues from the image restored
//! (`DMTCP_RESTART_CHAIN` in the restart facts), so the next delta is relative to that state.
//! Without userfaultfd or PAGEMAP_SCAN (older kernels), one log line and full images.
//! One checkpoint may ask otherwise than the launch (`dmtcp_command --incremental` / `--full`,
//! or a coordinator started with `--incremental`: the DoCheckpoint's FLAG_INCREMENTAL or
//! FLAG_FULL, `decide`): a process that kept no chain then starts one with a full image, and one
//! restored from a chain's image is protected again after the restart whatever its launch said.
//!
//! Rules: runs on the checkpoint thread with every other thread stopped (or, in
//! `after_restart`, before they run again): no allocation (tables in .bss through
//! `cell::Exclusive`, the range table in a mapping of its own), raw system calls through
//! `sys::uffd`. The userfaultfd is kept out of the program's way as the coordinator connection
//! is (`fds::hide`), and `resources::files` does not record it.
use crate::cell::Exclusive;
use crate::cstr::Fixed;
use crate::sys::uffd::{self, Regions, Scan};
use crate::sys::{self, Errno};
use core::ffi::c_int;
use dmtcp_proto::image::{self, AreaRecord, Chain, Text};

/// Areas remembered as protected (a program with more gets fresh areas beyond).
const MAX_TRACKED: usize = 8192;
/// Ranges of one checkpoint's scans (zero and written runs); past it, areas are fresh.
const MAX_RANGES: usize = 1 << 20;

#[derive(Clone, Copy)]
struct Range {
    start: u64,
    end: u64,
}

/// The newest durable image of this process's chain (image_id 0: none).
struct Last {
    image_id: u64,
    position: u32,
    checksum: u64,
    base_bytes: u64,
    delta_bytes: u64,
    path: Fixed<4200>,
}

/// What the checkpoint in progress writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Off,
    Full,
    Delta,
}

struct State {
    owner: i32,
    /// userfaultfd or PAGEMAP_SCAN is missing: said once, full images from then on.
    unavailable: bool,
    tracked: [Range; MAX_TRACKED],
    n_tracked: usize,
    last: Last,
    mode: Mode,
    image_id: u64,
    /// Per area of the checkpoint in progress: AREA_* below.
    kinds: Option<sys::Mapping>,
    ranges: Option<Regions>,
    n_ranges: usize,
}

const AREA_NORMAL: u8 = 0;
const AREA_FRESH: u8 = 1;
const AREA_INHERITED: u8 = 2;
/// `PageRegion::categories` of a range in `ranges`: area index << 1 | 1 for written pages.
const WRITTEN: u64 = 1;

static STATE: Exclusive<State> = Exclusive::new(State {
    owner: 0,
    unavailable: false,
    tracked: [Range { start: 0, end: 0 }; MAX_TRACKED],
    n_tracked: 0,
    last: Last { image_id: 0, position: 0, checksum: 0, base_bytes: 0, delta_bytes: 0, path: Fixed::new() },
    mode: Mode::Off,
    image_id: 0,
    kinds: None,
    ranges: None,
    n_ranges: 0,
});

/// Our userfaultfd (`fds` holds its number, hidden), or -1.
fn uffd_fd() -> c_int {
    crate::fds::hidden()
}

/// What the writer does with area `i` of the checkpoint in progress.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// As in a full image.
    Normal,
    /// A zero chunk over the whole area first, then as in a full image.
    Fresh,
    /// Only the ranges `ranges_of` lists.
    Inherited,
}

/// Whether `a` is private anonymous memory whose pages the writer picks by the page table
/// (the memory a delta holds in part).
fn candidate(a: &AreaRecord) -> bool {
    let name = a.name.as_bytes();
    a.flags & (image::AREA_FILE | image::AREA_SHARED | image::AREA_SHM) == 0
        && !a.has_vm(image::area::AREA_VM_HUGETLB)
        && !name.starts_with(b"/")
        && a.end > a.start
}

/// Whether the restorer maps `a` as private anonymous memory (where older images' chunks land).
pub fn restored_anonymous(a: &AreaRecord) -> bool {
    a.flags & (image::AREA_FILE | image::AREA_SHARED | image::AREA_SHM) == 0
}

/// An id for the image in progress: the clocks and the pid, never 0 (the checksum names the
/// base too; the id tells a restart which image the memory came from).
fn new_id() -> u64 {
    let t = sys::timers::clock_ns(libc::CLOCK_REALTIME) ^ sys::timers::clock_ns(libc::CLOCK_MONOTONIC).rotate_left(32);
    (t ^ ((sys::getpid() as u64) << 44)) | 1
}

fn open_uffd(s: &mut State) -> bool {
    if s.owner != sys::getpid() {
        // A fork child: no registration came along (its parent's descriptor was closed in
        // the fork handler, `fds::drop_inherited_hidden`), and no image of its own yet.
        crate::fds::drop_inherited_hidden();
        s.n_tracked = 0;
        s.last.image_id = 0;
        s.owner = sys::getpid();
    }
    if uffd_fd() >= 0 {
        return true;
    }
    if s.unavailable {
        return false;
    }
    match uffd::open(uffd::FEATURE_WP_ASYNC | uffd::FEATURE_WP_UNPOPULATED) {
        Ok(fd) => match crate::fds::hide(fd) {
            Ok(_) => {
                s.n_tracked = 0;
                true
            }
            Err(e) => {
                unavailable(s, b"cannot keep the userfaultfd aside", e);
                false
            }
        },
        Err(e) => {
            unavailable(s, b"userfaultfd with asynchronous write-protection is not available", e);
            false
        }
    }
}

fn unavailable(s: &mut State, what: &[u8], e: Errno) {
    s.unavailable = true;
    warn!(
        "incremental checkpoints: {} ({}); writing full images",
        crate::log::Bytes(what),
        crate::log::Bytes(sys::strerror(e))
    );
}

fn is_tracked(s: &State, a: &AreaRecord) -> bool {
    s.tracked[..s.n_tracked].iter().any(|r| r.start == a.start && r.end == a.end)
}

/// Decides whether this checkpoint writes a full image of a chain, a delta or a plain image
/// (before the writer is started: its arguments say which). `flags`: the checkpoint's
/// FLAG_INCREMENTAL (`dmtcp_command --incremental`, or a coordinator started with
/// `--incremental`: incremental for this one even if not launched so) or FLAG_FULL (a full
/// image that starts a new chain; a process without a chain writes a plain image).
pub fn decide(flags: u32) {
    let c = crate::config::get();
    let asked = flags & dmtcp_proto::FLAG_INCREMENTAL != 0;
    let full = flags & dmtcp_proto::FLAG_FULL != 0 && !asked;
    STATE.with(|s| {
        s.mode = Mode::Off;
        s.kinds = None;
        s.ranges = None;
        s.n_ranges = 0;
        if !(c.incremental() || asked || full && s.last.image_id != 0) || !open_uffd(s) {
            s.last.image_id = 0;
            return;
        }
        let same_path = crate::writer::with_image_path(|p| p == s.last.path.bytes());
        let l = &s.last;
        let delta = !full
            && l.image_id != 0
            && same_path
            && l.position < c.incremental_chain()
            && l.delta_bytes.saturating_mul(100) <= l.base_bytes.saturating_mul(u64::from(c.incremental_ratio()));
        trace!(
            "incremental: last image {:#x} at position {}, same path {}, {} delta bytes on {}: {}",
            l.image_id,
            l.position,
            same_path,
            l.delta_bytes,
            l.base_bytes,
            if delta { "a delta" } else { "a full image" }
        );
        s.mode = if delta { Mode::Delta } else { Mode::Full };
    })
}

/// Scans or protects every candidate area of the `n` areas that `area(i)` decodes, in the stop
/// and before any page is read (after `decide`). Returns the header's chain field.
pub fn prepare(n: usize, mut area: impl FnMut(usize) -> Option<AreaRecord>) -> Chain {
    STATE.with(|s| {
        if s.mode == Mode::Off {
            return Chain::NONE;
        }
        // The tables are mapped now, after the area table was read, so that they are not in
        // the image. Without them, or without pagemap, no area is followed: each is fresh (a
        // delta then holds all of them).
        s.kinds = sys::Mapping::new(n.max(1)).ok();
        if s.mode == Mode::Delta {
            s.ranges = Regions::new(MAX_RANGES).ok();
        }
        let pagemap = if s.ranges.is_some() { sys::open_read(c"/proc/self/pagemap").unwrap_or(-1) } else { -1 };
        // The new table is collected beside the old one, which `is_tracked` reads meanwhile.
        let mut newt = TrackedBuilder::default();
        for i in 0..n {
            let Some(a) = area(i) else { continue };
            let kind = if !candidate(&a) {
                // Memory the restorer maps anonymous but that is not followed page by page
                // (a deleted file's copy, huge pages): whole, over zeros, in a delta.
                if restored_anonymous(&a) {
                    AREA_FRESH
                } else {
                    AREA_NORMAL
                }
            } else if s.mode == Mode::Delta && pagemap >= 0 && is_tracked(s, &a) && scan(s, pagemap, i, &a) {
                newt.push(&a);
                AREA_INHERITED
            } else {
                // Registered and protected now; if the kernel refuses, it is not tracked and
                // stays fresh in every image.
                if protect(s, &a) {
                    newt.push(&a);
                }
                AREA_FRESH
            };
            if let Some(k) = s.kinds.as_mut().and_then(|k| k.bytes().get_mut(i)) {
                *k = kind;
            }
        }
        if pagemap >= 0 {
            sys::close(pagemap);
        }
        s.n_tracked = newt.finish(&mut s.tracked);
        s.image_id = new_id();
        if s.mode == Mode::Delta {
            let mut name = Text::EMPTY;
            let mut link = Fixed::<300>::new();
            link_name(s.last.path.bytes(), s.last.position, &mut link);
            name.set(link.bytes());
            Chain {
                image_id: s.image_id,
                position: s.last.position + 1,
                base_checksum: s.last.checksum,
                base_id: s.last.image_id,
                base_name: name,
            }
        } else {
            Chain { image_id: s.image_id, ..Chain::NONE }
        }
    })
}

/// The new tracked table, collected while the old one is still read (`is_tracked`): kept in
/// a second static, copied over at the end.
#[derive(Default)]
struct TrackedBuilder {
    n: usize,
}

static NEW_TRACKED: Exclusive<[Range; MAX_TRACKED]> = Exclusive::new([Range { start: 0, end: 0 }; MAX_TRACKED]);

impl TrackedBuilder {
    fn push(&mut self, a: &AreaRecord) {
        if self.n < MAX_TRACKED {
            let n = self.n;
            NEW_TRACKED.with(|t| t[n] = Range { start: a.start, end: a.end });
            self.n += 1;
        }
    }
    fn finish(self, into: &mut [Range; MAX_TRACKED]) -> usize {
        NEW_TRACKED.with(|t| into[..self.n].copy_from_slice(&t[..self.n]));
        self.n
    }
}

/// The file name of the chain link for the image at `position` of the chain whose newest
/// image is at `path`: `<name>.<position>` beside it (`dmtcp write-image --chain-link`).
pub fn link_name(path: &[u8], position: u32, out: &mut Fixed<300>) {
    let mut num = [0u8; 20];
    out.clear();
    out.push(crate::cstr::basename(path));
    out.push(b".");
    out.push(crate::cstr::fmt_u64(u64::from(position), &mut num));
}

/// Registers `a` for write-protection and protects it.
fn protect(s: &State, a: &AreaRecord) -> bool {
    let len = a.end - a.start;
    let _ = s;
    let fd = uffd_fd();
    uffd::register_wp(fd, a.start, len).is_ok() && uffd::write_protect(fd, a.start, len, true).is_ok()
}

/// Lists the absent and the written pages of the tracked area `i` (protecting the written
/// ones again). False: not registered any more (unmapped and mapped again), or the range
/// table is full; the area is then fresh.
fn scan(s: &mut State, pagemap: c_int, i: usize, a: &AreaRecord) -> bool {
    let before = s.n_ranges;
    let absent = Scan {
        flags: 0,
        inverted: uffd::PAGE_IS_PRESENT | uffd::PAGE_IS_SWAPPED,
        mask: uffd::PAGE_IS_PRESENT | uffd::PAGE_IS_SWAPPED,
        anyof: 0,
        ret: uffd::PAGE_IS_PRESENT | uffd::PAGE_IS_SWAPPED,
    };
    let written = Scan {
        flags: uffd::PM_SCAN_WP_MATCHING | uffd::PM_SCAN_CHECK_WPASYNC,
        inverted: 0,
        mask: uffd::PAGE_IS_WRITTEN,
        anyof: 0,
        ret: uffd::PAGE_IS_WRITTEN,
    };
    // The written scan first: it fails (EPERM) on an area that lost its registration, before
    // anything of it is listed.
    let ok = scan_into(s, pagemap, i, a, written, WRITTEN) && scan_into(s, pagemap, i, a, absent, 0);
    if !ok {
        s.n_ranges = before;
        return false;
    }
    // Zero ranges go before the written ones of the same area in the stream: sort this area's
    // part so (stable, small) by kind.
    if let Some(r) = s.ranges.as_mut() {
        let part = &mut r.all()[before..s.n_ranges];
        part.sort_unstable_by_key(|p| (p.categories & WRITTEN, p.start));
    }
    true
}

fn scan_into(s: &mut State, pagemap: c_int, i: usize, a: &AreaRecord, q: Scan, tag: u64) -> bool {
    let Some(r) = s.ranges.as_mut() else { return false };
    let all = r.all();
    let mut from = a.start;
    while from < a.end {
        let room = &mut all[s.n_ranges..];
        if room.is_empty() {
            return false;
        }
        let (n, walk_end) = match uffd::pagemap_scan(pagemap, from, a.end, q, room) {
            Ok(v) => v,
            Err(e) => {
                trace!(
                    "incremental: scan of {:#x}-{:#x} failed: {}",
                    a.start,
                    a.end,
                    crate::log::Bytes(sys::strerror(e))
                );
                return false;
            }
        };
        for p in room[..n].iter_mut() {
            p.categories = (i as u64) << 1 | tag;
        }
        s.n_ranges += n;
        if walk_end <= from || walk_end >= a.end {
            break;
        }
        from = walk_end;
    }
    true
}

/// What the writer does with area `i` (after `prepare`).
pub fn area(i: usize) -> Area {
    STATE.with(|s| {
        if s.mode != Mode::Delta {
            return Area::Normal;
        }
        match s.kinds.as_ref().and_then(|k| k.as_slice().get(i).copied()) {
            Some(AREA_INHERITED) => Area::Inherited,
            Some(AREA_FRESH) => Area::Fresh,
            _ => Area::Normal,
        }
    })
}

/// Whether this checkpoint writes an image of a chain (full or delta).
pub fn in_chain() -> bool {
    STATE.with(|s| s.mode != Mode::Off)
}

/// Calls `f(written, start, end)` for each range of area `i`, zero ranges first.
pub fn ranges_of<E>(i: usize, mut f: impl FnMut(bool, u64, u64) -> Result<(), E>) -> Result<(), E> {
    // The table leaves the cell while `f` writes to the pipe (the checkpoint thread is its only
    // user), and goes back after.
    let (table, n) = STATE.with(|s| (s.ranges.take(), s.n_ranges));
    let Some(mut table) = table else { return Ok(()) };
    let all = &table.all()[..n];
    let key = (i as u64) << 1;
    let lo = all.partition_point(|p| p.categories & !WRITTEN < key);
    let mut r = Ok(());
    for p in all[lo..].iter().take_while(|p| p.categories & !WRITTEN == key) {
        r = f(p.categories & WRITTEN != 0, p.start, p.end);
        if r.is_err() {
            break;
        }
    }
    STATE.with(|s| s.ranges = Some(table));
    r
}

/// The name of the base image of the delta in progress (`<image>.<position>`), for
/// `dmtcp write-image --chain-link`; false when this checkpoint is no delta.
pub fn chain_link(out: &mut Fixed<300>) -> bool {
    STATE.with(|s| {
        if s.mode != Mode::Delta {
            return false;
        }
        link_name(s.last.path.bytes(), s.last.position, out);
        true
    })
}

/// The image is on disk (`checksum` in its trailer, `len` bytes of stream): it is the chain's
/// newest now.
pub fn commit(checksum: Option<u64>, len: u64) {
    STATE.with(|s| {
        let mode = s.mode;
        s.kinds = None;
        s.ranges = None;
        s.mode = Mode::Off;
        let Some(sum) = checksum.filter(|_| mode != Mode::Off) else {
            s.last.image_id = 0;
            return;
        };
        let l = &mut s.last;
        if mode == Mode::Full {
            l.position = 0;
            l.base_bytes = len;
            l.delta_bytes = 0;
        } else {
            l.position += 1;
            l.delta_bytes += len;
        }
        l.image_id = s.image_id;
        l.checksum = sum;
        crate::writer::with_image_path(|p| l.path.set(p));
    })
}

/// The checkpoint failed: no delta may build on what was scanned.
pub fn abort() {
    STATE.with(|s| {
        s.kinds = None;
        s.ranges = None;
        s.mode = Mode::Off;
        s.last.image_id = 0;
    })
}

/// The restart facts' `DMTCP_RESTART_CHAIN=<id> <checksum> <position> <base bytes> <delta
/// bytes> <path>` (hex, hex, decimal...): the image this process was restored from.
pub fn restart_info(text: &[u8]) {
    let line =
        text.split(|&b| b == b'\n').find_map(|l| crate::cstr::env_match(l, dmtcp_proto::env::RESTART_CHAIN.as_bytes()));
    STATE.with(|s| {
        // The checkpoint's tables were mappings made after the area table was read: not in
        // the image, so not ours to unmap (their addresses may hold something else now).
        core::mem::forget(s.kinds.take());
        core::mem::forget(s.ranges.take());
        s.n_ranges = 0;
        s.mode = Mode::Off;
        s.last.image_id = 0;
        // The descriptor was not restored (a new process): made anew in `after_restart`.
        crate::fds::forget_hidden();
        s.n_tracked = 0;
        s.owner = sys::getpid();
        let Some(line) = line else { return };
        let mut f = line.splitn(6, |&b| b == b' ');
        let (Some(id), Some(sum), Some(pos), Some(base), Some(delta), Some(path)) =
            (f.next(), f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            return;
        };
        let (id, sum) = (crate::writer::parse_hex(id), crate::writer::parse_hex(sum));
        let (Some(pos), Some(base), Some(delta)) =
            (crate::cstr::parse_u64(pos), crate::cstr::parse_u64(base), crate::cstr::parse_u64(delta))
        else {
            return;
        };
        if id == 0 || pos > u64::from(image::chain::MAX_POSITION) {
            return;
        }
        s.last = Last {
            image_id: id,
            position: pos as u32,
            checksum: sum,
            base_bytes: base,
            delta_bytes: delta,
            path: Fixed::new(),
        };
        s.last.path.set(path);
    })
}

/// After a restart, before the program's threads run: every private anonymous area is
/// registered and protected, so the next checkpoint's delta is relative to the restored state.
pub fn after_restart() {
    // Restored from an image of a chain (`restart_info`): its process kept one, whether it was
    // launched incremental or a command asked for it; the next delta builds on this state.
    if !crate::config::get().incremental() && STATE.with(|s| s.last.image_id == 0) {
        return;
    }
    let Ok(mut text) = sys::Mapping::new(4 << 20) else {
        STATE.with(|s| s.last.image_id = 0);
        return;
    };
    let n = sys::read_file(c"/proc/self/maps", text.bytes()).unwrap_or(0);
    let (text_at, text_len) = (text.as_slice().as_ptr() as usize as u64, text.as_slice().len() as u64);
    STATE.with(|s| {
        if !open_uffd(s) {
            s.last.image_id = 0;
            return;
        }
        let mut k = 0;
        let mut complete = n < text.as_slice().len();
        for line in text.as_slice()[..n].split(|&c| c == b'\n') {
            let Some(m) = crate::writer::parse_line(line) else { continue };
            let private = m.perms.get(3) == Some(&b'p');
            if !private
                || m.inode != 0
                || m.name.first() == Some(&b'/')
                || m.name.first() == Some(&b'[') && m.name != b"[heap]" && m.name != b"[stack]"
            {
                continue;
            }
            // Our own buffer may have merged with a neighbour of the same kind: its range is
            // left out (it goes away below, and the area then has exactly the rest).
            let (lo, hi) = (text_at, text_at + text_len);
            let parts = if m.start < hi && lo < m.end {
                [(m.start, m.start.max(lo).min(m.end)), (hi.max(m.start).min(m.end), m.end)]
            } else {
                [(m.start, m.end), (m.end, m.end)]
            };
            let fd = uffd_fd();
            for (start, end) in parts {
                if end <= start {
                    continue;
                }
                if uffd::register_wp(fd, start, end - start).is_err()
                    || uffd::write_protect(fd, start, end - start, true).is_err()
                {
                    continue;
                }
                if k < MAX_TRACKED {
                    s.tracked[k] = Range { start, end };
                    k += 1;
                } else {
                    complete = false;
                }
            }
        }
        trace!("incremental: {} areas protected after the restart{}", k, if complete { "" } else { " (not all)" });
        s.n_tracked = k;
    })
}
