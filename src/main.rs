//! The `ringcast` binary: serve wss (default), or `ringcast check` the host.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ringcast::logging::{self, LogFormat};
use ringcast::server::{ServerHandle, ServerOptions, check};
use ringcast::tls::CertOrigin;
use tracing::{error, info, warn};

/// ringcast: WebSocket-over-TLS chat and broadcast server on io_uring.
///
/// Each connection's URL path names its room (wss://HOST:PORT/chat → room "chat"); every
/// message is delivered to everyone in the room, the sender included.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    server: ServerOptions,
    /// Log line format (filter with RUST_LOG, e.g. RUST_LOG=ringcast=debug).
    #[arg(
        long,
        env = "RINGCAST_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Report kernel, io_uring, buffer-ring support and limits; exit 1 if the host cannot run the server.
    Check,
    /// Print the effective configuration (flags, environment and --config merged; secrets masked) and exit.
    Config,
    /// Print a signed link to a file under --files (uses --url-signing-key): PATH relative to the directory.
    Sign {
        /// The file, relative to the --files directory (e.g. audio/track.ogg).
        path: String,
        /// How long the link works: 90s, 30m, 1h, 7d…
        #[arg(long, default_value = "1h", value_parser = ringcast::config::units::parse_duration)]
        ttl: std::time::Duration,
        /// Put this before the path (e.g. https://chat.example.com).
        #[arg(long, default_value = "")]
        base_url: String,
        /// HMAC-SHA256 key: hex (≥ 32 bytes) or a file holding it.
        #[arg(long, env = "RINGCAST_URL_SIGNING_KEY", hide_env_values = true)]
        url_signing_key: String,
    },
    /// Print a connection token (HS256, with the configured HMAC secret) for trying chat roles:
    /// ringcast token --config chat.toml --user alice --roles moderator.
    Token {
        /// The user (`sub`).
        #[arg(long)]
        user: String,
        /// Roles, comma-separated: guest, user, moderator, admin.
        #[arg(long, value_delimiter = ',', default_value = "user")]
        roles: Vec<String>,
        /// How long the token is valid: 90s, 30m, 1h, 7d…
        #[arg(long, default_value = "24h", value_parser = ringcast::config::units::parse_duration)]
        ttl: std::time::Duration,
        /// The `info` claim, JSON (shown to others in presence and publications).
        #[arg(long)]
        info: Option<String>,
    },
    /// Create the PostgreSQL outbox table, its index and NOTIFY trigger, then exit. Safe to run again.
    OutboxInit {
        /// postgres://user:password@host/database
        #[arg(long, env = "RINGCAST_OUTBOX", hide_env_values = true)]
        outbox: String,
        /// The table (schema.table allowed) [default: ringcast_outbox].
        #[arg(long, env = "RINGCAST_OUTBOX_TABLE")]
        outbox_table: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    if let Some(Command::Check) = cli.command {
        let (report, ok) = check::report(&cli.server);
        print!("{report}");
        return if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }

    if let Some(Command::Config) = cli.command {
        let shown = ringcast::config::AppConfig::build(&cli.server.app)
            .map(|cfg| ringcast::config::show::effective_json(&cfg));
        return print_or_fail("ringcast", shown);
    }

    if let Some(Command::Sign {
        path,
        ttl,
        base_url,
        url_signing_key,
    }) = &cli.command
    {
        let link = ringcast::files::sign::SigningKey::parse(url_signing_key, None).map(|key| {
            let expires = ringcast::session::Now::system().unix + ttl.as_secs();
            let url_path = ringcast::files::sign::file_url_path(path);
            let link = ringcast::files::sign::signed_url(&key, &url_path, expires);
            format!("{}{link}", base_url.trim_end_matches('/'))
        });
        return print_or_fail("ringcast sign", link);
    }

    if let Some(Command::Token {
        user,
        roles,
        ttl,
        info,
    }) = &cli.command
    {
        let token = mint_token(&cli.server.app, user, roles, *ttl, info.as_deref());
        return print_or_fail("ringcast token", token);
    }

    if let Some(Command::OutboxInit {
        outbox,
        outbox_table,
    }) = cli.command
    {
        let flags = ringcast::config::AppFlags {
            outbox: Some(outbox),
            outbox_table,
            ..Default::default()
        };
        return outbox_init(&flags);
    }

    // Before the server starts: a SIGTERM sent the moment we say "serving" must find the
    // handler in place (signals that arrive early wait until the thread below reads them).
    let mut signals = match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ]) {
        Ok(s) => s,
        Err(e) => {
            error!("cannot install signal handlers: {e}");
            return ExitCode::from(2);
        }
    };
    let (soft, hard) = ringcast::host::raise_nofile_limit();
    let opts = cli.server;
    let handle = match ServerHandle::start(opts.clone()) {
        Ok(h) => h,
        Err(e) => {
            error!("cannot start: {e}");
            eprintln!("ringcast: {e}");
            return ExitCode::from(2);
        }
    };
    let scheme = if opts.plaintext { "ws" } else { "wss" };
    match &handle.cert {
        Some(CertOrigin::DevCreated(p)) => info!(
            "made a dev certificate: {} (trust it in clients)",
            p.display()
        ),
        Some(CertOrigin::DevReused(p)) => info!("using the dev certificate {}", p.display()),
        Some(CertOrigin::Files) => info!(
            "using certificate {}",
            opts.cert.as_ref().expect("files").display()
        ),
        None => warn!("serving plain ws:// (--plaintext): put a TLS-terminating proxy in front"),
    }
    let w = &handle.workers[0];
    info!(
        workers = handle.workers.len(),
        driver = w.driver,
        recv = ?w.recv_mode,
        nofile = soft.unwrap_or(u64::MAX),
        nofile_hard = hard.unwrap_or(u64::MAX),
        "ringcast {} serving {scheme}://{}/<room>",
        env!("CARGO_PKG_VERSION"),
        handle.local_addr
    );

    let app = handle.app_config();
    if app.try_it_out {
        warn!(
            "try-it-out mode: no token key is configured, so anyone may connect anonymously and \
             subscribe and publish to channels without a namespace; configure a key \
             (--token-hmac-secret, --token-public-key, --token-jwks-file or --config) to turn it off"
        );
    } else if app.allow_anonymous {
        warn!("anonymous connections are allowed (--allow-anonymous): they get the guest role");
    }
    info!(
        "client protocol (Centrifugo v2 JSON) at {scheme}://{}/connection/websocket",
        handle.local_addr
    );
    let trigger = handle.shutdown_trigger();
    let reload = handle.reload_trigger();
    std::thread::spawn(move || {
        let mut seen = 0;
        for sig in signals.forever() {
            if sig == signal_hook::consts::SIGHUP {
                let r = reload.reload();
                info!(cert = ?r.cert, keys = ?r.keys, "SIGHUP: reloaded what loaded (open connections keep working)");
                continue;
            }
            seen += 1;
            if seen == 1 {
                info!(
                    signal = sig,
                    "shutting down: closing connections with 1001 (signal again to exit at once)"
                );
                trigger.trigger();
            } else {
                warn!("second signal: exiting now");
                std::process::exit(1);
            }
        }
    });
    handle.join();
    info!("all connections closed: bye");
    ExitCode::SUCCESS
}

fn outbox_init(flags: &ringcast::config::AppFlags) -> ExitCode {
    let settings = match ringcast::config::OutboxSettings::from_flags(flags) {
        Ok(Some(s)) => s,
        Ok(None) => unreachable!("--outbox is required by the subcommand"),
        Err(e) => {
            eprintln!("ringcast outbox-init: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ringcast outbox-init: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(ringcast::control::outbox::init(&settings)) {
        Ok(()) => {
            println!(
                "outbox table {} ready (NOTIFY channel {})",
                settings.table.name(),
                settings.table.notify_channel()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ringcast outbox-init: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `ringcast token`: a token signed with the configured HMAC secret.
fn mint_token(
    flags: &ringcast::config::AppFlags,
    user: &str,
    roles: &[String],
    ttl: std::time::Duration,
    info: Option<&str>,
) -> Result<String, String> {
    use ringcast::auth::{Role, mint};
    let cfg = ringcast::config::AppConfig::build(flags).map_err(|e| e.to_string())?;
    let secret = &cfg.file.client.token.hmac_secret_key;
    if secret.is_empty() {
        return Err(
            "no HMAC secret configured: set --token-hmac-secret or client.token.hmac_secret_key"
                .into(),
        );
    }
    if user.is_empty() {
        return Err("--user must not be empty".into());
    }
    let roles = roles
        .iter()
        .map(|r| {
            serde_json::from_value::<Role>(serde_json::Value::String(r.clone()))
                .map_err(|_| format!("unknown role {r:?}: use guest, user, moderator or admin"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let info = info
        .map(|i| serde_json::from_str(i).map_err(|e| format!("--info is not JSON: {e}")))
        .transpose()?;
    Ok(mint::hs256(
        secret.as_bytes(),
        &mint::Mint {
            user,
            roles: &roles,
            now: ringcast::session::Now::system().unix,
            ttl_secs: ttl.as_secs(),
            info,
        },
    ))
}

/// A subcommand's answer: printed (exit 0), or its error after `what:` (exit 2).
fn print_or_fail<E: std::fmt::Display>(what: &str, r: Result<String, E>) -> ExitCode {
    match r {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{what}: {e}");
            ExitCode::from(2)
        }
    }
}
