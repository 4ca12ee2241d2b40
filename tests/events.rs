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
