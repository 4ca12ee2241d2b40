//! No leftovers: a computation that ends removes its shared-data area from the temporary
//! folder, and one whose coordinator was killed before it could is cleaned up by the next
//! launch of the same user (issue 13, "No leftovers").
use crate::util::*;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The per-user folders (`dmtcp-<user>@<host>`) under `tmp`.
fn user_dirs(tmp: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(tmp).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect()
}

/// Every file in the per-user folders under `tmp`.
fn ours(tmp: &Path) -> Vec<String> {
    user_dirs(tmp)
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap().flatten())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn launch_new(tmp: &Path, program: &Path) {
    let mut c = role("launch");
    c.args(["--new-coordinator", "--coord-port", "0"]).arg(program).env("DMTCP_TMPDIR", tmp);
    run_ok(&mut c);
}

#[test]
fn finished_computations_leave_no_shared_area_behind() {
    let tmp = TempDir::new("left");
    for i in 0..12 {
        // Every launch has a coordinator of its own on a port of its own.
        launch_new(tmp.path(), &c_program("hello", i % 2 == 1));
    }
    let clean = wait_until(Duration::from_secs(20), || ours(tmp.path()).is_empty());
    assert!(clean, "left in the temporary folder after 12 computations: {:?}", ours(tmp.path()));
}

#[test]
fn areas_of_killed_coordinators_are_swept_by_the_next_launch_live_ones_kept() {
    let tmp = TempDir::new("sweep");
    launch_new(tmp.path(), &c_program("hello", false));
    assert!(wait_until(Duration::from_secs(20), || ours(tmp.path()).is_empty()), "{:?}", ours(tmp.path()));
    let dir = user_dirs(tmp.path()).pop().expect("the per-user folder");
    // A coordinator killed with SIGKILL leaves its area: nothing listens on its port now.
    let gone = TcpListener::bind("127.0.0.1:0").unwrap();
    let gone_port = gone.local_addr().unwrap().port();
    drop(gone);
    // A live computation's coordinator listens on its port: its area must stay.
    let live = TcpListener::bind("127.0.0.1:0").unwrap();
    let live_port = live.local_addr().unwrap().port();
    for p in [gone_port, live_port] {
        std::fs::write(dir.join(format!("dmtcpSharedArea.{p}")), [0u8; 4096]).unwrap();
    }
    launch_new(tmp.path(), &c_program("hello", true));
    let want = vec![format!("dmtcpSharedArea.{live_port}")];
    assert!(wait_until(Duration::from_secs(20), || ours(tmp.path()) == want), "{:?}", ours(tmp.path()));
    drop(live);
}
