//! The computation's shared-data area: a file under the temporary folder that every process of
//! the computation maps (path in `DMTCP_SHARED_AREA`). Fixed-width fields, so a 32-bit and a
//! 64-bit process read the same layout.
//!
//! ```text
//!  off  size field
//!    0     8 magic "DMTCPSHM"
//!    8     4 version
//!   12     4 size of the area (SHARED_SIZE)
//!   16     8 dlsym_offset      (dlsym - dlinfo in the 64-bit libc; 0 = unknown)
//!   24     8 dlsym_offset_m32  (same in the 32-bit libc; 0 = unknown)
//!   32     8 coord_timestamp
//!   40     4 coord_port
//!   44     4 reserved
//!   48    64 coord_host
//!  112  1024 hijack_libs      (absolute path of the 64-bit libdmtcp.so)
//! 1136  1024 hijack_libs_m32  (absolute path of the 32-bit libdmtcp.so)
//! 2160  1024 ckpt_dir
//! 3184   912 reserved
//! 4096       end
//! ```
use crate::le::*;

pub const SHARED_MAGIC: [u8; 8] = *b"DMTCPSHM";
pub const SHARED_VERSION: u32 = 1;
pub const SHARED_SIZE: usize = 4096;

pub const OFF_DLSYM: usize = 16;
pub const OFF_DLSYM_M32: usize = 24;
pub const OFF_COORD_TS: usize = 32;
pub const OFF_COORD_PORT: usize = 40;
pub const OFF_COORD_HOST: usize = 48;
pub const LEN_COORD_HOST: usize = 64;
pub const OFF_HIJACK: usize = 112;
pub const OFF_HIJACK_M32: usize = 1136;
pub const LEN_PATH: usize = 1024;
pub const OFF_CKPT_DIR: usize = 2160;

/// Contents of the shared-data area, as the launcher writes it.
pub struct SharedInit<'a> {
    pub dlsym_offset: u64,
    pub dlsym_offset_m32: u64,
    pub coord_timestamp: u64,
    pub coord_port: u32,
    pub coord_host: &'a [u8],
    pub hijack_libs: &'a [u8],
    pub hijack_libs_m32: &'a [u8],
    pub ckpt_dir: &'a [u8],
}

pub fn encode(init: &SharedInit<'_>) -> [u8; SHARED_SIZE] {
    let mut b = [0u8; SHARED_SIZE];
    b[0..8].copy_from_slice(&SHARED_MAGIC);
    put_u32(&mut b, 8, SHARED_VERSION);
    put_u32(&mut b, 12, SHARED_SIZE as u32);
    put_u64(&mut b, OFF_DLSYM, init.dlsym_offset);
    put_u64(&mut b, OFF_DLSYM_M32, init.dlsym_offset_m32);
    put_u64(&mut b, OFF_COORD_TS, init.coord_timestamp);
    put_u32(&mut b, OFF_COORD_PORT, init.coord_port);
    put_str(&mut b, OFF_COORD_HOST, LEN_COORD_HOST, init.coord_host);
    put_str(&mut b, OFF_HIJACK, LEN_PATH, init.hijack_libs);
    put_str(&mut b, OFF_HIJACK_M32, LEN_PATH, init.hijack_libs_m32);
    put_str(&mut b, OFF_CKPT_DIR, LEN_PATH, init.ckpt_dir);
    b
}

/// True when `b` looks like a shared-data area this version understands.
pub fn valid(b: &[u8]) -> bool {
    b.len() >= SHARED_SIZE
        && b[0..8] == SHARED_MAGIC
        && get_u32(b, 8) == SHARED_VERSION
        && get_u32(b, 12) as usize == SHARED_SIZE
}

// The last field ends inside the area (checked when the crate is compiled).
const _: () = assert!(OFF_CKPT_DIR + LEN_PATH <= SHARED_SIZE);

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn layout_roundtrip() {
        let b = encode(&SharedInit {
            dlsym_offset: 0x380,
            dlsym_offset_m32: 0x3e0,
            coord_timestamp: 5,
            coord_port: 7779,
            coord_host: b"127.0.0.1",
            hijack_libs: b"/p/lib/dmtcp/libdmtcp.so",
            hijack_libs_m32: b"/p/lib/dmtcp/32/lib/dmtcp/libdmtcp.so",
            ckpt_dir: b"/tmp",
        });
        assert!(valid(&b));
        assert_eq!(get_u64(&b, OFF_DLSYM), 0x380);
        assert_eq!(get_u64(&b, OFF_DLSYM_M32), 0x3e0);
        assert_eq!(get_str(&b, OFF_HIJACK_M32, LEN_PATH), b"/p/lib/dmtcp/32/lib/dmtcp/libdmtcp.so");
    }
}
