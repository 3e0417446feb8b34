//! Payload masking (RFC 6455 §5.3): XOR with a 4-byte key, phase carried across pieces.
//!
//! Three implementations that must agree byte for byte (tests and a fuzz target prove it):
//! - [`apply_mask_bytewise`]: the obvious loop, the reference;
//! - [`apply_mask_u64`]: eight bytes per step in safe code, the default;
//! - `apply_mask_avx2`: 32 bytes per step, chosen at run time when the CPU has AVX2 and the
//!   payload is at least [`AVX2_MIN_LEN`] bytes (below that the u64 loop is as fast; see
//!   `results/proto-bench.md`).
//!
//! `offset` is the position of `buf[0]` inside the payload, so a payload that arrives in pieces
//! is unmasked piece by piece; [`Masker`] keeps that phase for you. The `*_into` variants
//! unmask while copying (one pass instead of copy + XOR), which is how the server moves a
//! client payload into the frame it will broadcast.

/// Payloads at least this long take the AVX2 path when the CPU has it.
pub const AVX2_MIN_LEN: usize = 1024;

#[inline]
fn rotated(key: [u8; 4], offset: usize) -> [u8; 4] {
    let r = offset & 3;
    [key[r], key[(r + 1) & 3], key[(r + 2) & 3], key[(r + 3) & 3]]
}

/// Reference implementation: one byte at a time.
pub fn apply_mask_bytewise(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(offset + i) & 3];
    }
}

/// Reference implementation of the fused copy: `dst[i] = src[i] ^ key[(offset + i) % 4]`.
///
/// # Panics
/// If `src` and `dst` differ in length.
pub fn unmask_into_bytewise(src: &[u8], dst: &mut [u8], key: [u8; 4], offset: usize) {
    assert_eq!(src.len(), dst.len(), "unmask_into: length mismatch");
    for (i, (d, s)) in dst.iter_mut().zip(src).enumerate() {
        *d = s ^ key[(offset + i) & 3];
    }
}

/// Word-at-a-time masking in safe code (the compiler also vectorises it with SSE2).
pub fn apply_mask_u64(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let k = rotated(key, offset);
    let word = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        let w = u64::from_ne_bytes(c.try_into().expect("chunk of 8")) ^ word;
        c.copy_from_slice(&w.to_ne_bytes());
    }
    // 8 is a multiple of 4: the tail starts at phase 0 of the rotated key.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= k[i & 3];
    }
}

/// Word-at-a-time fused copy.
///
/// # Panics
/// If `src` and `dst` differ in length.
pub fn unmask_into_u64(src: &[u8], dst: &mut [u8], key: [u8; 4], offset: usize) {
    assert_eq!(src.len(), dst.len(), "unmask_into: length mismatch");
    let k = rotated(key, offset);
    let word = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (dc, sc) in (&mut d).zip(&mut s) {
        let w = u64::from_ne_bytes(sc.try_into().expect("chunk of 8")) ^ word;
        dc.copy_from_slice(&w.to_ne_bytes());
    }
    for (i, (db, sb)) in d.into_remainder().iter_mut().zip(s.remainder()).enumerate() {
        *db = sb ^ k[i & 3];
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256i, _mm256_loadu_si256, _mm256_set1_epi32, _mm256_storeu_si256, _mm256_xor_si256,
    };

    /// XORs `len` bytes from `src` into `dst` with the (already rotated) key, 32 bytes per
    /// step; returns how many bytes it did (a multiple of 32). `src` may equal `dst`.
    ///
    /// # Safety
    /// The CPU must support AVX2; `src` must be valid for `len` reads and `dst` for `len`
    /// writes; the two ranges are either identical or do not overlap.
    #[target_feature(enable = "avx2")]
    pub unsafe fn xor_blocks(src: *const u8, dst: *mut u8, len: usize, k: [u8; 4]) -> usize {
        let key = _mm256_set1_epi32(i32::from_ne_bytes(k));
        let blocks = len / 32;
        for i in 0..blocks {
            // SAFETY: i * 32 + 32 <= len, inside both ranges by the caller's contract; the
            // unaligned load/store intrinsics accept any address.
            unsafe {
                let v = _mm256_loadu_si256(src.add(i * 32).cast::<__m256i>());
                _mm256_storeu_si256(dst.add(i * 32).cast::<__m256i>(), _mm256_xor_si256(v, key));
            }
        }
        blocks * 32
    }
}

/// AVX2 masking when the CPU has it, otherwise the u64 loop. Exposed for benchmarks and tests;
/// [`apply_mask`] is what callers use.
pub fn apply_mask_avx2(buf: &mut [u8], key: [u8; 4], offset: usize) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        let k = rotated(key, offset);
        let p = buf.as_mut_ptr();
        // SAFETY: AVX2 detected just above; src == dst == the whole of `buf`.
        let done = unsafe { avx2::xor_blocks(p, p, buf.len(), k) };
        // `done` is a multiple of 4, so the tail keeps the rotated key's phase 0.
        apply_mask_u64(&mut buf[done..], k, 0);
        return;
    }
    apply_mask_u64(buf, key, offset)
}

/// AVX2 fused copy when the CPU has it, otherwise the u64 loop.
///
/// # Panics
/// If `src` and `dst` differ in length.
pub fn unmask_into_avx2(src: &[u8], dst: &mut [u8], key: [u8; 4], offset: usize) {
    assert_eq!(src.len(), dst.len(), "unmask_into: length mismatch");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        let k = rotated(key, offset);
        // SAFETY: AVX2 detected just above; `src` and `dst` are distinct borrows of equal
        // length, so they are valid and cannot overlap.
        let done = unsafe { avx2::xor_blocks(src.as_ptr(), dst.as_mut_ptr(), src.len(), k) };
        unmask_into_u64(&src[done..], &mut dst[done..], k, 0);
        return;
    }
    unmask_into_u64(src, dst, key, offset)
}

/// Masks or unmasks `buf` in place; `offset` is `buf[0]`'s position in the payload.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    if buf.len() >= AVX2_MIN_LEN {
        apply_mask_avx2(buf, key, offset)
    } else {
        apply_mask_u64(buf, key, offset)
    }
}

/// Copies `src` into `dst` while unmasking; `offset` is `src[0]`'s position in the payload.
///
/// # Panics
/// If `src` and `dst` differ in length.
#[inline]
pub fn unmask_into(src: &[u8], dst: &mut [u8], key: [u8; 4], offset: usize) {
    if src.len() >= AVX2_MIN_LEN {
        unmask_into_avx2(src, dst, key, offset)
    } else {
        unmask_into_u64(src, dst, key, offset)
    }
}

/// A masking key with the position reached so far: unmasks a payload that arrives in pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Masker {
    key: [u8; 4],
    offset: usize,
}

impl Masker {
    pub fn new(key: [u8; 4]) -> Self {
        Self { key, offset: 0 }
    }

    /// Unmasks the next piece of the payload in place.
    #[inline]
    pub fn apply(&mut self, piece: &mut [u8]) {
        apply_mask(piece, self.key, self.offset);
        self.offset = (self.offset + piece.len()) & 3;
    }

    /// Unmasks the next piece of the payload while copying it into `dst` (same length).
    #[inline]
    pub fn copy_into(&mut self, src: &[u8], dst: &mut [u8]) {
        unmask_into(src, dst, self.key, self.offset);
        self.offset = (self.offset + src.len()) & 3;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type InPlace = fn(&mut [u8], [u8; 4], usize);
    type Copying = fn(&[u8], &mut [u8], [u8; 4], usize);
    const IN_PLACE: [(&str, InPlace); 3] = [
        ("u64", apply_mask_u64),
        ("avx2", apply_mask_avx2),
        ("dispatch", apply_mask),
    ];
    const COPYING: [(&str, Copying); 4] = [
        ("bytewise", unmask_into_bytewise),
        ("u64", unmask_into_u64),
        ("avx2", unmask_into_avx2),
        ("dispatch", unmask_into),
    ];

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 + 7) as u8).collect()
    }

    #[test]
    fn rfc_example_hello() {
        let mut p = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut p, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&p, b"Hello");
    }

    /// Every length 0..=300 at every alignment 0..8 and every phase 0..4, all variants.
    #[test]
    fn all_variants_agree_for_every_length_alignment_and_phase() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        let backing = pattern(300 + 8);
        for align in 0..8 {
            for len in 0..=300 {
                for phase in 0..4 {
                    let src = &backing[align..align + len];
                    let mut want = src.to_vec();
                    apply_mask_bytewise(&mut want, key, phase);
                    for (name, f) in IN_PLACE {
                        let mut buf = backing.clone();
                        f(&mut buf[align..align + len], key, phase);
                        assert_eq!(
                            &buf[align..align + len],
                            &want[..],
                            "{name} len {len} align {align} phase {phase}"
                        );
                        assert_eq!(
                            &buf[..align],
                            &backing[..align],
                            "{name} wrote before the slice"
                        );
                        assert_eq!(
                            &buf[align + len..],
                            &backing[align + len..],
                            "{name} wrote past the slice"
                        );
                    }
                    for (name, f) in COPYING {
                        let mut dst = vec![0u8; len + 8];
                        f(src, &mut dst[align..align + len], key, phase);
                        assert_eq!(
                            &dst[align..align + len],
                            &want[..],
                            "{name} copy len {len} align {align} phase {phase}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn masking_twice_restores_the_input() {
        let orig = pattern(4096 + 3);
        let mut buf = orig.clone();
        apply_mask(&mut buf, [1, 2, 3, 4], 1);
        assert_ne!(buf, orig);
        apply_mask(&mut buf, [1, 2, 3, 4], 1);
        assert_eq!(buf, orig);
    }

    #[test]
    fn masker_continues_across_pieces() {
        let key = [9, 8, 7, 6];
        let orig = pattern(2000);
        let mut want = orig.clone();
        apply_mask_bytewise(&mut want, key, 0);
        for split in [0, 1, 3, 5, 8, 513, 1999, 2000] {
            let mut m = Masker::new(key);
            let mut buf = orig.clone();
            let (a, b) = buf.split_at_mut(split);
            m.apply(a);
            m.apply(b);
            assert_eq!(buf, want, "in place, split at {split}");

            let mut m = Masker::new(key);
            let mut dst = vec![0; orig.len()];
            let (da, db) = dst.split_at_mut(split);
            m.copy_into(&orig[..split], da);
            m.copy_into(&orig[split..], db);
            assert_eq!(dst, want, "copy, split at {split}");
        }
    }

    #[test]
    #[should_panic(expected = "length mismatch")]
    fn copy_with_unequal_lengths_panics() {
        unmask_into(&[1, 2, 3], &mut [0; 2], [0; 4], 0);
    }
}
