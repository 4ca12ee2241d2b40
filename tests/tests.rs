//! One integration-test binary (links once; fast on a 2-core machine). Every test drives the
//! real `dmtcp` binary and real programs built by the tests with gcc and gcc -m32.
mod util;

mod ckpt;
mod coordinator;
mod faults;
mod install;
mod library;
mod restart;
mod spawn;
mod trees;
mod tty;
