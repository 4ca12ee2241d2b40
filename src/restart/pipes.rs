//! Pipes on the tool side: the computation's pipes are made once per group, by the group's init
//! before it creates any process, and every process finds its ends at its old fd numbers.
//!
//! This file is the model for every kind of object that must exist across processes before the
//! restorers run (socket pairs, ptys and shared memory next, each in `src/restart/<kind>.rs`).
//! A kind file provides
//! - its planning, pure (called by `plan::plan` for each group, unit-tested in `plan.rs`):
//!   `plan(&[&ImageFacts]) -> (Vec<KindPlan>, Vec<ProcFds>)`, the objects to make for the
//!   group and, for each member, which fd gets which of them (`FdSource` has one variant per
//!   kind) and which fds cannot be had;
//! - its carrying out, run by the group's init: `make(&[KindPlan]) -> Made` (close-on-exec fds,
//!   inherited down the creator tree), and `Made::fd`, the fd that a `FdSource` of the kind
//!   names. The init drops its `Made` once every process exists. Putting the fds at their
//!   numbers is common to all kinds (`spawn::place_fds`).
use super::plan::{End, FdPlacement, FdSource, FdWhat, ImageFacts, RESERVED_FDS};
use crate::common::ns;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// One pipe to make: the old inode (for matching the ends), and the largest capacity any
/// process saw (0: keep the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipePlan {
    pub id: u64,
    pub capacity: u32,
}

/// What a kind gives one process: fds to place, and fds of the computation it cannot place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcFds {
    pub placed: Vec<FdPlacement>,
    pub skipped: Vec<RawFd>,
}

/// The pipe ends an image lists: (fd, old inode, end, capacity).
fn ends(img: &ImageFacts) -> impl Iterator<Item = (RawFd, u64, Option<End>, u32)> + '_ {
    img.fds.iter().filter_map(|f| match f.what {
        FdWhat::Pipe { id, end, capacity } => Some((f.fd, id, end, capacity)),
        _ => None,
    })
}

/// Plans the pipes of one group (`members`: its images, in order).
///
/// A pipe belongs to the computation when its images hold both a read and a write end of it:
/// it is made anew, with the largest capacity any process saw, and every end goes to its old fd
/// (an end the format does not name gets the write end). A pipe held from one side only leads
/// outside, like a shell pipeline's: its ends at fds 0-2 stay `dmtcp_restart`'s own (inherited),
/// and a copy at a higher fd of one of them (a shell's saved stdout at fd 11, say) becomes a copy
/// of that stdio fd; another end of it is left closed.
pub fn plan(members: &[&ImageFacts]) -> (Vec<PipePlan>, Vec<ProcFds>) {
    let mut seen: Vec<PipePlan> = Vec::new();
    for img in members {
        for (_, id, _, capacity) in ends(img) {
            match seen.iter_mut().find(|p| p.id == id) {
                Some(p) => p.capacity = p.capacity.max(capacity),
                None => seen.push(PipePlan { id, capacity }),
            }
        }
    }
    let holds = |id: u64, end: End| members.iter().any(|img| ends(img).any(|e| e.1 == id && e.2 == Some(end)));
    let pipes: Vec<PipePlan> = seen.into_iter().filter(|p| holds(p.id, End::Read) && holds(p.id, End::Write)).collect();

    let per_member = members
        .iter()
        .map(|img| {
            let mut fds = ProcFds::default();
            for (fd, id, end, _) in ends(img) {
                let pipe = pipes.iter().position(|p| p.id == id);
                // dmtcp's own fds are never given away, whatever the program kept there: a
                // computation's pipe end is reported, a copy of an outside pipe just dropped.
                if RESERVED_FDS.contains(&fd) || fd < 0 {
                    if pipe.is_some() {
                        fds.skipped.push(fd);
                    }
                    continue;
                }
                let Some(pipe) = pipe else {
                    if fd > 2 {
                        if let Some((k, ..)) = ends(img).find(|o| o.1 == id && (0..=2).contains(&o.0)) {
                            fds.placed.push(FdPlacement { fd, source: FdSource::Stdio(k) });
                        }
                    }
                    continue;
                };
                let end = if end == Some(End::Read) { End::Read } else { End::Write };
                fds.placed.push(FdPlacement { fd, source: FdSource::Pipe { pipe, end } });
            }
            fds
        })
        .collect();
    (pipes, per_member)
}

/// The group's pipes, made by its init: (read end, write end), index = `FdSource::Pipe::pipe`.
pub struct Made {
    ends: Vec<(OwnedFd, OwnedFd)>,
}

/// Makes the pipes of `plans` (close-on-exec), each with its capacity where one is known; a
/// smaller capacity than asked is not fatal.
pub fn make(plans: &[PipePlan]) -> Result<Made, String> {
    let mut ends = Vec::with_capacity(plans.len());
    for p in plans {
        let (r, w) = ns::pipe().map_err(|e| format!("pipe: {e}"))?;
        if p.capacity > 0 {
            let _ = nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETPIPE_SZ(p.capacity as libc::c_int));
        }
        ends.push((r, w));
    }
    Ok(Made { ends })
}

impl Made {
    /// The fd of one end of pipe `pipe`.
    pub fn fd(&self, pipe: usize, end: End) -> RawFd {
        let (r, w) = &self.ends[pipe];
        match end {
            End::Read => r.as_raw_fd(),
            End::Write => w.as_raw_fd(),
        }
    }
}
