//! Unmask variants agree: byte-wise reference, u64, AVX2, dispatch, fused copies, and a
//! `Masker` fed in two pieces, for any data, key, phase and split point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast::proto::mask::*;

fuzz_target!(|input: &[u8]| {
    if input.len() < 6 {
        return;
    }
    let key = [input[0], input[1], input[2], input[3]];
    let offset = input[4] as usize;
    let split = input[5] as usize;
    let data = &input[6..];

    let mut want = data.to_vec();
    apply_mask_bytewise(&mut want, key, offset);
    type InPlace = fn(&mut [u8], [u8; 4], usize);
    for f in [apply_mask_u64 as InPlace, apply_mask_avx2, apply_mask] {
        let mut got = data.to_vec();
        f(&mut got, key, offset);
        assert_eq!(got, want);
    }
    type Copying = fn(&[u8], &mut [u8], [u8; 4], usize);
    for f in [
        unmask_into_bytewise as Copying,
        unmask_into_u64,
        unmask_into_avx2,
        unmask_into,
    ] {
        let mut got = vec![0; data.len()];
        f(data, &mut got, key, offset);
        assert_eq!(got, want);
    }

    let mut whole = data.to_vec();
    apply_mask_bytewise(&mut whole, key, 0);
    let s = split.min(data.len());
    let mut m = Masker::new(key);
    let mut pieces = data.to_vec();
    let (a, b) = pieces.split_at_mut(s);
    m.apply(a);
    m.apply(b);
    assert_eq!(pieces, whole);
});
