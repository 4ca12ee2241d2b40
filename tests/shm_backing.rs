//! The file behind a MAP_SHARED mapping that is gone at restart (issue 14: on kill, mpirun
//! removes its ranks' /dev/shm segment files, the backing files of Open MPI's shared-memory
//! transport). A /dev/shm file whose content the image holds is made again by the restorer and
//! filled from the image; one that cannot be made again ends the restart with the restorer's
//! message naming the file and a non-zero exit (it used to hang: the message went into the
//! program's stderr, a pipe to a process being restored too, and the peers waited forever).
//! Real programs (tests/c/shm_backing.c), 64 and 32 bits, a parent and its child sharing the
//! mapping, through checkpoint/kill/restart cycles compared with an uninterrupted run.
use crate::ckpt::*;
use crate::util::*;
use std::time::Duration;

/// The file is removed after each kill, as mpirun does with its segments: each restart makes
/// it again, with the counters, the pattern and the hole as of the checkpoint, and the
/// mapping still writes to the file (what a read of the file gives is what the mapping shows).
fn dev_shm_file_removed_after_the_kill(m32: bool) {
    let p = c_program("shm_backing", m32);
    let path = format!("/dev/shm/dmtcp-test-backing-{}-{}", std::process::id(), if m32 { 32 } else { 64 });
    let _ = std::fs::remove_file(&path);
    let args = [path.as_str(), "600"];
    let last = cycles_with(&p, &args, 2, 2, Duration::from_millis(1200), &[], |cy, _| {
        std::fs::remove_file(&path).unwrap_or_else(|e| panic!("{path} after the kill: {e}"));
        cy.restart(2)
    });
    let r = result_line(&last);
    assert!(r.contains("total=1200 slots=600,600 child=0 pattern=kept hole=zero file=same"), "{r}");
    assert!(!last.starts_with("step 0\n"), "the restarted run began from the start:\n{last}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_dev_shm_backing_file_removed_after_the_kill_is_made_again_64() {
    dev_shm_file_removed_after_the_kill(false);
}

#[test]
fn a_dev_shm_backing_file_removed_after_the_kill_is_made_again_32() {
    dev_shm_file_removed_after_the_kill(true);
}

/// The file's folder is removed after the kill: the file cannot be made again, and the
/// restart ends (never waits) with a non-zero exit and the restorer's message naming the file,
/// on dmtcp_restart's own stderr; none of the restored processes is left behind.
fn backing_file_that_cannot_be_made_again(m32: bool) {
    let p = c_program("shm_backing", m32);
    let dir = format!("/dev/shm/dmtcp-test-gone-{}-{}", std::process::id(), if m32 { 32 } else { 64 });
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let file = format!("{dir}/segment");
    let mut cy = Cycle::launch_n(&p, &[file.as_str(), "400"], &[], 2);
    std::thread::sleep(Duration::from_millis(800));
    cy.checkpoint();
    let images = cy.images();
    assert_eq!(images.len(), 2, "{images:?}");
    cy.kill();
    std::fs::remove_dir_all(&dir).unwrap();
    let mut c = role("restart");
    c.args(["--join-coordinator", "--coord-port", &cy.coord.port.to_string()]).args(&images);
    let out = run_for(&mut c, Duration::from_secs(90));
    let err = stderr(&out);
    assert!(!out.status.success(), "the restart succeeded without its file\n{}", describe(&c, &out));
    assert!(err.contains(&format!("cannot reopen shared mapping of {file}")), "{}", describe(&c, &out));
    assert!(
        wait_until(Duration::from_secs(10), || cy.coord.peers() == 0),
        "restored processes were left behind: {}",
        stdout(&cy.coord.command(&["--status"]))
    );
}

#[test]
fn a_restart_whose_shared_file_cannot_be_made_again_fails_naming_it_64() {
    backing_file_that_cannot_be_made_again(false);
}

#[test]
fn a_restart_whose_shared_file_cannot_be_made_again_fails_naming_it_32() {
    backing_file_that_cannot_be_made_again(true);
}
