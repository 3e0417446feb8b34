//! The Redis wire format (RESP2), parsed in place, and commands encoded: what every connection
//! of the engine reads and writes ([`super::conn`] for commands, [`super::pubsub`] for the
//! node's subscriber connection).
//!
//! Must not: do I/O.

/// One RESP value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    /// `None`: the null bulk string.
    Bulk(Option<Vec<u8>>),
    /// `None`: the null array.
    Array(Option<Vec<Value>>),
}

/// A reply this node cannot read: the connection is dropped and made again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RespError {
    #[error("malformed reply from Redis: {0}")]
    Malformed(&'static str),
    #[error("reply from Redis over the size limit ({0} bytes)")]
    TooLarge(usize),
}

/// Longest bulk string taken (Redis' own limit for a string is 512 MB; a publication is far
/// smaller, the server's frame limit bounds what it publishes).
pub const MAX_BULK: usize = 64 << 20;
/// Most elements in one array (a pub/sub message has 3 or 4).
const MAX_ARRAY: usize = 1 << 16;
/// Deepest nesting taken.
const MAX_DEPTH: usize = 4;

/// Parses one value from the start of `buf`: `Ok(None)` when `buf` holds only part of it,
/// else the value and the bytes it took.
pub fn parse(buf: &[u8]) -> Result<Option<(Value, usize)>, RespError> {
    parse_at(buf, 0, 0)
}

fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(at..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..end], at + end + 2))
}

fn int(digits: &[u8]) -> Result<i64, RespError> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(RespError::Malformed("not an integer"))
}

fn parse_at(buf: &[u8], at: usize, depth: usize) -> Result<Option<(Value, usize)>, RespError> {
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    let Some((head, next)) = line(buf, at + 1) else {
        if buf.len() - at > 64 + 1 && kind != b'+' && kind != b'-' {
            return Err(RespError::Malformed("header line too long"));
        }
        return Ok(None);
    };
    match kind {
        b'+' => Ok(Some((Value::Simple(head.to_vec()), next))),
        b'-' => Ok(Some((Value::Error(head.to_vec()), next))),
        b':' => Ok(Some((Value::Int(int(head)?), next))),
        b'$' => {
            let n = int(head)?;
            if n < 0 {
                return Ok(Some((Value::Bulk(None), next)));
            }
            let n = n as usize;
            if n > MAX_BULK {
                return Err(RespError::TooLarge(n));
            }
            if buf.len() < next + n + 2 {
                return Ok(None);
            }
            if &buf[next + n..next + n + 2] != b"\r\n" {
                return Err(RespError::Malformed("bulk string not ended by CRLF"));
            }
            Ok(Some((
                Value::Bulk(Some(buf[next..next + n].to_vec())),
                next + n + 2,
            )))
        }
        b'*' => {
            let n = int(head)?;
            if n < 0 {
                return Ok(Some((Value::Array(None), next)));
            }
            if n as usize > MAX_ARRAY || depth >= MAX_DEPTH {
                return Err(RespError::Malformed("array too long or too deep"));
            }
            let mut items = Vec::with_capacity(n as usize);
            let mut pos = next;
            for _ in 0..n {
                match parse_at(buf, pos, depth + 1)? {
                    Some((v, p)) => {
                        items.push(v);
                        pos = p;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Value::Array(Some(items)), pos)))
        }
        _ => Err(RespError::Malformed("unknown type byte")),
    }
}

/// Encodes a command as a RESP array of bulk strings.
pub fn command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::Bulk(Some(s.as_bytes().to_vec()))
    }

    #[test]
    fn message_and_confirmation() {
        let m = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n";
        let (v, n) = parse(m).unwrap().unwrap();
        assert_eq!(n, m.len());
        assert_eq!(
            v,
            Value::Array(Some(vec![bulk("message"), bulk("ch"), bulk("hello")]))
        );
        let s = b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n";
        let (v, _) = parse(s).unwrap().unwrap();
        assert_eq!(
            v,
            Value::Array(Some(vec![bulk("subscribe"), bulk("a"), Value::Int(1)]))
        );
    }

    #[test]
    fn every_prefix_of_a_value_is_incomplete() {
        let m = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$12\r\nhello\r\nworld\r\n";
        for cut in 0..m.len() {
            assert_eq!(parse(&m[..cut]).unwrap(), None, "cut at {cut}");
        }
        let (v, n) = parse(m).unwrap().unwrap();
        assert_eq!(n, m.len());
        let Value::Array(Some(items)) = v else {
            panic!()
        };
        assert_eq!(items[2], bulk("hello\r\nworld"), "binary-safe payload");
    }

    #[test]
    fn two_values_back_to_back() {
        let m = b"+OK\r\n:42\r\n-ERR no\r\n$-1\r\n*-1\r\n";
        let mut at = 0;
        let mut got = Vec::new();
        while let Some((v, n)) = parse(&m[at..]).unwrap() {
            got.push(v);
            at += n;
        }
        assert_eq!(
            got,
            vec![
                Value::Simple(b"OK".to_vec()),
                Value::Int(42),
                Value::Error(b"ERR no".to_vec()),
                Value::Bulk(None),
                Value::Array(None)
            ]
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for bad in [
            &b"?x\r\n"[..],
            b":12a\r\n",
            b"$3\r\nabcd\r\n",
            b"$99999999999\r\n",
            b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        command(&mut out, &[b"SUBSCRIBE", b"a.b"]);
        assert_eq!(out, b"*2\r\n$9\r\nSUBSCRIBE\r\n$3\r\na.b\r\n");
        assert_eq!(parse(&out).unwrap().unwrap().1, out.len());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = parse(&bytes);
        }
    }
}
