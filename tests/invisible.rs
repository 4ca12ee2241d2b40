//! The tool stays invisible (issue 8): no EINTR from a checkpoint (poll, select, epoll_wait,
//! sigtimedwait; epoll_wait through checkpoints without a restart until epoll fds are restored), no SIGCHLD nor child of ours, no fd of ours in the program's way (close_range,
//! closefrom, a close loop, dup2 onto 820/821), no change of errno. Each program runs through two
//! checkpoint/kill/restart cycles, 64- and 32-bit, and its RESULT is compared with an
//! uninterrupted run's.
use crate::ckpt::{cycles_with, result_line, uninterrupted, Cycle};
use crate::util::{c_program, TempDir};
use std::time::Duration;

/// Two cycles of `name` (built for 32 or 64 bits) with `settle` before each checkpoint; returns
/// the last run's output (its RESULT already matched the uninterrupted run's).
fn two_cycles(name: &str, m32: bool, args: &[&str], settle: Duration) -> String {
    let p = c_program(name, m32);
    let last = cycles_with(&p, args, 1, 2, settle, &[], |cy, _| cy.restart(1));
    assert!(!last.starts_with("round 0\n"), "the restarted run began from the start:\n{last}");
    last
}

const WAITS_OK: &str = "RESULT rounds=12 eintr=0 early=0 wrong=0 alarms=10 alarm_eintr=10 handled=10";

fn waits_never_fail_with_eintr(name: &str, m32: bool) {
    let last = two_cycles(name, m32, &["12", "10"], Duration::from_millis(2500));
    assert!(last.contains(WAITS_OK), "a wait failed, ended early or missed the program's own signal:\n{last}");
}

/// epoll_wait through two checkpoints the program runs on from (an epoll fd does not survive a
/// restart until the epoll kind is restored), with poll, select and sigtimedwait beside it.
fn epoll_wait_never_fails_with_eintr(m32: bool) {
    let p = c_program("quiet_waits", m32);
    let args = ["12", "10", "epoll"];
    let reference = {
        let d = TempDir::new("ref");
        uninterrupted(&p, &args, d.path())
    };
    let mut cy = Cycle::launch(&p, &args, &[]);
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(2500));
        cy.checkpoint();
    }
    let last = cy.finish();
    assert_eq!(result_line(&last), reference, "\n{}", cy.diagnostics());
    assert!(last.contains(WAITS_OK), "a wait failed, ended early or missed the program's own signal:\n{last}");
}

#[test]
fn epoll_wait_spans_checkpoints_without_eintr_64() {
    epoll_wait_never_fails_with_eintr(false);
}

#[test]
fn epoll_wait_spans_checkpoints_without_eintr_32() {
    epoll_wait_never_fails_with_eintr(true);
}

#[test]
fn poll_select_sigtimedwait_span_checkpoints_and_restarts_without_eintr_64() {
    waits_never_fail_with_eintr("quiet_waits", false);
}

#[test]
fn poll_select_sigtimedwait_span_checkpoints_and_restarts_without_eintr_32() {
    waits_never_fail_with_eintr("quiet_waits", true);
}

/// i686 with `_TIME_BITS=64`: __select64, __sigtimedwait64.
#[test]
fn time64_select_sigtimedwait_span_checkpoints_and_restarts_without_eintr_32() {
    waits_never_fail_with_eintr("quiet_waits_t64", true);
}

fn no_sigchld_nor_child_of_ours(m32: bool) {
    let last = two_cycles("quiet_sigchld", m32, &["60"], Duration::from_millis(1800));
    assert!(
        last.contains("RESULT rounds=60 children=6 sigchld=6 foreign=0 echild=60 other=0"),
        "the program saw a SIGCHLD or a child that was not its own:\n{last}"
    );
}

#[test]
fn checkpoint_sends_no_sigchld_and_leaves_no_child_to_wait_for_64() {
    no_sigchld_nor_child_of_ours(false);
}

#[test]
fn checkpoint_sends_no_sigchld_and_leaves_no_child_to_wait_for_32() {
    no_sigchld_nor_child_of_ours(true);
}

fn closing_every_fd_keeps_checkpointing(m32: bool) {
    // cycles_with checks that every checkpoint wrote an image: the coordinator connection
    // survived the program's close_range/closefrom/close loop and its dup2 onto 821.
    let last = two_cycles("quiet_fds", m32, &["40"], Duration::from_millis(1300));
    assert!(
        last.contains("RESULT rounds=40 ok=1 lines=40,40,40"),
        "the program's own fds at 820, 821, 822 were not its own across restarts:\n{last}"
    );
}

#[test]
fn close_range_closefrom_and_dup2_onto_820_821_keep_the_coordinator_fd_64() {
    closing_every_fd_keeps_checkpointing(false);
}

#[test]
fn close_range_closefrom_and_dup2_onto_820_821_keep_the_coordinator_fd_32() {
    closing_every_fd_keeps_checkpointing(true);
}

fn errno_unchanged(name: &str, m32: bool) {
    let last = two_cycles(name, m32, &["300"], Duration::from_millis(2000));
    assert!(last.contains("RESULT rounds=300 changed=0,0,0"), "errno changed across a checkpoint:\n{last}");
}

#[test]
fn errno_is_unchanged_across_checkpoints_64() {
    errno_unchanged("quiet_errno", false);
}

#[test]
fn errno_is_unchanged_across_checkpoints_32() {
    errno_unchanged("quiet_errno", true);
}

/// i686 with `_TIME_BITS=64`: __nanosleep64.
#[test]
fn errno_is_unchanged_across_checkpoints_time64_32() {
    errno_unchanged("quiet_errno_t64", true);
}
