//! permessage-deflate negotiation (RFC 7692 §5, §7), sans-io: the client's
//! `Sec-WebSocket-Extensions` offers in, the one accepted (and the header to answer) out.
//!
//! ringcast accepts an offer only on its own terms, so that **one compressor and one inflater
//! per worker** serve every connection and a broadcast is compressed once per window size:
//! - `server_no_context_takeover` always (the server may add it unoffered, §7.1.1.1);
//! - `client_no_context_takeover` always (§7.1.1.2), so the worker's inflater resets per message;
//! - `server_max_window_bits=N` honoured for N in 9–15 (echoed; the frames are compressed with
//!   an N-bit window); an offer asking for 8 is declined (zlib cannot produce raw 8-bit windows);
//! - `client_max_window_bits` (bare or valued) needs no answer: the worker's inflater has a
//!   15-bit window, enough for any client window.
//!
//! Offers are tried in the client's order; one with an unknown parameter, a duplicate, a
//! missing or malformed value is declined (§7: "decline … invalid"), and the next tried. No
//! acceptable offer: the connection is made without compression (never a failed handshake).

/// What was agreed for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    /// The window the server's messages are compressed with (9–15).
    pub server_window_bits: u8,
}

impl Agreed {
    /// The `Sec-WebSocket-Extensions` value of the 101.
    pub fn response(&self, echo_window: bool) -> String {
        let mut s = String::from(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        );
        if echo_window {
            s.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_window_bits
            ));
        }
        s
    }
}

/// Splits on `sep` outside double quotes.
fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&s[start..]);
    parts
}

/// A parameter value: a token or a quoted string (§5: both forms are the same value).
fn unquote(v: &str) -> Option<String> {
    let v = v.trim();
    if let Some(inner) = v.strip_prefix('"') {
        let inner = inner.strip_suffix('"')?;
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                out.push(chars.next()?);
            } else {
                out.push(c);
            }
        }
        Some(out)
    } else {
        Some(v.to_owned())
    }
}

/// `8`–`15`, digits only, no leading zero.
fn window_bits(v: &str) -> Option<u8> {
    let ok = !v.is_empty()
        && v.len() <= 2
        && v.bytes().all(|b| b.is_ascii_digit())
        && !v.starts_with('0');
    ok.then(|| v.parse().ok())
        .flatten()
        .filter(|n| (8..=15).contains(n))
}

/// One `permessage-deflate` offer's parameters, or None when it must be declined.
fn accept(params: &[&str]) -> Option<(Agreed, bool)> {
    let mut seen: Vec<String> = Vec::new();
    let mut server_bits: Option<u8> = None;
    for p in params {
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n.trim().to_ascii_lowercase(), Some(unquote(v)?)),
            None => (p.trim().to_ascii_lowercase(), None),
        };
        if seen.contains(&name) {
            return None;
        }
        match (name.as_str(), value.as_deref()) {
            ("server_no_context_takeover" | "client_no_context_takeover", None) => {}
            ("server_max_window_bits", Some(v)) => server_bits = Some(window_bits(v)?),
            ("client_max_window_bits", None) => {}
            ("client_max_window_bits", Some(v)) => {
                window_bits(v)?;
            }
            _ => return None,
        }
        seen.push(name);
    }
    match server_bits {
        Some(8) => None,
        Some(n) => Some((
            Agreed {
                server_window_bits: n,
            },
            true,
        )),
        None => Some((
            Agreed {
                server_window_bits: 15,
            },
            false,
        )),
    }
}

/// The first acceptable offer among the `Sec-WebSocket-Extensions` values (each may list
/// several extensions), with the header value to answer.
pub fn negotiate<'a>(headers: impl IntoIterator<Item = &'a str>) -> Option<(Agreed, String)> {
    for header in headers {
        for ext in split_outside_quotes(header, ',') {
            let mut parts = split_outside_quotes(ext, ';').into_iter();
            let name = parts.next().unwrap_or("").trim();
            if !name.eq_ignore_ascii_case("permessage-deflate") {
                continue;
            }
            let params: Vec<&str> = parts.filter(|p| !p.trim().is_empty()).collect();
            if let Some((agreed, echo)) = accept(&params) {
                return Some((agreed, agreed.response(echo)));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

    #[test]
    fn offers_table() {
        let w = |n: u8| format!("{BASE}; server_max_window_bits={n}");
        let cases: Vec<(&str, Option<String>)> = vec![
            // What browsers send.
            (
                "permessage-deflate; client_max_window_bits",
                Some(BASE.into()),
            ),
            ("permessage-deflate", Some(BASE.into())),
            // Python websockets' default offer.
            (
                "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
                Some(w(12)),
            ),
            (
                "permessage-deflate; server_max_window_bits=\"10\"",
                Some(w(10)),
            ),
            ("PerMessage-Deflate; Server_Max_Window_Bits=9", Some(w(9))),
            (
                "permessage-deflate; server_no_context_takeover",
                Some(BASE.into()),
            ),
            // Declined: window 8, out of range, leading zero, missing value, unknown, duplicate.
            ("permessage-deflate; server_max_window_bits=8", None),
            ("permessage-deflate; server_max_window_bits=16", None),
            ("permessage-deflate; server_max_window_bits=010", None),
            ("permessage-deflate; server_max_window_bits", None),
            ("permessage-deflate; client_max_window_bits=7", None),
            ("permessage-deflate; server_no_context_takeover=1", None),
            ("permessage-deflate; mystery", None),
            (
                "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
                None,
            ),
            ("permessage-deflate; server_max_window_bits=\"1", None),
            ("x-webkit-deflate-frame", None),
            ("", None),
            // Several offers: the first acceptable one wins.
            (
                "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=11",
                Some(w(11)),
            ),
            (
                "foo; bar=\"a,b\", permessage-deflate; client_max_window_bits",
                Some(BASE.into()),
            ),
            (
                "permessage-deflate; mystery, permessage-deflate",
                Some(BASE.into()),
            ),
        ];
        for (offer, want) in cases {
            let got = negotiate([offer]).map(|(_, h)| h);
            assert_eq!(got, want, "{offer:?}");
        }
    }

    #[test]
    fn several_headers_and_the_agreed_window() {
        let (a, _) = negotiate(["foo", "permessage-deflate; server_max_window_bits=13"]).unwrap();
        assert_eq!(a.server_window_bits, 13);
        let (a, h) = negotiate(["permessage-deflate"]).unwrap();
        assert_eq!(a.server_window_bits, 15);
        assert!(
            !h.contains("server_max_window_bits"),
            "not sent unless offered"
        );
        assert!(!h.contains("client_max_window_bits"), "never sent");
    }
}
