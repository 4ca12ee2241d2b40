//! `dmtcp man [ROLE]` (hidden): the man page of a role, as roff on stdout, made at run time from
//! the role's own `--help` text (argh's output of the option definitions), so that the man pages
//! and `--help` cannot drift apart. `dmtcp self-install` writes the same pages into
//! `P/share/man/man1` (read them with `man -l` or `man` with P/share/man in MANPATH).
//!
//! The help texts have one shape (argh's, and the top-level usage written the same way): a
//! `Usage:` synopsis, description paragraphs, then sections (`Options:`, `Roles:`, `Positional
//! Arguments:`) whose entries are `  NAME  description` with continuation lines indented
//! further. `to_roff` is a pure function of that text, unit-tested below.
use crate::common::cli;
use crate::Role;

/// The man pages there are: (page name, roff).
pub fn pages() -> Vec<(&'static str, String)> {
    let mut v = vec![("dmtcp", page_of("dmtcp", crate::top_usage()))];
    for role in Role::ALL {
        if let Some(help) = role.help() {
            v.push((role.program(), page_of(role.program(), &help)));
        }
    }
    v
}

fn page_of(name: &str, help: &str) -> String {
    let version = format!("dmtcp-rs {}", env!("CARGO_PKG_VERSION"));
    let see_also: Vec<&str> = std::iter::once("dmtcp")
        .chain(Role::ALL.iter().filter(|r| r.help().is_some()).map(|r| r.program()))
        .filter(|n| *n != name)
        .collect();
    to_roff(name, &version, help, &see_also)
}

const PROGRAM: &str = "dmtcp man";

pub fn main(args: &[std::ffi::OsString]) -> i32 {
    let args = match cli::utf8(PROGRAM, args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let want = match args.as_slice() {
        [] => "dmtcp".to_string(),
        [a] if a == "--help" => {
            println!("Usage: dmtcp man [ROLE]\n\nPrints the man page (roff) of dmtcp or of one of its roles: launch, coordinator, command, restart, nocheckpoint.");
            return 0;
        }
        [a] => a.clone(),
        _ => {
            eprintln!("{PROGRAM}: give one role; see `{PROGRAM} --help`");
            return cli::EXIT_USAGE;
        }
    };
    let name = if want.starts_with("dmtcp") { want.clone() } else { format!("dmtcp_{want}") };
    match pages().into_iter().find(|(n, _)| *n == name) {
        Some((_, roff)) => {
            print!("{roff}");
            0
        }
        None => {
            eprintln!(
                "{PROGRAM}: no man page for `{want}`; the pages are dmtcp, launch, coordinator, command, restart, nocheckpoint"
            );
            cli::EXIT_USAGE
        }
    }
}

/// Escapes text for roff: backslashes, and a leading `.` or `'` that would read as a request.
fn esc(s: &str) -> String {
    let s = s.replace('\\', "\\e");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

/// An option or role name in bold, with hyphens that stay hyphens.
fn bold(s: &str) -> String {
    format!("\\fB{}\\fR", esc(s).replace('-', "\\-"))
}

/// Is `line` a section header such as `Options:`?
fn is_section(line: &str) -> bool {
    line.ends_with(':')
        && line.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && line[..line.len() - 1].chars().all(|c| c.is_ascii_alphabetic() || c == ' ')
}

/// The value names of the options, from the synopsis: `[-h <coord-host>]` gives (-h, coord-host).
fn value_names(usage: &str) -> Vec<(String, String)> {
    let words: Vec<&str> = usage.split_whitespace().collect();
    words
        .windows(2)
        .filter_map(|w| {
            let opt = w[0].trim_start_matches('[');
            let val = w[1].trim_end_matches(']').trim_end_matches("...");
            (opt.starts_with('-') && val.starts_with('<') && val.ends_with('>'))
                .then(|| (opt.to_string(), val[1..val.len() - 1].to_string()))
        })
        .collect()
}

/// `-j, --join-coordinator  text` into its names and its text. argh leaves a single space after
/// a long name, so the names are the leading words that start with `-` (joined by `, `), or the
/// first word of an entry that is no option (a role, a positional argument).
fn split_entry(t: &str) -> (String, String) {
    let words: Vec<&str> = t.split(' ').collect();
    let mut n = 0;
    if words.first().is_some_and(|w| !w.starts_with('-')) {
        n = 1;
    } else {
        while n < words.len() && words[n].starts_with('-') {
            let more = words[n].ends_with(',');
            n += 1;
            if !more {
                break;
            }
        }
    }
    (words[..n].join(" "), words[n..].join(" ").trim().to_string())
}

/// Turns a help text into a man page (section 1).
pub fn to_roff(name: &str, version: &str, help: &str, see_also: &[&str]) -> String {
    let mut lines = help.lines().peekable();
    let mut usage = String::new();
    // The synopsis: `Usage: ...` and its indented continuation lines.
    while let Some(l) = lines.peek() {
        if l.trim().is_empty() && !usage.is_empty() {
            break;
        }
        let l = lines.next().unwrap();
        let t = l.trim();
        let t = t.strip_prefix("Usage:").unwrap_or(t).trim();
        if !t.is_empty() {
            if !usage.is_empty() {
                usage.push('\n');
            }
            usage.push_str(t);
        }
    }
    let values = value_names(&usage);
    let mut description: Vec<String> = Vec::new();
    let mut para = String::new();
    let mut sections: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut trailer: Vec<String> = Vec::new();
    for l in lines {
        if is_section(l) {
            sections.push((l.trim_end_matches(':').to_string(), Vec::new()));
            continue;
        }
        let Some((_, entries)) = sections.last_mut() else {
            if l.trim().is_empty() {
                if !para.is_empty() {
                    description.push(std::mem::take(&mut para));
                }
            } else {
                if !para.is_empty() {
                    para.push(' ');
                }
                para.push_str(l.trim());
            }
            continue;
        };
        let indent = l.len() - l.trim_start().len();
        if l.trim().is_empty() {
            continue;
        } else if indent == 0 {
            trailer.push(l.trim().to_string());
        } else if indent <= 2 {
            entries.push(split_entry(l.trim()));
        } else if let Some((_, d)) = entries.last_mut() {
            if !d.is_empty() {
                d.push(' ');
            }
            d.push_str(l.trim());
        }
    }
    if !para.is_empty() {
        description.push(para);
    }

    let summary = description.first().map(|d| d.split(':').next().unwrap_or(d).trim().to_string()).unwrap_or_default();
    let mut o = String::new();
    o.push_str(&format!(
        ".TH {} 1 \"\" \"{}\" \"User Commands\"\n",
        name.to_uppercase().replace('-', "\\-"),
        esc(version)
    ));
    o.push_str(".SH NAME\n");
    o.push_str(&format!("{} \\- {}\n", esc(name).replace('-', "\\-"), esc(&summary)));
    o.push_str(".SH SYNOPSIS\n.nf\n");
    for u in usage.lines() {
        o.push_str(&esc(u));
        o.push('\n');
    }
    o.push_str(".fi\n.SH DESCRIPTION\n");
    for d in &description {
        o.push_str(&esc(d));
        o.push_str("\n.PP\n");
    }
    for (title, entries) in &sections {
        o.push_str(&format!(".SH {}\n", esc(&title.to_uppercase())));
        for (n, d) in entries {
            let names: Vec<String> = n
                .split(", ")
                .map(|part| {
                    let v = values.iter().find(|(opt, _)| opt == part).map(|(_, v)| format!(" \\fI{}\\fR", esc(v)));
                    format!("{}{}", bold(part), v.unwrap_or_default())
                })
                .collect();
            o.push_str(&format!(".TP\n{}\n{}\n", names.join(", "), esc(d)));
        }
    }
    if !trailer.is_empty() {
        o.push_str(".SH NOTES\n");
        for t in &trailer {
            o.push_str(&esc(t));
            o.push('\n');
        }
    }
    if !see_also.is_empty() {
        o.push_str(".SH SEE ALSO\n");
        let refs: Vec<String> = see_also.iter().map(|s| format!("\\fB{}\\fR(1)", esc(s).replace('-', "\\-"))).collect();
        o.push_str(&refs.join(",\n"));
        o.push('\n');
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELP: &str = "Usage: prog [-h <coord-host>] [--quiet] [command...]

Run something: prog [options] program

Options:
  -h, --coord-host  coordinator host (env X,
                    default 127.0.0.1)
  --enable-unique-checkpoint-filenames
                    keep every checkpoint
  --new-coordinator start one
  --help            display usage information
";

    #[test]
    fn help_text_becomes_a_man_page_with_every_option() {
        let r = to_roff("prog", "v1", HELP, &["other"]);
        assert!(r.starts_with(".TH PROG 1 "), "{r}");
        assert!(r.contains("prog \\- Run something\n"), "{r}");
        assert!(r.contains(".SH SYNOPSIS\n.nf\nprog [-h <coord-host>] [--quiet] [command...]\n.fi\n"), "{r}");
        assert!(r.contains(".TP\n\\fB\\-h\\fR \\fIcoord-host\\fR, \\fB\\-\\-coord\\-host\\fR\ncoordinator host (env X, default 127.0.0.1)\n"), "{r}");
        assert!(
            r.contains(".TP\n\\fB\\-\\-enable\\-unique\\-checkpoint\\-filenames\\fR\nkeep every checkpoint\n"),
            "{r}"
        );
        assert!(r.contains(".TP\n\\fB\\-\\-new\\-coordinator\\fR\nstart one\n"), "{r}");
        assert!(r.contains(".SH SEE ALSO\n\\fBother\\fR(1)\n"), "{r}");
    }

    #[test]
    fn roff_requests_in_text_are_escaped() {
        assert_eq!(esc(".x \\y"), "\\&.x \\ey");
        assert_eq!(esc("'q"), "\\&'q");
    }
}
