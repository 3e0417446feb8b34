//! `ringcast check`: what this host offers and what the server will use, and what a deploy
//! needs: kernel version, io_uring (and whether the sysctl allows it), the provided-buffer
//! ring, RLIMIT_NOFILE against `--max-connections`, somaxconn, the listen and API ports free,
//! the configuration valid, Redis answering (with the Redis engine), the certificate readable,
//! matching its key and not expiring within 14 days.

use std::fmt::Write as _;
use std::num::NonZero;

use compio::driver::{DriverType, ProactorBuilder};
use compio::runtime::RuntimeBuilder;

use std::net::SocketAddr;

use super::ServerOptions;
use crate::host::{kernel_version, raise_nofile_limit};

/// Days before a certificate's end that `check` warns.
pub const CERT_WARN_DAYS: i64 = 14;

/// The report and whether the server can run here with `opts`.
pub fn report(opts: &ServerOptions) -> (String, bool) {
    let mut out = String::new();
    let mut ok = true;
    let kernel = kernel_version();
    let release = rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned();
    let _ = writeln!(out, "kernel           {release}");

    let io_uring = RuntimeBuilder::new()
        .with_proactor({
            let mut p = ProactorBuilder::new();
            p.driver_type(DriverType::IoUring);
            p
        })
        .build();
    let uring_ok = io_uring.is_ok();
    match &io_uring {
        Ok(_) => {
            let _ = writeln!(out, "io_uring         available");
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "io_uring         NOT available ({e}); the epoll driver will be used"
            );
        }
    }
    let ring = RuntimeBuilder::new()
        .with_proactor({
            let mut p = ProactorBuilder::new();
            p.buffer_pool_size(NonZero::new(8).expect("8"))
                .buffer_pool_buffer_len(4096);
            p
        })
        .build()
        .and_then(|rt| rt.buffer_pool().and_then(|p| p.is_io_uring()));
    let pbuf = matches!(ring, Ok(true));
    let _ = writeln!(
        out,
        "buffer ring      {}",
        if pbuf {
            "PBUF_RING registered"
        } else {
            "not available (reads use a buffer per connection)"
        }
    );
    let multishot = uring_ok && pbuf && kernel.is_some_and(|k| k >= (6, 0));
    let _ = writeln!(
        out,
        "multishot recv   {}",
        if multishot {
            "yes (Linux 6.0+)"
        } else {
            "no: single-shot reads"
        }
    );
    let epoll = RuntimeBuilder::new()
        .with_proactor({
            let mut p = ProactorBuilder::new();
            p.driver_type(DriverType::Poll);
            p
        })
        .build()
        .is_ok();
    if !uring_ok && !epoll {
        ok = false;
        let _ = writeln!(
            out,
            "driver           NONE: neither io_uring nor epoll can be set up"
        );
    }

    match std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .as_deref()
        .map(str::trim)
    {
        Ok("0") | Err(_) => {}
        Ok("1") => {
            let _ = writeln!(
                out,
                "                 kernel.io_uring_disabled=1: only members of kernel.io_uring_group may use it"
            );
        }
        Ok(v) => {
            let _ = writeln!(
                out,
                "                 kernel.io_uring_disabled={v}: io_uring is switched off by sysctl"
            );
        }
    }

    let (soft, hard) = raise_nofile_limit();
    let fmt = |v: Option<u64>| v.map_or("unlimited".to_string(), |v| v.to_string());
    let _ = writeln!(
        out,
        "RLIMIT_NOFILE    {} (hard {}; the server raises soft to hard)",
        fmt(soft),
        fmt(hard)
    );
    if soft.is_some_and(|s| s < 1024) {
        let _ = writeln!(
            out,
            "                 WARNING: fewer than 1024 descriptors: few connections possible"
        );
    }
    let need = opts.max_connections as u64 + 64;
    if hard.is_some_and(|h| h < need) {
        let _ = writeln!(
            out,
            "                 WARNING: the hard limit is below --max-connections ({}) + 64: raise LimitNOFILE",
            opts.max_connections
        );
    }
    let somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn").ok();
    let _ = writeln!(
        out,
        "somaxconn        {} (caps --backlog)",
        somaxconn.as_deref().map_or("unknown", str::trim)
    );
    let driver = if uring_ok {
        "io_uring"
    } else if epoll {
        "epoll"
    } else {
        "none"
    };
    let _ = writeln!(
        out,
        "server will use  {driver}, {} reads",
        if multishot {
            "multishot ring"
        } else {
            "single-shot"
        }
    );
    ok &= deploy_checks(opts, &mut out);
    (out, ok)
}

fn port_free(addr: SocketAddr) -> Result<(), std::io::Error> {
    std::net::TcpListener::bind(addr).map(drop)
}

/// Ports, configuration and certificate.
fn deploy_checks(opts: &ServerOptions, out: &mut String) -> bool {
    let mut ok = true;
    match port_free(opts.listen) {
        Ok(()) => {
            let _ = writeln!(out, "listen           {} free", opts.listen);
        }
        Err(e) => {
            ok = false;
            let _ = writeln!(out, "listen           {} NOT free: {e}", opts.listen);
        }
    }
    match crate::config::AppConfig::build(&opts.app) {
        Ok(app) => {
            let _ = writeln!(out, "configuration    valid");
            if app.file.engine.kind == "redis" {
                match crate::engine::redis::probe(&super::redis_options(&app.file.engine)) {
                    Ok(shown) => {
                        let _ = writeln!(out, "redis            {shown} answers");
                    }
                    Err(e) => {
                        ok = false;
                        let _ = writeln!(out, "redis            NOT usable: {e}");
                    }
                }
            }
            match app.api_listen {
                None => {
                    let _ = writeln!(out, "server API       off");
                }
                Some(a) => match port_free(a) {
                    Ok(()) => {
                        let _ = writeln!(out, "server API       {a} free");
                    }
                    Err(e) => {
                        ok = false;
                        let _ = writeln!(out, "server API       {a} NOT free: {e}");
                    }
                },
            }
        }
        Err(e) => {
            ok = false;
            let _ = writeln!(out, "configuration    INVALID: {e}");
        }
    }
    match opts.files.config() {
        Ok(None) => {}
        Ok(Some(f)) => {
            let _ = writeln!(
                out,
                "files            {} ({} signing key{})",
                f.root.display(),
                f.keys.len(),
                if f.keys.len() == 1 { "" } else { "s" }
            );
        }
        Err(e) => {
            ok = false;
            let _ = writeln!(out, "files            UNUSABLE: {e}");
        }
    }
    if opts.plaintext {
        let _ = writeln!(out, "certificate      none (--plaintext)");
        return ok;
    }
    let (Some(cert), Some(key)) = (&opts.cert, &opts.key) else {
        let _ = writeln!(
            out,
            "certificate      a dev certificate in {} (for testing: give --cert and --key)",
            opts.cert_dir.display()
        );
        return ok;
    };
    if let Err(e) = crate::tls::server_config(Some((cert, key)), &opts.cert_dir, opts.tls_tickets) {
        let _ = writeln!(out, "certificate      UNUSABLE: {e}");
        return false;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    match cert_not_after(cert) {
        Ok(not_after) => {
            let days = (not_after - now).div_euclid(86_400);
            if not_after <= now {
                ok = false;
                let _ = writeln!(
                    out,
                    "certificate      {} EXPIRED {} days ago",
                    cert.display(),
                    -days
                );
            } else if days < CERT_WARN_DAYS {
                let _ = writeln!(
                    out,
                    "certificate      {} WARNING: expires in {days} days (renew, then SIGHUP)",
                    cert.display()
                );
            } else {
                let _ = writeln!(
                    out,
                    "certificate      {} valid for {days} more days",
                    cert.display()
                );
            }
        }
        Err(e) => {
            ok = false;
            let _ = writeln!(out, "certificate      {}: {e}", cert.display());
        }
    }
    ok
}

/// The end of validity (unix seconds) of the first certificate in a PEM file.
pub fn cert_not_after(path: &std::path::Path) -> Result<i64, String> {
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateDer::from_pem_file(path)
        .map_err(|e| format!("cannot read: {e}"))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    Ok(cert.validity().not_after.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_runs_on_this_host() {
        use clap::Parser;
        #[derive(Parser)]
        struct Args {
            #[command(flatten)]
            opts: ServerOptions,
        }
        let opts = Args::parse_from([
            "ringcast",
            "--listen",
            "127.0.0.1:0",
            "--api-listen",
            "127.0.0.1:0",
        ])
        .opts;
        let (text, ok) = report(&opts);
        assert!(ok, "{text}");
        assert!(
            text.contains("kernel") && text.contains("server will use"),
            "{text}"
        );
    }
}

#[cfg(test)]
mod cert_tests {
    use super::*;

    #[test]
    fn a_certificate_s_end_is_read() {
        let dir = std::env::temp_dir().join(format!("ringcast-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 1, 2);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let p = dir.join("c.pem");
        std::fs::write(&p, cert.pem()).unwrap();
        assert_eq!(cert_not_after(&p).unwrap(), 1_925_078_400);
        std::fs::write(&p, "garbage").unwrap();
        assert!(cert_not_after(&p).is_err());
    }
}
