//! Server settings: every flag of `ringcast` (clap derive; `--help` prints the same text).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::config::units::{parse_duration, parse_size};

/// How connections read from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RecvMode {
    /// Multishot recv into the worker's buffer ring when the kernel has it (6.0+), else single.
    Auto,
    /// Multishot recv into the provided-buffer ring (io_uring, Linux 6.0+).
    Multishot,
    /// One read at a time into a buffer owned by the connection (any kernel, any driver).
    Single,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServerOptions {
    /// Address to listen on (every worker binds it with SO_REUSEPORT).
    #[arg(long, env = "RINGCAST_LISTEN", default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// Worker threads, one io_uring runtime and listener each [default: available cores].
    #[arg(long, env = "RINGCAST_WORKERS")]
    pub workers: Option<usize>,
    /// Listen backlog of each worker's socket (capped by net.core.somaxconn).
    #[arg(long, env = "RINGCAST_BACKLOG", default_value_t = 4096)]
    pub backlog: i32,
    /// Certificate chain, PEM. With --key; without both, a dev certificate is made in --cert-dir.
    #[arg(long, env = "RINGCAST_CERT", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key, PEM (PKCS#8, SEC1 or PKCS#1).
    #[arg(long, env = "RINGCAST_KEY", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Where the dev certificate is made on first run and reused afterwards.
    #[arg(long, env = "RINGCAST_CERT_DIR", default_value = "certs")]
    pub cert_dir: PathBuf,
    /// TLS 1.3 session tickets sent after each full handshake, so clients that come back can
    /// resume (0: none, no TLS 1.3 resumption). Turning them off saved no measurable server
    /// CPU per connection (results/handshake-tickets.md).
    #[arg(long, env = "RINGCAST_TLS_TICKETS", default_value_t = 2)]
    pub tls_tickets: usize,
    /// Serve ws:// without TLS (behind a TLS-terminating proxy only).
    #[arg(long, env = "RINGCAST_PLAINTEXT", conflicts_with_all = ["cert", "key"])]
    pub plaintext: bool,
    /// Most connections open at once; more get HTTP 503 (up to 10 % more, at least 64), beyond that they are closed at once.
    #[arg(long, env = "RINGCAST_MAX_CONNECTIONS", default_value_t = 100_000)]
    pub max_connections: usize,
    /// Largest message (all fragments together); larger ones are closed with 1009. Units: KiB, MiB.
    #[arg(long, env = "RINGCAST_MAX_MESSAGE_SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub max_message_size: u64,
    /// Largest single frame [default: --max-message-size].
    #[arg(long, env = "RINGCAST_MAX_FRAME_SIZE", value_parser = parse_size)]
    pub max_frame_size: Option<u64>,
    /// Messages (and Pings) a connection may send per minute (token bucket); more: Close 1008. 0: off.
    #[arg(long, env = "RINGCAST_RATE_LIMIT", default_value_t = 100)]
    pub rate_limit: u32,
    /// Bytes queued for one connection before it counts as a slow consumer and is closed with 1008.
    #[arg(long, env = "RINGCAST_MAX_BACKLOG", default_value = "2MiB", value_parser = parse_size)]
    pub max_backlog: u64,
    /// Interval of server Pings. Units: ms, s, m.
    #[arg(long, env = "RINGCAST_HEARTBEAT", default_value = "30s", value_parser = parse_duration)]
    pub heartbeat: Duration,
    /// A connection that sends nothing for this long is closed (1001).
    #[arg(long, env = "RINGCAST_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Time allowed for the TLS handshake plus the HTTP upgrade (slowloris guard).
    #[arg(long, env = "RINGCAST_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,
    /// On SIGINT/SIGTERM, how long to wait for clients to answer the server's Close.
    #[arg(long, env = "RINGCAST_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// Graceful drain: connections told to go per --drain-interval, all workers together (0 = all at once). Protocol clients get 3001 (their SDKs reconnect elsewhere), raw ones 1001.
    #[arg(long, env = "RINGCAST_DRAIN_BATCH", default_value_t = 0)]
    pub drain_batch: usize,
    /// Pause between drain batches.
    #[arg(long, env = "RINGCAST_DRAIN_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub drain_interval: Duration,
    /// After the server sends a Close, how long it waits for the client's Close.
    #[arg(long, env = "RINGCAST_CLOSE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub close_timeout: Duration,
    /// Most rooms open at once on this server.
    #[arg(long, env = "RINGCAST_MAX_ROOMS", default_value_t = 100_000)]
    pub max_rooms: usize,
    /// Entries in each worker's cross-core inbox; a full inbox drops broadcasts (counted, logged).
    #[arg(long, env = "RINGCAST_INBOX_CAPACITY", default_value_t = 65_536)]
    pub inbox_capacity: usize,
    /// Buffers in each worker's provided-buffer ring (rounded up to a power of two).
    #[arg(long, env = "RINGCAST_RECV_BUFFERS", default_value_t = 1024)]
    pub recv_buffers: u16,
    /// Size of each receive buffer.
    #[arg(long, env = "RINGCAST_RECV_BUFFER_SIZE", default_value = "16KiB", value_parser = parse_size)]
    pub recv_buffer_size: u64,
    /// How connections read.
    #[arg(long, env = "RINGCAST_RECV_MODE", value_enum, default_value = "auto")]
    pub recv_mode: RecvMode,
    #[command(flatten)]
    pub app: crate::config::AppFlags,
    #[command(flatten)]
    pub files: FilesFlags,
    #[command(flatten)]
    pub compression: CompressionFlags,
}

/// permessage-deflate (RFC 7692), off by default.
#[derive(Debug, Clone, clap::Args)]
pub struct CompressionFlags {
    /// Agree to permessage-deflate with clients that offer it (no context takeover both ways: one compressor per worker, a broadcast compressed once per worker and window size).
    #[arg(long, env = "RINGCAST_COMPRESSION")]
    pub compression: bool,
    /// Smaller messages are sent uncompressed. Units: KiB.
    #[arg(long, env = "RINGCAST_COMPRESSION_MIN_SIZE", default_value = "256", value_parser = parse_size)]
    pub compression_min_size: u64,
    /// zlib level, 0–9 (1: fastest).
    #[arg(long, env = "RINGCAST_COMPRESSION_LEVEL", default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub compression_level: u32,
    /// Per worker: connections that may be in the middle of a compressed message at once, each
    /// holding an inflater (≈ 40 KiB) that inflates it as it arrives; past this, a compressed
    /// message is received whole before inflating (counted in /metrics).
    #[arg(long, env = "RINGCAST_MAX_INFLATING", default_value_t = 256)]
    pub max_inflating: usize,
}

impl Default for CompressionFlags {
    fn default() -> Self {
        Self {
            compression: false,
            compression_min_size: 256,
            compression_level: 1,
            max_inflating: 256,
        }
    }
}

impl CompressionFlags {
    /// None when compression is off.
    pub fn settings(&self) -> Option<super::compression::CompressionSettings> {
        self.compression
            .then(|| super::compression::CompressionSettings {
                min_size: usize::try_from(self.compression_min_size).unwrap_or(usize::MAX),
                level: self.compression_level,
                max_inflating: self.max_inflating,
            })
    }
}

/// Signed-URL file streaming on this listener (`/files/…`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FilesFlags {
    /// Serve GET/HEAD /files/<path>?expires=…&sig=… from this directory (needs --url-signing-key).
    #[arg(long, env = "RINGCAST_FILES")]
    pub files: Option<std::path::PathBuf>,
    /// HMAC-SHA256 key for links: hex (≥ 32 bytes) or a file holding it.
    #[arg(long, env = "RINGCAST_URL_SIGNING_KEY", hide_env_values = true)]
    pub url_signing_key: Option<String>,
    /// A previous key, still accepted (rotation).
    #[arg(
        long,
        env = "RINGCAST_URL_SIGNING_PREVIOUS_KEY",
        hide_env_values = true
    )]
    pub url_signing_previous_key: Option<String>,
    /// Until when (unix seconds) the previous key is accepted; default: no end.
    #[arg(long, env = "RINGCAST_URL_SIGNING_PREVIOUS_KEY_VALID_UNTIL")]
    pub url_signing_previous_key_valid_until: Option<u64>,
    /// Cache-Control sent with files (e.g. "private, max-age=3600"); none by default.
    #[arg(long, env = "RINGCAST_FILES_CACHE_CONTROL")]
    pub files_cache_control: Option<String>,
    /// Origins allowed to read files cross-origin, comma-separated (`*` = any); none by default.
    #[arg(long, env = "RINGCAST_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
}

/// Why the file settings were refused.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("--files needs --url-signing-key (hex, at least 32 bytes, or a file holding it)")]
    NoKey,
    #[error(transparent)]
    Key(#[from] crate::files::sign::KeyError),
    #[error("--files {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
}

impl FilesFlags {
    /// The signing keys, newest first (for `ringcast sign` and the server).
    pub fn keys(&self) -> Result<Vec<crate::files::sign::SigningKey>, FilesError> {
        use crate::files::sign::SigningKey;
        let key = self.url_signing_key.as_deref().ok_or(FilesError::NoKey)?;
        let mut keys = vec![SigningKey::parse(key, None)?];
        if let Some(prev) = &self.url_signing_previous_key {
            keys.push(SigningKey::parse(
                prev,
                self.url_signing_previous_key_valid_until,
            )?);
        }
        Ok(keys)
    }

    /// None without `--files`.
    pub fn config(&self) -> Result<Option<crate::files::route::FilesConfig>, FilesError> {
        let Some(dir) = &self.files else {
            return Ok(None);
        };
        let root = dir.canonicalize().map_err(|source| FilesError::Dir {
            path: dir.display().to_string(),
            source,
        })?;
        Ok(Some(crate::files::route::FilesConfig {
            root,
            keys: self.keys()?,
            cache_control: self.files_cache_control.clone(),
            cors_origins: self.cors_origins.clone(),
        }))
    }
}

impl ServerOptions {
    pub fn worker_count(&self) -> usize {
        self.workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1)
    }

    pub fn frame_limit(&self) -> u64 {
        self.max_frame_size
            .unwrap_or(self.max_message_size)
            .min(self.max_message_size)
    }
}
