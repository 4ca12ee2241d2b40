//! Progress of checkpoints: `dmtcp_command --bcheckpoint` on a terminal shows the bytes written
//! of the total and the rate, `--json` gives the final figures (which must agree with the
//! images themselves), and the coordinator logs one summary line per checkpoint.
use crate::ckpt::Cycle;
use crate::util::*;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The number after `"key":` in a JSON text.
fn field(json: &str, key: &str) -> u64 {
    let at = json.find(&format!("\"{key}\":")).unwrap_or_else(|| panic!("no {key} in {json}")) + key.len() + 3;
    json[at..].chars().take_while(|c| c.is_ascii_digit()).collect::<String>().parse().unwrap()
}

#[test]
fn bcheckpoint_on_a_terminal_shows_bytes_written_of_the_total_and_the_rate() {
    let prog = c_program("ckpt_threads", false);
    let cy = Cycle::launch(&prog, &["100000"], &[]);
    // `script` gives the command a terminal; what it wrote comes back on our stdout.
    let cmd = format!("{} command --coord-port {} --bcheckpoint", dmtcp().display(), cy.coord.port);
    let out = run_ok(Command::new("script").args(["-qec", &cmd, "/dev/null"]));
    let t = stdout(&out);
    assert!(t.contains("\r\x1b[Kcheckpoint: "), "{t:?}");
    let last = t.rsplit("\r\x1b[K").next().unwrap();
    assert!(last.contains(" MiB written, ") && last.contains(" MiB stored, "), "{last:?}");
    assert!(last.contains("1/1 process done, ") && last.contains(" MiB/s"), "{last:?}");
    assert!(t.contains("checkpoint of 1 process written"), "{t:?}");
    // Not on a terminal: no progress line, the result only.
    let out = cy.coord.command(&["--bcheckpoint"]);
    assert!(out.status.success());
    assert!(!stderr(&out).contains("MiB/s"), "{}", stderr(&out));
}

fn json_figures_match_the_image(extra_launch: &[&str], compressed: bool) {
    let prog = c_program("ckpt_threads", true);
    let cy = Cycle::launch(&prog, &["100000"], extra_launch);
    let out = cy.coord.command(&["--bcheckpoint", "--json"]);
    assert!(out.status.success(), "{}", stdout(&out));
    let j = stdout(&out);
    let img = cy.images().remove(0);
    let info = stdout(&run_ok(role("image").args(["info", "--json"]).arg(&img)));
    assert_eq!(field(&j, "processes_done"), 1, "{j}");
    // Bytes before compression: the image stream; after: the file on disk.
    assert_eq!(field(&j, "bytes_written"), field(&info, "uncompressed_size"), "{j}\n{info}");
    assert_eq!(field(&j, "bytes_stored"), std::fs::metadata(&img).unwrap().len(), "{j}");
    if compressed {
        assert!(field(&j, "bytes_stored") < field(&j, "bytes_written"), "{j}");
    } else {
        assert_eq!(field(&j, "bytes_stored"), field(&j, "bytes_written"), "{j}");
    }
    assert!(field(&j, "elapsed_ms") > 0, "{j}");
}

#[test]
fn bcheckpoint_json_reports_the_bytes_before_and_after_compression() {
    json_figures_match_the_image(&[], true);
    json_figures_match_the_image(&["--no-gzip"], false);
}

#[test]
fn coordinator_logs_one_summary_line_per_checkpoint() {
    let work = TempDir::new("progress-log");
    let log = work.join("coord.log");
    let pf = work.join("port");
    let mut coord = role("coordinator")
        .args(["--coord-port", "0", "--port-file"])
        .arg(&pf)
        .arg("--ckptdir")
        .arg(work.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut port = String::new();
    assert!(wait_until(Duration::from_secs(10), || {
        port = std::fs::read_to_string(&pf).unwrap_or_default().trim().to_string();
        !port.is_empty()
    }));
    let command = |args: &[&str]| run(role("command").args(["--coord-port", &port]).args(args));
    let prog = c_program("pipe_pair", false);
    let mut launched = role("launch")
        .args(["--join-coordinator", "--coord-port", &port])
        .arg(&prog)
        .arg("100000")
        .env("DMTCP_CHECKPOINT_DIR", work.path())
        .current_dir(work.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(30), || stdout(&command(&["--status"])).contains("NUM_PEERS=2")));
    for _ in 0..2 {
        assert!(command(&["--bcheckpoint"]).status.success());
    }
    let _ = command(&["--kill"]);
    let _ = launched.wait();
    let _ = command(&["--quit"]);
    let _ = coord.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(" complete in ")).collect();
    assert_eq!(lines.len(), 2, "{text}");
    for (k, l) in lines.iter().enumerate() {
        assert!(l.contains(&format!("checkpoint {} complete in ", k + 1)), "{l}");
        assert!(l.contains(": 2 images (") && l.contains(" MiB before compression, "), "{l}");
        assert!(l.contains(" MiB after); restart script "), "{l}");
    }
}
