//! Frame parser + message assembly: any bytes, cut anywhere, give the same events or the same
//! error as the bytes fed in one piece; never a panic. Every message turned into a server frame
//! reads back, through a client-role decoder, as the same payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast::proto::{Decoder, DecoderConfig, Event, ProtocolError, Role};

type Outcome = (Vec<(u8, Vec<u8>)>, Option<ProtocolError>);

fn run(role: Role, data: &[u8], step: usize) -> Outcome {
    let mut d = Decoder::new(DecoderConfig {
        role,
        max_frame_size: 4096,
        max_message_size: 8192,
    });
    let mut events = Vec::new();
    for piece in data.chunks(step) {
        let mut input = piece;
        loop {
            match d.decode(&mut input) {
                Ok(Some(ev)) => events.push(summarise(ev, role)),
                Ok(None) => break,
                Err(e) => return (events, Some(e)),
            }
        }
        assert!(input.is_empty());
    }
    (events, None)
}

fn summarise(ev: Event, role: Role) -> (u8, Vec<u8>) {
    match ev {
        Event::Message(m) => {
            let kind = m.kind as u8;
            let payload = m.payload().to_vec();
            if role == Role::Server {
                let frame = m.into_server_frame();
                let mut c = Decoder::new(DecoderConfig {
                    role: Role::Client,
                    max_frame_size: 1 << 20,
                    max_message_size: 1 << 20,
                });
                let mut input = &frame[..];
                match c.decode(&mut input) {
                    Ok(Some(Event::Message(back))) => assert_eq!(back.payload(), &payload[..]),
                    other => panic!("server frame did not read back: {other:?}"),
                }
            }
            (kind, payload)
        }
        Event::Ping(p) => (10, p.as_bytes().to_vec()),
        Event::Pong(p) => (11, p.as_bytes().to_vec()),
        Event::Close(p) => (12, p.as_bytes().to_vec()),
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&ctl, data)) = input.split_first() else {
        return;
    };
    let role = if ctl & 0x80 != 0 {
        Role::Client
    } else {
        Role::Server
    };
    let step = (ctl & 0x7f) as usize + 1;
    let whole = run(role, data, data.len().max(1));
    let cut = run(role, data, step);
    assert_eq!(
        whole, cut,
        "split into pieces of {step} changed the outcome"
    );
});
