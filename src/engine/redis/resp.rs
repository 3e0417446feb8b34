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

/// A value's type byte, its header line (length or content) and where the rest starts.
type Header<'a> = (u8, &'a [u8], usize);

/// The header of the value at `at`; `None` while incomplete.
fn header(buf: &[u8], at: usize) -> Result<Option<Header<'_>>, RespError> {
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    match line(buf, at + 1) {
        Some((head, next)) => Ok(Some((kind, head, next))),
        None if buf.len() - at > 64 + 1 && kind != b'+' && kind != b'-' => {
            Err(RespError::Malformed("header line too long"))
        }
        None => Ok(None),
    }
}

/// A bulk string of `n` bytes (`n` from its header) starting at `next`: where it ends
/// (after its CRLF); `None` while incomplete.
fn bulk_end(buf: &[u8], next: usize, n: usize) -> Result<Option<usize>, RespError> {
    if n > MAX_BULK {
        return Err(RespError::TooLarge(n));
    }
    if buf.len() < next + n + 2 {
        return Ok(None);
    }
    if &buf[next + n..next + n + 2] != b"\r\n" {
        return Err(RespError::Malformed("bulk string not ended by CRLF"));
    }
    Ok(Some(next + n + 2))
}

/// An array's length from its header (negative: the null array), within the bounds.
fn array_len(head: &[u8], depth: usize) -> Result<i64, RespError> {
    let n = int(head)?;
    if n > MAX_ARRAY as i64 || depth >= MAX_DEPTH {
        return Err(RespError::Malformed("array too long or too deep"));
    }
    Ok(n)
}

fn parse_at(buf: &[u8], at: usize, depth: usize) -> Result<Option<(Value, usize)>, RespError> {
    let Some((kind, head, next)) = header(buf, at)? else {
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
            Ok(bulk_end(buf, next, n)?
                .map(|end| (Value::Bulk(Some(buf[next..next + n].to_vec())), end)))
        }
        b'*' => {
            let n = array_len(head, depth)?;
            if n < 0 {
                return Ok(Some((Value::Array(None), next)));
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

/// One whole value (as [`value_len`] delimits it) as a [`Value`]; `None` if it is not one.
pub fn whole_value(value: &[u8]) -> Option<Value> {
    parse(value).ok().flatten().map(|(v, _)| v)
}

/// How many bytes the value at the start of `buf` takes, checked as [`parse`] checks it but
/// without building it (nothing allocated); `None` while incomplete.
pub fn value_len(buf: &[u8]) -> Result<Option<usize>, RespError> {
    skip_at(buf, 0, 0)
}

fn skip_at(buf: &[u8], at: usize, depth: usize) -> Result<Option<usize>, RespError> {
    let Some((kind, head, next)) = header(buf, at)? else {
        return Ok(None);
    };
    match kind {
        b'+' | b'-' => Ok(Some(next)),
        b':' => int(head).map(|_| Some(next)),
        b'$' => match int(head)? {
            n if n < 0 => Ok(Some(next)),
            n => bulk_end(buf, next, n as usize),
        },
        b'*' => {
            let mut pos = next;
            for _ in 0..array_len(head, depth)?.max(0) {
                match skip_at(buf, pos, depth + 1)? {
                    Some(p) => pos = p,
                    None => return Ok(None),
                }
            }
            Ok(Some(pos))
        }
        _ => Err(RespError::Malformed("unknown type byte")),
    }
}

/// An integer and a bulk string, the reply `{integer, string}` of a script, read in place
/// from one whole value (as [`value_len`] delimits it). `None` for any other shape.
pub fn int_and_bulk(value: &[u8]) -> Option<(i64, &[u8])> {
    let (kind, head, next) = header(value, 0).ok()??;
    if kind != b'*' || head != b"2" {
        return None;
    }
    let (kind, head, next) = header(value, next).ok()??;
    if kind != b':' {
        return None;
    }
    let n = int(head).ok()?;
    let (kind, head, next) = header(value, next).ok()??;
    let len = usize::try_from(int(head).ok()?).ok()?;
    (kind == b'$' && value.len() >= next + len).then(|| (n, &value[next..next + len]))
}

/// The first three elements of an array as bulk strings, read in place from one whole value
/// (as [`value_len`] delimits it): a pub/sub push (`message`, channel, payload; `subscribe`,
/// channel, count). `None` when it is not an array; an element that is missing or not a bulk
/// string is `None`.
pub fn leading_bulks(value: &[u8]) -> Option<[Option<&[u8]>; 3]> {
    let (kind, head, mut pos) = header(value, 0).ok()??;
    if kind != b'*' {
        return None;
    }
    let n = int(head).ok()?.max(0) as usize;
    let mut out = [None; 3];
    for slot in out.iter_mut().take(n) {
        let (kind, head, next) = header(value, pos).ok()??;
        if kind == b'$' {
            let len = usize::try_from(int(head).ok()?).ok();
            if let Some(len) = len {
                *slot = value.get(next..next + len);
            }
        }
        pos = skip_at(value, pos, 1).ok()??;
    }
    Some(out)
}

/// One argument of a command: bytes, bytes in parts (a key name: prefix, kind, channel),
/// or a number.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Bytes(&'a [u8]),
    Parts(&'a [&'a [u8]]),
    Number(u64),
}

/// Writes `n` in decimal without allocating.
fn push_number(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn push_line(out: &mut Vec<u8>, kind: u8, n: u64) {
    out.push(kind);
    push_number(out, n);
    out.extend_from_slice(b"\r\n");
}

/// Starts a command of `args` arguments (then [`push_arg`] each).
pub fn push_command(out: &mut Vec<u8>, args: usize) {
    push_line(out, b'*', args as u64);
}

/// One argument as a bulk string.
pub fn push_arg(out: &mut Vec<u8>, arg: Arg<'_>) {
    match arg {
        Arg::Bytes(b) => push_arg(out, Arg::Parts(&[b])),
        Arg::Parts(parts) => {
            push_line(out, b'$', parts.iter().map(|p| p.len() as u64).sum());
            for p in parts {
                out.extend_from_slice(p);
            }
            out.extend_from_slice(b"\r\n");
        }
        Arg::Number(n) => {
            let len = if n == 0 { 1 } else { n.ilog10() as u64 + 1 };
            push_line(out, b'$', len);
            push_number(out, n);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Encodes a command as a RESP array of bulk strings.
pub fn command(out: &mut Vec<u8>, args: &[&[u8]]) {
    push_command(out, args.len());
    for a in args {
        push_arg(out, Arg::Bytes(a));
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

    #[test]
    fn arguments_in_parts_and_numbers() {
        let mut out = Vec::new();
        push_command(&mut out, 4);
        push_arg(&mut out, Arg::Parts(&[b"rc", b".stream.", b"chat:a"]));
        push_arg(&mut out, Arg::Number(0));
        push_arg(&mut out, Arg::Number(18_446_744_073_709_551_615));
        push_arg(&mut out, Arg::Bytes(b""));
        assert_eq!(
            out,
            &b"*4\r\n$16\r\nrc.stream.chat:a\r\n$1\r\n0\r\n$20\r\n18446744073709551615\r\n$0\r\n\r\n"[..]
        );
        for n in [1, 9, 10, 99, 100, 12345] {
            let mut a = Vec::new();
            push_arg(&mut a, Arg::Number(n));
            let mut b = Vec::new();
            push_arg(&mut b, Arg::Bytes(n.to_string().as_bytes()));
            assert_eq!(a, b, "{n}");
        }
    }

    #[test]
    fn pushes_read_in_place() {
        let m = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n";
        assert_eq!(
            leading_bulks(m),
            Some([Some(&b"message"[..]), Some(&b"ch"[..]), Some(&b"hello"[..])])
        );
        let s = b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n";
        assert_eq!(
            leading_bulks(s),
            Some([Some(&b"subscribe"[..]), Some(&b"a"[..]), None])
        );
        assert_eq!(
            leading_bulks(b"*1\r\n$1\r\na\r\n"),
            Some([Some(&b"a"[..]), None, None])
        );
        assert_eq!(leading_bulks(b"-ERR x\r\n"), None);
    }

    #[test]
    fn a_script_reply_read_in_place() {
        let m = b"*2\r\n:17\r\n$8\r\nAbCdEfGh\r\n";
        assert_eq!(value_len(m), Ok(Some(m.len())));
        assert_eq!(int_and_bulk(m), Some((17, &b"AbCdEfGh"[..])));
        for other in [
            &b":17\r\n"[..],
            b"*1\r\n:17\r\n",
            b"*2\r\n$1\r\na\r\n:1\r\n",
        ] {
            assert_eq!(int_and_bulk(other), None, "{other:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = parse(&bytes);
            let _ = int_and_bulk(&bytes);
            if let Ok(Some(n)) = value_len(&bytes) {
                let _ = leading_bulks(&bytes[..n]);
            }
        }

        /// The scan and the parser agree on every input: same length, same errors.
        #[test]
        fn value_len_agrees_with_parse(bytes in proptest::collection::vec(
            proptest::sample::select(&b"*$:+-0123\r\nab"[..]), 0..48)) {
            let parsed = parse(&bytes).map(|v| v.map(|(_, n)| n));
            proptest::prop_assert_eq!(value_len(&bytes), parsed);
        }
    }
}
