//! Argument handling shared by every role: argh parsing with DMTCP-style spellings, uniform
//! `--help`/`--version` behaviour and exit codes.
use argh::FromArgs;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// Exit code for a usage error (unknown option, missing value).
pub const EXIT_USAGE: i32 = 1;
/// Exit code for a runtime failure (no coordinator, bad image, I/O error).
pub const EXIT_FAILURE: i32 = 2;

pub fn version_line(program: &str) -> String {
    format!("{program} (dmtcp-rs) {} build {}", env!("CARGO_PKG_VERSION"), env!("DMTCP_BUILD_ID"))
}

/// Rewrites DMTCP's attached spellings into the separate form argh understands: `-p7779` into
/// `-p 7779` and `--opt=value` into `--opt value`. `letters` lists the one-letter options that
/// take a value, `long_values` the long ones. With `tail` set, the first word that is neither an
/// option nor an option's value starts the program to run, and it and everything after it are
/// left alone (so that `dmtcp_launch ./app -p5` passes `-p5` to the app).
pub fn normalize(args: &[String], letters: &[char], long_values: &[&str], tail: bool) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let b = a.as_bytes();
        if a == "--" || (tail && !a.starts_with('-')) {
            out.push(a.clone());
            out.extend(it.cloned());
            break;
        }
        if b.len() > 2 && b[0] == b'-' && b[1] != b'-' && letters.contains(&(b[1] as char)) {
            out.push(a[..2].to_string());
            out.push(a[2..].to_string());
        } else if a.starts_with("--") && a.contains('=') {
            let (k, v) = a.split_once('=').unwrap();
            out.push(k.to_string());
            out.push(v.to_string());
        } else {
            out.push(a.clone());
            let takes_value = (b.len() == 2 && b[0] == b'-' && letters.contains(&(b[1] as char)))
                || long_values.contains(&a.as_str());
            if takes_value {
                if let Some(v) = it.next() {
                    out.push(v.clone());
                }
            }
        }
    }
    out
}

/// Splits a launcher's arguments into its own options and the command to run: the command starts
/// at the first word that is neither an option nor the separate value of one (`letters` and
/// `long_values` as in `normalize`), or after `--`. The command is returned untouched.
pub fn split_command<'a>(
    args: &'a [OsString],
    letters: &[char],
    long_values: &[&str],
) -> (&'a [OsString], &'a [OsString]) {
    let mut i = 0;
    while i < args.len() {
        let b = args[i].as_bytes();
        if b == b"--" {
            return (&args[..i], &args[i + 1..]);
        }
        if b.first() != Some(&b'-') {
            break;
        }
        let short_value = b.len() == 2 && b[1] != b'-' && letters.contains(&(b[1] as char));
        let long_value = long_values.iter().any(|l| OsStr::new(l) == args[i].as_os_str());
        i += if short_value || long_value { 2 } else { 1 };
    }
    let i = i.min(args.len());
    (&args[..i], &args[i..])
}

/// A role's own options as strings: an option that is not UTF-8 is a usage error that names it.
pub fn utf8(program: &str, args: &[OsString]) -> Result<Vec<String>, i32> {
    args.iter()
        .map(|a| {
            a.to_str().map(str::to_owned).ok_or_else(|| {
                eprintln!("{program}: argument `{}` is not valid UTF-8; see `{program} --help`", a.to_string_lossy());
                EXIT_USAGE
            })
        })
        .collect()
}

/// Parses `args` for `program`. `--help` prints the usage (exit 0); a bad argument prints what
/// is wrong and the usage, and gives EXIT_USAGE. Each role's options carry their own `--version`.
pub fn parse<T: FromArgs>(program: &str, args: &[String]) -> Result<T, i32> {
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    match T::from_args(&[program], &strs) {
        Ok(v) => Ok(v),
        Err(early) => match early.status {
            Ok(()) => {
                print!("{}", early.output);
                Err(0)
            }
            Err(()) => {
                eprint!("{program}: {}", early.output);
                if !early.output.ends_with('\n') {
                    eprintln!();
                }
                if let Err(help) = T::from_args(&[program], &["--help"]) {
                    eprintln!();
                    eprint!("{}", help.output);
                }
                Err(EXIT_USAGE)
            }
        },
    }
}

/// The start of every role: parses `args` (see `parse`), answers `--version`, and sets up
/// logging (`-q`, a switch or a count of them). `flags` reads (version, quiet) from the parsed
/// options. Err is the exit code.
pub fn start<T: FromArgs, Q: Into<u8>>(
    program: &str,
    args: &[String],
    flags: impl Fn(&T) -> (bool, Q),
) -> Result<T, i32> {
    let a: T = parse(program, args)?;
    let (version, quiet) = flags(&a);
    if version {
        println!("{}", version_line(program));
        return Err(0);
    }
    crate::common::logging::init(program, quiet.into());
    Ok(a)
}

/// The `--help` text of `T` for `program`, as argh prints it (the one source of the options'
/// descriptions: `dmtcp man` turns the same text into a man page).
pub fn help_of<T: FromArgs>(program: &str) -> String {
    match T::from_args(&[program], &["--help"]) {
        Err(e) => e.output,
        Ok(_) => String::new(),
    }
}

/// Says on stderr, in one line, what became of a DMTCP option that our design does not need or
/// does not have (accepted, never "unknown option").
pub fn explain(option: &str, why: &str) {
    log::warn!("{option}: {why}");
}
