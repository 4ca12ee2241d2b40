//! Timers and clocks across checkpoint, kill and restart (two cycles, 64- and 32-bit, compared
//! with an uninterrupted run): the interval timers, alarm and POSIX timers of every
//! notification kind keep counting to their targets with the same ids, and CLOCK_MONOTONIC and
//! CLOCK_BOOTTIME go on from the checkpoint (no step back, no leap by the downtime) while
//! CLOCK_REALTIME shows the downtime.
use crate::ckpt::{cycles_with, Cycle};
use crate::util::*;
use std::time::Duration;

/// The program's last run went through a restart: it did not start over.
fn restarted(last: &str) {
    assert!(!last.starts_with("tick 0\n") && !last.starts_with("tick 1\n"), "the restarted run began anew:\n{last}");
}

fn timers_count_to_their_targets(m32: bool) {
    let p = c_program("timers", m32);
    let last = cycles_with(&p, &["all"], 1, 2, Duration::from_millis(1200), &[], |cy: &mut Cycle, _| cy.restart(1));
    restarted(&last);
    assert!(last.contains("ids=1 idle=1 none=1 pending=1/1"), "{last}");
}

#[test]
fn itimers_and_posix_timers_keep_counting_with_their_ids_64() {
    timers_count_to_their_targets(false);
}

#[test]
fn itimers_and_posix_timers_keep_counting_with_their_ids_32() {
    timers_count_to_their_targets(true);
}

fn alarm_fires_after_restart(m32: bool) {
    let p = c_program("timers", m32);
    let last = cycles_with(&p, &["alarm"], 1, 2, Duration::from_millis(1300), &[], |cy: &mut Cycle, _| cy.restart(1));
    assert!(!last.starts_with("tick 0\ntick 1\ntick 2"), "the restarted run began anew:\n{last}");
    assert!(last.contains("RESULT alarms=3 early=0"), "{last}");
}

#[test]
fn alarm_armed_at_checkpoint_fires_after_restart_64() {
    alarm_fires_after_restart(false);
}

#[test]
fn alarm_armed_at_checkpoint_fires_after_restart_32() {
    alarm_fires_after_restart(true);
}

/// Three seconds pass between each kill and restart: the monotonic and boottime clocks must not
/// show them (leap < 1 s), the real-time clock must.
fn clocks_continue_across_restarts(m32: bool) {
    let p = c_program("clocks", m32);
    let downtime = Duration::from_secs(3);
    let last = cycles_with(&p, &["700"], 1, 2, Duration::from_millis(1200), &[], |cy: &mut Cycle, _| {
        std::thread::sleep(downtime);
        cy.restart(1)
    });
    restarted(&last);
    let steps = last.lines().find(|l| l.starts_with("max_step_ms")).unwrap_or_else(|| panic!("{last}"));
    let ms = |name: &str| -> u64 {
        steps.split_whitespace().find_map(|f| f.strip_prefix(&format!("{name}="))?.parse().ok()).unwrap()
    };
    assert!(ms("realtime") >= downtime.as_millis() as u64, "the real-time clock did not see the downtime: {steps}");
    assert!(ms("monotonic") < 1000 && ms("boottime") < 1000, "{steps}");
}

#[test]
fn monotonic_and_boottime_continue_across_restarts_without_the_downtime_64() {
    clocks_continue_across_restarts(false);
}

#[test]
fn monotonic_and_boottime_continue_across_restarts_without_the_downtime_32() {
    clocks_continue_across_restarts(true);
}
