//! Replies and pushes the server sends, appended to one output buffer as a newline-delimited
//! batch (the runtime sends the batch as one text frame).
//!
//! Field names and the omission of empty fields follow Centrifugo's JSON encoding; `data`,
//! `info`, `conn_info` and `chan_info` are raw JSON copied as the client or backend gave it.

use serde::Serialize;
use serde_json::value::RawValue;

use super::codes::ClientError;

/// The publisher of a publication, or a member of presence (borrowed: built where it is
/// encoded, never stored twice).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ClientInfo<'a> {
    pub user: &'a str,
    pub client: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn_info: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chan_info: Option<&'a RawValue>,
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &u64) -> bool {
    *n == 0
}
fn is_zero32(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Default, Serialize)]
pub struct ConnectResult<'a> {
    pub client: &'a str,
    pub version: &'a str,
    #[serde(skip_serializing_if = "is_false")]
    pub expires: bool,
    #[serde(skip_serializing_if = "is_zero32")]
    pub ttl: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub subs: std::collections::BTreeMap<&'a str, SubscribeResult<'a>>,
    #[serde(skip_serializing_if = "is_zero32")]
    pub ping: u32,
    #[serde(skip_serializing_if = "is_false")]
    pub pong: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct SubscribeResult<'a> {
    #[serde(skip_serializing_if = "is_false")]
    pub expires: bool,
    #[serde(skip_serializing_if = "is_zero32")]
    pub ttl: u32,
    #[serde(skip_serializing_if = "is_false")]
    pub recoverable: bool,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub epoch: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub publications: &'a [&'a RawValue],
    #[serde(skip_serializing_if = "is_false")]
    pub recovered: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub offset: u64,
    #[serde(skip_serializing_if = "is_false")]
    pub positioned: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "is_false")]
    pub was_recovering: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct RefreshResult<'a> {
    pub client: &'a str,
    pub version: &'a str,
    #[serde(skip_serializing_if = "is_false")]
    pub expires: bool,
    #[serde(skip_serializing_if = "is_zero32")]
    pub ttl: u32,
}

#[derive(Debug, Default, Serialize)]
pub struct ExpiresResult {
    #[serde(skip_serializing_if = "is_false")]
    pub expires: bool,
    #[serde(skip_serializing_if = "is_zero32")]
    pub ttl: u32,
}

#[derive(Debug, Default, Serialize)]
pub struct HistoryResult<'a> {
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub publications: &'a [&'a RawValue],
    #[serde(skip_serializing_if = "str::is_empty")]
    pub epoch: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    pub offset: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct PresenceResult<'a> {
    pub presence: std::collections::BTreeMap<&'a str, ClientInfo<'a>>,
}

#[derive(Debug, Default, Serialize)]
pub struct PresenceStatsResult {
    pub num_clients: u32,
    pub num_users: u32,
}

#[derive(Debug, Default, Serialize)]
pub struct RpcResult<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a RawValue>,
}

/// `{}`: the result of `unsubscribe`, `publish`, `ping`.
#[derive(Debug, Default, Serialize)]
pub struct EmptyResult {}

#[derive(Serialize)]
struct Reply<'a, T: Serialize> {
    id: u32,
    #[serde(flatten)]
    result: Keyed<'a, T>,
}

/// `{"<key>": value}` without a map allocation.
struct Keyed<'a, T>(&'a str, &'a T);

impl<T: Serialize> Serialize for Keyed<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(self.0, self.1)?;
        m.end()
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: u32,
    message: &'a str,
    #[serde(skip_serializing_if = "is_false")]
    temporary: bool,
}

/// An output batch under construction: messages separated by exactly one `\n`.
#[derive(Debug, Default)]
pub struct Batch {
    buf: Vec<u8>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// The batch so far, leaving this one empty.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    fn start(&mut self) -> &mut Vec<u8> {
        if !self.buf.is_empty() {
            self.buf.push(b'\n');
        }
        &mut self.buf
    }

    /// `{"id":N,"<key>":result}`.
    pub fn reply<T: Serialize>(&mut self, id: u32, key: &str, result: &T) {
        let r = Reply {
            id,
            result: Keyed(key, result),
        };
        serde_json::to_writer(self.start(), &r).expect("serialising to a Vec cannot fail");
    }

    /// `{"id":N,"error":{"code":C,"message":"…"}}`.
    pub fn error(&mut self, id: u32, e: &ClientError) {
        let body = ErrorBody {
            code: e.code,
            message: &e.message,
            temporary: e.temporary,
        };
        self.reply(id, "error", &body);
    }

    /// The server's ping: an empty reply `{}`.
    pub fn ping(&mut self) {
        self.start().extend_from_slice(b"{}");
    }

    /// `{"push":{"channel":C,"<key>":body}}`.
    pub fn push<T: Serialize>(&mut self, channel: &str, key: &str, body: &T) {
        write_push(self.start(), channel, key, body);
    }
}

#[derive(Serialize)]
struct PushEnvelope<'a, T: Serialize> {
    push: PushBody<'a, T>,
}

#[derive(Serialize)]
struct PushBody<'a, T: Serialize> {
    #[serde(skip_serializing_if = "str::is_empty")]
    channel: &'a str,
    #[serde(flatten)]
    body: Keyed<'a, T>,
}

fn write_push<T: Serialize>(out: &mut Vec<u8>, channel: &str, key: &str, body: &T) {
    let p = PushEnvelope {
        push: PushBody {
            channel,
            body: Keyed(key, body),
        },
    };
    serde_json::to_writer(out, &p).expect("serialising to a Vec cannot fail");
}

/// A publication as it travels in `pub` pushes and history.
#[derive(Debug, Serialize)]
pub struct Publication<'a> {
    pub data: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<&'a ClientInfo<'a>>,
    #[serde(skip_serializing_if = "is_zero")]
    pub offset: u64,
}

/// The `pub` push of one publication, encoded once and shared by every subscriber.
pub fn publication_push(channel: &str, publication: &Publication<'_>) -> Vec<u8> {
    publication_push_with_range(channel, publication).0
}

/// `{"push":{"channel":<channel>,"pub":` — what a publication object follows.
fn pub_push_head(out: &mut Vec<u8>, channel: &str) {
    out.extend_from_slice(b"{\"push\":{\"channel\":");
    serde_json::to_writer(&mut *out, channel).expect("serialising to a Vec cannot fail");
    out.extend_from_slice(b",\"pub\":");
}

/// Appends the `pub` push around an already encoded publication object (one from another
/// node) to `out`.
pub fn write_publication_push_around(out: &mut Vec<u8>, channel: &str, publication: &[u8]) {
    pub_push_head(out, channel);
    out.extend_from_slice(publication);
    out.extend_from_slice(b"}}");
}

/// The `pub` push and where the publication object sits in it (history keeps that slice of
/// the frame subscribers got, instead of a second copy).
pub fn publication_push_with_range(
    channel: &str,
    publication: &Publication<'_>,
) -> (Vec<u8>, std::ops::Range<usize>) {
    let mut out = Vec::with_capacity(64 + channel.len() + publication.data.get().len());
    let range = write_publication_push(&mut out, channel, publication);
    (out, range)
}

/// Appends the `pub` push to `out`; where the publication object sits in `out`.
pub fn write_publication_push(
    out: &mut Vec<u8>,
    channel: &str,
    publication: &Publication<'_>,
) -> std::ops::Range<usize> {
    pub_push_head(out, channel);
    let start = out.len();
    serde_json::to_writer(&mut *out, publication).expect("serialising to a Vec cannot fail");
    let end = out.len();
    out.extend_from_slice(b"}}");
    start..end
}

#[derive(Serialize)]
pub struct UnsubscribePush<'a> {
    pub code: u32,
    pub reason: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn replies_batch_with_single_newlines() {
        let mut b = Batch::default();
        b.reply(1, "publish", &EmptyResult {});
        b.error(2, &ClientError::PERMISSION_DENIED);
        b.ping();
        let text = String::from_utf8(b.take()).unwrap();
        assert_eq!(
            text,
            "{\"id\":1,\"publish\":{}}\n{\"id\":2,\"error\":{\"code\":103,\"message\":\"permission denied\"}}\n{}"
        );
        assert!(b.is_empty());
    }

    #[test]
    fn connect_result_omits_empty_fields() {
        let mut b = Batch::default();
        b.reply(
            1,
            "connect",
            &ConnectResult {
                client: "c1",
                version: "0.1.0",
                ping: 25,
                pong: true,
                ..Default::default()
            },
        );
        assert_eq!(
            String::from_utf8(b.take()).unwrap(),
            r#"{"id":1,"connect":{"client":"c1","version":"0.1.0","ping":25,"pong":true}}"#
        );
    }

    #[test]
    fn publication_range_is_the_pub_object() {
        let data = raw(r#"[1,2]"#);
        let p = Publication {
            data: &data,
            info: None,
            offset: 7,
        };
        let (frame, r) = publication_push_with_range("a\"b", &p);
        assert_eq!(&frame[r], br#"{"data":[1,2],"offset":7}"#);
        let v: serde_json::Value = serde_json::from_slice(&frame).unwrap();
        assert_eq!(v["push"]["channel"], "a\"b");
    }

    #[test]
    fn publication_push_copies_data_verbatim() {
        let data = raw(r#"{"text": "hi \u00e9"}"#);
        let conn_info = raw(r#"{"name":"Alice"}"#);
        let info = ClientInfo {
            user: "alice",
            client: "c1",
            conn_info: Some(&conn_info),
            chan_info: None,
        };
        let frame = publication_push(
            "chat:a",
            &Publication {
                data: &data,
                info: Some(&info),
                offset: 0,
            },
        );
        assert_eq!(
            String::from_utf8(frame).unwrap(),
            r#"{"push":{"channel":"chat:a","pub":{"data":{"text": "hi \u00e9"},"info":{"user":"alice","client":"c1","conn_info":{"name":"Alice"}}}}}"#
        );
    }
}
