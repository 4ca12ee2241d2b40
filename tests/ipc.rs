//! System V IPC (and, below, POSIX IPC) objects of a computation through checkpoint, kill and
//! restart: real programs (tests/c), 64 and 32 bits, two cycles each, compared with an
//! uninterrupted run.
use crate::ckpt::*;
use crate::util::*;
use std::process::Command;
use std::time::Duration;

/// Removes the objects a killed run left in the machine's IPC namespace (their ids are in the
/// program's sysv-ids.txt): a killed program's objects stay, with or without us.
fn remove_killed_runs_objects(cy: &Cycle) {
    let Ok(ids) = std::fs::read_to_string(cy.work.join("sysv-ids.txt")) else { return };
    for line in ids.lines() {
        if let Some((kind, id)) = line.split_once(' ') {
            let _ = Command::new("ipcrm").arg(format!("-{kind}")).arg(id).output();
        }
    }
}

/// Three processes share a private segment attached before the fork, a keyed segment each
/// attaches by key, a segment removed while attached, a keyed semaphore set (their lock and a
/// counter) and two message queues with messages queued at every checkpoint (one read in order
/// by a child blocked in msgrcv, one read by type). After each restart the ids and keys are the
/// same, the private segment is at its old address, and the totals, semaphore values, messages,
/// modes and the removed mark are as in an uninterrupted run.
fn sysv_objects(m32: bool) {
    let p = c_program("sysv_ipc", m32);
    let last = cycles_with(&p, &["400"], 3, 2, Duration::from_millis(1200), &[], |cy, k| {
        if k == 0 {
            remove_killed_runs_objects(cy);
        }
        cy.restart(3)
    });
    let r = result_line(&last);
    assert!(!r.contains("BAD") && !r.contains("NOT") && r.contains("ids=same attach=same"), "{r}");
    assert!(!last.starts_with("step 0\n"), "the restarted run began from the start:\n{last}");
}

#[test]
fn sysv_shm_semaphores_and_queues_keep_their_ids_and_contents_64() {
    sysv_objects(false);
}

#[test]
fn sysv_shm_semaphores_and_queues_keep_their_ids_and_contents_32() {
    sysv_objects(true);
}

/// Removes the message queues a killed run left in the machine's IPC namespace (named in the
/// program's mq-name.txt).
fn remove_killed_runs_queues(cy: &Cycle) {
    let Ok(names) = std::fs::read_to_string(cy.work.join("mq-name.txt")) else { return };
    for n in names.lines() {
        let c = std::ffi::CString::new(format!("/{n}")).unwrap();
        // SAFETY: mq_unlink with a NUL-terminated name.
        unsafe { libc::mq_unlink(c.as_ptr()) };
    }
}

/// A named POSIX message queue shared by a parent and its child through the inherited
/// descriptor, and an unlinked non-blocking one the child answers on, with messages of five
/// priorities queued at every checkpoint: after each restart both descriptors are at their
/// numbers with their attributes, flags and mode, and the messages come back in priority
/// order, as in an uninterrupted run.
fn posix_queues(m32: bool) {
    let p = c_program("mq_posix", m32);
    let last = cycles_with(&p, &["40"], 2, 2, Duration::from_millis(1000), &[], |cy, k| {
        if k == 0 {
            remove_killed_runs_queues(cy);
        }
        cy.restart(2)
    });
    let r = result_line(&last);
    assert!(r.contains("sums=ok attr=10,64,0,blocking back=10,0,nonblocking mode=640"), "{r}");
    assert!(r.contains("works=yes child=0"), "{r}");
    assert!(!last.starts_with("step 0\n"), "the restarted run began from the start:\n{last}");
}

#[test]
fn posix_message_queues_keep_their_messages_and_priorities_64() {
    posix_queues(false);
}

#[test]
fn posix_message_queues_keep_their_messages_and_priorities_32() {
    posix_queues(true);
}

/// A holder takes a SEM_UNDO lock, adds to a count with SEM_UNDO around a SETVAL (which clears
/// its count adjustment), takes two of a resource with SEM_UNDO, forks a grandchild (which
/// inherits no adjustment and exits after the first restart) and ends holding the lock after
/// two checkpoint/kill/restart cycles: the watcher sees the kernel give back exactly the
/// adjustments it gives in an uninterrupted run (lock 1, count 4, resource 5) and takes the
/// lock. With `exec_other`, the holder execs the other architecture's build after its semops
/// (the adjustments cross the exec): a mixed 64/32-bit computation.
fn sem_undo(m32: bool, exec_other: bool) {
    let p = c_program("sem_undo", m32);
    let other = c_program("sem_undo", !m32);
    let mut args = vec!["700".to_string()];
    if exec_other {
        args.push(other.to_str().unwrap().to_string());
    }
    // Three processes: the watcher, the holder and, until half way, the grandchild.
    let last = cycles_with(&p, &args, 3, 2, Duration::from_millis(900), &[], |cy, k| {
        if k == 0 {
            remove_killed_runs_objects(cy);
        }
        cy.restart(3)
    });
    let r = result_line(&last);
    assert_eq!(r, "RESULT lock=1 count=4 res=5 take=ok holder=0", "{last}");
    assert!(!last.starts_with("step 0\n"), "the restarted run began from the start:\n{last}");
}

#[test]
fn a_sem_undo_lock_held_across_restarts_is_given_back_when_its_holder_exits_64() {
    sem_undo(false, false);
}

#[test]
fn a_sem_undo_lock_held_across_restarts_is_given_back_when_its_holder_exits_32() {
    sem_undo(true, false);
}

#[test]
fn sem_undo_adjustments_cross_an_exec_from_64_to_32_bit_and_two_restarts() {
    sem_undo(false, true);
}

#[test]
fn sem_undo_adjustments_cross_an_exec_from_32_to_64_bit_and_two_restarts() {
    sem_undo(true, true);
}

/// A 64-bit and a 32-bit process of one computation (the child exec's the other
/// architecture's build) share a keyed System V segment, semaphore and message queue, a named
/// POSIX message queue and a POSIX shm object, with messages queued at every checkpoint: after
/// two restarts the counts, the messages each got and the ids are as in an uninterrupted run.
fn ipc_mixed(parent_m32: bool) {
    let parent = c_program("ipc_mixed", parent_m32);
    let child = c_program("ipc_mixed", !parent_m32);
    let tag = format!("{}{}", std::process::id(), if parent_m32 { "m32" } else { "m64" });
    let args = ["450", tag.as_str(), child.to_str().unwrap()];
    let last = cycles_with(&parent, &args, 2, 2, Duration::from_millis(1000), &[], |cy, k| {
        if k == 0 {
            remove_killed_runs_objects(cy);
            remove_killed_runs_queues(cy);
        }
        cy.restart(2)
    });
    let _ = std::fs::remove_file(format!("/dev/shm/ipcmix-{tag}"));
    let r = result_line(&last);
    assert_eq!(r, "RESULT child=0 sysv_shm=ok posix_shm=ok sysv_msgs=ok mq=ok sem=1 ids=same queued=0,0", "{last}");
    assert!(!last.starts_with("step 0\n"), "the restarted run began from the start:\n{last}");
}

#[test]
fn ipc_kinds_shared_by_a_64_bit_parent_and_an_exec_32_bit_child_survive_two_restarts() {
    ipc_mixed(false);
}

#[test]
fn ipc_kinds_shared_by_a_32_bit_parent_and_an_exec_64_bit_child_survive_two_restarts() {
    ipc_mixed(true);
}
