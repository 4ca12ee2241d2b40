//! Event fds across checkpoint/kill/restart: an epoll loop over a pipe, an eventfd, a timerfd,
//! a signalfd and an inotify watch (`events_loop.c`), and the state of each kind pinned on its
//! own (`events_state.c`), 64- and 32-bit, two cycles each, compared with an uninterrupted run.
use crate::ckpt::{cycles_with, result_line};
use crate::util::*;
use std::time::Duration;

fn event_loop(m32: bool) {
    let p = c_program("events_loop", m32);
    let last = cycles_with(&p, &["200", "20"], 1, 2, Duration::from_millis(1000), &[], |cy, _| cy.restart(1));
    assert!(!last.starts_with("round 1\n"), "the restarted run began from the start:\n{last}");
    let r = result_line(&last);
    assert!(r.contains("rounds=200 pipe=200 eventfd=200 signals=200 inotify=200 ignored=2 "), "{r}");
    assert!(r.contains("wds=2,3 late_wd=5 bad=0"), "{r}");
}

#[test]
fn epoll_loop_over_pipe_eventfd_timerfd_signalfd_inotify_survives_two_restarts_64() {
    event_loop(false);
}

#[test]
fn epoll_loop_over_pipe_eventfd_timerfd_signalfd_inotify_survives_two_restarts_32() {
    event_loop(true);
}

/// What `events_state` prints when every kind kept its state (see the program's comment).
const STATE: &str = "RESULT outer=1:5eed inner=1:deadbeefcafef00d sem=5,EAGAIN count=9589934600 cloexec=10 \
nonblock=10 ticking=1 hour=1 abs=1 expired=1 disarmed=1 late=1 sig=RTMIN+2,10 edge=1:77,0 exclusive=1:99 wds=1,3 next=5 \
events=1:100:f;3:100:f;3:8000:;";

fn event_state(m32: bool) -> String {
    let p = c_program("events_state", m32);
    let last = cycles_with(&p, &["80"], 1, 2, Duration::from_millis(1200), &[], |cy, _| cy.restart(1));
    assert!(!last.starts_with("ready\n"), "the restarted run began from the start:\n{last}");
    result_line(&last)
}

/// One run pins them all (each kind's fields are named in the RESULT line, so a failure says
/// which kind lost what): eventfd counter and semaphore, timerfd interval, time left, unread
/// expiration and disarmed state, signalfd mask and a pending signal, epoll data, one-shot,
/// EPOLLEXCLUSIVE, edge-triggered and nested entries, inotify watch descriptors and the next one.
#[test]
fn eventfd_counter_timerfd_interval_epoll_data_and_inotify_wds_are_kept_64() {
    assert_eq!(event_state(false), STATE);
}

#[test]
fn eventfd_counter_timerfd_interval_epoll_data_and_inotify_wds_are_kept_32() {
    assert_eq!(event_state(true), STATE);
}

/// A timer whose time ran out while the computation was down expires once, right after the
/// restart: the 3-second one-shot of `events_state`, checkpointed about 1.2 s in and restarted
/// after 3.5 s, fires within a few steps of the restart (at step ~58 when not interrupted).
fn expired_while_down(m32: bool) {
    let p = c_program("events_state", m32);
    let last = cycles_with(&p, &["80"], 1, 1, Duration::from_millis(1200), &[], |cy, _| {
        std::thread::sleep(Duration::from_millis(3500));
        cy.restart(1)
    });
    assert_eq!(result_line(&last), STATE);
    let step: usize = last
        .lines()
        .find_map(|l| l.strip_prefix("fired at step "))
        .unwrap_or_else(|| panic!("the timer did not fire after the restart:\n{last}"))
        .parse()
        .unwrap();
    let first = last.lines().find_map(|l| l.strip_prefix("step ")).unwrap().parse::<usize>().unwrap();
    assert!(step <= first + 10, "fired at step {step}, long after the restart (step {first}):\n{last}");
}

#[test]
fn timerfd_that_expired_while_down_fires_once_right_after_restart_64() {
    expired_while_down(false);
}

#[test]
fn timerfd_that_expired_while_down_fires_once_right_after_restart_32() {
    expired_while_down(true);
}
