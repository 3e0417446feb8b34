//! The unbuffered session against rustls' own buffered client, in memory: every cut of the
//! byte stream, packing of small frames, alerts, close_notify, key updates, and no buffer held
//! by an idle session.

use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConnection, ServerConfig};

use super::{Received, ServerSession};

fn configs() -> &'static (Arc<ServerConfig>, Arc<rustls::ClientConfig>) {
    static CONFIGS: OnceLock<(Arc<ServerConfig>, Arc<rustls::ClientConfig>)> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let dir: PathBuf =
            std::env::temp_dir().join(format!("ringcast-session-{}", std::process::id()));
        let (server, _, _) = crate::tls::server_config(None, &dir, 2).unwrap();
        let client = crate::tls::client_config_trusting(&dir.join(crate::tls::DEV_CERT)).unwrap();
        (server, Arc::new(client))
    })
}

struct Pair {
    server: ServerSession,
    client: ClientConnection,
    /// Plaintext the server received.
    got: Vec<u8>,
    /// Plaintext the client received.
    client_got: Vec<u8>,
    /// How the client's bytes are cut on their way to the server.
    cut: usize,
}

impl Pair {
    fn new(cut: usize) -> Self {
        let (server, client) = configs();
        let name = ServerName::try_from("localhost").unwrap();
        Self {
            server: ServerSession::new(Some(server)).unwrap(),
            client: ClientConnection::new(client.clone(), name).unwrap(),
            got: Vec::new(),
            client_got: Vec::new(),
            cut,
        }
    }

    /// Client → server, in pieces of `cut` bytes.
    fn client_sends(&mut self) -> Result<Received, rustls::Error> {
        let mut wire = Vec::new();
        while self.client.wants_write() {
            self.client.write_tls(&mut wire).unwrap();
        }
        let mut last = Received::Open;
        for piece in wire.chunks(self.cut.max(1)) {
            let got = &mut self.got;
            last = self.server.receive(piece, |plain| {
                got.extend_from_slice(plain);
                ControlFlow::Continue(())
            })?;
        }
        Ok(last)
    }

    /// Server → client: what the server writes for `frames`; returns the wire bytes.
    fn server_sends(&mut self, frames: &[Bytes]) -> Vec<u8> {
        let mut wire = Vec::new();
        self.server.write(frames, &mut wire);
        let mut slice = &wire[..];
        while !slice.is_empty() {
            self.client.read_tls(&mut slice).unwrap();
            self.client.process_new_packets().unwrap();
            let plain = self.client_reads();
            self.client_got.extend_from_slice(&plain);
        }
        wire
    }

    fn handshake(&mut self) {
        while self.client.is_handshaking() {
            assert_eq!(self.client_sends().unwrap(), Received::Open);
            assert!(self.server.wants_write(), "the server answers every flight");
            self.server_sends(&[]);
        }
        // The client's Finished reaches the server; tickets come back.
        self.client_sends().unwrap();
        self.server_sends(&[]);
        assert!(!self.server.wants_write());
    }

    fn client_reads(&mut self) -> Vec<u8> {
        let mut plain = Vec::new();
        match self.client.reader().read_to_end(&mut plain) {
            // More may come, or the server closed cleanly (close_notify).
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok(_) => {}
            Err(e) => panic!("unexpected read: {e}"),
        }
        plain
    }
}

fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn traffic_both_ways_survives_every_cut_of_the_stream() {
    for cut in [1, 2, 5, 64, 517, 4096, usize::MAX] {
        let mut p = Pair::new(cut);
        p.handshake();
        let sent: Vec<u8> = [noise(10, 1), noise(40_000, 2), noise(300, 3)].concat();
        p.client.writer().write_all(&sent[..10]).unwrap();
        p.client.writer().write_all(&sent[10..40_010]).unwrap();
        p.client.writer().write_all(&sent[40_010..]).unwrap();
        assert_eq!(p.client_sends().unwrap(), Received::Open, "cut {cut}");
        assert_eq!(p.got, sent, "cut {cut}");
        assert_eq!(
            p.server.held_bytes(),
            0,
            "cut {cut}: nothing held between messages"
        );

        let frames: Vec<Bytes> = (0..50)
            .map(|i| Bytes::from(noise(100, i)))
            .chain([Bytes::from(noise(40_000, 99)), Bytes::from(noise(7, 100))])
            .collect();
        p.server_sends(&frames);
        assert_eq!(p.client_got, frames.concat(), "cut {cut}");
    }
}

#[test]
fn a_cut_record_is_held_until_its_rest_arrives_then_released() {
    let mut p = Pair::new(usize::MAX);
    p.handshake();
    p.client.writer().write_all(&noise(1000, 7)).unwrap();
    let mut wire = Vec::new();
    p.client.write_tls(&mut wire).unwrap();
    let mut got = Vec::new();
    let mut on_plain = |plain: &[u8]| {
        got.extend_from_slice(plain);
        ControlFlow::Continue(())
    };
    p.server.receive(&wire[..600], &mut on_plain).unwrap();
    assert!(p.server.held_bytes() >= 600);
    p.server.receive(&wire[600..], &mut on_plain).unwrap();
    assert_eq!(got, noise(1000, 7));
    assert_eq!(p.server.held_bytes(), 0);
}

#[test]
fn small_frames_share_records() {
    let mut p = Pair::new(usize::MAX);
    p.handshake();
    let frames: Vec<Bytes> = (0..100).map(|i| Bytes::from(noise(130, i))).collect();
    let wire = p.server_sends(&frames);
    // 13,000 bytes of frames fit one record (16 KiB): one header and tag, not 100.
    assert!(wire.len() < 13_000 + 64, "{} bytes on the wire", wire.len());
    assert_eq!(p.client_got, frames.concat());
}

#[test]
fn close_notify_both_ways() {
    let mut p = Pair::new(usize::MAX);
    p.handshake();
    p.server.send_close_notify();
    assert!(p.server.wants_write());
    p.server_sends(&[Bytes::from_static(b"last words")]);
    // The frames come first, then the close: the reader ends cleanly.
    assert_eq!(p.client_got, b"last words");
    assert_eq!(
        p.client.reader().read(&mut [0u8; 8]).unwrap(),
        0,
        "clean end"
    );

    let mut p = Pair::new(3);
    p.handshake();
    p.client.send_close_notify();
    assert_eq!(p.client_sends().unwrap(), Received::PeerClosed);
}

#[test]
fn garbage_fails_with_an_alert_and_nothing_more_is_read() {
    let mut p = Pair::new(usize::MAX);
    p.handshake();
    let garbage: Vec<u8> = [23u8, 3, 3, 0, 20].into_iter().chain(1..=20).collect();
    let err = p
        .server
        .receive(&garbage, |_| ControlFlow::Continue(()))
        .unwrap_err();
    assert!(matches!(err, rustls::Error::DecryptError), "{err:?}");
    assert!(p.server.wants_write(), "an alert waits");
    let mut wire = Vec::new();
    p.server
        .write(&[Bytes::from_static(b"not sent")], &mut wire);
    assert!(
        !wire.is_empty() && wire.len() < 64,
        "just the alert: {wire:?}"
    );
    let mut slice = &wire[..];
    p.client.read_tls(&mut slice).unwrap();
    assert!(
        p.client.process_new_packets().is_err(),
        "the client sees the alert"
    );
    assert_eq!(
        p.server
            .receive(b"more", |_| panic!("nothing is decrypted after a failure")),
        Ok(Received::Stopped)
    );
}

#[test]
fn a_client_key_update_is_answered_and_traffic_goes_on() {
    let mut p = Pair::new(9);
    p.handshake();
    p.client.refresh_traffic_keys().unwrap();
    p.client.writer().write_all(b"after the update").unwrap();
    p.client_sends().unwrap();
    assert_eq!(p.got, b"after the update");
    p.server_sends(&[Bytes::from_static(b"answer")]);
    assert_eq!(p.client_got, b"answer");
}

#[test]
fn stopping_drops_later_plaintext() {
    let mut p = Pair::new(usize::MAX);
    p.handshake();
    p.client.writer().write_all(b"first").unwrap();
    let mut wire = Vec::new();
    p.client.write_tls(&mut wire).unwrap();
    p.client.writer().write_all(b"second").unwrap();
    p.client.write_tls(&mut wire).unwrap();
    let mut seen = Vec::new();
    let r = p
        .server
        .receive(&wire, |plain| {
            seen.push(plain.to_vec());
            ControlFlow::Break(())
        })
        .unwrap();
    assert_eq!(r, Received::Stopped);
    assert_eq!(seen, vec![b"first".to_vec()]);
    // The connection still sends its last frames.
    p.server_sends(&[Bytes::from_static(b"bye")]);
    assert_eq!(p.client_got, b"bye");
}

fn engine_is_own(p: &Pair) -> bool {
    matches!(&p.server, ServerSession::Tls(t) if matches!(t.engine, super::Engine::Own(_)))
}

#[test]
fn after_a_tls13_handshake_our_record_layer_serves_and_tls12_stays_with_rustls() {
    let mut p = Pair::new(usize::MAX);
    p.handshake();
    assert!(engine_is_own(&p), "TLS 1.3: the keys were taken");

    // A TLS 1.2-only client: rustls protects the records throughout.
    let (server, _) = configs();
    let dir = std::env::temp_dir().join(format!("ringcast-session-{}", std::process::id()));
    let roots = {
        let mut r = rustls::RootCertStore::empty();
        for c in rustls::pki_types::CertificateDer::pem_file_iter(dir.join(crate::tls::DEV_CERT))
            .unwrap()
        {
            r.add(c.unwrap()).unwrap();
        }
        r
    };
    let tls12 = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut p = Pair {
        server: ServerSession::new(Some(server)).unwrap(),
        client: ClientConnection::new(Arc::new(tls12), ServerName::try_from("localhost").unwrap())
            .unwrap(),
        got: Vec::new(),
        client_got: Vec::new(),
        cut: 7,
    };
    p.handshake();
    assert!(!engine_is_own(&p), "TLS 1.2 stays with rustls");
    p.client.writer().write_all(&noise(30_000, 5)).unwrap();
    p.client_sends().unwrap();
    assert_eq!(p.got, noise(30_000, 5));
    let frames: Vec<Bytes> = (0..20).map(|i| Bytes::from(noise(300, i))).collect();
    p.server_sends(&frames);
    assert_eq!(p.client_got, frames.concat());
}

#[test]
fn our_key_update_after_the_record_limit_is_followed_by_the_client() {
    let mut p = Pair::new(usize::MAX);
    p.handshake();
    let ServerSession::Tls(t) = &mut p.server else {
        unreachable!()
    };
    let super::Engine::Own(records) = &mut t.engine else {
        panic!("TLS 1.3 uses our record layer")
    };
    records.wear_out_tx_key_after(1);
    let frames: Vec<Bytes> = (0..6).map(|i| Bytes::from(noise(20_000, i))).collect();
    p.server_sends(&frames[..3]);
    p.server_sends(&frames[3..]);
    assert_eq!(p.client_got, frames.concat(), "read across our key updates");
    let ServerSession::Tls(t) = &p.server else {
        unreachable!()
    };
    let super::Engine::Own(records) = &t.engine else {
        unreachable!()
    };
    // 120,000 bytes took at least 8 records: fewer under the current key means it changed.
    assert!(
        records.tx_seq() < 8,
        "{} records under one key",
        records.tx_seq()
    );
}

#[test]
fn records_we_never_accept_after_the_handshake_are_refused_with_an_alert() {
    let cases: [(&[u8], &str); 3] = [
        (&[21, 3, 3, 0, 2, 1, 0], "a plaintext alert"),
        (&[20, 3, 3, 0, 1, 1], "a change_cipher_spec"),
        (&[23, 3, 3, 0x4f, 0xff], "a record over 16 KiB + 256"),
    ];
    for (record, what) in cases {
        let mut p = Pair::new(usize::MAX);
        p.handshake();
        assert!(engine_is_own(&p));
        let err = p
            .server
            .receive(record, |_| panic!("{what}: nothing is plaintext"))
            .unwrap_err();
        assert!(p.server.wants_write(), "{what}: an alert waits ({err})");
        let mut wire = Vec::new();
        p.server.write(&[], &mut wire);
        let mut slice = &wire[..];
        p.client.read_tls(&mut slice).unwrap();
        assert!(
            p.client.process_new_packets().is_err(),
            "{what}: the client reads our alert"
        );
    }
}
