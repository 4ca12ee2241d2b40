//! Faults during a checkpoint: the coordinator dies, the disk fills up, the program is killed
//! while its image is being written. The program must go on (or, killed, leave nothing), and no
//! partial image may ever stand under a final name.
use crate::ckpt::{result_line, uninterrupted, Cycle};
use crate::util::*;
use dmtcp::common::image_reader;
use std::process::Command;
use std::time::Duration;

#[test]
fn coordinator_killed_during_checkpoint_the_program_goes_on() {
    let p = c_program("grower", false);
    let args = ["256", "256", "1000000", "40"];
    let reference = uninterrupted(&p, &args, TempDir::new("ref").path());
    let mut cy = Cycle::launch(&p, &args, &[]);
    std::thread::sleep(Duration::from_millis(300));
    // A checkpoint of 256 MiB of random bytes takes long enough to be interrupted.
    let out = cy.coord.command(&["--checkpoint"]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::thread::sleep(Duration::from_millis(150));
    cy.coord.child.kill().unwrap();
    cy.coord.child.wait().unwrap();
    let last = cy.finish();
    assert_eq!(result_line(&last), reference);
    let err = std::fs::read_to_string(cy.work.join("err-0.txt")).unwrap();
    assert!(err.contains("lost contact with the coordinator"), "stderr of the program:\n{err}");
    assert!(temporaries(&cy.ckdir).is_empty(), "{:?}", temporaries(&cy.ckdir));
    for img in cy.images() {
        image_reader::check_file(&img).unwrap_or_else(|e| panic!("partial image left: {}: {e}", img.display()));
    }
}

#[test]
fn program_killed_while_its_image_is_written_leaves_no_image() {
    let p = c_program("grower", false);
    let cy = Cycle::launch(&p, &["384", "384", "1000000", "100000"], &["--no-gzip"]);
    std::thread::sleep(Duration::from_millis(300));
    let out = cy.coord.command(&["--checkpoint"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Kill the program itself (not through dmtcp) once it is writing.
    let host = host_pid(cy.root_pid(), 2).expect("program not found");
    std::thread::sleep(Duration::from_millis(120));
    // SAFETY: kill(2) of a process we started.
    unsafe { libc::kill(host, libc::SIGKILL) };
    assert!(wait_until(Duration::from_secs(20), || cy.coord.peers() == 0));
    // The writer notices the stream ended early and removes its temporary file.
    assert!(wait_until(Duration::from_secs(10), || temporaries(&cy.ckdir).is_empty()), "{:?}", temporaries(&cy.ckdir));
    assert!(cy.images().is_empty(), "an image of a killed checkpoint was left: {:?}", cy.images());
}

#[test]
fn full_disk_fails_the_checkpoint_keeps_the_previous_image_and_the_program_runs() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("full_disk_fails_the_checkpoint...: SKIPPED (mounting a small tmpfs needs root)");
        return;
    }
    let p = c_program("grower", false);
    // 8 MiB at first, 64 MiB after step 15: the second image cannot fit in 40 MiB.
    let args = ["8", "64", "15", "45"];
    let reference = uninterrupted(&p, &args, TempDir::new("ref").path());
    // The tmpfs must exist before launch: the program's private mount namespace is made then.
    let disk = TempDir::new("fulldisk");
    let st = Command::new("mount").args(["-t", "tmpfs", "-o", "size=40m", "tmpfs"]).arg(disk.path()).status().unwrap();
    assert!(st.success(), "cannot mount a tmpfs");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _u = Unmount(disk.0.clone());
    let mut cy = Cycle::launch(&p, &args, &["--no-gzip", "--ckptdir", disk.path().to_str().unwrap()]);
    cy.ckdir = disk.0.clone();
    std::thread::sleep(Duration::from_millis(300));
    cy.checkpoint();
    let first = cy.images();
    assert_eq!(first.len(), 1);
    let before = std::fs::read(&first[0]).unwrap();
    // Wait until the program has grown past the space left.
    std::thread::sleep(Duration::from_millis(2000));
    let out = cy.coord.command(&["--bcheckpoint"]);
    assert!(!out.status.success(), "a checkpoint onto a full disk succeeded: {}", stdout(&out));
    assert!(stderr(&out).contains("disk full") || stderr(&out).contains("No space"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&first[0]).unwrap(), before, "the previous image changed");
    image_reader::check_file(&first[0]).unwrap();
    assert!(temporaries(&cy.ckdir).is_empty(), "{:?}", temporaries(&cy.ckdir));
    let last = cy.finish();
    assert_eq!(result_line(&last), reference);
}
