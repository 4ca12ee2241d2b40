//! Typed wrappers over the socket calls the `sockets` resource kind makes: socket options,
//! names, peeking at a receive queue, and the kernel's socket diagnostics over a
//! NETLINK_SOCK_DIAG socket (one request, one answer).
//!
//! Rules: the parent module's (no allocation, async-signal-safe; errors as errno values). Socket
//! addresses are passed as raw `sockaddr` bytes, so that the same code serves every family and
//! both architectures.
use super::{check, errno, Errno};
use core::ffi::c_int;

/// Room for any socket address (`sockaddr_storage`).
pub const ADDR_LEN: usize = 128;

pub fn socket(domain: c_int, ty: c_int, protocol: c_int) -> Result<c_int, Errno> {
    // SAFETY: plain system call without pointers.
    check(unsafe { libc::socket(domain, ty, protocol) })
}

/// `socketpair(AF_UNIX, ty)`.
pub fn socketpair(ty: c_int) -> Result<[c_int; 2], Errno> {
    let mut fds = [-1; 2];
    // SAFETY: socketpair writes two ints.
    check(unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()) })?;
    Ok(fds)
}

/// `getsockopt` into `buf`; returns the option's length.
pub fn getsockopt(fd: c_int, level: c_int, name: c_int, buf: &mut [u8]) -> Result<usize, Errno> {
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into buf and updates len.
    check(unsafe { libc::getsockopt(fd, level, name, buf.as_mut_ptr().cast(), &mut len) })?;
    Ok(len as usize)
}

/// An integer option.
pub fn getsockopt_int(fd: c_int, level: c_int, name: c_int) -> Result<c_int, Errno> {
    let mut b = [0u8; 4];
    getsockopt(fd, level, name, &mut b)?;
    Ok(c_int::from_ne_bytes(b))
}

pub fn setsockopt(fd: c_int, level: c_int, name: c_int, value: &[u8]) -> Result<(), Errno> {
    // SAFETY: the kernel reads value.len() bytes from value.
    check(unsafe { libc::setsockopt(fd, level, name, value.as_ptr().cast(), value.len() as libc::socklen_t) })
        .map(|_| ())
}

pub fn setsockopt_int(fd: c_int, level: c_int, name: c_int, v: c_int) -> Result<(), Errno> {
    setsockopt(fd, level, name, &v.to_ne_bytes())
}

/// The socket's own address (`getsockname`); returns its length.
pub fn sockname(fd: c_int, buf: &mut [u8; ADDR_LEN]) -> Result<usize, Errno> {
    let mut len = ADDR_LEN as libc::socklen_t;
    // SAFETY: the kernel writes at most ADDR_LEN bytes and updates len.
    check(unsafe { libc::getsockname(fd, buf.as_mut_ptr().cast(), &mut len) })?;
    Ok((len as usize).min(ADDR_LEN))
}

/// The peer's address (`getpeername`); ENOTCONN if not connected.
pub fn peername(fd: c_int, buf: &mut [u8; ADDR_LEN]) -> Result<usize, Errno> {
    let mut len = ADDR_LEN as libc::socklen_t;
    // SAFETY: as above.
    check(unsafe { libc::getpeername(fd, buf.as_mut_ptr().cast(), &mut len) })?;
    Ok((len as usize).min(ADDR_LEN))
}

pub fn bind(fd: c_int, addr: &[u8]) -> Result<(), Errno> {
    // SAFETY: the kernel reads addr.len() bytes of address.
    check(unsafe { libc::bind(fd, addr.as_ptr().cast(), addr.len() as libc::socklen_t) }).map(|_| ())
}

/// `connect`, retried on EINTR.
pub fn connect(fd: c_int, addr: &[u8]) -> Result<(), Errno> {
    loop {
        // SAFETY: as above.
        let r = unsafe { libc::connect(fd, addr.as_ptr().cast(), addr.len() as libc::socklen_t) };
        if r == 0 {
            return Ok(());
        }
        if errno() != libc::EINTR {
            return Err(errno());
        }
    }
}

pub fn listen(fd: c_int, backlog: c_int) -> Result<(), Errno> {
    // SAFETY: plain system call.
    check(unsafe { libc::listen(fd, backlog) }).map(|_| ())
}

/// `accept4(fd, NULL, NULL, SOCK_CLOEXEC)`.
pub fn accept(fd: c_int) -> Result<c_int, Errno> {
    // SAFETY: no address is asked for.
    check(unsafe { libc::accept4(fd, core::ptr::null_mut(), core::ptr::null_mut(), libc::SOCK_CLOEXEC) })
}

pub fn shutdown(fd: c_int, how: c_int) -> Result<(), Errno> {
    // SAFETY: plain system call.
    check(unsafe { libc::shutdown(fd, how) }).map(|_| ())
}

/// One `recv(fd, buf, flags)`, retried on EINTR.
pub fn recv(fd: c_int, buf: &mut [u8], flags: c_int) -> Result<usize, Errno> {
    loop {
        // SAFETY: buf is a valid writable slice of buf.len() bytes.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags) };
        if n >= 0 {
            return Ok(n as usize);
        }
        if errno() != libc::EINTR {
            return Err(errno());
        }
    }
}

/// One `send(fd, buf, flags | MSG_NOSIGNAL)`, retried on EINTR.
pub fn send(fd: c_int, buf: &[u8], flags: c_int) -> Result<usize, Errno> {
    loop {
        // SAFETY: buf is a valid readable slice of buf.len() bytes.
        let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), flags | libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(n as usize);
        }
        if errno() != libc::EINTR {
            return Err(errno());
        }
    }
}

/// One `sendto(fd, buf, flags | MSG_NOSIGNAL, addr)`, retried on EINTR.
pub fn send_to(fd: c_int, buf: &[u8], flags: c_int, addr: &[u8]) -> Result<usize, Errno> {
    loop {
        // SAFETY: buf and addr are valid readable slices of their lengths.
        let n = unsafe {
            libc::sendto(
                fd,
                buf.as_ptr().cast(),
                buf.len(),
                flags | libc::MSG_NOSIGNAL,
                addr.as_ptr().cast(),
                addr.len() as libc::socklen_t,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        if errno() != libc::EINTR {
            return Err(errno());
        }
    }
}

pub fn unlink(path: &core::ffi::CStr) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated.
    check(unsafe { libc::unlink(path.as_ptr()) }).map(|_| ())
}

/// Sends one request to the kernel's socket diagnostics (NETLINK_SOCK_DIAG) and reads one
/// answer into `reply`; returns its length. Unprivileged: a process may ask about sockets of
/// its own network namespace.
pub fn sock_diag(request: &[u8], reply: &mut [u8]) -> Result<usize, Errno> {
    const NETLINK_SOCK_DIAG: c_int = 4;
    let fd = socket(libc::AF_NETLINK, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, NETLINK_SOCK_DIAG)?;
    let r = send(fd, request, 0).and_then(|_| {
        // An answer is there at once or never: do not wait forever.
        match super::poll_one(fd, libc::POLLIN, 2000) {
            Ok(0) => Err(libc::ETIMEDOUT),
            Ok(_) => recv(fd, reply, 0),
            Err(e) => Err(e),
        }
    });
    super::close(fd);
    r
}

/// `poll(fds, timeout_ms)`, retried on EINTR; the number of entries with events (0: timeout).
pub fn poll_fds(fds: &mut [libc::pollfd], timeout_ms: c_int) -> Result<usize, Errno> {
    loop {
        // SAFETY: fds is a valid writable slice of fds.len() pollfd entries.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if r >= 0 {
            return Ok(r as usize);
        }
        if errno() != libc::EINTR {
            return Err(errno());
        }
    }
}

/// One `recvmsg(fd, buf, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC | extra)` with room for
/// ancillary data: the bytes peeked and how many file descriptors (SCM_RIGHTS) ride with
/// them. A peek installs those descriptors in this process: they are closed here at once.
pub fn peek_rights(fd: c_int, buf: &mut [u8], extra: c_int) -> Result<(usize, usize), Errno> {
    // Room for 253 descriptors (SCM_MAX_FD), aligned for cmsghdr.
    let mut control = [0u64; 136];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: an all-zero msghdr is valid (null name, no iov) before its fields are set.
    let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = core::mem::size_of_val(&control) as _;
    let flags = libc::MSG_PEEK | libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC | extra;
    let n = loop {
        // SAFETY: msg points at iov (buf.len() writable bytes) and control, both alive here.
        let n = unsafe { libc::recvmsg(fd, &mut msg, flags) };
        if n >= 0 {
            break n as usize;
        }
        if errno() != libc::EINTR {
            return Err(errno());
        }
    };
    let mut fds = 0;
    // SAFETY: the CMSG_* macros walk the control buffer the kernel filled, within
    // msg_controllen; each SCM_RIGHTS payload is an array of ints inside it.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c).cast::<c_int>();
                let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / core::mem::size_of::<c_int>();
                for i in 0..count {
                    libc::close(data.add(i).read_unaligned());
                }
                fds += count;
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n, fds))
}

/// The bytes a socket sent that its peer has not taken yet (SIOCOUTQ: for TCP not yet
/// acknowledged or not sent, for UNIX not yet read by the peer).
pub fn unsent_bytes(fd: c_int) -> Result<usize, Errno> {
    let mut n: c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int.
    check(unsafe { libc::ioctl(fd, libc::TIOCOUTQ as _, &mut n as *mut c_int) })?;
    Ok(n.max(0) as usize)
}
