//! ringcast: a WebSocket-over-TLS chat, broadcast and notification server on io_uring.
//!
//! # Layout
//! - [`proto`]: the RFC 6455 core, sans-io (handshake, frames, masking, UTF-8, close codes,
//!   message assembly, stream decoder, encoder). Everything else drives it.
//! - [`server`]: thread-per-core workers on compio (io_uring): TLS, rooms, broadcast, limits.
//! - [`logging`]: tracing set-up for the binaries.
//!
//! # Data path (see DESIGN.md)
//! ```text
//! accept (SO_REUSEPORT per core) → recv (buffer ring) → rustls → proto::Decoder
//!   → room (per-core slab) → one shared frame → other cores' inboxes → coalesced TLS send
//! ```

#![deny(unsafe_op_in_unsafe_fn)]

pub mod auth;
pub mod channels;
pub mod client_protocol;
pub mod config;
pub mod logging;
pub mod proto;
pub mod server;
pub mod session;
