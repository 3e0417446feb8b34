//! The Centrifugo client protocol v2, JSON flavour: text frames ⇄ commands, replies and
//! pushes. No I/O and no decisions: [`crate::session`] decides, the runtime moves bytes.
//!
//! | module | owns |
//! |---|---|
//! | [`command`] | commands as parsed in place (borrowed strings, raw `data`) |
//! | [`batch`] | newline-delimited frames of commands |
//! | [`reply`] | replies, pushes and the shared publication push |
//! | [`codes`] | error codes, disconnect codes, unsubscribe codes |

pub mod batch;
pub mod codes;
pub mod command;
pub mod reply;

pub use batch::{BatchError, decode_commands};
pub use codes::{ClientError, Disconnect};
pub use command::{Command, Request};

/// The WebSocket subprotocol of the JSON flavour.
pub const SUBPROTOCOL_JSON: &str = "centrifuge-json";
/// The protobuf flavour's subprotocol: refused (not supported).
pub const SUBPROTOCOL_PROTOBUF: &str = "centrifuge-protobuf";
/// Where the protocol is served.
pub const PATH: &str = "/connection/websocket";
