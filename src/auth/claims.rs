//! JWT claims: Centrifugo's connection and subscription token claims, plus ringcast's `roles`.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;

/// `aud` is a string or an array of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, want: &str) -> bool {
        match self {
            Self::One(a) => a == want,
            Self::Many(v) => v.iter().any(|a| a == want),
        }
    }
}

/// The claims every token may carry and the verifier checks.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Registered {
    #[serde(default)]
    pub sub: String,
    pub exp: Option<u64>,
    pub nbf: Option<u64>,
    pub iat: Option<u64>,
    pub aud: Option<Audience>,
    pub iss: Option<String>,
}

/// What a user is, from the `roles` claim (the most privileged one listed wins).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Guest,
    User,
    Moderator,
    Admin,
}

/// Per-channel overrides a token may carry (`subs.<ch>.override`): accepted, applied by the
/// engine issue (presence, join/leave, recovery, positioning).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SubOverride {
    pub presence: Option<BoolValue>,
    pub join_leave: Option<BoolValue>,
    pub force_push_join_leave: Option<BoolValue>,
    pub force_recovery: Option<BoolValue>,
    pub force_positioning: Option<BoolValue>,
}

/// Centrifugo wraps override booleans: `{"value": true}`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct BoolValue {
    pub value: bool,
}

/// One entry of the connection token's `subs` map.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SubOptions {
    pub info: Option<Box<RawValue>>,
    pub data: Option<Box<RawValue>>,
    #[serde(rename = "override")]
    pub overrides: Option<SubOverride>,
}

/// A connection token.
#[derive(Debug, Default, Deserialize)]
pub struct ConnectClaims {
    #[serde(flatten)]
    pub registered: Registered,
    /// Goes into ClientInfo.conn_info (publications, presence, join/leave).
    pub info: Option<Box<RawValue>>,
    /// Server-side subscriptions.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Server-side subscriptions with options; takes precedence over `channels`.
    #[serde(default)]
    pub subs: HashMap<String, SubOptions>,
    /// Overrides `exp` for the connection's expiry; 0 = never expires.
    pub expire_at: Option<u64>,
    /// For backends only: never sent to clients.
    pub meta: Option<Box<RawValue>>,
    #[serde(default)]
    pub roles: Vec<Role>,
    /// Belongs in subscription tokens only: its presence makes a connection token invalid.
    pub channel: Option<String>,
}

impl ConnectClaims {
    /// The strongest role listed; `user` when none is (`guest` for anonymous connections is
    /// decided by the session).
    pub fn role(&self) -> Role {
        self.roles.iter().copied().max().unwrap_or(Role::User)
    }

    /// When the connection expires (unix seconds), if it does.
    pub fn expires_at(&self) -> Option<u64> {
        match self.expire_at {
            Some(0) => None,
            Some(t) => Some(t),
            None => self.registered.exp,
        }
    }
}

/// A subscription token (channels with the private prefix `$`, or as a grant).
#[derive(Debug, Default, Deserialize)]
pub struct SubscribeClaims {
    #[serde(flatten)]
    pub registered: Registered,
    #[serde(default)]
    pub channel: String,
    pub info: Option<Box<RawValue>>,
    pub data: Option<Box<RawValue>>,
    pub expire_at: Option<u64>,
    #[serde(rename = "override")]
    pub overrides: Option<SubOverride>,
}

impl SubscribeClaims {
    pub fn expires_at(&self) -> Option<u64> {
        match self.expire_at {
            Some(0) => None,
            Some(t) => Some(t),
            None => self.registered.exp,
        }
    }
}
