//! The Slurm example (`scripts/slurm/dmtcp-job.sh`, issue 14) with the scheduler's part
//! reproduced by the test, as Debian's slurm-wlm cannot run a cluster inside the test within a
//! minute: the test starts the batch script as Slurm would, sends SIGUSR1 to the batch shell as
//! `--signal=B:USR1@T` does before the time limit, checks that the job asked to be requeued
//! (a stand-in `scontrol` in PATH records the call), and runs the script again as the requeued
//! job, twice, until the program ends with the result of an uninterrupted run.
use crate::ckpt::{result_line, uninterrupted};
use crate::util::*;
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn a_slurm_job_checkpoints_on_the_warning_signal_and_its_requeued_runs_restart() {
    let prog = c_program("ckpt_single", false);
    let args = ["60", "data.bin", "48"];
    let reference = {
        let r = TempDir::new("slurm-ref");
        uninterrupted(&prog, &args, r.path())
    };
    let d = TempDir::new("slurm");
    let bin = d.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = d.join("scontrol.log");
    std::fs::write(bin.join("scontrol"), format!("#!/bin/sh\necho \"$@\" >> '{}'\n", log.display())).unwrap();
    std::fs::set_permissions(bin.join("scontrol"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let ck = d.join("ckpt");
    let out = d.join("slurm-4242.out");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let job = |restarts: u32| {
        let mut c = Command::new("bash");
        c.arg(repo().join("scripts/slurm/dmtcp-job.sh"))
            .arg(&prog)
            .args(args)
            .env("DMTCP", dmtcp())
            .env("PATH", &path)
            .env("SLURM_JOB_ID", "4242")
            .env("DMTCP_CHECKPOINT_DIR", &ck)
            .env_remove("DMTCP_COORD_PORT")
            .env_remove("DMTCP_COORD_HOST")
            .current_dir(d.path())
            .stdin(Stdio::null())
            .stdout(File::options().create(true).append(true).open(&out).unwrap())
            .stderr(File::options().create(true).append(true).open(d.join("slurm-4242.err")).unwrap());
        if restarts > 0 {
            c.env("SLURM_RESTART_COUNT", restarts.to_string());
        }
        c.spawn().unwrap()
    };
    let steps = || std::fs::read_to_string(&out).unwrap_or_default().matches("step ").count();
    let diag = || {
        format!(
            "{}\n{}",
            std::fs::read_to_string(d.join("slurm-4242.err")).unwrap_or_default(),
            std::fs::read_to_string(ck.join("coordinator.log")).unwrap_or_default()
        )
    };
    for run in 0..2u32 {
        let before = steps();
        let mut batch = job(run);
        assert!(
            wait_until(Duration::from_secs(60), || steps() >= before + 8),
            "run {run} made no progress\n{}",
            diag()
        );
        // Slurm's warning before the time limit, to the batch shell only.
        // SAFETY: kill has no memory preconditions; the pid is our child's.
        unsafe { libc::kill(batch.id() as i32, libc::SIGUSR1) };
        let mut status = None;
        assert!(
            wait_until(Duration::from_secs(60), || {
                status = batch.try_wait().unwrap();
                status.is_some()
            }),
            "run {run}: the job did not end after the warning\n{}",
            diag()
        );
        assert!(status.unwrap().success(), "run {run}: {:?}\n{}", status, diag());
        let requeues = std::fs::read_to_string(&log).unwrap_or_default();
        assert_eq!(requeues.lines().filter(|l| *l == "requeue 4242").count(), run as usize + 1, "{requeues}");
        assert!(std::fs::read_dir(&ck).unwrap().flatten().any(|e| e.path().extension().is_some_and(|x| x == "dmtcp")));
    }
    // The last requeued run goes to the end.
    let mut batch = job(2);
    let mut status = None;
    assert!(wait_until(Duration::from_secs(120), || {
        status = batch.try_wait().unwrap();
        status.is_some()
    }));
    assert!(status.unwrap().success(), "{:?}\n{}", status, diag());
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(result_line(&text), reference, "{text}");
    assert_eq!(text.matches("step 1\n").count(), 1, "a requeued run began from the start:\n{text}");
    assert!(
        !std::fs::read_dir(&ck).unwrap().flatten().any(|e| e.path().extension().is_some_and(|x| x == "dmtcp")),
        "the images of a finished job were left behind"
    );
    assert!(diag().contains("restart 2 from"), "{}", diag());
}
