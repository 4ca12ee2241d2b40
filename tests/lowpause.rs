//! Checkpoints while processes come to their end: a process that ends by itself right after a
//! checkpoint was requested still has its image in the set, and the computation restarts from
//! that set with the result of an uninterrupted run. Pins the bug of the lost background-write
//! branch (a process exiting during the write had its image dropped, N-1 images).
use crate::ckpt::{result_line, uninterrupted, Cycle};
use crate::util::*;
use std::time::Duration;

fn exit_during_write(m32: bool) {
    let p = c_program("exit_soon", m32);
    let args = ["300"];
    let reference = {
        let d = TempDir::new("ref");
        uninterrupted(&p, &args, d.path())
    };
    let mut cy = Cycle::launch_n(&p, &args, &[], 2);
    // The child ticks for at least 1.5 s after it runs; checkpoint while it still lives.
    std::thread::sleep(Duration::from_millis(300));
    cy.checkpoint();
    assert_eq!(cy.images().len(), 2, "{:?}\n{}", cy.images(), cy.diagnostics());
    cy.kill();
    cy.restart(2);
    let last = cy.finish();
    assert_eq!(result_line(&last), reference, "\n{}", cy.diagnostics());
}

#[test]
fn process_exiting_during_image_write_keeps_its_image_64() {
    exit_during_write(false);
}

#[test]
fn process_exiting_during_image_write_keeps_its_image_32() {
    exit_during_write(true);
}
