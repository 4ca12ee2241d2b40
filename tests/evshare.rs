//! Event fds shared across processes, for real: a parent and a child inherit three eventfds
//! over fork (a ping, a pong and an EFD_SEMAPHORE tally left unread) and an epoll watching the
//! ping, and talk through the eventfds only, across two checkpoint/kill/restart cycles. After
//! each restart a write by one must be read by the other (one object per open file description,
//! made by dmtcp_restart), and the tally must hold what both added before and after each
//! checkpoint; otherwise the waits time out (lost rounds) and the counts differ from an
//! uninterrupted run. 64-bit, 32-bit, and a 64-bit parent with a 32-bit child exec'd after fork.
use crate::ckpt::{cycles_with, result_line};
use crate::util::*;
use std::time::Duration;

const ROUNDS: u64 = 80;

fn shared_eventfds(parent_m32: bool, child_m32: Option<bool>) {
    let p = c_program("evshare", parent_m32);
    let mut args = vec![ROUNDS.to_string()];
    if let Some(m32) = child_m32 {
        args.push(c_program("evshare", m32).to_str().unwrap().to_string());
    }
    let last = cycles_with(&p, &args, 2, 2, Duration::from_millis(900), &[], |cy, _| cy.restart(2));
    let r = result_line(&last);
    let sum = ROUNDS * (ROUNDS + 1);
    let want = format!("RESULT rounds={ROUNDS} sum={sum} tally={} bad=0 lost=0 child=0", 2 * ROUNDS);
    assert_eq!(r, want, "{last}");
}

#[test]
fn a_write_to_an_eventfd_inherited_over_fork_is_read_by_the_other_process_after_restarts_64() {
    shared_eventfds(false, None);
}

#[test]
fn a_write_to_an_eventfd_inherited_over_fork_is_read_by_the_other_process_after_restarts_32() {
    shared_eventfds(true, None);
}

#[test]
fn a_64_bit_parent_and_its_exec_32_bit_child_still_share_their_eventfds_after_restarts() {
    shared_eventfds(false, Some(true));
}
