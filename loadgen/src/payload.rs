//! The bytes every load message carries, and what a receiver learns from them.
//!
//! Layout (little endian): `"RCLG"` · sender id u32 · sequence u64 · planned send time u64
//! (ns since the run's epoch) · checksum u64 · filler up to `--size`. The checksum covers
//! everything but itself, so a corrupted byte anywhere is caught. [`SeqTracker`] turns the
//! sequence numbers one receiver sees from one sender into new / duplicate / late counts.
//! Pure code: no I/O, no clock.

pub const MAGIC: [u8; 4] = *b"RCLG";
pub const HEADER_LEN: usize = 32;

/// Fields of a load message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub sender: u32,
    pub seq: u64,
    pub planned_ns: u64,
}

fn mix(h: u64, w: u64) -> u64 {
    (h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29)
}

fn checksum(buf: &[u8]) -> u64 {
    let mut h = mix(0x5EED, u64::from_le_bytes(buf[0..8].try_into().expect("8")));
    h = mix(h, u64::from_le_bytes(buf[8..16].try_into().expect("8")));
    h = mix(h, u64::from_le_bytes(buf[16..24].try_into().expect("8")));
    let mut chunks = buf[HEADER_LEN..].chunks_exact(8);
    for c in &mut chunks {
        h = mix(h, u64::from_le_bytes(c.try_into().expect("8")));
    }
    for &b in chunks.remainder() {
        h = mix(h, b as u64);
    }
    mix(h, buf.len() as u64)
}

/// What fills a message after its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Filler {
    /// Bytes counting up from the sequence number.
    #[default]
    Ramp,
    /// JSON text like a chat feed's (records with the same keys): what compression is for.
    Json,
}

/// Records of a chat feed, cycled by [`Filler::Json`].
const JSON_FEED: &[u8] = br#"{"type":"message","room":"general","user":"alice","id":1842,"text":"Ping me when the deploy is done, the dashboard shows p99 at 12 ms again","mentions":["bob"],"reactions":{"thumbs_up":3,"eyes":1}},{"type":"message","room":"general","user":"bob","id":1843,"text":"Deploy is rolling out now, two of five nodes done","reply_to":1842,"reactions":{}},"#;

/// Writes a message of `size` bytes (at least [`HEADER_LEN`]) into `out` (cleared first).
pub fn encode(stamp: Stamp, size: usize, filler: Filler, out: &mut Vec<u8>) {
    let size = size.max(HEADER_LEN);
    out.clear();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&stamp.sender.to_le_bytes());
    out.extend_from_slice(&stamp.seq.to_le_bytes());
    out.extend_from_slice(&stamp.planned_ns.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    match filler {
        Filler::Ramp => {
            out.extend((0..size - HEADER_LEN).map(|i| (stamp.seq as usize).wrapping_add(i) as u8))
        }
        Filler::Json => {
            let start = stamp.seq as usize % JSON_FEED.len();
            out.extend((0..size - HEADER_LEN).map(|i| JSON_FEED[(start + i) % JSON_FEED.len()]));
        }
    }
    let c = checksum(out);
    out[24..32].copy_from_slice(&c.to_le_bytes());
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Not a load message (too short or wrong magic).
    Foreign,
    /// A load message whose checksum does not match.
    Corrupted,
}

pub fn decode(buf: &[u8]) -> Result<Stamp, DecodeError> {
    if buf.len() < HEADER_LEN || buf[0..4] != MAGIC {
        return Err(DecodeError::Foreign);
    }
    let stored = u64::from_le_bytes(buf[24..32].try_into().expect("8"));
    if stored != checksum(buf) {
        return Err(DecodeError::Corrupted);
    }
    Ok(Stamp {
        sender: u32::from_le_bytes(buf[4..8].try_into().expect("4")),
        seq: u64::from_le_bytes(buf[8..16].try_into().expect("8")),
        planned_ns: u64::from_le_bytes(buf[16..24].try_into().expect("8")),
    })
}

/// What one sequence number meant to a receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The next one, or later than every one seen (a gap, maybe lost, maybe late).
    InOrder,
    /// Earlier than the newest seen and not seen before: arrived out of order.
    Late,
    /// Seen before (within the last 64).
    Duplicate,
}

/// Sequence numbers from one sender, as seen by one receiver.
#[derive(Debug, Clone, Default)]
pub struct SeqTracker {
    /// One past the highest sequence number seen.
    next: u64,
    /// Bit i set: `next - 1 - i` was seen.
    window: u64,
    /// Distinct sequence numbers seen.
    pub unique: u64,
}

impl SeqTracker {
    pub fn observe(&mut self, seq: u64) -> Seen {
        if seq >= self.next {
            let shift = seq - self.next + 1;
            self.window = if shift >= 64 { 0 } else { self.window << shift };
            self.window |= 1;
            self.next = seq + 1;
            self.unique += 1;
            return Seen::InOrder;
        }
        let back = self.next - 1 - seq;
        if back >= 64 {
            // Too old to tell; counted as late (a duplicate this old is unlikely).
            self.unique += 1;
            return Seen::Late;
        }
        if self.window & (1 << back) != 0 {
            return Seen::Duplicate;
        }
        self.window |= 1 << back;
        self.unique += 1;
        Seen::Late
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_at_several_sizes() {
        let mut buf = Vec::new();
        for size in [0, 32, 33, 100, 1000] {
            let s = Stamp {
                sender: 7,
                seq: 123_456,
                planned_ns: 987_654_321,
            };
            for filler in [Filler::Ramp, Filler::Json] {
                encode(s, size, filler, &mut buf);
                assert_eq!(buf.len(), size.max(HEADER_LEN));
                assert_eq!(decode(&buf), Ok(s));
            }
        }
    }

    #[test]
    fn any_flipped_bit_is_caught() {
        let mut buf = Vec::new();
        encode(
            Stamp {
                sender: 1,
                seq: 2,
                planned_ns: 3,
            },
            100,
            Filler::Ramp,
            &mut buf,
        );
        for i in 4..buf.len() {
            for bit in 0..8 {
                let mut b = buf.clone();
                b[i] ^= 1 << bit;
                assert_eq!(
                    decode(&b),
                    Err(DecodeError::Corrupted),
                    "byte {i} bit {bit}"
                );
            }
        }
        let mut b = buf.clone();
        b[0] = b'X';
        assert_eq!(decode(&b), Err(DecodeError::Foreign));
        assert_eq!(decode(&buf[..31]), Err(DecodeError::Foreign));
    }

    #[test]
    fn tracker_tells_gaps_late_and_duplicates() {
        let mut t = SeqTracker::default();
        assert_eq!(t.observe(0), Seen::InOrder);
        assert_eq!(t.observe(1), Seen::InOrder);
        assert_eq!(t.observe(4), Seen::InOrder); // 2 and 3 missing for now
        assert_eq!(t.observe(3), Seen::Late);
        assert_eq!(t.observe(3), Seen::Duplicate);
        assert_eq!(t.observe(1), Seen::Duplicate);
        assert_eq!(t.unique, 4);
        // 2 never comes: sent 5, unique 4 → 1 lost.
        assert_eq!(t.observe(200), Seen::InOrder);
        assert_eq!(
            t.observe(100),
            Seen::Late,
            "beyond the window: counted late"
        );
        assert_eq!(t.unique, 6);
    }
}
