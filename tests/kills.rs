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

// ---- Restart (issue 13): the restorer, the restarted program, dmtcp_restart and the
// coordinator killed at seeded random moments while a computation restarts. ----

/// A parent and its child over pipes (both 32-bit or both 64-bit), checkpointed once and
/// killed: the cycle (its coordinator and images) and the result of an uninterrupted run.
fn pair_checkpointed(m32: bool) -> (Cycle, String) {
    let p = c_program("pipe_pair", m32);
    let args = ["9000".to_string(), p.display().to_string()];
    let reference = uninterrupted(&p, &args, TempDir::new("ref").path());
    let mut cy = Cycle::launch_n(&p, &args, &[], 2);
    std::thread::sleep(Duration::from_millis(300));
    cy.checkpoint();
    cy.kill();
    assert_eq!(cy.images().len(), 2, "{:?}", cy.images());
    (cy, reference)
}

/// The pids (in the computation's namespace) of the root image's process and of the other one.
fn root_and_child(images: &[PathBuf]) -> (i32, i32) {
    let checked: Vec<_> = images.iter().map(|i| image_reader::check_file(i).unwrap()).collect();
    let root = checked.iter().find(|c| c.is_root()).expect("no root image").pid();
    let child = checked.iter().find(|c| !c.is_root()).expect("no second image").pid();
    (root, child)
}

/// `dmtcp_restart` of the cycle's images at its coordinator, in the background, its stderr in
/// `err-<tag>.txt` of the cycle's folder.
fn restart_in_background(cy: &Cycle, extra: &[&str], tag: &str) -> (std::process::Child, PathBuf) {
    let err = cy.work.join(format!("err-{tag}.txt"));
    let child = role("restart")
        .args(["--join-coordinator", "--coord-port", &cy.coord.port.to_string()])
        .args(extra)
        .args(cy.images())
        .current_dir(cy.work.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    (child, err)
}

/// Waits for `child` to end; a hang fails the test (dmtcp_restart must bound every wait).
fn exit_within(child: &mut std::process::Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let mut st = None;
    wait_until(limit, || {
        st = child.try_wait().unwrap();
        st.is_some()
    });
    st.unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("dmtcp_restart did not end within {limit:?} after {what}")
    })
}

/// Kills `pid` (a process of our test) with SIGKILL.
fn sigkill(pid: i32) {
    // SAFETY: kill(2) of a process of our test.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// After an interrupted restart the coordinator holds nothing of it.
fn coordinator_holds_nothing(cy: &Cycle, what: &str) {
    assert!(
        wait_until(Duration::from_secs(20), || cy.coord.peers() == 0),
        "processes of a restart interrupted by {what} stay at the coordinator: {}",
        stdout(&cy.coord.command(&["--list"]))
    );
}

/// One restart whose process `target` (namespace pid; or dmtcp_restart itself when None) is
/// killed at a random moment: dmtcp_restart either reports the restart failed (the kill came
/// before it completed) or, the kill after, ends as the computation does. With `pause`
/// (`--debug-restart-pause`: every process stops before its restart barriers) the kill
/// surely comes before the restart completed. Returns whether the kill landed during it.
fn kill_during_restart(cy: &Cycle, rng: &mut u64, target: Option<i32>, max_ms: u64, pause: bool, tag: &str) -> bool {
    let extra: &[&str] = if pause { &["--debug-restart-pause", "1"] } else { &[] };
    let (mut x, err) = restart_in_background(cy, extra, tag);
    let what = match target {
        Some(p) => format!("process {p} of the restart was killed"),
        None => "dmtcp_restart was killed".to_string(),
    };
    match target {
        Some(ns_pid) => {
            let mut host = None;
            let found = wait_until(Duration::from_secs(20), || {
                host = host_pid(x.id() as i32, ns_pid);
                host.is_some() || matches!(x.try_wait(), Ok(Some(_)))
            });
            assert!(found && host.is_some(), "process {ns_pid} of the restart never appeared\n{}", cy.diagnostics());
            std::thread::sleep(delay(rng, max_ms));
            sigkill(host.unwrap());
        }
        None => {
            std::thread::sleep(delay(rng, max_ms));
            sigkill(x.id() as i32);
        }
    }
    // Bounded by the restart's own timeouts; 60 s only against a hang.
    let st = exit_within(&mut x, Duration::from_secs(60), &what);
    let text = std::fs::read_to_string(&err).unwrap_or_default();
    let during = text.contains("restart failed");
    assert!(
        !pause || target.is_none() || during,
        "a kill before the restart barriers did not fail the restart:\n{text}"
    );
    match target {
        None => assert_eq!(st.signal(), Some(libc::SIGKILL), "{st:?}\n{text}"),
        Some(killed) if during => {
            assert_eq!(st.code(), Some(2), "a failed restart exits with code 2: {st:?}\n{text}");
            // The process killed, or (when its parent had resumed and reaped it first) the one
            // whose death the restart saw first.
            let named = text.contains(&format!("(pid {killed}) was killed by signal 9 (SIGKILL)"));
            let hows = ["was killed by signal", "exited with code", "reaped by its parent"];
            assert!(
                named || (text.contains("(pid ") && hows.iter().any(|h| text.contains(h))),
                "the message does not say which process died and how:\n{text}"
            );
            assert!(text.contains("before the restart completed"), "{text}");
        }
        // The kill came after the restart completed: the computation ended with its process.
        Some(_) => assert!(!st.success(), "dmtcp_restart succeeded though a process was killed: {st:?}\n{text}"),
    }
    coordinator_holds_nothing(cy, &what);
    if target.is_some() {
        eprintln!(
            "kills: {what}{}: {}",
            if pause { " (paused)" } else { "" },
            if during { "during the restart" } else { "after it completed" }
        );
    }
    during
}

use std::os::unix::process::ExitStatusExt;

fn restorer_and_program_killed(m32: bool) {
    let mut rng = seed() | 1;
    let (mut cy, reference) = pair_checkpointed(m32);
    let (root, child) = root_and_child(&cy.images());
    let mut during = 0;
    for k in 0..3 {
        // The child's restorer soon after it appears; the root at any moment of the restart.
        let pause = k != 1;
        if kill_during_restart(&cy, &mut rng, Some(child), 150, pause, &format!("restorer-{k}")) {
            during += 1;
        }
        if kill_during_restart(&cy, &mut rng, Some(root), 400, pause, &format!("program-{k}")) {
            during += 1;
        }
    }
    eprintln!("kills: {during} of 6 kills landed during the restart");
    // The same images restart cleanly to the uninterrupted run's result.
    cy.restart(2);
    assert_eq!(result_line(&cy.finish()), reference);
}

#[test]
fn restorer_or_program_killed_during_restart_fails_it_and_the_images_restart_again_64() {
    restorer_and_program_killed(false);
}

#[test]
fn restorer_or_program_killed_during_restart_fails_it_and_the_images_restart_again_32() {
    restorer_and_program_killed(true);
}

fn dmtcp_restart_killed(m32: bool) {
    let mut rng = seed() | 1;
    let (mut cy, reference) = pair_checkpointed(m32);
    for k in 0..3 {
        kill_during_restart(&cy, &mut rng, None, 500, k != 1, &format!("x-{k}"));
    }
    cy.restart(2);
    assert_eq!(result_line(&cy.finish()), reference);
}

#[test]
fn dmtcp_restart_killed_during_restart_takes_its_processes_and_the_images_restart_again_64() {
    dmtcp_restart_killed(false);
}

#[test]
fn dmtcp_restart_killed_during_restart_takes_its_processes_and_the_images_restart_again_32() {
    dmtcp_restart_killed(true);
}

fn coordinator_killed(m32: bool) {
    let mut rng = seed() | 1;
    let (mut cy, reference) = pair_checkpointed(m32);
    // Every restored process stops before its restart barriers: the restart is still running
    // whenever the coordinator dies.
    let (mut x, err) = restart_in_background(&cy, &["--debug-restart-pause", "1"], "coord");
    std::thread::sleep(delay(&mut rng, 400));
    cy.coord.child.kill().unwrap();
    cy.coord.child.wait().unwrap();
    let st = exit_within(&mut x, Duration::from_secs(60), "its coordinator was killed");
    let text = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(!st.success() && st.code().is_some(), "{st:?}\n{text}");
    assert!(text.contains("coordinator"), "the message does not name the coordinator:\n{text}");
    eprintln!("kills: coordinator killed during the restart: {}", text.lines().last().unwrap_or(""));
    // A new coordinator; the same images restart to the uninterrupted run's result.
    cy.coord = Coordinator::start(&["--ckptdir", cy.ckdir.to_str().unwrap()]);
    cy.restart(2);
    assert_eq!(result_line(&cy.finish()), reference);
}

#[test]
fn coordinator_killed_during_restart_is_reported_and_the_images_restart_again_64() {
    coordinator_killed(false);
}

#[test]
fn coordinator_killed_during_restart_is_reported_and_the_images_restart_again_32() {
    coordinator_killed(true);
}
