//! The bodies of the fd records of the event kinds: eventfd (`FD_EVENTFD`), signalfd
//! (`FD_SIGNALFD`), timerfd (`FD_TIMERFD`), epoll (`FD_EPOLL`) and inotify (`FD_INOTIFY`). One
//! record per fd. The process restores these objects itself after a restart (nothing is
//! shared with the tool side: each is made by its own process), from the table its library
//! keeps in its memory; the records say what the image holds (the tool sees the fd numbers
//! and kinds, a reader can show them) and give the state a reader can check.
//!
//! Exception (2.4): an eventfd with the FD_SHARED flag is made by `dmtcp_restart`, once per open
//! file description across the computation's processes (`EventfdRecord::desc`).
//!
//! Common to the five bodies: `same_as` (i32 at 20) is the fd number of an earlier record of the
//! same process and kind that shares this fd's open file description (a `dup`), or -1.
//! The epoll interest list and the inotify watch paths stay in the process's memory: the
//! records carry their counts.
use super::{ImageError, Record, FD_SIZE};
use crate::le::{get_i32, get_u32, get_u64, put_i32, put_u32, put_u64};

// Body field offsets within the 64-byte fd record (the common part is in `fd`).
pub const WORD: usize = 8; // u32 per kind: semaphore, clock, entries, watches
pub const SAME_AS: usize = 20; // i32 fd of the open file description's first record, or -1
pub const A: usize = 24; // u64 per kind
pub const B: usize = 32; // u64 per kind
pub const C: usize = 40; // u64 per kind
pub const D: usize = 48; // u64 per kind
pub const E: usize = 56; // u64 per kind

/// The clocks a timerfd may use (timerfd_create(2)).
pub const TIMER_CLOCKS: [u32; 5] = [
    0, // CLOCK_REALTIME
    1, // CLOCK_MONOTONIC
    7, // CLOCK_BOOTTIME
    8, // CLOCK_REALTIME_ALARM
    9, // CLOCK_BOOTTIME_ALARM
];
/// TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET.
pub const TIMER_SETTIME_FLAGS: u32 = 3;
/// Caps on the counts (an image with more is damaged).
pub const MAX_EPOLL_ENTRIES: u32 = 1 << 20;
pub const MAX_INOTIFY_WATCHES: u32 = 1 << 20;

/// An eventfd: its counter and whether it counts as a semaphore (EFD_SEMAPHORE). Since 2.4 the
/// record carries the FD_SHARED flag (`fd::FD_SHARED`) and the key of its open file description
/// (`desc`: the lowest pid holding it and that process's lowest fd of it, the same in every
/// image whose fd shared it; bytes 32 and 36): `dmtcp_restart` makes the object once and puts it
/// at every holder's fd. A record without the flag (older images) is made by its process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventfdRecord {
    pub same_as: i32,
    pub count: u64,
    pub semaphore: bool,
    pub desc: (i32, i32),
}

/// A signalfd: the signals it reads (bit n-1 for signal n).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalfdRecord {
    pub same_as: i32,
    pub mask: u64,
}

/// A timerfd: clock, flags of its last timerfd_settime, time left until it expires and its
/// interval (nanoseconds; 0 = disarmed, 0 = one-shot), expirations not yet read, and the
/// CLOCK_REALTIME time of the checkpoint (nanoseconds), from which a restart counts the time
/// the computation was down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerfdRecord {
    pub same_as: i32,
    pub clock: u32,
    pub settime_flags: u32,
    pub value_ns: u64,
    pub interval_ns: u64,
    pub ticks: u64,
    pub saved_at_ns: u64,
}

/// An epoll instance: how many fds it watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpollRecord {
    pub same_as: i32,
    pub entries: u32,
}

/// An inotify instance: how many watches, the last watch descriptor it handed out (the next
/// one is that plus one), and the bytes of events queued at checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InotifyRecord {
    pub same_as: i32,
    pub watches: u32,
    pub last_wd: i32,
    pub queued: u64,
}

fn bad(field: &'static str, value: u64) -> ImageError {
    ImageError::BadField { record: Record::Fd, field, value }
}

fn same_as(b: &[u8]) -> Result<i32, ImageError> {
    match get_i32(b, SAME_AS) {
        v if v >= -1 => Ok(v),
        v => Err(bad("same_as", v as u32 as u64)),
    }
}

impl EventfdRecord {
    pub const KIND: u32 = super::fd::FD_EVENTFD;
    pub(crate) fn encode_body(&self, b: &mut [u8; FD_SIZE]) {
        put_u32(b, WORD, self.semaphore as u32);
        put_i32(b, SAME_AS, self.same_as);
        put_u64(b, A, self.count);
        put_i32(b, B, self.desc.0);
        put_i32(b, B + 4, self.desc.1);
    }
    pub(crate) fn decode_body(b: &[u8]) -> Result<Self, ImageError> {
        let semaphore = match get_u32(b, WORD) {
            0 => false,
            1 => true,
            v => return Err(bad("eventfd semaphore", v.into())),
        };
        let count = get_u64(b, A);
        // The kernel's counter never reaches u64::MAX (eventfd(2)).
        if count == u64::MAX {
            return Err(bad("eventfd count", count));
        }
        Ok(EventfdRecord { same_as: same_as(b)?, count, semaphore, desc: (get_i32(b, B), get_i32(b, B + 4)) })
    }
}

impl SignalfdRecord {
    pub const KIND: u32 = super::fd::FD_SIGNALFD;
    pub(crate) fn encode_body(&self, b: &mut [u8; FD_SIZE]) {
        put_i32(b, SAME_AS, self.same_as);
        put_u64(b, A, self.mask);
    }
    pub(crate) fn decode_body(b: &[u8]) -> Result<Self, ImageError> {
        Ok(SignalfdRecord { same_as: same_as(b)?, mask: get_u64(b, A) })
    }
}

impl TimerfdRecord {
    pub const KIND: u32 = super::fd::FD_TIMERFD;
    pub(crate) fn encode_body(&self, b: &mut [u8; FD_SIZE]) {
        put_u32(b, WORD, self.clock);
        put_i32(b, SAME_AS, self.same_as);
        put_u64(b, A, self.settime_flags as u64);
        put_u64(b, B, self.value_ns);
        put_u64(b, C, self.interval_ns);
        put_u64(b, D, self.ticks);
        put_u64(b, E, self.saved_at_ns);
    }
    pub(crate) fn decode_body(b: &[u8]) -> Result<Self, ImageError> {
        let clock = get_u32(b, WORD);
        if !TIMER_CLOCKS.contains(&clock) {
            return Err(bad("timerfd clock", clock.into()));
        }
        let flags = get_u64(b, A);
        if flags & !(TIMER_SETTIME_FLAGS as u64) != 0 {
            return Err(bad("timerfd settime flags", flags));
        }
        Ok(TimerfdRecord {
            same_as: same_as(b)?,
            clock,
            settime_flags: flags as u32,
            value_ns: get_u64(b, B),
            interval_ns: get_u64(b, C),
            ticks: get_u64(b, D),
            saved_at_ns: get_u64(b, E),
        })
    }
}

impl EpollRecord {
    pub const KIND: u32 = super::fd::FD_EPOLL;
    pub(crate) fn encode_body(&self, b: &mut [u8; FD_SIZE]) {
        put_u32(b, WORD, self.entries);
        put_i32(b, SAME_AS, self.same_as);
    }
    pub(crate) fn decode_body(b: &[u8]) -> Result<Self, ImageError> {
        let entries = get_u32(b, WORD);
        if entries > MAX_EPOLL_ENTRIES {
            return Err(bad("epoll entries", entries.into()));
        }
        Ok(EpollRecord { same_as: same_as(b)?, entries })
    }
}

impl InotifyRecord {
    pub const KIND: u32 = super::fd::FD_INOTIFY;
    pub(crate) fn encode_body(&self, b: &mut [u8; FD_SIZE]) {
        put_u32(b, WORD, self.watches);
        put_i32(b, SAME_AS, self.same_as);
        put_i32(b, A, self.last_wd);
        put_u64(b, B, self.queued);
    }
    pub(crate) fn decode_body(b: &[u8]) -> Result<Self, ImageError> {
        let watches = get_u32(b, WORD);
        if watches > MAX_INOTIFY_WATCHES {
            return Err(bad("inotify watches", watches.into()));
        }
        let last_wd = get_i32(b, A);
        if last_wd < 0 {
            return Err(bad("inotify last wd", last_wd as u32 as u64));
        }
        Ok(InotifyRecord { same_as: same_as(b)?, watches, last_wd, queued: get_u64(b, B) })
    }
}

#[cfg(test)]
mod tests {
    use super::super::fd::*;
    use super::super::{FdBody, FdRecord};
    use super::*;

    fn bodies() -> [FdBody; 5] {
        [
            FdBody::Eventfd(EventfdRecord { same_as: -1, count: 0xfffffffffffffffe, semaphore: true, desc: (4242, 7) }),
            FdBody::Signalfd(SignalfdRecord { same_as: 3, mask: 1 << 9 | 1 << 36 }),
            FdBody::Timerfd(TimerfdRecord {
                same_as: -1,
                clock: 7,
                settime_flags: 3,
                value_ns: 1_500_000_000,
                interval_ns: 250_000_000,
                ticks: 4,
                saved_at_ns: 1_800_000_000_000_000_000,
            }),
            FdBody::Epoll(EpollRecord { same_as: -1, entries: 5 }),
            FdBody::Inotify(InotifyRecord { same_as: 9, watches: 2, last_wd: 17, queued: 48 }),
        ]
    }

    fn encoded(body: FdBody) -> [u8; FD_SIZE] {
        let mut b = [0xaau8; FD_SIZE];
        FdRecord { fd: 11, fd_flags: 1, status: 0o4002, body }.encode(&mut b);
        b
    }

    #[test]
    fn every_event_body_round_trips_with_its_kind_tag() {
        let tags = [FD_EVENTFD, FD_SIGNALFD, FD_TIMERFD, FD_EPOLL, FD_INOTIFY];
        for (body, tag) in bodies().into_iter().zip(tags) {
            let b = encoded(body);
            assert_eq!(get_u32(&b, KIND), tag);
            let r = FdRecord::decode(&b).unwrap();
            assert_eq!((r.fd, r.fd_flags, r.status, r.body), (11, 1, 0o4002, body));
            assert_eq!(r.kind(), tag);
        }
    }

    #[test]
    fn event_bodies_sit_at_their_offsets() {
        let [ev, _, tm, _, ino] = bodies();
        let b = encoded(ev);
        assert_eq!((get_u32(&b, WORD), get_i32(&b, SAME_AS), get_u64(&b, A)), (1, -1, 0xfffffffffffffffe));
        let b = encoded(tm);
        assert_eq!(get_u32(&b, WORD), 7);
        assert_eq!(
            [get_u64(&b, A), get_u64(&b, B), get_u64(&b, C), get_u64(&b, D)],
            [3, 1_500_000_000, 250_000_000, 4]
        );
        let b = encoded(ino);
        assert_eq!((get_u32(&b, WORD), get_i32(&b, SAME_AS), get_i32(&b, A), get_u64(&b, B)), (2, 9, 17, 48));
        assert!(b[C..].iter().all(|&c| c == 0), "unused bytes are zero");
    }

    #[test]
    fn event_bodies_refuse_values_the_kernel_never_has() {
        let [ev, sg, tm, ep, ino] = bodies();
        let field = |r: Result<FdRecord, ImageError>| match r {
            Err(ImageError::BadField { record: Record::Fd, field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let mut b = encoded(ev);
        put_u32(&mut b, WORD, 2);
        assert_eq!(field(FdRecord::decode(&b)), "eventfd semaphore");
        let mut b = encoded(ev);
        put_u64(&mut b, A, u64::MAX);
        assert_eq!(field(FdRecord::decode(&b)), "eventfd count");
        let mut b = encoded(sg);
        put_i32(&mut b, SAME_AS, -2);
        assert_eq!(field(FdRecord::decode(&b)), "same_as");
        let mut b = encoded(tm);
        put_u32(&mut b, WORD, 2); // CLOCK_PROCESS_CPUTIME_ID: not a timerfd clock
        assert_eq!(field(FdRecord::decode(&b)), "timerfd clock");
        let mut b = encoded(tm);
        put_u64(&mut b, A, 4);
        assert_eq!(field(FdRecord::decode(&b)), "timerfd settime flags");
        let mut b = encoded(ep);
        put_u32(&mut b, WORD, MAX_EPOLL_ENTRIES + 1);
        assert_eq!(field(FdRecord::decode(&b)), "epoll entries");
        let mut b = encoded(ino);
        put_u32(&mut b, WORD, MAX_INOTIFY_WATCHES + 1);
        assert_eq!(field(FdRecord::decode(&b)), "inotify watches");
        let mut b = encoded(ino);
        put_i32(&mut b, A, -5);
        assert_eq!(field(FdRecord::decode(&b)), "inotify last wd");
        for body in bodies() {
            let b = encoded(body);
            assert_eq!(FdRecord::decode(&b[..FD_SIZE - 1]), Err(ImageError::Short { record: Record::Fd, len: 63 }));
        }
    }
}
