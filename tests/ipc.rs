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
