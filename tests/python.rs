//! A real runtime rather than a C program: Python's asyncio (epoll, a self-pipe socketpair, a
//! TCP listener and its connections in one event loop) through two checkpoint/kill/restart
//! cycles, compared with an uninterrupted run (issue 8's asyncio case).
use crate::ckpt::cycles_with;
use crate::util::*;
use std::path::PathBuf;
use std::time::Duration;

/// The interpreter itself, not a wrapper script in PATH (pyenv's shims are bash scripts whose
/// helper processes would be the computation's too).
fn python3() -> PathBuf {
    let out = run_ok(std::process::Command::new("python3").args(["-c", "import sys; print(sys.executable)"]));
    PathBuf::from(stdout(&out).trim())
}

#[test]
fn python_asyncio_server_and_clients_in_one_computation_survive_two_restarts() {
    let script = repo().join("tests/py/asyncio_echo.py");
    let args = [script.display().to_string(), "400".into()];
    let last = cycles_with(&python3(), &args, 1, 2, Duration::from_millis(1200), &[], |cy, _| cy.restart(1));
    assert!(last.contains("RESULT"), "{last}");
    assert!(!last.starts_with("client 0 at 0\n"), "the restarted run began from the start:\n{last}");
}
