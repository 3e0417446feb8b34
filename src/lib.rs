//! ringcast: a WebSocket-over-TLS chat, broadcast and notification server on io_uring that
//! speaks the Centrifugo client protocol v2 (JSON).
//!
//! # Layout (layers, lowest first)
//! - [`proto`]: the RFC 6455 core, sans-io (handshake, frames, masking, UTF-8, close codes,
//!   message assembly, stream decoder, encoder). Knows nothing of channels.
//! - [`client_protocol`]: the Centrifugo v2 JSON codec: frames ⇄ commands, replies, pushes,
//!   codes. No I/O, no decisions.
//! - [`auth`]: JWT verification (time as an argument). [`channels`]: names, namespaces and
//!   permission decisions. [`config`]: the config file (Centrifugo keys), flags, units.
//! - [`session`]: one client connection's protocol state machine, sans-io:
//!   `handle_frame(frame, now, host)` → replies, pushes, a disconnect decision.
//! - [`server`]: the runtime: thread-per-core workers on compio (io_uring), TLS, raw rooms,
//!   per-worker channel subscriber lists, cross-core inboxes, limits. Moves bytes; decides
//!   nothing about the protocol.
//! - Shared by the server and loadgen: [`tls`] (rustls configs, dev certificate, the server's
//!   TLS byte session), [`rt`] (wake-ups, yield), [`host`] (kernel version, fd limit).
//! - [`api`]: the server HTTP API, sans-io (Centrifugo's methods). [`control`]: the control
//!   plane thread (tokio) serving it, `/metrics`, `/health`, `/ready`, and applying the
//!   PostgreSQL [`outbox`]. [`cluster`]: what nodes sharing a Redis engine tell each other
//!   (session commands, chat state changes, node figures), sans-io.
//! - [`logging`]: tracing set-up for the binaries.
//!
//! # Data path (see DESIGN.md)
//! ```text
//! accept (SO_REUSEPORT per core) → recv (buffer ring) → rustls → proto::Decoder
//!   raw room:  → one shared frame → local members + other cores' inboxes → coalesced TLS send
//!   /connection/websocket: → session.handle_frame → replies (one text frame per batch)
//!       publish → codec encodes the pub push once → every core's inbox with subscribers
//!       (the publisher's own included, under the channel directory's lock) → fan-out → send
//! ```

#![deny(unsafe_op_in_unsafe_fn)]

pub mod api;
pub mod auth;
pub mod channels;
pub mod chat;
pub mod client_protocol;
pub mod cluster;
pub mod config;
pub mod control;
pub mod engine;
pub mod files;
pub mod host;
pub mod logging;
pub mod outbox;
pub mod proto;
pub mod rt;
pub mod server;
pub mod session;
#[doc(hidden)]
pub mod test_keys;
pub mod tls;
pub mod web;
