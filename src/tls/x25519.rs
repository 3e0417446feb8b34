//! [`X25519`]: the handshake's X25519 key exchange on aws-lc-rs instead of ring — the rest of the
//! server's TLS stays on ring. Each full handshake generates one key pair and agrees one secret;
//! with ring that was ≈ 27 % of the server's CPU per new connection (`perf` of 10,000 connects),
//! and aws-lc-rs does the pair in 0.53× ring's time (results/tls-x25519.md).
//! Must not: do anything but the exchange; which groups are offered and in what order is
//! `server_provider`'s decision.

use aws_lc_rs::agreement;
use rustls::crypto::{ActiveKeyExchange, GetRandomFailed, SharedSecret, SupportedKxGroup};
use rustls::{Error, NamedGroup, PeerMisbehaved};

/// X25519 (RFC 7748) for rustls' key exchange.
pub static X25519: &dyn SupportedKxGroup = &Group;

#[derive(Debug)]
struct Group;

impl SupportedKxGroup for Group {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let private = agreement::EphemeralPrivateKey::generate(&agreement::X25519, &rng)
            .map_err(|_| GetRandomFailed)?;
        let public = private.compute_public_key().map_err(|_| GetRandomFailed)?;
        Ok(Box::new(Exchange { private, public }))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

struct Exchange {
    private: agreement::EphemeralPrivateKey,
    public: agreement::PublicKey,
}

impl ActiveKeyExchange for Exchange {
    /// The shared secret; a peer key of the wrong length, or one that gives the all-zero secret
    /// (a small-order point, refused by aws-lc), is the peer's fault.
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, Error> {
        if peer.len() != 32 {
            return Err(PeerMisbehaved::InvalidKeyShare.into());
        }
        let peer = agreement::UnparsedPublicKey::new(&agreement::X25519, peer);
        agreement::agree_ephemeral(self.private, peer, (), |secret| {
            Ok(SharedSecret::from(secret))
        })
        .map_err(|()| PeerMisbehaved::InvalidKeyShare.into())
    }

    fn pub_key(&self) -> &[u8] {
        self.public.as_ref()
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring_x25519() -> &'static dyn SupportedKxGroup {
        rustls::crypto::ring::default_provider()
            .kx_groups
            .into_iter()
            .find(|g| g.name() == NamedGroup::X25519)
            .expect("ring has X25519")
    }

    #[test]
    fn agrees_with_ring_both_ways() {
        for _ in 0..16 {
            let ours = X25519.start().unwrap();
            let theirs = ring_x25519().start().unwrap();
            assert_eq!(ours.pub_key().len(), 32);
            let (our_pub, their_pub) = (ours.pub_key().to_vec(), theirs.pub_key().to_vec());
            let a = ours.complete(&their_pub).unwrap();
            let b = theirs.complete(&our_pub).unwrap();
            assert_eq!(a.secret_bytes(), b.secret_bytes());
            assert_ne!(a.secret_bytes(), [0u8; 32]);
        }
    }

    #[test]
    fn fresh_keys_every_exchange() {
        let a = X25519.start().unwrap();
        let b = X25519.start().unwrap();
        assert_ne!(a.pub_key(), b.pub_key());
    }

    #[test]
    fn a_bad_peer_key_is_the_peers_fault() {
        let invalid = |peer: &[u8]| {
            let err = X25519
                .start()
                .unwrap()
                .complete(peer)
                .err()
                .expect("refused");
            assert_eq!(err, Error::PeerMisbehaved(PeerMisbehaved::InvalidKeyShare));
        };
        invalid(&[9; 31]);
        invalid(&[9; 33]);
        invalid(&[]);
        // Small-order points give the all-zero secret (RFC 7748 §6.1): 0 and 1.
        invalid(&[0; 32]);
        let mut one = [0u8; 32];
        one[0] = 1;
        invalid(&one);
    }
}
