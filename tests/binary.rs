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

#[test]
fn a_second_signal_exits_at_once() {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut child = ringcast()
        .args([
            "--listen",
            "127.0.0.1:0",
            "--plaintext",
            "--shutdown-timeout",
            "60s",
            "--log-format",
            "json",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let port = loop {
        line.clear();
        assert!(
            log.read_line(&mut line).unwrap() > 0,
            "server exited before serving"
        );
        if let Some(at) = line.find("ws://127.0.0.1:") {
            let digits: String = line[at + 15..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            break digits.parse::<u16>().unwrap();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = log.read_to_end(&mut sink);
    });
    // A client that upgrades and then never answers the server's Close.
    let mut deaf = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let req = "GET /deaf HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
               Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    deaf.write_all(req.as_bytes()).unwrap();
    let mut head = [0u8; 12];
    deaf.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");

    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first signal waits for the client (up to 60 s)"
    );
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "still running after the second signal"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        status.code(),
        Some(1),
        "the second signal exits at once, with status 1"
    );
}

#[test]
fn restarts_on_the_same_port_right_after_a_shutdown() {
    use std::io::{BufRead, BufReader, Read, Write};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    for round in 0..5 {
        let mut child = ringcast()
            .args(["--listen", &addr, "--plaintext", "--log-format", "json"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut log = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            let n = log.read_line(&mut line).unwrap();
            assert!(n > 0, "round {round}: the server did not start: {line}");
            if line.contains("serving ws://") {
                break;
            }
        }
        // One real connection, so there is socket state to tear down.
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        let req = "GET /r HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        c.write_all(req.as_bytes()).unwrap();
        let mut head = [0u8; 12];
        c.read_exact(&mut head).unwrap();
        drop(c);
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&child),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "round {round}: {status:?}");
    }
}
