//! One integration-test binary (links once; fast on a 2-core machine). Every test drives the
//! real `dmtcp` binary and real programs built by the tests with gcc and gcc -m32.
mod util;

mod install;
mod library;
mod coordinator;
mod ckpt;
mod restart;
mod trees;
mod faults;
mod spawn;
