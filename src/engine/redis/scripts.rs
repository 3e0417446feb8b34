//! The Lua scripts the Redis engine runs (each atomic in Redis), and the reading of their
//! replies. Keys as Centrifugo's: `<prefix>.stream.<ch>` (the history, entry id = offset),
//! `<prefix>.stream.meta.<ch>` (hash: `e` epoch, `s` top offset), `<prefix>.client.<ch>` (the
//! PUB/SUB channel), `<prefix>.presence.data.<ch>` / `.presence.expire.<ch>`.

use std::time::Instant;

use bytes::Bytes;

use super::super::{Stored, StreamPosition};
use super::conn::Script;
use super::resp::Value;

/// KEYS: stream, meta, pubsub channel. ARGV: publication object without offset (ends with
/// `}`), history size, history TTL (s), meta TTL (s), an epoch to use if the channel has none.
/// Returns {offset, epoch}.
const PUBLISH: &str = r#"
local epoch = redis.call('hget', KEYS[2], 'e')
if not epoch then
  epoch = ARGV[5]
  redis.call('hset', KEYS[2], 'e', epoch)
end
local top = redis.call('hincrby', KEYS[2], 's', 1)
redis.call('expire', KEYS[2], ARGV[4])
if top == 1 then
  redis.call('del', KEYS[1])
end
local body = string.sub(ARGV[1], 1, -2) .. ',"offset":' .. top .. '}'
redis.call('xadd', KEYS[1], 'MAXLEN', ARGV[2], top, 'd', body)
redis.call('expire', KEYS[1], ARGV[3])
redis.call('publish', KEYS[3], 'p' .. top .. ':' .. epoch .. ':' .. body)
return {top, epoch}
"#;

/// KEYS: stream, meta. ARGV: since (offset, or empty), limit, reverse (0/1), meta TTL (s), an
/// epoch to use if the channel has none. Returns {top, epoch, offset₁, publication₁, …}.
const HISTORY: &str = r#"
local epoch = redis.call('hget', KEYS[2], 'e')
if not epoch then
  epoch = ARGV[5]
  redis.call('hset', KEYS[2], 'e', epoch)
  redis.call('expire', KEYS[2], ARGV[4])
end
local top = tonumber(redis.call('hget', KEYS[2], 's') or '0')
local out = {top, epoch}
local limit = tonumber(ARGV[2])
if limit > 0 then
  local entries
  if ARGV[3] == '0' then
    local from = '-'
    if ARGV[1] ~= '' then from = '(' .. ARGV[1] end
    entries = redis.call('xrange', KEYS[1], from, '+', 'COUNT', limit)
  else
    local to = '+'
    if ARGV[1] ~= '' then to = '(' .. ARGV[1] end
    entries = redis.call('xrevrange', KEYS[1], to, '-', 'COUNT', limit)
  end
  for _, e in ipairs(entries) do
    local id = e[1]
    out[#out + 1] = tonumber(string.sub(id, 1, string.find(id, '-') - 1))
    out[#out + 1] = e[2][2]
  end
end
return out
"#;

/// KEYS: data hash, expiry zset. ARGV: client, entry, expire-at (unix s), TTL (s), most
/// entries per channel, now (unix s). Returns 1 if added (or refreshed), 0 at the bound.
const PRESENCE_ADD: &str = r#"
local expired = redis.call('zrangebyscore', KEYS[2], 0, ARGV[6])
for _, c in ipairs(expired) do redis.call('hdel', KEYS[1], c) end
if #expired > 0 then redis.call('zremrangebyscore', KEYS[2], 0, ARGV[6]) end
if redis.call('hexists', KEYS[1], ARGV[1]) == 0 and redis.call('hlen', KEYS[1]) >= tonumber(ARGV[5]) then
  return 0
end
redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
redis.call('zadd', KEYS[2], ARGV[3], ARGV[1])
redis.call('expire', KEYS[1], ARGV[4])
redis.call('expire', KEYS[2], ARGV[4])
return 1
"#;

/// KEYS: data hash, expiry zset. ARGV: now (unix s). Drops the expired, returns the entries.
const PRESENCE_GET: &str = r#"
local expired = redis.call('zrangebyscore', KEYS[2], 0, ARGV[1])
for _, c in ipairs(expired) do redis.call('hdel', KEYS[1], c) end
if #expired > 0 then redis.call('zremrangebyscore', KEYS[2], 0, ARGV[1]) end
return redis.call('hvals', KEYS[1])
"#;

/// KEYS: a kept set (hash). ARGV: key, value. Forgets the key only while it holds that value
/// (another node may have just replaced it).
const FORGET_IF: &str = r#"
if redis.call('hget', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('hdel', KEYS[1], ARGV[1])
end
return 0
"#;

pub struct Scripts {
    pub forget_if: Script,
    pub publish: Script,
    pub history: Script,
    pub presence_add: Script,
    pub presence_get: Script,
}

impl Scripts {
    pub fn new() -> Self {
        Self {
            forget_if: Script::new(FORGET_IF),
            publish: Script::new(PUBLISH),
            history: Script::new(HISTORY),
            presence_add: Script::new(PRESENCE_ADD),
            presence_get: Script::new(PRESENCE_GET),
        }
    }
}

fn bulk(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::Bulk(Some(b)) => Some(b),
        _ => None,
    }
}

/// The longest epoch read in place from the publish script's reply (ours are 8 letters).
pub const MAX_EPOCH: usize = 64;

/// The publish script's reply, read in place: the offset and the epoch (copied to the stack:
/// its bytes and length).
pub fn publish_reply(reply: &[u8]) -> Option<(u64, [u8; MAX_EPOCH], usize)> {
    let (offset, epoch) = super::resp::int_and_bulk(reply)?;
    let offset = u64::try_from(offset).ok().filter(|&o| o > 0)?;
    let mut copy = [0u8; MAX_EPOCH];
    copy.get_mut(..epoch.len())?.copy_from_slice(epoch);
    Some((offset, copy, epoch.len()))
}

/// An array of bulk strings (`HVALS`).
pub fn bulks(v: Value) -> Option<Vec<Vec<u8>>> {
    match v {
        Value::Array(Some(items)) => items.into_iter().map(bulk).collect(),
        Value::Array(None) => Some(Vec::new()),
        _ => None,
    }
}

/// A hash as field, value pairs (`HGETALL`).
pub fn pairs(v: Value) -> Option<Vec<(String, Vec<u8>)>> {
    let flat = bulks(v)?;
    if flat.len() % 2 != 0 {
        return None;
    }
    let mut it = flat.into_iter();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((String::from_utf8(k).ok()?, v));
    }
    Some(out)
}

/// Reads the history script's reply; `None` if it is not what the script returns.
pub fn history_result(v: Value, now: Instant) -> Option<(Vec<Stored>, StreamPosition)> {
    let Value::Array(Some(items)) = v else {
        return None;
    };
    let mut it = items.into_iter();
    let top = match it.next()? {
        Value::Int(n) if n >= 0 => n as u64,
        _ => return None,
    };
    let epoch = String::from_utf8(bulk(it.next()?)?).ok()?;
    let mut stored = Vec::new();
    while let Some(offset) = it.next() {
        let (Value::Int(offset), Some(publication)) = (offset, it.next().and_then(bulk)) else {
            return None;
        };
        stored.push(Stored {
            offset: offset as u64,
            publication: Bytes::from(publication),
            at: now,
        });
    }
    Some((
        stored,
        StreamPosition {
            offset: top,
            epoch: epoch.into(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &[u8]) -> Value {
        Value::Bulk(Some(s.to_vec()))
    }

    #[test]
    fn history_replies() {
        let now = Instant::now();
        let v = Value::Array(Some(vec![
            Value::Int(9),
            b(b"abcdefgh"),
            Value::Int(8),
            b(b"{\"data\":1,\"offset\":8}"),
            Value::Int(9),
            b(b"{\"data\":2,\"offset\":9}"),
        ]));
        let (items, pos) = history_result(v, now).unwrap();
        assert_eq!((pos.offset, &*pos.epoch), (9, "abcdefgh"));
        assert_eq!(items.iter().map(|s| s.offset).collect::<Vec<_>>(), [8, 9]);
        assert_eq!(&items[1].publication[..], b"{\"data\":2,\"offset\":9}");
        assert!(history_result(Value::Bulk(None), now).is_none());
        let odd = Value::Array(Some(vec![Value::Int(1), b(b"e"), Value::Int(1)]));
        assert!(
            history_result(odd, now).is_none(),
            "an offset without its publication"
        );
    }

    #[test]
    fn publish_presence_and_hash_replies() {
        let (offset, epoch, len) = publish_reply(b"*2\r\n:3\r\n$8\r\nepochxyz\r\n").unwrap();
        assert_eq!((offset, &epoch[..len]), (3, &b"epochxyz"[..]));
        assert_eq!(publish_reply(b":3\r\n"), None);
        assert_eq!(
            publish_reply(b"*2\r\n:0\r\n$1\r\ne\r\n"),
            None,
            "offsets start at 1"
        );
        let long = format!("*2\r\n:3\r\n$65\r\n{}\r\n", "e".repeat(65));
        assert_eq!(
            publish_reply(long.as_bytes()),
            None,
            "an epoch over {MAX_EPOCH} bytes"
        );
        let v = Value::Array(Some(vec![b(b"k1"), b(b"v1"), b(b"k2"), b(b"v2")]));
        assert_eq!(
            pairs(v),
            Some(vec![
                ("k1".into(), b"v1".to_vec()),
                ("k2".into(), b"v2".to_vec())
            ])
        );
        assert_eq!(pairs(Value::Array(Some(vec![b(b"k1")]))), None);
        assert_eq!(bulks(Value::Array(None)), Some(vec![]));
        assert_eq!(bulks(Value::Array(Some(vec![Value::Int(1)]))), None);
    }
}
