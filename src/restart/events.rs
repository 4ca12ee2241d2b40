//! Event objects on the tool side: every eventfd an image's process held with the FD_SHARED flag
//! (image 2.4) is made by the group's init before it creates any process, once per open file
//! description (the images name a description by the same key, `FdWhat::Eventfd`'s `desc`, as
//! for files), with its counter and semaphore flag, and put at every fd of every process that
//! held it. So a parent and a child that share an eventfd inherited over fork still share one
//! counter after a restart: a write by one is read by the other.
//!
//! signalfd, timerfd, epoll and inotify are still made by each process itself (the library's
//! `resources/events.rs`, `epoll.rs`, `inotify.rs`); an epoll entry naming a shared eventfd
//! finds the shared object at its number, as the library adds entries after the fds are placed.
//!
//! The shape is `pipes.rs`'s: a pure `plan`, unit-tested here, and `make`, run by the init.
use super::pipes::ProcFds;
use super::plan::{FdPlacement, FdSource, FdWhat, ImageFacts, RESERVED_FDS};
use nix::sys::eventfd::{EfdFlags, EventFd};
use std::os::fd::{AsFd, AsRawFd, RawFd};

/// One eventfd to make: its description's key, counter and semaphore flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventfdPlan {
    pub desc: (i32, i32),
    pub count: u64,
    pub semaphore: bool,
}

/// Plans the shared eventfds of one group (`members`: its images, in order): one `EventfdPlan`
/// per description key, in order of first appearance, and for each member the fds that get one.
/// A record at one of dmtcp's own fds is not placed: its process makes its own eventfd there
/// once dmtcp's fds are free (the library's `restore` finds no eventfd at the number).
pub fn plan(members: &[&ImageFacts]) -> (Vec<EventfdPlan>, Vec<ProcFds>) {
    let mut plans: Vec<EventfdPlan> = Vec::new();
    let per_member = members
        .iter()
        .map(|img| {
            let mut fds = ProcFds::default();
            for f in &img.fds {
                let FdWhat::Eventfd { desc, count, semaphore } = f.what else { continue };
                let i = match plans.iter().position(|p| p.desc == desc) {
                    Some(i) => i,
                    None => {
                        plans.push(EventfdPlan { desc, count, semaphore });
                        plans.len() - 1
                    }
                };
                if !RESERVED_FDS.contains(&f.fd) && f.fd >= 0 {
                    fds.placed.push(FdPlacement { fd: f.fd, source: FdSource::Eventfd(i) });
                }
            }
            fds
        })
        .collect();
    (plans, per_member)
}

/// The group's eventfds, made by its init (index = `FdSource::Eventfd`).
pub struct Made {
    eventfds: Vec<EventFd>,
}

/// Makes the eventfds of `plans` (close-on-exec) with their counters.
pub fn make(plans: &[EventfdPlan]) -> Result<Made, String> {
    let mut eventfds = Vec::with_capacity(plans.len());
    for p in plans {
        let flags = EfdFlags::EFD_CLOEXEC | if p.semaphore { EfdFlags::EFD_SEMAPHORE } else { EfdFlags::empty() };
        let e = EventFd::from_flags(flags).map_err(|e| format!("eventfd: {e}"))?;
        if p.count > 0 {
            e.write(p.count).map_err(|err| format!("setting an eventfd's counter to {}: {err}", p.count))?;
        }
        eventfds.push(e);
    }
    Ok(Made { eventfds })
}

impl Made {
    /// The fd of eventfd `i`.
    pub fn fd(&self, i: usize) -> RawFd {
        self.eventfds[i].as_fd().as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restart::plan::FdFact;

    fn img(pid: i32, fds: Vec<FdFact>) -> ImageFacts {
        ImageFacts {
            path: format!("ckpt_{pid}.dmtcp").into(),
            pid,
            parent_pid: 1,
            pgid: 0,
            sid: 0,
            pidns: 7,
            is_root: false,
            fds,
            paths: Vec::new(),
            shm: Vec::new(),
        }
    }

    fn efd(fd: RawFd, desc: (i32, i32), count: u64) -> FdFact {
        FdFact { fd, what: FdWhat::Eventfd { desc, count, semaphore: false } }
    }

    #[test]
    fn an_eventfd_shared_over_fork_is_planned_once_and_placed_in_both_processes() {
        let parent = img(10, vec![efd(3, (10, 3), 5), efd(4, (10, 4), 0), efd(6, (10, 3), 5)]);
        let child = img(11, vec![efd(3, (10, 3), 5), efd(7, (11, 7), 2)]);
        let (plans, per) = plan(&[&parent, &child]);
        assert_eq!(
            plans,
            vec![
                EventfdPlan { desc: (10, 3), count: 5, semaphore: false },
                EventfdPlan { desc: (10, 4), count: 0, semaphore: false },
                EventfdPlan { desc: (11, 7), count: 2, semaphore: false },
            ]
        );
        let src = |p: &ProcFds| p.placed.iter().map(|f| (f.fd, f.source)).collect::<Vec<_>>();
        assert_eq!(src(&per[0]), vec![(3, FdSource::Eventfd(0)), (4, FdSource::Eventfd(1)), (6, FdSource::Eventfd(0))]);
        assert_eq!(src(&per[1]), vec![(3, FdSource::Eventfd(0)), (7, FdSource::Eventfd(2))]);
    }

    #[test]
    fn an_eventfd_at_a_reserved_fd_is_left_to_its_process_and_other_kinds_are_left_alone() {
        let reserved = RESERVED_FDS[0];
        let a = img(10, vec![efd(reserved, (10, reserved), 1), FdFact { fd: 5, what: FdWhat::Other(6) }]);
        let (plans, per) = plan(&[&a]);
        assert_eq!(plans.len(), 1);
        assert!(per[0].skipped.is_empty());
        assert!(per[0].placed.is_empty());
    }

    #[test]
    fn made_eventfds_hold_their_counters_and_flags() {
        let made = make(&[
            EventfdPlan { desc: (1, 3), count: 7, semaphore: true },
            EventfdPlan { desc: (1, 4), count: 1 << 40, semaphore: false },
        ])
        .unwrap();
        let info = |i: usize| std::fs::read_to_string(format!("/proc/self/fdinfo/{}", made.fd(i))).unwrap();
        let count = |i: usize| {
            let s = info(i);
            u64::from_str_radix(s.lines().find_map(|l| l.strip_prefix("eventfd-count:")).unwrap().trim(), 16).unwrap()
        };
        assert_eq!(count(0), 7);
        assert_eq!(count(1), 1 << 40);
        assert_eq!(made.eventfds[0].read().unwrap(), 1, "a semaphore reads 1");
        assert_eq!(count(0), 6);
    }
}
