//! The wss server: thread-per-core workers on compio (io_uring), driving the sans-io
//! [`crate::proto`] core.
//!
//! | module | owns |
//! |---|---|
//! | [`options`] | every server flag (the application layer's are in [`crate::config`]) |
//! | [`listener`] | SO_REUSEPORT sockets, one per worker, same address |
//! | [`worker`] | a thread + runtime: accept loop, inbox drain, connection slab, local rooms |
//! | [`admission`] | the door: origins, per-IP connect rate, upgrade tokens, per-user counts |
//! | [`app`] | raw room or client protocol session, chosen at the upgrade; the session's host |
//! | [`conn`] | a connection's reader and writer tasks, timers, closing |
//! | [`files`] | `/files/` keep-alive HTTP on the listener: answers, streaming one chunk in flight |
//! | [`compression`] | a worker's permessage-deflate: one compressor, one inflater, compress a broadcast once |
//! | [`counters`] | per-worker counters and the publish latency histogram, for `/metrics` |
//! | [`outbound`] | a connection's bounded outbound queue |
//! | [`rooms`] | room directory (which workers) and local member lists |
//! | [`inbox`] | the cross-core ring: one bounded inbox per worker |
//! | [`nodes`] | this node among others sharing its engine: session commands, chat changes, figures |
//! | [`rate`] | per-connection token bucket |
//! | [`send_buffers`] | a worker's pool of idle connections' send buffers |
//! | [`check`] | what the host supports (`ringcast check`) |
//!
//! Shared with loadgen and living outside: [`crate::tls`] (rustls configs, dev certificate, the
//! server's TLS byte session), [`crate::rt`] (wake-ups, yield), [`crate::host`] (kernel
//! version, fd limit), [`crate::config::units`] (sizes, durations).

pub mod admission;
pub mod app;
pub mod check;
pub mod compression;
pub mod conn;
pub mod counters;
pub mod decoders;
pub mod files;
pub mod inbox;
pub mod listener;
pub mod nodes;
pub mod options;
pub mod outbound;
pub mod rate;
pub mod rooms;
pub mod send_buffers;
mod stats_page;
pub mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use crate::tls::{self, CertOrigin, TlsSetupError};
use inbox::Inbox;
pub use options::ServerOptions;
use rooms::{MAX_WORKERS, RoomDirectory};
pub use worker::WorkerInfo;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("worker {index} could not start its io runtime: {source}")]
    Runtime {
        index: usize,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot serve the API on {addr} (--api-listen): {source}")]
    Api {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Files(#[from] options::FilesError),
    #[error(transparent)]
    Engine(#[from] crate::engine::redis::RedisStartError),
    #[error(
        "cannot read the chat sanctions and statuses kept in the engine (a node must not start without the bans): {0}"
    )]
    ChatState(crate::engine::EngineError),
    #[error("--workers must be between 1 and {MAX_WORKERS}, not {0}")]
    Workers(usize),
    #[error(
        "--max-backlog ({backlog} B) must hold at least one message of --max-message-size ({message} B)"
    )]
    BacklogTooSmall { backlog: u64, message: u64 },
}

/// Counters of things worth knowing (the metrics issue exports them).
#[derive(Debug, Default)]
pub struct Stats {
    pub accepted: AtomicU64,
    /// Answered with HTTP 503: over --max-connections.
    pub rejected_full: AtomicU64,
    /// Closed at accept without TLS: far over --max-connections (see `worker::reject_headroom`).
    pub dropped_full: AtomicU64,
    pub handshakes_refused: AtomicU64,
    pub handshake_timeouts: AtomicU64,
    pub tls_errors: AtomicU64,
    pub protocol_errors: AtomicU64,
    pub slow_consumers: AtomicU64,
    pub rate_limited: AtomicU64,
    pub messages_in: AtomicU64,
}

/// What all workers share.
pub struct ServerShared {
    pub opts: ServerOptions,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The certificate behind `tls`, replaceable (SIGHUP).
    pub cert: Option<Arc<tls::ReloadableCert>>,
    pub rooms: RoomDirectory,
    pub inboxes: Vec<Inbox>,
    /// Connections open (including ones being refused), across workers.
    pub connections: AtomicUsize,
    /// Connections open per worker (same meaning, one counter per worker).
    pub worker_connections: Vec<AtomicUsize>,
    pub shutting_down: AtomicBool,
    pub stats: Stats,
    /// The application layer's configuration.
    pub app: Arc<crate::config::AppConfig>,
    pub session_env: Arc<crate::session::SessionEnv>,
    /// Client protocol channels: which workers have subscribers.
    pub channels: RoomDirectory,
    pub users: admission::UserConnections,
    /// The channel engine: offsets, history, presence (its outlet is this server's inboxes).
    pub engine: Arc<dyn crate::engine::Engine>,
    pub connect_limiter: admission::ConnectLimiter,
    /// One per worker, written only by it.
    pub counters: Vec<counters::WorkerCounters>,
    /// Engine publish call → frame in every inbox.
    pub publish_latency: counters::DurationHistogram<counters::PublishBuckets>,
    /// Unix seconds the server started.
    pub started: u64,
    /// `--files`: signed-URL file streaming on this listener.
    pub files: Option<Arc<crate::files::route::FilesConfig>>,
    /// This node among the others sharing its engine.
    pub cluster: nodes::Cluster,
}

/// The engine's outlet: a publication's frame into the inboxes of the workers with subscribers.
/// Made before the server it feeds (the engine takes it at its start), told the server once.
struct Outlet(std::sync::OnceLock<std::sync::Weak<ServerShared>>);

impl crate::engine::Outlet for Outlet {
    fn frame(&self, push: &[u8]) -> bytes::Bytes {
        crate::proto::encode::server_frame(crate::proto::OpCode::Text, push)
    }

    fn deliver(&self, channel: &str, offset: u64, frame: bytes::Bytes) {
        if let Some(shared) = self.0.get().and_then(|w| w.upgrade()) {
            worker::publish_channel(&shared.channels, &shared.inboxes, channel, offset, frame);
        }
    }

    fn lost_all(&self) {
        if let Some(shared) = self.0.get().and_then(|w| w.upgrade()) {
            for inbox in &shared.inboxes {
                inbox.lose_all();
            }
        }
    }

    fn control(&self, msg: &[u8]) {
        if let Some(shared) = self.0.get().and_then(|w| w.upgrade()) {
            shared.on_control(msg);
        }
    }
}

/// The Redis engine's options from `[engine]` (also what `ringcast check` probes).
pub fn redis_options(
    cfg: &crate::config::file::EngineSection,
) -> crate::engine::redis::RedisOptions {
    crate::engine::redis::RedisOptions {
        address: cfg.redis.address.clone(),
        prefix: cfg.redis.prefix.clone(),
        presence_ttl: cfg.redis.presence_ttl.0,
        max_presence_per_channel: cfg.max_presence,
        timeout: cfg.redis.timeout.0,
        tls_ca_file: (!cfg.redis.tls_ca_file.is_empty())
            .then(|| cfg.redis.tls_ca_file.clone().into()),
    }
}

/// The configured channel engine.
fn start_engine(
    cfg: &crate::config::file::EngineSection,
    outlet: Arc<Outlet>,
) -> Result<Arc<dyn crate::engine::Engine>, StartError> {
    if cfg.kind == "redis" {
        let opts = redis_options(cfg);
        let e = crate::engine::redis::RedisEngine::start(outlet, opts)?;
        tracing::info!(address = %crate::engine::redis::address::redact(&cfg.redis.address), prefix = %cfg.redis.prefix, "channel engine: Redis");
        return Ok(Arc::new(e));
    }
    let limits = crate::engine::memory::Limits {
        max_channels: cfg.max_history_channels,
        max_history_bytes: cfg.max_history_memory,
        max_presence: cfg.max_presence,
    };
    Ok(Arc::new(crate::engine::memory::MemoryEngine::new(
        outlet, limits,
    )))
}

/// What a reload did.
#[derive(Debug)]
pub struct ReloadReport {
    /// The certificate: None without TLS, else the outcome.
    pub cert: Option<Result<(), String>>,
    /// The token keys' outcome.
    pub keys: Result<usize, String>,
}

/// Reloads the certificate and the token keys from the same files and flags as at start,
/// from any thread (SIGHUP). A file that does not load keeps the old identity or keys.
#[derive(Clone)]
pub struct ReloadTrigger(Arc<ServerShared>);

impl ReloadTrigger {
    pub fn reload(&self) -> ReloadReport {
        let shared = &self.0;
        let cert = shared.cert.as_ref().map(|c| {
            c.reload().map_err(|e| e.to_string()).inspect_err(|e| {
                tracing::warn!("reload: the certificate did not load, keeping the current one: {e}")
            })
        });
        let keys = crate::config::AppConfig::build(&shared.opts.app)
            .map_err(|e| e.to_string())
            .and_then(|fresh| shared.app.verifier.replace_keys(fresh.verifier))
            .inspect_err(|e| {
                tracing::warn!("reload: the token keys did not load, keeping the current ones: {e}")
            });
        ReloadReport { cert, keys }
    }
}

/// Starts a graceful shutdown from any thread.
#[derive(Clone)]
pub struct ShutdownTrigger(Arc<ServerShared>);

impl ShutdownTrigger {
    pub fn trigger(&self) {
        self.0.shutting_down.store(true, Ordering::Release);
        for inbox in &self.0.inboxes {
            inbox.wake();
        }
    }
}

/// A running server.
pub struct ServerHandle {
    pub local_addr: SocketAddr,
    /// Where the server API listens (None: `--api-listen off`).
    pub api_addr: Option<SocketAddr>,
    control: Option<crate::control::ControlPlane>,
    pub cert: Option<CertOrigin>,
    pub workers: Vec<WorkerInfo>,
    shared: Arc<ServerShared>,
    threads: Vec<JoinHandle<()>>,
}

impl ServerHandle {
    /// Starts `opts.worker_count()` workers listening on `opts.listen` (port 0 picks one).
    pub fn start(opts: ServerOptions) -> Result<Self, StartError> {
        let n = opts.worker_count();
        if n > MAX_WORKERS {
            return Err(StartError::Workers(n));
        }
        if opts.max_backlog < opts.max_message_size + 14 {
            return Err(StartError::BacklogTooSmall {
                backlog: opts.max_backlog,
                message: opts.max_message_size,
            });
        }
        let app = Arc::new(crate::config::AppConfig::build(&opts.app)?);
        let files = opts.files.config()?.map(Arc::new);
        let (tls, cert, reloadable) = if opts.plaintext {
            (None, None, None)
        } else {
            let files = opts.cert.as_deref().zip(opts.key.as_deref());
            let (cfg, origin, reloadable) =
                tls::server_config(files, &opts.cert_dir, opts.tls_tickets)?;
            (Some(cfg), Some(origin), Some(reloadable))
        };
        let listeners = listener::bind_all(opts.listen, n, opts.backlog).map_err(|source| {
            StartError::Listen {
                addr: opts.listen,
                source,
            }
        })?;
        let local_addr = listeners[0]
            .local_addr()
            .map_err(|source| StartError::Listen {
                addr: opts.listen,
                source,
            })?;
        let outlet = Arc::new(Outlet(std::sync::OnceLock::new()));
        let engine = start_engine(&app.engine, outlet.clone())?;
        let shared = Arc::new(ServerShared {
            engine,
            session_env: Arc::new(crate::session::SessionEnv::new(app.clone())),
            channels: RoomDirectory::new(opts.max_rooms),
            users: admission::UserConnections::new(app.client().user_connection_limit),
            connect_limiter: admission::ConnectLimiter::new(app.client().connect_rate_limit),
            app,
            rooms: RoomDirectory::new(opts.max_rooms),
            inboxes: (0..n).map(|_| Inbox::new(opts.inbox_capacity)).collect(),
            opts,
            tls,
            cert: reloadable,
            connections: AtomicUsize::new(0),
            worker_connections: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            shutting_down: AtomicBool::new(false),
            stats: Stats::default(),
            counters: (0..n)
                .map(|_| counters::WorkerCounters::default())
                .collect(),
            publish_latency: Default::default(),
            started: crate::session::Now::system().unix,
            files,
            cluster: nodes::Cluster::new(),
        });
        let _ = outlet.0.set(Arc::downgrade(&shared));
        if shared.engine.clustered() {
            let (sanctions, statuses) = shared
                .restore_chat(crate::session::Now::system().unix_ms)
                .map_err(StartError::ChatState)?;
            tracing::info!(
                "chat: {sanctions} live sanctions and {statuses} statuses kept in the engine restored"
            );
            let weak = Arc::downgrade(&shared);
            shared.session_env.chat.replicate_to(Box::new(
                move |change: &crate::chat::replica::ChatChange| {
                    weak.upgrade().is_none_or(|s| s.share_chat_change(change))
                },
            ));
        }
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let mut threads = Vec::with_capacity(n);
        for (index, l) in listeners.into_iter().enumerate() {
            let (shared, ready) = (shared.clone(), ready_tx.clone());
            let t = std::thread::Builder::new()
                .name(format!("ringcast-w{index}"))
                .spawn(move || worker::run(index, shared, l, ready))
                .map_err(|source| StartError::Runtime { index, source })?;
            threads.push(t);
        }
        drop(ready_tx);
        let mut handle = Self {
            local_addr,
            api_addr: None,
            control: None,
            cert,
            workers: Vec::with_capacity(n),
            shared,
            threads,
        };
        for _ in 0..n {
            match ready_rx.recv() {
                Ok(Ok(info)) => handle.workers.push(info),
                Ok(Err(source)) => {
                    handle.shutdown();
                    return Err(StartError::Runtime {
                        index: handle.workers.len(),
                        source,
                    });
                }
                Err(_) => {
                    handle.shutdown();
                    let source = std::io::Error::other("worker thread exited during start-up");
                    return Err(StartError::Runtime {
                        index: handle.workers.len(),
                        source,
                    });
                }
            }
        }
        handle.workers.sort_by_key(|w| w.index);
        if let Some(addr) = handle.shared.app.api_listen {
            match crate::control::ControlPlane::start(handle.shared.clone(), addr) {
                Ok(c) => {
                    handle.api_addr = Some(c.addr);
                    handle.control = Some(c);
                }
                Err(source) => {
                    handle.shutdown();
                    return Err(StartError::Api { addr, source });
                }
            }
        }
        Ok(handle)
    }

    /// Stops accepting, sends Close 1001 to everyone and lets workers end (see `join`).
    pub fn shutdown(&self) {
        self.shutdown_trigger().trigger();
    }

    /// A handle that reloads the certificate and token keys from another thread.
    pub fn reload_trigger(&self) -> ReloadTrigger {
        ReloadTrigger(self.shared.clone())
    }

    /// A cheap handle that can start the shutdown from another thread (a signal handler).
    pub fn shutdown_trigger(&self) -> ShutdownTrigger {
        ShutdownTrigger(self.shared.clone())
    }

    /// Waits for every worker thread to finish, then stops the control plane and tells the
    /// other nodes (if any) that this one is gone.
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
        if let Some(c) = self.control {
            c.stop();
        }
        self.shared.tell_nodes(&crate::cluster::Notice::NodeGone);
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Acquire)
    }

    /// Open connections of each worker.
    pub fn connections_per_worker(&self) -> Vec<usize> {
        self.shared
            .worker_connections
            .iter()
            .map(|c| c.load(Ordering::Acquire))
            .collect()
    }

    /// Each worker's counters (what `/metrics` sums).
    pub fn worker_counters(&self) -> impl Iterator<Item = &counters::WorkerCounters> {
        self.shared.counters.iter()
    }

    /// The effective application configuration.
    pub fn app_config(&self) -> &crate::config::AppConfig {
        &self.shared.app
    }

    pub fn inbox_dropped(&self) -> u64 {
        self.shared
            .inboxes
            .iter()
            .map(|i| i.dropped.load(Ordering::Relaxed))
            .sum()
    }
}
