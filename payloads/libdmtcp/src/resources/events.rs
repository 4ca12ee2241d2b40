//! eventfd, signalfd and timerfd (one kind module, as the three are one small object each),
//! plus what the event kinds share (`inotify`, `epoll`): telling their fds by their
//! /proc/self/fd link, reading /proc/self/fdinfo, and putting a recreated object at its old
//! number.
//!
//! Design: discover, do not shadow. `save` reads each object's whole state from the kernel
//! (/proc/self/fdinfo: `eventfd-count`, `eventfd-semaphore`; `sigmask`; timerfd `clockid`,
//! `ticks`, `settime flags`, `it_value`, `it_interval`) into a fixed table of `FdRecord`s, the
//! image's records themselves; `restore` makes each object again in this process
//! (eventfd/signalfd4/timerfd_create), dup3s it to its number with its close-on-exec flag and
//! gives it its O_NONBLOCK. Two fds of one process that share an open file description (a
//! `dup`, told by kcmp) come back as one object at both numbers (`same_as`).
//!
//! - eventfd: counter and EFD_SEMAPHORE. signalfd: the mask; the signals that were pending
//!   are the process's and come back with `signal_state` (raised after the restore, so a
//!   signalfd reads them).
//! - timerfd: the time left is counted from the checkpoint in real time, so the time the
//!   computation was down counts: a timer whose time ran out meanwhile expires once right
//!   after the restart, then keeps its interval. An absolute CLOCK_REALTIME timer is set again
//!   at its absolute time (the kernel fires it, and counts missed intervals, as it would have).
//!   Absolute timers of other clocks (whose origin a restart does not keep) are treated as
//!   relative. Expirations not yet read (`ticks`) are set back with TFD_IOC_SET_TICKS; where the
//!   kernel has no such ioctl (32-bit processes) the timer expires once right away instead.
//! - Shared across processes (eventfd): an eventfd inherited over fork is one object in every
//!   process that holds it. `drain` (every process stopped) keys each eventfd's description
//!   like `files` does (the lowest pid holding it and that process's lowest fd of it, found with
//!   kcmp), and its record gets FD_SHARED: `dmtcp_restart` makes it once, with its counter and
//!   semaphore flag, and puts it at every holder's fd (`src/restart/events.rs`); `restore` gives
//!   it its fd flags only. Where kcmp is refused the key is our own (pid, fd): made for us alone.
//!   signalfd and timerfd are still made per process (one object per process after restart).
//!
//! Rules: hooks run in the checkpoint thread with every other thread stopped; no allocation
//! (fixed tables in .bss); system calls only through the typed wrappers of `sys::events`.
use super::{report, FdRecord, Hooks, RecordSink, NONE};
use crate::cell::Exclusive;
use crate::log::Bytes;
use crate::sys::{self, events as ev};
use core::ffi::c_int;
use dmtcp_proto::image::{EventfdRecord, FdBody, SignalfdRecord, TimerfdRecord};

pub const HOOKS: Hooks =
    Hooks { name: "eventfd/signalfd/timerfd", save, drain, records, write_records, restore, ..NONE };

const MAX_FDS: usize = 256;
/// Room for one fdinfo (an epoll's holds one line of about 80 bytes per watched fd, an inotify's
/// one of about 120 per watch); only the pages a read fills are in the image.
pub const FDINFO_LEN: usize = 256 * 1024;

/// The event kinds, by their /proc/self/fd link.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EventKind {
    Eventfd,
    Signalfd,
    Timerfd,
    Epoll,
    Inotify,
}

impl EventKind {
    /// The image's kind tag.
    pub fn tag(self) -> u32 {
        use dmtcp_proto::image::{FD_EPOLL, FD_EVENTFD, FD_INOTIFY, FD_SIGNALFD, FD_TIMERFD};
        match self {
            EventKind::Eventfd => FD_EVENTFD,
            EventKind::Signalfd => FD_SIGNALFD,
            EventKind::Timerfd => FD_TIMERFD,
            EventKind::Epoll => FD_EPOLL,
            EventKind::Inotify => FD_INOTIFY,
        }
    }
}

/// Which event kind an fd is, from its /proc/self/fd link.
pub fn event_kind(link: &[u8]) -> Option<EventKind> {
    match link {
        b"anon_inode:[eventfd]" => Some(EventKind::Eventfd),
        b"anon_inode:[signalfd]" => Some(EventKind::Signalfd),
        b"anon_inode:[timerfd]" => Some(EventKind::Timerfd),
        b"anon_inode:[eventpoll]" => Some(EventKind::Epoll),
        b"anon_inode:inotify" => Some(EventKind::Inotify),
        _ => None,
    }
}

/// Whether a /proc/self/fd link names an fd of an event kind (`files` leaves those out).
pub fn is_event_link(link: &[u8]) -> bool {
    event_kind(link).is_some()
}

/// The event kind of `fd`, if it is one.
pub fn kind_of(fd: c_int) -> Option<EventKind> {
    let mut buf = [0u8; 64];
    super::fd_target(fd, &mut buf).and_then(event_kind)
}

/// Reads /proc/self/fdinfo/<fd> into `buf`.
pub fn fdinfo(fd: c_int, buf: &mut [u8]) -> Option<usize> {
    let mut path = crate::cstr::Fixed::<64>::new();
    let mut num = [0u8; 20];
    path.push(b"/proc/self/fdinfo/");
    path.push(crate::cstr::fmt_u64(fd as u64, &mut num));
    match crate::sys::read_file(path.as_cstr(), buf) {
        Ok(n) if n < buf.len() => Some(n),
        Ok(_) => {
            warn!("the state of fd {} does not fit in {} bytes; it is not saved", fd, buf.len());
            None
        }
        Err(e) => {
            trace!("cannot read the fdinfo of fd {}: {}", fd, Bytes(sys::strerror(e)));
            None
        }
    }
}

/// The value of the fdinfo line `key` (e.g. `b"ticks:"`), spaces and tabs trimmed.
pub fn field<'a>(info: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    info.split(|&c| c == b'\n').find_map(|l| l.strip_prefix(key)).map(trim)
}

pub fn trim(s: &[u8]) -> &[u8] {
    let s = &s[s.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(s.len())..];
    &s[..s.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(0, |i| i + 1)]
}

/// Parses digits in `radix` (no prefix).
pub fn parse_radix(s: &[u8], radix: u32) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        v = v.checked_mul(radix as u64)?.checked_add((c as char).to_digit(radix)? as u64)?;
    }
    Some(v)
}

/// The word after `key` in a line of `key:value key:value` fields (`b"wd:"`), in `radix`.
pub fn word(line: &[u8], key: &[u8], radix: u32) -> Option<u64> {
    let at = line.windows(key.len()).position(|w| w == key)?;
    let rest = trim(&line[at + key.len()..]);
    let end = rest.iter().position(|c| c.is_ascii_whitespace()).unwrap_or(rest.len());
    parse_radix(&rest[..end], radix)
}

/// Nanoseconds of an fdinfo time `(sec, nsec)`.
fn parse_time(s: &[u8]) -> Option<u64> {
    let s = trim(s.strip_prefix(b"(")?.strip_suffix(b")")?);
    let comma = s.iter().position(|&c| c == b',')?;
    let sec = parse_radix(trim(&s[..comma]), 10)?;
    let nsec = parse_radix(trim(&s[comma + 1..]), 10)?;
    sec.checked_mul(1_000_000_000)?.checked_add(nsec)
}

/// The common part of a record: the fd's close-on-exec flag and status flags.
pub fn fd_flags(fd: c_int) -> (u32, u32) {
    let cloexec = sys::fcntl(fd, libc::F_GETFD, 0).is_ok_and(|f| f & libc::FD_CLOEXEC != 0);
    (if cloexec { libc::FD_CLOEXEC as u32 } else { 0 }, sys::fcntl(fd, libc::F_GETFL, 0).unwrap_or(0) as u32)
}

/// The fd of an earlier record (`earlier`) that shares `fd`'s open file description, or -1.
pub fn same_as(fd: c_int, earlier: impl Iterator<Item = c_int>) -> i32 {
    for e in earlier {
        if ev::same_file(e, fd) {
            return e;
        }
    }
    -1
}

/// Puts the fresh object `tmp` at the record's fd with its close-on-exec flag and O_NONBLOCK;
/// false (and a warning naming `what`) if it could not.
pub fn place(tmp: c_int, fd: c_int, fd_flags: u32, status: u32, what: &str) -> bool {
    let cloexec = fd_flags & libc::FD_CLOEXEC as u32 != 0;
    if tmp != fd {
        let moved = sys::dup3(tmp, fd, if cloexec { libc::O_CLOEXEC } else { 0 });
        sys::close(tmp);
        if let Err(e) = moved {
            warn!("cannot put the {} back at fd {} after restart: {}", what, fd, Bytes(sys::strerror(e)));
            return false;
        }
    } else {
        report(
            "setting close-on-exec",
            fd,
            sys::fcntl(fd, libc::F_SETFD, if cloexec { libc::FD_CLOEXEC } else { 0 }).map(|_| ()),
        );
    }
    let fl = sys::fcntl(fd, libc::F_GETFL, 0).unwrap_or(0);
    let want = (fl & !libc::O_NONBLOCK) | (status as c_int & libc::O_NONBLOCK);
    report("setting the status flags", fd, sys::fcntl(fd, libc::F_SETFL, want).map(|_| ()));
    true
}

/// `same_as` records: a second fd of an object already put back.
pub fn place_dup(fd: c_int, of: c_int, fd_flags: u32, what: &str) {
    let cloexec = fd_flags & libc::FD_CLOEXEC as u32 != 0;
    if let Err(e) = sys::dup3(of, fd, if cloexec { libc::O_CLOEXEC } else { 0 }) {
        warn!(
            "cannot put the {} back at fd {} (a dup of fd {}) after restart: {}",
            what,
            fd,
            of,
            Bytes(sys::strerror(e))
        );
    }
}

struct Table {
    recs: [FdRecord; MAX_FDS],
    n: usize,
}

const EMPTY: FdRecord =
    FdRecord { fd: -1, fd_flags: 0, status: 0, body: FdBody::Signalfd(SignalfdRecord { same_as: -1, mask: 0 }) };

static TABLE: Exclusive<Table> = Exclusive::new(Table { recs: [EMPTY; MAX_FDS], n: 0 });

/// Runs `f` with the fdinfo text of `fd` (None if unreadable): one buffer in .bss, for the kinds
/// whose fdinfo is long.
pub fn with_fdinfo<R>(fd: c_int, f: impl FnOnce(Option<&[u8]>) -> R) -> R {
    static INFO: Exclusive<[u8; FDINFO_LEN]> = Exclusive::new([0; FDINFO_LEN]);
    INFO.with(|buf| {
        let n = fdinfo(fd, buf);
        f(n.map(|n| &buf[..n]))
    })
}

fn save() {
    TABLE.with(|t| {
        t.n = 0;
        let now = ev::realtime_ns();
        super::for_each_program_fd(|fd| {
            let Some(kind) = kind_of(fd) else { return };
            if !matches!(kind, EventKind::Eventfd | EventKind::Signalfd | EventKind::Timerfd) {
                return;
            }
            if t.n == MAX_FDS {
                warn!("more than {} eventfd/signalfd/timerfd fds; fd {} is not saved", MAX_FDS, fd);
                return;
            }
            let same = same_as(fd, t.recs[..t.n].iter().filter(|r| r.kind() == kind.tag()).map(|r| r.fd));
            let Some(body) = with_fdinfo(fd, |info| parse(kind, info?, same, now)) else {
                warn!("cannot read the state of fd {} ({:?}); it is not saved", fd, kind);
                return;
            };
            let (fd_flags, status) = fd_flags(fd);
            t.recs[t.n] = FdRecord { fd, fd_flags, status, body };
            t.n += 1;
        });
    });
}

/// The body of an eventfd, signalfd or timerfd from its fdinfo.
fn parse(kind: EventKind, info: &[u8], same_as: i32, now: u64) -> Option<FdBody> {
    Some(match kind {
        EventKind::Eventfd => FdBody::Eventfd(EventfdRecord {
            same_as,
            desc: (-1, -1),
            count: parse_radix(field(info, b"eventfd-count:")?, 16)?,
            // Kernels before 6.3 do not show it; those eventfds read as counters.
            semaphore: field(info, b"eventfd-semaphore:") == Some(b"1"),
        }),
        EventKind::Signalfd => {
            FdBody::Signalfd(SignalfdRecord { same_as, mask: parse_radix(field(info, b"sigmask:")?, 16)? })
        }
        EventKind::Timerfd => FdBody::Timerfd(TimerfdRecord {
            same_as,
            clock: parse_radix(field(info, b"clockid:")?, 10)? as u32,
            settime_flags: parse_radix(field(info, b"settime flags:")?, 8)? as u32 & 3,
            value_ns: parse_time(field(info, b"it_value:")?)?,
            interval_ns: parse_time(field(info, b"it_interval:")?)?,
            ticks: parse_radix(field(info, b"ticks:")?, 10)?,
            saved_at_ns: now,
        }),
        EventKind::Epoll | EventKind::Inotify => return None,
    })
}

/// After DMT:Drain: the key of each eventfd's description, and FD_SHARED (module docs).
fn drain() {
    use dmtcp_proto::image::FD_SHARED;
    TABLE.with(|t| {
        let me = sys::getpid();
        for i in 0..t.n {
            let fd = t.recs[i].fd;
            let FdBody::Eventfd(e) = t.recs[i].body else { continue };
            let desc = if e.same_as >= 0 {
                // A dup: the key of the record it is a dup of (an earlier one).
                t.recs[..i]
                    .iter()
                    .find_map(|r| match r.body {
                        FdBody::Eventfd(o) if r.fd == e.same_as => Some(o.desc),
                        _ => None,
                    })
                    .unwrap_or((me, fd))
            } else {
                super::files::lowest_holder(me, fd).unwrap_or((me, fd))
            };
            t.recs[i].body = FdBody::Eventfd(EventfdRecord { desc, ..e });
            t.recs[i].fd_flags |= FD_SHARED;
        }
    });
}

fn records() -> usize {
    TABLE.with(|t| t.n)
}

fn write_records(put: &mut RecordSink<'_>) {
    TABLE.with(|t| t.recs[..t.n].iter().for_each(put));
}

fn restore() {
    TABLE.with(|t| {
        let now = ev::realtime_ns();
        for r in &t.recs[..t.n] {
            restore_one(r, now);
        }
    });
}

fn restore_one(r: &FdRecord, now: u64) {
    let (what, same) = match &r.body {
        FdBody::Eventfd(e) => ("eventfd", e.same_as),
        FdBody::Signalfd(s) => ("signalfd", s.same_as),
        FdBody::Timerfd(t) => ("timerfd", t.same_as),
        _ => return,
    };
    if r.fd_flags & dmtcp_proto::image::FD_SHARED != 0 {
        // Made by dmtcp_restart and already at its number (module docs): its fd flags only.
        if kind_of(r.fd) == Some(EventKind::Eventfd) {
            place(r.fd, r.fd, r.fd_flags, r.status, what);
            return;
        }
        // At one of dmtcp's own numbers (not placed by dmtcp_restart): made here, for us alone.
        trace!("the shared {} of fd {} was not put back by dmtcp_restart; this process gets its own", what, r.fd);
    } else if same >= 0 {
        place_dup(r.fd, same, r.fd_flags, what);
        return;
    }
    let made = match &r.body {
        FdBody::Eventfd(e) => {
            ev::eventfd(e.count, libc::EFD_CLOEXEC | if e.semaphore { libc::EFD_SEMAPHORE } else { 0 })
        }
        FdBody::Signalfd(s) => ev::signalfd(s.mask, libc::SFD_CLOEXEC),
        FdBody::Timerfd(t) => ev::timerfd_create(t.clock as c_int, libc::TFD_CLOEXEC),
        _ => return,
    };
    let tmp = match made {
        Ok(fd) => fd,
        Err(e) => {
            warn!("cannot make the {} of fd {} again after restart: {}", what, r.fd, Bytes(sys::strerror(e)));
            return;
        }
    };
    if !place(tmp, r.fd, r.fd_flags, r.status, what) {
        return;
    }
    if let FdBody::Timerfd(t) = &r.body {
        rearm(r.fd, t, now);
    }
}

/// Sets a restored timerfd going again (module docs: the time the computation was down counts).
/// An armed timer whose expiration was not read yet shows no time left (`value_ns` 0: the
/// kernel moves a periodic timer on only when it is read); its expirations are in `ticks`.
fn rearm(fd: c_int, t: &TimerfdRecord, now: u64) {
    const ABSTIME: u32 = 1;
    const CANCEL_ON_SET: u32 = 2;
    let down = now.saturating_sub(t.saved_at_ns);
    let realtime = t.clock == libc::CLOCK_REALTIME as u32 || t.clock == libc::CLOCK_REALTIME_ALARM as u32;
    let set = |flags: u32, value: u64, interval: u64| {
        report("setting the timer", fd, ev::timerfd_settime(fd, flags as c_int, value, interval));
    };
    let fires_now = if t.value_ns == 0 {
        // Disarmed, or expired and not read: the next expiration an interval on (if any).
        if t.interval_ns > 0 {
            set(0, t.interval_ns, t.interval_ns);
        }
        false
    } else if t.settime_flags & ABSTIME != 0 && realtime {
        let at = t.saved_at_ns + t.value_ns;
        set(t.settime_flags & (ABSTIME | CANCEL_ON_SET), at, t.interval_ns);
        at <= now
    } else {
        let left = t.value_ns.saturating_sub(down);
        set(0, left.max(1), t.interval_ns);
        left == 0
    };
    if t.ticks > 0 && ev::timerfd_set_ticks(fd, t.ticks).is_err() && !fires_now {
        // No TFD_IOC_SET_TICKS: the unread expirations show as one expiring right away, and
        // the interval goes on from now.
        set(0, 1, t.interval_ns);
    }
}
