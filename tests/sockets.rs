//! Sockets across checkpoint, kill and restart: UNIX socketpairs and connections from path and
//! abstract listeners between a parent and its child (64-bit, 32-bit and a mixed pair), TCP
//! servers with several clients, a client connecting after a restart, UDP, and a client of a
//! server outside the computation. Each runs two cycles and compares its RESULT with an
//! uninterrupted run.
use crate::ckpt::{cycles_with, result_line, Cycle};
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
        "server_dgrams=3,7,1",
        "named=1",
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
    let (port, echo) = (free_port().to_string(), echo_server());
    let mut warned = Vec::new();
    let last = cycles_with(&p, &["6000", &port, &echo.to_string()], 5, 2, Duration::from_millis(700), &[], |cy, _| {
        cy.restart(5);
        warned.push(cy.diagnostics());
    });
    let r = result_line(&last);
    assert!(
        r.contains("clients=0,0,0 outside=0 keepalive=1 udp=1 new_clients=1"),
        "a client saw a lost, duplicated or reordered byte, or a socket lost its state: {r}\n{last}"
    );
    // After each restart the connection to the outside server failed as a network failure
    // does (end of file, ECONNRESET or EPIPE) on an fd that was still a socket, and the client
    // connected again.
    let line = last.lines().find_map(|l| l.strip_prefix("outside reconnects=")).unwrap_or_else(|| panic!("{last}"));
    let (n, failures) = line.split_once(" failures=").unwrap();
    let n: usize = n.parse().unwrap();
    assert!(n >= 1, "the client of the outside server did not reconnect:\n{last}");
    assert_eq!(failures.len(), 2 * n, "one failure per reconnection: {line}");
    for f in failures.as_bytes().chunks(2) {
        assert!(b"ERP".contains(&f[0]) && f[1] == b's', "a failure that is not a network failure on a socket: {line}");
    }
    // The checkpoint and the restart said which connection leads outside.
    let to = format!("to 127.0.0.1:{echo}");
    for d in &warned {
        assert!(
            d.lines().any(|l| l.contains("fd 3") && l.contains(&to) && l.contains("outside the computation")),
            "no warning names the connection {to}:\n{d}"
        );
    }
}

#[test]
fn tcp_server_with_clients_udp_and_an_outside_peer_survive_restarts_64() {
    tcp(false);
}

#[test]
fn tcp_server_with_clients_udp_and_an_outside_peer_survive_restarts_32() {
    tcp(true);
}

/// A listener's port taken by another program at restart time: `dmtcp_restart` names the port
/// and the program and exits with 2 before any process is restored.
#[test]
fn restart_names_a_taken_listening_port_and_its_program_and_restores_nothing() {
    let p = c_program("sock_tcp", false);
    let (port, echo) = (free_port(), echo_server());
    let mut cy = Cycle::launch_n(&p, &["6000", &port.to_string(), &echo.to_string()], &[], 5);
    std::thread::sleep(Duration::from_millis(700));
    cy.checkpoint();
    cy.kill();
    let squatter = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let mut c = role("restart");
    c.args(["--join-coordinator", "--coord-port", &cy.coord.port.to_string()]).args(cy.images());
    let out = run_for(&mut c, Duration::from_secs(60));
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(e.contains(&format!("listened on TCP port {port}")) && e.contains("sock_tcp-64"), "{e}");
    assert_eq!(cy.coord.peers(), 0, "a process was restored: {e}");
    drop(squatter);
}

/// A TCP server and its client started by two `dmtcp_launch`es (two pid namespaces) joined to
/// one coordinator: the connection is paired across them at restart, bytes in flight included.
#[test]
fn a_tcp_connection_between_two_launches_survives_restarts_64_and_32() {
    let server = c_program("sock_tcp", false);
    let client = c_program("sock_tcp", true);
    let port = free_port().to_string();
    let reference = {
        let mut s = std::process::Command::new(&server).args(["--server", &port, "5000"]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let out = run_ok(std::process::Command::new(&client).args(["--client", &port, "5000"]));
        s.wait().unwrap();
        result_line(&stdout(&out))
    };
    let mut cy = Cycle::launch_n(&server, &["--server", &port, "5000"], &[], 1);
    let mut c = role("launch");
    c.args(["--join-coordinator", "--coord-port", &cy.coord.port.to_string()])
        .arg(&client)
        .args(["--client", &port, "5000"])
        .env("DMTCP_CHECKPOINT_DIR", &cy.ckdir)
        .current_dir(cy.work.path())
        .stdin(std::process::Stdio::null())
        // A regular file: the restarted client goes on writing into it.
        .stdout(std::fs::File::create(cy.work.join("out-client.txt")).unwrap())
        .stderr(std::fs::File::create(cy.work.join("err-client.txt")).unwrap());
    let mut second = c.spawn().unwrap();
    cy.wait_running(2);
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(700));
        cy.checkpoint();
        assert_eq!(cy.images().len(), 2, "{}", cy.diagnostics());
        cy.kill();
        let _ = second.wait();
        cy.restart(2);
        for img in cy.images() {
            std::fs::remove_file(img).unwrap();
        }
    }
    let _ = cy.finish();
    let out = std::fs::read_to_string(cy.work.join("out-client.txt")).unwrap();
    assert_eq!(result_line(&out), reference, "\n{}", cy.diagnostics());
    assert!(reference.contains("client=0"), "{reference}");
}

/// A listener on a port the kernel chose, without SO_REUSEADDR: the accepted connections
/// closed by `--kill` would sit in TIME_WAIT on that port and keep the restarted server from
/// listening there again, unless the kill resets them (`sockets::reset_connections`).
#[test]
fn a_listener_without_reuseaddr_listens_again_right_after_a_kill_64() {
    let p = c_program("tcp_noreuse", false);
    crate::ckpt::cycles_with(&p, &["25"], 1 + 4, 2, Duration::from_millis(700), &[], |cy, _| cy.restart(5));
}

#[test]
fn a_listener_without_reuseaddr_listens_again_right_after_a_kill_32() {
    let p = c_program("tcp_noreuse", true);
    crate::ckpt::cycles_with(&p, &["25"], 1 + 4, 2, Duration::from_millis(700), &[], |cy, _| cy.restart(5));
}

/// What every run of sock_bulk must say: each of the four flows arrived whole, every byte at
/// its offset (12 and 6 MiB over TCP, 4 and 2 MiB over UNIX), and each UNIX end has the send
/// buffer its program gave it (a refill raises the other end's while it writes into it; the
/// holder setting its size back during that refill once lost MiB, `Opts::SendBuffer`).
const BULK: &str = "RESULT parent tcp=6291456,0 unix=2097152,0 sndbuf=kept child tcp=12582912,0 unix=4194304,0 \
                    sndbuf=kept exit=0";

/// A checkpoint 700 ms into a 2.5 s pause of both readers: the receive queues are full and the
/// TCP senders' kernels hold MiB in their send queues (the window is full). Two cycles; the
/// bytes the senders still held must come back, not only the receivers' windows.
fn bulk(parent_m32: bool, child_m32: Option<bool>) {
    let p = c_program("sock_bulk", parent_m32);
    let child = child_m32.map(|m| c_program("sock_bulk", m));
    let mut args = vec!["2500".to_string()];
    if let Some(c) = &child {
        args.push(c.to_str().unwrap().to_string());
    }
    let r = two_cycles(&p, &args.iter().map(|s| s.as_str()).collect::<Vec<_>>(), 2, Duration::from_millis(700));
    assert_eq!(r, BULK);
}

#[test]
fn mib_held_in_a_tcp_send_queue_behind_a_full_window_survive_restarts_64() {
    bulk(false, None);
}

#[test]
fn mib_held_in_a_tcp_send_queue_behind_a_full_window_survive_restarts_32() {
    bulk(true, None);
}

#[test]
fn mib_in_flight_between_a_64_bit_parent_and_a_32_bit_child_survive_restarts() {
    bulk(false, Some(true));
}

/// A file descriptor in flight on a UNIX socket (SCM_RIGHTS, not yet received) at checkpoint
/// is refused clearly: the checkpoint names the fd as one that cannot be restored, and after
/// the restart the bytes that carried it arrive without it (never a descriptor that silently
/// points elsewhere).
fn fd_in_flight(m32: bool) {
    let p = c_program("sock_rights", m32);
    let reference = {
        let d = crate::util::TempDir::new("ref");
        crate::ckpt::uninterrupted(&p, &["3000"], d.path())
    };
    assert_eq!(result_line(&reference), "RESULT bytes=FD!!tail fds=1 reads=hello");
    let mut cy = Cycle::launch_n(&p, &["3000"], &[], 1);
    std::thread::sleep(Duration::from_millis(700));
    let out = cy.coord.command(&["--bcheckpoint"]);
    let text = stdout(&out) + &stderr(&out);
    assert!(out.status.success(), "{text}\n{}", cy.diagnostics());
    assert!(
        text.contains("fd 4 (UNIX socket with file descriptors in flight, SCM_RIGHTS")
            && text.contains("cannot be restored"),
        "the checkpoint names the fd with a descriptor in flight:\n{text}"
    );
    cy.kill();
    cy.restart(1);
    let last = cy.finish();
    assert_eq!(result_line(&last), "RESULT bytes=FD!!tail fds=0 reads=-", "\n{}", cy.diagnostics());
}

#[test]
fn a_descriptor_in_flight_on_a_unix_socket_is_reported_and_its_bytes_come_back_64() {
    fd_in_flight(false);
}

#[test]
fn a_descriptor_in_flight_on_a_unix_socket_is_reported_and_its_bytes_come_back_32() {
    fd_in_flight(true);
}

/// With `--strict`, a descriptor in flight makes the checkpoint fail; the program goes on and
/// receives it.
#[test]
fn strict_refuses_a_checkpoint_with_a_descriptor_in_flight_and_the_program_goes_on() {
    let p = c_program("sock_rights", false);
    let mut cy = Cycle::launch_n(&p, &["2000"], &["--strict"], 1);
    std::thread::sleep(Duration::from_millis(500));
    let out = cy.coord.command(&["--bcheckpoint"]);
    let text = stdout(&out) + &stderr(&out);
    assert!(!out.status.success() && text.contains("SCM_RIGHTS") && text.contains("--strict"), "{text}");
    assert!(cy.images().is_empty(), "{:?}", cy.images());
    let last = cy.finish();
    assert_eq!(result_line(&last), "RESULT bytes=FD!!tail fds=1 reads=hello", "\n{}", cy.diagnostics());
}

/// Connections waiting in a TCP and a UNIX listener's accept queue at checkpoint (the client
/// connected, the server not accepted yet) come back: after each restart the client is
/// connected and the server's accept() returns it (64-bit, 32-bit, two cycles).
fn accept_queue(m32: bool) {
    let p = c_program("sock_accept", m32);
    let r = two_cycles(&p, &["3000"], 2, Duration::from_millis(700));
    assert_eq!(r, "RESULT tcp=thanks unix=thanks child=0");
}

#[test]
fn connections_in_an_accept_queue_are_connected_again_and_accepted_after_restarts_64() {
    accept_queue(false);
}

#[test]
fn connections_in_an_accept_queue_are_connected_again_and_accepted_after_restarts_32() {
    accept_queue(true);
}

/// A UNIX socket end and a TCP listener held by a parent and its child after fork are one
/// socket again after each restart: a status flag the child sets is seen by the parent, and
/// what the child sends arrives at the other end (64 and 32 bit, two cycles).
fn shared_over_fork(m32: bool) {
    let p = c_program("sock_fork", m32);
    let r = two_cycles(&p, &["3000"], 2, Duration::from_millis(700));
    assert_eq!(r, "RESULT shared_unix=1 shared_listener=1 got=child child=0");
}

#[test]
fn sockets_shared_over_fork_are_one_socket_again_after_restarts_64() {
    shared_over_fork(false);
}

#[test]
fn sockets_shared_over_fork_are_one_socket_again_after_restarts_32() {
    shared_over_fork(true);
}
