//! Endurance: a program that makes children every way in a loop (system, popen, posix_spawn,
//! fork+exec of a 32-bit or 64-bit program) while a second thread keeps a child over pipes,
//! checkpointed, killed and restarted again and again while its children come and go, and
//! compared with an uninterrupted run. Issue 13 saw this fail 10 times in 10: a child that
//! registered after every other process had stopped was missing from the checkpoint and its
//! parent's waitpid failed after the restart (now a child is registered before it exists, and
//! an exec'd image keeps its parent image's registration: `libdmtcp/src/children.rs`).
//!
//! The suite runs two cycles of each; `DMTCP_ENDURANCE_CYCLES=N` runs N, which
//! `scripts/endurance.sh` uses to run hundreds, idle and under load.
use crate::ckpt::{result_line, Cycle};
use crate::util::*;
use std::time::Duration;

/// Cycles per test: 2, or `DMTCP_ENDURANCE_CYCLES`.
fn cycles_wanted() -> usize {
    std::env::var("DMTCP_ENDURANCE_CYCLES").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(2)
}

fn churning_children_survive(m32_parent: bool, m32_child: bool) {
    let cycles = cycles_wanted();
    let p = c_program("spawn_loop", m32_parent);
    let child = c_program("hello", m32_child);
    // An iteration takes at least 60 ms (the program paces itself: a fork under dmtcp costs
    // what it costs without it) and a cycle about 3 s on an idle machine: enough iterations
    // that the program is still running at the last cycle.
    let iterations = 80 + 60 * cycles;
    let args = [iterations.to_string(), child.display().to_string()];
    // As `ckpt::uninterrupted`, with room for the long runs of `scripts/endurance.sh` on a
    // busy machine.
    let ref_dir = TempDir::new("ref");
    let out = run_for(
        role("launch")
            .args(["--new-coordinator", "--coord-port", "0", "-q"])
            .arg(&p)
            .args(&args)
            .current_dir(ref_dir.path()),
        Duration::from_secs(900),
    );
    assert!(out.status.success(), "the uninterrupted run failed: {}{}", stdout(&out), stderr(&out));
    let reference = result_line(&stdout(&out));
    assert!(reference.contains(&format!("iterations={iterations} bad=0")), "{reference}");
    let mut cy = Cycle::launch_churning(&p, &args, &[]);
    for k in 0..cycles {
        std::thread::sleep(Duration::from_millis(1200));
        assert!(
            cy.coord.peers() > 0,
            "the program ended after {k} of {cycles} cycles (too few iterations for this machine)\n{}",
            cy.diagnostics()
        );
        cy.checkpoint();
        cy.kill();
        cy.restart_churning();
        for img in cy.images() {
            std::fs::remove_file(img).unwrap();
        }
    }
    let last = cy.finish();
    assert_eq!(result_line(&last), reference, "\n{}", cy.diagnostics());
    // The coordinator is not left thinking a restart is in progress.
    let status = stdout(&cy.coord.command(&["--status"]));
    assert!(!status.contains("restart"), "{status}");
}

#[test]
fn children_made_every_way_in_a_loop_survive_restarts_64_with_32_bit_exec() {
    churning_children_survive(false, true);
}

#[test]
fn children_made_every_way_in_a_loop_survive_restarts_32_with_64_bit_exec() {
    churning_children_survive(true, false);
}

/// A child that ended and is not reaped at checkpoint time has left the computation; after
/// the restart its parent reaps it all the same, with its exit status or signal (it is made
/// again, ended: `resources/zombies.rs`).
fn unreaped_children_are_reaped_after_restarts(m32: bool) {
    let p = c_program("zombie_child", m32);
    let last =
        crate::ckpt::cycles_with(&p, &[] as &[&str], 1, 2, Duration::from_millis(1500), &[], |cy, _| cy.restart(1));
    assert!(last.contains("RESULT exited=7 killed=15\n"), "{last}");
}

#[test]
fn children_ended_unreaped_at_checkpoint_are_reaped_with_their_status_after_restart_64() {
    unreaped_children_are_reaped_after_restarts(false);
}

#[test]
fn children_ended_unreaped_at_checkpoint_are_reaped_with_their_status_after_restart_32() {
    unreaped_children_are_reaped_after_restarts(true);
}
