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
//! that shared it. Objects of different groups (pid namespaces, that is separate launches) are
//! made separately: such sharing across launches is not restored.
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

/// Makes the memfds of `plans` (close-on-exec), each of its size.
pub fn make(plans: &[ShmPlan]) -> Result<Made, String> {
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
    Ok(Made { fds })
}

impl Made {
    /// The fd of object `k`.
    pub fn fd(&self, k: usize) -> RawFd {
        self.fds[k].as_raw_fd()
    }
}
