//! `dmtcp image info|verify|ls` on real images (64- and 32-bit, threads, several processes)
//! and on corrupt ones; `verify` must find what `dmtcp_restart` finds, with the same words.
use crate::ckpt::Cycle;
use crate::util::*;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

fn image(args: &[&str], images: &[&Path]) -> Output {
    run(role("image").args(args).args(images))
}

/// The JSON on stdout must parse (python3's json module is the referee).
fn assert_json(out: &Output) {
    let mut py = Command::new("python3");
    py.args(["-c", "import json,sys; json.load(sys.stdin)"]).stdin(std::process::Stdio::piped());
    let mut child = py.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    assert!(child.wait().unwrap().success(), "not JSON:\n{}", stdout(out));
}

fn describes_a_real_image(m32: bool) {
    let prog = c_program("ckpt_threads", m32);
    let mut cy = Cycle::launch(&prog, &["100000"], &[]);
    std::thread::sleep(Duration::from_millis(300));
    cy.checkpoint();
    let imgs = cy.images();
    assert_eq!(imgs.len(), 1);
    let img = imgs[0].as_path();
    let name = prog.file_name().unwrap().to_str().unwrap();
    let arch = if m32 { "i686" } else { "x86_64" };

    let out = image(&["info"], &[img]);
    assert!(out.status.success(), "{}", describe(&Command::new("info"), &out));
    let t = stdout(&out);
    assert!(t.contains(": ok\n  format 2."), "{t}");
    assert!(t.contains(&format!(", {arch}, ")) && t.contains("(zstd)") && t.contains("checksum ok"), "{t}");
    assert!(t.contains(&format!("program {name} (exe {}", prog.display())), "{t}");
    assert!(t.contains("pid 2 (vpid 40000)") && t.contains("generation 1, 1 process"), "{t}");
    // Main, the workers and our checkpoint thread.
    let n_threads: usize = t
        .lines()
        .find_map(|l| l.strip_prefix("  threads: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no thread count in {t}"));
    assert!(n_threads >= 6 && t.contains(" main ") && t.contains("checkpoint thread"), "{t}");
    assert_eq!(t.matches("    tid ").count(), n_threads, "{t}");
    assert!(t.contains(" heap ") && t.contains(" stack ") && t.contains("[heap]"), "{t}");
    assert!(t.contains("  fds: ") && t.contains("fd 0     file"), "{t}");

    let out = image(&["info", "--json"], &[img]);
    assert!(out.status.success());
    assert_json(&out);
    let j = stdout(&out);
    for want in [
        format!("\"arch\":\"{arch}\""),
        format!("\"program\":\"{name}\""),
        "\"vpid\":40000".into(),
        "\"generation\":1".into(),
        "\"compressed\":true".into(),
        "\"checksum\":\"ok\"".into(),
        "\"role\":\"checkpoint thread\"".into(),
        "\"kind\":\"heap\"".into(),
    ] {
        assert!(j.contains(&want), "{want} not in {j}");
    }
    let disk = std::fs::metadata(img).unwrap().len();
    assert!(j.contains(&format!("\"size_on_disk\":{disk}")), "{j}");
    assert_eq!(j.matches("\"tid\":").count(), n_threads, "{j}");

    let out = image(&["ls"], &[img]);
    assert!(out.status.success());
    let l = stdout(&out);
    assert_eq!(l.lines().count(), 1, "{l}");
    assert!(l.contains(arch) && l.contains(name) && l.contains("pid 40000") && l.ends_with(" ok\n"), "{l}");

    let out = image(&["verify"], &[img]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("restart together: ok"));
    cy.kill();
}

#[test]
fn image_info_ls_verify_describe_a_real_image_64() {
    describes_a_real_image(false);
}

#[test]
fn image_info_ls_verify_describe_a_real_image_32() {
    describes_a_real_image(true);
}

/// Both images of a parent and child joined by pipes verify as a set; `ls --json` lists both.
#[test]
fn image_verify_plans_a_two_process_set() {
    let prog = c_program("pipe_pair", false);
    let mut cy = Cycle::launch_n(&prog, &["100000"], &[], 2);
    std::thread::sleep(Duration::from_millis(300));
    cy.checkpoint();
    let imgs = cy.images();
    assert_eq!(imgs.len(), 2);
    let paths: Vec<&Path> = imgs.iter().map(|p| p.as_path()).collect();
    let out = image(&["verify"], &paths);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("the 2 image(s) restart together: ok"), "{}", stdout(&out));
    let out = image(&["info"], &paths);
    assert!(stdout(&out).matches(" pipe ").count() >= 4, "{}", stdout(&out));
    let out = image(&["ls", "--json"], &paths);
    assert_json(&out);
    assert_eq!(stdout(&out).matches("\"ok\":true").count(), 3, "{}", stdout(&out));
    cy.kill();
}

/// Corrupt images: `verify` says what is wrong, exits 2, and agrees with dmtcp_restart.
#[test]
fn image_verify_names_what_is_wrong_as_dmtcp_restart_does() {
    let prog = c_program("ckpt_single", false);
    let mut cy = Cycle::launch(&prog, &["400", "data.bin", "48"], &["--no-gzip"]);
    std::thread::sleep(Duration::from_millis(300));
    cy.checkpoint();
    let good = cy.images().remove(0);
    cy.kill();
    let bytes = std::fs::read(&good).unwrap();
    let dir = TempDir::new("image-bad");
    let flipped = dir.join("ckpt_flipped.dmtcp");
    let mut b = bytes.clone();
    let mid = b.len() / 2;
    b[mid] ^= 0x55;
    std::fs::write(&flipped, &b).unwrap();
    let truncated = dir.join("ckpt_truncated.dmtcp");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let text = dir.join("ckpt_text.dmtcp");
    std::fs::write(&text, "not an image\n").unwrap();

    for (bad, says) in
        [(&flipped, "checksum mismatch"), (&truncated, "truncated image"), (&text, "not a dmtcp checkpoint image")]
    {
        let out = image(&["verify"], &[bad]);
        assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
        let line = stdout(&out).lines().next().unwrap().to_string();
        assert!(line.starts_with(&format!("{}: ", bad.display())) && line.contains(says), "{line}");
        // dmtcp_restart refuses it with the same words.
        let r = run(role("restart").args(["--new-coordinator", "--coord-port", "0"]).arg(bad));
        assert!(!r.status.success());
        let problem = line.split_once(": ").unwrap().1;
        assert!(stderr(&r).contains(problem), "verify: {problem}\nrestart: {}", stderr(&r));
        let out = image(&["info", "--json"], &[bad]);
        assert_eq!(out.status.code(), Some(2));
        assert_json(&out);
        assert!(stdout(&out).contains("\"ok\":false") && stdout(&out).contains(says), "{}", stdout(&out));
    }
    // A good and a bad one: each gets its verdict, the set is not planned.
    let out = image(&["verify"], &[good.as_path(), flipped.as_path()]);
    assert_eq!(out.status.code(), Some(2));
    let t = stdout(&out);
    assert!(t.contains(&format!("{}: ok", good.display())) && t.contains("as a set: not checked"), "{t}");
    // No image at all is a usage error.
    assert_eq!(image(&["verify"], &[]).status.code(), Some(1));
}

#[test]
fn image_help_lists_the_subcommands_and_their_options() {
    let out = run_ok(role("image").arg("--help"));
    for w in ["info", "verify", "ls"] {
        assert!(stdout(&out).contains(w), "{}", stdout(&out));
    }
    for sub in ["info", "verify", "ls"] {
        let out = run_ok(role("image").args([sub, "--help"]));
        assert!(stdout(&out).contains("--json"), "{sub}: {}", stdout(&out));
    }
}

/// `info`, `ls` and `verify` on a real incremental chain (a full image and two deltas on it,
/// made by a launched program with `--incremental`): the newest image is a delta at position 2
/// whose two bases are there and match; the same delta beside a missing base, and beside a
/// base of another checkpoint under the base's name, is shown broken at that link, exits 2, and
/// `verify` says what `dmtcp_restart` says.
fn shows_an_incremental_chain(m32: bool) {
    let prog = c_program("ckpt_threads", m32);
    let mut cy = Cycle::launch(
        &prog,
        &["100000"],
        &["--incremental", "--incremental-chain", "3", "--incremental-ratio", "1000"],
    );
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(200));
        cy.checkpoint();
    }
    let imgs = cy.images();
    assert_eq!(imgs.len(), 1, "{imgs:?}");
    let newest = imgs[0].clone();
    let name = newest.file_name().unwrap().to_str().unwrap().to_string();
    let link = |n: u32| newest.with_file_name(format!("{name}.{n}"));
    assert!(link(0).is_file() && link(1).is_file(), "{}", cy.diagnostics());
    cy.kill();

    let out = image(&["info"], &[&newest]);
    let t = stdout(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains(&format!("{}: ok\n", newest.display())), "{t}");
    assert!(
        t.contains("  chain: a delta at position 2 (image id 0x") && t.contains("on 2 older images: complete"),
        "{t}"
    );
    assert!(t.contains(&format!("    position 1    {name}.1: there, matches\n")), "{t}");
    assert!(t.contains(&format!("    position 0    {name}.0: there, matches\n")), "{t}");
    let out = image(&["info"], &[&link(0)]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("  chain: a full image, the base of an incremental chain"), "{}", stdout(&out));

    let out = image(&["info", "--json"], &[&newest]);
    assert!(out.status.success());
    assert_json(&out);
    let j = stdout(&out);
    assert!(j.contains("\"chain\":{\"kind\":\"delta\",\"position\":2,") && j.contains("\"complete\":true"), "{j}");
    assert_eq!(j.matches("\"present\":true,\"matches\":true").count(), 2, "{j}");
    assert!(j.contains(&format!("\"position\":0,\"name\":\"{name}.0\"")), "{j}");

    // ls marks the deltas.
    let out = image(&["ls"], &[&link(0), &link(1), &newest]);
    assert!(out.status.success(), "{}", stdout(&out));
    let l: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(l.len(), 3, "{l:?}");
    assert!(l[0].contains("  full  ") && l[1].contains("  delta 1  ") && l[2].contains("  delta 2  "), "{l:?}");
    let out = image(&["ls", "--json"], &[&newest]);
    assert_json(&out);
    assert!(stdout(&out).contains("\"kind\":\"delta\""), "{}", stdout(&out));

    // Broken: the base at position 0 missing, or another checkpoint's image in its place.
    let missing = TempDir::new("chain-missing");
    let other = TempDir::new("chain-other");
    for (d, n) in [(&missing, 1), (&missing, 2), (&other, 1), (&other, 2)] {
        let from = if n == 2 { newest.clone() } else { link(1) };
        let to = if n == 2 { d.join(&name) } else { d.join(format!("{name}.1")) };
        std::fs::copy(from, to).unwrap();
    }
    std::fs::copy(&newest, other.join(format!("{name}.0"))).unwrap();
    for (d, state, says) in [
        (&missing, "missing", "is missing; the chain of incremental images is broken"),
        (&other, "there, does not match: its checksum is ", "has checksum"),
    ] {
        let img = d.join(&name);
        let base0 = d.join(format!("{name}.0"));
        let out = image(&["info"], &[&img]);
        assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
        let t = stdout(&out);
        let first = t.lines().next().unwrap();
        assert!(first.starts_with(&format!("{}: ", img.display())) && first.contains(says), "{t}");
        assert!(first.contains(&format!("its base image {}", base0.display())), "{t}");
        assert!(t.contains("on 2 older images: broken"), "{t}");
        assert!(t.contains(&format!("    position 1    {name}.1: there, matches\n")), "{t}");
        assert!(t.contains(&format!("    position 0    {name}.0: {state}")), "{t}");
        let out = image(&["info", "--json"], &[&img]);
        assert_eq!(out.status.code(), Some(2));
        assert_json(&out);
        assert!(stdout(&out).contains("\"complete\":false"), "{}", stdout(&out));
        // verify refuses it with dmtcp_restart's words.
        let out = image(&["verify"], &[&img]);
        assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
        let line = stdout(&out).lines().next().unwrap().to_string();
        let r = run(role("restart").args(["--new-coordinator", "--coord-port", "0"]).arg(&img));
        assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
        let problem = line.split_once(": ").unwrap().1;
        assert!(stderr(&r).contains(problem), "verify: {problem}\nrestart: {}", stderr(&r));
    }
}

#[test]
fn image_info_shows_an_incremental_chain_and_its_broken_link_64() {
    shows_an_incremental_chain(false);
}

#[test]
fn image_info_shows_an_incremental_chain_and_its_broken_link_32() {
    shows_an_incremental_chain(true);
}
