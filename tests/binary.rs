//! The `ringcast` binary as users run it: start-up errors, `check`, signals, restarts.

mod common;

use common::process::{ringcast, serve};
use std::time::Duration;

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ringcast-bin-{name}-{}", std::process::id()))
}

#[test]
fn sigterm_shuts_down_gracefully_with_exit_0() {
    let dir = temp("term");
    let mut server = serve(&[
        "--listen",
        "127.0.0.1:0",
        "--cert-dir",
        dir.to_str().unwrap(),
    ]);
    server.signal();
    let (status, log) = server.exit(Duration::from_secs(5));
    assert!(status.success(), "{status:?}\n{log}");
    assert!(
        log.contains("shutting down") && log.contains("bye"),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_taken_port_and_a_bad_certificate_are_clear_start_up_errors() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = temp("taken");
    let out = ringcast()
        .args(["--listen", &addr, "--cert-dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on {addr}")) && err.contains("in use"),
        "{err}"
    );

    let out = ringcast()
        .args([
            "--listen",
            "127.0.0.1:0",
            "--cert",
            "/nonexistent/c.pem",
            "--key",
            "/nonexistent/k.pem",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read certificate file /nonexistent/c.pem"),
        "{err}"
    );

    let out = ringcast().args(["--cert", "x.pem"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "clap: --cert needs --key");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn check_reports_the_host() {
    let out = ringcast().arg("check").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "kernel",
        "io_uring",
        "buffer ring",
        "RLIMIT_NOFILE",
        "somaxconn",
        "server will use",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
}

#[test]
fn a_second_signal_exits_at_once() {
    let mut server = serve(&[
        "--listen",
        "127.0.0.1:0",
        "--plaintext",
        "--shutdown-timeout",
        "60s",
    ]);
    // A client that upgrades and then never answers the server's Close.
    let _deaf = server.upgrade("/deaf");
    server.signal();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        server.is_running(),
        "the first signal waits for the client (up to 60 s)"
    );
    server.signal();
    let (status, _) = server.exit(Duration::from_secs(3));
    assert_eq!(
        status.code(),
        Some(1),
        "the second signal exits at once, with status 1"
    );
}

#[test]
fn restarts_on_the_same_port_right_after_a_shutdown() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    for round in 0..5 {
        let mut server = serve(&["--listen", &addr, "--plaintext"]);
        // One real connection, so there is socket state to tear down.
        drop(server.upgrade("/r"));
        server.signal();
        let (status, log) = server.exit(Duration::from_secs(10));
        assert!(status.success(), "round {round}: {status:?}\n{log}");
    }
}
