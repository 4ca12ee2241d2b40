//! The restart resume point (libdmtcp `arch`): a restarted thread goes on from the kernel's
//! signal frame with every register it had when the checkpoint signal landed, whatever the
//! compiler did with the frames of our handler. Real programs, 64 and 32 bit, two cycles each,
//! compared with an uninterrupted run.
use crate::ckpt::cycles_with;
use crate::util::c_program;
use std::time::Duration;

/// Pins that resuming a thread is rt_sigreturn on the kernel's frame: threads computing with
/// their state held in registers only (integer and floating-point, caller- and callee-saved)
/// end with the uninterrupted run's values after two restarts.
fn registers_live_in_a_computation_survive_two_restarts(m32: bool) {
    let p = c_program("resume_regs", m32);
    let last = cycles_with(&p, &["80"], 1, 2, Duration::from_millis(1200), &[], |cy, _| cy.restart(1));
    assert!(!last.starts_with("round 0\n"), "the restarted run began from the start:\n{last}");
}

#[test]
fn registers_live_in_a_computation_survive_two_restarts_64() {
    registers_live_in_a_computation_survive_two_restarts(false);
}

#[test]
fn registers_live_in_a_computation_survive_two_restarts_32() {
    registers_live_in_a_computation_survive_two_restarts(true);
}
