//! The image checksum: a 64-bit checksum of a byte stream, computed as it streams. Its value is
//! part of the format (every stored image carries one), so the known-answer tests below pin it:
//! a change that alters any of them makes every image on disk unreadable.
use crate::le::get_u64;

pub const CHECKSUM_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// Incremental 64-bit checksum of a byte stream, fast enough to run over every byte of an
/// image as it is written (four independent multiply-rotate lanes over 32-byte blocks). Not
/// cryptographic: it catches corruption and truncation, not tampering.
#[derive(Clone, Copy, Debug)]
pub struct Checksum {
    lanes: [u64; 4],
    tail: [u8; 32],
    tail_len: usize,
    total: u64,
}

const P1: u64 = 0x9e37_79b1_85eb_ca87;
const P2: u64 = 0xc2b2_ae3d_27d4_eb4f;

#[inline(always)]
fn round(acc: u64, w: u64) -> u64 {
    (acc ^ w.wrapping_mul(P2)).rotate_left(31).wrapping_mul(P1)
}

impl Checksum {
    pub const fn new(seed: u64) -> Checksum {
        Checksum { lanes: [seed, seed ^ P1, seed ^ P2, seed.wrapping_add(P1)], tail: [0; 32], tail_len: 0, total: 0 }
    }

    fn block(&mut self, b: &[u8]) {
        for (i, lane) in self.lanes.iter_mut().enumerate() {
            *lane = round(*lane, get_u64(b, i * 8));
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.total = self.total.wrapping_add(data.len() as u64);
        if self.tail_len > 0 {
            let n = core::cmp::min(32 - self.tail_len, data.len());
            self.tail[self.tail_len..self.tail_len + n].copy_from_slice(&data[..n]);
            self.tail_len += n;
            data = &data[n..];
            if self.tail_len < 32 {
                return;
            }
            let t = self.tail;
            self.block(&t);
            self.tail_len = 0;
        }
        let mut chunks = data.chunks_exact(32);
        for c in &mut chunks {
            self.block(c);
        }
        let rest = chunks.remainder();
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
    }

    pub fn finish(&self) -> u64 {
        let mut h = self.lanes[0].rotate_left(1)
            ^ self.lanes[1].rotate_left(7)
            ^ self.lanes[2].rotate_left(12)
            ^ self.lanes[3].rotate_left(18);
        for &b in &self.tail[..self.tail_len] {
            h = round(h, u64::from(b));
        }
        h = round(h, self.total);
        h ^= h >> 29;
        h = h.wrapping_mul(P1);
        h ^ (h >> 32)
    }
}

pub fn checksum(seed: u64, data: &[u8]) -> u64 {
    let mut c = Checksum::new(seed);
    c.update(data);
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input of the known-answer tests: `len` bytes of a fixed pattern.
    fn pattern(len: usize) -> [u8; 1000] {
        let mut d = [0u8; 1000];
        for (i, b) in d.iter_mut().enumerate().take(len) {
            *b = (i * 7 + 3) as u8;
        }
        d
    }

    /// Values computed with the checksum as it was when version-2 images were first written
    /// (payloads/proto/src/image.rs before the image module split), so existing images stay
    /// readable.
    #[test]
    fn known_answers() {
        let p = pattern(1000);
        let kats: [(u64, &[u8], u64); 8] = [
            (CHECKSUM_SEED, b"", KAT[0]),
            (CHECKSUM_SEED, b"a", KAT[1]),
            (CHECKSUM_SEED, b"DMTCPIMG", KAT[2]),
            (CHECKSUM_SEED, &p[..31], KAT[3]),
            (CHECKSUM_SEED, &p[..32], KAT[4]),
            (CHECKSUM_SEED, &p[..33], KAT[5]),
            (CHECKSUM_SEED, &p[..1000], KAT[6]),
            (1, &p[..1000], KAT[7]),
        ];
        for (i, (seed, data, want)) in kats.iter().enumerate() {
            assert_eq!(checksum(*seed, data), *want, "known answer {i}");
        }
    }

    const KAT: [u64; 8] = [
        0xd40f_91cc_1207_bf2e,
        0x3e2b_b59c_922d_7b0f,
        0xc810_7be3_072d_4c43,
        0xde09_1d12_b4fd_1571,
        0xd012_648e_e33a_50b6,
        0x77e2_411f_b7b1_5912,
        0xe0f9_b953_dacb_8aa7,
        0xdfc3_2c65_1a81_92f6,
    ];

    #[test]
    fn known_answer_of_a_4_kib_zero_header_prefix() {
        // The checksum of a header's first 4088 bytes, all zero but the magic: what
        // `seal_header` writes for an empty header.
        let mut h = [0u8; 4088];
        h[..8].copy_from_slice(b"DMTCPIMG");
        assert_eq!(checksum(CHECKSUM_SEED, &h), KAT_HEADER);
    }

    const KAT_HEADER: u64 = 0x3f82_6b6f_f748_c8a4;

    #[test]
    fn checksum_is_incremental() {
        let data = pattern(1000);
        let whole = checksum(1, &data);
        for split in [0, 1, 31, 32, 33, 500, 999, 1000] {
            let mut c = Checksum::new(1);
            c.update(&data[..split]);
            c.update(&data[split..]);
            assert_eq!(c.finish(), whole, "split {split}");
        }
        // Byte by byte, too.
        let mut c = Checksum::new(1);
        for b in data.chunks(1) {
            c.update(b);
        }
        assert_eq!(c.finish(), whole);
    }

    #[test]
    fn checksum_sees_every_bit_length_and_seed() {
        let data = pattern(1000);
        let whole = checksum(1, &data);
        for i in [0, 1, 31, 32, 500, 968, 999] {
            for bit in [0, 7] {
                let mut other = data;
                other[i] ^= 1 << bit;
                assert_ne!(checksum(1, &other), whole, "byte {i} bit {bit}");
            }
        }
        assert_ne!(checksum(1, &data[..999]), whole);
        assert_ne!(checksum(2, &data), whole);
        // Trailing zeros count (the length is mixed in).
        assert_ne!(checksum(1, &[0u8; 64]), checksum(1, &[0u8; 65]));
    }

    extern crate std;

    /// Throughput of the image checksum over 1 GiB (run with `--ignored --nocapture`), beside
    /// a table-driven CRC32C (slicing by 8, as a reader without SSE4.2 would run it).
    #[test]
    #[ignore]
    fn speed_on_1_gib() {
        use std::time::Instant;
        let buf: std::vec::Vec<u8> = (0..1usize << 20).map(|i| (i * 131 + (i >> 9)) as u8).collect();
        let rounds = 1024;
        let t = Instant::now();
        let mut c = Checksum::new(CHECKSUM_SEED);
        for _ in 0..rounds {
            c.update(core::hint::black_box(&buf));
        }
        let v = c.finish();
        let ours = t.elapsed().as_secs_f64();
        let tables = crc32c_tables();
        let t = Instant::now();
        let mut crc = !0u32;
        for _ in 0..rounds {
            crc = crc32c_update(&tables, crc, core::hint::black_box(&buf));
        }
        let crc_s = t.elapsed().as_secs_f64();
        let mb = (rounds << 20) as f64 / 1e6;
        std::println!(
            "image checksum: {:.0} MB/s ({v:#x}); crc32c slicing-by-8: {:.0} MB/s ({crc:#x})",
            mb / ours,
            mb / crc_s
        );
    }

    fn crc32c_tables() -> std::boxed::Box<[[u32; 256]; 8]> {
        let mut t = std::boxed::Box::new([[0u32; 256]; 8]);
        for i in 0..256u32 {
            let mut c = i;
            for _ in 0..8 {
                c = if c & 1 != 0 { (c >> 1) ^ 0x82f6_3b78 } else { c >> 1 };
            }
            t[0][i as usize] = c;
        }
        for i in 0..256 {
            for k in 1..8 {
                let p = t[k - 1][i];
                t[k][i] = (p >> 8) ^ t[0][(p & 0xff) as usize];
            }
        }
        t
    }

    fn crc32c_update(t: &[[u32; 256]; 8], mut crc: u32, data: &[u8]) -> u32 {
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            let lo = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            let hi = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
            crc = t[7][(lo & 0xff) as usize]
                ^ t[6][((lo >> 8) & 0xff) as usize]
                ^ t[5][((lo >> 16) & 0xff) as usize]
                ^ t[4][(lo >> 24) as usize]
                ^ t[3][(hi & 0xff) as usize]
                ^ t[2][((hi >> 8) & 0xff) as usize]
                ^ t[1][((hi >> 16) & 0xff) as usize]
                ^ t[0][(hi >> 24) as usize];
        }
        for &b in chunks.remainder() {
            crc = (crc >> 8) ^ t[0][((crc ^ u32::from(b)) & 0xff) as usize];
        }
        crc
    }

    #[test]
    fn crc32c_of_the_bench_is_the_standard_one() {
        // "123456789" -> 0xe3069283 (the CRC32C check value), so the figure compared is real.
        let t = crc32c_tables();
        assert_eq!(!crc32c_update(&t, !0, b"123456789"), 0xe306_9283);
    }
}
