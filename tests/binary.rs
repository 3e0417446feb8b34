//! The `ringcast` binary as users run it: start-up errors, `check`, SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ringcast() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ringcast"))
}

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ringcast-bin-{name}-{}", std::process::id()))
}

#[test]
fn sigterm_shuts_down_gracefully_with_exit_0() {
    let dir = temp("term");
    let mut child = ringcast()
        .args([
            "--listen",
            "127.0.0.1:0",
            "--cert-dir",
            dir.to_str().unwrap(),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it serves (the dev certificate exists once TLS is set up).
    let t = Instant::now();
    while !dir.join("dev-cert.pem").exists() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "still running 5 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
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
