//! One integration-test binary (links once; fast on a 2-core machine). Every test drives the
//! real `dmtcp` binary and real programs built by the tests with gcc and gcc -m32.
mod util;

mod ckpt;
mod coordinator;
mod endurance;
mod events;
mod faults;
mod install;
mod invisible;
mod leftovers;
mod library;
mod memory;
mod mutations;
mod nocheckpoint;
mod owner;
mod python;
mod restart;
mod resume;
mod sharedfd;
mod sockets;
mod spawn;
mod timers;
mod trees;
mod tty;
