//! The `dmtcp` binary is a chimera: like busybox, it changes its behaviour based on the file name
//! it was started under (`dmtcp_launch`, `dmtcp_coordinator`, `dmtcp_command`, `dmtcp_restart`,
//! `dmtcp_nocheckpoint`, symlinks to it), or, as `dmtcp`, on its first argument (`dmtcp launch
//! ...`).
//!
//! Layout (docs/architecture.md): one module per role at the top (`launch`, `coordinator`,
//! `command`, `restart`, `nocheckpoint`, `self_install`, `write_image`); what roles share lives
//! in `common`. A role never imports another role.
// `unsafe` is refused everywhere but in `common::ns` and `restart::spawn` (docs/architecture.md).
#![deny(unsafe_code)]

pub mod common;

pub mod command;
pub mod coordinator;
pub mod doctor;
pub mod image_tool;
pub mod launch;
pub mod man;
pub mod nocheckpoint;
pub mod restart;
pub mod self_install;
pub mod write_image;

use common::cli;
use std::ffi::OsString;
use std::path::Path;

/// The roles of the multicall binary, and the name each one goes by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Launch,
    Coordinator,
    Command,
    Restart,
    NoCheckpoint,
    SelfInstall,
    Image,
    Doctor,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::Launch,
        Role::Coordinator,
        Role::Command,
        Role::Restart,
        Role::NoCheckpoint,
        Role::SelfInstall,
        Role::Image,
        Role::Doctor,
    ];

    /// The program name users know the role by (the name of its symlink).
    pub fn program(self) -> &'static str {
        match self {
            Role::Launch => "dmtcp_launch",
            Role::Coordinator => "dmtcp_coordinator",
            Role::Command => "dmtcp_command",
            Role::Restart => "dmtcp_restart",
            Role::NoCheckpoint => "dmtcp_nocheckpoint",
            Role::SelfInstall => "dmtcp self-install",
            Role::Image => "dmtcp image",
            Role::Doctor => "dmtcp doctor",
        }
    }

    fn from_program(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.program() == name)
    }

    fn from_subcommand(name: &str) -> Option<Role> {
        match name {
            "launch" => Some(Role::Launch),
            "coordinator" => Some(Role::Coordinator),
            "command" => Some(Role::Command),
            "restart" => Some(Role::Restart),
            "nocheckpoint" => Some(Role::NoCheckpoint),
            "self-install" => Some(Role::SelfInstall),
            "image" => Some(Role::Image),
            "doctor" => Some(Role::Doctor),
            _ => None,
        }
    }

    /// The role's `--help` text, from its option definitions (what `dmtcp man` makes the
    /// role's man page of); None for the roles without a man page.
    pub fn help(self) -> Option<String> {
        match self {
            Role::Launch => Some(launch::help()),
            Role::Coordinator => Some(coordinator::help()),
            Role::Command => Some(command::help()),
            Role::Restart => Some(restart::help()),
            Role::NoCheckpoint => Some(nocheckpoint::help()),
            Role::SelfInstall | Role::Image | Role::Doctor => None,
        }
    }

    /// Runs the role on its arguments (after the program or role name). Arguments are taken as
    /// the bytes the kernel gave us: a program's argument need not be UTF-8.
    pub fn run(self, args: &[OsString]) -> i32 {
        match self {
            Role::Launch => launch::main(args),
            Role::Coordinator => coordinator::main(args),
            Role::Command => command::main(args),
            Role::Restart => restart::main(args),
            Role::NoCheckpoint => nocheckpoint::main(args),
            Role::SelfInstall => self_install::main(args),
            Role::Image => image_tool::main(args),
            Role::Doctor => doctor::main(args),
        }
    }
}

const TOP_USAGE: &str = "\
Usage: dmtcp <role> [options...]
       dmtcp_launch | dmtcp_coordinator | dmtcp_command | dmtcp_restart [options...]

Transparent checkpoint/restart for Linux computations.

Roles:
  launch        run a program under checkpoint control (dmtcp_launch)
  coordinator   the coordinator that drives checkpoints (dmtcp_coordinator)
  command       send a command to a coordinator (dmtcp_command)
  restart       restart a computation from its images (dmtcp_restart)
  nocheckpoint  run a command outside checkpoint control (dmtcp_nocheckpoint)
  self-install  lay out an installation tree with the role symlinks
  image         look inside checkpoint images: info, verify, ls
  doctor        check that this machine can launch and restart

Options:
  --help        show this help
  --version     show the version
Run `dmtcp <role> --help` for the options of a role.";

/// The usage of `dmtcp` itself (for `dmtcp man`).
pub fn top_usage() -> &'static str {
    TOP_USAGE
}

/// The whole binary: `args` is argv, untouched. Returns the exit code.
pub fn run(args: &[OsString]) -> i32 {
    let argv0 = args.first().map(OsString::as_os_str).unwrap_or("dmtcp".as_ref());
    let name = Path::new(argv0).file_name().and_then(|s| s.to_str()).unwrap_or("dmtcp");
    if let Some(role) = Role::from_program(name) {
        return role.run(&args[1..]);
    }
    match args.get(1).map(|a| a.to_str()) {
        None => {
            eprintln!("dmtcp: no role given\n\n{TOP_USAGE}");
            cli::EXIT_USAGE
        }
        Some(Some("--help" | "help")) => {
            println!("{TOP_USAGE}");
            0
        }
        // Hidden helper role run by the preload library, not listed in the help.
        Some(Some("write-image")) => write_image::main(&args[2..]),
        // Hidden: the man pages, made from the roles' --help texts.
        Some(Some("man")) => man::main(&args[2..]),
        Some(Some("--version")) => {
            println!("{}", cli::version_line("dmtcp"));
            0
        }
        Some(sub) => match sub.and_then(Role::from_subcommand) {
            Some(role) => role.run(&args[2..]),
            None => {
                eprintln!("dmtcp: unknown role `{}`\n\n{TOP_USAGE}", args[1].to_string_lossy());
                cli::EXIT_USAGE
            }
        },
    }
}
