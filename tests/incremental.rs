//! Incremental checkpoints (`--incremental`): a pool of forked workers over pipes and shared
//! memory, checkpointed five times with `--incremental-chain 2` (full, delta, delta, full
//! again, delta: a chain forms and is rebased), killed and restarted from the newest chain each
//! time, its result compared with an uninterrupted run; and a broken chain refused naming the
//! file.
use crate::ckpt::{result_line, uninterrupted, Cycle};
use crate::util::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PEERS: usize = 4;

/// The chain links `<image>.<n>` kept beside `image`.
fn links_of(image: &Path) -> Vec<PathBuf> {
    let base = image.file_name().unwrap().to_string_lossy().to_string();
    let mut v: Vec<PathBuf> = std::fs::read_dir(image.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.strip_prefix(&base)
                .and_then(|r| r.strip_prefix('.'))
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    v.sort();
    v
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

fn pool_through_a_rebased_chain(m32: bool, compress: bool) {
    let program = c_program("incr_pool", m32);
    let args = ["400"];
    let reference = {
        let d = TempDir::new("ref");
        uninterrupted(&program, &args, d.path())
    };
    // The ratio rule is set out of the way here: the chain's shape is what this pins (in
    // 32-bit processes the workers' large buffer is still written whole in a delta, see the
    // size check below).
    let mut launch = vec!["--incremental", "--incremental-chain", "2", "--incremental-ratio", "1000"];
    if !compress {
        launch.push("--no-gzip");
    }
    let mut cy = Cycle::launch_n(&program, &args, &launch, PEERS);
    // Links beside each newest image after each checkpoint: full, delta, delta, full, delta.
    let expected = [0usize, 1, 2, 0, 1];
    let mut bytes = Vec::new();
    for (k, &links) in expected.iter().enumerate() {
        std::thread::sleep(Duration::from_millis(300));
        cy.checkpoint();
        let images = cy.images();
        assert_eq!(images.len(), PEERS, "{images:?}\n{}", cy.diagnostics());
        for img in &images {
            assert_eq!(links_of(img).len(), links, "checkpoint {k}: {}: {:?}", img.display(), links_of(img));
        }
        bytes.push(images.iter().map(|p| size(p)).sum::<u64>());
        cy.kill();
        cy.restart(PEERS);
    }
    let last = cy.finish();
    assert_eq!(result_line(&last), reference, "\n{}", cy.diagnostics());
    assert!(!last.starts_with("step 20\n"), "the restarted run began from the start:\n{last}");
    // The deltas hold the few pages that changed: far less than the full images (64-bit; a
    // 32-bit worker's buffer area does not keep its range across a restart yet, so it is
    // fresh and whole in the first delta after one).
    if m32 {
        return;
    }
    for (full, delta) in [(0, 1), (0, 2), (3, 4)] {
        assert!(bytes[delta] * 3 < bytes[full], "delta {} bytes, full {} bytes: {bytes:?}", bytes[delta], bytes[full]);
    }
}

#[test]
fn worker_pool_restarts_from_rebased_incremental_chains_64() {
    pool_through_a_rebased_chain(false, false);
}

#[test]
fn worker_pool_restarts_from_rebased_incremental_chains_32() {
    pool_through_a_rebased_chain(true, false);
}

#[test]
fn worker_pool_restarts_from_compressed_incremental_chains_64() {
    pool_through_a_rebased_chain(false, true);
}

/// `dmtcp_restart` of a delta whose base is missing, or is another image than the one the
/// delta was written on, refuses before anything runs, naming the files.
#[test]
fn broken_incremental_chain_is_refused_naming_the_file() {
    let program = c_program("incr_pool", false);
    let cy = Cycle::launch_n(&program, &["2000"], &["--incremental", "--incremental-chain", "1", "--no-gzip"], PEERS);
    std::thread::sleep(Duration::from_millis(200));
    cy.checkpoint(); // full
    std::thread::sleep(Duration::from_millis(200));
    cy.checkpoint(); // delta on it
    let img = cy.images()[0].clone();
    let name = img.file_name().unwrap().to_string_lossy().to_string();
    assert_eq!(links_of(&img).len(), 1, "{:?}", links_of(&img));
    let keep = TempDir::new("incr-keep");
    std::fs::copy(&img, keep.join(&name)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    cy.checkpoint(); // full again: the first chain's link goes
    assert!(links_of(&img).is_empty(), "{:?}", links_of(&img));

    let restart = |dir: &Path| {
        let out = run(role("restart").args(["--new-coordinator", "--coord-port", "0"]).arg(dir.join(&name)));
        assert_eq!(out.status.code(), Some(2), "{}", describe(&role("restart"), &out));
        stderr(&out)
    };
    // Missing: the delta alone.
    let missing = TempDir::new("incr-missing");
    std::fs::copy(keep.join(&name), missing.join(&name)).unwrap();
    let err = restart(missing.path());
    let base = missing.join(format!("{name}.0"));
    assert!(err.contains(&format!("its base image {} is missing", base.display())), "{err}");
    // Mismatching: the delta beside a full image of a later checkpoint under its base's name.
    let other = TempDir::new("incr-other");
    std::fs::copy(keep.join(&name), other.join(&name)).unwrap();
    std::fs::copy(&img, other.join(format!("{name}.0"))).unwrap();
    let err = restart(other.path());
    let base = other.join(format!("{name}.0"));
    assert!(err.contains(&format!("its base image {} has checksum", base.display())), "{err}");
    assert!(err.contains("the chain of incremental images is broken"), "{err}");
}

/// `dmtcp_command --incremental` / `--full` choose the images of one checkpoint of a
/// computation launched without `--incremental`: the first asked-for delta finds no chain and
/// writes a full image that starts one, the next is a delta on it, `--full` starts a new chain,
/// a plain checkpoint writes plain images, and a process restarted from a chain's image goes
/// on with deltas when asked. Restarted from the newest images each time; the result is the
/// uninterrupted run's.
fn commands_choose_full_or_delta(m32: bool) {
    let program = c_program("incr_pool", m32);
    let args = ["400"];
    let reference = {
        let d = TempDir::new("ref");
        uninterrupted(&program, &args, d.path())
    };
    let mut cy = Cycle::launch_n(&program, &args, &["--no-gzip"], PEERS);
    let ckpt = |cy: &Cycle, how: &[&str]| {
        std::thread::sleep(Duration::from_millis(250));
        let mut a = vec!["--bcheckpoint"];
        a.extend_from_slice(how);
        let out = cy.coord.command(&a);
        assert!(out.status.success(), "{a:?}: {}{}\n{}", stdout(&out), stderr(&out), cy.diagnostics());
        let images = cy.images();
        assert_eq!(images.len(), PEERS, "{images:?}\n{}", cy.diagnostics());
        images.iter().map(|i| links_of(i).len()).collect::<Vec<_>>()
    };
    let all = |n: usize| vec![n; PEERS];
    assert_eq!(ckpt(&cy, &["--incremental"]), all(0), "no chain yet: a full image starts one");
    assert_eq!(ckpt(&cy, &["--incremental"]), all(1), "a delta on it");
    assert_eq!(ckpt(&cy, &["--full"]), all(0), "--full starts a new chain");
    cy.kill();
    cy.restart(PEERS);
    assert_eq!(ckpt(&cy, &["--incremental"]), all(1), "after a restart from the chain's image: a delta");
    cy.kill();
    cy.restart(PEERS);
    assert_eq!(ckpt(&cy, &[]), all(0), "as launched: plain images, the chain's links removed");
    cy.kill();
    cy.restart(PEERS);
    let last = cy.finish();
    assert_eq!(result_line(&last), reference, "\n{}", cy.diagnostics());
}

#[test]
fn incremental_and_full_commands_choose_the_images_of_one_checkpoint_64() {
    commands_choose_full_or_delta(false);
}

#[test]
fn incremental_and_full_commands_choose_the_images_of_one_checkpoint_32() {
    commands_choose_full_or_delta(true);
}

/// Both, or either with a command that is not a checkpoint, is a usage error naming it.
#[test]
fn incremental_or_full_without_a_checkpoint_command_is_refused() {
    for (args, want) in [
        (&["--bcheckpoint", "--incremental", "--full"][..], "--incremental and --full ask for opposite images"),
        (&["--status", "--incremental"][..], "--incremental and --full go with a checkpoint command"),
        (&["--kill", "--full"][..], "--incremental and --full go with a checkpoint command"),
    ] {
        let out = run(role("command").args(["--coord-port", "1"]).args(args));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", describe(&role("command"), &out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
}
