//! Low-pause checkpoints: a snapshot process writes the image from its copy-on-write view of
//! memory while the program runs on. These tests pin correctness, never timings: the restored
//! state is the stopped state although the program rewrote its memory during the write,
//! `--bcheckpoint` answers only once the image is on disk under its final name, a second
//! checkpoint during a write is refused clearly, killing everything during the write leaves the
//! previous image intact, and the program sees no child and no SIGCHLD of ours.
use crate::ckpt::{cycles_with, Cycle};
use crate::util::*;
use std::path::Path;
use std::time::Duration;

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".tmp-"))
        .collect()
}

/// Pins that the image is the stopped state: threads rewriting every page of their buffers
/// while the image is written find, after each of two restarts, exactly the previous round's
/// pattern (`bad=0`), and none of their wait calls saw a child nor got a SIGCHLD; the RESULT
/// equals an uninterrupted run's.
fn memory_rewritten_during_the_write_restores_as_it_was_stopped(m32: bool, threads: &str) {
    let p = c_program("lowpause_mutator", m32);
    // Smaller on i686, whose 64-bit arithmetic is slow: the uninterrupted run must stay short.
    let (mib, rounds) = if m32 { ("32", "90") } else { ("64", "150") };
    let last = cycles_with(&p, &[mib, rounds, threads], 1, 2, Duration::from_millis(1500), &[], |cy, _| cy.restart(1));
    assert!(last.contains("bad=0 waits=0 sigchld=0"), "torn snapshot or a visible child:\n{last}");
    assert!(!last.starts_with("round 0\n"), "the restarted run began from the start:\n{last}");
}

#[test]
fn memory_rewritten_during_the_write_restores_as_it_was_stopped_64() {
    memory_rewritten_during_the_write_restores_as_it_was_stopped(false, "1");
}

#[test]
fn memory_rewritten_by_threads_during_the_write_restores_as_it_was_stopped_64() {
    memory_rewritten_during_the_write_restores_as_it_was_stopped(false, "3");
}

#[test]
fn memory_rewritten_by_threads_during_the_write_restores_as_it_was_stopped_32() {
    memory_rewritten_during_the_write_restores_as_it_was_stopped(true, "3");
}

/// Pins that `--bcheckpoint` waits for the background write: when it returns, the image is
/// under its final name, no temporary file is left, and a restart from it works; while the
/// next image is being written, another checkpoint request is refused with a clear message.
#[test]
fn bcheckpoint_returns_once_the_image_is_durable_and_a_second_request_is_refused() {
    let p = c_program("lowpause_mutator", false);
    let mut cy = Cycle::launch(&p, &["192", "100000", "2"], &[]);
    std::thread::sleep(Duration::from_millis(1500));
    cy.checkpoint();
    assert_eq!(cy.images().len(), 1, "{}", cy.diagnostics());
    assert_eq!(temp_files(&cy.ckdir), Vec::<String>::new(), "a temporary image is left after --bcheckpoint");
    let first = std::fs::read(&cy.images()[0]).unwrap();
    assert!(first.len() > 1 << 20, "image too small: {} bytes", first.len());
    // A second checkpoint: caught while its image is written, a third request is refused.
    let out = cy.coord.command(&["--checkpoint"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        wait_until(Duration::from_secs(60), || !temp_files(&cy.ckdir).is_empty()),
        "the second image was never being written\n{}",
        cy.diagnostics()
    );
    let again = cy.coord.command(&["--checkpoint"]);
    let text = format!("{}{}", stdout(&again), stderr(&again));
    assert!(!again.status.success() && text.contains("already in progress"), "not refused clearly: {text}");
    // The program runs while the image is written: its output goes on.
    let out0 = cy.work.join("out-0.txt");
    let before = std::fs::read_to_string(&out0).unwrap().lines().count();
    assert!(
        wait_until(Duration::from_secs(30), || std::fs::read_to_string(&out0).unwrap().lines().count() > before + 2),
        "the program did not run on during the write"
    );
    assert!(wait_until(Duration::from_secs(120), || temp_files(&cy.ckdir).is_empty()), "the write never ended");
    cy.kill();
    cy.restart(1);
    let out = cy.coord.command(&["--kill"]);
    assert!(out.status.success());
}

/// Pins that the image is written under a temporary name and renamed: everything killed
/// (SIGKILL to the namespace's init) while the next image is being written leaves the previous
/// image byte for byte as it was, and it still restarts.
#[test]
fn killed_during_the_background_write_leaves_the_previous_image_intact() {
    let p = c_program("lowpause_mutator", false);
    let mut cy = Cycle::launch(&p, &["192", "100000", "2"], &[]);
    std::thread::sleep(Duration::from_millis(1500));
    cy.checkpoint();
    let image = cy.images()[0].clone();
    let first = std::fs::read(&image).unwrap();
    let out = cy.coord.command(&["--checkpoint"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        wait_until(Duration::from_secs(60), || !temp_files(&cy.ckdir).is_empty()),
        "the second image was never being written\n{}",
        cy.diagnostics()
    );
    let init = host_pid(cy.root_pid(), 1).expect("the namespace's init");
    let k = run(std::process::Command::new("kill").args(["-KILL", &init.to_string()]));
    assert!(k.status.success(), "{}", stderr(&k));
    cy.reap();
    assert!(wait_until(Duration::from_secs(10), || cy.coord.peers() == 0));
    assert_eq!(cy.images(), vec![image.clone()]);
    assert!(std::fs::read(&image).unwrap() == first, "the previous image changed");
    cy.restart(1);
    let out = cy.coord.command(&["--kill"]);
    assert!(out.status.success());
}
