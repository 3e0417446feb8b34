//! The `ringcast` binary as users run it: start-up errors, `check`, signals, restarts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

fn ringcast() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ringcast"))
}

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ringcast-bin-{name}-{}", std::process::id()))
}

/// The binary, started with JSON logs, once it says it serves.
struct Running {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

/// Starts `ringcast ARGS --log-format json` and waits for its "serving" line.
fn serve(args: &[&str]) -> Running {
    let mut child = ringcast()
        .args(args)
        .args(["--log-format", "json"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap());
    let log = Arc::new(Mutex::new(String::new()));
    let mut line = String::new();
    let port = loop {
        line.clear();
        assert!(
            lines.read_line(&mut line).unwrap() > 0,
            "exited before serving: {}",
            log.lock().unwrap()
        );
        log.lock().unwrap().push_str(&line);
        if let Some(at) = line.find("://127.0.0.1:") {
            let digits: String = line[at + 13..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            break digits.parse::<u16>().unwrap();
        }
    };
    // Keep reading, so the server never blocks on a full pipe and the log is complete at exit.
    let sink = log.clone();
    let reader = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = lines.read_to_string(&mut rest);
        sink.lock().unwrap().push_str(&rest);
    });
    Running {
        child,
        port,
        log,
        reader: Some(reader),
    }
}

impl Running {
    fn signal(&self) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the exit (panics after `within`); returns the status and the whole log.
    fn exit(&mut self, within: Duration) -> (ExitStatus, String) {
        let t = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(t.elapsed() < within, "still running after {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        (status, self.log.lock().unwrap().clone())
    }

    /// A plain-TCP WebSocket upgrade (for --plaintext servers); returns the open socket.
    fn upgrade(&self, path: &str) -> TcpStream {
        let mut c = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        c.write_all(req.as_bytes()).unwrap();
        let mut head = [0u8; 12];
        c.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 101");
        c
    }
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
