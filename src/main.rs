//! The `dmtcp` binary is a chimera: like busybox, it changes its behaviour based on the file name
//! it was started under (`dmtcp_launch`, `dmtcp_coordinator`, `dmtcp_command`, `dmtcp_restart`,
//! symlinks to it), or, as `dmtcp`, on its first argument (`dmtcp launch ...`).
#![deny(unsafe_op_in_unsafe_fn)]

mod cli;
mod client;
mod command;
mod coordinator;
mod dlsym;
mod image_check;
mod image_writer;
mod launch;
mod logging;
mod ns;
mod payloads;
mod restart;
mod self_install;
mod shared_area;

use std::path::Path;

/// The roles of the multicall binary, and the name each one goes by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Launch,
    Coordinator,
    Command,
    Restart,
    SelfInstall,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Launch, Role::Coordinator, Role::Command, Role::Restart, Role::SelfInstall];

    /// The program name users know the role by (the name of its symlink).
    pub fn program(self) -> &'static str {
        match self {
            Role::Launch => "dmtcp_launch",
            Role::Coordinator => "dmtcp_coordinator",
            Role::Command => "dmtcp_command",
            Role::Restart => "dmtcp_restart",
            Role::SelfInstall => "dmtcp self-install",
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
            "self-install" => Some(Role::SelfInstall),
            _ => None,
        }
    }

    fn run(self, args: &[String]) -> i32 {
        match self {
            Role::Launch => launch::main(args),
            Role::Coordinator => coordinator::main(args),
            Role::Command => command::main(args),
            Role::Restart => restart::main(args),
            Role::SelfInstall => self_install::main(args),
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
  self-install  lay out an installation tree with the role symlinks

Options:
  --help        show this help
  --version     show the version
Run `dmtcp <role> --help` for the options of a role.";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let argv0 = args.first().map(String::as_str).unwrap_or("dmtcp");
    let name = Path::new(argv0).file_name().and_then(|s| s.to_str()).unwrap_or("dmtcp");
    let code = match Role::from_program(name) {
        Some(role) => role.run(&args[1..]),
        None => match args.get(1).map(String::as_str) {
            None => {
                eprintln!("dmtcp: no role given\n\n{TOP_USAGE}");
                1
            }
            Some("--help" | "help") => {
                println!("{TOP_USAGE}");
                0
            }
            // Hidden helper role run by the preload library, not listed in the help.
            Some("write-image") => image_writer::main(&args[2..]),
            Some("--version") => {
                println!("{}", cli::version_line("dmtcp"));
                0
            }
            Some(sub) => match Role::from_subcommand(sub) {
                Some(role) => role.run(&args[2..]),
                None => {
                    eprintln!("dmtcp: unknown role `{sub}`\n\n{TOP_USAGE}");
                    1
                }
            },
        },
    };
    std::process::exit(code);
}
