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
