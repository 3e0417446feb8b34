//! The client protocol codec: any bytes as a frame of commands never panic; whatever parses
//! re-encodes into valid JSON (a publication push built from a parsed `data` reads back with
//! the same data).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast::client_protocol::reply::{Publication, publication_push};
use ringcast::client_protocol::{Request, decode_commands};

fuzz_target!(|data: &[u8]| {
    let Ok(cmds) = decode_commands(data, 64) else {
        return;
    };
    for c in &cmds {
        let _ = c.has_keys_besides_id();
        if let Request::Publish(p) = c.request()
            && let Some(d) = p.data
        {
            let push = publication_push(
                &p.channel,
                &Publication {
                    data: d,
                    info: None,
                    offset: 0,
                },
            );
            let v: serde_json::Value = serde_json::from_slice(&push).expect("push is JSON");
            let want: serde_json::Value = serde_json::from_str(d.get()).expect("data is JSON");
            assert_eq!(v["push"]["pub"]["data"], want);
            assert_eq!(
                v["push"]["channel"].as_str().unwrap_or(""),
                p.channel.as_ref()
            );
        }
    }
});
