//! Property tests: what the encoders write, the decoders read back, however the bytes are cut.

use proptest::prelude::*;
use ringcast::proto::encode::{server_frame, write_client_frame};
use ringcast::proto::frame::{Decoded, FrameConfig, decode_frame};
use ringcast::proto::mask::{Masker, apply_mask, apply_mask_bytewise, unmask_into};
use ringcast::proto::{DataKind, Decoder, DecoderConfig, Event, OpCode, Role};

const SIZES: [usize; 8] = [0, 1, 125, 126, 127, 65535, 65536, 70000];
const MAX: u64 = 1 << 20;

fn decoder(role: Role) -> Decoder {
    Decoder::new(DecoderConfig {
        role,
        max_frame_size: MAX,
        max_message_size: MAX,
    })
}

/// Feeds `bytes` cut at `cuts` (sorted, deduplicated offsets) and returns every event.
fn feed(d: &mut Decoder, bytes: &[u8], cuts: &[usize]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&bytes.len())) {
        let mut input = &bytes[start..end];
        while let Some(ev) = d.decode(&mut input).expect("valid stream") {
            events.push(ev);
        }
        assert!(input.is_empty());
        start = end;
    }
    events
}

fn cuts(len: usize, raw: &[usize]) -> Vec<usize> {
    let mut c: Vec<usize> = raw.iter().map(|r| r % (len + 1)).collect();
    c.sort_unstable();
    c.dedup();
    c
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Client frame → server decoder, at each boundary size, cut at random points.
    #[test]
    fn client_frames_round_trip(size_ix in 0..SIZES.len(), seed: u8, key: [u8; 4], raw_cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let p = payload(SIZES[size_ix], seed);
        let mut wire = Vec::new();
        write_client_frame(&mut wire, true, OpCode::Binary, &p, key);
        let events = feed(&mut decoder(Role::Server), &wire, &cuts(wire.len(), &raw_cuts));
        prop_assert_eq!(events.len(), 1);
        let Event::Message(m) = &events[0] else { panic!("not a message") };
        prop_assert_eq!(m.kind, DataKind::Binary);
        prop_assert_eq!(m.payload(), &p[..]);

        // The in-place parser agrees.
        let Decoded::Complete(f) = decode_frame(&mut wire, &FrameConfig::new(Role::Server, MAX)).unwrap() else { panic!() };
        prop_assert_eq!(&wire[f.payload], &p[..]);
    }

    /// Server frame → client decoder; the decoded message turns back into the same frame.
    #[test]
    fn server_frames_round_trip(size_ix in 0..SIZES.len(), seed: u8, raw_cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let p = payload(SIZES[size_ix], seed);
        let wire = server_frame(OpCode::Binary, &p);
        let mut events = feed(&mut decoder(Role::Client), &wire, &cuts(wire.len(), &raw_cuts));
        prop_assert_eq!(events.len(), 1);
        let Event::Message(m) = events.remove(0) else { panic!("not a message") };
        prop_assert_eq!(m.into_server_frame(), wire);
    }

    /// A fragmented Text message with pings in between, masked with fresh keys per frame.
    #[test]
    fn fragmented_messages_round_trip(text in "\\PC{0,300}", frag in 1usize..64, raw_cuts in prop::collection::vec(any::<usize>(), 0..16), key: [u8; 4]) {
        let bytes = text.as_bytes();
        let mut wire = Vec::new();
        let pieces: Vec<&[u8]> = if bytes.is_empty() { vec![&[][..]] } else { bytes.chunks(frag).collect() };
        for (i, piece) in pieces.iter().enumerate() {
            let op = if i == 0 { OpCode::Text } else { OpCode::Continuation };
            write_client_frame(&mut wire, i + 1 == pieces.len(), op, piece, [key[0], key[1], key[2], i as u8]);
            if i % 2 == 0 {
                write_client_frame(&mut wire, true, OpCode::Ping, b"p", key);
            }
        }
        let events = feed(&mut decoder(Role::Server), &wire, &cuts(wire.len(), &raw_cuts));
        let pings = events.iter().filter(|e| matches!(e, Event::Ping(_))).count();
        prop_assert_eq!(pings, pieces.len().div_ceil(2));
        let messages: Vec<&ringcast::proto::Message> =
            events.iter().filter_map(|e| if let Event::Message(m) = e { Some(m) } else { None }).collect();
        prop_assert_eq!(messages.len(), 1);
        prop_assert_eq!(messages[0].text(), Some(text.as_str()));
    }

    /// Large inputs: every masking path agrees with the byte-wise reference at any phase/split.
    #[test]
    fn masking_variants_agree(data in prop::collection::vec(any::<u8>(), 0..20_000), key: [u8; 4], offset in 0usize..4, split in any::<usize>()) {
        let mut want = data.clone();
        apply_mask_bytewise(&mut want, key, offset);
        let mut fast = data.clone();
        apply_mask(&mut fast, key, offset);
        prop_assert_eq!(&fast, &want);
        let mut copied = vec![0; data.len()];
        unmask_into(&data, &mut copied, key, offset);
        prop_assert_eq!(&copied, &want);

        let s = split % (data.len() + 1);
        let mut m = Masker::new(key);
        let mut pieces = data.clone();
        let (a, b) = pieces.split_at_mut(s);
        m.apply(a);
        m.apply(b);
        let mut whole = data.clone();
        apply_mask_bytewise(&mut whole, key, 0);
        prop_assert_eq!(pieces, whole);
    }
}

/// Down to one byte at a time, for every boundary size.
#[test]
fn every_size_byte_at_a_time() {
    for size in SIZES {
        let mut wire = Vec::new();
        write_client_frame(
            &mut wire,
            true,
            OpCode::Text,
            &vec![b'a'; size],
            [1, 2, 3, 4],
        );
        let mut d = decoder(Role::Server);
        let mut got = None;
        for b in wire.chunks(1) {
            let mut input = b;
            if let Some(ev) = d.decode(&mut input).unwrap() {
                assert!(got.is_none());
                got = Some(ev);
            }
        }
        let Some(Event::Message(m)) = got else {
            panic!("size {size}: no message")
        };
        assert_eq!(m.payload().len(), size);
        assert!(m.payload().iter().all(|&b| b == b'a'));
    }
}
