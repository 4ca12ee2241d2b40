//! Computations of several processes: process trees (parents, children, process groups and
//! sessions), pipes between the processes, mixed 32/64-bit families, `system()`/`popen()`
//! children, and children that run outside the computation. Each is checkpointed mid-run,
//! killed, restarted (from the images or through the coordinator's restart script) and its
//! RESULT compared with an uninterrupted run.
use crate::ckpt::{cycles_with, result_line, Cycle};
use crate::util::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// How a cycle restarts the computation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Via {
    Images,
    Script,
}

fn restart_command(cy: &Cycle, via: Via) -> Command {
    match via {
        Via::Images => {
            let mut c = role("restart");
            c.args(["--join-coordinator", "--coord-port", &cy.coord.port.to_string()]).args(cy.images());
            c
        }
        Via::Script => {
            let script = cy.ckdir.join("dmtcp_restart_script.sh");
            assert!(script.exists(), "the coordinator wrote no restart script in {}", cy.ckdir.display());
            let text = std::fs::read_to_string(&script).unwrap();
            for img in cy.images() {
                assert!(
                    text.contains(img.to_str().unwrap()),
                    "{} is not in the restart script:\n{text}",
                    img.display()
                );
            }
            let mut c = Command::new("bash");
            c.arg(&script);
            for v in ["DMTCP_COORD_HOST", "DMTCP_COORD_PORT", "DMTCP_CHECKPOINT_DIR", "DMTCP_GZIP", "DMTCP_SIGCKPT"] {
                c.env_remove(v);
            }
            c
        }
    }
}

/// Launch a computation of `peers` processes, then once per element of `vias`: wait `settle`,
/// checkpoint, kill, restart that way; compare the final RESULT with an uninterrupted run.
fn tree_cycles(program: &Path, args: &[&str], peers: usize, vias: &[Via], settle: Duration) -> String {
    cycles_with(program, args, peers, vias.len(), settle, &[], |cy, k| {
        let c = restart_command(cy, vias[k]);
        cy.restart_with(c, peers);
    })
}

/// Every child kept its pid, parent, group and session (its exit status says so) and the parent
/// waited for each by the pid fork had returned.
const TREE_FORK: &str = "RESULT parent=2 pgid_is_own=0 child0 exit=40 child1 exit=41";

#[test]
fn forked_children_keep_parent_pids_groups_sessions_and_exit_statuses_via_script_and_images_64() {
    let p = c_program("tree_fork", false);
    let last = tree_cycles(&p, &["250"], 3, &[Via::Script, Via::Images, Via::Script], Duration::from_millis(400));
    assert_eq!(result_line(&last), TREE_FORK);
}

#[test]
fn forked_children_keep_parent_pids_groups_sessions_and_exit_statuses_32() {
    let p = c_program("tree_fork", true);
    let last = tree_cycles(&p, &["250"], 3, &[Via::Images, Via::Script], Duration::from_millis(400));
    assert_eq!(result_line(&last), TREE_FORK);
}

#[test]
fn pipes_between_parent_and_child_keep_bytes_in_flight_across_restarts_64() {
    let p = c_program("pipe_pair", false);
    let last = tree_cycles(&p, &["4000"], 2, &[Via::Images, Via::Script], Duration::from_millis(700));
    let r = result_line(&last);
    assert!(r.contains("bad=0") && r.contains("balanced=1") && r.contains("eof=y"), "{r}");
}

fn mixed_pipes(parent_m32: bool) {
    let parent = c_program("pipe_pair", parent_m32);
    let child = c_program("pipe_pair", !parent_m32);
    let last = tree_cycles(
        &parent,
        &["4000", child.to_str().unwrap()],
        2,
        &[Via::Images, Via::Script],
        Duration::from_millis(700),
    );
    let r = result_line(&last);
    assert!(r.contains("bad=0") && r.contains("balanced=1") && r.contains("child=0"), "{r}");
}

#[test]
fn mixed_64_bit_parent_and_exec_32_bit_child_talk_through_pipes_across_restarts() {
    mixed_pipes(false);
}

#[test]
fn mixed_32_bit_parent_and_exec_64_bit_child_talk_through_pipes_across_restarts() {
    mixed_pipes(true);
}
