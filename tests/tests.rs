//! One integration-test binary (links once; fast on a 2-core machine). Every test drives the
//! real `dmtcp` binary and real programs built by the tests with gcc and gcc -m32.
mod util;

mod api;
mod ckpt;
mod coordinator;
mod doctor;
mod endurance;
mod events;
mod faults;
mod image_tool;
mod incremental;
mod install;
mod invisible;
mod ipc;
mod leftovers;
mod library;
mod memory;
mod mpi;
mod mutations;
mod netns;
mod nocheckpoint;
mod options;
mod owner;
mod progress;
mod python;
mod remote;
mod restart;
mod resume;
mod sharedfd;
mod slurm;
mod sockets;
mod spawn;
mod stopped;
mod timers;
mod trees;
mod tty;
