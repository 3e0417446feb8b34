//! A throw-away Redis for a test: `redis-server` on a free loopback port, no persistence,
//! stopped on drop (and on [`Redis::stop`], to test what a node does without it).
//!
//! Debian's `redis-server` package provides the binary (`.ci/run` installs it). Without it the
//! test says so and is skipped, unless RINGCAST_REQUIRE_REDIS=1 (set by `scripts/test`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    pub port: u16,
    /// `--requirepass`, when set.
    password: Option<String>,
    /// TLS only: the directory with its certificate (`cert.pem`, also the CA) and key.
    tls: Option<std::path::PathBuf>,
    child: Option<Child>,
}

impl Redis {
    /// None (with a message) when redis-server is not installed and not required.
    pub fn start() -> Option<Self> {
        Self::start_with(None, false)
    }

    /// A Redis that wants `password` (`--requirepass`).
    pub fn with_password(password: &str) -> Option<Self> {
        Self::start_with(Some(password.to_owned()), false)
    }

    /// A Redis that speaks TLS only, with a self-signed certificate for 127.0.0.1
    /// ([`Redis::ca`] trusts it).
    pub fn with_tls() -> Option<Self> {
        Self::start_with(None, true)
    }

    fn start_with(password: Option<String>, tls: bool) -> Option<Self> {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            let required = std::env::var("RINGCAST_REQUIRE_REDIS").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "Redis is required (RINGCAST_REQUIRE_REDIS=1) but redis-server is not on PATH"
            );
            eprintln!(
                "redis-server not installed: Redis engine test skipped (apt-get install redis-server)"
            );
            return None;
        }
        let port = unused_port();
        let tls = tls.then(|| {
            let dir = std::env::temp_dir()
                .join(format!("ringcast-redis-tls-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
            std::fs::write(dir.join("cert.pem"), c.cert.pem()).unwrap();
            std::fs::write(dir.join("key.pem"), c.signing_key.serialize_pem()).unwrap();
            dir
        });
        let mut r = Self {
            port,
            password,
            tls,
            child: None,
        };
        // A port picked free may be taken before Redis binds it: then another one.
        for _ in 0..10 {
            if r.try_run() {
                return Some(r);
            }
            r.port = unused_port();
        }
        panic!("redis-server found no free port in 10 tries")
    }

    /// Starts the server (again) on the same port and waits until it answers.
    pub fn run(&mut self) {
        assert!(
            self.try_run(),
            "redis-server could not listen on port {} again",
            self.port
        );
    }

    /// Starts the server on its port: false if it could not listen there (another process
    /// took the port since it was picked; something else would then answer on it).
    fn try_run(&mut self) -> bool {
        let port = self.port.to_string();
        let listen: Vec<String> = match &self.tls {
            None => vec!["--port".into(), port],
            Some(dir) => {
                let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
                let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
                [
                    "--port",
                    "0",
                    "--tls-port",
                    &port,
                    "--tls-cert-file",
                    cert,
                    "--tls-key-file",
                    key,
                    "--tls-ca-cert-file",
                    cert,
                    "--tls-auth-clients",
                    "no",
                ]
                .map(String::from)
                .to_vec()
            }
        };
        let mut child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1"])
            .args(&listen)
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .args(
                self.password
                    .iter()
                    .flat_map(|p| ["--requirepass".to_owned(), p.clone()]),
            )
            .stdout(Stdio::piped())
            .spawn()
            .expect("redis-server starts");
        // Its log says when it listens; one that cannot bind logs why and exits.
        let mut log = std::io::BufReader::new(child.stdout.take().expect("piped"));
        let mut ready = false;
        let mut line = String::new();
        while !ready && std::io::BufRead::read_line(&mut log, &mut line).is_ok_and(|n| n > 0) {
            ready = line.contains("Ready to accept connections");
            line.clear();
        }
        // Keep reading its log so that it never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
        self.child = Some(child);
        if !ready {
            self.stop();
            return false;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Kills the server (its data goes with it).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered — a hung
    /// Redis, or one behind a broken network. [`Redis::thaw`] lets it go on.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen server go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self
            .child
            .as_ref()
            .expect("redis-server runs")
            .id()
            .to_string();
        let ok = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(ok.success(), "kill {sig} redis-server");
    }

    /// `redis://[:password@]127.0.0.1:port`.
    pub fn address(&self) -> String {
        let login = self
            .password
            .as_ref()
            .map_or(String::new(), |p| format!(":{p}@"));
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://{login}127.0.0.1:{}", self.port)
    }

    /// With TLS: the PEM file that trusts this Redis' certificate.
    pub fn ca(&self) -> Option<String> {
        self.tls
            .as_ref()
            .map(|d| d.join("cert.pem").to_str().unwrap().to_owned())
    }
}

impl Redis {
    /// A ringcast node on this Redis: `config` (TOML), HS256 tokens signed with `secret`, keys
    /// and channels under `prefix`.
    pub fn node(&self, config: &str, secret: &str, prefix: &str) -> super::TestServer {
        let cfg = super::temp_file("redis-node.toml", config);
        let address = self.address();
        let mut args = vec![
            "--config",
            &cfg,
            "--token-hmac-secret",
            secret,
            "--engine",
            "redis",
            "--redis-address",
            &address,
            "--redis-prefix",
            prefix,
        ];
        let ca = self.ca();
        if let Some(ca) = &ca {
            args.extend(["--redis-tls-ca", ca]);
        }
        super::start(&args)
    }
}

/// A free loopback port no other Redis of this test process had: a stopped one restarts on
/// its port ([`Redis::run`]), which another test must not have taken meanwhile.
fn unused_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
