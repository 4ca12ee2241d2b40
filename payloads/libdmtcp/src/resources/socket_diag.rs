//! Asking the kernel about a UNIX socket through its socket diagnostics (NETLINK_SOCK_DIAG,
//! `unix_diag`): the inode of its peer (UNIX_DIAG_PEER, the only way to learn which socket is
//! the other end of a socketpair without wrapping `socketpair`), its shutdown bits and, for a
//! listener, its backlog. Unprivileged; the same kernel interface `ss -x` uses.
//!
//! Rules: the `resources` rules (no allocation: the request and the answer are on the stack).
use crate::sys::socket::sock_diag;
use core::ffi::c_int;

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_HDRLEN: usize = 16;
const UDIAG_SHOW_PEER: u32 = 4;
const UDIAG_SHOW_RQLEN: u32 = 0x10;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_RQLEN: u16 = 4;
const UNIX_DIAG_SHUTDOWN: u16 = 6;

/// What the kernel says about one UNIX socket.
#[derive(Clone, Copy, Default)]
pub struct UnixInfo {
    /// The peer's inode (0: none).
    pub peer: u64,
    /// `sk_shutdown`: RCV_SHUTDOWN (1) | SEND_SHUTDOWN (2).
    pub shutdown: u8,
    /// For a listener, the backlog it was given (`sk_max_ack_backlog`).
    pub backlog: u32,
}

/// The diagnostics of the UNIX socket with inode `ino`.
pub fn unix_info(ino: u64) -> Result<UnixInfo, c_int> {
    let mut req = [0u8; NLMSG_HDRLEN + 24];
    let len = req.len() as u32;
    req[0..4].copy_from_slice(&len.to_ne_bytes());
    req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    // struct unix_diag_req: family, protocol, pad, states, ino, show, cookie[2].
    req[16] = libc::AF_UNIX as u8;
    req[20..24].copy_from_slice(&u32::MAX.to_ne_bytes());
    req[24..28].copy_from_slice(&(ino as u32).to_ne_bytes());
    req[28..32].copy_from_slice(&(UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN).to_ne_bytes());
    req[32..40].fill(0xff); // INET_DIAG_NOCOOKIE
    let mut reply = [0u8; 512];
    let n = sock_diag(&req, &mut reply)?;
    parse(&reply[..n])
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_ne_bytes([b[off], b[off + 1]])
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Reads one `unix_diag_msg` answer and its attributes.
fn parse(b: &[u8]) -> Result<UnixInfo, c_int> {
    if b.len() < NLMSG_HDRLEN + 4 {
        return Err(libc::EPROTO);
    }
    let total = (u32_at(b, 0) as usize).min(b.len());
    if u16_at(b, 4) == NLMSG_ERROR {
        let e = u32_at(b, NLMSG_HDRLEN) as i32;
        return Err(if e < 0 { -e } else { libc::EPROTO });
    }
    if u16_at(b, 4) != SOCK_DIAG_BY_FAMILY || total < NLMSG_HDRLEN + 16 {
        return Err(libc::EPROTO);
    }
    let mut info = UnixInfo::default();
    let mut off = NLMSG_HDRLEN + 16;
    while off + 4 <= total {
        let len = u16_at(b, off) as usize;
        let ty = u16_at(b, off + 2);
        if len < 4 || off + len > total {
            break;
        }
        let data = &b[off + 4..off + len];
        match ty {
            UNIX_DIAG_PEER if data.len() >= 4 => info.peer = u32_at(data, 0).into(),
            UNIX_DIAG_RQLEN if data.len() >= 8 => info.backlog = u32_at(data, 4),
            UNIX_DIAG_SHUTDOWN if !data.is_empty() => info.shutdown = data[0] & 3,
            _ => {}
        }
        off += (len + 3) & !3;
    }
    Ok(info)
}
