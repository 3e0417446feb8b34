//! The configuration file: TOML or JSON with Centrifugo v6's key names for every option the two
//! servers share (`client.token.hmac_secret_key`, `channel.namespaces[]`, …), so a Centrifugo
//! configuration carries over. Unknown keys are an error that names the key.
//!
//! Keys ringcast adds are marked "(ringcast)" in their docs and in PROTOCOL.md.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::units::parse_duration;

/// A duration written as Centrifugo does: `"25s"`, `"500ms"`, `"2m"` (a bare number = seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Secs(u64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(s) => parse_duration(&s)
                .map(Dur)
                .map_err(serde::de::Error::custom),
            Raw::Secs(n) => Ok(Dur(Duration::from_secs(n))),
        }
    }
}

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = self.0;
        if d.subsec_millis() != 0 || d.as_secs() == 0 {
            s.serialize_str(&format!("{}ms", d.as_millis()))
        } else {
            s.serialize_str(&format!("{}s", d.as_secs()))
        }
    }
}

const fn secs(n: u64) -> Dur {
    Dur(Duration::from_secs(n))
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub client: ClientSection,
    pub channel: ChannelSection,
    pub http_api: HttpApiSection,
    pub websocket: WebsocketSection,
    pub engine: EngineSection,
    pub chat: ChatSection,
}

/// The channel engine.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    /// `memory` (one node) or `redis` (several nodes through one Redis).
    #[serde(rename = "type")]
    pub kind: String,
    /// (ringcast) channels with history (epoch, offsets) at most; publishes into more are
    /// refused (error 106), counted and logged.
    pub max_history_channels: usize,
    /// (ringcast) bytes of history in all; over it the least recently published channels lose
    /// their history first (counted, logged).
    pub max_history_memory: usize,
    /// (ringcast) presence entries in all (memory engine), per channel (Redis engine); more
    /// are not added (counted, logged).
    pub max_presence: usize,
    /// The Redis engine's connection (`type = "redis"`).
    pub redis: RedisSection,
}

/// The Redis engine (`[engine] type = "redis"`): several ringcast nodes with the same address
/// and prefix share channels, history and presence.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSection {
    /// `redis://[[user]:password@]host[:port][/db]`, or `rediss://…` for TLS (Redis 6.2 or
    /// newer; the password is shown as `***` in logs and errors).
    pub address: String,
    /// (ringcast) with `rediss://`: PEM file of the CA(s) that signed Redis' certificate.
    pub tls_ca_file: String,
    /// Prefix of every key and PUB/SUB channel.
    pub prefix: String,
    /// How long a presence entry outlives its node's last refresh (the node refreshes every
    /// third of it).
    pub presence_ttl: Dur,
    /// (ringcast) how long one Redis call may take before the command fails (error 100).
    pub timeout: Dur,
}

impl Default for RedisSection {
    fn default() -> Self {
        Self {
            address: "redis://127.0.0.1:6379".into(),
            tls_ca_file: String::new(),
            prefix: "ringcast".into(),
            presence_ttl: secs(60),
            timeout: secs(2),
        }
    }
}

impl Default for EngineSection {
    fn default() -> Self {
        Self {
            kind: "memory".into(),
            max_history_channels: 100_000,
            max_history_memory: 256 << 20,
            max_presence: 1_000_000,
            redis: RedisSection::default(),
        }
    }
}

/// (ringcast) Chat on top of the client protocol: which namespaces are chat rooms, who may do
/// what there, message limits, auto-moderation. See PROTOCOL.md, "Chat".
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatSection {
    /// Namespaces whose channels are chat rooms: publishes must be chat messages, the
    /// permission table, mutes and bans apply. Empty: chat is off.
    pub namespaces: Vec<String>,
    /// The namespace of direct-message channels (`dm:#alice,bob`); must be a chat namespace
    /// that allows user-limited channels ("" = no DMs).
    pub dm_namespace: String,
    /// Longest message text, in characters.
    pub max_text_len: usize,
    /// A file of blocked words, one per line (`#` comments); "" = none.
    pub blocked_words_file: String,
    /// `refuse` a message with a blocked word, or `mask` the word with `*`.
    pub blocked_words_action: String,
    /// Distinct emoji one message may carry.
    pub max_reaction_emoji: usize,
    /// Rooms the web page (and `rpc chat.info`) lists.
    pub rooms: Vec<String>,
    /// Per-namespace permission overrides: namespace → role → permission names.
    pub permissions:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, Vec<String>>>,
    pub automod: AutomodSection,
}

impl Default for ChatSection {
    fn default() -> Self {
        Self {
            namespaces: Vec::new(),
            dm_namespace: String::new(),
            max_text_len: crate::chat::message::DEFAULT_MAX_TEXT_LEN,
            blocked_words_file: String::new(),
            blocked_words_action: "refuse".into(),
            max_reaction_emoji: 20,
            rooms: Vec::new(),
            permissions: Default::default(),
            automod: AutomodSection::default(),
        }
    }
}

/// (ringcast) Automatic moderation of chat rooms.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AutomodSection {
    pub enabled: bool,
    /// More than this many messages within `flood_interval` is a flood.
    pub flood_messages: u32,
    pub flood_interval: Dur,
    /// This many identical messages in a row is a repeat.
    pub repeat_messages: u32,
    /// Mute durations for a violation at reputation below 75, 50, 25 (above 75: a warning).
    pub mute_steps: Vec<Dur>,
    /// Reputation (0–100) lost per violation.
    pub reputation_penalty: u32,
    /// Time that restores one point of reputation.
    pub reputation_restore: Dur,
}

impl Default for AutomodSection {
    fn default() -> Self {
        Self {
            enabled: true,
            flood_messages: 10,
            flood_interval: secs(10),
            repeat_messages: 3,
            mute_steps: vec![secs(60), secs(600), secs(3600)],
            reputation_penalty: 25,
            reputation_restore: secs(60),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSection {
    pub hmac_secret_key: String,
    /// A previous secret still accepted (rotation), until `hmac_previous_secret_key_valid_until`.
    pub hmac_previous_secret_key: String,
    /// Unix seconds; 0 = no end.
    pub hmac_previous_secret_key_valid_until: u64,
    /// PEM text of an RSA public key.
    pub rsa_public_key: String,
    /// PEM text of an ECDSA public key.
    pub ecdsa_public_key: String,
    /// (ringcast) PEM files, each holding a public key: RSA, EC or Ed25519.
    pub public_key_files: Vec<String>,
    /// (ringcast) a JWKS file; Centrifugo's `jwks_public_endpoint` (a URL) is not supported.
    pub jwks_file: String,
    pub audience: String,
    pub issuer: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PersonalChannelSection {
    pub enabled: bool,
    pub personal_channel_namespace: String,
}

impl Default for PersonalChannelSection {
    fn default() -> Self {
        Self {
            enabled: false,
            personal_channel_namespace: "personal".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientSection {
    pub token: TokenSection,
    /// Browsers' Origin values allowed at the upgrade (`*` = any; empty = any non-browser
    /// client and same-origin pages only... see PROTOCOL.md).
    pub allowed_origins: Vec<String>,
    pub ping_interval: Dur,
    pub pong_timeout: Dur,
    pub stale_close_delay: Dur,
    pub expired_close_delay: Dur,
    pub expired_sub_close_delay: Dur,
    pub channel_limit: usize,
    /// Per user, across every worker of this server; 0 = no limit.
    pub user_connection_limit: usize,
    pub history_max_publication_limit: u32,
    pub recovery_max_publication_limit: u32,
    pub subscribe_to_user_personal_channel: PersonalChannelSection,
    /// (ringcast) allow connections without a token (user "", role guest).
    pub allow_anonymous: bool,
    /// (ringcast) commands per second per connection (token bucket, burst = 2 s worth); 0 = off.
    pub command_rate_limit: u32,
    /// (ringcast) new connections per second per client IP; 0 = off.
    pub connect_rate_limit: u32,
    /// (ringcast) cookie that may carry the connection token at the upgrade.
    pub token_cookie: String,
    /// (ringcast) a channel every connection is subscribed to server-side at connect ("" =
    /// none): the server API publishes into it to reach everyone.
    pub broadcast_channel: String,
    /// (ringcast) reverse proxies whose X-Forwarded-For names the client: addresses or
    /// networks ("127.0.0.1", "10.0.0.0/8").
    pub trusted_proxies: Vec<String>,
}

impl Default for ClientSection {
    fn default() -> Self {
        Self {
            token: TokenSection::default(),
            allowed_origins: Vec::new(),
            ping_interval: secs(25),
            pong_timeout: secs(8),
            stale_close_delay: secs(10),
            expired_close_delay: secs(25),
            expired_sub_close_delay: secs(25),
            channel_limit: 128,
            user_connection_limit: 0,
            history_max_publication_limit: 300,
            recovery_max_publication_limit: 300,
            subscribe_to_user_personal_channel: PersonalChannelSection::default(),
            allow_anonymous: false,
            command_rate_limit: 50,
            connect_rate_limit: 0,
            token_cookie: String::new(),
            broadcast_channel: String::new(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// Options of a namespace (`channel.namespaces[]`, with `name`) or of channels without one
/// (`channel.without_namespace`, no `name`). Default: everything off (deny).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NamespaceOptions {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub allow_subscribe_for_client: bool,
    pub allow_subscribe_for_anonymous: bool,
    pub allow_publish_for_client: bool,
    pub allow_publish_for_subscriber: bool,
    pub allow_publish_for_anonymous: bool,
    pub allow_presence_for_client: bool,
    pub allow_presence_for_subscriber: bool,
    pub allow_presence_for_anonymous: bool,
    pub allow_history_for_client: bool,
    pub allow_history_for_subscriber: bool,
    pub allow_history_for_anonymous: bool,
    pub allow_user_limited_channels: bool,
    /// Channel names (the part after `ns:`) must match this regex.
    pub channel_regex: String,
    // Engine options: accepted now, used by the channel engine (history, presence, recovery).
    pub presence: bool,
    pub join_leave: bool,
    pub force_push_join_leave: bool,
    pub history_size: u32,
    pub history_ttl: Option<Dur>,
    pub history_meta_ttl: Option<Dur>,
    pub force_positioning: bool,
    pub allow_positioning: bool,
    pub force_recovery: bool,
    pub allow_recovery: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelSection {
    pub max_length: usize,
    pub private_prefix: String,
    pub namespace_boundary: String,
    pub user_boundary: String,
    pub user_separator: String,
    pub without_namespace: NamespaceOptions,
    pub namespaces: Vec<NamespaceOptions>,
}

impl Default for ChannelSection {
    fn default() -> Self {
        Self {
            max_length: 255,
            private_prefix: "$".into(),
            namespace_boundary: ":".into(),
            user_boundary: "#".into(),
            user_separator: ",".into(),
            without_namespace: NamespaceOptions::default(),
            namespaces: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpApiSection {
    /// The key API requests must carry ("" = none: the API then listens on loopback only).
    pub key: String,
    /// (ringcast) where the API, /metrics, /health and /ready listen (plain HTTP on loopback,
    /// HTTPS with the server's certificate elsewhere), or "off".
    pub listen: String,
    /// (ringcast) largest request body in bytes (413 beyond).
    pub max_body_size: u64,
}

impl Default for HttpApiSection {
    fn default() -> Self {
        Self {
            key: String::new(),
            listen: "127.0.0.1:8000".into(),
            max_body_size: 1 << 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebsocketSection {
    /// Largest client protocol message (one frame of commands); larger: 3501. Bytes.
    pub message_size_limit: u64,
}

impl Default for WebsocketSection {
    fn default() -> Self {
        Self {
            message_size_limit: 65_536,
        }
    }
}

/// Why the configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
}

impl FileConfig {
    /// Reads `path`: `.json` as JSON, anything else as TOML.
    pub fn load(path: &Path) -> Result<Self, FileError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, path.extension().is_some_and(|e| e == "json")).map_err(|message| {
            FileError::Parse {
                path: shown,
                message,
            }
        })
    }

    pub fn parse(text: &str, json: bool) -> Result<Self, String> {
        if json {
            serde_json::from_str(text).map_err(|e| e.to_string())
        } else {
            toml::from_str(text).map_err(|e| e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centrifugo_keys_parse_in_json_and_toml() {
        let json = r#"{"client":{"token":{"hmac_secret_key":"s"},"allowed_origins":["https://a.example"],
            "ping_interval":"20s","channel_limit":5},
            "channel":{"namespaces":[{"name":"chat","allow_subscribe_for_client":true,"history_size":10,"history_ttl":"300s"}]},
            "http_api":{"key":"k"}}"#;
        let c = FileConfig::parse(json, true).unwrap();
        assert_eq!(c.client.token.hmac_secret_key, "s");
        assert_eq!(c.client.ping_interval, secs(20));
        assert_eq!(c.client.channel_limit, 5);
        assert_eq!(c.channel.namespaces[0].name, "chat");
        assert_eq!(c.channel.namespaces[0].history_ttl, Some(secs(300)));
        assert_eq!(c.client.pong_timeout, secs(8), "defaults fill the rest");
        let toml = "[client]\nuser_connection_limit = 5\n[[channel.namespaces]]\nname = \"dm\"\nallow_user_limited_channels = true\n";
        let c = FileConfig::parse(toml, false).unwrap();
        assert_eq!(c.client.user_connection_limit, 5);
        assert!(c.channel.namespaces[0].allow_user_limited_channels);
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = FileConfig::parse(r#"{"client":{"ping_intervall":"1s"}}"#, true).unwrap_err();
        assert!(e.contains("ping_intervall"), "{e}");
        let e = FileConfig::parse(
            "[channel.without_namespace]\nallow_everything = true\n",
            false,
        )
        .unwrap_err();
        assert!(e.contains("allow_everything"), "{e}");
    }
}
