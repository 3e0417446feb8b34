//! The `ringcast` binary as a child process (JSON logs), for tests that need the process
//! itself: signals, exit codes, its own memory figures.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub fn ringcast() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ringcast"))
}

/// Runs `ringcast ARGS` to its end; its stdout (panics with its stderr when it fails).
pub fn run_ok<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = ringcast().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The binary, started with JSON logs, once it says it serves.
pub struct Running {
    pub child: Child,
    pub port: u16,
    log: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

/// Starts `ringcast ARGS --log-format json` and waits for its "serving" line.
pub fn serve(args: &[&str]) -> Running {
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
        // The "serving wss://127.0.0.1:PORT/<room>" line (not, e.g., a Redis address).
        if let Some(at) = line
            .find(" serving ")
            .and_then(|s| line[s..].find("://127.0.0.1:").map(|a| s + a))
        {
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
    pub fn signal(&self) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the exit (panics after `within`); returns the status and the whole log.
    pub fn exit(&mut self, within: Duration) -> (ExitStatus, String) {
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
    pub fn upgrade(&self, path: &str) -> TcpStream {
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

impl Drop for Running {
    /// A test that fails half-way must not leave the server running (and holding its pipes).
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
