//! The control plane: one more thread, with a tokio current-thread runtime, serving the server
//! API, `/metrics`, `/health` and `/ready` on `--api-listen` (plain HTTP on loopback, HTTPS
//! with the server's certificate elsewhere).
//!
//! Must not: take a lock the data path takes per message, or touch a worker's state. It talks
//! to the workers only through their control queues (commands, surveys) and publishes through
//! the engine, whose outlet puts frames into the inboxes like any publish.
//!
//! | module | owns |
//! |---|---|
//! | [`http`] | the endpoints, API key check, body and time bounds |
//! | [`host`] | the API's view of the server: engine, control queues, surveys |
//! | [`metrics`] | `/metrics` text from the counters |
//! | [`outbox`] | the PostgreSQL outbox consumer |

pub mod host;
pub mod http;
pub mod metrics;
pub mod outbox;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

use crate::api::{Api, Node};
use crate::server::ServerShared;

/// The running control plane.
pub struct ControlPlane {
    pub addr: SocketAddr,
    stop: Arc<tokio::sync::Notify>,
    thread: Option<JoinHandle<()>>,
}

impl ControlPlane {
    /// Binds `addr` and starts the thread. TLS when the server has a certificate and `addr`
    /// is not loopback.
    pub fn start(shared: Arc<ServerShared>, addr: SocketAddr) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let tls = shared
            .tls
            .clone()
            .filter(|_| !addr.ip().is_loopback())
            .map(tokio_rustls::TlsAcceptor::from);
        let stop = Arc::new(tokio::sync::Notify::new());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ringcast-control".into())
            .spawn(move || {
                let local = tokio::task::LocalSet::new();
                local.block_on(&runtime, serve(shared, listener, tls, stop2));
            })?;
        Ok(Self {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops serving and waits for the thread.
    pub fn stop(mut self) {
        self.stop.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(
    shared: Arc<ServerShared>,
    listener: std::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: Arc<tokio::sync::Notify>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            warn!("server API: cannot use the listener: {e}");
            return;
        }
    };
    let file = &shared.app.file.http_api;
    let node = Node {
        uid: shared.cluster.uid.clone(),
        name: rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned(),
        version: env!("CARGO_PKG_VERSION"),
        started: shared.started,
    };
    if file.key.is_empty() {
        warn!(
            "server API without a key (loopback only): anyone on this host can publish; set --api-key"
        );
    }
    if shared.engine.clustered() {
        tokio::task::spawn_local(host::tell_figures(shared.clone(), node.clone()));
        tokio::task::spawn_local(host::answer_asks(shared.clone()));
    }
    let state = Rc::new(http::State {
        api: RefCell::new(Api::new(shared.app.clone(), node)),
        key: file.key.clone(),
        max_body: file.max_body_size,
        counters: RefCell::new(Default::default()),
        outbox: RefCell::new(None),
        shared,
    });
    if let Some(settings) = state.shared.app.outbox.clone() {
        tokio::task::spawn_local(outbox::run(state.clone(), settings));
    }
    let open = Rc::new(AtomicUsize::new(0));
    info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), tls = tls.is_some(), "server API, /metrics, /health, /ready listening");
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.notified() => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    warn!("server API: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        if open.load(Ordering::Relaxed) >= http::MAX_CONNECTIONS {
            warn!(%peer, "server API: {} connections open, closing a new one", http::MAX_CONNECTIONS);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let (state, open, tls) = (state.clone(), open.clone(), tls.clone());
        open.fetch_add(1, Ordering::Relaxed);
        tokio::task::spawn_local(async move {
            connection(stream, tls, state).await;
            open.fetch_sub(1, Ordering::Relaxed);
            debug!(%peer, "server API connection closed");
        });
    }
}

async fn connection(
    stream: TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Rc<http::State>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(http::HEADER_TIMEOUT)
        .max_buf_size(64 * 1024);
    let service = service_fn(move |req| http::handle(req, state.clone()));
    let result = match tls {
        None => {
            builder
                .serve_connection(TokioIo::new(stream), service)
                .await
        }
        Some(acceptor) => {
            let hs = tokio::time::timeout(http::HEADER_TIMEOUT, acceptor.accept(stream)).await;
            match hs {
                Ok(Ok(s)) => builder.serve_connection(TokioIo::new(s), service).await,
                Ok(Err(e)) => {
                    debug!("server API: TLS handshake failed: {e}");
                    return;
                }
                Err(_) => return,
            }
        }
    };
    if let Err(e) = result {
        debug!("server API connection: {e}");
    }
}
