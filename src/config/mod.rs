//! Configuration: flags ([`flags`]), `RINGCAST_*` environment variables (the same flags) and a
//! config file with Centrifugo v6 key names ([`file`]), merged into the effective
//! [`AppConfig`] the application layer reads. `ringcast config` prints it ([`show`]).
//!
//! | module | owns |
//! |---|---|
//! | [`units`] | sizes and durations as people write them |
//! | [`file`] | the config file's keys and defaults |
//! | [`flags`] | the application layer's flags |
//! | [`show`] | the effective configuration with secrets masked |

pub mod file;
pub mod flags;
pub mod show;
pub mod units;

use std::path::Path;
use std::time::Duration;

pub use file::{FileConfig, NamespaceOptions};
pub use flags::AppFlags;

use crate::auth::{KeyError, TokenVerifier, VerifyingKey};

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    File(#[from] file::FileError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("channel.namespaces: {0}")]
    Namespace(String),
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

/// The effective configuration of the application layer (immutable after start).
#[derive(Debug)]
pub struct AppConfig {
    /// What the file and flags said, merged (what `ringcast config` prints).
    pub file: FileConfig,
    pub verifier: TokenVerifier,
    /// No token key configured at all: anonymous access on, permissive channels.
    pub try_it_out: bool,
    pub allow_anonymous: bool,
    pub raw_rooms: bool,
    pub channels: crate::channels::ChannelRules,
    /// `[chat]`, checked.
    pub chat: crate::chat::ChatRules,
    /// The engine's limits.
    pub engine: file::EngineSection,
    /// Where the server API listens (None: off).
    pub api_listen: Option<std::net::SocketAddr>,
    /// The PostgreSQL outbox to apply (None: none).
    pub outbox: Option<OutboxSettings>,
    /// Peers whose X-Forwarded-For is believed.
    pub trusted_proxies: Vec<crate::server::admission::Cidr>,
}

/// `--outbox` and its companions.
#[derive(Clone)]
pub struct OutboxSettings {
    /// The connection string (may hold a password: never printed).
    pub url: String,
    pub table: crate::outbox::Table,
    pub batch: u32,
    pub poll: Duration,
}

impl std::fmt::Debug for OutboxSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxSettings")
            .field("table", &self.table)
            .field("batch", &self.batch)
            .field("poll", &self.poll)
            .finish_non_exhaustive()
    }
}

impl OutboxSettings {
    /// From the flags: None without `--outbox`.
    pub fn from_flags(flags: &AppFlags) -> Result<Option<Self>, ConfigError> {
        let Some(url) = flags.outbox.clone() else {
            return Ok(None);
        };
        let table = flags
            .outbox_table
            .as_deref()
            .unwrap_or(crate::outbox::DEFAULT_TABLE);
        let table = crate::outbox::Table::new(table).map_err(|e| ConfigError::Invalid {
            key: "--outbox-table",
            message: e.to_string(),
        })?;
        Ok(Some(Self {
            url,
            table,
            batch: flags
                .outbox_batch
                .unwrap_or(crate::outbox::DEFAULT_BATCH)
                .max(1),
            poll: flags.outbox_poll.unwrap_or(Duration::from_secs(1)),
        }))
    }
}

impl AppConfig {
    /// Merges the file (if any) and the flags, loads keys, checks namespaces.
    pub fn build(flags: &AppFlags) -> Result<Self, ConfigError> {
        let file = match &flags.config {
            Some(p) => FileConfig::load(p)?,
            None => FileConfig::default(),
        };
        Self::from_parts(file, flags.config.is_some(), flags)
    }

    /// From a parsed file (`from_file`: a file was given, so no try-it-out defaults) and flags.
    pub fn from_parts(
        mut file: FileConfig,
        from_file: bool,
        flags: &AppFlags,
    ) -> Result<Self, ConfigError> {
        apply_flags(&mut file, flags);
        let verifier = verifier(&file)?;
        let try_it_out = !verifier.is_configured();
        if try_it_out && !from_file {
            // Nothing configured: a server one can try with any client, no token needed.
            let open = &mut file.channel.without_namespace;
            open.allow_subscribe_for_client = true;
            open.allow_subscribe_for_anonymous = true;
            open.allow_publish_for_client = true;
            open.allow_publish_for_anonymous = true;
            open.allow_user_limited_channels = true;
            if file.client.allowed_origins.is_empty() {
                file.client.allowed_origins = vec!["*".into()];
            }
        }
        let allow_anonymous = flags.allow_anonymous || file.client.allow_anonymous || try_it_out;
        file.client.allow_anonymous = allow_anonymous;
        if file.client.ping_interval.0 < Duration::from_secs(1) {
            return Err(ConfigError::Invalid {
                key: "client.ping_interval",
                message: "must be at least 1s".into(),
            });
        }
        match file.engine.kind.as_str() {
            "memory" => {}
            "redis" => {
                let tls = match crate::engine::redis::address::RedisAddress::parse(
                    &file.engine.redis.address,
                ) {
                    Ok(a) => a.tls,
                    Err(e) => {
                        return Err(ConfigError::Invalid {
                            key: "engine.redis.address",
                            message: e.to_string(),
                        });
                    }
                };
                let ca = &file.engine.redis.tls_ca_file;
                if tls == ca.is_empty() {
                    return Err(ConfigError::Invalid {
                        key: "engine.redis.tls_ca_file",
                        message: if tls {
                            "a rediss:// address needs the PEM file of the CA that signed Redis' \
                             certificate (--redis-tls-ca)"
                                .into()
                        } else {
                            format!("{ca:?} is for rediss:// (TLS) addresses only")
                        },
                    });
                }
                if file.engine.redis.prefix.is_empty() {
                    return Err(ConfigError::Invalid {
                        key: "engine.redis.prefix",
                        message: "must not be empty".into(),
                    });
                }
                if file.engine.redis.presence_ttl.0 < Duration::from_secs(3) {
                    return Err(ConfigError::Invalid {
                        key: "engine.redis.presence_ttl",
                        message: "must be at least 3s".into(),
                    });
                }
                if file.engine.redis.timeout.0.is_zero() {
                    return Err(ConfigError::Invalid {
                        key: "engine.redis.timeout",
                        message: "must be more than 0".into(),
                    });
                }
            }
            other => {
                return Err(ConfigError::Invalid {
                    key: "engine.type",
                    message: format!("{other:?}: \"memory\" or \"redis\""),
                });
            }
        }
        let channels =
            crate::channels::ChannelRules::new(&file.channel).map_err(ConfigError::Namespace)?;
        let chat = crate::chat::ChatRules::new(&file.chat, &channels).map_err(|message| {
            ConfigError::Invalid {
                key: "chat",
                message,
            }
        })?;
        let api_listen = api_listen(&file.http_api)?;
        let outbox = OutboxSettings::from_flags(flags)?;
        let trusted_proxies = file
            .client
            .trusted_proxies
            .iter()
            .map(|p| p.parse())
            .collect::<Result<Vec<_>, String>>()
            .map_err(|message| ConfigError::Invalid {
                key: "client.trusted_proxies",
                message,
            })?;
        if outbox.is_some() && api_listen.is_none() {
            return Err(ConfigError::Invalid {
                key: "--outbox",
                message: "the outbox runs on the API's control plane: --api-listen must not be off"
                    .into(),
            });
        }
        Ok(Self {
            api_listen,
            outbox,
            trusted_proxies,
            engine: file.engine.clone(),
            raw_rooms: flags.raw_rooms != "off",
            file,
            verifier,
            try_it_out,
            allow_anonymous,
            channels,
            chat,
        })
    }

    /// The try-it-out configuration (no flags): what tests and `cargo run` get.
    pub fn try_it_out() -> Self {
        Self::build(&AppFlags {
            raw_rooms: "on".into(),
            ..AppFlags::default()
        })
        .expect("the default configuration is valid")
    }

    pub fn client(&self) -> &file::ClientSection {
        &self.file.client
    }
}

/// The API's address: loopback unless a key protects it.
fn api_listen(api: &file::HttpApiSection) -> Result<Option<std::net::SocketAddr>, ConfigError> {
    if api.listen == "off" {
        return Ok(None);
    }
    let addr: std::net::SocketAddr = api.listen.parse().map_err(|_| ConfigError::Invalid {
        key: "http_api.listen",
        message: format!(
            "{:?} is not an address such as 127.0.0.1:8000 (or off)",
            api.listen
        ),
    })?;
    if !addr.ip().is_loopback() && api.key.is_empty() {
        return Err(ConfigError::Invalid {
            key: "http_api.key",
            message: format!(
                "the server API would listen on {addr}, beyond loopback, without a key: set --api-key (or --api-listen on 127.0.0.1, or off)"
            ),
        });
    }
    Ok(Some(addr))
}

fn apply_flags(f: &mut FileConfig, flags: &AppFlags) {
    if let Some(p) = &flags.trusted_proxies {
        f.client.trusted_proxies = p.clone();
    }
    if let Some(s) = &flags.api_listen {
        f.http_api.listen = s.clone();
    }
    if let Some(s) = &flags.api_key {
        f.http_api.key = s.clone();
    }
    if let Some(n) = flags.api_max_body {
        f.http_api.max_body_size = n;
    }
    let c = &mut f.client;
    let t = &mut c.token;
    if let Some(s) = &flags.token_hmac_secret {
        t.hmac_secret_key = s.clone();
    }
    if let Some(s) = &flags.token_hmac_previous_secret {
        t.hmac_previous_secret_key = s.clone();
    }
    if let Some(n) = flags.token_hmac_previous_secret_valid_until {
        t.hmac_previous_secret_key_valid_until = n;
    }
    if !flags.token_public_key.is_empty() {
        t.public_key_files = flags
            .token_public_key
            .iter()
            .map(|p| p.display().to_string())
            .collect();
    }
    if let Some(p) = &flags.token_jwks_file {
        t.jwks_file = p.display().to_string();
    }
    if let Some(s) = &flags.token_audience {
        t.audience = s.clone();
    }
    if let Some(s) = &flags.token_issuer {
        t.issuer = s.clone();
    }
    if let Some(s) = &flags.token_cookie {
        c.token_cookie = s.clone();
    }
    if let Some(v) = &flags.allowed_origins {
        c.allowed_origins = v.iter().filter(|o| !o.is_empty()).cloned().collect();
    }
    if let Some(n) = flags.user_connection_limit {
        c.user_connection_limit = n;
    }
    if let Some(n) = flags.connect_rate_limit {
        c.connect_rate_limit = n;
    }
    if let Some(n) = flags.channel_limit {
        c.channel_limit = n;
    }
    if let Some(d) = flags.ping_interval {
        c.ping_interval = file::Dur(d);
    }
    if let Some(d) = flags.pong_timeout {
        c.pong_timeout = file::Dur(d);
    }
    if let Some(d) = flags.stale_close_delay {
        c.stale_close_delay = file::Dur(d);
    }
    if let Some(d) = flags.expired_close_delay {
        c.expired_close_delay = file::Dur(d);
    }
    if let Some(n) = flags.command_rate_limit {
        c.command_rate_limit = n;
    }
    if flags.personal_channel {
        c.subscribe_to_user_personal_channel.enabled = true;
    }
    if let Some(n) = flags.max_history_memory {
        f.engine.max_history_memory = n as usize;
    }
    if let Some(n) = flags.max_history_channels {
        f.engine.max_history_channels = n;
    }
    if let Some(n) = flags.max_presence {
        f.engine.max_presence = n;
    }
    if let Some(s) = &flags.engine {
        f.engine.kind = s.clone();
    }
    if let Some(s) = &flags.redis_address {
        f.engine.redis.address = s.clone();
    }
    if let Some(s) = &flags.redis_prefix {
        f.engine.redis.prefix = s.clone();
    }
    if let Some(s) = &flags.redis_tls_ca {
        f.engine.redis.tls_ca_file = s.clone();
    }
    if let Some(n) = flags.max_command_size {
        f.websocket.message_size_limit = n;
    }
}

fn verifier(f: &FileConfig) -> Result<TokenVerifier, ConfigError> {
    let t = &f.client.token;
    let mut keys = Vec::new();
    if !t.hmac_secret_key.is_empty() {
        keys.push(VerifyingKey::hmac(t.hmac_secret_key.as_bytes(), None)?);
    }
    if !t.hmac_previous_secret_key.is_empty() {
        let until = (t.hmac_previous_secret_key_valid_until > 0)
            .then_some(t.hmac_previous_secret_key_valid_until);
        keys.push(VerifyingKey::hmac(
            t.hmac_previous_secret_key.as_bytes(),
            until,
        )?);
    }
    for (pem, key) in [
        (&t.rsa_public_key, "client.token.rsa_public_key"),
        (&t.ecdsa_public_key, "client.token.ecdsa_public_key"),
    ] {
        if !pem.is_empty() {
            keys.push(VerifyingKey::public_pem(pem.as_bytes(), Path::new(key))?);
        }
    }
    for file in &t.public_key_files {
        keys.push(VerifyingKey::public_pem_file(Path::new(file))?);
    }
    if !t.jwks_file.is_empty() {
        keys.extend(VerifyingKey::jwks_file(Path::new(&t.jwks_file))?);
    }
    let opt = |s: &String| (!s.is_empty()).then(|| s.clone());
    Ok(TokenVerifier::new(keys, opt(&t.audience), opt(&t.issuer)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis_flags(address: &str, ca: Option<&str>) -> AppFlags {
        AppFlags {
            raw_rooms: "on".into(),
            engine: Some("redis".into()),
            redis_address: Some(address.into()),
            redis_tls_ca: ca.map(Into::into),
            ..AppFlags::default()
        }
    }

    fn refused_key(flags: &AppFlags) -> (&'static str, String) {
        match AppConfig::build(flags) {
            Err(ConfigError::Invalid { key, message }) => (key, message),
            other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn redis_addresses_and_their_tls_ca_are_checked_together() {
        assert!(AppConfig::build(&redis_flags("redis://127.0.0.1:6379", None)).is_ok());
        assert!(AppConfig::build(&redis_flags("rediss://r.example:6380", Some("ca.pem"))).is_ok());
        let (key, message) = refused_key(&redis_flags("rediss://r.example:6380", None));
        assert_eq!(key, "engine.redis.tls_ca_file");
        assert!(message.contains("--redis-tls-ca"), "{message}");
        let (key, _) = refused_key(&redis_flags("redis://127.0.0.1:6379", Some("ca.pem")));
        assert_eq!(key, "engine.redis.tls_ca_file");
        let (key, message) = refused_key(&redis_flags("redis://:hunter2@", None));
        assert_eq!(key, "engine.redis.address");
        assert!(!message.contains("hunter2"), "{message}");
    }
}
