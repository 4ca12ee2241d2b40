//! Terminals: programs launched in a terminal (a tmux pane, with its own tmux server per test:
//! `-L <name>`), checkpointed while in use, killed, and restarted in a NEW pane of another
//! size, then used further by typing keys (send-keys) and reading the screen (capture-pane).
//! What the screen shows over the cycles is compared with an uninterrupted run that gets the
//! same keys and the same resizes.
use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

/// One tmux server of our own (`tmux -L <socket>`), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(tag: &str) -> Tmux {
        static N: AtomicUsize = AtomicUsize::new(0);
        let socket = format!("dmtcp-test-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        Tmux { socket }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket, "-f", "/dev/null"]).env_remove("TMUX");
        c
    }

    fn run(&self, args: &[&str]) -> String {
        let out = run(self.cmd().args(args));
        assert!(out.status.success(), "tmux {args:?}: {}", stderr(&out));
        stdout(&out)
    }

    /// A new session (one pane) of `cols` x `rows` running `sh -c script`; the pane stays
    /// open after the script ends (the script's last command sleeps).
    fn open(&self, name: &str, cols: u16, rows: u16, script: &str) {
        let script = format!("{script}; echo \"[exit $?]\"; exec sleep 600");
        self.run(&["new-session", "-d", "-s", name, "-x", &cols.to_string(), "-y", &rows.to_string(), &script]);
        // The size stays what we say, attached client or not.
        self.run(&["set-option", "-t", name, "window-size", "manual"]);
    }

    fn keys(&self, name: &str, keys: &[&str]) {
        let mut a = vec!["send-keys", "-t", name];
        a.extend_from_slice(keys);
        self.run(&a);
    }

    /// Types `text` as it is (no key names).
    fn type_text(&self, name: &str, text: &str) {
        self.run(&["send-keys", "-t", name, "-l", text]);
    }

    fn resize(&self, name: &str, cols: u16, rows: u16) {
        self.run(&["resize-window", "-t", name, "-x", &cols.to_string(), "-y", &rows.to_string()]);
    }

    /// The pane's whole text (history and screen), trailing blank lines removed.
    fn screen(&self, name: &str) -> String {
        let s = self.run(&["capture-pane", "-p", "-J", "-t", name, "-S", "-", "-E", "-"]);
        s.trim_end().to_string()
    }

    /// The pane's visible screen only (a full-screen program's view), trailing blanks removed.
    fn visible(&self, name: &str) -> String {
        let s = self.run(&["capture-pane", "-p", "-t", name]);
        s.lines().map(str::trim_end).collect::<Vec<_>>().join("\n").trim_end().to_string()
    }

    /// Waits until `f(screen)` holds; returns the screen.
    fn wait(&self, name: &str, what: &str, f: impl Fn(&str) -> bool) -> String {
        let mut s = String::new();
        let ok = wait_until(LIMIT, || {
            s = self.screen(name);
            f(&s)
        });
        assert!(ok, "pane {name}: waited for {what}; the screen is:\n{s}");
        s
    }

    fn wait_for(&self, name: &str, needle: &str) -> String {
        self.wait(name, &format!("{needle:?}"), |s| s.contains(needle))
    }

    fn close(&self, name: &str) {
        let _ = run(self.cmd().args(["kill-session", "-t", name]));
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = run(self.cmd().arg("kill-server"));
    }
}

/// A shell word.
fn quote(s: impl AsRef<std::ffi::OsStr>) -> String {
    format!("'{}'", s.as_ref().to_string_lossy().replace('\'', "'\\''"))
}

/// A computation under a private coordinator whose runs are panes of one tmux server.
struct Session {
    tmux: Tmux,
    coord: Coordinator,
    work: TempDir,
    ckdir: PathBuf,
    runs: usize,
}

impl Session {
    fn new(tag: &str) -> Session {
        let work = TempDir::new(tag);
        let ckdir = work.join("ckpt");
        std::fs::create_dir_all(&ckdir).unwrap();
        let coord = Coordinator::start(&["--ckptdir", ckdir.to_str().unwrap()]);
        Session { tmux: Tmux::new(tag), coord, work, ckdir, runs: 0 }
    }

    /// The pane's shell line up to the command: our folder, a clean dmtcp environment, HOME
    /// in the test's folder (bash and python keep their history there), a plain prompt.
    fn env(&self) -> String {
        let work = quote(self.work.path());
        let dmtcp_env = format!("-u DMTCP_COORD_HOST -u DMTCP_COORD_PORT DMTCP_CHECKPOINT_DIR={}", quote(&self.ckdir));
        format!("cd {work} && env -u PYTHONSTARTUP {dmtcp_env} TERM=xterm HOME={work} PS1='$ '")
    }

    /// `dmtcp launch program args` in a new pane; returns the pane's name once the computation
    /// runs.
    fn launch(&mut self, cols: u16, rows: u16, program: &Path, args: &[&str]) -> String {
        let name = self.launch_only(cols, rows, program, args);
        self.wait_running();
        name
    }

    /// As `launch`, without waiting for the computation to join the coordinator.
    fn launch_only(&mut self, cols: u16, rows: u16, program: &Path, args: &[&str]) -> String {
        let name = self.next_pane();
        let mut line = format!(
            "{} {} launch --join-coordinator --coord-port {} {}",
            self.env(),
            quote(dmtcp()),
            self.coord.port,
            quote(program)
        );
        for a in args {
            line += &format!(" {}", quote(a));
        }
        self.tmux.open(&name, cols, rows, &line);
        name
    }

    /// `dmtcp restart` of the images in a new pane of `cols` x `rows`; returns its name.
    fn restart(&mut self, cols: u16, rows: u16) -> String {
        let name = self.next_pane();
        let line = format!(
            "{} {} restart --join-coordinator --coord-port {} {}",
            self.env(),
            quote(dmtcp()),
            self.coord.port,
            self.images().iter().map(quote).collect::<Vec<_>>().join(" ")
        );
        self.tmux.open(&name, cols, rows, &line);
        self.wait_running();
        name
    }

    fn next_pane(&mut self) -> String {
        self.runs += 1;
        format!("run{}", self.runs)
    }

    fn images(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.ckdir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "dmtcp"))
            .collect();
        v.sort();
        v
    }

    fn wait_running(&self) {
        let ok = wait_until(LIMIT, || {
            let t = stdout(&self.coord.command(&["--status"]));
            t.contains("RUNNING=yes") && !t.contains("NUM_PEERS=0")
        });
        assert!(ok, "the computation is not running: {}", stdout(&self.coord.command(&["--status"])));
    }

    /// Checkpoints (which must succeed), kills the computation and closes its pane; the images
    /// of an earlier cycle are removed first.
    fn checkpoint_and_kill(&self, pane: &str) {
        for img in self.images() {
            std::fs::remove_file(img).unwrap();
        }
        let out = self.coord.command(&["--bcheckpoint"]);
        assert!(out.status.success(), "checkpoint failed: {}{}", stdout(&out), stderr(&out));
        assert!(!self.images().is_empty());
        let out = self.coord.command(&["--kill"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(wait_until(LIMIT, || self.coord.peers() == 0), "the computation did not end after --kill");
        self.tmux.wait_for(pane, "[exit ");
        self.tmux.close(pane);
    }
}

/// The transcript lines of tty_raw ("[n] ...") on a screen.
fn transcript(screen: &str) -> Vec<String> {
    screen
        .lines()
        .map(str::trim_end)
        .filter(|l| l.starts_with('[') && !l.starts_with("[exit"))
        .map(String::from)
        .collect()
}

/// Sends one key to tty_raw and waits for the line it answers with.
fn press(tmux: &Tmux, pane: &str, key: &str, done: &mut usize, seen: &[String]) {
    tmux.keys(pane, &[key]);
    *done += 1;
    let want = *done;
    let before = seen.len();
    tmux.wait(pane, &format!("line {} after key {key}", want), |s| transcript(s).len() > before);
}

/// The keys of each part of a tty_raw session: letters, the modes (t), the size through the
/// program's /dev/tty fd (s) and Ctrl-C.
const PARTS: [&[&str]; 3] = [&["a", "t", "C-c", "b"], &["t", "s", "c", "C-c"], &["d", "t", "s"]];
/// The pane size of each part.
const SIZES: [(u16, u16); 3] = [(80, 24), (100, 30), (80, 24)];

fn raw_uninterrupted(program: &Path) -> Vec<String> {
    let mut s = Session::new("tty-ref");
    let pane = s.launch(SIZES[0].0, SIZES[0].1, program, &[]);
    let mut lines = transcript(&s.tmux.wait_for(&pane, "] size "));
    let mut n = lines.len();
    for (k, part) in PARTS.iter().enumerate() {
        if k > 0 {
            s.tmux.resize(&pane, SIZES[k].0, SIZES[k].1);
            lines = transcript(&s.tmux.wait_for(&pane, &format!("winch {}x{}", SIZES[k].1, SIZES[k].0)));
            n = lines.len();
        }
        for key in *part {
            press(&s.tmux, &pane, key, &mut n, &lines);
            lines = transcript(&s.tmux.screen(&pane));
        }
    }
    s.tmux.keys(&pane, &["q"]);
    let screen = s.tmux.wait_for(&pane, "[exit 3]");
    transcript(&screen)
}

/// tty_raw through two cycles, each restart in a new pane of another size; the transcript
/// must be the uninterrupted run's, where the restarts are resizes.
fn raw_cycles(m32: bool) {
    let program = c_program("tty_raw", m32);
    let reference = raw_uninterrupted(&program);
    let mut s = Session::new("tty-raw");
    let mut all = Vec::new();
    let mut pane = s.launch(SIZES[0].0, SIZES[0].1, &program, &[]);
    let mut lines = transcript(&s.tmux.wait_for(&pane, "] size "));
    for (k, part) in PARTS.iter().enumerate() {
        if k > 0 {
            s.checkpoint_and_kill(&pane);
            all.extend(lines);
            pane = s.restart(SIZES[k].0, SIZES[k].1);
            lines = transcript(&s.tmux.wait_for(&pane, &format!("winch {}x{}", SIZES[k].1, SIZES[k].0)));
        }
        let mut n = lines.len();
        for key in *part {
            press(&s.tmux, &pane, key, &mut n, &lines);
            lines = transcript(&s.tmux.screen(&pane));
        }
    }
    s.tmux.keys(&pane, &["q"]);
    // dmtcp_restart ends with the program's status.
    let screen = s.tmux.wait_for(&pane, "[exit 3]");
    all.extend(transcript(&screen));
    assert_eq!(all, reference, "\nlast screen:\n{screen}");
    // The restarted program's modes, foreground group and sizes are in the transcript; say
    // which lines matter if the comparison above ever changes.
    assert!(all.iter().any(|l| l.ends_with("icanon=0 echo=0 vkill=11 foreground=yes")), "{all:?}");
    assert!(all.iter().any(|l| l.ends_with("size 30x100")), "{all:?}");
}

#[test]
fn tty_raw_mode_program_gets_the_new_terminal_64() {
    raw_cycles(false);
}

#[test]
fn tty_raw_mode_program_gets_the_new_terminal_32() {
    raw_cycles(true);
}

/// Restarted with no terminal at all (own session, stdin /dev/null, output to a pipe), the
/// program that had one goes on: its terminal calls fail with ENOTTY, it reads end of input
/// and ends with its own status.
#[test]
fn tty_restart_without_a_terminal_fails_terminal_calls_cleanly() {
    let program = c_program("tty_raw", false);
    let mut s = Session::new("tty-none");
    let pane = s.launch(80, 24, &program, &[]);
    s.tmux.wait_for(&pane, "] size ");
    let mut n = 2;
    press(&s.tmux, &pane, "x", &mut n, &transcript(&s.tmux.screen(&pane)));
    s.checkpoint_and_kill(&pane);
    // run_for gives the restart stdin /dev/null and its output on pipes.
    let mut c = Command::new("setsid");
    c.arg("--wait")
        .arg(dmtcp())
        .args(["restart", "--join-coordinator", "--coord-port", &s.coord.port.to_string()])
        .args(s.images())
        .env_remove("DMTCP_CHECKPOINT_DIR")
        .current_dir(s.work.path());
    let o = run_for(&mut c, LIMIT);
    let (text, err) = (stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(4), "restart ended with {:?}\nout:\n{text}\nerr:\n{err}", o.status);
    assert_eq!(
        transcript(&text),
        [
            "[4] modes unknown: Inappropriate ioctl for device",
            "[5] eof",
            "[6] cannot put the terminal back: Inappropriate ioctl for device"
        ],
        "\nerr:\n{err}"
    );
}

/// One step of an interactive session: key names (send-keys), or text typed as it is.
#[derive(Clone, Copy)]
enum Step {
    Keys(&'static [&'static str]),
    Text(&'static str),
}

/// A run of steps in a pane of `cols` x `rows`; after the first part, each part begins with a
/// restart (or, in the uninterrupted run, a resize).
struct Part {
    size: (u16, u16),
    steps: &'static [Step],
}

/// Waits until the pane's screen has not changed for half a second; returns it.
fn settled(tmux: &Tmux, pane: &str) -> String {
    let mut last = tmux.screen(pane);
    let mut since = std::time::Instant::now();
    let start = since;
    while since.elapsed() < Duration::from_millis(500) {
        assert!(start.elapsed() < LIMIT, "pane {pane} never settles:\n{last}");
        std::thread::sleep(Duration::from_millis(50));
        let now = tmux.screen(pane);
        if now != last {
            last = now;
            since = std::time::Instant::now();
        }
    }
    last
}

fn play(tmux: &Tmux, pane: &str, steps: &[Step]) {
    for step in steps {
        match *step {
            Step::Keys(k) => tmux.keys(pane, k),
            Step::Text(t) => tmux.type_text(pane, t),
        }
        settled(tmux, pane);
    }
}

/// The lines of a pane, trailing spaces and the `[exit N]` of a killed run left out.
fn pane_lines(screen: &str, last: bool) -> Vec<String> {
    screen.lines().map(|l| l.trim_end().to_string()).filter(|l| last || !l.starts_with("[exit ")).collect()
}

/// Appends a pane's lines to the transcript: the line being typed when the checkpoint came (a
/// prompt) is the first line of the next pane too, where the program redraws it on the new
/// terminal's SIGWINCH.
fn join(all: &mut Vec<String>, next: Vec<String>) {
    if let (Some(prev), Some(first)) = (all.last(), next.first()) {
        if !prev.is_empty() && first.starts_with(prev.as_str()) {
            all.pop();
        }
    }
    all.extend(next);
}

/// Runs `program args` through `parts` twice: uninterrupted (resizes between parts), and with
/// a checkpoint, kill and restart in a new pane between parts; the screens must tell the same
/// story, ending with `[exit <status>]`.
fn interactive_cycles(tag: &str, program: &Path, args: &[&str], parts: &[Part], status: i32) -> Vec<String> {
    let end = format!("[exit {status}]");
    let reference = {
        let mut s = Session::new(&format!("{tag}-ref"));
        let pane = s.launch(parts[0].size.0, parts[0].size.1, program, args);
        settled(&s.tmux, &pane);
        for (k, part) in parts.iter().enumerate() {
            if k > 0 {
                s.tmux.resize(&pane, part.size.0, part.size.1);
                settled(&s.tmux, &pane);
            }
            play(&s.tmux, &pane, part.steps);
        }
        pane_lines(&s.tmux.wait_for(&pane, &end), true)
    };
    let mut s = Session::new(tag);
    let mut pane = s.launch(parts[0].size.0, parts[0].size.1, program, args);
    settled(&s.tmux, &pane);
    let mut all = Vec::new();
    for (k, part) in parts.iter().enumerate() {
        if k > 0 {
            join(&mut all, pane_lines(&s.tmux.screen(&pane), false));
            s.checkpoint_and_kill(&pane);
            pane = s.restart(part.size.0, part.size.1);
            settled(&s.tmux, &pane);
        }
        play(&s.tmux, &pane, part.steps);
    }
    join(&mut all, pane_lines(&s.tmux.wait_for(&pane, &end), true));
    assert_eq!(all, reference, "\nrestarted:\n{}\nuninterrupted:\n{}", all.join("\n"), reference.join("\n"));
    all
}

const ENTER: Step = Step::Keys(&["Enter"]);

/// An interactive bash with job control: a background job, a foreground job suspended with
/// Ctrl-Z and resumed with `fg`, Ctrl-C, and a foreground `cat` that is reading the terminal
/// when the second checkpoint comes (its process group must be the new terminal's foreground
/// group). bash's own exit status is dmtcp_restart's.
#[test]
fn tty_bash_job_control_after_restart() {
    const PARTS: [Part; 3] = [
        Part { size: (80, 24), steps: &[Step::Text("X=42; sleep 1000 &"), ENTER, Step::Text("jobs"), ENTER] },
        Part {
            size: (100, 30),
            steps: &[
                Step::Text("echo X=$X; jobs; stty size"),
                ENTER,
                Step::Text("fg"),
                ENTER,
                Step::Keys(&["C-c"]),
                Step::Text("cat"),
                ENTER,
                Step::Keys(&["C-z"]),
                Step::Text("fg"),
                ENTER,
                Step::Text("abc"),
                ENTER,
            ],
        },
        Part {
            size: (80, 24),
            steps: &[
                Step::Text("def"),
                ENTER,
                Step::Keys(&["C-d"]),
                Step::Text("stty size; jobs; echo done"),
                ENTER,
                Step::Text("exit 7"),
                ENTER,
            ],
        },
    ];
    let all = interactive_cycles("tty-bash", Path::new("/bin/bash"), &["--norc", "--noprofile", "-i"], &PARTS, 7);
    let text = all.join("\n");
    for want in [
        "X=42",
        "30 100",
        "[1]+  Running                 sleep 1000 &",
        "[1]+  Stopped                 cat",
        "def\ndef",
        "24 80",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
}

/// Waits until the pane's visible screen has not changed for half a second; returns it.
/// A screen with the wall-clock ages programs print ("1 change; before #2  2 seconds ago" in
/// vim's status line) made neutral: they depend on how long the test took, not on the program.
fn timeless(screen: &str) -> String {
    let mut out = String::with_capacity(screen.len());
    for line in screen.split_inclusive('\n') {
        let mut words: Vec<&str> = line.split(' ').collect();
        for i in 0..words.len().saturating_sub(2) {
            let unit = words[i + 1];
            if words[i].chars().all(|c| c.is_ascii_digit())
                && !words[i].is_empty()
                && matches!(unit, "second" | "seconds" | "minute" | "minutes")
                && words[i + 2].starts_with("ago")
            {
                words[i] = "N";
                words[i + 1] = "seconds";
            }
        }
        out.push_str(&words.join(" "));
    }
    out
}

fn settled_visible(tmux: &Tmux, pane: &str) -> String {
    settled(tmux, pane);
    tmux.visible(pane)
}

/// A full-screen program (`program args`, started in the session's folder after `setup(folder)`)
/// through `parts` twice: uninterrupted (resizes between parts) and with a checkpoint, kill and
/// restart in a new pane of the next part's size between parts. The visible screens, once
/// settled after each restart (or resize) and after each part but the last, must be the
/// uninterrupted run's; it must end with `[exit status]`. Returns `file` of the restarted
/// run's folder and of the uninterrupted run's.
fn fullscreen_cycles(
    tag: &str,
    program: &Path,
    args: &[&str],
    parts: &[Part],
    status: i32,
    setup: impl Fn(&Path),
    file: &str,
) -> (String, String) {
    let end = format!("[exit {status}]");
    // The restarted run waits (polling, up to LIMIT) for each screen to become the reference's,
    // so that a loaded machine's slower redraw is not taken for a difference.
    let run = |restarts: bool, want: &[String]| -> (Vec<String>, String) {
        let mut s = Session::new(&format!("{tag}{}", if restarts { "" } else { "-ref" }));
        setup(s.work.path());
        let mut pane = s.launch(parts[0].size.0, parts[0].size.1, program, args);
        let snap = |tmux: &Tmux, pane: &str, k: usize| -> String {
            let mut last = timeless(&settled_visible(tmux, pane));
            if let Some(w) = want.get(k) {
                wait_until(LIMIT, || {
                    last = timeless(&tmux.visible(pane));
                    &last == w
                });
            }
            last
        };
        let mut screens = vec![snap(&s.tmux, &pane, 0)];
        for (k, part) in parts.iter().enumerate() {
            if k > 0 {
                if restarts {
                    s.checkpoint_and_kill(&pane);
                    pane = s.restart(part.size.0, part.size.1);
                } else {
                    s.tmux.resize(&pane, part.size.0, part.size.1);
                }
                let n = screens.len();
                screens.push(snap(&s.tmux, &pane, n));
            }
            play(&s.tmux, &pane, part.steps);
            if k + 1 < parts.len() {
                let n = screens.len();
                screens.push(snap(&s.tmux, &pane, n));
            }
        }
        // Not compared: the screen once the program has quit. It leaves the alternate screen,
        // which a restarted run's new terminal never entered (the switch went to the first
        // one), so the program's last screen stays there.
        s.tmux.wait_for(&pane, &end);
        (screens, std::fs::read_to_string(s.work.join(file)).unwrap_or_default())
    };
    let (reference, ref_file) = run(false, &[]);
    let (screens, text) = run(true, &reference);
    for (k, (got, want)) in screens.iter().zip(&reference).enumerate() {
        assert_eq!(got, want, "screen {k} differs:\nrestarted:\n{got}\nuninterrupted:\n{want}");
    }
    assert_eq!(screens.len(), reference.len());
    (text, ref_file)
}

/// vim editing a file with unsaved changes: inserted lines, an undo and a search pattern come
/// back after each restart in a new pane of another size, the screen is redrawn as after a
/// resize, and `:wq` at the end writes every change.
#[test]
fn tty_vim_unsaved_changes_survive_restarts() {
    const PARTS: [Part; 3] = [
        Part { size: (80, 24), steps: &[Step::Text("Goline three"), Step::Keys(&["Escape"]), Step::Text("/two")] },
        Part {
            size: (100, 30),
            steps: &[
                ENTER,
                Step::Text("Aa"),
                Step::Keys(&["Escape"]),
                Step::Text("u"),
                Step::Text("Goline four"),
                Step::Keys(&["Escape"]),
            ],
        },
        Part { size: (80, 24), steps: &[Step::Text("ggn"), Step::Text("x"), Step::Text(":wq"), ENTER] },
    ];
    let setup = |d: &Path| std::fs::write(d.join("f.txt"), "line one\nline two\n").unwrap();
    let args = ["-u", "NONE", "-i", "NONE", "-n", "f.txt"];
    let (text, reference) = fullscreen_cycles("tty-vim", Path::new("/usr/bin/vim"), &args, &PARTS, 0, setup, "f.txt");
    assert_eq!(text, reference);
    assert_eq!(text, "line one\nline wo\nline three\nline four\n");
}

/// less paging a long file: the position, a search and its highlighting come back after each
/// restart in a new pane of another size; it goes on paging and quits.
#[test]
fn tty_less_position_and_search_survive_restarts() {
    const PARTS: [Part; 3] = [
        Part { size: (80, 24), steps: &[Step::Text("d"), Step::Text("/row 5"), ENTER] },
        Part { size: (100, 30), steps: &[Step::Text("n"), Step::Text("d")] },
        Part { size: (80, 24), steps: &[Step::Text("G"), Step::Text("q")] },
    ];
    let setup = |d: &Path| {
        let rows: String = (1..=200).map(|i| format!("row {i}\n")).collect();
        std::fs::write(d.join("f.txt"), rows).unwrap()
    };
    fullscreen_cycles("tty-less", Path::new("/usr/bin/less"), &["f.txt"], &PARTS, 0, setup, "f.txt");
}

/// screen with two windows (a shell in each): commands typed in both, switching with C-a n,
/// checkpointed while in use, killed and restarted twice in new panes of another size; every
/// settled screen must be the uninterrupted run's (screen redraws for the new size as after a
/// resize), and both windows' shells end with `exit`. The daemon's descriptor of the user's
/// terminal (opened by name, in its own session) is given the new terminal (`restart::ptys`).
#[test]
fn tty_screen_with_two_windows_survives_restarts() {
    const PARTS: [Part; 3] = [
        Part {
            size: (80, 24),
            steps: &[
                Step::Text("echo one $((1+1))"),
                ENTER,
                Step::Keys(&["C-a", "c"]),
                Step::Text("echo two $((2+2))"),
                ENTER,
            ],
        },
        Part {
            size: (100, 30),
            steps: &[Step::Keys(&["C-a", "n"]), Step::Text("echo three; stty size"), ENTER, Step::Keys(&["C-a", "n"])],
        },
        Part { size: (80, 24), steps: &[Step::Text("stty size; exit"), ENTER, Step::Text("exit"), ENTER] },
    ];
    let setup = |d: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(d.join("screens")).unwrap();
        std::fs::set_permissions(d.join("screens"), std::fs::Permissions::from_mode(0o700)).unwrap();
    };
    let args = ["-c", "SCREENDIR=$PWD/screens exec screen -q"];
    fullscreen_cycles("tty-screen2", Path::new("/bin/sh"), &args, &PARTS, 0, setup, "none");
}

/// `script` recording an interactive bash (its own pty pair inside the computation),
/// checkpointed while in use, killed and restarted twice in new panes of another size: the
/// transcript is the uninterrupted run's, and the recording (flushed as it goes, -f) holds the
/// output of every part: the shell inside counts those lines in it at the end.
#[test]
fn tty_script_recording_a_shell_survives_restarts() {
    const PARTS: [Part; 3] = [
        Part { size: (80, 24), steps: &[Step::Text("echo one $((1+1))"), ENTER] },
        Part { size: (100, 30), steps: &[Step::Text("echo two; stty size"), ENTER] },
        Part {
            size: (80, 24),
            steps: &[
                Step::Text("stty size; tr -d '\\r' < rec.txt | grep -a -c -e 'one 2$' -e 'two$' -e '30 100$'"),
                ENTER,
                Step::Text("exit"),
                ENTER,
            ],
        },
    ];
    let args = ["-q", "-f", "-c", "/bin/bash --norc --noprofile -i", "rec.txt"];
    let all = interactive_cycles("tty-script", Path::new("/usr/bin/script"), &args, &PARTS, 0);
    let text = all.join("\n");
    for want in ["one 2", "30 100", "24 80\n3\n"] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
}

/// Our own curses program (tests/c/tty_curses.c, ncurses) typing, deleting and an arrow key
/// across two restarts in new panes of another size: each restart looks like a resize
/// (KEY_RESIZE, the new size on the screen), and the state goes on. 64 and 32 bit.
fn curses_cycles(m32: bool) {
    const PARTS: [Part; 3] = [
        Part { size: (80, 24), steps: &[Step::Text("abc"), Step::Keys(&["Up"])] },
        // No arrow keys after a restart: keypad-transmit mode (smkx) is the old terminal's, a
        // new one sends arrows in its default form, which curses does not take for KEY_DOWN.
        Part { size: (100, 30), steps: &[Step::Keys(&["BSpace"]), Step::Text("xy")] },
        Part { size: (80, 24), steps: &[Step::Text("z"), Step::Text("q")] },
    ];
    let program = c_program_linked("tty_curses", m32, &["ncurses"]);
    fullscreen_cycles("tty-curses", &program, &[], &PARTS, 6, |_| {}, "none");
}

#[test]
fn tty_curses_program_of_ours_survives_restarts_64() {
    curses_cycles(false);
}

#[test]
fn tty_curses_program_of_ours_survives_restarts_32() {
    curses_cycles(true);
}

/// An interactive bash with a job stopped by Ctrl-Z while it reads the terminal: the bash and
/// its stopped job are checkpointed (the job is minded through the checkpoint, see the
/// coordinator's `stopped`), killed and restarted twice in new panes, and `jobs` still shows
/// it stopped; `fg` continues it, it reads what is typed, and its SIGCONT handler has run once
/// (the shell's). The job is ours (tests/c/stopped_job.c), 64 or 32 bit under a 64-bit bash.
fn bash_stopped_job_cycles(m32: bool) {
    const PARTS: [Part; 3] = [
        Part { size: (80, 24), steps: &[Step::Text("$JOB"), ENTER, Step::Keys(&["C-z"]), Step::Text("jobs"), ENTER] },
        Part { size: (100, 30), steps: &[Step::Text("jobs; echo between"), ENTER] },
        Part {
            size: (80, 24),
            steps: &[
                Step::Text("fg"),
                ENTER,
                Step::Text("hello"),
                ENTER,
                Step::Text("end"),
                ENTER,
                Step::Text("jobs; exit 7"),
                ENTER,
            ],
        },
    ];
    let job = format!("JOB={}", c_program("stopped_job", m32).display());
    let args = [job.as_str(), "/bin/bash", "--norc", "--noprofile", "-i"];
    let all = interactive_cycles("tty-job", Path::new("/usr/bin/env"), &args, &PARTS, 7);
    let text = all.join("\n");
    for want in ["job: ready", "[1]+  Stopped                 $JOB", "between", "job: got hello conts=1", "job: done"] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
    assert_eq!(text.matches("Stopped").count(), 3, "one report of the stop and two `jobs`:\n{text}");
}

#[test]
fn tty_bash_fg_continues_a_job_stopped_across_restarts_64() {
    bash_stopped_job_cycles(false);
}

#[test]
fn tty_bash_fg_continues_a_job_stopped_across_restarts_32() {
    bash_stopped_job_cycles(true);
}

/// python3 at its prompt: a variable, readline history (Up recalls an earlier line) and the
/// terminal size as Python reads it, across two restarts.
#[test]
fn tty_python_prompt_after_restart() {
    const PARTS: [Part; 3] = [
        Part { size: (80, 24), steps: &[Step::Text("x = 6 * 7"), ENTER, Step::Text("print(x)"), ENTER] },
        Part {
            size: (100, 30),
            steps: &[
                Step::Text("print(x + 1)"),
                ENTER,
                Step::Keys(&["Up"]),
                Step::Keys(&["Up"]),
                ENTER,
                Step::Text("import os; print(os.get_terminal_size())"),
                ENTER,
            ],
        },
        Part {
            size: (80, 24),
            steps: &[Step::Text("print(os.get_terminal_size(), x)"), ENTER, Step::Text("exit(5)"), ENTER],
        },
    ];
    let all = interactive_cycles("tty-py", Path::new("/usr/bin/python3"), &["-q"], &PARTS, 5);
    let text = all.join("\n");
    for want in ["42\n", "43\n", "columns=100, lines=30", "columns=80, lines=24) 42"] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
}

/// chown and its kin on a terminal answer inside the computation's user namespace as they do
/// outside: success for root, EPERM for a user outside the tty group (not the namespace's
/// EINVAL for the unmapped group, which made screen give up); a regular file keeps the
/// namespace's answer. 64 and 32 bit, as root and as `tester`.
#[test]
fn tty_chown_of_a_terminal_answers_as_without_dmtcp() {
    let d = TempDir::new("tty-chown");
    for m32 in [false, true] {
        let program = c_program("tty_chown", m32);
        let outside = stdout(&run_ok(&mut Command::new(&program)));
        let inside = stdout(&run_ok(
            role("launch").args(["--new-coordinator", "--coord-port", "0", "-q"]).arg(&program).arg(d.join("file")),
        ));
        let (terminal, file) = inside.split_once("file: ").unwrap_or_else(|| panic!("no file line in:\n{inside}"));
        assert_eq!(terminal, outside, "m32={m32}");
        assert!(outside.contains("chown pty: ") && outside.contains("mode 620"), "{outside}");
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            assert!(outside.starts_with("chown pty: ok\n"), "{outside}");
            assert_eq!(file.trim(), "EINVAL", "a regular file's chown must stay the namespace's");
        }
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    require_tester();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    for (src, name) in [(dmtcp(), "dmtcp"), (c_program("tty_chown", false), "chown")] {
        std::fs::copy(src, d.join(name)).unwrap();
    }
    let script = r#"cd "$H" && HOME="$H" TMPDIR="$H" && export HOME TMPDIR &&
        ./chown > outside.txt && ./dmtcp launch --new-coordinator -p 0 -q ./chown > inside.txt && echo done"#;
    let out = run_for(Command::new("su").args(["tester", "-s", "/bin/sh", "-c", script]).env("H", d.path()), LIMIT);
    assert!(stdout(&out).contains("done"), "{}{}", stdout(&out), stderr(&out));
    let read = |n: &str| std::fs::read_to_string(d.join(n)).unwrap();
    assert_eq!(read("inside.txt"), read("outside.txt"));
    assert!(read("outside.txt").starts_with("chown pty: EPERM\n"), "{}", read("outside.txt"));
}

/// screen starts under dmtcp_launch (it used to stop at "chown tty: Invalid argument") and
/// runs a command in its window (`tty_screen_with_two_windows_survives_restarts` checkpoints
/// and restarts it; this one does not wait for it to join the coordinator).
#[test]
fn tty_screen_starts_under_dmtcp() {
    let mut s = Session::new("tty-screen");
    let dir = s.work.join("screens");
    std::fs::create_dir_all(&dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let screen = Path::new("/usr/bin/screen");
    assert!(screen.exists(), "screen is not installed (scripts/setup.sh installs it)");
    let pane =
        s.launch_only(80, 24, Path::new("/usr/bin/env"), &[&format!("SCREENDIR={}", dir.display()), "screen", "-q"]);
    settled(&s.tmux, &pane);
    s.tmux.type_text(&pane, "echo hello $((6*7))");
    s.tmux.keys(&pane, &["Enter"]);
    let screen_text = s.tmux.wait_for(&pane, "hello 42");
    assert!(!screen_text.contains("chown tty"), "{screen_text}");
    // Its window's shell ends, and screen with it (a SIGHUP from the tmux server would only
    // detach it and leave it running).
    s.tmux.type_text(&pane, "exit");
    s.tmux.keys(&pane, &["Enter"]);
    s.tmux.wait_for(&pane, "[exit ");
}

/// A pty pair made inside the computation (posix_openpt; the child leads a session whose
/// controlling terminal is the slave) through two checkpoint/kill/restart cycles while bytes
/// are in flight both ways: the pair is made again with each end at its old fds, the child
/// gets its controlling terminal and foreground group back, the window size, VKILL, canonical
/// mode, echo and packet mode come back, and ttyname/ptsname//proc/self/fd agree on the new
/// slave; every answer must be the uninterrupted run's.
fn pty_pair_cycles(m32: bool) {
    let program = c_program("pty_pair", m32);
    let last =
        crate::ckpt::cycles_with(&program, &["60"], 2, 2, Duration::from_millis(1500), &[], |cy, _| cy.restart(2));
    assert!(!last.starts_with("step 0:"), "the restarted run began from the start:\n{last}");
    assert!(last.contains("child=0"), "{last}");
    for l in last.lines().filter(|l| l.starts_with("step ")) {
        assert!(
            l.ends_with("rows=33 cols=77 fg=1 vkill=11 icanon=1 echo=1 names=same ptsname=agrees"),
            "after restart: {l}"
        );
    }
}

#[test]
fn pty_pair_inside_the_computation_comes_back_64() {
    pty_pair_cycles(false);
}

#[test]
fn pty_pair_inside_the_computation_comes_back_32() {
    pty_pair_cycles(true);
}
