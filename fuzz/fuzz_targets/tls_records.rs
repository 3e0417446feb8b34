//! The TLS session after a real TLS 1.3 handshake (so our record layer holds the keys): the
//! client's records, cut anywhere and with bytes changed or appended, must give the client's
//! plaintext up to the damage and then an error with an alert to send — never a panic, never
//! plaintext that was not sent.
#![no_main]

use std::io::Write;
use std::ops::ControlFlow;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use ringcast::tls::session::{Received, ServerSession};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, ServerConfig};

fn configs() -> &'static (Arc<ServerConfig>, Arc<rustls::ClientConfig>) {
    static C: OnceLock<(Arc<ServerConfig>, Arc<rustls::ClientConfig>)> = OnceLock::new();
    C.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ringcast-fuzz-tls-{}", std::process::id()));
        let (server, _, _) = ringcast::tls::server_config(None, &dir, 0).unwrap();
        let client =
            ringcast::tls::client_config_trusting(&dir.join(ringcast::tls::DEV_CERT)).unwrap();
        (server, Arc::new(client))
    })
}

fn pump_to_client(server: &mut ServerSession, client: &mut ClientConnection) {
    let mut wire = Vec::new();
    server.write(&[], &mut wire);
    let mut s = &wire[..];
    while !s.is_empty() {
        client.read_tls(&mut s).unwrap();
        client.process_new_packets().unwrap();
    }
}

fn pump_to_server(client: &mut ClientConnection, server: &mut ServerSession) {
    let mut wire = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut wire).unwrap();
    }
    server
        .receive(&wire, |_| ControlFlow::Continue(()))
        .unwrap();
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (ctl, payload) = data.split_at(4);
    let (server_cfg, client_cfg) = configs();
    let mut server = ServerSession::new(Some(server_cfg)).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut client = ClientConnection::new(client_cfg.clone(), name).unwrap();
    while client.is_handshaking() {
        pump_to_server(&mut client, &mut server);
        pump_to_client(&mut server, &mut client);
    }
    pump_to_server(&mut client, &mut server);

    // The client's records for `payload`, in up to three writes (so up to three records).
    let cuts = [usize::from(ctl[0]) % (payload.len() + 1), payload.len()];
    let mut last = 0;
    for c in cuts {
        let c = c.max(last);
        client.writer().write_all(&payload[last..c]).unwrap();
        last = c;
    }
    let mut wire = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut wire).unwrap();
    }
    let mut damaged = true;
    // Damage: flip a byte, or append noise (a new record header and bytes), or neither.
    match ctl[1] % 3 {
        0 if !wire.is_empty() => {
            let at = usize::from(u16::from_le_bytes([ctl[2], ctl[3]])) % wire.len();
            wire[at] ^= 1 | ctl[3];
        }
        1 => wire.extend_from_slice(payload),
        _ => damaged = false,
    }
    let step = 1 + usize::from(ctl[2]) % 97;
    let mut got = Vec::new();
    let mut failed = false;
    for piece in wire.chunks(step) {
        match server.receive(piece, |p| {
            got.extend_from_slice(p);
            ControlFlow::Continue(())
        }) {
            Ok(Received::Open) => {}
            Ok(Received::Stopped) => break,
            Ok(Received::PeerClosed) => break,
            Err(_) => {
                failed = true;
                assert!(server.wants_write(), "an error leaves an alert to send");
                break;
            }
        }
    }
    assert!(
        payload.starts_with(&got),
        "only plaintext the client sent, in order: sent {payload:?}, got {got:?}"
    );
    if !damaged {
        assert!(
            !failed && got == payload,
            "undamaged records give the whole payload"
        );
    }
});
