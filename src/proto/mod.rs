//! The RFC 6455 protocol core, sans-io: bytes in, bytes and events out. No sockets, no clocks,
//! no runtime; the server and the load generator drive it.
//!
//! | module | owns |
//! |---|---|
//! | [`handshake`] | the HTTP/1.1 upgrade request: parse, validate, 101 and error responses |
//! | [`frame`] | frame headers: parse in place, or say how many bytes are missing |
//! | [`mask`] | XOR masking: byte-wise reference, u64 default, AVX2, fused copy, phase carry |
//! | [`utf8`] | incremental UTF-8 validation across fragments |
//! | [`close`] | close codes and close payload validation |
//! | [`control`] | Ping/Pong/Close payloads on the stack |
//! | [`message`] | fragmentation rules and message size across frames |
//! | [`decoder`] | one connection's byte stream → events, payload unmasked into a shareable frame |
//! | [`deflate`] | permessage-deflate payloads: one compressor per window size, a bounded inflater |
//! | [`inflate_pool`] | a worker's bounded inflaters, lent to connections mid compressed message |
//! | [`deflate_negotiation`] | permessage-deflate offers → the one accepted (no context takeover both ways) |
//! | [`encode`] | server and client frame encoding |
//! | [`error`] | [`ProtocolError`]: each rule broken, with the close code it earns |

pub mod close;
pub mod control;
pub mod decoder;
pub mod deflate;
pub mod deflate_negotiation;
pub mod encode;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod inflate_pool;
pub mod mask;
pub mod message;
pub mod opcode;
pub mod utf8;

pub use close::CloseCode;
pub use control::ControlPayload;
pub use decoder::{Decoder, DecoderConfig, Event, Message};
pub use error::ProtocolError;
pub use frame::{Decoded, FrameConfig, FrameHeader, Role};
pub use opcode::{DataKind, OpCode};
