//! Messages go through `log`, printed on stderr as `<program>: <message>`, and appended to the
//! log files asked for: `DMTCP_LOG_FILE` (every tool and library of the computation appends its
//! lines there, each line naming its program and pid) and the coordinator's `--coord-logfile`.
//!
//! The level follows DMTCP's precedence (`initializeLogFile` in its logger): the quiet count
//! (`-q` given N times plus `DMTCP_QUIET`) sets the base, 0 notes and up, 1 warnings and errors,
//! 2 or more errors only; `DMTCP_LOG_LEVEL` (error, warn, note, trace, or 0-3), when it parses,
//! overrides it. Errors are always printed. `-q` quiets the terminal only: the log files get
//! the level of the environment alone, so that a coordinator started with `--quiet` still writes
//! its full log where it was asked to.
use log::{Level, LevelFilter, Log, Metadata, Record};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The terminal's level (a `LevelFilter` as usize).
static CONSOLE: AtomicUsize = AtomicUsize::new(LevelFilter::Info as usize);

struct Sinks {
    program: String,
    /// Log files with their level (DMTCP_LOG_FILE, --coord-logfile).
    files: Mutex<Vec<(File, LevelFilter)>>,
}

static LOGGER: std::sync::OnceLock<Sinks> = std::sync::OnceLock::new();

struct Forward;

impl Log for Forward {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &Record<'_>) {
        let Some(s) = LOGGER.get() else { return };
        let tag = match r.level() {
            Level::Error => "error: ",
            Level::Warn => "warning: ",
            _ => "",
        };
        if (r.level() as usize) <= CONSOLE.load(Ordering::Relaxed) {
            eprintln!("{}: {tag}{}", s.program, r.args());
        }
        if let Ok(mut files) = s.files.lock() {
            if files.iter().any(|(_, l)| r.level() <= *l) {
                // One write per line: O_APPEND keeps the lines of several processes whole.
                let line = format!("{}[{}]: {tag}{}\n", s.program, std::process::id(), r.args());
                for (f, l) in files.iter_mut() {
                    if r.level() <= *l {
                        let _ = f.write_all(line.as_bytes());
                    }
                }
            }
        }
    }
    fn flush(&self) {}
}

/// DMTCP_LOG_LEVEL's value as a level, if it is one.
fn parse_level(v: &str) -> Option<LevelFilter> {
    Some(match v.trim() {
        "0" | "error" => LevelFilter::Error,
        "1" | "warn" | "warning" => LevelFilter::Warn,
        "2" | "note" | "info" => LevelFilter::Info,
        "3" | "trace" | "debug" => LevelFilter::Trace,
        _ => return None,
    })
}

/// The level for `quiet` times `-q`, the values of DMTCP_QUIET and DMTCP_LOG_LEVEL (pure; the
/// precedence described at the top).
pub fn level_for(quiet: u8, env_quiet: Option<&str>, env_level: Option<&str>) -> LevelFilter {
    // DMTCP reads the first digit of DMTCP_QUIET.
    let env_q = env_quiet.and_then(|v| v.trim().bytes().next()).filter(u8::is_ascii_digit).map_or(0, |d| d - b'0');
    let base = match quiet.saturating_add(env_q) {
        0 => LevelFilter::Info,
        1 => LevelFilter::Warn,
        _ => LevelFilter::Error,
    };
    env_level.and_then(parse_level).unwrap_or(base)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The level of `quiet` times `-q` in this environment.
pub fn level(quiet: u8) -> LevelFilter {
    level_for(quiet, env(dmtcp_proto::env::QUIET).as_deref(), env(dmtcp_proto::env::LOG_LEVEL).as_deref())
}

/// Installs the logger for `program`, `quiet` being how many times `-q` was given. Opens
/// DMTCP_LOG_FILE when it is set (a file that cannot be opened is a warning).
pub fn init(program: &str, quiet: u8) {
    init_with(program, level(quiet));
}

/// `init` for an answer that owns stdout and stderr (`dmtcp_command --json`): nothing on the
/// terminal, from the first line on; the log files still get their lines.
pub fn init_silent(program: &str) {
    init_with(program, LevelFilter::Off);
}

fn init_with(program: &str, console: LevelFilter) {
    let sinks = Sinks { program: program.to_string(), files: Mutex::new(Vec::new()) };
    CONSOLE.store(console as usize, Ordering::Relaxed);
    if LOGGER.set(sinks).is_ok() && log::set_logger(&Forward).is_ok() {
        log::set_max_level(console);
    }
    if let Some(p) = std::env::var_os(dmtcp_proto::env::LOG_FILE).filter(|p| !p.is_empty()) {
        if let Err(e) = add_file(Path::new(&p)) {
            log::warn!("{}={}: {e}; not logging there", dmtcp_proto::env::LOG_FILE, Path::new(&p).display());
        }
    }
}

/// Appends every later message (at the environment's level, whatever `-q` says) to `path`,
/// created mode 0600 if missing.
pub fn add_file(path: &Path) -> std::io::Result<()> {
    let f = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    let level = level(0);
    if let Some(s) = LOGGER.get() {
        if let Ok(mut files) = s.files.lock() {
            files.push((f, level));
        }
        log::set_max_level(log::max_level().max(level));
    }
    Ok(())
}

/// The terminal gets the environment's level whatever `-q` said (a coordinator in the background
/// whose stderr is its log file).
pub fn unquiet_console() {
    let l = level(0);
    CONSOLE.store(l as usize, Ordering::Relaxed);
    log::set_max_level(log::max_level().max(l));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_count_and_log_level_follow_dmtcp_precedence() {
        assert_eq!(level_for(0, None, None), LevelFilter::Info);
        assert_eq!(level_for(1, None, None), LevelFilter::Warn);
        assert_eq!(level_for(2, None, None), LevelFilter::Error);
        assert_eq!(level_for(0, Some("1"), None), LevelFilter::Warn);
        assert_eq!(level_for(1, Some("1"), None), LevelFilter::Error);
        assert_eq!(level_for(0, Some("0"), None), LevelFilter::Info);
        // DMTCP_LOG_LEVEL wins over the quiet count when it parses.
        assert_eq!(level_for(2, Some("2"), Some("trace")), LevelFilter::Trace);
        assert_eq!(level_for(0, None, Some("error")), LevelFilter::Error);
        assert_eq!(level_for(0, None, Some("3")), LevelFilter::Trace);
        assert_eq!(level_for(1, None, Some("bogus")), LevelFilter::Warn);
    }
}
