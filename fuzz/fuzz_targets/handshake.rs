//! Handshake parser: never panics; an accepted request is still "incomplete" one byte shorter;
//! every answer it leads to (101 or error) is a well-formed HTTP response.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast::proto::handshake::{parse_request, switching_protocols};

fuzz_target!(|data: &[u8]| {
    match parse_request(data) {
        Ok(Some((req, n))) => {
            assert!(n <= data.len());
            assert!(req.path.starts_with('/'));
            let accept = req.accept_key();
            assert_eq!(accept.len(), 28);
            // The permessage-deflate negotiation sees every extension header the parser lets through.
            let agreed = ringcast::proto::deflate_negotiation::negotiate(req.extensions());
            let resp = switching_protocols(
                &accept,
                req.protocols().next(),
                agreed.as_ref().map(|(_, h)| h.as_str()),
            );
            assert!(resp.starts_with(b"HTTP/1.1 101 "));
            assert!(resp.ends_with(b"\r\n\r\n"));
            let _ = req.extensions().count();
            assert!(matches!(parse_request(&data[..n - 1]), Ok(None) | Err(_)));
            assert!(
                parse_request(&data[..n - 1])
                    .map(|r| r.is_none())
                    .unwrap_or(true)
            );
        }
        Ok(None) => {}
        Err(e) => {
            let resp = e.response();
            let status = e.status().0;
            assert!(matches!(status, 400 | 405 | 426 | 431), "{status}");
            assert!(resp.starts_with(format!("HTTP/1.1 {status} ").as_bytes()));
        }
    }
});
