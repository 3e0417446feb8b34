//! loadgen's client side of the Centrifugo client protocol v2 (JSON): the `connect` +
//! `subscribe` commands, `publish` commands that carry a load message (base64 in a JSON string),
//! and reading what the server sends back (publications, replies, pings) out of text frames.
//! Sans-io: the caller moves the bytes.

use std::cell::Cell;

use base64::Engine;
use serde::Deserialize;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Id of the `connect` command; `subscribe` is 2; publishes count up from 3.
const CONNECT_ID: u32 = 1;
const SUBSCRIBE_ID: u32 = 2;

/// A client's progress through connect + subscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    Subscribed,
    /// The server answered connect or subscribe with this error code.
    Refused(u32),
}

/// A connection token for user `loadgen-<client>` (HS256), valid for a day.
pub fn token(secret: &str, client: usize) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = serde_json::json!({"sub": format!("loadgen-{client}"), "exp": now + 86_400});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing cannot fail")
}

/// The first frame: `connect` (with the token, if any) and `subscribe`, newline-delimited.
pub fn hello(token: Option<&str>, channel: &str) -> String {
    let connect = match token {
        Some(t) => {
            serde_json::json!({"id": CONNECT_ID, "connect": {"token": t, "name": "loadgen"}})
        }
        None => serde_json::json!({"id": CONNECT_ID, "connect": {"name": "loadgen"}}),
    };
    let subscribe = serde_json::json!({"id": SUBSCRIBE_ID, "subscribe": {"channel": channel}});
    format!("{connect}\n{subscribe}")
}

/// `{"id":N,"publish":{"channel":C,"data":"<base64 of payload>"}}` into `out` (cleared first).
/// `channel` must need no JSON escaping (loadgen's channel names are URL path characters).
pub fn publish(id: u32, channel: &str, payload: &[u8], out: &mut Vec<u8>) {
    out.clear();
    use std::io::Write;
    // No allocation per command: the id is formatted straight into the buffer.
    write!(out, "{{\"id\":{id},\"publish\":").expect("into a Vec");
    append_publish_body(channel, payload, out);
    out.push(b'}');
}

/// The server API's publish body `{"channel":C,"data":"<base64 of payload>"}` into `out`
/// (cleared first): the same publication the `publish` command carries.
pub fn publish_body(channel: &str, payload: &[u8], out: &mut Vec<u8>) {
    out.clear();
    append_publish_body(channel, payload, out);
}

fn append_publish_body(channel: &str, payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"channel\":\"");
    out.extend_from_slice(channel.as_bytes());
    out.extend_from_slice(b"\",\"data\":\"");
    let start = out.len();
    out.resize(
        start + base64::encoded_len(payload.len(), true).expect("small"),
        0,
    );
    let n = B64
        .encode_slice(payload, &mut out[start..])
        .expect("sized above");
    out.truncate(start + n);
    out.extend_from_slice(b"\"}");
}

/// The next publish command id (never 0, 1 or 2).
pub fn next_id(seq: u64) -> u32 {
    (seq % (u32::MAX as u64 - 3)) as u32 + 3
}

#[derive(Deserialize)]
struct Reply<'a> {
    #[serde(default)]
    id: u32,
    #[serde(borrow, default)]
    push: Option<Push<'a>>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct Push<'a> {
    #[serde(borrow, default, rename = "pub")]
    publication: Option<Pub<'a>>,
}

#[derive(Deserialize)]
struct Pub<'a> {
    #[serde(borrow)]
    data: &'a str,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: u32,
}

/// What a frame from the server meant.
pub enum Incoming<'a> {
    /// A publication's decoded payload.
    Publication(&'a [u8]),
    /// An error reply to a publish (code).
    PublishError(u32),
    /// The server's ping: answer with `{}`.
    Ping,
    /// Something loadgen did not expect (not JSON, not base64 data).
    Garbage,
}

/// One client's protocol state.
pub struct Session {
    state: Cell<State>,
    decoded: std::cell::RefCell<Vec<u8>>,
}

impl Default for Session {
    fn default() -> Self {
        Self {
            state: Cell::new(State::Pending),
            decoded: std::cell::RefCell::new(Vec::with_capacity(1024)),
        }
    }
}

impl Session {
    pub fn state(&self) -> State {
        self.state.get()
    }

    /// Reads one text frame (several newline-delimited messages) and calls `on` for each thing
    /// that matters to the load run.
    pub fn on_frame(&self, frame: &[u8], mut on: impl FnMut(Incoming<'_>)) {
        for line in frame.split(|&b| b == b'\n') {
            if line == b"{}" {
                on(Incoming::Ping);
                continue;
            }
            let Ok(r) = serde_json::from_slice::<Reply<'_>>(line) else {
                on(Incoming::Garbage);
                continue;
            };
            if let Some(Push {
                publication: Some(p),
            }) = r.push
            {
                let mut buf = self.decoded.borrow_mut();
                buf.resize(p.data.len(), 0);
                match B64.decode_slice(p.data.as_bytes(), &mut buf[..]) {
                    Ok(n) => on(Incoming::Publication(&buf[..n])),
                    Err(_) => on(Incoming::Garbage),
                }
                continue;
            }
            match (r.id, r.error) {
                (CONNECT_ID | SUBSCRIBE_ID, Some(e)) => self.state.set(State::Refused(e.code)),
                (SUBSCRIBE_ID, None) if self.state.get() == State::Pending => {
                    self.state.set(State::Subscribed);
                }
                (_, Some(e)) => on(Incoming::PublishError(e.code)),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_round_trips_through_a_pub_push() {
        let payload: Vec<u8> = (0..=255u8).collect();
        let mut cmd = Vec::new();
        publish(7, "bench", &payload, &mut cmd);
        let v: serde_json::Value = serde_json::from_slice(&cmd).unwrap();
        assert_eq!(v["id"], 7);
        let data = v["publish"]["data"].as_str().unwrap().to_owned();
        let frame = format!(
            "{{\"id\":7,\"publish\":{{}}}}\n{{\"push\":{{\"channel\":\"bench\",\"pub\":{{\"data\":\"{data}\",\"info\":{{\"user\":\"u\",\"client\":\"c\"}}}}}}}}\n{{}}"
        );
        let s = Session::default();
        let mut got = Vec::new();
        let mut pings = 0;
        s.on_frame(frame.as_bytes(), |i| match i {
            Incoming::Publication(p) => got.push(p.to_vec()),
            Incoming::Ping => pings += 1,
            _ => panic!("unexpected"),
        });
        assert_eq!(got, vec![payload]);
        assert_eq!(pings, 1);
    }

    #[test]
    fn subscribe_reply_and_refusals_set_the_state() {
        let s = Session::default();
        s.on_frame(
            b"{\"id\":1,\"connect\":{\"client\":\"x\"}}\n{\"id\":2,\"subscribe\":{}}",
            |_| {},
        );
        assert_eq!(s.state(), State::Subscribed);
        let s = Session::default();
        s.on_frame(
            br#"{"id":2,"error":{"code":103,"message":"permission denied"}}"#,
            |_| {},
        );
        assert_eq!(s.state(), State::Refused(103));
        let mut codes = Vec::new();
        s.on_frame(
            br#"{"id":9,"error":{"code":111,"message":"too many requests"}}"#,
            |i| {
                if let Incoming::PublishError(c) = i {
                    codes.push(c)
                }
            },
        );
        assert_eq!(codes, vec![111]);
    }

    #[test]
    fn ids_skip_the_handshake_ids() {
        assert_eq!(next_id(0), 3);
        assert!(next_id(u64::MAX) >= 3);
    }
}
