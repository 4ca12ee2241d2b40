//! Per-architecture entry point and raw system calls. Rule: no libc, no allocation; each file
//! holds the only `unsafe` of its architecture.
#[cfg(target_arch = "x86")]
mod x86;
#[cfg(target_arch = "x86")]
pub use x86::*;
#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::*;
