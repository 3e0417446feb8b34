//! TLS setup: the rustls `ServerConfig` (ring provider, X25519 from aws-lc-rs, TLS 1.2 + 1.3,
//! ALPN http/1.1) from PEM files, or from a dev certificate made on first run (rcgen, ECDSA
//! P-256) and reused after; and the `ClientConfig` ringcast's own clients (loadgen, the tests)
//! use to trust a PEM.
//! Every failure is a [`TlsSetupError`] naming the file and what is wrong with it.
//! [`session`]: the server's TLS (or plain) byte session over rustls, driven by hand.

pub mod record;
pub mod session;
mod x25519;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub const DEV_CERT: &str = "dev-cert.pem";
pub const DEV_KEY: &str = "dev-key.pem";

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read certificate file {path}: {source}")]
    ReadCert {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("certificate file {0} holds no CERTIFICATE block")]
    NoCertificate(PathBuf),
    #[error("cannot read private key file {path}: {source}")]
    ReadKey {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("{path} holds a certificate rustls cannot trust: {source}")]
    Untrusted {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("certificate and key do not make a usable TLS identity: {0}")]
    Identity(rustls::Error),
    #[error("cannot make a dev certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the certificate came from (for the start-up log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertOrigin {
    Files,
    DevCreated(PathBuf),
    DevReused(PathBuf),
}

/// Loads `cert` + `key`, or makes/reuses the dev certificate in `dev_dir`; sends `tickets`
/// TLS 1.3 session tickets after each full handshake.
pub fn server_config(
    cert_key: Option<(&Path, &Path)>,
    dev_dir: &Path,
    tickets: usize,
) -> Result<(Arc<ServerConfig>, CertOrigin, Arc<ReloadableCert>), TlsSetupError> {
    let (cert, key, origin) = match cert_key {
        Some((c, k)) => (c.to_path_buf(), k.to_path_buf(), CertOrigin::Files),
        None => {
            let (c, k) = (dev_dir.join(DEV_CERT), dev_dir.join(DEV_KEY));
            if c.exists() && k.exists() {
                (c.clone(), k, CertOrigin::DevReused(c))
            } else {
                make_dev_cert(dev_dir, &c, &k)?;
                (c.clone(), k, CertOrigin::DevCreated(c))
            }
        }
    };
    let provider = Arc::new(server_provider());
    let identity = load_identity(&cert, &key, &provider)?;
    let resolver = Arc::new(ReloadableCert {
        current: RwLock::new(Arc::new(identity)),
        cert,
        key,
        provider: provider.clone(),
    });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Identity)?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Our order (AES-128-GCM first, `server_provider`), not the client's.
    config.ignore_client_order = true;
    config.send_tls13_tickets = tickets;
    // After a TLS 1.3 handshake our own record layer takes the traffic keys from rustls
    // (`tls::record`): an idle connection then holds two AEAD keys, not a rustls connection.
    config.enable_secret_extraction = true;
    Ok((Arc::new(config), origin, resolver))
}

/// ring's provider with the AES-128-GCM suites first. rustls clients (loadgen among them)
/// list AES-256-GCM-SHA384 first, and its SHA-384 key schedule runs on SHA-512 compression, which
/// has no instructions on x86 CPUs: it was 11 % of the server's CPU per new connection in
/// `perf`, against SHA-256's SHA-NI; AES-128 also seals each record in 10 rounds instead of 14
/// (results/tls-aes128.md). Every suite rustls offers stays available. Its X25519 key exchange
/// is aws-lc-rs' (results/tls-x25519.md).
fn server_provider() -> CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.sort_by_key(|suite| {
        use rustls::CipherSuite as S;
        let aes128 = matches!(
            suite.suite(),
            S::TLS13_AES_128_GCM_SHA256
                | S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        );
        (
            suite.version().version != rustls::ProtocolVersion::TLSv1_3,
            !aes128,
        )
    });
    // X25519 on aws-lc-rs (`x25519`): the same group in the same place, in half the time.
    for group in provider.kx_groups.iter_mut() {
        if group.name() == rustls::NamedGroup::X25519 {
            *group = x25519::X25519;
        }
    }
    provider
}

/// A certificate chain and its key from PEM files, checked to belong together.
fn load_identity(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsSetupError> {
    let chain = load_chain(cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsSetupError::ReadKey {
        path: key.to_path_buf(),
        source,
    })?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(TlsSetupError::Identity)?;
    let identity = CertifiedKey::new(chain, signing);
    match identity.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(identity)
        }
        Err(e) => Err(TlsSetupError::Identity(e)),
    }
}

/// The server's certificate, replaceable while serving (SIGHUP): every new handshake takes
/// the current one; open connections keep theirs.
pub struct ReloadableCert {
    current: RwLock<Arc<CertifiedKey>>,
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
}

impl std::fmt::Debug for ReloadableCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadableCert")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish()
    }
}

impl ReloadableCert {
    /// Reads the files again; on any error the current certificate stays.
    pub fn reload(&self) -> Result<(), TlsSetupError> {
        let identity = load_identity(&self.cert, &self.key, &self.provider)?;
        *self.current.write().expect("certificate lock poisoned") = Arc::new(identity);
        Ok(())
    }

    /// The certificate file (for logs and `ringcast check`).
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .expect("certificate lock poisoned")
                .clone(),
        )
    }
}

/// A client configuration (ring provider, TLS 1.2 + 1.3) trusting exactly the certificates in
/// the PEM file `ca` — for ringcast's own clients: loadgen, the tests, the baseline example.
pub fn client_config_trusting(ca: &Path) -> Result<ClientConfig, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    for cert in load_chain(ca)? {
        roots.add(cert).map_err(|source| TlsSetupError::Untrusted {
            path: ca.to_path_buf(),
            source,
        })?;
    }
    Ok(client_config(roots))
}

/// A client configuration trusting `roots` (an empty store trusts nothing: ws:// only).
pub fn client_config(roots: RootCertStore) -> ClientConfig {
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let err = |source| TlsSetupError::ReadCert {
        path: path.to_path_buf(),
        source,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    if chain.is_empty() {
        return Err(TlsSetupError::NoCertificate(path.to_path_buf()));
    }
    Ok(chain)
}

/// Self-signed ECDSA P-256 certificate for localhost and 127.0.0.1; the key file is 0600.
pub fn make_dev_cert(dir: &Path, cert: &Path, key: &Path) -> Result<(), TlsSetupError> {
    let ck = rcgen::generate_simple_self_signed(vec![
        "localhost".into(),
        "127.0.0.1".into(),
        "::1".into(),
    ])?;
    std::fs::create_dir_all(dir).map_err(|source| TlsSetupError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    write_file(key, ck.signing_key.serialize_pem().as_bytes(), 0o600)?;
    write_file(cert, ck.cert.pem().as_bytes(), 0o644)
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsSetupError> {
    let err = |source| TlsSetupError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    f.write_all(bytes).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ringcast-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn the_servers_x25519_is_aws_lc_in_rings_place() {
        let names = |p: &CryptoProvider| p.kx_groups.iter().map(|g| g.name()).collect::<Vec<_>>();
        let ours = server_provider();
        assert_eq!(
            names(&ours),
            names(&rustls::crypto::ring::default_provider())
        );
        let x = ours
            .kx_groups
            .iter()
            .find(|g| g.name() == rustls::NamedGroup::X25519)
            .expect("X25519 offered");
        assert!(std::ptr::addr_eq(*x, x25519::X25519));
    }

    #[test]
    fn dev_certificate_is_made_once_then_reused() {
        let d = tempdir("dev");
        let (_, o1, _) = server_config(None, &d, 0).unwrap();
        assert_eq!(o1, CertOrigin::DevCreated(d.join(DEV_CERT)));
        let mode = std::fs::metadata(d.join(DEV_KEY)).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        let (cfg, o2, _) = server_config(None, &d, 0).unwrap();
        assert_eq!(o2, CertOrigin::DevReused(d.join(DEV_CERT)));
        assert_eq!(cfg.alpn_protocols, vec![b"http/1.1".to_vec()]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn bad_paths_and_contents_are_named() {
        let d = tempdir("bad");
        std::fs::create_dir_all(&d).unwrap();
        let missing = d.join("nope.pem");
        let e = server_config(Some((&missing, &missing)), &d, 0).unwrap_err();
        assert!(matches!(e, TlsSetupError::ReadCert { .. }), "{e}");
        assert!(e.to_string().contains("nope.pem"));

        let empty = d.join("empty.pem");
        std::fs::write(&empty, "not a pem\n").unwrap();
        let e = server_config(Some((&empty, &empty)), &d, 0).unwrap_err();
        assert!(matches!(e, TlsSetupError::NoCertificate(_)), "{e}");

        make_dev_cert(&d, &d.join("c.pem"), &d.join("k.pem")).unwrap();
        let e = server_config(Some((&d.join("c.pem"), &d.join("c.pem"))), &d, 0).unwrap_err();
        assert!(matches!(e, TlsSetupError::ReadKey { .. }), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_client_config_trusts_the_pem_it_is_given_and_names_a_bad_one() {
        let d = tempdir("client");
        make_dev_cert(&d, &d.join("c.pem"), &d.join("k.pem")).unwrap();
        let cfg = client_config_trusting(&d.join("c.pem")).unwrap();
        assert!(cfg.alpn_protocols.is_empty());
        let e = client_config_trusting(&d.join("k.pem")).unwrap_err();
        assert!(matches!(e, TlsSetupError::NoCertificate(_)), "{e}");
        let e = client_config_trusting(&d.join("nope.pem")).unwrap_err();
        assert!(e.to_string().contains("nope.pem"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
