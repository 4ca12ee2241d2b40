//! Shared memory on the tool side: every shared memory object that only the kernel held at
//! checkpoint (anonymous shared memory inherited over fork, a memfd, a deleted /dev/shm or other
//! file: the images' `AREA_SHM` areas) is made once per group, as a memfd, by the group's init
//! before it creates any process; each process that mapped it gets the memfd at an fd above all
//! of its own, and its restorer (`mtcp_restart --region FD:DEV:INODE`) maps it MAP_SHARED at
//! the old addresses and closes it. The one image that holds the object's pages (the process
//! elected at checkpoint, libdmtcp `resources/shm.rs`) fills it; every other process sees the
//! pages through its own mapping, before any of them runs (the RESTART barrier).
//!
//! An object is named by the (device, inode) the images recorded, the same in every process
//! that shared it, in any launch (the kernel's inode numbers are the machine's). An object that
//! the images of two groups (pid namespaces, that is separate launches: a memfd passed over a
//! UNIX socket, a /dev/shm file both mapped before it was unlinked) map is made once by
//! `dmtcp_restart` before any group (`across_groups`, as the sockets are), and every group's
//! init uses a copy of that memfd instead of making its own, so the launches share it again;
//! the one image elected at checkpoint (the lock file is in the checkpoint folder, shared by
//! both) fills it.
//!
//! The planning is pure (`plan`, unit-tested in `plan.rs`); `make` carries it out (see
//! `pipes.rs` for what a kind file provides).
use super::pipes::ProcFds;
use super::plan::{FdPlacement, FdSource, FdWhat, ImageFacts, RegionArg, RESERVED_FDS};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// One shared memory object to make: its old (device, inode), its size (the end of the
/// furthest range any process mapped) and a name for the memfd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShmPlan {
    pub dev: u64,
    pub inode: u64,
    pub size: u64,
    pub name: String,
}

/// The memfd name for an object named `area` in /proc/self/maps: a memfd keeps its name
/// ("/memfd:cache (deleted)" becomes "cache"), others say where they came from.
pub fn memfd_name(area: &str) -> String {
    let base = area.strip_suffix(" (deleted)").unwrap_or(area);
    let name = match base.strip_prefix("/memfd:") {
        Some(n) => n.to_string(),
        None => format!("dmtcp-shm:{base}"),
    };
    // The kernel takes 249 bytes of name; cut on a character boundary.
    let mut end = name.len().min(249);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

/// The memfds an image holds open: (fd, dev, inode, size).
fn memfds(img: &ImageFacts) -> impl Iterator<Item = (RawFd, u64, u64, u64)> + '_ {
    img.fds.iter().filter_map(|f| match f.what {
        FdWhat::Memfd { dev, inode, size } => Some((f.fd, dev, inode, size)),
        _ => None,
    })
}

/// Plans the shared memory of one group (`members`: its images, in order): the objects (from
/// the shared memory areas and the memfds held open), and for each member the fds it gets (a
/// memfd at its old fd; every object it maps at an fd above all of its own, for the restorer)
/// and the `--region` arguments of its restorer. An object's size is the memfd's own when a
/// process held it open, else the end of the furthest range any process mapped.
pub fn plan(members: &[&ImageFacts]) -> (Vec<ShmPlan>, Vec<(ProcFds, Vec<RegionArg>)>) {
    let mut objects: Vec<ShmPlan> = Vec::new();
    let mut exact: Vec<bool> = Vec::new();
    for img in members {
        for (_, dev, inode, size) in memfds(img) {
            match objects.iter().position(|o| o.dev == dev && o.inode == inode) {
                Some(k) => objects[k].size = objects[k].size.max(size),
                None => {
                    objects.push(ShmPlan { dev, inode, size, name: String::new() });
                    exact.push(true);
                }
            }
        }
    }
    for img in members {
        for s in &img.shm {
            match objects.iter().position(|o| o.dev == s.dev && o.inode == s.inode) {
                Some(k) => {
                    if !exact[k] {
                        objects[k].size = objects[k].size.max(s.end);
                    }
                    if objects[k].name.is_empty() {
                        objects[k].name = memfd_name(&s.name);
                    }
                }
                None => {
                    objects.push(ShmPlan { dev: s.dev, inode: s.inode, size: s.end, name: memfd_name(&s.name) });
                    exact.push(false);
                }
            }
        }
    }
    for o in &mut objects {
        if o.name.is_empty() {
            o.name = "dmtcp-memfd".into();
        }
    }
    let per_member = members
        .iter()
        .map(|img| {
            let mut fds = ProcFds::default();
            for (fd, dev, inode, _) in memfds(img) {
                let k = objects.iter().position(|o| o.dev == dev && o.inode == inode).expect("planned above");
                if RESERVED_FDS.contains(&fd) {
                    fds.skipped.push(fd);
                } else {
                    fds.placed.push(FdPlacement { fd, source: FdSource::Shm(k) });
                }
            }
            // Above every fd the process gets and dmtcp's own: the restorer closes these.
            let mut next = img.fds.iter().map(|f| f.fd).chain(RESERVED_FDS).max().unwrap_or(0) + 1;
            let mut regions = Vec::new();
            for (k, o) in objects.iter().enumerate() {
                if img.shm.iter().any(|s| s.dev == o.dev && s.inode == o.inode) {
                    fds.placed.push(FdPlacement { fd: next, source: FdSource::Shm(k) });
                    regions.push(RegionArg { fd: next, dev: o.dev, inode: o.inode });
                    next += 1;
                }
            }
            (fds, regions)
        })
        .collect();
    (objects, per_member)
}

/// The group's memfds, index = `FdSource::Shm`.
pub struct Made {
    fds: Vec<OwnedFd>,
}

/// Objects that more than one group maps, made once before any group: (dev, inode, memfd).
#[derive(Default)]
pub struct Across {
    objects: Vec<(u64, u64, OwnedFd)>,
}

/// Which objects of `groups` (each group's `ShmPlan`s) more than one group has, each once, with
/// the largest size any group planned, in the order first met. Pure.
pub fn plan_across(groups: &[&[ShmPlan]]) -> Vec<ShmPlan> {
    let mut out: Vec<ShmPlan> = Vec::new();
    for (g, plans) in groups.iter().enumerate() {
        for p in plans.iter() {
            let elsewhere = groups
                .iter()
                .enumerate()
                .any(|(h, o)| h != g && o.iter().any(|q| q.dev == p.dev && q.inode == p.inode));
            if !elsewhere {
                continue;
            }
            match out.iter_mut().find(|o| o.dev == p.dev && o.inode == p.inode) {
                Some(o) => o.size = o.size.max(p.size),
                None => out.push(p.clone()),
            }
        }
    }
    out
}

/// Makes the objects that several groups share (`plan_across`): each group's init inherits
/// them and `make` uses them.
pub fn across_groups(groups: &[&[ShmPlan]]) -> Result<Across, String> {
    let plans = plan_across(groups);
    let made = make_memfds(&plans)?;
    Ok(Across { objects: plans.iter().zip(made).map(|(p, fd)| (p.dev, p.inode, fd)).collect() })
}

/// Makes the memfds of `plans` (close-on-exec), each of its size; an object in `across` (made
/// before the groups) is a copy of that memfd instead.
pub fn make(plans: &[ShmPlan], across: &Across) -> Result<Made, String> {
    let mut fds = Vec::with_capacity(plans.len());
    for p in plans {
        match across.objects.iter().find(|(dev, inode, _)| *dev == p.dev && *inode == p.inode) {
            Some((_, _, fd)) => {
                fds.push(fd.try_clone().map_err(|e| format!("a copy of shared memory {}: {e}", p.name))?);
            }
            None => fds.extend(make_memfds(std::slice::from_ref(p))?),
        }
    }
    Ok(Made { fds })
}

fn make_memfds(plans: &[ShmPlan]) -> Result<Vec<OwnedFd>, String> {
    let mut fds = Vec::with_capacity(plans.len());
    for p in plans {
        // Sealable, so that a memfd's seals can be put back (the process adds them, libdmtcp
        // `resources/memfd.rs`); a memfd made without sealing reads as sealed with F_SEAL_SEAL,
        // which it gets back the same way.
        use nix::sys::memfd::{memfd_create, MFdFlags};
        let fd = memfd_create(p.name.replace('\0', "").as_str(), MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)
            .map_err(|e| format!("memfd_create for shared memory {}: {e}", p.name))?;
        let f = std::fs::File::from(fd);
        f.set_len(p.size).map_err(|e| format!("shared memory {} ({} bytes): {e}", p.name, p.size))?;
        fds.push(OwnedFd::from(f));
    }
    Ok(fds)
}

impl Made {
    /// The fd of object `k`.
    pub fn fd(&self, k: usize) -> RawFd {
        self.fds[k].as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(dev: u64, inode: u64, size: u64) -> ShmPlan {
        ShmPlan { dev, inode, size, name: format!("o{inode}") }
    }

    #[test]
    fn objects_of_two_groups_are_made_once_with_the_largest_size() {
        let g1 = [obj(5, 10, 4096), obj(5, 11, 4096)];
        let g2 = [obj(5, 12, 8192), obj(5, 10, 16384)];
        let g3 = [obj(5, 12, 4096)];
        let across = plan_across(&[&g1, &g2, &g3]);
        let got: Vec<(u64, u64)> = across.iter().map(|o| (o.inode, o.size)).collect();
        assert_eq!(got, [(10, 16384), (12, 8192)], "inode 11 is one group's own");
        assert!(plan_across(&[&g1]).is_empty(), "one group shares nothing across");
        assert!(plan_across(&[&g1, &[obj(6, 10, 4096)]]).is_empty(), "another device is another object");
    }
}
