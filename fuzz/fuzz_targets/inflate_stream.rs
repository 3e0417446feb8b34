//! Streaming inflate (an inflater lent from a pool, compressed bytes inflated as they arrive)
//! against the buffered path (the whole compressed message, then `Message::inflate`): for
//! frames built from the input — fragments, RSV1, pings between them, payloads deflated by us
//! or raw bytes — cut into pieces of any size:
//! - streaming gives the same events whatever the cut, and errs or not the same way;
//! - when the buffered path finds no error and ends between messages, streaming gives exactly
//!   its events (it may err earlier inside a message the input leaves unfinished);
//! - when streaming errs, its events are a prefix of the buffered path's;
//! - every lent inflater is back in the pool at the end.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast::proto::deflate::{Deflater, Inflater};
use ringcast::proto::encode::write_client_frame;
use ringcast::proto::inflate_pool::InflaterPool;
use ringcast::proto::{Decoder, DecoderConfig, Event, OpCode, Role};

const LIMIT: u64 = 8192;

/// Events, whether it erred, whether the decoder ended between messages.
type Outcome = (Vec<(u8, Vec<u8>)>, bool, bool);

fn frames(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut deflater = Deflater::new(1);
    while let [flags, len, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (payload, more) = tail.split_at(n);
        rest = more;
        let op = match (flags >> 2) & 3 {
            0 => OpCode::Text,
            1 => OpCode::Binary,
            2 => OpCode::Continuation,
            _ => OpCode::Ping,
        };
        let mut z = Vec::new();
        let payload = if flags & 0x10 != 0 && deflater.compress(payload, 15, &mut z) {
            &z[..]
        } else {
            payload
        };
        let at = out.len();
        write_client_frame(
            &mut out,
            flags & 1 != 0 || op == OpCode::Ping,
            op,
            payload,
            [*flags, *len, 7, 9],
        );
        if flags & 2 != 0 {
            out[at] |= 0x40;
        }
    }
    out
}

fn summarise(ev: Event) -> (u8, Vec<u8>) {
    match ev {
        Event::Message(m) => (m.kind as u8, m.payload().to_vec()),
        Event::Ping(p) => (10, p.as_bytes().to_vec()),
        Event::Pong(p) => (11, p.as_bytes().to_vec()),
        Event::Close(p) => (12, p.as_bytes().to_vec()),
    }
}

fn run(bytes: &[u8], step: usize, pool: Option<&InflaterPool>) -> Outcome {
    let mut d = Decoder::new(DecoderConfig {
        role: Role::Server,
        max_frame_size: 4096,
        max_message_size: LIMIT,
    });
    match pool {
        Some(p) => d.inflate_with(p.clone()),
        None => d.allow_compression(),
    }
    let mut inflater = Inflater::default();
    let mut events = Vec::new();
    for piece in bytes.chunks(step) {
        let mut input = piece;
        loop {
            match d.decode(&mut input) {
                Ok(Some(Event::Message(m))) if m.compressed => {
                    assert!(
                        pool.is_none(),
                        "a pool with inflaters left never hands out compressed messages"
                    );
                    match m.inflate(&mut inflater, LIMIT) {
                        Ok((m, _)) => events.push(summarise(Event::Message(m))),
                        Err(_) => return (events, true, false),
                    }
                }
                Ok(Some(ev)) => events.push(summarise(ev)),
                Ok(None) => break,
                Err(_) => return (events, true, false),
            }
        }
    }
    (events, false, d.is_idle())
}

fuzz_target!(|input: &[u8]| {
    let Some((&ctl, data)) = input.split_first() else {
        return;
    };
    let step = ctl as usize + 1;
    let bytes = frames(data);
    let pool = InflaterPool::new(1);
    let whole = run(&bytes, bytes.len().max(1), Some(&pool));
    let cut = run(&bytes, step, Some(&pool));
    assert_eq!(
        whole, cut,
        "split into pieces of {step} changed the streaming outcome"
    );
    assert_eq!(pool.lent(), 0, "an inflater was not given back");
    let buffered = run(&bytes, bytes.len().max(1), None);
    if !buffered.1 && buffered.2 {
        assert_eq!(
            whole, buffered,
            "streaming differs from buffered on a stream without errors"
        );
    }
    if whole.1 {
        assert!(
            buffered.0.starts_with(&whole.0),
            "streaming events are not a prefix of buffered ones"
        );
    }
});
