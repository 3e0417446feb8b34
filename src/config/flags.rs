//! The application layer's flags (each also a `RINGCAST_*` environment variable). A flag given
//! overrides the same key of `--config FILE`.

use std::path::PathBuf;
use std::time::Duration;

use super::units::{parse_duration, parse_size};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct AppFlags {
    /// Configuration file, TOML or JSON, with Centrifugo v6 key names (see PROTOCOL.md).
    #[arg(long, env = "RINGCAST_CONFIG")]
    pub config: Option<PathBuf>,
    /// HMAC secret for HS256/384/512 tokens (client.token.hmac_secret_key).
    #[arg(long, env = "RINGCAST_TOKEN_HMAC_SECRET", hide_env_values = true)]
    pub token_hmac_secret: Option<String>,
    /// A previous HMAC secret still accepted during a rotation.
    #[arg(
        long,
        env = "RINGCAST_TOKEN_HMAC_PREVIOUS_SECRET",
        hide_env_values = true
    )]
    pub token_hmac_previous_secret: Option<String>,
    /// Until when (unix seconds) the previous secret is accepted; default: no end.
    #[arg(long, env = "RINGCAST_TOKEN_HMAC_PREVIOUS_SECRET_VALID_UNTIL")]
    pub token_hmac_previous_secret_valid_until: Option<u64>,
    /// Public key PEM file (RSA → RS*/PS*, EC → ES256/384, Ed25519 → EdDSA: from the key, never the token); repeatable.
    #[arg(long, env = "RINGCAST_TOKEN_PUBLIC_KEY", value_delimiter = ',')]
    pub token_public_key: Vec<PathBuf>,
    /// JWKS file ({"keys":[…]}); tokens name their key with `kid`.
    #[arg(long, env = "RINGCAST_TOKEN_JWKS_FILE")]
    pub token_jwks_file: Option<PathBuf>,
    /// Required `aud` of tokens.
    #[arg(long, env = "RINGCAST_TOKEN_AUDIENCE")]
    pub token_audience: Option<String>,
    /// Required `iss` of tokens.
    #[arg(long, env = "RINGCAST_TOKEN_ISSUER")]
    pub token_issuer: Option<String>,
    /// Cookie that may carry the connection token at the upgrade.
    #[arg(long, env = "RINGCAST_TOKEN_COOKIE")]
    pub token_cookie: Option<String>,
    /// Let connections without a token in (user "", role guest). On by itself when no token key is configured at all (try-it-out mode).
    #[arg(long, env = "RINGCAST_ALLOW_ANONYMOUS")]
    pub allow_anonymous: bool,
    /// Browser origins allowed to connect, comma-separated (`*` = any). No Origin header = not a browser: allowed.
    #[arg(long, env = "RINGCAST_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Option<Vec<String>>,
    /// Connections one user may hold across all workers (3504 beyond); 0 = no limit.
    #[arg(long, env = "RINGCAST_USER_CONNECTION_LIMIT")]
    pub user_connection_limit: Option<usize>,
    /// New connections per second one IP may open (HTTP 429 + Retry-After beyond); 0 = off.
    #[arg(long, env = "RINGCAST_CONNECT_RATE_LIMIT", value_parser = parse_per_second)]
    pub connect_rate_limit: Option<u32>,
    /// Channels one connection may subscribe to (error 106, 3505 for server-side ones).
    #[arg(long, env = "RINGCAST_CHANNEL_LIMIT")]
    pub channel_limit: Option<usize>,
    /// Interval of the protocol's server pings; a missing pong closes with 3012.
    #[arg(long, env = "RINGCAST_PING_INTERVAL", value_parser = parse_duration)]
    pub ping_interval: Option<Duration>,
    /// How long the server waits for a pong after its ping.
    #[arg(long, env = "RINGCAST_PONG_TIMEOUT", value_parser = parse_duration)]
    pub pong_timeout: Option<Duration>,
    /// Time allowed between the upgrade and the `connect` command (3502 after).
    #[arg(long, env = "RINGCAST_STALE_CLOSE_DELAY", value_parser = parse_duration)]
    pub stale_close_delay: Option<Duration>,
    /// Grace after a connection's token expires before closing with 3005 if not refreshed.
    #[arg(long, env = "RINGCAST_EXPIRED_CLOSE_DELAY", value_parser = parse_duration)]
    pub expired_close_delay: Option<Duration>,
    /// Largest client protocol frame (3501 beyond).
    #[arg(long, env = "RINGCAST_MAX_COMMAND_SIZE", value_parser = parse_size)]
    pub max_command_size: Option<u64>,
    /// Commands per second one protocol connection may send (error 111, then 3013); 0 = off.
    #[arg(long, env = "RINGCAST_COMMAND_RATE_LIMIT")]
    pub command_rate_limit: Option<u32>,
    /// Subscribe every connection to its personal channel `<namespace>:#<user>` server-side.
    #[arg(long, env = "RINGCAST_PERSONAL_CHANNEL")]
    pub personal_channel: bool,
    /// Bytes of channel history kept in all (the least recently published channels lose theirs first).
    #[arg(long, env = "RINGCAST_MAX_HISTORY_MEMORY", value_parser = parse_size)]
    pub max_history_memory: Option<u64>,
    /// Channels with history at most (publishes into more: error 106).
    #[arg(long, env = "RINGCAST_MAX_HISTORY_CHANNELS")]
    pub max_history_channels: Option<usize>,
    /// Presence entries in all, every channel together (Redis engine: per channel).
    #[arg(long, env = "RINGCAST_MAX_PRESENCE")]
    pub max_presence: Option<usize>,
    /// The channel engine: `memory` (one node) or `redis` (nodes share channels, history and
    /// presence through one Redis; see --redis-address).
    #[arg(long, env = "RINGCAST_ENGINE")]
    pub engine: Option<String>,
    /// The Redis engine's server: `redis://[[user]:password@]host[:port][/db]`, `rediss://…` for TLS (engine.redis.address).
    #[arg(long, env = "RINGCAST_REDIS_ADDRESS")]
    pub redis_address: Option<String>,
    /// With rediss://: PEM file of the CA(s) that signed Redis' certificate (engine.redis.tls_ca_file).
    #[arg(long, env = "RINGCAST_REDIS_TLS_CA")]
    pub redis_tls_ca: Option<String>,
    /// Prefix of the Redis engine's keys and PUB/SUB channels (nodes that share channels use
    /// the same).
    #[arg(long, env = "RINGCAST_REDIS_PREFIX")]
    pub redis_prefix: Option<String>,
    /// Raw rooms at every path other than the protocol's: on or off.
    #[arg(long, env = "RINGCAST_RAW_ROOMS", default_value = "on", value_parser = ["on", "off"])]
    pub raw_rooms: String,
    /// The server API, /metrics, /health and /ready: HTTP on this address, or `off` (http_api.listen) [default: 127.0.0.1:8000].
    #[arg(long, env = "RINGCAST_API_LISTEN")]
    pub api_listen: Option<String>,
    /// Key the server API requires (X-API-Key or Authorization: apikey KEY; http_api.key). Without one the API only listens on loopback.
    #[arg(long, env = "RINGCAST_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Largest API request body; larger: 413 (http_api.max_body_size). Units: KiB, MiB.
    #[arg(long, env = "RINGCAST_API_MAX_BODY", value_parser = parse_size)]
    pub api_max_body: Option<u64>,
    /// Reverse proxies (addresses or networks, comma-separated) whose X-Forwarded-For names the client (client.trusted_proxies).
    #[arg(long, env = "RINGCAST_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<String>>,
    /// PostgreSQL outbox to apply (postgres://user:pass@host/db); see `ringcast outbox-init`.
    #[arg(long, env = "RINGCAST_OUTBOX", hide_env_values = true)]
    pub outbox: Option<String>,
    /// The outbox table (schema.table allowed) [default: ringcast_outbox].
    #[arg(long, env = "RINGCAST_OUTBOX_TABLE")]
    pub outbox_table: Option<String>,
    /// Rows applied per transaction [default: 100].
    #[arg(long, env = "RINGCAST_OUTBOX_BATCH")]
    pub outbox_batch: Option<u32>,
    /// Polling interval when no NOTIFY arrives (the fallback) [default: 1s].
    #[arg(long, env = "RINGCAST_OUTBOX_POLL", value_parser = parse_duration)]
    pub outbox_poll: Option<Duration>,
}

/// `100`, `100/s`.
fn parse_per_second(s: &str) -> Result<u32, String> {
    s.trim()
        .trim_end_matches("/s")
        .parse()
        .map_err(|_| format!("{s:?} is not a rate such as 20/s"))
}
