//! MPI jobs on one host (issue 14): `dmtcp_launch mpirun -np 4 ./app`, checkpointed mid-run,
//! killed, restarted, and ending with the result of an uninterrupted run, over two cycles, with
//! Debian's Open MPI (its default transports: shared memory and TCP between the ranks, TCP and
//! ptys to `mpirun`) and with MPICH (its default transports; mpiexec is hydra, with a
//! hydra_pmi_proxy between it and the ranks). On kill, mpirun removes the ranks' /dev/shm
//! segment files (the backing files of Open MPI's shared-memory transport): the restorer makes
//! them again from the images (`tests/shm_backing.rs`); before that the restorer's ENOENT
//! message went into a rank's stderr pipe to mpirun and the restart stayed at 1 of 5
//! processes. Not tested: MPICH with UCX_TLS=tcp, which hangs in MPI_Finalize even without
//! dmtcp (upstream). The MPI libraries are 64-bit only on Debian's multilib, so these programs
//! are too.
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

#[test]
fn an_mpich_job_of_four_ranks_survives_two_restarts() {
    let p = mpi_program("mpicc.mpich", "mpich");
    let p = p.to_str().unwrap();
    // mpiexec (hydra), its hydra_pmi_proxy and the four ranks are the computation's six
    // processes; MPICH's default transports (no UCX_TLS=tcp: that hangs in MPI_Finalize even
    // without dmtcp, upstream).
    let args = ["-np", "4", p, "24"];
    let last =
        cycles_with(Path::new("/usr/bin/mpirun.mpich"), &args, 6, 2, Duration::from_millis(1200), &[], |cy, _| {
            cy.restart(6)
        });
    assert!(!last.starts_with("step 0\n"), "the restarted run began from the start:\n{last}");
}
