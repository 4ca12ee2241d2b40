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

/// An echo server outside the computation (a thread of the test), on a free loopback port.
fn echo_server() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = c.try_clone().unwrap();
                let mut w = c;
                let _ = std::io::copy(&mut r, &mut w);
            });
        }
    });
    port
}

/// A port nobody listens on now (bound to 0 by the harness, then let go).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    drop(l);
    p
}

fn tcp(m32: bool) {
    let p = c_program("sock_tcp", m32);
    let (port, echo) = (free_port().to_string(), echo_server().to_string());
    let last = cycles_with(&p, &["6000", &port, &echo], 5, 2, Duration::from_millis(700), &[], |cy, _| cy.restart(5));
    let r = result_line(&last);
    assert!(
        r.contains("clients=0,0,0 outside=0 keepalive=1 udp=1 new_clients=1"),
        "a client saw a lost, duplicated or reordered byte, or a socket lost its state: {r}\n{last}"
    );
    let reconnects =
        last.lines().find_map(|l| l.strip_prefix("outside reconnects=")).map(|n| n.parse::<u32>().unwrap());
    assert!(reconnects.is_some_and(|n| n >= 1), "the client of the outside server did not reconnect:\n{last}");
}

#[test]
fn tcp_server_with_clients_udp_and_an_outside_peer_survive_restarts_64() {
    tcp(false);
}

#[test]
fn tcp_server_with_clients_udp_and_an_outside_peer_survive_restarts_32() {
    tcp(true);
}
