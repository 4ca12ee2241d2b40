//! Messages go through `log`, printed on stderr as `<program>: <message>`. The level comes from
//! `DMTCP_LOG_LEVEL` (error, warn, note/info, trace, or 0-3; default note), and `-q` lowers it
//! to errors only (DMTCP_QUIET=1 does the same for every process of the computation).
use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrLog {
    program: String,
}

impl Log for StderrLog {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let tag = match r.level() {
            Level::Error => "error: ",
            Level::Warn => "warning: ",
            _ => "",
        };
        eprintln!("{}: {tag}{}", self.program, r.args());
    }
    fn flush(&self) {}
}

pub fn level_from_env() -> LevelFilter {
    match std::env::var(dmtcp_proto::env::LOG_LEVEL).ok().as_deref().map(str::trim) {
        Some("0" | "error") => LevelFilter::Error,
        Some("1" | "warn" | "warning") => LevelFilter::Warn,
        Some("3" | "trace" | "debug") => LevelFilter::Trace,
        _ => LevelFilter::Info,
    }
}

/// Installs the logger for `program`; `quiet` keeps only errors.
pub fn init(program: &str, quiet: bool) {
    let env_quiet = std::env::var(dmtcp_proto::env::QUIET).map(|v| v != "0" && !v.is_empty());
    let level = if quiet || env_quiet.unwrap_or(false) { LevelFilter::Error } else { level_from_env() };
    let logger = Box::new(StderrLog { program: program.to_string() });
    if log::set_boxed_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}
