//! Ptys on the tool side: each pseudo-terminal pair the computation made (posix_openpt,
//! openpty, forkpty: `script`, `expect`, a program's own) is made again once per group, by the
//! group's init before it creates any process, and every process finds the master and slave
//! ends it had at its old fd numbers (`pipes.rs` is the model and says what a kind file
//! provides). Pairs are named by their old pty number; the new pair may get another number, and
//! the kernel names the new slave everywhere (ptsname, ttyname, /proc/self/fd). The session
//! leader that had the slave as its controlling terminal takes it again itself (TIOCSCTTY in
//! the library's restore), which also gives the pty's settings and bytes in flight back.
use super::pipes::ProcFds;
use super::plan::{FdPlacement, FdSource, FdWhat, ImageFacts, PtySide, RESERVED_FDS};
use nix::pty::PtyMaster;
use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

/// One pty pair to make: its old number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PtyPlan {
    pub index: u32,
}

/// The pty ends an image lists: (fd, old number, end).
fn ends(img: &ImageFacts) -> impl Iterator<Item = (RawFd, u32, PtySide)> + '_ {
    img.fds.iter().filter_map(|f| match f.what {
        FdWhat::Pty { index, side } => Some((f.fd, index, side)),
        _ => None,
    })
}

/// The old numbers of the ptys whose master some process of the computation held.
pub fn mastered(images: &[ImageFacts]) -> Vec<u32> {
    let mut v: Vec<u32> = images.iter().flat_map(|i| ends(i).filter(|e| e.2 == PtySide::Master).map(|e| e.1)).collect();
    v.sort();
    v.dedup();
    v
}

/// Plans the ptys of one group (`members`: its images, in order): one pair per old number any
/// member held an end of (a pair whose slave nobody holds is made whole: that end was closed,
/// as `script`'s child closes the master), each end at its old fd. dmtcp's own fds are never
/// given away: such an end is reported.
///
/// A slave whose master no process of the computation held (`mastered`) belongs to a
/// terminal outside it: the user's terminal as a screen daemon holds it (opened by name, in a
/// session of its own, so the library's `tty` kind cannot tell it is the user's). A new pair
/// would have no master, and its reader would see the hang-up at once (the daemon detaches).
/// The end gets a copy of `dmtcp_restart`'s stdin instead: the new terminal the restart runs
/// in, as for the user's terminal everywhere else (or what stdin is without one).
pub fn plan(members: &[&ImageFacts], mastered: &[u32]) -> (Vec<PtyPlan>, Vec<ProcFds>) {
    let mut ptys: Vec<PtyPlan> = Vec::new();
    for img in members {
        for (_, index, _) in ends(img) {
            if mastered.contains(&index) && !ptys.iter().any(|p| p.index == index) {
                ptys.push(PtyPlan { index });
            }
        }
    }
    let per_member = members
        .iter()
        .map(|img| {
            let mut fds = ProcFds::default();
            for (fd, index, side) in ends(img) {
                if RESERVED_FDS.contains(&fd) || fd < 0 {
                    fds.skipped.push(fd);
                    continue;
                }
                let source = match ptys.iter().position(|p| p.index == index) {
                    Some(pty) => FdSource::Pty { pty, side },
                    None => FdSource::Stdio(0),
                };
                fds.placed.push(FdPlacement { fd, source });
            }
            fds
        })
        .collect();
    (ptys, per_member)
}

/// The group's ptys, made by its init: (master, slave), index = `FdSource::Pty::pty`.
pub struct Made {
    ends: Vec<(PtyMaster, File)>,
}

/// Makes one pair per plan: a master from /dev/ptmx, unlocked, and its slave opened by name,
/// both close-on-exec and without becoming anyone's controlling terminal.
pub fn make(plans: &[PtyPlan]) -> Result<Made, String> {
    let mut ends = Vec::with_capacity(plans.len());
    for p in plans {
        let what = |step: &str, e: nix::errno::Errno| {
            format!("cannot make the pty of /dev/pts/{} again: {step}: {}", p.index, e.desc())
        };
        let flags = nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC;
        let master = nix::pty::posix_openpt(flags).map_err(|e| what("posix_openpt", e))?;
        nix::pty::grantpt(&master).map_err(|e| what("grantpt", e))?;
        nix::pty::unlockpt(&master).map_err(|e| what("unlockpt", e))?;
        let name = nix::pty::ptsname_r(&master).map_err(|e| what("ptsname", e))?;
        // std opens close-on-exec.
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&name)
            .map_err(|e| format!("cannot open the new slave {name} for /dev/pts/{}: {e}", p.index))?;
        ends.push((master, slave));
    }
    Ok(Made { ends })
}

impl Made {
    /// The fd of one end of pty `pty`.
    pub fn fd(&self, pty: usize, side: PtySide) -> RawFd {
        let (m, s) = &self.ends[pty];
        match side {
            PtySide::Master => m.as_raw_fd(),
            PtySide::Slave => s.as_raw_fd(),
        }
    }
}
