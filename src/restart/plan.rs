//! Restart planning: a pure function from what the images say to what `dmtcp_restart` will do.
//! No I/O, no processes, no image reader: the input is one plain `ImageFacts` per image (built
//! from the checked image by `super::facts`), the output a `Plan` that `spawn` carries out.
//!
//! The plan decides
//! - the groups: images that ran in one pid namespace (header PIDNS) restart in one new
//!   namespace, in the order the images were given;
//! - the root of each group (IS_ROOT, else its first image) and the group whose root's status
//!   `dmtcp_restart` ends with (the one holding the IS_ROOT image, else the first);
//! - the creator tree (header PARENT_PID): the group's init creates the processes whose parent
//!   is not in the group, and every process creates its own children before it becomes its
//!   restorer, so the creation order is a depth-first walk of that tree;
//! - sessions and process groups (SID, PGID): a process that led a session or a group leads it
//!   again before creating its children, and its children are created session leaders first,
//!   then group leaders, then the rest (so that members find the group they join);
//! - the fds each process gets from the objects made for the group (see `pipes` for the pipes).
//!
//! What the current images cannot mean (a process id of 0 or 1, two images of one process in
//! one namespace, parents that form a cycle) is refused with a `PlanError` naming the image.
pub use super::events::EventfdPlan;
pub use super::files::FilePlan;
pub use super::pipes::PipePlan;
pub use super::ptys::PtyPlan;
pub use super::shm::ShmPlan;
use super::sockets;
pub use super::sockets::SockPlan;
use super::{events, files, ipc, pipes, ptys, shm};
use dmtcp_proto::image::{InetSocketRecord, SysvRecord, UnixSocketRecord};
use std::fmt;
use std::os::fd::RawFd;
use std::path::PathBuf;

/// The fds of dmtcp's own at the exec of the restorer (restart facts, coordinator, image): no
/// pipe of the computation is put there.
pub const RESERVED_FDS: [RawFd; 3] = [dmtcp_proto::env::RESTART_INFO_FD, dmtcp_proto::COORD_FD, super::IMAGE_FD];

/// What planning needs to know about one image (its header and fd table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    /// The image file, for messages.
    pub path: PathBuf,
    pub pid: i32,
    pub parent_pid: i32,
    /// Process group and session ids as seen in the image's namespace (0: outside it).
    pub pgid: i32,
    pub sid: i32,
    /// The pid namespace the process ran in.
    pub pidns: u64,
    pub is_root: bool,
    /// The fd table, in the image's order.
    pub fds: Vec<FdFact>,
    /// The paths of its files (`FdWhat::File::path` indexes it).
    pub paths: Vec<PathBuf>,
    /// The shared memory areas only the kernel held (image `AREA_SHM`), in the area order.
    pub shm: Vec<ShmFact>,
}

/// One shared memory area of an image: the object's old (device, inode), where the mapped
/// range of it ends (offset + length), and its /proc/self/maps name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShmFact {
    pub dev: u64,
    pub inode: u64,
    pub end: u64,
    pub name: String,
}

/// A `--region FD:DEV:INODE` argument of a restorer: the memfd at `fd` is the object (dev, inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionArg {
    pub fd: RawFd,
    pub dev: u64,
    pub inode: u64,
}

/// One record of an image's fd table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdFact {
    pub fd: RawFd,
    pub what: FdWhat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdWhat {
    /// One end of a pipe: the pipe's old inode, which end (None: a value the format does not
    /// name), and the pipe's capacity as the process saw it (0: unknown).
    Pipe { id: u64, end: Option<End>, capacity: u32 },
    /// A file reopened by path (`files.rs`): its open file description's key (the same in
    /// every image whose fd shared it), its path (an index into `ImageFacts::paths`), offset and
    /// status flags (F_GETFL).
    File { desc: (i32, i32), path: usize, offset: u64, status: u32 },
    /// An fd no kind restores: a placeholder holds its number.
    Placeholder,
    /// A memfd: the object's old (device, inode) and its size (`shm.rs` makes it).
    Memfd { dev: u64, inode: u64, size: u64 },
    /// A UNIX socket (paired by inode and peer inode: `sockets`).
    UnixSocket(UnixSocketRecord),
    /// A TCP or UDP socket (TCP connections paired by address pair: `sockets`).
    InetSocket(InetSocketRecord),
    /// One end of a pty pair the computation made: its old number (/dev/pts/<index>).
    Pty { index: u32, side: PtySide },
    /// A System V IPC object the process counted as the computation's (no fd: `ipc.rs`).
    Sysv(SysvRecord),
    /// An eventfd made by `dmtcp_restart` (FD_SHARED, image 2.4): its description's key (the
    /// same in every image whose fd shared it), counter and semaphore flag (`events.rs`).
    Eventfd { desc: (i32, i32), count: u64, semaphore: bool },
    /// A record of a kind the restart does not recreate (the record's kind number).
    Other(u32),
}

/// A pty's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PtySide {
    Master,
    Slave,
}

/// A pipe's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Read,
    Write,
}

/// Everything `dmtcp_restart` does, decided before any process exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// One per pid namespace, in the order of the images that first name them.
    pub groups: Vec<GroupPlan>,
    /// One per image, in the images' order (index = image index).
    pub procs: Vec<ProcPlan>,
    /// The group whose root's status `dmtcp_restart` ends with.
    pub root_group: usize,
    /// The sockets `dmtcp_restart` makes before any group exists (index =
    /// `FdSource::Socket::sock`); every group inherits them.
    pub sockets: Vec<SockPlan>,
    /// What the restart will not give back as it was (connections to peers outside), to log.
    pub warnings: Vec<String>,
}

/// The images of one pid namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPlan {
    pub pidns: u64,
    /// Image indices, in the images' order.
    pub members: Vec<usize>,
    /// The image whose status is the group's (IS_ROOT, else the first member).
    pub root: usize,
    /// The images the group's init creates itself (their parent is not in the group), in order.
    pub tops: Vec<usize>,
    /// The pipes the init makes before it creates any process (index = `FdSource::Pipe::pipe`).
    pub pipes: Vec<PipePlan>,
    /// The file descriptions the init opens (index = `FdSource::File`).
    pub files: Vec<FilePlan>,
    /// The shared memory objects the init makes (memfds; index = `FdSource::Shm`).
    pub shm: Vec<ShmPlan>,
    /// The pty pairs it makes (index = `FdSource::Pty::pty`).
    pub ptys: Vec<PtyPlan>,
    /// The shared eventfds it makes (index = `FdSource::Eventfd`).
    pub eventfds: Vec<EventfdPlan>,
    /// The System V objects it makes (`ipc.rs`).
    pub ipc: Vec<SysvRecord>,
    /// Whether it gets an IPC namespace of its own (System V objects or message queues).
    pub ipc_ns: bool,
}

/// The process of one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcPlan {
    pub group: usize,
    /// Its old pid, which it gets again in a namespace.
    pub pid: i32,
    pub creator: Creator,
    /// What it does about its session and process group before it creates its children.
    pub ids: IdSteps,
    /// The images it creates, in this order.
    pub children: Vec<usize>,
    /// The fds it gets before the restorer runs, in the image's order.
    pub fds: Vec<FdPlacement>,
    /// Fds of the computation it cannot get (they are dmtcp's own: `RESERVED_FDS`); reported.
    pub skipped_fds: Vec<RawFd>,
    /// The shared memory objects its restorer maps (`mtcp_restart --region`).
    pub regions: Vec<RegionArg>,
}

/// Who creates a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creator {
    /// The group's init (pid 1 of the namespace), because the parent is not in the group.
    Init,
    /// The process of this image, its old parent.
    Process(usize),
}

/// A process's session and process group steps, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdSteps {
    /// It led a session: setsid() (which also makes it the leader of a new group).
    pub new_session: bool,
    pub group: GroupStep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupStep {
    /// Keep the group it has (inherited, or made by setsid); also when the old group's leader
    /// is not among the images (it had exited, or was outside the namespace).
    Keep,
    /// It led a group in another process's session: setpgid(0, 0).
    Lead,
    /// Join the group of this pid, led by another image's process created before it.
    Join(i32),
}

/// One fd a process gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdPlacement {
    pub fd: RawFd,
    pub source: FdSource,
}

/// Where a placed fd comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdSource {
    /// An end of the group's pipe number `pipe` (`GroupPlan::pipes`).
    Pipe { pipe: usize, end: End },
    /// End `end` (0 or 1) of the computation's socket number `sock` (`Plan::sockets`).
    Socket { sock: usize, end: u8 },
    /// A copy of `dmtcp_restart`'s own fd 0, 1 or 2 (inherited by every process).
    Stdio(RawFd),
    /// The group's file description number `i` (`GroupPlan::files`).
    File(usize),
    /// The group's placeholder, which fails every call (`files.rs`).
    Placeholder,
    /// The group's shared memory object number k (`GroupPlan::shm`), a memfd.
    Shm(usize),
    /// An end of the group's pty number `pty` (`GroupPlan::ptys`).
    Pty { pty: usize, side: PtySide },
    /// The group's shared eventfd number i (`GroupPlan::eventfds`).
    Eventfd(usize),
}

/// Images that cannot be restarted together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// A process id no restartable process has.
    BadPid { image: PathBuf, pid: i32 },
    /// Two images of one process (same pid in one namespace).
    SameProcess { first: PathBuf, second: PathBuf, pid: i32 },
    /// The image's process is its own ancestor: the parent pids form a cycle.
    ParentCycle { image: PathBuf, pid: i32, parent: i32 },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::BadPid { image, pid } => write!(f, "{}: corrupt image (process id {pid})", image.display()),
            PlanError::SameProcess { first, second, pid } => write!(
                f,
                "{} and {} are images of the same process (pid {pid}); give only one",
                first.display(),
                second.display()
            ),
            PlanError::ParentCycle { image, pid, parent } => write!(
                f,
                "{}: corrupt image (process {pid} is its own ancestor: its parent {parent} descends from it)",
                image.display()
            ),
        }
    }
}

impl std::error::Error for PlanError {}

impl Plan {
    /// The order in which the processes of group `g` are created: the init's first top, the
    /// whole subtree it creates (depth first, children in their planned order), the next top.
    pub fn creation_order(&self, g: usize) -> Vec<usize> {
        let mut order = Vec::with_capacity(self.groups[g].members.len());
        let mut stack: Vec<usize> = self.groups[g].tops.iter().rev().copied().collect();
        while let Some(i) = stack.pop() {
            order.push(i);
            stack.extend(self.procs[i].children.iter().rev());
        }
        order
    }
}

/// Plans the restart of `images` (see the module docs).
pub fn plan(images: &[ImageFacts]) -> Result<Plan, PlanError> {
    let mut groups: Vec<GroupPlan> = Vec::new();
    let mut warnings = Vec::new();
    let mut group_of = Vec::with_capacity(images.len());
    for (i, img) in images.iter().enumerate() {
        let g = match groups.iter().position(|g| g.pidns == img.pidns) {
            Some(g) => g,
            None => {
                groups.push(GroupPlan {
                    pidns: img.pidns,
                    members: Vec::new(),
                    root: i,
                    tops: Vec::new(),
                    pipes: Vec::new(),
                    files: Vec::new(),
                    eventfds: Vec::new(),
                    shm: Vec::new(),
                    ptys: Vec::new(),
                    ipc: Vec::new(),
                    ipc_ns: false,
                });
                groups.len() - 1
            }
        };
        groups[g].members.push(i);
        group_of.push(g);
    }
    let mut procs: Vec<ProcPlan> = images
        .iter()
        .zip(&group_of)
        .map(|(img, &group)| ProcPlan {
            group,
            pid: img.pid,
            creator: Creator::Init,
            ids: IdSteps { new_session: false, group: GroupStep::Keep },
            children: Vec::new(),
            fds: Vec::new(),
            skipped_fds: Vec::new(),
            regions: Vec::new(),
        })
        .collect();

    for g in &mut groups {
        check_pids(images, &g.members)?;
        if let Some(&r) = g.members.iter().find(|&&i| images[i].is_root) {
            g.root = r;
        }
        let member_with_pid = |pid: i32| g.members.iter().copied().find(|&m| images[m].pid == pid);
        for &m in &g.members {
            match member_with_pid(images[m].parent_pid) {
                Some(p) => procs[m].creator = Creator::Process(p),
                None => g.tops.push(m),
            }
            procs[m].ids = id_steps(&images[m], |pgid| member_with_pid(pgid).is_some());
            // Leaders of sessions and process groups first, so that their members can join
            // them; otherwise in the images' order (the sort is stable).
            let me = images[m].pid;
            let mut kids: Vec<usize> =
                g.members.iter().copied().filter(|&c| c != m && images[c].parent_pid == me).collect();
            kids.sort_by_key(|&c| (images[c].sid != images[c].pid, images[c].pgid != images[c].pid));
            procs[m].children = kids;
        }
        check_cycles(images, g, &procs)?;

        let members: Vec<&ImageFacts> = g.members.iter().map(|&m| &images[m]).collect();
        let (made, per_member) = pipes::plan(&members);
        g.pipes = made;
        for (&m, fds) in g.members.iter().zip(per_member) {
            procs[m].fds.extend(fds.placed);
            procs[m].skipped_fds.extend(fds.skipped);
        }
        let (made, per_member) = files::plan(&members);
        g.files = made;
        for (&m, fds) in g.members.iter().zip(per_member) {
            procs[m].fds.extend(fds.placed);
            procs[m].skipped_fds.extend(fds.skipped);
        }
        let (made, per_member) = events::plan(&members);
        g.eventfds = made;
        for (&m, fds) in g.members.iter().zip(per_member) {
            procs[m].fds.extend(fds.placed);
            procs[m].skipped_fds.extend(fds.skipped);
        }
        let (made, per_member) = ptys::plan(&members, &ptys::mastered(images));
        g.ptys = made;
        for (&m, fds) in g.members.iter().zip(per_member) {
            procs[m].fds.extend(fds.placed);
            procs[m].skipped_fds.extend(fds.skipped);
        }
        let (objects, per_member) = shm::plan(&members);
        g.shm = objects;
        for (&m, (fds, regions)) in g.members.iter().zip(per_member) {
            procs[m].fds.extend(fds.placed);
            procs[m].skipped_fds.extend(fds.skipped);
            procs[m].regions = regions;
        }
        let (objects, warned) = ipc::plan(&members);
        g.ipc_ns = ipc::needs_namespace(&members, &objects);
        g.ipc = objects;
        warnings.extend(warned);
    }
    let per_group: Vec<&[SysvRecord]> = groups.iter().map(|g| g.ipc.as_slice()).collect();
    warnings.extend(ipc::across_groups(&per_group));
    // Sockets do not belong to a pid namespace: they are planned over every image, so that the
    // ends of a connection between two launches (two groups) are paired too.
    let all: Vec<&ImageFacts> = images.iter().collect();
    let (sockets, per_image, warned) = sockets::plan(&all);
    warnings.extend(warned);
    for (m, fds) in per_image.into_iter().enumerate() {
        procs[m].fds.extend(fds.placed);
        procs[m].skipped_fds.extend(fds.skipped);
    }
    let root_group = groups.iter().position(|g| g.members.iter().any(|&i| images[i].is_root)).unwrap_or(0);
    Ok(Plan { groups, procs, root_group, sockets, warnings })
}

/// Process ids 0 and 1 are no restartable process's (1 is the namespace's init); one pid is one
/// process, so two images with it are a mistake.
fn check_pids(images: &[ImageFacts], members: &[usize]) -> Result<(), PlanError> {
    for (k, &i) in members.iter().enumerate() {
        let pid = images[i].pid;
        if pid <= 1 {
            return Err(PlanError::BadPid { image: images[i].path.clone(), pid });
        }
        if let Some(&j) = members[..k].iter().find(|&&j| images[j].pid == pid) {
            return Err(PlanError::SameProcess { first: images[j].path.clone(), second: images[i].path.clone(), pid });
        }
    }
    Ok(())
}

/// Every member must be reachable from the init through the creator tree; one that is not
/// hangs off a cycle of parents, and the error names a process on that cycle.
fn check_cycles(images: &[ImageFacts], g: &GroupPlan, procs: &[ProcPlan]) -> Result<(), PlanError> {
    let mut reached = vec![false; images.len()];
    let mut stack = g.tops.clone();
    while let Some(i) = stack.pop() {
        reached[i] = true;
        stack.extend(&procs[i].children);
    }
    let Some(&start) = g.members.iter().find(|&&m| !reached[m]) else {
        return Ok(());
    };
    // Walk up the parents: they stay inside the group (a member whose parent is outside is a
    // top), so the walk comes back to a process it has seen, which is on the cycle.
    let mut seen = vec![false; images.len()];
    let mut i = start;
    while !seen[i] {
        seen[i] = true;
        i = match procs[i].creator {
            Creator::Process(p) => p,
            Creator::Init => unreachable!("a top is reached from the init"),
        };
    }
    Err(PlanError::ParentCycle { image: images[i].path.clone(), pid: images[i].pid, parent: images[i].parent_pid })
}

/// `is_member(pgid)`: whether a process of the group has that pid. Ids outside the namespace
/// read as 0 and are kept as inherited.
fn id_steps(img: &ImageFacts, is_member: impl Fn(i32) -> bool) -> IdSteps {
    let (me, pgid, sid) = (img.pid, img.pgid, img.sid);
    let group = if pgid == me && sid != me {
        GroupStep::Lead
    } else if pgid != me && pgid > 1 && is_member(pgid) {
        GroupStep::Join(pgid)
    } else {
        GroupStep::Keep
    };
    IdSteps { new_session: sid == me, group }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dmtcp_proto::image::socket_inet::INET_PENDING;
    use dmtcp_proto::image::{InetAddr, SockState};

    /// An image of process `pid` (child of `ppid`) in namespace 7, in its parent's session and
    /// group 0 (outside), without fds.
    fn img(name: &str, pid: i32, ppid: i32) -> ImageFacts {
        ImageFacts {
            path: PathBuf::from(name),
            pid,
            parent_pid: ppid,
            pgid: 0,
            sid: 0,
            pidns: 7,
            is_root: false,
            fds: Vec::new(),
            paths: Vec::new(),
            shm: Vec::new(),
        }
    }

    fn pipe_end(fd: RawFd, id: u64, end: End) -> FdFact {
        FdFact { fd, what: FdWhat::Pipe { id, end: Some(end), capacity: 0 } }
    }

    fn with_fds(mut i: ImageFacts, fds: Vec<FdFact>) -> ImageFacts {
        i.fds = fds;
        i
    }

    fn ids(i: ImageFacts, pgid: i32, sid: i32) -> ImageFacts {
        ImageFacts { pgid, sid, ..i }
    }

    fn pipe_src(p: &Plan, img: usize, fd: RawFd) -> Option<FdSource> {
        p.procs[img].fds.iter().find(|f| f.fd == fd).map(|f| f.source)
    }

    #[test]
    fn family_tree_is_created_depth_first_by_the_parents() {
        // 10 -> (11 -> 13, 12); 10's parent is outside (the launcher).
        let images = vec![img("a", 10, 1), img("b", 11, 10), img("c", 12, 10), img("d", 13, 11)];
        let p = plan(&images).unwrap();
        assert_eq!(p.groups.len(), 1);
        assert_eq!(p.groups[0].tops, vec![0]);
        assert_eq!(p.procs[0].creator, Creator::Init);
        assert_eq!(p.procs[1].creator, Creator::Process(0));
        assert_eq!(p.procs[2].creator, Creator::Process(0));
        assert_eq!(p.procs[3].creator, Creator::Process(1));
        assert_eq!(p.procs[0].children, vec![1, 2]);
        assert_eq!(p.procs[1].children, vec![3]);
        assert!(p.procs[3].children.is_empty());
        assert_eq!(p.creation_order(0), vec![0, 1, 3, 2]);
    }

    #[test]
    fn children_given_before_their_parent_are_still_created_by_it() {
        let images = vec![img("kid", 21, 20), img("parent", 20, 5)];
        let p = plan(&images).unwrap();
        assert_eq!(p.groups[0].tops, vec![1]);
        assert_eq!(p.procs[0].creator, Creator::Process(1));
        assert_eq!(p.creation_order(0), vec![1, 0]);
    }

    #[test]
    fn processes_whose_parent_is_outside_the_group_are_the_inits() {
        // 30 and 40 have parents that are not images (an exited shell, the launcher).
        let images = vec![img("a", 30, 2), img("b", 31, 30), img("c", 40, 99)];
        let p = plan(&images).unwrap();
        assert_eq!(p.groups[0].tops, vec![0, 2]);
        assert_eq!(p.procs[2].creator, Creator::Init);
        assert_eq!(p.creation_order(0), vec![0, 1, 2]);
    }

    #[test]
    fn a_parent_in_another_namespace_does_not_create_the_child() {
        let mut child = img("child", 11, 10);
        child.pidns = 8;
        let images = vec![img("parent", 10, 1), child];
        let p = plan(&images).unwrap();
        assert_eq!(p.groups.len(), 2);
        assert_eq!(p.procs[1].creator, Creator::Init);
        assert_eq!(p.groups[1].tops, vec![1]);
        assert!(p.procs[0].children.is_empty());
    }

    #[test]
    fn session_and_group_leaders_are_created_before_members() {
        // Parent 10 (session 10, group 10) has children given as: a member of group 12 (13),
        // the group leader 12, the session leader 14, a plain child 15.
        let images = vec![
            ids(img("p", 10, 1), 10, 10),
            ids(img("member", 13, 10), 12, 10),
            ids(img("group-leader", 12, 10), 12, 10),
            ids(img("session-leader", 14, 10), 14, 14),
            ids(img("plain", 15, 10), 10, 10),
        ];
        let p = plan(&images).unwrap();
        assert_eq!(p.procs[0].children, vec![3, 2, 1, 4]);
        let order = p.creation_order(0);
        let pos = |i| order.iter().position(|&x| x == i).unwrap();
        assert!(pos(2) < pos(1), "the group's leader comes before its member: {order:?}");
        assert_eq!(p.procs[0].ids, IdSteps { new_session: true, group: GroupStep::Keep });
        assert_eq!(p.procs[3].ids, IdSteps { new_session: true, group: GroupStep::Keep });
        assert_eq!(p.procs[2].ids, IdSteps { new_session: false, group: GroupStep::Lead });
        assert_eq!(p.procs[1].ids, IdSteps { new_session: false, group: GroupStep::Join(12) });
        assert_eq!(p.procs[4].ids, IdSteps { new_session: false, group: GroupStep::Join(10) });
    }

    #[test]
    fn a_group_whose_leader_is_not_an_image_is_kept_as_inherited() {
        // Group 50's leader exited before the checkpoint; group 0 is outside the namespace.
        let images = vec![ids(img("a", 51, 1), 50, 2), ids(img("b", 52, 51), 0, 0)];
        let p = plan(&images).unwrap();
        assert_eq!(p.procs[0].ids, IdSteps { new_session: false, group: GroupStep::Keep });
        assert_eq!(p.procs[1].ids, IdSteps { new_session: false, group: GroupStep::Keep });
    }

    #[test]
    fn several_namespaces_make_several_groups_in_image_order() {
        let mut images = vec![img("a", 10, 1), img("b", 10, 1), img("c", 11, 10), img("d", 12, 1)];
        images[1].pidns = 9;
        images[3].pidns = 3;
        let p = plan(&images).unwrap();
        let members: Vec<_> = p.groups.iter().map(|g| (g.pidns, g.members.clone())).collect();
        assert_eq!(members, vec![(7, vec![0, 2]), (9, vec![1]), (3, vec![3])]);
        assert_eq!(p.procs.iter().map(|q| q.group).collect::<Vec<_>>(), vec![0, 1, 0, 2]);
        // The same pid in two namespaces is two processes.
        assert_eq!(p.procs[0].pid, p.procs[1].pid);
    }

    #[test]
    fn the_root_is_the_is_root_image_else_the_first() {
        let mut images = vec![img("a", 10, 1), img("b", 11, 1), img("c", 20, 1), img("d", 21, 20)];
        images[2].pidns = 8;
        images[3].pidns = 8;
        images[3].is_root = true;
        let p = plan(&images).unwrap();
        assert_eq!(p.groups[0].root, 0);
        assert_eq!(p.groups[1].root, 3);
        assert_eq!(p.root_group, 1);
        images[3].is_root = false;
        let p = plan(&images).unwrap();
        assert_eq!(p.groups[1].root, 2);
        assert_eq!(p.root_group, 0);
    }

    #[test]
    fn a_pipe_with_both_ends_in_one_process_is_made_and_placed() {
        let images = vec![with_fds(
            img("a", 10, 1),
            vec![pipe_end(3, 77, End::Read), pipe_end(4, 77, End::Write), FdFact { fd: 5, what: FdWhat::Other(9) }],
        )];
        let p = plan(&images).unwrap();
        assert_eq!(p.groups[0].pipes, vec![PipePlan { id: 77, capacity: 0 }]);
        assert_eq!(pipe_src(&p, 0, 3), Some(FdSource::Pipe { pipe: 0, end: End::Read }));
        assert_eq!(pipe_src(&p, 0, 4), Some(FdSource::Pipe { pipe: 0, end: End::Write }));
        assert_eq!(p.procs[0].fds.len(), 2, "a record of another kind is not placed");
    }

    #[test]
    fn a_pipe_between_two_processes_joins_them_at_their_old_fds() {
        // A shell pipeline: the writer has it at 1, the reader at 0, the parent kept a copy at 5.
        let mut w = with_fds(img("writer", 11, 10), vec![pipe_end(1, 5, End::Write)]);
        w.fds[0].what = FdWhat::Pipe { id: 5, end: Some(End::Write), capacity: 65536 };
        let r = with_fds(img("reader", 12, 10), vec![pipe_end(0, 5, End::Read)]);
        let mut parent = with_fds(img("parent", 10, 1), vec![pipe_end(5, 5, End::Read)]);
        parent.fds[0].what = FdWhat::Pipe { id: 5, end: Some(End::Read), capacity: 1 << 20 };
        let p = plan(&[parent, w, r]).unwrap();
        assert_eq!(p.groups[0].pipes, vec![PipePlan { id: 5, capacity: 1 << 20 }], "the largest capacity seen");
        assert_eq!(pipe_src(&p, 1, 1), Some(FdSource::Pipe { pipe: 0, end: End::Write }));
        assert_eq!(pipe_src(&p, 2, 0), Some(FdSource::Pipe { pipe: 0, end: End::Read }));
        assert_eq!(pipe_src(&p, 0, 5), Some(FdSource::Pipe { pipe: 0, end: End::Read }));
    }

    #[test]
    fn pipes_are_numbered_per_group_in_order_of_first_appearance() {
        let a = with_fds(
            img("a", 10, 1),
            vec![pipe_end(3, 200, End::Read), pipe_end(4, 100, End::Write), pipe_end(6, 300, End::Read)],
        );
        let b = with_fds(img("b", 11, 10), vec![pipe_end(7, 100, End::Read), pipe_end(8, 200, End::Write)]);
        let p = plan(&[a, b]).unwrap();
        let ids: Vec<u64> = p.groups[0].pipes.iter().map(|q| q.id).collect();
        assert_eq!(ids, vec![200, 100], "300 has no write end here");
        assert_eq!(pipe_src(&p, 1, 7), Some(FdSource::Pipe { pipe: 1, end: End::Read }));
        assert_eq!(pipe_src(&p, 1, 8), Some(FdSource::Pipe { pipe: 0, end: End::Write }));
        assert_eq!(pipe_src(&p, 0, 6), None, "one end of an outside pipe at fd 6 is left closed");
    }

    #[test]
    fn a_copy_of_an_outside_stdio_pipe_becomes_a_copy_of_our_stdio() {
        // `prog | cat`: the program's stdout (fd 1) is a pipe to a reader outside, and it kept a
        // copy at fd 11. Its stdin (fd 0) is another outside pipe without copy.
        let images = vec![with_fds(
            img("prog", 10, 1),
            vec![pipe_end(0, 8, End::Read), pipe_end(1, 9, End::Write), pipe_end(11, 9, End::Write)],
        )];
        let p = plan(&images).unwrap();
        assert!(p.groups[0].pipes.is_empty(), "no pipe of the computation");
        assert_eq!(p.procs[0].fds, vec![FdPlacement { fd: 11, source: FdSource::Stdio(1) }]);
    }

    #[test]
    fn a_copy_of_an_outside_stdio_pipe_at_a_reserved_fd_does_not_take_dmtcps_fd() {
        // The program kept a copy of its outside stdout at 821, which is the coordinator
        // socket's fd in the restored process: that copy must not be put over it.
        let images = vec![with_fds(
            img("prog", 10, 1),
            vec![
                pipe_end(1, 9, End::Write),
                pipe_end(dmtcp_proto::COORD_FD, 9, End::Write),
                pipe_end(12, 9, End::Write),
            ],
        )];
        let p = plan(&images).unwrap();
        assert_eq!(p.procs[0].fds, vec![FdPlacement { fd: 12, source: FdSource::Stdio(1) }]);
        assert!(
            p.procs[0].skipped_fds.is_empty(),
            "an outside pipe's copy is not the computation's: nothing to report"
        );
    }

    #[test]
    fn duplicated_fds_of_one_pipe_end_all_get_it() {
        let images = vec![
            with_fds(img("a", 10, 1), vec![pipe_end(3, 4, End::Read), pipe_end(9, 4, End::Read)]),
            with_fds(img("b", 11, 10), vec![pipe_end(4, 4, End::Write), pipe_end(5, 4, End::Write)]),
        ];
        let p = plan(&images).unwrap();
        assert_eq!(p.groups[0].pipes.len(), 1);
        let read = FdSource::Pipe { pipe: 0, end: End::Read };
        let write = FdSource::Pipe { pipe: 0, end: End::Write };
        assert_eq!(p.procs[0].fds, vec![FdPlacement { fd: 3, source: read }, FdPlacement { fd: 9, source: read }]);
        assert_eq!(p.procs[1].fds, vec![FdPlacement { fd: 4, source: write }, FdPlacement { fd: 5, source: write }]);
    }

    #[test]
    fn pipes_of_two_namespaces_are_not_joined() {
        let mut b = with_fds(img("b", 11, 1), vec![pipe_end(4, 6, End::Write)]);
        b.pidns = 8;
        let images = vec![with_fds(img("a", 10, 1), vec![pipe_end(3, 6, End::Read)]), b];
        let p = plan(&images).unwrap();
        assert!(p.groups.iter().all(|g| g.pipes.is_empty()));
        assert!(p.procs.iter().all(|q| q.fds.is_empty()));
    }

    #[test]
    fn a_pipe_at_a_reserved_fd_is_skipped_and_reported() {
        let images = vec![with_fds(
            img("a", 10, 1),
            vec![
                pipe_end(super::super::IMAGE_FD, 1, End::Read),
                pipe_end(4, 1, End::Write),
                pipe_end(-1, 1, End::Write),
            ],
        )];
        let p = plan(&images).unwrap();
        assert_eq!(p.procs[0].skipped_fds, vec![super::super::IMAGE_FD, -1]);
        assert_eq!(p.procs[0].fds, vec![FdPlacement { fd: 4, source: FdSource::Pipe { pipe: 0, end: End::Write } }]);
    }

    #[test]
    fn an_end_the_format_does_not_name_is_not_a_write_end_for_ownership() {
        // Read end plus an unnamed end only: the pipe is not the computation's.
        let odd = FdFact { fd: 4, what: FdWhat::Pipe { id: 3, end: None, capacity: 0 } };
        let images = vec![with_fds(img("a", 10, 1), vec![pipe_end(3, 3, End::Read), odd])];
        assert!(plan(&images).unwrap().groups[0].pipes.is_empty());
        // With a real write end too, the unnamed one gets the write end (as before).
        let images = vec![with_fds(img("a", 10, 1), vec![pipe_end(3, 3, End::Read), odd, pipe_end(5, 3, End::Write)])];
        let p = plan(&images).unwrap();
        assert_eq!(pipe_src(&p, 0, 4), Some(FdSource::Pipe { pipe: 0, end: End::Write }));
    }

    /// A file fd of description `desc` with path `path` (added to the image's paths).
    fn file_fd(i: &mut ImageFacts, fd: RawFd, desc: (i32, i32), path: &str, offset: u64) {
        i.paths.push(PathBuf::from(path));
        let what = FdWhat::File { desc, path: i.paths.len() - 1, offset, status: libc::O_WRONLY as u32 };
        i.fds.push(FdFact { fd, what });
    }

    #[test]
    fn a_description_shared_by_parent_and_child_is_opened_once_for_both() {
        // `prog > log 2>&1` forking a child: 1 and 2 of both share the parent's description
        // (key (10, 1)); the child also opened the log again itself at fd 5 (its own key).
        let mut parent = img("parent", 10, 1);
        file_fd(&mut parent, 1, (10, 1), "/tmp/log", 300);
        file_fd(&mut parent, 2, (10, 1), "/tmp/log", 300);
        let mut child = img("child", 11, 10);
        file_fd(&mut child, 1, (10, 1), "/tmp/log", 300);
        file_fd(&mut child, 2, (10, 1), "/tmp/log", 300);
        file_fd(&mut child, 5, (11, 5), "/tmp/log", 7);
        let p = plan(&[parent, child]).unwrap();
        let files = &p.groups[0].files;
        assert_eq!(files.len(), 2, "{files:?}");
        assert_eq!((files[0].path.to_str(), files[0].offset), (Some("/tmp/log"), 300));
        assert_eq!(files[0].holders.len(), 4);
        assert_eq!(files[1].offset, 7);
        for (img, fd) in [(0, 1), (0, 2), (1, 1), (1, 2)] {
            assert_eq!(pipe_src(&p, img, fd), Some(FdSource::File(0)), "image {img} fd {fd}");
        }
        assert_eq!(pipe_src(&p, 1, 5), Some(FdSource::File(1)), "a description of its own");
    }

    #[test]
    fn descriptions_of_two_namespaces_are_not_joined_and_keys_do_not_mix_paths() {
        let mut a = img("a", 10, 1);
        file_fd(&mut a, 3, (10, 3), "/a", 0);
        let mut b = img("b", 10, 1);
        b.pidns = 8;
        file_fd(&mut b, 3, (10, 3), "/b", 0);
        let p = plan(&[a, b]).unwrap();
        assert_eq!(p.groups[0].files[0].path, PathBuf::from("/a"));
        assert_eq!(p.groups[1].files[0].path, PathBuf::from("/b"));
        assert_eq!(pipe_src(&p, 1, 3), Some(FdSource::File(0)), "numbered per group");
    }

    /// A placeholder at one of dmtcp's own fds is reported; a file there is left to the
    /// library, which opens it once those fds are free (not placed, not reported).
    #[test]
    fn an_unsupported_fd_gets_the_placeholder_and_reserved_fds_are_skipped() {
        let mut a = img("a", 10, 1);
        a.fds.push(FdFact { fd: 7, what: FdWhat::Placeholder });
        a.fds.push(FdFact { fd: dmtcp_proto::COORD_FD, what: FdWhat::Placeholder });
        file_fd(&mut a, super::super::IMAGE_FD, (10, 822), "/x", 0);
        file_fd(&mut a, 4, (10, 4), "/y", 0);
        let p = plan(&[a]).unwrap();
        assert_eq!(pipe_src(&p, 0, 7), Some(FdSource::Placeholder));
        assert_eq!(pipe_src(&p, 0, 4), Some(FdSource::File(1)));
        assert_eq!(p.procs[0].skipped_fds, vec![dmtcp_proto::COORD_FD]);
        assert_eq!(pipe_src(&p, 0, super::super::IMAGE_FD), None);
        assert_eq!(p.procs[0].fds.len(), 2);
    }

    #[test]
    fn two_images_of_one_process_are_refused_by_name() {
        let images = vec![img("ckpt_a.dmtcp", 10, 1), img("ckpt_b.dmtcp", 11, 1), img("ckpt_c.dmtcp", 10, 1)];
        let e = plan(&images).unwrap_err();
        assert_eq!(e, PlanError::SameProcess { first: "ckpt_a.dmtcp".into(), second: "ckpt_c.dmtcp".into(), pid: 10 });
        assert_eq!(
            e.to_string(),
            "ckpt_a.dmtcp and ckpt_c.dmtcp are images of the same process (pid 10); give only one"
        );
    }

    #[test]
    fn pid_zero_or_one_is_a_corrupt_image() {
        for pid in [0, 1, -5] {
            let images = vec![img("good", 10, 1), img("bad", pid, 10)];
            let e = plan(&images).unwrap_err();
            assert_eq!(e, PlanError::BadPid { image: "bad".into(), pid });
            assert_eq!(e.to_string(), format!("bad: corrupt image (process id {pid})"));
        }
    }

    #[test]
    fn a_cycle_of_parents_is_refused_naming_a_process_on_it() {
        // 20 -> 21 -> 22 -> 20, and 23 hangs off the cycle; 10 is fine.
        let images = vec![img("ok", 10, 1), img("d", 23, 22), img("a", 20, 22), img("b", 21, 20), img("c", 22, 21)];
        let e = plan(&images).unwrap_err();
        let PlanError::ParentCycle { image, pid, parent } = &e else { panic!("{e:?}") };
        assert!(["a", "b", "c"].contains(&image.to_str().unwrap()), "{e}");
        assert!([20, 21, 22].contains(pid) && [20, 21, 22].contains(parent));
        assert!(e.to_string().contains("corrupt image") && e.to_string().contains("its own ancestor"), "{e}");
    }

    #[test]
    fn a_process_that_is_its_own_parent_is_refused() {
        let e = plan(&[img("self", 10, 10)]).unwrap_err();
        assert_eq!(e, PlanError::ParentCycle { image: "self".into(), pid: 10, parent: 10 });
    }

    #[test]
    fn the_same_pid_in_two_namespaces_is_accepted() {
        let mut b = img("b", 10, 1);
        b.pidns = 8;
        assert!(plan(&[img("a", 10, 1), b]).is_ok());
    }

    fn shm(dev: u64, inode: u64, end: u64, name: &str) -> ShmFact {
        ShmFact { dev, inode, end, name: name.into() }
    }

    /// Anonymous shared memory inherited by a child, and a memfd only the parent maps: one
    /// object each, sized by the furthest end any process mapped, each process gets the ones it
    /// maps at fds above all of its own (and dmtcp's), with the matching --region arguments.
    #[test]
    fn shared_memory_objects_are_made_once_and_given_to_each_process_that_maps_them() {
        let mut parent = with_fds(img("p", 10, 1), vec![pipe_end(900, 5, End::Read)]);
        parent.shm = vec![shm(5, 77, 0x4000, "/dev/zero (deleted)"), shm(5, 78, 0x1000, "/memfd:cache (deleted)")];
        let mut child = with_fds(img("c", 11, 10), vec![pipe_end(4, 5, End::Write)]);
        child.shm = vec![shm(5, 77, 0x8000, "/dev/zero (deleted)")];
        let p = plan(&[parent, child]).unwrap();
        let g = &p.groups[0];
        assert_eq!(
            g.shm,
            vec![
                ShmPlan { dev: 5, inode: 77, size: 0x8000, name: "dmtcp-shm:/dev/zero".into() },
                ShmPlan { dev: 5, inode: 78, size: 0x1000, name: "cache".into() },
            ]
        );
        assert_eq!(
            p.procs[0].regions,
            vec![RegionArg { fd: 901, dev: 5, inode: 77 }, RegionArg { fd: 902, dev: 5, inode: 78 }]
        );
        assert_eq!(pipe_src(&p, 0, 901), Some(FdSource::Shm(0)));
        assert_eq!(pipe_src(&p, 0, 902), Some(FdSource::Shm(1)));
        let above = super::super::IMAGE_FD + 1;
        assert_eq!(p.procs[1].regions, vec![RegionArg { fd: above, dev: 5, inode: 77 }]);
        assert_eq!(pipe_src(&p, 1, above), Some(FdSource::Shm(0)));
        assert_eq!(pipe_src(&p, 1, 4), Some(FdSource::Pipe { pipe: 0, end: End::Write }));
    }

    /// Objects are per group: the same (dev, inode) in two pid namespaces is made in each.
    #[test]
    fn shared_memory_of_two_groups_is_made_in_each() {
        let mut a = img("a", 10, 1);
        a.shm = vec![shm(1, 2, 0x1000, "/dev/zero (deleted)")];
        let mut b = a.clone();
        b.pidns = 8;
        let p = plan(&[a, b]).unwrap();
        assert_eq!(p.groups.len(), 2);
        assert_eq!(p.groups[0].shm.len(), 1);
        assert_eq!(p.groups[1].shm.len(), 1);
        assert!(plan(&[img("none", 10, 1)]).unwrap().groups[0].shm.is_empty());
    }

    #[test]
    fn memfd_names_keep_a_memfd_name_and_say_where_others_came_from() {
        use super::super::shm::memfd_name;
        assert_eq!(memfd_name("/memfd:cache (deleted)"), "cache");
        assert_eq!(memfd_name("/dev/shm/x (deleted)"), "dmtcp-shm:/dev/shm/x");
        assert_eq!(memfd_name("/dev/zero (deleted)"), "dmtcp-shm:/dev/zero");
        let long = format!("/memfd:{}", "é".repeat(200));
        let n = memfd_name(&long);
        assert!(n.len() <= 249 && n.chars().all(|c| c == 'é'), "{n}");
    }

    /// A memfd held open by a parent and a child (passed over fork) and mapped by the child:
    /// one object, of the memfd's own size (not the page-rounded end of the mapping), at the
    /// old fd of each, plus the region fd for the child's restorer; one at a dmtcp fd is
    /// reported instead.
    #[test]
    fn a_memfd_held_as_an_fd_is_one_object_with_its_mappings() {
        let memfd = |fd| FdFact { fd, what: FdWhat::Memfd { dev: 1, inode: 50, size: 10000 } };
        let parent = with_fds(img("p", 10, 1), vec![memfd(3)]);
        let mut child = with_fds(img("c", 11, 10), vec![memfd(3), memfd(dmtcp_proto::COORD_FD)]);
        child.shm = vec![shm(1, 50, 0x3000, "/memfd:passed (deleted)")];
        let p = plan(&[parent, child]).unwrap();
        assert_eq!(p.groups[0].shm, vec![ShmPlan { dev: 1, inode: 50, size: 10000, name: "passed".into() }]);
        assert_eq!(pipe_src(&p, 0, 3), Some(FdSource::Shm(0)));
        assert!(p.procs[0].regions.is_empty());
        assert_eq!(pipe_src(&p, 1, 3), Some(FdSource::Shm(0)));
        assert_eq!(p.procs[1].skipped_fds, vec![dmtcp_proto::COORD_FD]);
        let above = super::super::IMAGE_FD + 1;
        assert_eq!(p.procs[1].regions, vec![RegionArg { fd: above, dev: 1, inode: 50 }]);
        assert_eq!(pipe_src(&p, 1, above), Some(FdSource::Shm(0)));
    }

    fn unix(fd: RawFd, ty: u8, state: SockState, inode: u64, peer: u64, pending: u64) -> FdFact {
        let r = UnixSocketRecord { sock_type: ty, state, shutdown: 0, flags: 0, inode, peer, pending };
        FdFact { fd, what: FdWhat::UnixSocket(r) }
    }

    fn tcp(fd: RawFd, state: SockState, inode: u32, local: InetAddr, peer: InetAddr, flags: u8) -> FdFact {
        let r = InetSocketRecord { family: 4, sock_type: 1, state, flags, inode, local, peer, backlog: 5 };
        FdFact { fd, what: FdWhat::InetSocket(r) }
    }

    fn sock_src(p: &Plan, img: usize, fd: RawFd) -> Option<(usize, u8)> {
        match pipe_src(p, img, fd) {
            Some(FdSource::Socket { sock, end }) => Some((sock, end)),
            _ => None,
        }
    }

    #[test]
    fn a_socketpair_between_parent_and_child_is_made_once_and_shared_over_fork() {
        use dmtcp_proto::image::socket_unix::SOCK_SEQPACKET;
        // The parent kept end 100 at fd 3 and its copy at fd 7; the child has end 101 at fd 4.
        let parent = with_fds(
            img("p", 10, 1),
            vec![
                unix(3, SOCK_SEQPACKET, SockState::Connected, 100, 101, 0),
                unix(7, SOCK_SEQPACKET, SockState::Connected, 100, 101, 0),
            ],
        );
        let child = with_fds(img("c", 11, 10), vec![unix(4, SOCK_SEQPACKET, SockState::Connected, 101, 100, 0)]);
        let p = plan(&[parent, child]).unwrap();
        assert_eq!(p.sockets, vec![SockPlan::UnixPair { ty: SOCK_SEQPACKET }]);
        assert_eq!(sock_src(&p, 0, 3), Some((0, 0)));
        assert_eq!(sock_src(&p, 0, 7), Some((0, 0)));
        assert_eq!(sock_src(&p, 1, 4), Some((0, 1)));
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn the_holder_of_bytes_in_flight_gets_the_other_end_at_a_spare_fd() {
        use dmtcp_proto::image::socket_unix::SOCK_STREAM;
        // The child copied 64 bytes of its end's queue; it does not hold the other end. Its
        // fds 3 and 4 are taken (4 by a pipe), so the spare is 5.
        let parent = with_fds(img("p", 10, 1), vec![unix(3, SOCK_STREAM, SockState::Connected, 100, 101, 0)]);
        let child = with_fds(
            img("c", 11, 10),
            vec![unix(3, SOCK_STREAM, SockState::Connected, 101, 100, 64), pipe_end(4, 9, End::Read)],
        );
        let p = plan(&[parent, child]).unwrap();
        assert_eq!(sock_src(&p, 1, 3), Some((0, 1)));
        assert_eq!(sock_src(&p, 1, 5), Some((0, 0)), "{:?}", p.procs[1].fds);
        assert_eq!(p.procs[0].fds.len(), 1, "the parent copied nothing: no spare");
        // Holding both ends itself, a process gets no spare.
        let both = with_fds(
            img("b", 12, 1),
            vec![
                unix(3, SOCK_STREAM, SockState::Connected, 200, 201, 10),
                unix(4, SOCK_STREAM, SockState::Connected, 201, 200, 0),
            ],
        );
        let p = plan(&[both]).unwrap();
        assert_eq!(p.procs[0].fds.len(), 2);
    }

    #[test]
    fn listeners_idle_and_lonely_unix_sockets_get_their_own_socket_and_outside_peers_a_warning() {
        use dmtcp_proto::image::socket_unix::{SOCK_DGRAM, SOCK_STREAM};
        let images = vec![with_fds(
            img("a", 10, 1),
            vec![
                unix(3, SOCK_STREAM, SockState::Listening, 300, 0, 0),
                unix(4, SOCK_DGRAM, SockState::Idle, 301, 0, 0),
                // Connected to a daemon outside: a pair whose other end nobody holds.
                unix(5, SOCK_STREAM, SockState::Connected, 302, 999, 0),
                // A datagram socket connected to an outside server's name: reconnected by name.
                unix(6, SOCK_DGRAM, SockState::Connected, 303, 998, 0),
            ],
        )];
        let p = plan(&images).unwrap();
        assert_eq!(
            p.sockets,
            vec![
                SockPlan::UnixLone { ty: SOCK_STREAM },
                SockPlan::UnixLone { ty: SOCK_DGRAM },
                SockPlan::UnixPair { ty: SOCK_STREAM },
                SockPlan::UnixLone { ty: SOCK_DGRAM },
            ]
        );
        assert_eq!(sock_src(&p, 0, 5), Some((2, 0)));
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
        assert!(p.warnings[0].contains("a: fd 5 is a UNIX socket connected to a peer outside"), "{:?}", p.warnings);
    }

    #[test]
    fn tcp_ends_are_matched_by_address_pair_not_inode_and_the_listeners_port_is_the_server() {
        let srv = InetAddr::v4([127, 0, 0, 1], 8080);
        let cli = InetAddr::v4([127, 0, 0, 1], 40001);
        let outside = InetAddr::v4([10, 0, 0, 9], 5432);
        let mine = InetAddr::v4([10, 0, 0, 1], 40002);
        // The client is given first: the server is still the end on the listener's port.
        let client = with_fds(img("client", 11, 10), vec![tcp(3, SockState::Connected, 7, cli, srv, 0)]);
        let server = with_fds(
            img("server", 10, 1),
            vec![
                tcp(3, SockState::Listening, 5, InetAddr::v4([0; 4], 8080), InetAddr::UNSPECIFIED, 32),
                tcp(4, SockState::Connected, 6, srv, cli, INET_PENDING),
                tcp(5, SockState::Connected, 8, mine, outside, 0),
            ],
        );
        let p = plan(&[client, server]).unwrap();
        let socks = &p.sockets;
        assert_eq!(socks.len(), 2, "{socks:?}");
        let SockPlan::TcpPair { server: s, client: c } = socks[0] else { panic!("{socks:?}") };
        assert_eq!((s.inode, c.inode), (6, 7));
        assert!(matches!(socks[1], SockPlan::Inet(r) if r.state == SockState::Listening));
        assert_eq!(sock_src(&p, 1, 4), Some((0, 0)));
        assert_eq!(sock_src(&p, 0, 3), Some((0, 1)));
        assert_eq!(sock_src(&p, 1, 3), Some((1, 0)));
        assert_eq!(sock_src(&p, 1, 5), None, "the connection to the outside is not made");
        assert_eq!(sock_src(&p, 1, 6), Some((0, 1)), "the spare for refilling the server's end");
        assert_eq!(p.warnings.len(), 1);
        assert!(
            p.warnings[0].contains("fd 5 is a TCP connection from 10.0.0.1:40002 to 10.0.0.9:5432"),
            "{:?}",
            p.warnings
        );
        // Same inodes in two records that do not face each other are not a pair.
        let lone = vec![with_fds(
            img("x", 10, 1),
            vec![tcp(3, SockState::Connected, 6, srv, cli, 0), tcp(4, SockState::Connected, 7, srv, outside, 0)],
        )];
        assert!(plan(&lone).unwrap().sockets.is_empty());
    }

    #[test]
    fn an_outside_socket_at_stdio_stays_dmtcp_restarts_own_and_its_copies_follow_it() {
        use dmtcp_proto::image::socket_unix::SOCK_STREAM;
        // stdout is a UNIX socket to a journal outside, copied at fd 9; fd 2 is a TCP
        // connection to an outside host, copied at fd 10.
        let far = InetAddr::v4([10, 0, 0, 2], 22);
        let near = InetAddr::v4([10, 0, 0, 1], 50000);
        let images = vec![with_fds(
            img("svc", 10, 1),
            vec![
                unix(1, SOCK_STREAM, SockState::Connected, 500, 900, 0),
                unix(9, SOCK_STREAM, SockState::Connected, 500, 900, 0),
                tcp(2, SockState::Connected, 42, near, far, 0),
                tcp(10, SockState::Connected, 42, near, far, 0),
            ],
        )];
        let p = plan(&images).unwrap();
        assert_eq!(
            p.procs[0].fds,
            vec![FdPlacement { fd: 9, source: FdSource::Stdio(1) }, FdPlacement { fd: 10, source: FdSource::Stdio(2) }]
        );
    }

    #[test]
    fn a_tcp_connection_between_two_launches_is_paired_across_their_namespaces() {
        let srv = InetAddr::v4([127, 0, 0, 1], 9000);
        let cli = InetAddr::v4([127, 0, 0, 1], 41000);
        let a = with_fds(img("server", 10, 1), vec![tcp(5, SockState::Connected, 1, srv, cli, 0)]);
        let mut b = with_fds(img("client", 10, 1), vec![tcp(3, SockState::Connected, 2, cli, srv, 0)]);
        b.pidns = 8;
        let p = plan(&[a, b]).unwrap();
        assert_eq!(p.groups.len(), 2);
        assert_eq!(p.sockets.len(), 1);
        assert_eq!(sock_src(&p, 0, 5), Some((0, 0)));
        assert_eq!(sock_src(&p, 1, 3), Some((0, 1)));
        assert!(p.warnings.is_empty());
    }

    fn pty_end(fd: RawFd, index: u32, side: PtySide) -> FdFact {
        FdFact { fd, what: FdWhat::Pty { index, side } }
    }

    /// forkpty's shape: the parent keeps the master, the child (a session leader) the slave at
    /// 0-2; one pair is made and each process gets its end at its old fds.
    #[test]
    fn a_forkpty_pair_is_made_once_and_each_end_placed() {
        let parent = with_fds(img("a", 2, 1), vec![pty_end(3, 4, PtySide::Master)]);
        let child = with_fds(
            ids(img("b", 3, 2), 3, 3),
            vec![pty_end(0, 4, PtySide::Slave), pty_end(1, 4, PtySide::Slave), pty_end(2, 4, PtySide::Slave)],
        );
        let p = plan(&[parent, child]).unwrap();
        assert_eq!(p.groups[0].ptys, vec![PtyPlan { index: 4 }]);
        assert_eq!(pipe_src(&p, 0, 3), Some(FdSource::Pty { pty: 0, side: PtySide::Master }));
        for fd in 0..3 {
            assert_eq!(pipe_src(&p, 1, fd), Some(FdSource::Pty { pty: 0, side: PtySide::Slave }));
        }
        assert!(p.groups[0].pipes.is_empty());
    }

    /// Two pairs, numbered in order of first appearance; a pair whose slave nobody holds is
    /// still made (that end was closed); an end at dmtcp's own fd is reported, not placed.
    #[test]
    fn ptys_are_numbered_in_order_and_reserved_fds_are_skipped() {
        let a = with_fds(
            img("a", 2, 1),
            vec![
                pty_end(5, 9, PtySide::Master),
                pty_end(6, 1, PtySide::Master),
                pty_end(RESERVED_FDS[0], 1, PtySide::Master),
            ],
        );
        let p = plan(&[a]).unwrap();
        assert_eq!(p.groups[0].ptys, vec![PtyPlan { index: 9 }, PtyPlan { index: 1 }]);
        assert_eq!(pipe_src(&p, 0, 5), Some(FdSource::Pty { pty: 0, side: PtySide::Master }));
        assert_eq!(pipe_src(&p, 0, 6), Some(FdSource::Pty { pty: 1, side: PtySide::Master }));
        assert_eq!(p.procs[0].skipped_fds, vec![RESERVED_FDS[0]]);
        assert_eq!(pipe_src(&p, 0, RESERVED_FDS[0]), None);
    }

    /// A pty whose master no process of the computation holds is a terminal outside it (a
    /// screen daemon's descriptor of the user's terminal, opened by name): no pair is made,
    /// the end gets `dmtcp_restart`'s own stdin, the new terminal.
    #[test]
    fn a_slave_without_a_master_anywhere_is_the_new_terminal() {
        let a = with_fds(img("a", 2, 1), vec![pty_end(3, 7, PtySide::Slave), pty_end(4, 9, PtySide::Master)]);
        let b = with_fds(ids(img("b", 3, 2), 3, 3), vec![pty_end(0, 9, PtySide::Slave)]);
        let p = plan(&[a, b]).unwrap();
        assert_eq!(p.groups[0].ptys, vec![PtyPlan { index: 9 }]);
        assert_eq!(pipe_src(&p, 0, 3), Some(FdSource::Stdio(0)));
        assert_eq!(pipe_src(&p, 0, 4), Some(FdSource::Pty { pty: 0, side: PtySide::Master }));
        assert_eq!(pipe_src(&p, 1, 0), Some(FdSource::Pty { pty: 0, side: PtySide::Slave }));
    }

    /// Ptys of two namespaces are two pairs even with the same old number.
    #[test]
    fn ptys_of_two_namespaces_are_not_joined() {
        let a = with_fds(img("a", 2, 1), vec![pty_end(3, 0, PtySide::Master)]);
        let b = ImageFacts { pidns: 8, ..with_fds(img("b", 2, 1), vec![pty_end(3, 0, PtySide::Slave)]) };
        let p = plan(&[a, b]).unwrap();
        assert_eq!(p.groups.len(), 2);
        assert_eq!(p.groups[0].ptys, vec![PtyPlan { index: 0 }]);
        assert_eq!(p.groups[1].ptys, vec![PtyPlan { index: 0 }]);
    }
}
