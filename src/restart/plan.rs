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
pub use super::pipes::PipePlan;
pub use super::ptys::PtyPlan;
use super::{pipes, ptys};
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
    /// One end of a pty pair the computation made: its old number (/dev/pts/<index>).
    Pty { index: u32, side: PtySide },
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
    /// The pty pairs it makes (index = `FdSource::Pty::pty`).
    pub ptys: Vec<PtyPlan>,
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
    /// A copy of `dmtcp_restart`'s own fd 0, 1 or 2 (inherited by every process).
    Stdio(RawFd),
    /// An end of the group's pty number `pty` (`GroupPlan::ptys`).
    Pty { pty: usize, side: PtySide },
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
                    ptys: Vec::new(),
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
        let (made, per_member) = ptys::plan(&members);
        g.ptys = made;
        for (&m, fds) in g.members.iter().zip(per_member) {
            procs[m].fds.extend(fds.placed);
            procs[m].skipped_fds.extend(fds.skipped);
        }
    }
    let root_group = groups.iter().position(|g| g.members.iter().any(|&i| images[i].is_root)).unwrap_or(0);
    Ok(Plan { groups, procs, root_group })
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

    /// Two pairs, numbered in order of first appearance; a pair held from one side only is
    /// still made (its other end was closed); an end at dmtcp's own fd is reported, not placed.
    #[test]
    fn ptys_are_numbered_in_order_and_reserved_fds_are_skipped() {
        let a = with_fds(
            img("a", 2, 1),
            vec![
                pty_end(5, 9, PtySide::Master),
                pty_end(6, 1, PtySide::Slave),
                pty_end(RESERVED_FDS[0], 1, PtySide::Master),
            ],
        );
        let p = plan(&[a]).unwrap();
        assert_eq!(p.groups[0].ptys, vec![PtyPlan { index: 9 }, PtyPlan { index: 1 }]);
        assert_eq!(pipe_src(&p, 0, 5), Some(FdSource::Pty { pty: 0, side: PtySide::Master }));
        assert_eq!(pipe_src(&p, 0, 6), Some(FdSource::Pty { pty: 1, side: PtySide::Slave }));
        assert_eq!(p.procs[0].skipped_fds, vec![RESERVED_FDS[0]]);
        assert_eq!(pipe_src(&p, 0, RESERVED_FDS[0]), None);
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
