//! MPI jobs on one host (issue 14): `dmtcp_launch mpirun -np 4 ./app`, checkpointed mid-run,
//! killed, restarted, and ending with the result of an uninterrupted run, over two cycles, with
//! Debian's Open MPI (its default transports: shared memory and TCP between the ranks, TCP and
//! ptys to `mpirun`). On kill, mpirun removes the ranks' /dev/shm segment files (the backing
//! files of the shared-memory transport): the restorer makes them again from the images
//! (`tests/shm_backing.rs`); before that the restorer's ENOENT message went into a rank's
//! stderr pipe to mpirun and the restart stayed at 1 of 5 processes. MPICH is not tested here yet: over TCP its jobs checkpoint and restart
//! with the right result, but MPI_Finalize under dmtcp sometimes hangs (also without a
//! checkpoint), and its UCX shared-memory transport does not come back. The MPI libraries are
//! 64-bit only on Debian's multilib, so these programs are too.
use crate::ckpt::cycles_with;
use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// tests/c/mpi_ring.c built with `mpicc` (a path such as /usr/bin/mpicc.openmpi).
fn mpi_program(mpicc: &str, tag: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c-programs");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("mpi_ring-{tag}"));
    let tmp = dir.join(format!(".mpi_ring-{tag}-{}", std::process::id()));
    run_ok(Command::new(mpicc).args(["-O1", "-o"]).arg(&tmp).arg(repo().join("tests/c/mpi_ring.c")));
    std::fs::rename(&tmp, &out).unwrap();
    out
}

#[test]
fn an_open_mpi_job_of_four_ranks_survives_two_restarts() {
    let p = mpi_program("mpicc.openmpi", "openmpi");
    let p = p.to_str().unwrap();
    // mpirun and its four ranks are the computation's five processes.
    let args = ["--allow-run-as-root", "--oversubscribe", "-np", "4", p, "24"];
    let last =
        cycles_with(Path::new("/usr/bin/mpirun.openmpi"), &args, 5, 2, Duration::from_millis(1200), &[], |cy, _| {
            cy.restart(5)
        });
    assert!(!last.starts_with("step 0\n"), "the restarted run began from the start:\n{last}");
}
