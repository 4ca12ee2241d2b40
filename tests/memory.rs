//! Memory areas that are not plain anonymous memory: saved data behind PROT_NONE, mappings
//! that cannot be read as recorded, large reservations and the kernel's flags of an area, and
//! shared memory between processes. Real programs (tests/c), 64 and 32 bits, through
//! checkpoint/kill/restart cycles compared with an uninterrupted run.
use crate::ckpt::*;
use crate::util::*;
use std::time::Duration;

/// emacs's dump file: a private file mapping relocated in place (one page zeroed over nonzero
/// file bytes), then protected PROT_NONE, and an anonymous area with data behind PROT_NONE. The
/// restorer used to read the saved pages into the PROT_NONE mapping (EFAULT, "image is
/// truncated").
fn prot_none_areas_with_saved_data(m32: bool) {
    let p = c_program("pnone_file_data", m32);
    cycles(&p, &["40"], 2, Duration::from_millis(900), &[]);
}

#[test]
fn prot_none_file_area_with_saved_data_restarts_64() {
    prot_none_areas_with_saved_data(false);
}

#[test]
fn prot_none_file_area_with_saved_data_restarts_32() {
    prot_none_areas_with_saved_data(true);
}

/// A file mapped longer than the file and a file truncated under a mapping (pages past the end
/// give SIGBUS), while a thread keeps calling dlopen/dlclose: the checkpoint used to fail with
/// "the image writer stopped reading: Bad address".
fn mapping_past_end_of_file(m32: bool) {
    let p = c_program("past_eof_map", m32);
    cycles(&p, &["40"], 2, Duration::from_millis(900), &[]);
}

#[test]
fn mapping_past_the_end_of_its_file_checkpoints_64() {
    mapping_past_end_of_file(false);
}

#[test]
fn mapping_past_the_end_of_its_file_checkpoints_32() {
    mapping_past_end_of_file(true);
}

/// A 64 GiB MAP_NORESERVE heap (more than this machine can commit: the restorer used to fail
/// with ENOMEM) and a 16 GiB PROT_NONE reservation with a writable part come back with their
/// flags and no memory committed; the image holds only the touched pages. The MAP_GROWSDOWN,
/// guard-page, mlock and madvise areas keep their VmFlags (the program prints them).
fn large_reservations(m32: bool, sizes: [&str; 2]) {
    let p = c_program("reservations", m32);
    let args = ["40", sizes[0], sizes[1]];
    let last = cycles_with(&p, &args, 1, 2, Duration::from_millis(900), &[], |cy, _| {
        for img in cy.images() {
            let len = std::fs::metadata(&img).unwrap().len();
            assert!(len < 64 << 20, "{}: {len} bytes: untouched pages were written", img.display());
        }
        cy.restart(1)
    });
    let r = result_line(&last);
    for want in ["heap_nr=1", "heap_rss_small=1", "res_none=1", "gd=1", "guard_none=1", "dc=1", "wf=1", "dd=1"] {
        assert!(r.contains(want), "{want} missing: {r}");
    }
    assert!(!last.starts_with("step 1\n"), "the restarted run began from the start:\n{last}");
}

#[test]
fn noreserve_64_gib_and_prot_none_16_gib_reservations_restart_64() {
    large_reservations(false, ["64", "16"]);
}

#[test]
fn reservations_and_area_flags_restart_32() {
    large_reservations(true, ["1", "1"]);
}

/// Three processes increment counters under process-shared mutexes in anonymous shared memory
/// inherited over fork, a POSIX shm object (kept, and one unlinked once mapped), a memfd and a
/// MAP_SHARED regular file, with a process-shared barrier, a condition variable the children
/// wait on and a mutex the parent holds while it sleeps (a checkpoint finds them waited on and
/// held). After each restart they share one copy again, with its contents as
/// of the checkpoint (every process did exactly its rounds, the total is the sum of the slots),
/// and the file mapping still writes to its file. Each object's pages are in one image only.
fn shm_counters(m32: bool) {
    let p = c_program("shm_counters", m32);
    let tag = format!("{}{}", std::process::id(), if m32 { "m32" } else { "m64" });
    let args = ["160", tag.as_str()];
    let last = cycles_with(&p, &args, 3, 2, Duration::from_millis(1200), &[], |cy, _| cy.restart(3));
    let r = result_line(&last);
    assert!(!r.contains("BAD") && !r.contains("NOT") && r.contains("file_on_disk=same"), "{r}");
    assert!(!last.starts_with("step 5\n"), "the restarted run began from the start:\n{last}");
}

#[test]
fn shared_memory_counters_under_process_shared_mutexes_64() {
    shm_counters(false);
}

#[test]
fn shared_memory_counters_under_process_shared_mutexes_32() {
    shm_counters(true);
}

/// A memfd passed to two children as an fd (filled with write(), counters kept with
/// pread/pwrite, one child also maps it): after each restart every process holds the same new
/// memfd at its old fd, with its name, size, shared file position and contents as of the
/// checkpoint, and the child's mapping is the same object as the fd.
fn memfd_passed_to_children(m32: bool) {
    let p = c_program("memfd_fds", m32);
    let last = cycles_with(&p, &["160"], 3, 2, Duration::from_millis(1200), &[], |cy, _| cy.restart(3));
    let r = result_line(&last);
    assert!(r.contains("slots=160,160,160 mapped=160 name=passed size=16384 pos=10000"), "{r}");
    assert!(!last.starts_with("step 5\n"), "the restarted run began from the start:\n{last}");
}

#[test]
fn memfd_passed_to_children_as_an_fd_comes_back_shared_64() {
    memfd_passed_to_children(false);
}

#[test]
fn memfd_passed_to_children_as_an_fd_comes_back_shared_32() {
    memfd_passed_to_children(true);
}

/// The same with the first child exec'ing the other architecture's build: a mixed 64/32-bit
/// computation that shares the memfd through the fd.
fn memfd_mixed(parent_m32: bool) {
    let parent = c_program("memfd_fds", parent_m32);
    let child = c_program("memfd_fds", !parent_m32);
    let args = ["160", child.to_str().unwrap()];
    let last = cycles_with(&parent, &args, 3, 2, Duration::from_millis(1200), &[], |cy, _| cy.restart(3));
    let r = result_line(&last);
    assert!(r.contains("slots=160,160,160 mapped=160 name=passed size=16384 pos=10000"), "{r}");
}

#[test]
fn memfd_shared_by_a_64_bit_parent_and_an_exec_32_bit_child_comes_back() {
    memfd_mixed(false);
}

#[test]
fn memfd_shared_by_a_32_bit_parent_and_an_exec_64_bit_child_comes_back() {
    memfd_mixed(true);
}

/// memfd seals (F_ADD_SEALS): a memfd sealed against shrinking, growing and writing and then
/// sealed for good, held by two processes and mapped read-only by one, a memfd with one seal
/// that takes more later, and a memfd made without sealing: after each restart every process
/// reads the same seals, the kernel enforces them (EPERM), and the contents are there.
fn memfd_seals(m32: bool) {
    let p = c_program("memfd_seals", m32);
    let last = cycles_with(&p, &["200"], 2, 2, Duration::from_millis(700), &[], |cy, _| cy.restart(2));
    let r = result_line(&last);
    assert!(r.contains("parent=f,2,1,wtsad child=f,2,1,wtsad more=yes"), "{r}");
    assert!(!last.starts_with("step 0\n"), "the restarted run began from the start:\n{last}");
}

#[test]
fn memfd_seals_come_back_and_are_enforced_64() {
    memfd_seals(false);
}

#[test]
fn memfd_seals_come_back_and_are_enforced_32() {
    memfd_seals(true);
}

/// tests/c/`name`.c built with gcc -fopenmp (64 or 32 bits), in cargo's folder for tests.
fn openmp_program(name: &str, m32: bool) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("c-programs");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("{name}-omp{}", if m32 { "-32" } else { "-64" }));
    let tmp = dir.join(format!(".{name}-omp-{}-{}", if m32 { 32 } else { 64 }, std::process::id()));
    let mut cmd = std::process::Command::new("gcc");
    cmd.args(["-O1", "-g", "-Wall", "-fopenmp"]);
    if m32 {
        cmd.arg("-m32");
    }
    cmd.arg("-o").arg(&tmp).arg(repo().join("tests/c").join(format!("{name}.c")));
    run_ok(&mut cmd);
    std::fs::rename(&tmp, &out).unwrap();
    out
}

/// An OpenMP program (gcc's libgomp, four threads parked in its barrier between parallel
/// regions at every checkpoint) through two restarts: its reductions and array are those of
/// an uninterrupted run.
fn openmp(m32: bool) {
    let p = openmp_program("omp_reduce", m32);
    let last = cycles_with(&p, &["300"], 1, 2, Duration::from_millis(1000), &[], |cy, _| cy.restart(1));
    assert!(result_line(&last).contains("threads=4"), "{last}");
    assert!(!last.starts_with("step 0\n"), "the restarted run began from the start:\n{last}");
}

#[test]
fn openmp_program_survives_two_restarts_64() {
    openmp(false);
}

#[test]
fn openmp_program_survives_two_restarts_32() {
    openmp(true);
}

/// Python's multiprocessing: a fork Pool of three workers over pipes, a shared Value under its
/// lock and a shared_memory block opened by name in every task, with the resource tracker
/// process (five processes in all), through two restarts: the results, the count and the
/// block's bytes are those of an uninterrupted run.
#[test]
fn python_multiprocessing_pool_with_shared_memory_survives_two_restarts() {
    // The interpreter itself, not a launcher script in PATH (pyenv's shim is a bash script
    // that runs helper processes: a checkpoint would catch those instead of the pool).
    let exe = run_ok(std::process::Command::new("python3").args(["-c", "import sys; print(sys.executable)"]));
    let python = std::path::PathBuf::from(stdout(&exe).trim());
    let script = repo().join("tests/py/mp_pool.py");
    let args = [script.display().to_string(), "200".into()];
    let last = cycles_with(&python, &args, 5, 2, Duration::from_millis(1500), &[], |cy, _| cy.restart(5));
    assert!(last.contains("RESULT"), "{last}");
    assert!(!last.starts_with("round 0\n"), "the restarted run began from the start:\n{last}");
}

/// Two separate launches (two pid namespaces) joined to one coordinator share a named POSIX
/// shm object and a MAP_SHARED regular file under process-shared mutexes; both sets of images
/// are restarted together by one dmtcp_restart, twice. Named objects are files, which each
/// restored process maps again by path: the two launches share them again, and each counts
/// its rounds and sees the other's, as in an uninterrupted run of the pair.
#[test]
fn two_launches_sharing_posix_shm_and_a_file_mapping_share_them_after_restart() {
    let p = c_program("shm_two", false);
    let name = format!("dmtcp-two-{}", std::process::id());
    let reference = {
        let d = TempDir::new("ref");
        let mut a = std::process::Command::new(&p);
        a.args([name.as_str(), "0", "300"]).current_dir(d.path()).stdout(std::process::Stdio::piped());
        let a = a.spawn().unwrap();
        let b = run_ok(std::process::Command::new(&p).args([name.as_str(), "1", "300"]).current_dir(d.path()));
        let a = a.wait_with_output().unwrap();
        let mut lines = vec![result_line(&String::from_utf8_lossy(&a.stdout)), result_line(&stdout(&b))];
        lines.sort();
        lines
    };
    let mut cy = Cycle::launch(&p, &[name.as_str(), "0", "300"], &[]);
    let mut second = cy.coord.launch(&p, &[name.as_str(), "1", "300"]);
    second
        .env("DMTCP_CHECKPOINT_DIR", &cy.ckdir)
        .current_dir(cy.work.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(cy.work.join("second-out.txt")).unwrap())
        .stderr(std::fs::File::create(cy.work.join("second-err.txt")).unwrap());
    let mut second = second.spawn().unwrap();
    cy.wait_running(2);
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(900));
        cy.checkpoint();
        assert_eq!(cy.images().len(), 2, "{:?}\n{}", cy.images(), cy.diagnostics());
        cy.kill();
        let _ = second.try_wait();
        cy.restart(2);
        for img in cy.images() {
            std::fs::remove_file(img).unwrap();
        }
    }
    let _ = second.wait();
    let last = cy.finish();
    // The second launch's process writes to its own stdout file, reopened after each restart.
    let second_out = std::fs::read_to_string(cy.work.join("second-out.txt")).unwrap_or_default();
    let mut lines: Vec<String> =
        last.lines().chain(second_out.lines()).filter(|l| l.starts_with("RESULT")).map(str::to_string).collect();
    lines.sort();
    assert_eq!(lines, reference, "\n{last}\n{}", cy.diagnostics());
    assert!(!last.starts_with("step 0\n"), "the restarted run began from the start:\n{last}");
}

/// The same with memory only the kernel holds: a memfd that one launch passes to the other over
/// a UNIX socket and a /dev/shm file both map and the first unlinks, with every fd of them closed
/// before the checkpoints. `dmtcp_restart` makes each once for both launches (before either
/// group), so after each restart the two share them again with their contents, as in an
/// uninterrupted run of the pair.
#[test]
fn two_launches_sharing_a_passed_memfd_and_an_unlinked_shm_file_share_them_after_restart() {
    let p = c_program("shm_two_anon", false);
    let name = format!("dmtcp-anon-{}", std::process::id());
    let reference = {
        let d = TempDir::new("ref");
        let mut a = std::process::Command::new(&p);
        a.args([name.as_str(), "0", "300"]).current_dir(d.path()).stdout(std::process::Stdio::piped());
        let a = a.spawn().unwrap();
        let b = run_ok(std::process::Command::new(&p).args([name.as_str(), "1", "300"]).current_dir(d.path()));
        let a = a.wait_with_output().unwrap();
        let mut lines = vec![result_line(&String::from_utf8_lossy(&a.stdout)), result_line(&stdout(&b))];
        lines.sort();
        lines
    };
    let mut cy = Cycle::launch(&p, &[name.as_str(), "0", "300"], &[]);
    let mut second = cy.coord.launch(&p, &[name.as_str(), "1", "300"]);
    second
        .env("DMTCP_CHECKPOINT_DIR", &cy.ckdir)
        .current_dir(cy.work.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(cy.work.join("second-out.txt")).unwrap())
        .stderr(std::fs::File::create(cy.work.join("second-err.txt")).unwrap());
    let mut second = second.spawn().unwrap();
    cy.wait_running(2);
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(900));
        cy.checkpoint();
        assert_eq!(cy.images().len(), 2, "{:?}\n{}", cy.images(), cy.diagnostics());
        cy.kill();
        let _ = second.try_wait();
        cy.restart(2);
        for img in cy.images() {
            std::fs::remove_file(img).unwrap();
        }
    }
    let _ = second.wait();
    let last = cy.finish();
    // The second launch's process writes to its own stdout file, reopened after each restart.
    let second_out = std::fs::read_to_string(cy.work.join("second-out.txt")).unwrap_or_default();
    let mut lines: Vec<String> =
        last.lines().chain(second_out.lines()).filter(|l| l.starts_with("RESULT")).map(str::to_string).collect();
    lines.sort();
    assert_eq!(lines, reference, "\n{last}\n{}", cy.diagnostics());
    assert!(!last.starts_with("step 0\n"), "the restarted run began from the start:\n{last}");
}
