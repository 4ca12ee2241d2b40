//! Endurance: a program that makes children every way in a loop (system, popen, posix_spawn,
//! fork+exec of a 32-bit or 64-bit program) checkpointed, killed and restarted while its
//! children come and go. Issue 13 saw this fail often on a busy machine: the restarted run's
//! result differed, or the coordinator stayed in "a restart is in progress". The suite runs
//! two cycles; `scripts/endurance.sh` runs it many times, idle and under load.
use crate::ckpt::{result_line, uninterrupted, Cycle};
use crate::util::*;
use std::time::Duration;

fn churning_children_survive(m32_parent: bool, m32_child: bool, cycles: usize) {
    let p = c_program("spawn_loop", m32_parent);
    let child = c_program("hello", m32_child);
    let args = ["120".to_string(), child.display().to_string()];
    let reference = uninterrupted(&p, &args, TempDir::new("ref").path());
    assert!(reference.contains("bad=0"), "{reference}");
    let mut cy = Cycle::launch(&p, &args, &[]);
    for _ in 0..cycles {
        std::thread::sleep(Duration::from_millis(1200));
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

// Not in the default suite yet: a child that registers after every other process stopped
// (an exec'd image registers anew, late) is missing from the checkpoint, so its parent's
// waitpid fails after restart. `scripts/endurance.sh` runs these and counts the failures.
#[test]
#[ignore = "exec'd children join the checkpoint late (issue 13); run by scripts/endurance.sh"]
fn children_made_every_way_in_a_loop_survive_restarts_64_with_32_bit_exec() {
    churning_children_survive(false, true, 2);
}

#[test]
#[ignore = "exec'd children join the checkpoint late (issue 13); run by scripts/endurance.sh"]
fn children_made_every_way_in_a_loop_survive_restarts_32_with_64_bit_exec() {
    churning_children_survive(true, false, 2);
}
