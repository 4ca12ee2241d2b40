//! Entry point of the multicall `dmtcp` binary; everything is in the library (`src/lib.rs`).
fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    std::process::exit(dmtcp::run(&args));
}
