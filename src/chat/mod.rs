//! Chat on top of the client protocol (issue 11), sans-io: who may do what, the message shape,
//! mentions. The runtime wiring (rpc methods, sanctions, the web page) comes next.
//!
//! | module | owns |
//! |---|---|
//! | [`permissions`] | roles × permissions, per-namespace overrides, 103 naming the permission |
//! | [`message`] | `{type:"message", text, reply_to?, mentions?}` validation |
//! | [`mentions`] | `@name` parsing (not inside words or addresses) |

pub mod mentions;
pub mod message;
pub mod permissions;
