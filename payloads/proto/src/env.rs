//! Names of the environment variables that users and our own programs exchange. The user-facing
//! ones follow DMTCP.

pub const COORD_HOST: &str = "DMTCP_COORD_HOST";
pub const COORD_PORT: &str = "DMTCP_COORD_PORT";
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
