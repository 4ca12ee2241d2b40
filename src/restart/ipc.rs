//! System V IPC objects on the tool side: the group's init makes every shared memory segment,
//! semaphore set and message queue its images list (`FD_SYSV` records, libdmtcp
//! `resources/sysv.rs`), before it creates any process, each with its old id, key, size, mode
//! and owner. The contents are not ours: the process elected at checkpoint puts them back.
//!
//! The ids: P makes the group an IPC namespace of its own (owned by the group's user
//! namespace, `ns::unshare_ipc`) when the group has any object, so nothing else is there and
//! the owner may choose the next id: writing `/proc/sys/kernel/{shm,sem,msg}_next_id` before
//! the get call gives the object exactly that id (the kernel then forgets the wish). That is
//! CRIU's way (`criu/ipc_ns.c`); it needs no virtual ids in the program.
//!
//! The objects of a group are what any of its images list, one per (kind, id). Two launches
//! (two groups) that used one object of the machine's namespace get one copy each, in their
//! own namespaces: such sharing across launches is not restored, and the plan warns about it.
//!
//! The planning is pure (`plan`, `across_groups`, unit tests below); `make` carries it out.
use super::plan::{FdWhat, ImageFacts};
use crate::common::ns;
use dmtcp_proto::image::{SysvKind, SysvRecord};

/// Whether the group needs an IPC namespace of its own: it has System V objects, or POSIX
/// message queues (which its processes open again themselves, libdmtcp `resources/mqueue.rs`).
pub fn needs_namespace(members: &[&ImageFacts], objects: &[SysvRecord]) -> bool {
    !objects.is_empty()
        || members.iter().any(|img| img.fds.iter().any(|f| f.what == FdWhat::Other(dmtcp_proto::image::FD_MQUEUE)))
}

/// The objects of one group, in the order they are made (by kind, then id).
pub fn plan(members: &[&ImageFacts]) -> (Vec<SysvRecord>, Vec<String>) {
    let mut objects: Vec<SysvRecord> = Vec::new();
    let mut warnings = Vec::new();
    for img in members {
        for f in &img.fds {
            let FdWhat::Sysv(r) = f.what else { continue };
            // A process's SEM_UNDO adjustment is no object: the process gives it back itself.
            if r.kind == SysvKind::SemUndo {
                continue;
            }
            match objects.iter_mut().find(|o| o.kind == r.kind && o.id == r.id) {
                None => objects.push(r),
                Some(o) => {
                    if (o.key, o.size) != (r.key, r.size) {
                        warnings.push(format!(
                            "{}: {} {} has key {:#x} and size {} there, key {:#x} and size {} in another image; \
                             restoring the one that holds its contents",
                            img.path.display(),
                            what(r.kind),
                            r.id,
                            r.key,
                            r.size,
                            o.key,
                            o.size
                        ));
                    }
                    if r.contents && !o.contents {
                        *o = r;
                    }
                }
            }
        }
    }
    objects.sort_by_key(|o| (kind_order(o.kind), o.id));
    (objects, warnings)
}

/// A warning for each object that two groups (two launches) list: each gets its own.
pub fn across_groups(groups: &[&[SysvRecord]]) -> Vec<String> {
    let mut warnings = Vec::new();
    for (g, objects) in groups.iter().enumerate() {
        for o in objects.iter() {
            if groups[..g].iter().any(|earlier| earlier.iter().any(|e| e.kind == o.kind && e.id == o.id)) {
                warnings.push(format!(
                    "{} {} (key {:#x}) was used by two launches; after this restart each has its own copy",
                    what(o.kind),
                    o.id,
                    o.key
                ));
            }
        }
    }
    warnings
}

fn kind_order(k: SysvKind) -> u8 {
    match k {
        SysvKind::Shm => 0,
        SysvKind::Sem => 1,
        SysvKind::Msg => 2,
        SysvKind::SemUndo => 3,
    }
}

/// How messages name a kind of object.
pub fn what(k: SysvKind) -> &'static str {
    match k {
        SysvKind::Shm => "System V shared memory",
        SysvKind::Sem => "System V semaphore set",
        SysvKind::Msg => "System V message queue",
        SysvKind::SemUndo => "SEM_UNDO adjustment of a System V semaphore",
    }
}

/// The sysctl that chooses the next id of a kind.
pub fn next_id_file(k: SysvKind) -> &'static str {
    match k {
        SysvKind::Shm => "/proc/sys/kernel/shm_next_id",
        SysvKind::Sem | SysvKind::SemUndo => "/proc/sys/kernel/sem_next_id",
        SysvKind::Msg => "/proc/sys/kernel/msg_next_id",
    }
}

/// Makes every object of `objects` in our IPC namespace, with its id, key, size, mode and owner.
pub fn make(objects: &[SysvRecord]) -> Result<(), String> {
    for o in objects {
        make_one(o).map_err(|e| format!("cannot make {} {} (key {:#x}) again: {e}", what(o.kind), o.id, o.key))?;
    }
    Ok(())
}

fn make_one(o: &SysvRecord) -> Result<(), String> {
    if o.kind == SysvKind::SemUndo {
        return Err("a SEM_UNDO adjustment is no object to make (plan leaves them out)".into());
    }
    let file = next_id_file(o.kind);
    std::fs::write(file, o.id.to_string()).map_err(|e| format!("writing {file}: {e}"))?;
    let got = match ns::sysv_create(kind_code(o.kind), o.key, o.size, o.mode) {
        Ok(id) => id,
        Err(e) => {
            // The wish is still there when the call failed: take it back.
            let _ = std::fs::write(file, "-1");
            return Err(e.to_string());
        }
    };
    if got != o.id {
        return Err(format!("the kernel gave id {got} ({file} was not followed)"));
    }
    if let Err(e) = set_owner(o) {
        log::warn!(
            "{} {}: cannot give it owner {}:{} and mode {:o} again: {e}",
            what(o.kind),
            o.id,
            o.uid,
            o.gid,
            o.mode
        );
    }
    Ok(())
}

/// The kind as `ns::sysv_create` takes it.
fn kind_code(k: SysvKind) -> ns::SysvKind {
    match k {
        SysvKind::Shm => ns::SysvKind::Shm,
        SysvKind::Sem | SysvKind::SemUndo => ns::SysvKind::Sem,
        SysvKind::Msg => ns::SysvKind::Msg,
    }
}

/// IPC_SET of the owner and mode the object had (we made it, so we may).
fn set_owner(o: &SysvRecord) -> std::io::Result<()> {
    ns::sysv_set_owner(kind_code(o.kind), o.id, o.uid, o.gid, o.mode)
}

#[cfg(test)]
mod tests {
    use super::super::plan::FdFact;
    use super::*;
    use std::path::PathBuf;

    fn rec(kind: SysvKind, id: i32, key: i32, contents: bool) -> SysvRecord {
        SysvRecord { kind, contents, key, id, mode: 0o600, uid: 0, gid: 0, size: 4, count: 0 }
    }

    fn image(records: &[SysvRecord]) -> ImageFacts {
        ImageFacts {
            path: PathBuf::from("ckpt_a.dmtcp"),
            pid: 2,
            parent_pid: 1,
            pgid: 0,
            sid: 0,
            pidns: 7,
            is_root: false,
            fds: records.iter().map(|&r| FdFact { fd: 0, what: FdWhat::Sysv(r) }).collect(),
            paths: Vec::new(),
            shm: Vec::new(),
        }
    }

    #[test]
    fn each_object_is_made_once_per_group_by_kind_and_id() {
        let a = image(&[rec(SysvKind::Msg, 3, 0, false), rec(SysvKind::Shm, 32768, 0x1234, false)]);
        let b = image(&[rec(SysvKind::Shm, 32768, 0x1234, true), rec(SysvKind::Shm, 5, 0, true)]);
        let c = image(&[rec(SysvKind::Sem, 3, 0x77, true)]);
        let (objects, warnings) = plan(&[&a, &b, &c]);
        assert!(warnings.is_empty(), "{warnings:?}");
        let ids: Vec<(SysvKind, i32)> = objects.iter().map(|o| (o.kind, o.id)).collect();
        assert_eq!(ids, [(SysvKind::Shm, 5), (SysvKind::Shm, 32768), (SysvKind::Sem, 3), (SysvKind::Msg, 3)]);
        assert!(objects[1].contents, "the record of the process that holds the contents is kept");
    }

    #[test]
    fn sem_undo_adjustments_are_not_objects_to_make() {
        let mut undo = rec(SysvKind::SemUndo, 3, -1, false);
        undo.size = 1;
        let a = image(&[rec(SysvKind::Sem, 3, 0x77, true), undo]);
        let (objects, warnings) = plan(&[&a]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].kind, SysvKind::Sem);
    }

    #[test]
    fn records_that_disagree_are_named_in_a_warning() {
        let a = image(&[rec(SysvKind::Shm, 9, 1, true)]);
        let b = image(&[rec(SysvKind::Shm, 9, 2, false)]);
        let (objects, warnings) = plan(&[&a, &b]);
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].key, 1);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("System V shared memory 9"), "{}", warnings[0]);
    }

    #[test]
    fn an_object_of_two_launches_is_named_in_a_warning() {
        let g1 = [rec(SysvKind::Shm, 9, 1, true), rec(SysvKind::Msg, 1, 0, true)];
        let g2 = [rec(SysvKind::Shm, 9, 1, false), rec(SysvKind::Msg, 2, 0, true)];
        let w = across_groups(&[&g1, &g2]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("System V shared memory 9") && w[0].contains("two launches"), "{}", w[0]);
        assert!(across_groups(&[&g1]).is_empty());
    }

    #[test]
    fn a_group_with_objects_or_message_queues_gets_an_ipc_namespace() {
        let none = image(&[]);
        assert!(!needs_namespace(&[&none], &[]));
        assert!(needs_namespace(&[&none], &[rec(SysvKind::Msg, 1, 0, true)]));
        let mut mq = image(&[]);
        mq.fds.push(FdFact { fd: 4, what: FdWhat::Other(dmtcp_proto::image::FD_MQUEUE) });
        assert!(needs_namespace(&[&none, &mq], &[]));
    }
}
