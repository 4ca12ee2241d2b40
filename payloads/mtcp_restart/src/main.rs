//! `mtcp_restart`: the static, libc-free restorer that `dmtcp_restart` runs for each image.
//!
//! Rules for this crate: no libc, no allocation, no panics that unwind (panic = abort, and the
//! handler exits with a message). It must stay small and self-contained, because in the full
//! restore it moves itself out of the way of the program it brings back.
//!
//! This version starts, checks its arguments and reports that it cannot restore images yet.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

mod arch;
mod mem;

use arch::{syscall3, SYS_EXIT_GROUP, SYS_WRITE};

const USAGE: &[u8] = b"usage: mtcp_restart [--stderr-fd N] --fd N | IMAGE\n\
  Restores one dmtcp checkpoint image into this process. It is run by dmtcp_restart;\n\
  users call dmtcp_restart instead.\n";

fn write_all(fd: usize, mut s: &[u8]) {
    while !s.is_empty() {
        let n = syscall3(SYS_WRITE, fd, s.as_ptr() as usize, s.len());
        if n <= 0 {
            return;
        }
        s = &s[n as usize..];
    }
}

fn exit(code: usize) -> ! {
    loop {
        syscall3(SYS_EXIT_GROUP, code, 0, 0);
    }
}

/// Parses a decimal file descriptor.
fn parse_fd(s: &[u8]) -> Option<usize> {
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

/// Length of a NUL-terminated string from the kernel's argument block.
fn cstr(p: *const u8) -> &'static [u8] {
    let mut n = 0;
    // SAFETY: `p` is one of argv's pointers, which the kernel terminates with a NUL.
    #[allow(unsafe_code)]
    unsafe {
        while *p.add(n) != 0 {
            n += 1;
        }
        core::slice::from_raw_parts(p, n)
    }
}


pub extern "C" fn restorer_main(sp: *const usize) -> ! {
    // SAFETY: `sp` is the initial stack pointer: argc followed by argc argv pointers.
    #[allow(unsafe_code)]
    let (argc, argv) = unsafe { (*sp, sp.add(1) as *const *const u8) };
    let mut err_fd = 2usize;
    let mut have_image = false;
    let mut i = 1;
    while i < argc {
        // SAFETY: i < argc, so argv[i] is a valid pointer.
        #[allow(unsafe_code)]
        let a = cstr(unsafe { *argv.add(i) });
        let next = |j: usize| -> Option<&'static [u8]> {
            // SAFETY: j < argc checked before the read.
            #[allow(unsafe_code)]
            (j < argc).then(|| cstr(unsafe { *argv.add(j) }))
        };
        match a {
            b"--help" | b"-h" => {
                write_all(1, USAGE);
                exit(0);
            }
            b"--version" => {
                write_all(1, b"mtcp_restart (dmtcp) ");
                write_all(1, dmtcp_proto::VERSION.as_bytes());
                write_all(1, b"\n");
                exit(0);
            }
            b"--fd" | b"--stderr-fd" => {
                let Some(v) = next(i + 1).and_then(parse_fd) else {
                    write_all(err_fd, b"mtcp_restart: option ");
                    write_all(err_fd, a);
                    write_all(err_fd, b" needs a file descriptor number\n");
                    write_all(err_fd, USAGE);
                    exit(2);
                };
                if a == b"--stderr-fd" {
                    err_fd = v;
                } else {
                    have_image = true;
                }
                i += 2;
                continue;
            }
            _ if a.first() == Some(&b'-') => {
                write_all(err_fd, b"mtcp_restart: unknown option ");
                write_all(err_fd, a);
                write_all(err_fd, b"\n");
                write_all(err_fd, USAGE);
                exit(2);
            }
            _ => have_image = true,
        }
        i += 1;
    }
    if !have_image {
        write_all(err_fd, b"mtcp_restart: no image given\n");
        write_all(err_fd, USAGE);
        exit(2);
    }
    write_all(err_fd, b"mtcp_restart: this build cannot restore images yet\n");
    exit(3)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    write_all(2, b"mtcp_restart: internal error\n");
    exit(70)
}
