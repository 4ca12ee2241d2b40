//! `dmtcp_restart [options] IMAGES...`: restarts a computation from its checkpoint images.
//!
//! This build checks its options and that each image exists and is readable; restoring images
//! arrives with the checkpoint format.
use crate::cli::{self, EXIT_FAILURE};
use argh::FromArgs;
use std::path::PathBuf;

#[derive(FromArgs)]
#[argh(help_triggers("--help"))]
/// Restart a computation from checkpoint images: dmtcp_restart [options] ckpt_*.dmtcp
struct RestartArgs {
    /// coordinator host (env DMTCP_COORD_HOST, default 127.0.0.1)
    #[argh(option, short = 'h', long = "coord-host")]
    coord_host: Option<String>,
    /// coordinator port (env DMTCP_COORD_PORT, default 7779)
    #[argh(option, short = 'p', long = "coord-port")]
    coord_port: Option<u16>,
    /// join the coordinator at host:port; fail if there is none
    #[argh(switch, short = 'j', long = "join-coordinator")]
    join: bool,
    /// start a new coordinator on the port
    #[argh(switch, long = "new-coordinator")]
    new: bool,
    /// folder for later checkpoint images
    #[argh(option, short = 'c', long = "ckptdir")]
    ckptdir: Option<PathBuf>,
    /// restart every ckpt_*.dmtcp image in this folder
    #[argh(option, short = 'r', long = "restartdir")]
    restartdir: Option<PathBuf>,
    /// print only errors
    #[argh(switch, short = 'q', long = "quiet")]
    quiet: bool,
    /// print the version and exit
    #[argh(switch, long = "version")]
    version: bool,
    /// checkpoint images
    #[argh(positional)]
    images: Vec<PathBuf>,
}

const PROGRAM: &str = "dmtcp_restart";

pub fn main(args: &[String]) -> i32 {
    let args = cli::normalize(args, &['p', 'h', 'c', 'r'], &["--coord-host", "--coord-port", "--ckptdir", "--restartdir"], false);
    let a: RestartArgs = match cli::parse(PROGRAM, &args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if a.version {
        println!("{}", cli::version_line(PROGRAM));
        return 0;
    }
    crate::logging::init(PROGRAM, a.quiet);
    if a.join && a.new {
        eprintln!("{PROGRAM}: choose one of --join-coordinator and --new-coordinator");
        return cli::EXIT_USAGE;
    }
    let _ = (&a.coord_host, a.coord_port, &a.ckptdir);
    let mut images = a.images.clone();
    if let Some(dir) = &a.restartdir {
        match std::fs::read_dir(dir) {
            Ok(rd) => images.extend(rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("ckpt_") && n.ends_with(".dmtcp"))
            })),
            Err(e) => {
                log::error!("--restartdir {}: {e}", dir.display());
                return EXIT_FAILURE;
            }
        }
    }
    if images.is_empty() {
        eprintln!("{PROGRAM}: no checkpoint images given; see `{PROGRAM} --help`");
        return cli::EXIT_USAGE;
    }
    for img in &images {
        if let Err(e) = std::fs::File::open(img) {
            log::error!("{}: {e}", img.display());
            return EXIT_FAILURE;
        }
    }
    log::error!("restoring checkpoint images is not available in this build");
    EXIT_FAILURE
}
