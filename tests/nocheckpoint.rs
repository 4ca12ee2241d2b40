//! `dmtcp_nocheckpoint CMD`: a process of a computation runs a command outside checkpoint
//! control (issue 15): the command is no worker, sees the user's own LD_PRELOAD and none of our
//! library's variables, and the computation goes on without it.
use crate::util::*;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

#[test]
fn nocheckpoint_runs_its_command_outside_the_computation_with_the_users_preload() {
    let coord = Coordinator::start(&[]);
    let inner = "echo LD=$LD_PRELOAD; env | grep -c '^DMTCP_SHARED_AREA=' ; echo started; sleep 2";
    let outer = format!("{} nocheckpoint /bin/sh -c \"{inner}\"; echo back", dmtcp().display());
    let mut l = coord.launch(std::path::Path::new("/bin/sh"), &["-c", &outer]);
    l.env("LD_PRELOAD", "libm.so.6").stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = l.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut s = String::new();
        assert!(out.read_line(&mut s).unwrap() > 0, "ended early: {lines:?}");
        let done = s.trim() == "started";
        lines.push(s.trim().to_string());
        if done {
            break;
        }
    }
    // While the command runs, the computation is the outer shell alone.
    assert_eq!(coord.peers(), 1, "{}", stdout(&coord.command(&["--list"])));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let st = child.wait().unwrap();
    assert!(st.success(), "{st}");
    assert_eq!(lines, ["LD=libm.so.6", "0", "started"]);
    assert_eq!(rest.trim(), "back");
    assert!(wait_until(Duration::from_secs(10), || coord.peers() == 0));
}

#[test]
fn nocheckpoint_without_a_command_is_a_usage_error_and_a_missing_one_exits_127() {
    let out = run(&mut role("nocheckpoint"));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no command given"), "{}", stderr(&out));
    let out = run(role("nocheckpoint").arg("/no/such/program"));
    assert_eq!(out.status.code(), Some(127));
    assert!(stderr(&out).contains("cannot run /no/such/program"), "{}", stderr(&out));
}
