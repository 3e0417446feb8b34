//! The stream decoder: bytes of one connection in (any split), events out.
//!
//! It owns everything between "decrypted bytes arrived" and "a message / ping / pong / close is
//! complete": a stash for a header cut by a read boundary (≤ 14 bytes), the frame being read,
//! the [`MessageAssembler`], and the buffer of the data message being assembled. Payload bytes
//! are unmasked while being copied from the input straight into that buffer, which keeps
//! [`HEADER_ROOM`] free bytes in front: [`Message::into_server_frame`] writes the outgoing
//! header there and returns one shared [`Bytes`] frame for every recipient, with no further copy.
//!
//! Memory: nothing is reserved for an idle connection; a data frame reserves at most
//! [`RESERVE_STEP`] ahead of the bytes that actually arrived (a header announcing 16 MiB does
//! not make us allocate 16 MiB). No I/O and no clock here.

use bytes::{BufMut, Bytes, BytesMut};

use super::close::{CloseBody, parse_close_payload};
use super::control::ControlPayload;
use super::deflate::{INFLATE_CHUNK, InflateError, Inflater};
use super::encode::{encode_header, header_len};
use super::error::ProtocolError;
use super::frame::{Decoded, FrameConfig, FrameHeader, MAX_HEADER_LEN, Role, decode_header};
use super::inflate_pool::{InflaterPool, LentInflater};
use super::mask::Masker;
use super::message::{FrameRole, MessageAssembler};
use super::opcode::{DataKind, OpCode};

/// Free bytes kept in front of a message's payload for the server frame header.
pub const HEADER_ROOM: usize = 10;
/// A data frame reserves at most this much beyond what has arrived.
pub const RESERVE_STEP: usize = 64 * 1024;

/// Limits and role of a [`Decoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderConfig {
    pub role: Role,
    pub max_frame_size: u64,
    pub max_message_size: u64,
}

/// A complete data message whose payload sits behind [`HEADER_ROOM`] spare bytes.
#[derive(Debug)]
pub struct Message {
    pub kind: DataKind,
    /// permessage-deflate data (RSV1): [`Message::inflate`] it before reading.
    pub compressed: bool,
    /// Arrived compressed and was inflated by the decoder as its bytes came in.
    pub inflated: bool,
    buf: BytesMut,
}

impl Message {
    /// A compressed message inflated (the worker's [`Inflater`], reset for it), its payload at
    /// most `limit` bytes — past that the inflater stops, one chunk over at worst, and the
    /// message earns 1009 — and Text checked for UTF-8 (1007). Also returns the compressed
    /// buffer, for [`Decoder::recycle`]. An uncompressed message comes back as it is.
    pub fn inflate(
        self,
        inflater: &mut Inflater,
        limit: u64,
    ) -> Result<(Message, Option<BytesMut>), ProtocolError> {
        if !self.compressed {
            return Ok((self, None));
        }
        let limit = inflated_limit(limit);
        let mut out = inflate_output(self.payload().len(), limit);
        inflater.begin();
        inflater
            .inflate(self.payload(), true, limit, &mut out)
            .map_err(|e| inflate_error(e, &out, limit))?;
        let inflated = inflated_message(self.kind, out)?;
        Ok((inflated, Some(self.buf)))
    }

    pub fn payload(&self) -> &[u8] {
        &self.buf[HEADER_ROOM..]
    }

    /// The payload as text (`Some` for Text messages, which the decoder has validated).
    pub fn text(&self) -> Option<&str> {
        match self.kind {
            DataKind::Text => std::str::from_utf8(self.payload()).ok(),
            DataKind::Binary => None,
        }
    }

    /// Turns the message into a final, unmasked server frame of the same kind without copying
    /// the payload: the header is written into the room in front of it.
    pub fn into_server_frame(mut self) -> Bytes {
        let len = self.buf.len() - HEADER_ROOM;
        let hl = header_len(len as u64);
        let start = HEADER_ROOM - hl;
        self.buf[start..HEADER_ROOM]
            .copy_from_slice(encode_header(true, self.kind.opcode(), None, len as u64).as_bytes());
        let mut frame = self.buf;
        let _ = frame.split_to(start);
        frame.freeze()
    }

    /// The buffer back, for [`Decoder::recycle`] (clients that only read the payload).
    pub fn into_buffer(self) -> BytesMut {
        self.buf
    }
}

/// The inflated size limit in bytes of output, counting the header room in front.
fn inflated_limit(max_message_size: u64) -> usize {
    usize::try_from(max_message_size)
        .unwrap_or(usize::MAX)
        .saturating_add(HEADER_ROOM)
}

/// The inflate output buffer, header room in front: room for 4× the compressed bytes known so
/// far (JSON inflates 3–10×), never past the limit plus one chunk, so a message that nears the
/// limit grows in few steps.
fn inflate_output(compressed: usize, limit: usize) -> Vec<u8> {
    let guess = compressed
        .saturating_mul(4)
        .max(64)
        .min(limit.saturating_add(INFLATE_CHUNK));
    let mut out = Vec::with_capacity(HEADER_ROOM + guess);
    out.resize(HEADER_ROOM, 0);
    out
}

fn inflate_error(e: InflateError, out: &[u8], limit: usize) -> ProtocolError {
    match e {
        InflateError::TooBig => ProtocolError::MessageTooLarge {
            len: out.len().saturating_sub(HEADER_ROOM) as u64,
            max: (limit - HEADER_ROOM) as u64,
        },
        InflateError::Corrupt => ProtocolError::BadCompressedData,
    }
}

/// An inflated payload (behind its header room) as a message; Text checked for UTF-8 (1007).
fn inflated_message(kind: DataKind, out: Vec<u8>) -> Result<Message, ProtocolError> {
    if kind == DataKind::Text && std::str::from_utf8(&out[HEADER_ROOM..]).is_err() {
        return Err(ProtocolError::InvalidUtf8);
    }
    Ok(Message {
        kind,
        compressed: false,
        inflated: true,
        // A unique Vec-backed Bytes becomes a BytesMut without a copy.
        buf: BytesMut::from(Bytes::from(out)),
    })
}

/// A compressed message being inflated as its bytes arrive, with an inflater on loan.
#[derive(Debug)]
struct Inflating {
    inflater: LentInflater,
    /// `HEADER_ROOM` spare bytes, then the payload inflated so far.
    out: Vec<u8>,
}

/// Masked payload is unmasked through a stack buffer of this size on its way to the inflater.
const UNMASK_STEP: usize = 4096;

impl Inflating {
    fn feed(
        &mut self,
        masker: &mut Option<Masker>,
        chunk: &[u8],
        limit: usize,
    ) -> Result<(), ProtocolError> {
        let mut scratch = [0u8; UNMASK_STEP];
        for piece in chunk.chunks(UNMASK_STEP) {
            let input = match masker {
                Some(m) => {
                    let dst = &mut scratch[..piece.len()];
                    m.copy_into(piece, dst);
                    &*dst
                }
                None => piece,
            };
            self.inflater
                .inflate(input, false, limit, &mut self.out)
                .map_err(|e| inflate_error(e, &self.out, limit))?;
        }
        Ok(())
    }

    fn finish(mut self, kind: DataKind, limit: usize) -> Result<Message, ProtocolError> {
        self.inflater
            .inflate(&[], true, limit, &mut self.out)
            .map_err(|e| inflate_error(e, &self.out, limit))?;
        inflated_message(kind, self.out)
    }
}

/// What the peer sent.
#[derive(Debug)]
pub enum Event {
    Message(Message),
    Ping(ControlPayload),
    Pong(ControlPayload),
    /// A Close frame whose payload was validated; see [`Event::close_body`].
    Close(ControlPayload),
}

impl Event {
    /// Code and reason of a Close event (`None` for an empty close payload or another event).
    pub fn close_body(&self) -> Option<CloseBody<'_>> {
        match self {
            Self::Close(p) => parse_close_payload(p.as_bytes()).ok().flatten(),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct FrameInProgress {
    header: FrameHeader,
    role: FrameRole,
    remaining: u64,
    masker: Option<Masker>,
}

/// Streaming frame decoder for one connection.
#[derive(Debug)]
pub struct Decoder {
    frame_cfg: FrameConfig,
    /// A header cut by the end of the previous input.
    head: [u8; MAX_HEADER_LEN],
    head_len: u8,
    frame: Option<FrameInProgress>,
    assembler: MessageAssembler,
    /// The data message being assembled: `HEADER_ROOM` spare bytes, then the payload so far.
    msg: BytesMut,
    /// The control frame being collected; boxed on a connection's first control frame, so a
    /// connection that never sends one does not carry its 126 bytes.
    control: Option<Box<ControlPayload>>,
    /// Inflaters for compressed messages ([`Decoder::inflate_with`]); without, a compressed
    /// message comes out whole and still compressed.
    inflaters: Option<InflaterPool>,
    /// The compressed message being inflated as it arrives.
    inflating: Option<Inflating>,
    /// The inflated size limit ([`inflated_limit`] of the message size limit).
    inflate_limit: usize,
}

impl Decoder {
    pub fn new(cfg: DecoderConfig) -> Self {
        Self {
            frame_cfg: FrameConfig::new(cfg.role, cfg.max_frame_size.min(cfg.max_message_size)),
            head: [0; MAX_HEADER_LEN],
            head_len: 0,
            frame: None,
            assembler: MessageAssembler::new(cfg.max_message_size),
            msg: BytesMut::new(),
            control: None,
            inflaters: None,
            inflating: None,
            inflate_limit: inflated_limit(cfg.max_message_size),
        }
    }

    /// Hands back a message buffer so the next message can reuse its memory instead of
    /// allocating. Only worth it where messages are dropped right after reading them.
    pub fn recycle(&mut self, mut buf: BytesMut) {
        if self.msg.capacity() == 0 && buf.capacity() <= RESERVE_STEP && buf.try_reclaim(0) {
            buf.clear();
            self.msg = buf;
        }
    }

    /// permessage-deflate was agreed: RSV1 may mark a message compressed.
    pub fn allow_compression(&mut self) {
        self.frame_cfg.allowed_rsv = 0b100;
    }

    /// permessage-deflate was agreed, and compressed messages are inflated as their bytes
    /// arrive with an inflater lent by `pool` (bounded by the message size limit, checked as
    /// the output grows): they come out inflated. When the pool has none left, a compressed
    /// message is assembled whole and comes out compressed, for [`Message::inflate`].
    pub fn inflate_with(&mut self, pool: InflaterPool) {
        self.allow_compression();
        self.inflaters = Some(pool);
    }

    /// True while a compressed message is being inflated (it holds a lent inflater).
    pub fn is_inflating(&self) -> bool {
        self.inflating.is_some()
    }

    /// True when no frame or message is partly read (a clean place for the stream to end).
    pub fn is_idle(&self) -> bool {
        self.head_len == 0 && self.frame.is_none() && !self.assembler.in_message()
    }

    /// Makes an idle decoder ready for another connection of the same limits: compressed
    /// messages allowed (and inflated with `inflaters`) or not, and a kept message buffer over
    /// `keep` bytes freed. Holds nothing of the previous connection: an idle decoder's only
    /// other state is its limits and its (empty) control-frame buffer.
    pub fn reuse(&mut self, inflaters: Option<InflaterPool>, keep: usize) {
        debug_assert!(self.is_idle() && self.inflating.is_none());
        self.frame_cfg.allowed_rsv = if inflaters.is_some() { 0b100 } else { 0 };
        self.inflaters = inflaters;
        if let Some(control) = &mut self.control {
            **control = ControlPayload::EMPTY;
        }
        if self.msg.capacity() > keep {
            self.msg = BytesMut::new();
        }
    }

    /// Consumes bytes from the front of `input` until an event completes (returned) or the
    /// input runs out (`Ok(None)`, everything consumed). Call again with the rest of the input
    /// after each event. After an error the connection must be failed with the error's close
    /// code; the decoder is not usable any more.
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Event>, ProtocolError> {
        loop {
            if self.frame.is_none() && !self.read_header(input)? {
                return Ok(None);
            }
            let frame = self.frame.as_mut().expect("frame started");
            let take = usize::try_from(frame.remaining)
                .unwrap_or(usize::MAX)
                .min(input.len());
            let (chunk, rest) = input.split_at(take);
            *input = rest;
            frame.remaining -= take as u64;
            match frame.role {
                FrameRole::Control(_) => {
                    let control = self
                        .control
                        .get_or_insert_with(|| Box::new(ControlPayload::EMPTY));
                    let dst = control.append_slot(take);
                    copy_payload(&mut frame.masker, chunk, dst);
                }
                FrameRole::Data { .. } if self.inflating.is_some() => {
                    let z = self.inflating.as_mut().expect("checked");
                    z.feed(&mut frame.masker, chunk, self.inflate_limit)?;
                }
                FrameRole::Data { .. } => {
                    let at = self.msg.len();
                    self.msg.put_bytes(0, take);
                    let dst = &mut self.msg[at..];
                    copy_payload(&mut frame.masker, chunk, dst);
                    self.assembler.on_data(dst)?;
                }
            }
            if frame.remaining > 0 {
                return Ok(None);
            }
            let frame = self.frame.take().expect("frame started");
            if let Some(event) = self.finish_frame(frame)? {
                return Ok(Some(event));
            }
        }
    }

    /// Reads the next header from the stash and `input`; false when more bytes are needed.
    fn read_header(&mut self, input: &mut &[u8]) -> Result<bool, ProtocolError> {
        let had = self.head_len as usize;
        let (header, used) = if had == 0 {
            match decode_header(input, &self.frame_cfg)? {
                Decoded::Complete((h, n)) => (h, n),
                Decoded::Incomplete { .. } => {
                    // Shorter than the longest header, or it would be complete.
                    self.head[..input.len()].copy_from_slice(input);
                    self.head_len = input.len() as u8;
                    *input = &[];
                    return Ok(false);
                }
            }
        } else {
            let add = (MAX_HEADER_LEN - had).min(input.len());
            self.head[had..had + add].copy_from_slice(&input[..add]);
            match decode_header(&self.head[..had + add], &self.frame_cfg)? {
                Decoded::Complete((h, n)) => (h, n - had),
                Decoded::Incomplete { .. } => {
                    self.head_len = (had + add) as u8;
                    *input = &input[add..];
                    return Ok(false);
                }
            }
        };
        self.head_len = 0;
        *input = &input[used..];
        self.start_frame(header, input.len())?;
        Ok(true)
    }

    fn start_frame(&mut self, header: FrameHeader, available: usize) -> Result<(), ProtocolError> {
        let role = self.assembler.on_header(&header)?;
        match role {
            FrameRole::Control(_) => {
                if let Some(control) = &mut self.control {
                    **control = ControlPayload::EMPTY;
                }
            }
            FrameRole::Data { first, .. } => {
                let len = usize::try_from(header.payload_len).unwrap_or(usize::MAX);
                if first {
                    self.inflating = None;
                    let compressed = header.rsv & 0b100 != 0;
                    if let Some(inflater) = self
                        .inflaters
                        .as_ref()
                        .filter(|_| compressed)
                        .and_then(InflaterPool::take)
                    {
                        self.inflating = Some(Inflating {
                            inflater,
                            out: inflate_output(len.min(available), self.inflate_limit),
                        });
                    } else {
                        self.msg.clear();
                        self.msg.put_bytes(0, HEADER_ROOM);
                    }
                }
                if self.inflating.is_none() {
                    self.msg.reserve(len.min(available.max(RESERVE_STEP)));
                }
            }
        }
        self.frame = Some(FrameInProgress {
            header,
            role,
            remaining: header.payload_len,
            masker: header.mask.map(Masker::new),
        });
        Ok(())
    }

    fn finish_frame(&mut self, frame: FrameInProgress) -> Result<Option<Event>, ProtocolError> {
        Ok(match frame.role {
            FrameRole::Control(opcode) => {
                let payload = self
                    .control
                    .as_deref()
                    .copied()
                    .unwrap_or(ControlPayload::EMPTY);
                match opcode {
                    OpCode::Ping => Some(Event::Ping(payload)),
                    OpCode::Pong => Some(Event::Pong(payload)),
                    _ => {
                        parse_close_payload(payload.as_bytes())?;
                        Some(Event::Close(payload))
                    }
                }
            }
            FrameRole::Data { .. } => {
                debug_assert!(frame.header.opcode != OpCode::Close);
                let Some(end) = self.assembler.on_frame_end()? else {
                    return Ok(None);
                };
                Some(Event::Message(match self.inflating.take() {
                    Some(z) => z.finish(end.kind, self.inflate_limit)?,
                    None => Message {
                        kind: end.kind,
                        compressed: end.compressed,
                        inflated: false,
                        buf: std::mem::take(&mut self.msg),
                    },
                }))
            }
        })
    }
}

#[inline]
fn copy_payload(masker: &mut Option<Masker>, src: &[u8], dst: &mut [u8]) {
    match masker {
        Some(m) => m.copy_into(src, dst),
        None => dst.copy_from_slice(src),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::close::CloseCode;
    use crate::proto::encode::{server_frame, write_client_frame};

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn server(max: u64) -> Decoder {
        Decoder::new(DecoderConfig {
            role: Role::Server,
            max_frame_size: max,
            max_message_size: max,
        })
    }

    fn client_frame(fin: bool, op: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        write_client_frame(&mut v, fin, op, payload, KEY);
        v
    }

    /// Feeds `bytes` in pieces of `step` and collects events (or the first error).
    fn run(d: &mut Decoder, bytes: &[u8], step: usize) -> Result<Vec<Event>, ProtocolError> {
        let mut events = Vec::new();
        for piece in bytes.chunks(step.max(1)) {
            let mut input = piece;
            while let Some(ev) = d.decode(&mut input)? {
                events.push(ev);
            }
            assert!(input.is_empty());
        }
        Ok(events)
    }

    #[test]
    fn rfc_vector_in_every_split() {
        let bytes = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        for step in 1..=bytes.len() {
            let mut d = server(1 << 20);
            let ev = run(&mut d, &bytes, step).unwrap();
            assert_eq!(ev.len(), 1, "step {step}");
            let Event::Message(m) = &ev[0] else { panic!() };
            assert_eq!(m.kind, DataKind::Text);
            assert_eq!(m.payload(), b"Hello");
            assert_eq!(m.text(), Some("Hello"));
            assert!(d.is_idle());
        }
    }

    #[test]
    fn message_becomes_a_server_frame_without_copy() {
        for len in [0usize, 5, 125, 126, 200, 65535, 65536, 70000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut d = server(1 << 20);
            let mut ev = run(&mut d, &client_frame(true, OpCode::Binary, &payload), 4096).unwrap();
            let Event::Message(m) = ev.remove(0) else {
                panic!()
            };
            let payload_ptr = m.payload().as_ptr();
            let frame = m.into_server_frame();
            assert_eq!(frame, server_frame(OpCode::Binary, &payload), "len {len}");
            assert_eq!(
                frame[header_len(len as u64)..].as_ptr(),
                payload_ptr,
                "payload was moved"
            );
        }
    }

    #[test]
    fn fragmented_text_with_ping_in_between() {
        let mut bytes = client_frame(false, OpCode::Text, "κό".as_bytes());
        bytes.extend(client_frame(true, OpCode::Ping, b"hb"));
        bytes.extend(client_frame(false, OpCode::Continuation, "σμ".as_bytes()));
        bytes.extend(client_frame(true, OpCode::Continuation, "ε".as_bytes()));
        for step in [1, 2, 3, 7, bytes.len()] {
            let mut d = server(1 << 20);
            let ev = run(&mut d, &bytes, step).unwrap();
            assert_eq!(ev.len(), 2);
            assert!(matches!(&ev[0], Event::Ping(p) if p.as_bytes() == b"hb"));
            let Event::Message(m) = &ev[1] else { panic!() };
            assert_eq!(m.text(), Some("κόσμε"));
        }
    }

    #[test]
    fn close_with_code_and_reason() {
        let bytes = client_frame(true, OpCode::Close, b"\x03\xe8bye");
        let ev = run(&mut server(100), &bytes, 1).unwrap();
        let body = ev[0].close_body().unwrap();
        assert_eq!((body.code, body.reason), (CloseCode::NORMAL, "bye"));
        let ev = run(&mut server(100), &client_frame(true, OpCode::Close, b""), 1).unwrap();
        assert!(matches!(ev[0], Event::Close(p) if p.is_empty()));
    }

    #[test]
    fn errors_carry_their_close_codes() {
        let cases: Vec<(Vec<u8>, u16)> = vec![
            (b"\x81\x05Hello".to_vec(), 1002),                      // unmasked
            (client_frame(true, OpCode::Text, b"\xff"), 1007),      // bad UTF-8
            (client_frame(true, OpCode::Binary, &[0; 101]), 1009),  // over the limit
            (client_frame(true, OpCode::Continuation, b"x"), 1002), // no start
            (client_frame(true, OpCode::Close, b"\x03"), 1002),     // 1-byte close
            (client_frame(true, OpCode::Close, b"\x03\xed"), 1002), // code 1005
            (client_frame(true, OpCode::Close, b"\x03\xe8\xff"), 1007), // reason not UTF-8
            (
                [
                    client_frame(false, OpCode::Binary, &[0; 60]),
                    client_frame(true, OpCode::Continuation, &[0; 60]),
                ]
                .concat(),
                1009,
            ),
        ];
        for (bytes, code) in cases {
            let e = run(&mut server(100), &bytes, 1).unwrap_err();
            assert_eq!(e.close_code().0, code, "{e}");
        }
    }

    #[test]
    fn invalid_utf8_fails_before_the_message_ends() {
        let mut d = server(1 << 20);
        let mut bytes = client_frame(false, OpCode::Text, b"ok \xed\xa0\x80");
        bytes.extend(client_frame(true, OpCode::Continuation, b"never read"));
        let first_len = bytes.len() - (2 + 4 + 10);
        let mut input = &bytes[..first_len];
        assert_eq!(
            d.decode(&mut input).unwrap_err(),
            ProtocolError::InvalidUtf8
        );
    }

    #[test]
    fn a_huge_announced_frame_does_not_reserve_its_size() {
        let mut d = server(16 << 20);
        let bytes = client_frame(true, OpCode::Binary, &vec![0; 16 << 20]);
        let mut input = &bytes[..100];
        assert!(d.decode(&mut input).unwrap().is_none());
        assert!(
            d.msg.capacity() <= HEADER_ROOM + RESERVE_STEP + 64,
            "reserved {}",
            d.msg.capacity()
        );
    }

    #[test]
    fn client_role_reads_server_frames_and_recycles_buffers() {
        let mut d = Decoder::new(DecoderConfig {
            role: Role::Client,
            max_frame_size: 1 << 20,
            max_message_size: 1 << 20,
        });
        let bytes = [
            server_frame(OpCode::Text, b"one"),
            server_frame(OpCode::Text, b"two"),
        ]
        .concat();
        let mut input = &bytes[..];
        let Some(Event::Message(m)) = d.decode(&mut input).unwrap() else {
            panic!()
        };
        assert_eq!(m.payload(), b"one");
        let ptr = m.payload().as_ptr();
        d.recycle(m.into_buffer());
        let Some(Event::Message(m)) = d.decode(&mut input).unwrap() else {
            panic!()
        };
        assert_eq!(m.payload(), b"two");
        assert_eq!(m.payload().as_ptr(), ptr, "recycled buffer reused");
        assert!(input.is_empty());
    }

    /// A masked client frame with RSV1 set (compressed message start).
    fn compressed_frame(fin: bool, op: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut v = client_frame(fin, op, payload);
        v[0] |= 0x40;
        v
    }

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(crate::proto::deflate::Deflater::new(1).compress(data, 15, &mut out));
        out
    }

    fn compressing_server(max: u64) -> Decoder {
        let mut d = server(max);
        d.allow_compression();
        d
    }

    #[test]
    fn rsv1_is_refused_unless_compression_was_agreed() {
        let bytes = compressed_frame(true, OpCode::Text, &deflate(&[b'a'; 300]));
        let e = run(&mut server(1 << 20), &bytes, 7).unwrap_err();
        assert_eq!(e.close_code().0, 1002);
    }

    #[test]
    fn a_compressed_message_in_fragments_inflates_to_the_text() {
        let text = "κόσμε ".repeat(100);
        let z = deflate(text.as_bytes());
        let (a, b) = z.split_at(z.len() / 2);
        let mut bytes = compressed_frame(false, OpCode::Text, a);
        bytes.extend(client_frame(true, OpCode::Ping, b"p"));
        bytes.extend(client_frame(true, OpCode::Continuation, b));
        for step in [1, 3, 1000] {
            let mut d = compressing_server(1 << 20);
            let mut events = run(&mut d, &bytes, step).unwrap();
            assert_eq!(events.len(), 2);
            let Event::Message(m) = events.pop().unwrap() else {
                panic!("a message")
            };
            assert!(m.compressed);
            let (m, spent) = m.inflate(&mut Inflater::default(), 1 << 20).unwrap();
            assert!(spent.is_some());
            assert_eq!(m.text(), Some(text.as_str()));
            let frame = m.into_server_frame();
            assert_eq!(&frame[frame.len() - text.len()..], text.as_bytes());
        }
    }

    #[test]
    fn a_deflate_bomb_stops_at_the_limit() {
        let mut bomb = Vec::new();
        assert!(crate::proto::deflate::Deflater::new(9).compress(
            &vec![0u8; 8 << 20],
            15,
            &mut bomb
        ));
        assert!(bomb.len() < 20_000, "{}", bomb.len());
        let mut d = compressing_server(1 << 20);
        let mut events = run(&mut d, &compressed_frame(true, OpCode::Binary, &bomb), 4096).unwrap();
        let Some(Event::Message(m)) = events.pop() else {
            panic!("a message")
        };
        let e = m.inflate(&mut Inflater::default(), 1 << 20).unwrap_err();
        assert_eq!(e.close_code().0, 1009);
    }

    #[test]
    fn compressed_text_is_utf8_checked_after_inflating_and_garbage_is_1007() {
        let mut d = compressing_server(1 << 20);
        let bad = deflate(&[0xff; 400]);
        let mut events = run(&mut d, &compressed_frame(true, OpCode::Text, &bad), 64).unwrap();
        let Some(Event::Message(m)) = events.pop() else {
            panic!("a message")
        };
        assert_eq!(
            m.inflate(&mut Inflater::default(), 1 << 20).unwrap_err(),
            ProtocolError::InvalidUtf8
        );
        let mut d = compressing_server(1 << 20);
        let garbage = [0xff, 0xff, 0xff, 0xff, 0x00];
        let mut events = run(
            &mut d,
            &compressed_frame(true, OpCode::Binary, &garbage),
            64,
        )
        .unwrap();
        let Some(Event::Message(m)) = events.pop() else {
            panic!("a message")
        };
        let e = m.inflate(&mut Inflater::default(), 1 << 20).unwrap_err();
        assert_eq!(e, ProtocolError::BadCompressedData);
        assert_eq!(e.close_code().0, 1007);
    }

    fn streaming_server(max: u64, pool: &InflaterPool) -> Decoder {
        let mut d = server(max);
        d.inflate_with(pool.clone());
        d
    }

    #[test]
    fn streaming_inflates_fragments_in_every_split_and_returns_the_inflater() {
        let text = "κόσμε chat ".repeat(300);
        let z = deflate(text.as_bytes());
        let (a, rest) = z.split_at(z.len() / 3);
        let (b, c) = rest.split_at(rest.len() / 2);
        let mut bytes = compressed_frame(false, OpCode::Text, a);
        bytes.extend(client_frame(true, OpCode::Ping, b"p"));
        bytes.extend(client_frame(false, OpCode::Continuation, b));
        bytes.extend(client_frame(true, OpCode::Continuation, c));
        bytes.extend(client_frame(true, OpCode::Text, b"plain after"));
        let pool = InflaterPool::new(1);
        for step in [1, 2, 5, 64, 1000, bytes.len()] {
            let mut d = streaming_server(1 << 20, &pool);
            let events = run(&mut d, &bytes, step).unwrap();
            assert_eq!(events.len(), 3, "step {step}");
            let Event::Message(m) = &events[1] else {
                panic!("a message")
            };
            assert!(m.inflated && !m.compressed);
            assert_eq!(m.text(), Some(text.as_str()), "step {step}");
            let Event::Message(m) = &events[2] else {
                panic!("a message")
            };
            assert!(!m.inflated);
            assert_eq!(m.text(), Some("plain after"));
            assert_eq!(
                pool.lent(),
                0,
                "the inflater came back at the message's end"
            );
        }
    }

    #[test]
    fn streaming_stops_a_bomb_before_its_compressed_bytes_are_all_read() {
        // 64 MiB of zeros: ≈ 64 KiB compressed, a 1 MiB limit.
        let bomb = deflate(&vec![0u8; 64 << 20]);
        let pool = InflaterPool::new(1);
        let mut d = streaming_server(1 << 20, &pool);
        let bytes = compressed_frame(true, OpCode::Binary, &bomb);
        let mut fed = 0;
        let e = loop {
            let mut input = &bytes[fed..fed + 512];
            fed += 512;
            match d.decode(&mut input) {
                Ok(None) => assert!(d.msg.capacity() == 0, "compressed bytes are not kept"),
                Ok(Some(_)) => panic!("no event before the limit"),
                Err(e) => break e,
            }
        };
        assert_eq!(e.close_code().0, 1009, "{e}");
        assert!(
            fed < bytes.len() / 8,
            "stopped after {fed} of {} bytes",
            bytes.len()
        );
        let out = &d
            .inflating
            .as_ref()
            .expect("still held by the failed decoder")
            .out;
        assert!(out.capacity() <= HEADER_ROOM + (1 << 20) + 2 * INFLATE_CHUNK);
        drop(d);
        assert_eq!(pool.lent(), 0, "a dropped decoder gives its inflater back");
    }

    #[test]
    fn streaming_refuses_bad_utf8_garbage_and_data_after_the_final_block() {
        let pool = InflaterPool::new(1);
        let bad = deflate(&[0xff; 400]);
        let bytes = compressed_frame(true, OpCode::Text, &bad);
        let e = run(&mut streaming_server(1 << 20, &pool), &bytes, 64).unwrap_err();
        assert_eq!(e, ProtocolError::InvalidUtf8);
        let garbage = compressed_frame(true, OpCode::Binary, &[0xff, 0xff, 0xff, 0xff, 0x00]);
        let e = run(&mut streaming_server(1 << 20, &pool), &garbage, 2).unwrap_err();
        assert_eq!(e.close_code().0, 1007);
        // A final block (BFINAL) is allowed; anything after it, even in a later fragment, is not.
        let mut fin = Vec::new();
        let mut enc = flate2::write::DeflateEncoder::new(&mut fin, flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, b"final block").unwrap();
        enc.finish().unwrap();
        let ok = compressed_frame(true, OpCode::Text, &fin);
        let ev = run(&mut streaming_server(1 << 20, &pool), &ok, 3).unwrap();
        assert!(matches!(&ev[0], Event::Message(m) if m.text() == Some("final block")));
        let mut after = compressed_frame(false, OpCode::Text, &fin);
        after.extend(client_frame(true, OpCode::Continuation, b"\x00"));
        let e = run(&mut streaming_server(1 << 20, &pool), &after, 3).unwrap_err();
        assert_eq!(e.close_code().0, 1007);
        assert_eq!(pool.lent(), 0);
    }

    #[test]
    fn with_no_inflater_left_a_compressed_message_comes_out_whole() {
        let pool = InflaterPool::new(1);
        let held = pool.take().unwrap();
        let text = "x".repeat(500);
        let bytes = compressed_frame(true, OpCode::Text, &deflate(text.as_bytes()));
        let mut events = run(&mut streaming_server(1 << 20, &pool), &bytes, 10).unwrap();
        let Some(Event::Message(m)) = events.pop() else {
            panic!("a message")
        };
        assert!(m.compressed && !m.inflated);
        assert_eq!(pool.exhausted(), 1);
        let (m, _) = m.inflate(&mut Inflater::default(), 1 << 20).unwrap();
        assert_eq!(m.text(), Some(text.as_str()));
        drop(held);
    }
}
