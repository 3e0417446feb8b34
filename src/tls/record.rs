//! ringcast's own TLS 1.3 record layer, used once rustls has finished the handshake.
//!
//! rustls does the handshake and keeps the key schedule (a `KernelConnection`, the API made
//! for kTLS); this module owns the two traffic keys and sequence numbers and protects records
//! itself (RFC 8446 §5): frames are copied once into the send buffer and sealed in place there,
//! received records are opened in place in the worker's scratch buffer. An idle connection
//! keeps two AEAD keys instead of a whole rustls connection. It handles what may follow a
//! handshake: application data, alerts (close_notify ends the session, any other is fatal) and
//! KeyUpdate (answered when asked, and sent by us before a key reaches its record limit).
//! Anything else is refused with the alert RFC 8446 names. Nothing here does I/O.

use ring::aead::{
    AES_128_GCM, AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey,
};
use rustls::ConnectionTrafficSecrets;
use rustls::kernel::KernelConnection;
use rustls::server::ServerConnectionData;

/// Largest plaintext of a record.
pub const MAX_PLAIN: usize = 16 * 1024;
/// Largest ciphertext of a record the peer may send (RFC 8446 §5.2).
const MAX_CIPHER: usize = MAX_PLAIN + 256;
const HEADER: usize = 5;
const TAG: usize = 16;

const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
const KEY_UPDATE: u8 = 24;

/// Records sealed under one key before we change it: AES-GCM's confidentiality limit in TLS 1.3
/// is 2^24.5 full-size records; ChaCha20-Poly1305's is higher.
const RECORDS_PER_KEY: u64 = 1 << 24;

/// What went wrong, and the alert it is answered with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("a TLS record failed to decrypt (bad_record_mac)")]
    BadRecordMac,
    #[error("a TLS record of {0} bytes is over the limit (record_overflow)")]
    RecordOverflow(usize),
    #[error("unexpected TLS record after the handshake: {0} (unexpected_message)")]
    Unexpected(&'static str),
    #[error("malformed TLS message: {0} (decode_error)")]
    Decode(&'static str),
    #[error("the peer sent TLS alert {0}")]
    PeerAlert(u8),
    #[error("TLS key schedule: {0}")]
    Keys(String),
}

impl RecordError {
    /// The alert description we send for it (none for the peer's own alert).
    fn alert(&self) -> Option<u8> {
        match self {
            Self::BadRecordMac => Some(20),
            Self::RecordOverflow(_) => Some(22),
            Self::Unexpected(_) => Some(10),
            Self::Decode(_) => Some(50),
            Self::PeerAlert(_) => None,
            Self::Keys(_) => Some(80),
        }
    }
}

/// One direction's key, IV and sequence number.
struct Keys {
    key: LessSafeKey,
    iv: [u8; 12],
    seq: u64,
}

impl Keys {
    fn new((seq, secrets): (u64, ConnectionTrafficSecrets)) -> Result<Self, RecordError> {
        let (alg, key, iv) = match &secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&AES_128_GCM, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&AES_256_GCM, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => (&CHACHA20_POLY1305, key, iv),
            _ => {
                return Err(RecordError::Keys(
                    "a cipher suite we do not implement".into(),
                ));
            }
        };
        let key = UnboundKey::new(alg, key.as_ref())
            .map_err(|_| RecordError::Keys("a key of the wrong length".into()))?;
        let iv: [u8; 12] = iv
            .as_ref()
            .try_into()
            .map_err(|_| RecordError::Keys("an IV of the wrong length".into()))?;
        Ok(Self {
            key: LessSafeKey::new(key),
            iv,
            seq,
        })
    }

    /// The per-record nonce: the IV XOR the sequence number (RFC 8446 §5.3); advances it.
    fn next_nonce(&mut self) -> Nonce {
        let mut n = self.iv;
        for (b, s) in n[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *b ^= s;
        }
        self.seq += 1;
        Nonce::assume_unique_for_key(n)
    }
}

/// What one received record amounted to.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened {
    /// Application data at this range of the buffer given to [`Records::open`].
    Data(std::ops::Range<usize>),
    /// A record handled here (a KeyUpdate, an empty record).
    Nothing,
    /// The peer's close_notify.
    PeerClosed,
}

/// The record layer of one TLS 1.3 connection after its handshake.
pub struct Records {
    tx: Keys,
    rx: Keys,
    kernel: KernelConnection<ServerConnectionData>,
    /// Records under one of our keys before we change it.
    records_per_key: u64,
}

impl Records {
    pub fn new(
        secrets: rustls::ExtractedSecrets,
        kernel: KernelConnection<ServerConnectionData>,
    ) -> Result<Self, RecordError> {
        Ok(Self {
            tx: Keys::new(secrets.tx)?,
            rx: Keys::new(secrets.rx)?,
            kernel,
            records_per_key: RECORDS_PER_KEY,
        })
    }

    /// Seals `frames` as application data at the end of `out`: copied once, packed up to
    /// [`MAX_PLAIN`] per record, encrypted in place.
    pub fn seal_frames(&mut self, frames: &[bytes::Bytes], out: &mut Vec<u8>) {
        let mut pieces = frames.iter().map(|f| &f[..]).filter(|f| !f.is_empty());
        let mut rest: &[u8] = &[];
        loop {
            if rest.is_empty() {
                match pieces.next() {
                    Some(p) => rest = p,
                    None => return,
                }
            }
            let start = self.begin(out);
            while out.len() - start - HEADER < MAX_PLAIN {
                if rest.is_empty() {
                    match pieces.next() {
                        Some(p) => rest = p,
                        None => break,
                    }
                }
                let take = rest.len().min(MAX_PLAIN - (out.len() - start - HEADER));
                out.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
            }
            self.seal(start, APPLICATION_DATA, out);
        }
    }

    /// Appends a sealed alert (`level` 1 warning, 2 fatal).
    pub fn seal_alert(&mut self, level: u8, description: u8, out: &mut Vec<u8>) {
        let start = self.begin(out);
        out.extend_from_slice(&[level, description]);
        self.seal(start, ALERT, out);
    }

    /// Appends the alert answering `err`, if it has one.
    pub fn seal_alert_for(&mut self, err: &RecordError, out: &mut Vec<u8>) {
        if let Some(description) = err.alert() {
            self.seal_alert(2, description, out);
        }
    }

    /// Starts a record at the end of `out` (changing our key first when it is worn out);
    /// returns where its header is.
    fn begin(&mut self, out: &mut Vec<u8>) -> usize {
        if self.tx.seq >= self.records_per_key {
            // Our own KeyUpdate: "update_not_requested". A failure leaves the old key, which
            // still works well past this limit; the next record tries again.
            if let Err(e) = self.update_tx(out) {
                tracing::warn!("TLS key update failed: {e}");
            }
        }
        let start = out.len();
        out.extend_from_slice(&[0; HEADER]);
        start
    }

    /// Sends a KeyUpdate under the current key, then switches to the next key.
    fn update_tx(&mut self, out: &mut Vec<u8>) -> Result<(), RecordError> {
        let next = self
            .kernel
            .update_tx_secret()
            .map_err(|e| RecordError::Keys(e.to_string()))?;
        let next = Keys::new(next)?;
        let start = out.len();
        out.extend_from_slice(&[0; HEADER]);
        out.extend_from_slice(&[KEY_UPDATE, 0, 0, 1, 0]);
        self.seal(start, HANDSHAKE, out);
        self.tx = next;
        Ok(())
    }

    /// Closes the record begun at `start`: content type, header, encryption in place, tag.
    fn seal(&mut self, start: usize, content_type: u8, out: &mut Vec<u8>) {
        out.push(content_type);
        let len = out.len() - start - HEADER + TAG;
        let header = [APPLICATION_DATA, 3, 3, (len >> 8) as u8, len as u8];
        out[start..start + HEADER].copy_from_slice(&header);
        let nonce = self.tx.next_nonce();
        let tag = self
            .tx
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(header), &mut out[start + HEADER..])
            .expect("a record is far below the AEAD's length limit");
        out.extend_from_slice(tag.as_ref());
    }

    /// Opens the first record of `buf` in place. `Ok(None)`: the record is not complete yet.
    /// `Ok(Some((consumed, opened)))`: the record took `consumed` bytes. Records we must send
    /// in answer (a KeyUpdate) are appended to `reply`.
    pub fn open(
        &mut self,
        buf: &mut [u8],
        reply: &mut Vec<u8>,
    ) -> Result<Option<(usize, Opened)>, RecordError> {
        if buf.len() < HEADER {
            return Ok(None);
        }
        let header: [u8; HEADER] = buf[..HEADER].try_into().expect("5 bytes");
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len > MAX_CIPHER {
            return Err(RecordError::RecordOverflow(len));
        }
        if buf.len() < HEADER + len {
            return Ok(None);
        }
        let consumed = HEADER + len;
        match header[0] {
            APPLICATION_DATA => {}
            CHANGE_CIPHER_SPEC => return Err(RecordError::Unexpected("change_cipher_spec")),
            _ => return Err(RecordError::Unexpected("a record that is not encrypted")),
        }
        let nonce = self.rx.next_nonce();
        let inner = self
            .rx
            .key
            .open_in_place(nonce, Aad::from(header), &mut buf[HEADER..consumed])
            .map_err(|_| RecordError::BadRecordMac)?;
        // The content type is the last non-zero byte; zeros after it are padding.
        let Some(end) = inner.iter().rposition(|&b| b != 0) else {
            return Err(RecordError::Unexpected("a record without a content type"));
        };
        if end > MAX_PLAIN {
            return Err(RecordError::RecordOverflow(end));
        }
        let body = HEADER..HEADER + end;
        let opened = match inner[end] {
            APPLICATION_DATA if end == 0 => Opened::Nothing,
            APPLICATION_DATA => Opened::Data(body),
            ALERT => match inner[..end] {
                [_, 0] => Opened::PeerClosed,
                [_, description] => return Err(RecordError::PeerAlert(description)),
                _ => return Err(RecordError::Decode("an alert of the wrong length")),
            },
            // A KeyUpdate must end its record (RFC 8446 §5.1): it is the record's only message.
            HANDSHAKE => match inner[..end] {
                [KEY_UPDATE, 0, 0, 1, request @ (0 | 1)] => {
                    self.update_rx()?;
                    if request == 1 {
                        self.update_tx(reply)?;
                    }
                    Opened::Nothing
                }
                [KEY_UPDATE, ..] => return Err(RecordError::Decode("a bad KeyUpdate")),
                _ => {
                    return Err(RecordError::Unexpected(
                        "a handshake message other than a lone KeyUpdate",
                    ));
                }
            },
            _ => return Err(RecordError::Unexpected("an unknown content type")),
        };
        Ok(Some((consumed, opened)))
    }

    /// Tests: records sealed under our current key.
    #[cfg(test)]
    pub fn tx_seq(&self) -> u64 {
        self.tx.seq
    }

    /// Tests: our key is worn out after `records` more records.
    #[cfg(test)]
    pub fn wear_out_tx_key_after(&mut self, records: u64) {
        self.records_per_key = self.tx.seq + records;
    }

    fn update_rx(&mut self) -> Result<(), RecordError> {
        let next = self
            .kernel
            .update_rx_secret()
            .map_err(|e| RecordError::Keys(e.to_string()))?;
        self.rx = Keys::new(next)?;
        Ok(())
    }
}
