//! DMTCP's C API (include/dmtcp.h, payloads/libdmtcp/src/api.rs): a real C program that
//! checkpoints itself with dmtcp_checkpoint() and keeps a checkpoint requested by
//! dmtcp_command out of its dmtcp_disable_ckpt() section, 64- and 32-bit, restarted twice and
//! compared with an uninterrupted run; and the same program without dmtcp (weak symbols).
use crate::ckpt::{result_line, uninterrupted, Cycle};
use crate::util::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const STEPS: &str = "10";

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn sum_of(result: &str) -> &str {
    result.split_whitespace().find(|w| w.starts_with("sum=")).unwrap_or_else(|| panic!("no sum in {result}"))
}

fn reference(prog: &Path) -> String {
    let d = TempDir::new("api-ref");
    std::fs::write(d.join("section.go"), "").unwrap();
    let r = uninterrupted(prog, &[STEPS], d.path());
    assert!(r.contains("api=present-ok"), "uninterrupted run under dmtcp: {r}");
    r
}

fn self_checkpoint_and_deferred_checkpoint(m32: bool) {
    let prog = c_program("api_self", m32);
    let reference = reference(&prog);
    let mut cy = Cycle::launch(&prog, &[STEPS], &[]);
    let out0 = cy.work.join("out-0.txt");

    // 1. The program's own dmtcp_checkpoint() writes its image and returns AFTER_CHECKPOINT.
    let ok = wait_until(Duration::from_secs(30), || {
        read(&out0).contains("self-checkpoint: after checkpoint") && cy.images().len() == 1
    });
    assert!(ok, "no self-made checkpoint\n{}", cy.diagnostics());
    assert!(!read(&out0).contains("failed"), "{}", cy.diagnostics());
    cy.kill();
    cy.restart(1);
    for img in cy.images() {
        std::fs::remove_file(img).unwrap();
    }
    let out1 = cy.work.join("out-1.txt");
    // In the restarted process the same call returns AFTER_RESTART, then the section begins.
    let ok = wait_until(Duration::from_secs(30), || read(&out1).contains("section begin"));
    assert!(ok, "the restarted program did not reach its section\n{}", cy.diagnostics());
    assert!(read(&out1).starts_with("self-checkpoint: after restart\n"), "{}", cy.diagnostics());

    // 2. A checkpoint asked for inside the section waits until dmtcp_enable_ckpt().
    let port = cy.coord.port.to_string();
    let asked = Instant::now();
    let bckpt = std::thread::spawn(move || run(role("command").args(["--coord-port", &port, "--bcheckpoint"])));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!bckpt.is_finished(), "the checkpoint did not wait for the section\n{}", cy.diagnostics());
    assert!(cy.images().is_empty(), "an image was written inside the section");
    assert!(!read(&out1).contains("section end"));
    std::fs::write(cy.work.join("section.go"), "").unwrap();
    let out = bckpt.join().unwrap();
    assert!(out.status.success(), "deferred checkpoint failed: {}{}\n{}", stdout(&out), stderr(&out), cy.diagnostics());
    assert!(asked.elapsed() >= Duration::from_millis(1500));
    assert!(read(&out1).contains("section end"), "the checkpoint ran before the section ended\n{}", cy.diagnostics());
    assert_eq!(cy.images().len(), 1, "{}", cy.diagnostics());
    cy.kill();
    cy.restart(1);
    let last = cy.finish();
    // The image was taken after the section: the restarted run does not go through it again.
    assert!(!last.contains("section begin") && !last.contains("self-checkpoint"), "{last}\n{}", cy.diagnostics());
    assert_eq!(result_line(&last), reference, "\n{}", cy.diagnostics());
}

#[test]
fn api_program_checkpoints_itself_and_defers_checkpoints_64() {
    self_checkpoint_and_deferred_checkpoint(false);
}

#[test]
fn api_program_checkpoints_itself_and_defers_checkpoints_32() {
    self_checkpoint_and_deferred_checkpoint(true);
}

fn without_dmtcp(m32: bool) {
    let prog = c_program("api_self", m32);
    let reference = reference(&prog);
    let d = TempDir::new("api-none");
    std::fs::write(d.join("section.go"), "").unwrap();
    let out = run_ok(Command::new(&prog).arg(STEPS).current_dir(d.path()));
    let r = result_line(&stdout(&out));
    assert!(r.contains("api=absent-ok"), "{}", stdout(&out));
    assert!(stdout(&out).contains("self-checkpoint: dmtcp not present"));
    assert_eq!(sum_of(&r), sum_of(&reference));
}

#[test]
fn api_program_runs_without_dmtcp_through_weak_symbols_64() {
    without_dmtcp(false);
}

#[test]
fn api_program_runs_without_dmtcp_through_weak_symbols_32() {
    without_dmtcp(true);
}

/// `self-install` puts the header under P/include, and a program built against it (as a user
/// would: `-I P/include`, `#include <dmtcp.h>`) calls the library under the installed launcher.
#[test]
fn self_install_installs_dmtcp_h_that_programs_build_against() {
    let t = TempDir::new("api-install");
    let prefix = t.join("prefix");
    run_ok(role("self-install").arg("--prefix").arg(&prefix));
    let installed = std::fs::read(prefix.join("include/dmtcp.h")).unwrap();
    assert_eq!(installed, std::fs::read(repo().join("include/dmtcp.h")).unwrap());
    let src = t.join("user.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\n#include <dmtcp.h>\nint main(void) {\n  int c = -1, r = -1;\n  \
         int s = dmtcp_get_local_status(&c, &r);\n  printf(\"enabled=%d status=%d checkpoints=%d restarts=%d\\n\",\n  \
         dmtcp_is_enabled(), s, c, r);\n  return 0;\n}\n",
    )
    .unwrap();
    for m32 in [false, true] {
        let exe = t.join(if m32 { "user32" } else { "user64" });
        let mut gcc = Command::new("gcc");
        gcc.arg("-I").arg(prefix.join("include")).arg("-o").arg(&exe).arg(&src);
        if m32 {
            gcc.arg("-m32");
        }
        run_ok(&mut gcc);
        let alone = run_ok(&mut Command::new(&exe));
        assert_eq!(stdout(&alone), "enabled=0 status=3 checkpoints=-1 restarts=-1\n");
        let under = run_ok(
            Command::new(prefix.join("bin/dmtcp_launch"))
                .args(["--new-coordinator", "--coord-port", "0", "-q"])
                .arg(&exe)
                .current_dir(t.path()),
        );
        assert_eq!(stdout(&under), "enabled=1 status=4 checkpoints=0 restarts=0\n", "{}", stderr(&under));
    }
}

/// Regression: program threads asking for the image path at the same time take turns (the
/// text lives in one static buffer, whose checked cell aborted on overlapping use), and a
/// pointer one got keeps reading the whole path while others ask again.
#[test]
fn api_path_calls_from_many_threads_at_once_neither_abort_nor_tear() {
    for m32 in [false, true] {
        let prog = c_program("api_threads", m32);
        let d = TempDir::new("api-threads");
        let r = uninterrupted(&prog, &[] as &[&str], d.path());
        assert_eq!(r, "RESULT calls=160000 ok=1");
    }
}
