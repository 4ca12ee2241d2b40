//! Interval checkpoints (issue 13), the short version of `scripts/endurance.sh --interval`:
//! checkpoints every second of a running program, through a kill and a restart; every image
//! restorable, no growth of the coordinator's or the program's fds, and the result of an
//! uninterrupted run at the end.
use crate::ckpt::{result_line, uninterrupted, Cycle};
use crate::util::*;
use dmtcp::common::image_reader;
use std::time::Duration;

/// The fewest fds `pid` holds over half a second: a checkpoint in progress holds a few for a
/// moment (a command's connection, a file being written); a leak raises the floor.
fn fds(pid: i32) -> usize {
    (0..6)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|d| d.count())
                .unwrap_or_else(|e| panic!("fds of {pid}: {e}"))
        })
        .min()
        .unwrap()
}

/// Waits until the image's generation reaches `g`; returns it.
fn generation_at_least(cy: &Cycle, g: u32) -> u32 {
    let mut now = 0;
    let ok = wait_until(Duration::from_secs(30), || {
        now = cy.images().first().and_then(|p| image_reader::check_file(p).ok()).map(|i| i.generation()).unwrap_or(0);
        now >= g
    });
    assert!(ok, "interval checkpoints stalled at generation {now} (waiting for {g})\n{}", cy.diagnostics());
    now
}

#[test]
fn interval_checkpoints_every_second_grow_nothing_and_restart() {
    let p = c_program("grower", false);
    let args = ["16", "16", "1000000", "160"];
    let reference = uninterrupted(&p, &args, TempDir::new("ref").path());
    let mut cy = Cycle::launch(&p, &args, &["--no-gzip", "--interval", "1"]);
    let coord = cy.coord.child.id() as i32;
    let first = generation_at_least(&cy, 2);
    let prog = host_pid(cy.root_pid(), 2).expect("program not found");
    let (coord_fds, prog_fds) = (fds(coord), fds(prog));
    let later = generation_at_least(&cy, first + 4);
    assert_eq!(fds(coord), coord_fds, "the coordinator's fds grew over {} checkpoints", later - first);
    assert_eq!(fds(prog), prog_fds, "the program's fds grew over {} checkpoints", later - first);
    // Each cycle: kill, restart from the newest interval image, more interval checkpoints.
    for _ in 0..2 {
        cy.kill();
        let g = generation_at_least(&cy, 0);
        // The killed computation's interval went with it: the restart sets it again.
        let mut c = role("restart");
        c.args(["--join-coordinator", "--coord-port", &cy.coord.port.to_string(), "--interval", "1"]).args(cy.images());
        cy.restart_with(c, 1);
        generation_at_least(&cy, g + 2);
        let prog = host_pid(cy.root_pid(), 2).expect("restarted program not found");
        // (A restarted process may hold one fewer: the launcher's own is not restored.)
        let (p, c) = (fds(prog), fds(coord));
        assert!(p <= prog_fds, "the restarted program holds {p} fds, launched {prog_fds}");
        assert!(c <= coord_fds, "the coordinator's fds grew across a restart: {coord_fds} -> {c}");
    }
    assert_eq!(result_line(&cy.finish()), reference);
}
