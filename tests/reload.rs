//! Reloading (what SIGHUP does): a new certificate for new connections while open ones keep
//! working; a broken file keeps the old identity; new token keys from the config file.

mod common;

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Writes a fresh self-signed localhost certificate over `dir/cert.pem` + `dir/key.pem`.
fn new_cert(dir: &std::path::Path) -> CertificateDer<'static> {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    CertificateDer::from_pem_slice(ck.cert.pem().as_bytes()).unwrap()
}

fn trusting(certs: &[&CertificateDer<'static>]) -> Arc<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in certs {
        roots.add((*c).clone()).unwrap();
    }
    Arc::new(ringcast::tls::client_config(roots))
}

#[tokio::test]
async fn a_new_certificate_for_new_connections_open_ones_keep_working() {
    let dir = std::env::temp_dir().join(format!("ringcast-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let a = new_cert(&dir);
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let s = common::start(&[
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    let mut old = s.raw_with(trusting(&[&a])).await;
    old.upgrade("/room").await;
    let b = new_cert(&dir);
    let report = s.handle().reload_trigger().reload();
    assert!(matches!(report.cert, Some(Ok(()))), "{report:?}");
    // New connections get B.
    let fresh = s.raw_with(trusting(&[&a, &b])).await;
    let served = fresh.tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    assert_eq!(served, b, "the reloaded certificate");
    // The open connection still works (an echo through its room).
    old.frame(true, ringcast::proto::OpCode::Text, b"still here")
        .await;
    match old.event().await {
        Some(ringcast::proto::Event::Message(m)) => assert_eq!(m.payload(), b"still here"),
        e => panic!("{e:?}"),
    }
    // A broken key file: reload refused, B still served.
    std::fs::write(&key, "not a key").unwrap();
    let report = s.handle().reload_trigger().reload();
    assert!(matches!(report.cert, Some(Err(_))), "{report:?}");
    let again = s.raw_with(trusting(&[&b])).await;
    assert_eq!(again.tls.get_ref().1.peer_certificates().unwrap()[0], b);
}

#[tokio::test]
async fn new_token_keys_from_the_config_file() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let dir = std::env::temp_dir().join(format!("ringcast-reload-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("ringcast.toml");
    let write = |secret: &str| {
        std::fs::write(
            &cfg,
            format!("[client.token]\nhmac_secret_key = \"{secret}\"\n"),
        )
        .unwrap()
    };
    write("first-secret-of-at-least-32-bytes-long");
    let s = common::start(&["--config", cfg.to_str().unwrap()]);
    let token = |secret: &str| {
        use jsonwebtoken::{EncodingKey, Header, encode};
        encode(
            &Header::default(),
            &serde_json::json!({"sub": "u", "exp": 4_000_000_000u64}),
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let connect = |t: String| {
        let s = &s;
        async move {
            let mut ws = s.ws("/connection/websocket").await;
            ws.send(Message::text(format!(
                r#"{{"id":1,"connect":{{"token":"{t}"}}}}"#
            )))
            .await
            .unwrap();
            match ws.next().await.unwrap().unwrap() {
                Message::Text(t) => t.to_string(),
                Message::Close(f) => format!("close {}", u16::from(f.unwrap().code)),
                m => format!("{m:?}"),
            }
        }
    };
    assert!(
        connect(token("first-secret-of-at-least-32-bytes-long"))
            .await
            .contains("\"client\"")
    );
    write("second-secret-of-at-least-32-bytes-long");
    let report = s.handle().reload_trigger().reload();
    assert_eq!(report.keys, Ok(1), "{report:?}");
    assert!(
        connect(token("second-secret-of-at-least-32-bytes-long"))
            .await
            .contains("\"client\"")
    );
    assert_eq!(
        connect(token("first-secret-of-at-least-32-bytes-long")).await,
        "close 3500"
    );
    // A broken file keeps the second secret.
    std::fs::write(&cfg, "[client.token\n").unwrap();
    let report = s.handle().reload_trigger().reload();
    assert!(report.keys.is_err(), "{report:?}");
    assert!(
        connect(token("second-secret-of-at-least-32-bytes-long"))
            .await
            .contains("\"client\"")
    );
}

/// The binary itself: `kill -HUP` reloads (and says so), the server keeps serving, SIGTERM
/// still ends it cleanly.
#[test]
fn sighup_to_the_binary_reloads_and_keeps_serving() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = std::env::temp_dir().join(format!("ringcast-hup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    new_cert(&dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringcast"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--api-listen",
            "off",
            "--log-format",
            "json",
        ])
        .arg("--cert")
        .arg(dir.join("cert.pem"))
        .arg("--key")
        .arg(dir.join("key.pem"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = rustix::process::Pid::from_child(&child);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut wait_for = |words: &str| {
        for line in lines.by_ref() {
            let line = line.unwrap();
            if line.contains(words) {
                return line;
            }
        }
        panic!("the server never logged {words:?}");
    };
    wait_for("serving wss://");
    new_cert(&dir);
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    let line = wait_for("SIGHUP");
    assert!(line.contains("Ok"), "{line}");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    wait_for("bye");
    assert!(child.wait().unwrap().success());
}
