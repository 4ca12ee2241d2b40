//! Pieces killed at chosen or random moments (issue 13): never a partial image under a final
//! name, never the previous image lost, nothing left behind after the next checkpoint, and
//! the computation restarts to the result of an uninterrupted run. Random delays come from a
//! seed that is printed (set DMTCP_KILLS_SEED to replay one).
use crate::ckpt::{result_line, uninterrupted, Cycle};
use crate::util::*;
use dmtcp::common::image_reader;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn seed() -> u64 {
    let s = std::env::var("DMTCP_KILLS_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("kills: DMTCP_KILLS_SEED={s}");
    s
}

/// xorshift: a delay in 0..max ms from the seed.
fn delay(state: &mut u64, max: u64) -> Duration {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    Duration::from_millis(*state % max.max(1))
}

fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect()
}

/// Host pid of a `dmtcp write-image` writing into `dir`.
fn writer_in(dir: &Path) -> Option<i32> {
    let want = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        (cmd.contains("write-image") && cmd.contains(&want)).then_some(pid)
    })
}

fn check_images(images: &[PathBuf]) {
    for img in images {
        image_reader::check_file(img)
            .unwrap_or_else(|e| panic!("partial image under a final name: {}: {e}", img.display()));
    }
}

#[test]
fn writer_killed_keeps_the_previous_image_and_its_temporary_is_swept() {
    let mut rng = seed() | 1;
    let p = c_program("grower", false);
    let args = ["96", "96", "1000000", "90"];
    let reference = uninterrupted(&p, &args, TempDir::new("ref").path());
    let mut cy = Cycle::launch(&p, &args, &["--no-gzip"]);
    std::thread::sleep(Duration::from_millis(300));
    cy.checkpoint();
    let first = cy.images();
    assert_eq!(first.len(), 1, "{first:?}");
    let before = std::fs::read(&first[0]).unwrap();
    // The second checkpoint: its writer is killed somewhere in its life.
    let out = cy.coord.command(&["--checkpoint"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut writer = None;
    assert!(
        wait_until(Duration::from_secs(20), || {
            writer = writer_in(&cy.ckdir);
            writer.is_some()
        }),
        "no writer appeared for the second checkpoint\n{}",
        cy.diagnostics()
    );
    std::thread::sleep(delay(&mut rng, 60));
    // SAFETY: kill(2) of a process of our test.
    unsafe { libc::kill(writer.unwrap(), libc::SIGKILL) };
    // The checkpoint ends (failed or, if the writer was done, succeeded) and the program runs.
    assert!(
        wait_until(Duration::from_secs(30), || stdout(&cy.coord.command(&["--status"])).contains("RUNNING=yes")),
        "the computation did not run again after its writer was killed\n{}",
        cy.diagnostics()
    );
    let now = cy.images();
    assert_eq!(now.len(), 1, "{now:?}");
    check_images(&now);
    if std::fs::read(&now[0]).unwrap() != before {
        eprintln!("the writer was killed after its rename: the new image stands, complete");
    }
    // The next checkpoint's writer sweeps what the killed one left.
    cy.checkpoint();
    assert!(temporaries(&cy.ckdir).is_empty(), "left behind: {:?}", temporaries(&cy.ckdir));
    check_images(&cy.images());
    cy.kill();
    cy.restart(1);
    std::thread::sleep(Duration::from_millis(500));
    cy.checkpoint();
    cy.kill();
    cy.restart(1);
    assert_eq!(result_line(&cy.finish()), reference);
}

#[test]
fn images_of_two_checkpoints_of_one_computation_are_refused_by_name() {
    // A 64-bit parent with a 32-bit child over pipes: two processes, two images per checkpoint.
    let p = c_program("pipe_pair", false);
    let child = c_program("pipe_pair", true);
    let args = ["12000".to_string(), child.display().to_string()];
    let reference = uninterrupted(&p, &args, TempDir::new("ref").path());
    let mut cy = Cycle::launch_n(&p, &args, &[], 2);
    std::thread::sleep(Duration::from_millis(300));
    cy.checkpoint();
    let old = TempDir::new("gen-old");
    let first = cy.images();
    assert_eq!(first.len(), 2, "{first:?}");
    for img in &first {
        std::fs::copy(img, old.join(img.file_name().unwrap())).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    cy.checkpoint();
    cy.kill();
    let new = cy.images();
    // Process A of the first checkpoint with process B of the second.
    let a = old.join(new[0].file_name().unwrap());
    let b = new[1].clone();
    let out = run_for(
        role("restart").args(["--join-coordinator", "--coord-port", &cy.coord.port.to_string()]).arg(&a).arg(&b),
        Duration::from_secs(30),
    );
    assert!(!out.status.success(), "mixed images were restarted: {}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&a.display().to_string())
            && err.contains(&b.display().to_string())
            && err.contains("two different checkpoints"),
        "{err}"
    );
    assert_eq!(cy.coord.peers(), 0, "a process was started from mixed images");
    // The images of one checkpoint restart; twice more round.
    cy.restart(2);
    std::thread::sleep(Duration::from_millis(300));
    cy.checkpoint();
    cy.kill();
    cy.restart(2);
    assert_eq!(result_line(&cy.finish()), reference);
}
