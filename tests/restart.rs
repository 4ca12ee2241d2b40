//! `dmtcp write-image`, `dmtcp_restart`'s image checks, and the launcher's private pid
//! namespace. Images are built here with `dmtcp_proto::image` (valid minimal streams, then
//! damaged on purpose); the end-to-end checkpoint/restart tests live elsewhere.
use crate::util::*;
use dmtcp_proto::image::{self, hdr};
use dmtcp_proto::le::put_u32;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use dmtcp::common::image_reader;

/// A valid minimal image stream, built with the typed encoders: sealed header, one area, one
/// thread, one chunk of `data_len` bytes, END, trailer.
fn image_stream(data_len: usize) -> Vec<u8> {
    let mut h = image::Header::new(image::Arch::X86_64);
    h.num_areas = 1;
    h.num_threads = 1;
    h.pid = 2;
    h.parent_pid = 1;
    h.is_root = true;
    h.num_peers = 1;
    h.comp_id = 0x1234_5678;
    h.pidns = 4026531836;
    h.progname.set(b"fake");
    let mut hb = [0u8; image::HEADER_SIZE];
    h.encode(&mut hb);
    let mut s = hb.to_vec();
    let area_len = data_len.div_ceil(4096).max(1) * 4096;
    let mut a = image::AreaRecord::EMPTY;
    a.start = 0x7000_0000;
    a.end = 0x7000_0000 + area_len as u64;
    a.prot = 3;
    let mut ab = [0u8; image::AREA_SIZE];
    a.encode(&mut ab);
    s.extend(ab);
    let mut t = image::ThreadRecord::EMPTY;
    t.tid = 2;
    t.flags = image::THREAD_MAIN;
    let mut tb = [0u8; image::THREAD_SIZE];
    t.encode(&mut tb);
    s.extend(tb);
    let mut c = [0u8; image::CHUNK_SIZE];
    // Memory goes in whole pages.
    image::Chunk::Data { area: 0, offset: 0, len: area_len as u64 }.encode(&mut c);
    s.extend(c);
    // Incompressible-looking data (xorshift), so that sizes on disk are predictable.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    s.extend((0..area_len).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    }));
    image::Chunk::End.encode(&mut c);
    s.extend(c);
    let mut tr = [0u8; image::TRAILER_SIZE];
    image::Trailer { len: s.len() as u64, checksum: image::checksum(image::CHECKSUM_SEED, &s) }.encode(&mut tr);
    s.extend(tr);
    s
}

/// Runs `dmtcp write-image --out out [--compress]` with `stream` on stdin.
fn write_image(out: &Path, compress: bool, stream: &[u8]) -> (i32, String) {
    let mut cmd = Command::new(dmtcp());
    cmd.arg("write-image").arg("--out").arg(out);
    if compress {
        cmd.arg("--compress");
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = stream.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    (out.status.code().unwrap_or(-1), stdout(&out))
}

/// Names in `dir` other than `keep`.
fn others(dir: &Path, keep: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

#[test]
fn write_image_raw_and_compressed_are_accepted() {
    let d = TempDir::new("wimg");
    let stream = image_stream(300_000);
    for (name, compress) in [("ckpt_raw.dmtcp", false), ("ckpt_z.dmtcp", true)] {
        let path = d.join(name);
        let (code, out) = write_image(&path, compress, &stream);
        assert_eq!(code, 0, "write-image {name}: {out}");
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(out.trim().starts_with(&format!("ok {size} ")), "{out}");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes[..4] == image::ZSTD_MAGIC, compress, "{name}: compressed as asked");
        let img = image_reader::check_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(img.summary.len, stream.len() as u64);
        assert_eq!(img.compressed, compress);
        // The stream the restorer will read is the original one.
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut std::fs::File::from(img.stream), &mut back).unwrap();
        assert!(back == stream, "{name}: stream read back differs");
    }
    assert!(others(d.path(), &["ckpt_raw.dmtcp", "ckpt_z.dmtcp"]).is_empty());

    // The library may leave the trailer's checksum 0: the writer fills in the real one.
    let mut zero = stream.clone();
    let n = zero.len() - image::TRAILER_SIZE;
    let mut tr = [0u8; image::TRAILER_SIZE];
    image::Trailer { len: n as u64, checksum: 0 }.encode(&mut tr);
    zero[n..].copy_from_slice(&tr);
    for compress in [false, true] {
        let path = d.join("ckpt_zero.dmtcp");
        let (code, out) = write_image(&path, compress, &zero);
        assert_eq!(code, 0, "checksum 0: {out}");
        let img = image_reader::check_file(&path).unwrap_or_else(|e| panic!("checksum 0 filled in: {e}"));
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut std::fs::File::from(img.stream), &mut back).unwrap();
        assert!(back == stream, "the stored stream is the original with its checksum");
    }
}

#[test]
fn write_image_refuses_bad_streams_and_keeps_the_previous_image() {
    let d = TempDir::new("wimg-bad");
    let path = d.join("ckpt_a.dmtcp");
    let good = image_stream(50_000);
    assert_eq!(write_image(&path, false, &good).0, 0);
    let before = std::fs::read(&path).unwrap();

    let mut bad_trailer = good.clone();
    let n = bad_trailer.len();
    bad_trailer[n - 10] ^= 0x55;
    let mut bad_len = good.clone();
    bad_len[n - 24] ^= 1;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("cut short", good[..good.len() / 2].to_vec()),
        ("cut before trailer", good[..good.len() - 32].to_vec()),
        ("bad trailer checksum", bad_trailer),
        ("bad trailer length", bad_len),
        ("nothing", Vec::new()),
        ("not an image", b"hello\n".repeat(2000)),
    ];
    for compress in [false, true] {
        for (what, stream) in &cases {
            let (code, out) = write_image(&path, compress, stream);
            assert_eq!(code, 1, "{what}: {out}");
            assert!(out.starts_with("error ") && out.contains("ckpt_a.dmtcp"), "{what}: {out}");
            assert_eq!(std::fs::read(&path).unwrap(), before, "{what}: previous image changed");
            assert!(
                others(d.path(), &["ckpt_a.dmtcp"]).is_empty(),
                "{what}: leftovers {:?}",
                others(d.path(), &["ckpt_a.dmtcp"])
            );
        }
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn write_image_reports_a_full_disk() {
    if !is_root() {
        eprintln!("write_image_reports_a_full_disk: SKIPPED (mounting a small tmpfs needs root)");
        return;
    }
    let d = TempDir::new("wimg-full");
    let mnt = d.join("small");
    std::fs::create_dir(&mnt).unwrap();
    let st = Command::new("mount").args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"]).arg(&mnt).status().unwrap();
    if !st.success() {
        eprintln!("write_image_reports_a_full_disk: SKIPPED (cannot mount a tmpfs here)");
        return;
    }
    struct Umount(PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Umount(mnt.clone());
    let path = mnt.join("ckpt_a.dmtcp");
    assert_eq!(write_image(&path, false, &image_stream(100_000)).0, 0);
    let before = std::fs::read(&path).unwrap();
    let (code, out) = write_image(&path, false, &image_stream(2_000_000));
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("error disk full writing ") && out.contains("No space left on device"), "{out}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert!(others(&mnt, &["ckpt_a.dmtcp"]).is_empty());
}

/// `dmtcp restart` against a port where nobody listens, so that getting past the image checks
/// would show up as a coordinator error.
fn restart_refuses(file: &Path, problem: &str) {
    let out =
        run_for(role("restart").args(["--join-coordinator", "--coord-port", "1"]).arg(file), Duration::from_secs(20));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{}: {err}", file.display());
    let name = file.display().to_string();
    assert!(err.contains(&format!("{name}: ")) && err.contains(problem), "{name}: expected `{problem}` in:\n{err}");
    assert!(!err.contains("coordinator"), "{name}: went on to the coordinator:\n{err}");
}

#[test]
fn restart_refuses_bad_images_before_starting_anything() {
    let d = TempDir::new("rst-bad");
    let good = image_stream(20_000);
    let write = |name: &str, bytes: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    restart_refuses(&write("text.dmtcp", b"this is just some text\n"), "not a dmtcp checkpoint image");
    restart_refuses(&write("empty.dmtcp", b""), "not a dmtcp checkpoint image (empty file)");
    restart_refuses(&write("trunc.dmtcp", &good[..good.len() - 100]), "truncated");
    restart_refuses(&write("trunc-hdr.dmtcp", &good[..1000]), "truncated");
    let mut flipped = good.clone();
    flipped[image::HEADER_SIZE + image::AREA_SIZE + image::THREAD_SIZE + image::CHUNK_SIZE + 5000] ^= 0x10;
    restart_refuses(&write("flipped.dmtcp", &flipped), "checksum mismatch");
    let mut v99 = good.clone();
    // Damaged on purpose, by raw offset: the typed encoder writes only valid values.
    put_u32(&mut v99, hdr::VERSION, 99);
    image::seal_header(&mut v99[..image::HEADER_SIZE]);
    restart_refuses(&write("v99.dmtcp", &v99), "unsupported version");
    let mut arch = good.clone();
    put_u32(&mut arch, hdr::ARCH, 7);
    image::seal_header(&mut arch[..image::HEADER_SIZE]);
    restart_refuses(&write("arch.dmtcp", &arch), "unknown architecture");
    let mut gz = vec![0x1f, 0x8b, 8, 0];
    gz.extend(b"garbage".repeat(50));
    restart_refuses(&write("gzip.dmtcp", &gz), "gzip");
    let mut zs = image::ZSTD_MAGIC.to_vec();
    zs.extend(b"garbage".repeat(50));
    restart_refuses(&write("zstd.dmtcp", &zs), "corrupt");
    let zgood = zstd::encode_all(&good[..], 1).unwrap();
    restart_refuses(&write("ztrunc.dmtcp", &zgood[..zgood.len() / 2]), "truncated");
    // A bad image among good ones still stops everything.
    let ok = write("ckpt_ok.dmtcp", &good);
    let out = run_for(
        role("restart").args(["--join-coordinator", "--coord-port", "1"]).arg(&ok).arg(d.join("text.dmtcp")),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("text.dmtcp: not a dmtcp checkpoint image"), "{}", stderr(&out));
    // No images at all is a usage error.
    let out = run(&mut role("restart"));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = run(role("restart").arg("--restartdir").arg(TempDir::new("rst-empty").path()));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

/// A restorer that fails must end dmtcp_restart with a failure, not leave it waiting. The fake
/// image passes every check but cannot be restored (its area holds no program).
#[test]
fn restart_ends_when_the_restorer_fails() {
    let d = TempDir::new("rst-fail");
    let img = d.join("ckpt_fake.dmtcp");
    std::fs::write(&img, image_stream(4096)).unwrap();
    let coord = Coordinator::start(&[]);
    let out = run_for(
        role("restart").args(["--join-coordinator", "--coord-port", &coord.port.to_string()]).arg(&img),
        Duration::from_secs(30),
    );
    eprintln!("dmtcp_restart of a fake image: {}\n{}", out.status, stderr(&out));
    assert!(!out.status.success(), "a fake image restored?\n{}", stderr(&out));
}

/// A folder tester may read, with the binary at bin/dmtcp (its payload tree is then the folder).
fn public_copy() -> (TempDir, PathBuf, PathBuf) {
    let d = TempDir::new("pidns");
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(d.join("bin")).unwrap();
    let bin = d.join("bin/dmtcp");
    std::fs::copy(dmtcp(), &bin).unwrap();
    let src = d.join("ids.c");
    std::fs::write(
        &src,
        r#"#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
  char self[64] = "";
  ssize_t n = readlink("/proc/self", self, sizeof self - 1);
  if (n > 0) self[n] = 0;
  printf("pid=%d ppid=%d tid=%ld uid=%d proc_self=%s\n", getpid(), getppid(), (long)syscall(SYS_gettid), getuid(), self);
  fflush(stdout);
  if (argc > 1 && argv[1][0] == 'w') { for (;;) pause(); }
  return argc > 1 ? atoi(argv[1]) : 0;
}
"#,
    )
    .unwrap();
    let prog = d.join("ids");
    run_ok(Command::new("gcc").arg("-o").arg(&prog).arg(&src));
    for p in [&bin, &prog] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (d, bin, prog)
}

fn launch_cmd(bin: &Path, coord: &Coordinator, prog: &Path, arg: &str) -> Command {
    let mut c = Command::new(bin);
    c.arg("launch").args(["--join-coordinator", "--coord-port", &coord.port.to_string()]).arg(prog).arg(arg);
    c.env_remove("DMTCP_PIDNS");
    c
}

#[test]
fn launch_runs_the_program_as_pid_2_of_its_own_namespace() {
    let (_d, bin, prog) = public_copy();
    let coord = Coordinator::start(&[]);
    let out = run_for(&mut launch_cmd(&bin, &coord, &prog, "7"), Duration::from_secs(30));
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(7), "{text}{}", stderr(&out));
    assert!(text.contains("pid=2 ppid=1 tid=2 ") && text.contains("proc_self=2"), "{text}");
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));

    // DMTCP_PIDNS=0: the old way, with a warning.
    let mut c = launch_cmd(&bin, &coord, &prog, "0");
    c.env("DMTCP_PIDNS", "0");
    let out = run_for(&mut c, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0));
    assert!(!stdout(&out).contains("pid=2 "), "{}", stdout(&out));
    assert!(stderr(&out).contains("pids will change after restart"), "{}", stderr(&out));
}

#[test]
fn launch_propagates_signals_through_the_namespace() {
    let (_d, bin, prog) = public_copy();
    let coord = Coordinator::start(&[]);
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGUSR1] {
        let mut c = launch_cmd(&bin, &coord, &prog, "wait");
        c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        // Wait until the program runs (it printed its ids).
        let mut so = child.stdout.take().unwrap();
        let mut first = [0u8; 4];
        std::io::Read::read_exact(&mut so, &mut first).unwrap();
        // SAFETY: kill(2) of our own child.
        unsafe { libc::kill(child.id() as i32, sig) };
        let ok = wait_until(Duration::from_secs(20), || child.try_wait().unwrap().is_some());
        if !ok {
            let _ = child.kill();
            panic!("launcher still running 20 s after signal {sig}");
        }
        let st = child.wait().unwrap();
        assert_eq!(st.signal(), Some(sig), "status {st:?} after signal {sig}");
    }
}

#[test]
fn launch_namespace_works_for_an_unprivileged_user() {
    if !is_root() {
        eprintln!(
            "launch_namespace_works_for_an_unprivileged_user: already unprivileged; the other launch tests cover it"
        );
        return;
    }
    require_tester();
    let (d, bin, prog) = public_copy();
    let home = d.join("home");
    std::fs::create_dir(&home).unwrap();
    Command::new("chown").arg("tester").arg(&home).status().unwrap();
    // A coordinator of its own: root's would refuse it (only the owner uses a coordinator).
    let script = format!(
        "cd {home} && HOME={home} TMPDIR={home} {bin} launch --new-coordinator --coord-port 0 {prog} 5",
        home = home.display(),
        bin = bin.display(),
        prog = prog.display()
    );
    let out = run_for(Command::new("su").args(["tester", "-s", "/bin/sh", "-c", &script]), Duration::from_secs(30));
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(5), "{text}{}", stderr(&out));
    assert!(text.contains("pid=2 ppid=1 tid=2 ") && text.contains("proc_self=2"), "{text}{}", stderr(&out));
    let uid = String::from_utf8(Command::new("id").args(["-u", "tester"]).output().unwrap().stdout).unwrap();
    assert!(text.contains(&format!("uid={} ", uid.trim())), "keeps its uid: {text}");
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}

/// Killing the launcher, even with SIGKILL, ends the program (as when the launcher exec'd it).
#[test]
fn killing_the_launcher_ends_the_namespace() {
    let (_d, bin, prog) = public_copy();
    let coord = Coordinator::start(&[]);
    let mut c = launch_cmd(&bin, &coord, &prog, "wait");
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut so = child.stdout.take().unwrap();
    let mut first = [0u8; 4];
    std::io::Read::read_exact(&mut so, &mut first).unwrap();
    assert_eq!(coord.peers(), 1);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(wait_until(Duration::from_secs(20), || coord.peers() == 0), "the program outlived its launcher");
}
