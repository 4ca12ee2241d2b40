//! The multicall binary's roles, self-install, and first-use unpacking of the payloads.
use crate::util::*;
use goblin::elf::header::{EI_CLASS, ELFCLASS32, ELFCLASS64};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const ROLES: [&str; 5] = ["launch", "coordinator", "command", "restart", "self-install"];
const LINKS: [&str; 5] = ["dmtcp_launch", "dmtcp_coordinator", "dmtcp_command", "dmtcp_restart", "dmtcp_nocheckpoint"];
const PAYLOADS: [(&str, u8); 4] = [
    ("bin/mtcp_restart", ELFCLASS64),
    ("lib/dmtcp/libdmtcp.so", ELFCLASS64),
    ("lib/dmtcp/32/bin/mtcp_restart", ELFCLASS32),
    ("lib/dmtcp/32/lib/dmtcp/libdmtcp.so", ELFCLASS32),
];

fn elf_class(p: &Path) -> u8 {
    let b = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(&b[..4], b"\x7fELF", "{} is not ELF", p.display());
    b[EI_CLASS]
}

fn assert_tree(root: &Path) {
    for (rel, class) in PAYLOADS {
        assert_eq!(elf_class(&root.join(rel)), class, "{rel}");
    }
    let leftovers: Vec<_> = walk(root).into_iter().filter(|p| p.to_string_lossy().contains(".tmp-")).collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(root) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}

#[test]
fn every_role_has_help_and_version() {
    for r in ROLES {
        let out = run_ok(role(r).arg("--help"));
        assert!(stdout(&out).contains("Usage"), "{r} --help:\n{}", stdout(&out));
        let out = run_ok(role(r).arg("--version"));
        assert!(stdout(&out).contains(env!("CARGO_PKG_VERSION")), "{r} --version: {}", stdout(&out));
    }
    let out = run_ok(Command::new(dmtcp()).arg("--help"));
    for r in ROLES {
        assert!(stdout(&out).contains(r), "top-level help lacks {r}");
    }
}

#[test]
fn unknown_role_is_refused_with_usage() {
    let out = run(Command::new(dmtcp()).arg("frobnicate"));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unknown role `frobnicate`"), "{}", stderr(&out));
    assert!(stderr(&out).contains("Usage"));
    let out = run(&mut Command::new(dmtcp()));
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn unknown_option_is_refused_with_usage_for_every_role() {
    for r in ROLES {
        let out = run(role(r).arg("--bogus-option"));
        assert!(!out.status.success(), "{r} accepted --bogus-option");
        assert!(stderr(&out).contains("--bogus-option"), "{r}: {}", stderr(&out));
        assert!(stderr(&out).contains("Usage"), "{r}: {}", stderr(&out));
    }
}

#[test]
fn self_install_lays_out_the_seed_tree_and_can_run_again() {
    let t = TempDir::new("install");
    let prefix = t.join("prefix");
    run_ok(role("self-install").arg("--prefix").arg(&prefix));
    assert_tree(&prefix);
    assert_eq!(elf_class(&prefix.join("bin/dmtcp")), ELFCLASS64);
    for l in LINKS {
        let link = prefix.join("bin").join(l);
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("dmtcp"), "{l}");
        // Each symlink dispatches on its own name.
        let out = run_ok(Command::new(&link).arg("--help"));
        assert!(stdout(&out).contains(l) || stdout(&out).contains("Usage"), "{l}: {}", stdout(&out));
    }
    // A damaged tree is repaired by a second install, run from the installed binary itself.
    std::fs::write(prefix.join("lib/dmtcp/libdmtcp.so"), b"garbage").unwrap();
    std::fs::remove_file(prefix.join("bin/dmtcp_command")).unwrap();
    run_ok(Command::new(prefix.join("bin/dmtcp")).args(["self-install", "--prefix"]).arg(&prefix));
    assert_tree(&prefix);
    assert!(prefix.join("bin/dmtcp_command").is_symlink());
    let out = run_ok(Command::new(prefix.join("bin/dmtcp_command")).arg("--version"));
    assert!(stdout(&out).contains("dmtcp_command"));
}

#[test]
fn self_install_without_prefix_is_a_usage_error() {
    let out = run(&mut role("self-install"));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--prefix"));
}

/// A copy of the binary in `<dir>/bin/dmtcp`, as a user who only downloaded it would have.
fn lone_binary(dir: &Path) -> std::path::PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let exe = bin.join("dmtcp");
    std::fs::copy(dmtcp(), &exe).unwrap();
    exe
}

/// Launches /bin/true under a new private coordinator with the given binary.
fn launch_true(exe: &Path, env: &[(&str, &Path)]) -> std::process::Output {
    let mut c = Command::new(exe);
    c.args(["launch", "--new-coordinator", "--coord-port", "0", "-q", "/bin/true"]);
    for (k, v) in env {
        c.env(k, v);
    }
    run_for(&mut c, Duration::from_secs(60))
}

#[test]
fn first_use_unpacks_payloads_next_to_the_binary() {
    let t = TempDir::new("firstuse");
    let exe = lone_binary(t.path());
    let out = launch_true(&exe, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_tree(t.path());
}

#[test]
fn concurrent_first_use_leaves_one_complete_tree() {
    let t = TempDir::new("concurrent");
    let exe = lone_binary(t.path());
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let exe = exe.clone();
            std::thread::spawn(move || launch_true(&exe, &[]))
        })
        .collect();
    for h in handles {
        let out = h.join().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_tree(t.path());
}

#[test]
fn tree_left_by_another_build_is_replaced() {
    let t = TempDir::new("stale");
    let exe = lone_binary(t.path());
    for (rel, _) in PAYLOADS {
        let p = t.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"old build").unwrap();
    }
    std::fs::write(t.join("lib/dmtcp/build-id"), b"0123456789abcdef\n").unwrap();
    let out = launch_true(&exe, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_tree(t.path());
    assert_ne!(std::fs::read_to_string(t.join("lib/dmtcp/build-id")).unwrap().trim(), "0123456789abcdef");
}

#[test]
fn unwritable_prefix_falls_back_to_the_user_cache() {
    let t = TempDir::new("cache");
    let exe = lone_binary(&t.join("p"));
    // `lib` is a plain file, so lib/dmtcp cannot be made whatever our privileges.
    std::fs::write(t.join("p/lib"), b"not a folder").unwrap();
    let cache = t.join("cache");
    let out = launch_true(&exe, &[("XDG_CACHE_HOME", &cache)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let builds: Vec<_> = std::fs::read_dir(cache.join("dmtcp")).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(builds.len(), 1, "{builds:?}");
    assert_tree(&builds[0]);
}
