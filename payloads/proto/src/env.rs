//! Names of the environment variables that users and our own programs exchange. The user-facing
//! ones follow DMTCP.

pub const COORD_HOST: &str = "DMTCP_COORD_HOST";
pub const COORD_PORT: &str = "DMTCP_COORD_PORT";
/// The secret a coordinator listening beyond loopback requires of clients from other hosts.
pub const COORD_TOKEN: &str = "DMTCP_COORD_TOKEN";
/// Where that secret is kept (default `$HOME/.dmtcp/coord-PORT.token`).
pub const COORD_TOKEN_FILE: &str = "DMTCP_COORD_TOKEN_FILE";
pub const CHECKPOINT_DIR: &str = "DMTCP_CHECKPOINT_DIR";
pub const CHECKPOINT_INTERVAL: &str = "DMTCP_CHECKPOINT_INTERVAL";
pub const GZIP: &str = "DMTCP_GZIP";
pub const SIGCKPT: &str = "DMTCP_SIGCKPT";
pub const TMPDIR: &str = "DMTCP_TMPDIR";
pub const LOG_LEVEL: &str = "DMTCP_LOG_LEVEL";
pub const QUIET: &str = "DMTCP_QUIET";
pub const DLSYM_OFFSET: &str = "DMTCP_DLSYM_OFFSET";
pub const DLSYM_OFFSET_M32: &str = "DMTCP_DLSYM_OFFSET_M32";
pub const HIJACK_LIBS: &str = "DMTCP_HIJACK_LIBS";
pub const HIJACK_LIBS_M32: &str = "DMTCP_HIJACK_LIBS_M32";
pub const ORIG_LD_PRELOAD: &str = "DMTCP_ORIG_LD_PRELOAD";
/// Path of the computation's shared-data file (see `shared`).
pub const SHARED_AREA: &str = "DMTCP_SHARED_AREA";
/// Absolute path of the `dmtcp` binary, which the preload library runs to write images.
pub const BIN: &str = "DMTCP_BIN";
/// Set to 1 to make a checkpoint fail when an fd cannot be restored (instead of a warning and
/// a placeholder after restart); `dmtcp_launch --strict` sets it.
pub const STRICT: &str = "DMTCP_STRICT";
/// Set to 0 to run without the private pid namespace (pids then change at restart).
pub const PIDNS: &str = "DMTCP_PIDNS";
/// `FD:VPID:COMP_ID` (decimal, decimal, hex): the coordinator connection a registered process
/// keeps open across its exec (or makes for a child it spawns), so that the new program image
/// goes on as the same worker instead of registering anew. Set by the exec wrappers, removed from
/// the environment by the new image's library before the program can see it.
pub const COORD_HANDOVER: &str = "DMTCP_COORD_HANDOVER";
/// `ID.NUM.ADJ[,...]` (decimal): the SEM_UNDO adjustments the kernel keeps across an exec,
/// handed to the new image's library (libdmtcp `resources/sem_undo.rs`) by the exec wrappers and
/// removed from the environment before the program can see it.
pub const SEM_UNDO: &str = "DMTCP_SEM_UNDO";

/// File descriptor on which `dmtcp_restart` hands the restored process the facts of the new
/// run, as `KEY=VALUE` lines with the names above (coordinator, checkpoint folder, binary and
/// library paths, dlsym offsets, shared-data area). The library reads and closes it.
pub const RESTART_INFO_FD: i32 = 820;

// DMTCP's documented variables that issue 15 added (options.rs of the tests pins each one).
/// Every tool and preload library of the computation also appends its messages to this file.
pub const LOG_FILE: &str = "DMTCP_LOG_FILE";
/// The coordinator's log file (`--coord-logfile` of launch, restart and the coordinator).
pub const COORD_LOG_FILENAME: &str = "DMTCP_COORD_LOG_FILENAME";
/// 1: each checkpoint generation goes into its own subfolder `ckpt_<computation>_<generation>`.
pub const UNIQUE_CKPT: &str = "DMTCP_UNIQUE_CKPT_PLUGIN";
/// `1`: incremental checkpoints (a full image, then delta images of the changed pages).
pub const INCREMENTAL: &str = "DMTCP_INCREMENTAL";
/// The most delta images on one full image before a new full one (default 10).
pub const INCREMENTAL_CHAIN: &str = "DMTCP_INCREMENTAL_CHAIN";
/// A new full image once the deltas together outgrow this percentage of the base (default 50).
pub const INCREMENTAL_RATIO: &str = "DMTCP_INCREMENTAL_RATIO";
/// Restart facts: the image of a chain a process was restored from (`dirty::restart_info`).
pub const RESTART_CHAIN: &str = "DMTCP_RESTART_CHAIN";
/// N > 0: a restarted process stops (SIGSTOP) before it resumes, for a debugger to attach.
pub const RESTART_PAUSE: &str = "DMTCP_RESTART_PAUSE";
/// The older spelling of DMTCP_RESTART_PAUSE.
pub const MTCP_RESTART_PAUSE: &str = "MTCP_RESTART_PAUSE";
/// 1: `dmtcp_restart` restarts images that belong to another user.
pub const DISABLE_STRICT_CHECKING: &str = "DMTCP_DISABLE_STRICT_CHECKING";
/// DMTCP's plugin list (`--with-plugin`); we have no plugin API.
pub const PLUGIN: &str = "DMTCP_PLUGIN";
pub const DISABLE_ALL_PLUGINS: &str = "DMTCP_DISABLE_ALL_PLUGINS";
pub const CKPT_OPEN_FILES: &str = "DMTCP_CKPT_OPEN_FILES";
pub const ALLOW_OVERWRITE: &str = "DMTCP_ALLOW_OVERWRITE_WITH_CKPTED_FILES";
/// Restart-info lines (fd 820) of DMTCP's modify-env: `DMTCP_ENV_SET=NAME=value` sets a variable
/// of the restarted program, `DMTCP_ENV_UNSET=NAME` removes one (from dmtcp_env.txt).
pub const ENV_SET: &str = "DMTCP_ENV_SET";
pub const ENV_UNSET: &str = "DMTCP_ENV_UNSET";
/// The modify-env file `dmtcp_restart` reads instead of `dmtcp_env.txt` of the image's folder.
pub const ENV_FILE: &str = "DMTCP_ENV_FILE";
/// Path virtualisation (DMTCP's pathvirt): colon-separated old path prefixes, and the new
/// prefixes they are taken from at restart, in the same order (read by `dmtcp_restart`).
pub const PATH_PREFIX: &str = "DMTCP_PATH_PREFIX";
pub const NEW_PATH_PREFIX: &str = "DMTCP_NEW_PATH_PREFIX";
/// Restart-info line (fd 820): the working folder the process returns to instead of its own
/// (its old one, under a translated prefix).
pub const RESTART_CWD: &str = "DMTCP_RESTART_CWD";
