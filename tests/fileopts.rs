//! DMTCP's file options: `--checkpoint-open-files` (the contents of the regular files the
//! program holds open go into the image and come back at restart) and
//! `--allow-file-overwrite` (the saved contents replace a file that changed since). A real
//! program (tests/c/fileopts.c) writes numbered lines to a file it holds open, write-only,
//! through two checkpoint/kill/restart cycles, 64 and 32 bits; between checkpoint and restart
//! the test removes or changes the file; the file's final bytes are compared with an
//! uninterrupted run's.
use crate::ckpt::{cycles_with, result_line, uninterrupted, Cycle};
use crate::util::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

const STEPS: &str = "45";
const SETTLE: Duration = Duration::from_millis(1500);
const CHANGED: &[u8] = b"changed by the test while the computation was down\n";

fn err_of(cy: &Cycle, k: usize) -> String {
    std::fs::read_to_string(cy.work.join(format!("err-{k}.txt"))).unwrap_or_default()
}

fn mode_of(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn a_removed_file_is_made_again(m32: bool) {
    let p = c_program("fileopts", m32);
    let last = cycles_with(&p, &["data.txt", STEPS], 1, 2, SETTLE, &["--checkpoint-open-files"], |cy, k| {
        let data = cy.work.join("data.txt");
        std::fs::remove_file(&data).unwrap();
        cy.restart(1);
        assert!(data.is_file(), "cycle {k}: not made again\n{}", cy.diagnostics());
        assert_eq!(mode_of(&data), 0o640, "cycle {k}: the file's mode");
        assert!(!err_of(cy, k + 1).contains("changed since"), "{}", err_of(cy, k + 1));
    });
    assert!(!last.starts_with("step 1\n"), "the restarted run began from the start:\n{last}");
}

#[test]
fn checkpoint_open_files_makes_a_removed_file_again() {
    a_removed_file_is_made_again(false);
}

#[test]
fn checkpoint_open_files_makes_a_removed_file_again_m32() {
    a_removed_file_is_made_again(true);
}

/// The control: without the option a removed file stays removed (its fd gets a placeholder),
/// so the tests above test the option.
#[test]
fn without_checkpoint_open_files_a_removed_file_stays_removed() {
    let p = c_program("fileopts", false);
    let mut cy = Cycle::launch(&p, &["data.txt", STEPS], &[]);
    std::thread::sleep(SETTLE);
    cy.checkpoint();
    cy.kill();
    let data = cy.work.join("data.txt");
    std::fs::remove_file(&data).unwrap();
    cy.restart(1);
    assert!(!data.exists(), "made again without --checkpoint-open-files");
    assert!(err_of(&cy, 1).contains("data.txt again"), "no warning about the file: {}", err_of(&cy, 1));
}

fn a_changed_file_is_left_as_it_is(m32: bool) {
    let p = c_program("fileopts", m32);
    let reference = uninterrupted(&p, &["data.txt", STEPS], TempDir::new("ref").path());
    let mut cy = Cycle::launch(&p, &["data.txt", STEPS], &["--checkpoint-open-files"]);
    let data = cy.work.join("data.txt");
    for k in 0..2 {
        std::thread::sleep(SETTLE);
        cy.checkpoint();
        cy.kill();
        std::fs::write(&data, CHANGED).unwrap();
        cy.restart(1);
        let err = err_of(&cy, k + 1);
        assert!(err.contains(&format!("{} changed since the checkpoint", data.display())), "cycle {k}: {err}");
        assert!(err.contains("--allow-file-overwrite"), "the warning names the fix: {err}");
        assert!(std::fs::read(&data).unwrap().starts_with(CHANGED), "cycle {k}: overwritten without leave");
        for img in cy.images() {
            std::fs::remove_file(img).unwrap();
        }
    }
    let last = cy.finish();
    assert_ne!(result_line(&last), reference, "the program got the checkpointed file, not the changed one");
    assert!(std::fs::read(&data).unwrap().starts_with(CHANGED));
}

#[test]
fn a_changed_file_is_left_as_it_is_without_allow_file_overwrite() {
    a_changed_file_is_left_as_it_is(false);
}

#[test]
fn a_changed_file_is_left_as_it_is_without_allow_file_overwrite_m32() {
    a_changed_file_is_left_as_it_is(true);
}

fn a_changed_file_is_replaced(m32: bool) {
    let p = c_program("fileopts", m32);
    let launch = ["--checkpoint-open-files", "--allow-file-overwrite"];
    cycles_with(&p, &["data.txt", STEPS], 1, 2, SETTLE, &launch, |cy, k| {
        let data = cy.work.join("data.txt");
        std::fs::write(&data, CHANGED).unwrap();
        cy.restart(1);
        assert!(!err_of(cy, k + 1).contains("changed since"), "{}", err_of(cy, k + 1));
        assert!(!std::fs::read(&data).unwrap().starts_with(CHANGED), "cycle {k}: not replaced");
    });
}

#[test]
fn allow_file_overwrite_replaces_a_changed_file() {
    a_changed_file_is_replaced(false);
}

#[test]
fn allow_file_overwrite_replaces_a_changed_file_m32() {
    a_changed_file_is_replaced(true);
}

/// DMTCP_ALLOW_OVERWRITE_WITH_CKPTED_FILES=1 given to dmtcp_restart (not at launch) allows it too.
#[test]
fn allow_overwrite_variable_at_restart_replaces_a_changed_file() {
    let p = c_program("fileopts", false);
    cycles_with(&p, &["data.txt", STEPS], 1, 2, SETTLE, &["--checkpoint-open-files"], |cy, k| {
        let data = cy.work.join("data.txt");
        std::fs::write(&data, CHANGED).unwrap();
        let mut c = role("restart");
        c.args(["--join-coordinator", "--coord-port", &cy.coord.port.to_string()])
            .args(cy.images())
            .env("DMTCP_ALLOW_OVERWRITE_WITH_CKPTED_FILES", "1");
        cy.restart_with(c, 1);
        assert!(!err_of(cy, k + 1).contains("changed since"), "{}", err_of(cy, k + 1));
    });
}

/// A file over the bound (1 MiB) is not saved, and the checkpoint says which.
#[test]
fn a_file_too_big_to_save_is_named_at_checkpoint() {
    let work = TempDir::new("bigfile");
    let big = work.join("big.bin");
    std::fs::write(&big, vec![7u8; (1 << 20) + 1]).unwrap();
    let script = format!("exec 3<'{}'; exec sleep 60", big.display());
    let cy = Cycle::launch(Path::new("/bin/sh"), &["-c", script.as_str()], &["--checkpoint-open-files"]);
    cy.checkpoint();
    let err = err_of(&cy, 0);
    assert!(err.contains(&format!("{} (1048577 bytes) is not saved", big.display())), "{err}");
    assert!(err.contains("1048576 bytes each"), "the bound is said: {err}");
}

/// `--pathvirt`: the computation's folder (its working folder, holding the file it writes) is
/// moved between checkpoint and restart, and back again in the second cycle; dmtcp_restart,
/// given DMTCP_PATH_PREFIX (old) and DMTCP_NEW_PATH_PREFIX (new), opens the file and returns to
/// the working folder under the new prefix. The program's last open of the file by its
/// relative name must find every line in the moved folder.
fn a_moved_folder_comes_back(m32: bool) {
    let p = c_program("fileopts", m32);
    let reference = uninterrupted(&p, &["data.txt", STEPS], TempDir::new("ref").path());
    let work = TempDir::new("pathvirt");
    let (a, b) = (work.join("run"), work.join("moved"));
    std::fs::create_dir_all(&a).unwrap();
    let script = format!("cd '{}' && exec '{}' data.txt {STEPS}", a.display(), p.display());
    // (DMTCP_PATH_PREFIX at launch, as DMTCP users set it, changes nothing: dmtcp_restart reads
    // both lists from its own environment.)
    let mut cy = Cycle::launch(Path::new("/bin/sh"), &["-c", script.as_str()], &["--pathvirt"]);
    for k in 0..2 {
        let (from, to) = if k == 0 { (&a, &b) } else { (&b, &a) };
        std::thread::sleep(SETTLE);
        cy.checkpoint();
        cy.kill();
        std::fs::rename(from, to).unwrap();
        let mut c = role("restart");
        c.args(["--join-coordinator", "--coord-port", &cy.coord.port.to_string()])
            .args(cy.images())
            .env("DMTCP_PATH_PREFIX", from)
            .env("DMTCP_NEW_PATH_PREFIX", to);
        cy.restart_with(c, 1);
        assert!(!from.exists(), "cycle {k}: the old folder was made again");
        for img in cy.images() {
            std::fs::remove_file(img).unwrap();
        }
    }
    let last = cy.finish();
    assert_eq!(result_line(&last), reference, "\n{}", cy.diagnostics());
    assert!(!last.starts_with("step 1\n"), "the restarted run began from the start:\n{last}");
    assert!(std::fs::read_to_string(a.join("data.txt")).unwrap().contains(&format!("line {STEPS} ")));
}

#[test]
fn pathvirt_restarts_a_computation_whose_folder_moved() {
    a_moved_folder_comes_back(false);
}

#[test]
fn pathvirt_restarts_a_computation_whose_folder_moved_m32() {
    a_moved_folder_comes_back(true);
}

/// Prefix lists that do not pair up are refused before anything starts, naming both variables.
#[test]
fn pathvirt_refuses_prefix_lists_that_do_not_pair_up() {
    let out = run(role("restart")
        .arg("/nonexistent/ckpt_x.dmtcp")
        .env("DMTCP_PATH_PREFIX", "/a:/b")
        .env("DMTCP_NEW_PATH_PREFIX", "/c"));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("DMTCP_PATH_PREFIX has 2 prefixes and DMTCP_NEW_PATH_PREFIX has 1"),
        "{}",
        stderr(&out)
    );
}
