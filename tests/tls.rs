//! TLS: 1.2 and 1.3 both serve WebSocket; ALPN offers http/1.1; a client that does not trust
//! the certificate is refused by its own TLS stack, not by a server crash.

mod common;

use std::sync::Arc;

use common::*;
use ringcast::proto::{Event, OpCode};

fn config(
    srv: &TestServer,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<rustls::ClientConfig> {
    config_with(
        srv,
        rustls::crypto::ring::default_provider(),
        versions,
        alpn,
    )
}

/// [`config`] with a provider of the test's choosing (its cipher suites).
fn config_with(
    srv: &TestServer,
    provider: rustls::crypto::CryptoProvider,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<rustls::ClientConfig> {
    let roots = {
        // Same trust as the harness, rebuilt for the chosen versions.
        let pem = std::fs::read(srv.cert_path()).unwrap();
        let mut r = rustls::RootCertStore::empty();
        r.add(rustls::pki_types::pem::PemObject::from_pem_slice(&pem).unwrap())
            .unwrap();
        r
    };
    let mut c = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(c)
}

#[tokio::test]
async fn tls12_and_tls13_both_carry_websocket_with_alpn_http11() {
    let srv = start(&[]);
    for (versions, want) in [
        (
            &[&rustls::version::TLS12][..],
            rustls::ProtocolVersion::TLSv1_2,
        ),
        (
            &[&rustls::version::TLS13][..],
            rustls::ProtocolVersion::TLSv1_3,
        ),
    ] {
        let mut raw = srv.raw_with(config(&srv, versions, &[b"http/1.1"])).await;
        let (_, session) = raw.tls.get_ref();
        assert_eq!(session.protocol_version(), Some(want));
        assert_eq!(session.alpn_protocol(), Some(&b"http/1.1"[..]));
        raw.upgrade("/tls").await;
        raw.frame(true, OpCode::Text, b"over tls").await;
        let Some(Event::Message(m)) = raw.event().await else {
            panic!("echo")
        };
        assert_eq!(m.text(), Some("over tls"), "{want:?}");
    }
}

#[tokio::test]
async fn a_client_offering_only_another_alpn_protocol_is_refused() {
    let srv = start(&[]);
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", srv.port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let res = tokio_rustls::TlsConnector::from(config(&srv, &[&rustls::version::TLS13], &[b"h2"]))
        .connect(name, tcp)
        .await;
    assert!(
        res.is_err(),
        "rustls servers refuse a handshake with no ALPN protocol in common"
    );
    // The server keeps serving.
    let mut raw = srv.raw().await;
    raw.upgrade("/tls").await;
}

/// Counts the TLS 1.3 tickets a client is given (delegating to rustls' memory cache).
#[derive(Debug)]
struct CountingStore {
    inner: rustls::client::ClientSessionMemoryCache,
    tickets: std::sync::atomic::AtomicUsize,
}

impl rustls::client::ClientSessionStore for CountingStore {
    fn set_kx_hint(&self, name: rustls::pki_types::ServerName<'static>, g: rustls::NamedGroup) {
        self.inner.set_kx_hint(name, g)
    }
    fn kx_hint(&self, name: &rustls::pki_types::ServerName<'_>) -> Option<rustls::NamedGroup> {
        self.inner.kx_hint(name)
    }
    fn set_tls12_session(
        &self,
        name: rustls::pki_types::ServerName<'static>,
        v: rustls::client::Tls12ClientSessionValue,
    ) {
        self.inner.set_tls12_session(name, v)
    }
    fn tls12_session(
        &self,
        name: &rustls::pki_types::ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        self.inner.tls12_session(name)
    }
    fn remove_tls12_session(&self, name: &rustls::pki_types::ServerName<'static>) {
        self.inner.remove_tls12_session(name)
    }
    fn insert_tls13_ticket(
        &self,
        name: rustls::pki_types::ServerName<'static>,
        v: rustls::client::Tls13ClientSessionValue,
    ) {
        self.tickets
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.insert_tls13_ticket(name, v)
    }
    fn take_tls13_ticket(
        &self,
        name: &rustls::pki_types::ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        self.inner.take_tls13_ticket(name)
    }
}

/// Two TLS 1.3 session tickets by default (rustls' default: a returning client resumes);
/// `--tls-tickets 0` sends none.
#[tokio::test]
async fn session_tickets_by_default_and_none_when_asked() {
    for (flags, want) in [(&[][..], 2), (&["--tls-tickets", "0"][..], 0)] {
        let srv = start(flags);
        let store = Arc::new(CountingStore {
            inner: rustls::client::ClientSessionMemoryCache::new(8),
            tickets: Default::default(),
        });
        let mut c = (*config(&srv, &[&rustls::version::TLS13], &[b"http/1.1"])).clone();
        c.resumption = rustls::client::Resumption::store(store.clone());
        let mut raw = srv.raw_with(Arc::new(c)).await;
        raw.upgrade("/tickets").await;
        raw.frame(true, OpCode::Text, b"x").await;
        assert!(matches!(raw.event().await, Some(Event::Message(_))));
        let got = store.tickets.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(got, want, "tickets with {flags:?}");
    }
}

#[tokio::test]
async fn the_server_picks_aes_128_gcm_first_and_still_serves_every_other_suite() {
    use rustls::CipherSuite as S;
    let srv = start(&[]);
    // rustls clients list AES-256-GCM first: the server's order wins.
    for (versions, want) in [
        (&[&rustls::version::TLS13][..], S::TLS13_AES_128_GCM_SHA256),
        (
            &[&rustls::version::TLS12][..],
            S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ),
    ] {
        let raw = srv.raw_with(config(&srv, versions, &[b"http/1.1"])).await;
        let (_, session) = raw.tls.get_ref();
        let got = session.negotiated_cipher_suite().map(|s| s.suite());
        assert_eq!(got, Some(want));
    }
    // A client offering only one other suite gets it, and the connection carries frames.
    for only in [
        S::TLS13_AES_256_GCM_SHA384,
        S::TLS13_CHACHA20_POLY1305_SHA256,
    ] {
        let mut provider = rustls::crypto::ring::default_provider();
        provider.cipher_suites.retain(|s| s.suite() == only);
        let c = config_with(&srv, provider, &[&rustls::version::TLS13], &[b"http/1.1"]);
        let mut raw = srv.raw_with(c).await;
        let (_, session) = raw.tls.get_ref();
        assert_eq!(
            session.negotiated_cipher_suite().map(|s| s.suite()),
            Some(only)
        );
        raw.upgrade("/tls").await;
        raw.frame(true, OpCode::Text, b"any suite").await;
        let Some(Event::Message(m)) = raw.event().await else {
            panic!("echo")
        };
        assert_eq!(m.text(), Some("any suite"), "{only:?}");
    }
}
