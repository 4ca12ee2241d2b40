//! Processes in group stop (stopped by SIGSTOP, or a shell's job stopped by Ctrl-Z, which
//! tests/tty.rs drives): a checkpoint must not hang on them and must not show, to them or to
//! their parent, that it happened; a restart puts them back into their stop.
use crate::ckpt::{result_line, Cycle};
use crate::util::*;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

/// The last out-N.txt of a cycle (the run now going on).
fn output(cy: &Cycle, k: usize) -> String {
    std::fs::read_to_string(cy.work.join(format!("out-{k}.txt"))).unwrap_or_default()
}

/// The host pid of stop_self's child, once its parent has seen it stop.
fn stopped_child(cy: &Cycle, k: usize) -> i32 {
    let mut text = String::new();
    let ok = wait_until(LIMIT, || {
        text = output(cy, 0) + &output(cy, k);
        text.contains("parent: child stopped")
    });
    assert!(ok, "the child did not stop:\n{text}\n{}", cy.diagnostics());
    let ns_pid: i32 = text
        .lines()
        .find_map(|l| l.strip_prefix("parent: child ")?.parse().ok())
        .unwrap_or_else(|| panic!("no child pid in:\n{text}"));
    let mut host = None;
    let ok = wait_until(LIMIT, || {
        host = host_pid(cy.root_pid(), ns_pid);
        host.is_some_and(is_stopped)
    });
    assert!(ok, "child {ns_pid} (host pid {host:?}) is not in group stop\n{}", cy.diagnostics());
    host.unwrap()
}

/// Every thread of `pid` in state T.
fn is_stopped(pid: i32) -> bool {
    let tasks: Vec<_> =
        std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.flatten().collect()).unwrap_or_default();
    !tasks.is_empty()
        && tasks.iter().all(|t| {
            std::fs::read_to_string(t.path().join("stat"))
                .is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('T')))
        })
}

fn cont(pid: i32) {
    // SAFETY: kill(2) of a process of our test's computation.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
}

/// The child's report line in a run's output.
fn child_line(text: &str) -> String {
    text.lines().find(|l| l.starts_with("CHILD")).unwrap_or_else(|| panic!("no CHILD line in:\n{text}")).to_string()
}

/// stop_self launched; `between(cycle, k)` runs while its child is stopped, for k in 0..n; then
/// the child is continued; returns every run's output and the last run's.
fn stop_self_run(m32: bool, n: usize, mut between: impl FnMut(&mut Cycle, usize)) -> (String, String) {
    let program = c_program("stop_self", m32);
    let mut cy = Cycle::launch_n(&program, &[] as &[&str], &[], 2);
    stopped_child(&cy, 0);
    for i in 0..n {
        between(&mut cy, i);
    }
    let runs = std::fs::read_dir(cy.work.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("out-"))
        .count();
    cont(stopped_child(&cy, runs - 1));
    let out = cy.finish();
    let all: String = (0..runs).map(|i| output(&cy, i)).collect();
    (all, out)
}

fn uninterrupted_events(m32: bool) -> (String, String) {
    let (all, last) = stop_self_run(m32, 0, |_, _| {});
    (result_line(&last), child_line(&all))
}

/// A process stopped by SIGSTOP (with its parent watching through waitid) is checkpointed
/// twice while stopped and goes on when continued: the checkpoints neither hang nor show: the
/// parent sees exactly the uninterrupted run's events (stopped, continued, exited), the
/// child's SIGCONT handler runs once, and it stays in its stop throughout.
fn checkpoint_of_a_stopped_process_is_invisible(m32: bool) {
    let (reference, child_ref) = uninterrupted_events(m32);
    assert_eq!(reference, "RESULT events=stopped:19,continued,exited:0");
    assert!(child_ref.starts_with("CHILD conts=1 ") && child_ref.ends_with("thread=ok"), "{child_ref}");
    let (text, last) = stop_self_run(m32, 2, |cy, _| {
        cy.checkpoint();
        assert_eq!(cy.images().len(), 2, "{}", cy.diagnostics());
        let child = stopped_child(cy, 0);
        assert!(is_stopped(child), "the checkpoint left the child running");
        for img in cy.images() {
            std::fs::remove_file(img).unwrap();
        }
    });
    assert_eq!(result_line(&last), reference, "\n{text}");
    assert_eq!(child_line(&text), child_ref, "\n{text}");
}

#[test]
fn stopped_process_checkpoint_is_invisible_to_it_and_its_parent_64() {
    checkpoint_of_a_stopped_process_is_invisible(false);
}

#[test]
fn stopped_process_checkpoint_is_invisible_to_it_and_its_parent_32() {
    checkpoint_of_a_stopped_process_is_invisible(true);
}

/// Checkpointed while stopped, killed and restarted twice: each restart puts the child back
/// into its stop (its parent then hears that stop once more: the one trace a restart leaves),
/// and continued it goes on with its memory, its thread and one SIGCONT.
fn restarted_stopped_process_is_stopped_again(m32: bool) {
    let (_, child_ref) = uninterrupted_events(m32);
    let (text, last) = stop_self_run(m32, 2, |cy, _| {
        cy.checkpoint();
        assert_eq!(cy.images().len(), 2, "{}", cy.diagnostics());
        cy.kill();
        cy.restart(2);
        for img in cy.images() {
            std::fs::remove_file(img).unwrap();
        }
    });
    assert_eq!(result_line(&last), "RESULT events=stopped:19,stopped:19,stopped:19,continued,exited:0", "\n{text}");
    assert_eq!(child_line(&text), child_ref, "\n{text}");
}

#[test]
fn stopped_process_is_stopped_again_after_restart_64() {
    restarted_stopped_process_is_stopped_again(false);
}

#[test]
fn stopped_process_is_stopped_again_after_restart_32() {
    restarted_stopped_process_is_stopped_again(true);
}
