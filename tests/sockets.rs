//! Sockets across checkpoint, kill and restart: UNIX socketpairs and connections from path and
//! abstract listeners between a parent and its child (64-bit, 32-bit and a mixed pair), TCP
//! servers with several clients, a client connecting after a restart, UDP, and a client of a
//! server outside the computation. Each runs two cycles and compares its RESULT with an
//! uninterrupted run.
use crate::ckpt::{cycles_with, result_line};
use crate::util::*;
use std::time::Duration;

fn two_cycles(program: &std::path::Path, args: &[&str], peers: usize, settle: Duration) -> String {
    let last = cycles_with(program, args, peers, 2, settle, &[], |cy, _| cy.restart(peers));
    result_line(&last)
}

/// What every run of sock_unix must say: nothing lost, duplicated or reordered in any of the
/// five channels, the kept datagrams with their sizes, the shut-down pair, the options, flags
/// and a new client of the path listener.
fn check_unix(r: &str) {
    for want in [
        "bad=0",
        "balanced=1",
        "child=0",
        "dgrams=1,12,5",
        "bye=1",
        "eof=1",
        "back=1",
        "rcvtimeo=7.25",
        "sndbuf=80000",
        "nonblock=1",
        "cloexec=1",
        "new_client=1",
    ] {
        assert!(r.contains(want), "{want} missing in {r}");
    }
}

#[test]
fn unix_stream_dgram_seqpacket_pairs_and_listeners_keep_bytes_in_flight_64() {
    let p = c_program("sock_unix", false);
    check_unix(&two_cycles(&p, &["3000", "."], 2, Duration::from_millis(700)));
}

#[test]
fn unix_stream_dgram_seqpacket_pairs_and_listeners_keep_bytes_in_flight_32() {
    let p = c_program("sock_unix", true);
    check_unix(&two_cycles(&p, &["3000", "."], 2, Duration::from_millis(700)));
}

fn mixed_unix(parent_m32: bool) {
    let parent = c_program("sock_unix", parent_m32);
    let child = c_program("sock_unix", !parent_m32);
    check_unix(&two_cycles(&parent, &["3000", ".", child.to_str().unwrap()], 2, Duration::from_millis(700)));
}

#[test]
fn unix_sockets_between_a_64_bit_parent_and_a_32_bit_child_survive_restarts() {
    mixed_unix(false);
}

#[test]
fn unix_sockets_between_a_32_bit_parent_and_a_64_bit_child_survive_restarts() {
    mixed_unix(true);
}
