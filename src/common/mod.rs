//! Machinery shared by the roles: argument handling, logging, the coordinator client, the
//! namespaces, the embedded payloads, dlsym offsets, the shared-data area, the image reader and
//! the set-up that launch and restart share.
pub mod cli;
pub mod client;
pub mod dlsym;
pub mod image_reader;
pub mod logging;
// Process creation and namespaces: one of the two places of `unsafe` in src/.
#[allow(unsafe_code)]
pub mod ns;
pub mod payloads;
pub mod setup;
pub mod shared_area;
pub mod token;
