//! `ringcast check`: what this host offers and what the server will use.
//! Kernel version, io_uring, the provided-buffer ring, RLIMIT_NOFILE and somaxconn.

use std::fmt::Write as _;
use std::num::NonZero;

use compio::driver::{DriverType, ProactorBuilder};
use compio::runtime::RuntimeBuilder;

use crate::host::{kernel_version, raise_nofile_limit};

/// The report and whether the server can run here.
pub fn report() -> (String, bool) {
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
    (out, ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_runs_on_this_host() {
        let (text, ok) = report();
        assert!(ok, "{text}");
        assert!(
            text.contains("kernel") && text.contains("server will use"),
            "{text}"
        );
    }
}
