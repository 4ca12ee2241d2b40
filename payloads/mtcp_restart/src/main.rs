//! `mtcp_restart`: the static, libc-free restorer that `dmtcp_restart` runs for each image, in the
//! process that becomes the restored program (already carrying the program's old pid).
//!
//! Rules for this crate: no libc, no allocation, no unwinding (panic = abort, and the handler
//! exits with a message). It is linked at a fixed address (`dmtcp_proto::RESTORER_BASE_*`) far
//! from where programs live, runs on a stack in its own .bss, and keeps scratch memory inside its
//! own range, so that everything else in the address space can be given back to the program.
//!
//! The restore, in order (see `restore`):
//! 1. read the header and the tables (areas and threads) from `--fd`; refuse a foreign image;
//! 2. unmap everything that is not ours, move the kernel's vdso/vvar to where the program had
//!    them (same sizes required: same kernel);
//! 3. map every area at its address (a private area with MAP_NORESERVE or MAP_GROWSDOWN as
//!    recorded, a PROT_NONE reservation as PROT_NONE so that nothing is committed; shared
//!    memory from the memfd that `dmtcp_restart` made for its object, `--region`) and fill in
//!    the stored pages, then set the protections, the madvise settings and mlock, and the
//!    kernel's view of brk, code, data, arguments and auxv (PR_SET_MM_MAP);
//! 4. recreate every other thread with its old tid (clone3 with set_tid) and its TLS, and
//!    resume each one, this thread last as the main thread, inside the preload library's
//!    checkpoint handler, from where it returns to the program.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

mod arch;
mod mem;
mod out;
mod restore;
mod sys;

use out::Out;

pub const STACK_SIZE: usize = 256 * 1024;

/// The restorer's own stack (see `_start`).
#[allow(unsafe_code)]
#[no_mangle]
pub static mut STACK: [u8; STACK_SIZE] = [0; STACK_SIZE];

const USAGE: &str = "usage: mtcp_restart [--stderr-fd N] [--fail-fd N] [--fail-kill PID] [--region FD:DEV:INODE ...]\n\
                    [--base FD ...] --fd N\n\
  Restores one dmtcp checkpoint image, read from file descriptor N, into this process.\n\
  --stderr-fd: where messages go (closed before the program runs again).\n\
  --fail-fd: on failure, a failure record is written there (closed like --stderr-fd).\n\
  --fail-kill: on failure, SIGKILL to PID first (-1: every process of the pid namespace).\n\
  --region: the memfd at FD stands for the shared memory object (DEV, INODE) of the image.\n\
  --base: the older images of an incremental chain, oldest first (N is the newest).\n\
  It is run by dmtcp_restart; users call dmtcp_restart instead.\n";

/// Parses a decimal number.
fn parse_num(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 9 {
        return None;
    }
    let mut v = 0usize;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as usize;
    }
    Some(v)
}

/// A NUL-terminated string from the kernel's argument block.
fn cstr(p: *const u8) -> &'static [u8] {
    let mut n = 0;
    // SAFETY: `p` is one of argv's pointers, which the kernel terminates with a NUL; the
    // initial stack stays mapped until after argument parsing.
    #[allow(unsafe_code)]
    unsafe {
        while *p.add(n) != 0 {
            n += 1;
        }
        core::slice::from_raw_parts(p, n)
    }
}

/// A shared memory object `dmtcp_restart` made (`--region FD:DEV:INODE`): the memfd at `fd`
/// stands for the object the image names (dev, inode).
#[derive(Clone, Copy)]
pub struct Region {
    pub fd: usize,
    pub dev: u64,
    pub inode: u64,
}

pub const MAX_REGIONS: usize = 256;

/// The most older images of a chain (`--base`) one restore applies.
pub const MAX_BASES: usize = 1024;

pub struct Args {
    pub image_fd: usize,
    pub err_fd: usize,
    /// Where a failure is told (`--fail-fd`; usize::MAX: nowhere).
    pub fail_fd: usize,
    /// Who is killed on a failure (`--fail-kill`; 0: nobody).
    pub fail_kill: isize,
    pub regions: [Region; MAX_REGIONS],
    pub n_regions: usize,
    /// The chain's older images, oldest first (`--base`).
    pub bases: [usize; MAX_BASES],
    pub n_bases: usize,
}

/// Parses `FD:DEV:INODE` (decimal).
fn parse_region(s: &[u8]) -> Option<Region> {
    let mut f = s.split(|&c| c == b':');
    let fd = parse_num(f.next()?)?;
    let dev = parse_u64(f.next()?)?;
    let inode = parse_u64(f.next()?)?;
    if f.next().is_some() {
        return None;
    }
    Some(Region { fd, dev, inode })
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut v = 0u64;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(v)
}

/// # Safety
/// Called only by `_start` with the kernel's initial stack pointer.
#[allow(unsafe_code)]
pub unsafe extern "C" fn restorer_main(sp: *const usize) -> ! {
    // SAFETY: `sp` is the initial stack pointer: argc followed by argc argv pointers.
    #[allow(unsafe_code)]
    let (argc, argv) = unsafe { (*sp, sp.add(1) as *const *const u8) };
    let arg = |j: usize| -> &'static [u8] {
        // SAFETY: callers check j < argc, so argv[j] is a valid pointer.
        #[allow(unsafe_code)]
        cstr(unsafe { *argv.add(j) })
    };
    let mut err_fd = 2usize;
    let mut fail_fd = usize::MAX;
    let mut fail_kill = 0isize;
    let mut image_fd = None;
    let mut regions = [Region { fd: 0, dev: 0, inode: 0 }; MAX_REGIONS];
    let mut n_regions = 0;
    let mut bases = [0usize; MAX_BASES];
    let mut n_bases = 0;
    let mut i = 1;
    while i < argc {
        let a = arg(i);
        match a {
            b"--help" | b"-h" => {
                Out::new(1).s(USAGE);
                sys::exit(0);
            }
            b"--version" => {
                Out::new(1).s("mtcp_restart (dmtcp-rs) ").s(dmtcp_proto::VERSION).s("\n");
                sys::exit(0);
            }
            b"--base" => {
                let Some(v) = (i + 1 < argc).then(|| arg(i + 1)).and_then(parse_num) else {
                    Out::new(err_fd).s("mtcp_restart: option --base needs a file descriptor number\n").s(USAGE);
                    sys::exit(2);
                };
                if n_bases == MAX_BASES {
                    Out::new(err_fd).s("mtcp_restart: too many --base options\n");
                    sys::exit(2);
                }
                bases[n_bases] = v;
                n_bases += 1;
                i += 2;
            }
            b"--fail-kill" => {
                let v = (i + 1 < argc).then(|| arg(i + 1));
                let Some(pid) = v.and_then(|v| if v == b"-1" { Some(-1) } else { parse_num(v).map(|p| p as isize) })
                else {
                    Out::new(err_fd).s("mtcp_restart: option --fail-kill needs a pid or -1\n").s(USAGE);
                    sys::exit(2);
                };
                fail_kill = pid;
                i += 2;
            }
            b"--fd" | b"--stderr-fd" | b"--fail-fd" => {
                let Some(v) = (i + 1 < argc).then(|| arg(i + 1)).and_then(parse_num) else {
                    Out::new(err_fd).s("mtcp_restart: option ").b(a).s(" needs a file descriptor number\n").s(USAGE);
                    sys::exit(2);
                };
                if a == b"--stderr-fd" {
                    err_fd = v;
                } else if a == b"--fail-fd" {
                    fail_fd = v;
                } else {
                    image_fd = Some(v);
                }
                i += 2;
            }
            b"--region" => {
                let Some(r) = (i + 1 < argc).then(|| arg(i + 1)).and_then(parse_region) else {
                    Out::new(err_fd).s("mtcp_restart: option --region needs FD:DEV:INODE\n").s(USAGE);
                    sys::exit(2);
                };
                if n_regions == MAX_REGIONS {
                    Out::new(err_fd).s("mtcp_restart: too many --region options\n");
                    sys::exit(2);
                }
                regions[n_regions] = r;
                n_regions += 1;
                i += 2;
            }
            _ => {
                Out::new(err_fd).s("mtcp_restart: unexpected argument ").b(a).s("\n").s(USAGE);
                sys::exit(2);
            }
        }
    }
    let Some(image_fd) = image_fd else {
        Out::new(err_fd).s("mtcp_restart: no image given (--fd N)\n").s(USAGE);
        sys::exit(2);
    };
    restore::run(Args { image_fd, err_fd, fail_fd, fail_kill, regions, n_regions, bases, n_bases })
}

/// First code of a restored thread (see `arch::clone3_thread`).
pub extern "C" fn thread_entry(start: usize) -> ! {
    restore::thread_start(start)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    Out::new(2).s("mtcp_restart: internal error\n");
    restore::fail(70)
}
