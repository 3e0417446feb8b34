//! The official SDKs are the judges: npm `centrifuge` (tests/sdk/js_sdk.mjs) and PyPI
//! `centrifuge-python` (tests/sdk/py_sdk.py) against an in-process server over wss, HS256,
//! RS256, ES256 and EdDSA keys configured at once.
//!
//! They need `npm install` in tests/sdk and a venv in .venv (`scripts/test` and `.ci/run` do
//! both). Without them these tests say so and pass, unless RINGCAST_REQUIRE_SDKS=1 (set by
//! `scripts/test` and CI), where a missing SDK fails the test.

mod common;

use std::path::Path;
use std::process::Command;

const SECRET: &str = "sdk-test-secret-of-at-least-32-bytes!";

use common::{installed, root};

fn config() -> String {
    let cfg = r#"
[client]
command_rate_limit = 0
[[channel.namespaces]]
name = "chat"
allow_subscribe_for_client = true
allow_publish_for_subscriber = true
[[channel.namespaces]]
name = "news"
allow_subscribe_for_client = true
[[channel.namespaces]]
name = "feed"
allow_subscribe_for_client = true
allow_publish_for_subscriber = true
allow_history_for_subscriber = true
allow_presence_for_subscriber = true
history_size = 1000
history_ttl = "300s"
force_recovery = true
presence = true
join_leave = true
"#;
    common::temp_file("config.toml", cfg)
}

fn server() -> common::TestServer {
    server_with(&[])
}

fn server_with(extra: &[&str]) -> common::TestServer {
    let keys = ringcast::test_keys::dir();
    let public = format!(
        "{},{},{}",
        keys.join("rsa.pub").display(),
        keys.join("ec.pub").display(),
        keys.join("ed.pub").display()
    );
    let cfg = config();
    let mut flags = vec![
        "--config",
        &cfg,
        "--token-hmac-secret",
        SECRET,
        "--token-public-key",
        &public,
    ];
    flags.extend_from_slice(extra);
    common::start(&flags)
}

fn node(port: u16, ca: &Path, scenario: Option<&str>) -> Command {
    let mut cmd = node_script("js_sdk.mjs", port, ca);
    cmd.args(scenario);
    cmd
}

/// `node SCRIPT` in tests/sdk against the server on `port`.
fn node_script(script: &str, port: u16, ca: &Path) -> Command {
    let mut cmd = Command::new("node");
    cmd.current_dir(root().join("tests/sdk"))
        .arg(script)
        .env(
            "RINGCAST_URL",
            format!("wss://localhost:{port}/connection/websocket"),
        )
        .env("RINGCAST_SECRET", SECRET)
        .env("RINGCAST_KEYS", ringcast::test_keys::dir())
        .env("NODE_EXTRA_CA_CERTS", ca);
    cmd
}

fn run(mut cmd: Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{what}:\n{stdout}");
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{stderr}");
    assert!(!stdout.contains("FAILED"), "{stdout}");
}

#[test]
fn javascript_sdk() {
    let dir = root().join("tests/sdk");
    if !installed(&dir.join("node_modules/centrifuge"), "npm centrifuge") {
        return;
    }
    let s = server();
    run(node(s.port, &s.cert_path(), None), "npm centrifuge");
}

/// One order for everyone, recovery after a dropped connection, presence, join/leave.
#[test]
fn javascript_sdk_channel_engine() {
    let dir = root().join("tests/sdk");
    if !installed(&dir.join("node_modules/centrifuge"), "npm centrifuge") {
        return;
    }
    let s = server();
    run(
        node(s.port, &s.cert_path(), Some("engine")),
        "npm centrifuge (channel engine)",
    );
}

/// After a server restart the epoch is new: the SDK's recovery reports `recovered: false`.
#[test]
fn javascript_sdk_sees_a_new_epoch_after_a_restart() {
    use std::io::{BufRead, BufReader, Write};
    let dir = root().join("tests/sdk");
    if !installed(&dir.join("node_modules/centrifuge"), "npm centrifuge") {
        return;
    }
    let mut first = server();
    let port = first.port.to_string();
    // The restarted server must present the same certificate: keep it out of the first
    // server's directory, which goes away with it.
    let keep = std::env::temp_dir().join(format!("ringcast-sdk-restart-{}", std::process::id()));
    std::fs::create_dir_all(&keep).unwrap();
    let (cert, key) = (keep.join("cert.pem"), keep.join("key.pem"));
    std::fs::copy(first.cert_path(), &cert).unwrap();
    std::fs::copy(first.cert_path().with_file_name("dev-key.pem"), &key).unwrap();
    let mut child = node(first.port, &cert, Some("restart"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut out = String::new();
    let mut second = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        out.push_str(&line);
        out.push('\n');
        if line == "RESTART" {
            first.stop();
            let listen = format!("127.0.0.1:{port}");
            second = Some(server_with(&[
                "--listen",
                &listen,
                "--cert",
                cert.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
            ]));
            child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
        }
    }
    let status = child.wait().unwrap();
    drop(second);
    println!("{out}");
    assert!(
        status.success() && out.contains("ok restart_means_a_new_epoch"),
        "{out}"
    );
}

#[test]
fn python_sdk() {
    let python = root().join(".venv/bin/python");
    if !installed(&python, "centrifuge-python (venv in .venv)") {
        return;
    }
    let s = server();
    let mut cmd = Command::new(python);
    cmd.arg(root().join("tests/sdk/py_sdk.py"))
        .env(
            "RINGCAST_URL",
            format!("wss://localhost:{}/connection/websocket", s.port),
        )
        .env("RINGCAST_SECRET", SECRET)
        .env("RINGCAST_KEYS", ringcast::test_keys::dir())
        .env("RINGCAST_CA", s.cert_path());
    run(cmd, "centrifuge-python");
}

/// A `--compression` server whose raw rooms (no namespace) and `chat:` channels anyone with a
/// token may join and publish to; with its API address (for /metrics).
fn compression_server(extra: &[&str]) -> (common::TestServer, std::net::SocketAddr) {
    let cfg = common::temp_file(
        "deflate.toml",
        "[channel.without_namespace]\nallow_subscribe_for_client = true\n\
         allow_publish_for_subscriber = true\n[[channel.namespaces]]\nname = \"chat\"\n\
         allow_subscribe_for_client = true\nallow_publish_for_subscriber = true\n",
    );
    let mut flags = vec![
        "--config",
        &cfg,
        "--token-hmac-secret",
        SECRET,
        "--compression",
    ];
    flags.extend_from_slice(extra);
    let s = common::start(&flags);
    let api = s.handle().api_addr.expect("the API listens");
    (s, api)
}

/// permessage-deflate with Python `websockets` (it offers compression by default): raw rooms
/// and the client protocol, RSV1 on the wire, the deflate counters in /metrics.
#[test]
fn python_websockets_compression() {
    let python = root().join(".venv/bin/python");
    if !installed(&python, "websockets (venv in .venv)") {
        return;
    }
    let (s, api) = compression_server(&[]);
    let mut cmd = Command::new(python);
    cmd.arg(root().join("tests/sdk/py_deflate.py"))
        .env("RINGCAST_WSS", format!("wss://localhost:{}", s.port))
        .env("RINGCAST_SECRET", SECRET)
        .env("RINGCAST_CA", s.cert_path())
        .env("RINGCAST_METRICS", format!("http://{api}/metrics"));
    run(cmd, "python websockets");
}

/// permessage-deflate with headless Chromium (selenium): the browser's own offer, both ways.
/// Needs Debian `chromium` + `chromium-driver` and selenium in .venv; skipped without them
/// unless RINGCAST_REQUIRE_CHROMIUM=1.
#[test]
fn chromium_compression() {
    let python = root().join(".venv/bin/python");
    if !chromium_ready(&python) {
        return;
    }
    // The test page comes from another loopback origin (the script's own HTTP server).
    let (s, api) = compression_server(&["--allowed-origins", "*"]);
    let mut cmd = Command::new(python);
    cmd.arg(root().join("tests/sdk/py_browser_deflate.py"))
        .env("RINGCAST_WSS", format!("wss://127.0.0.1:{}", s.port))
        .env("RINGCAST_SECRET", SECRET)
        .env("RINGCAST_METRICS", format!("http://{api}/metrics"));
    run(cmd, "headless chromium");
}

/// Chromium, selenium and the venv's python are there; a skip (or, with
/// RINGCAST_REQUIRE_CHROMIUM=1, a failure) otherwise.
fn chromium_ready(python: &Path) -> bool {
    let driver = Path::new("/usr/bin/chromedriver");
    let have = driver.exists()
        && Command::new(python)
            .args(["-c", "import selenium"])
            .status()
            .is_ok_and(|s| s.success());
    if !have {
        if std::env::var_os("RINGCAST_REQUIRE_CHROMIUM").is_some_and(|v| v == "1") {
            panic!(
                "chromium, chromium-driver or selenium is missing (RINGCAST_REQUIRE_CHROMIUM=1)"
            );
        }
        eprintln!(
            "SKIPPED: chromium + chromium-driver (Debian) and selenium (.venv) not installed"
        );
    }
    have
}

/// A token from `ringcast token` with the chat configuration's secret.
fn chat_token(config: &Path, user: &str, roles: &str) -> String {
    let config = config.to_str().unwrap();
    common::process::run_ok([
        "--config", config, "token", "--user", user, "--roles", roles,
    ])
    .trim()
    .to_owned()
}

/// Chat through npm `centrifuge` on `deploy/chat-dev.toml` (tests/sdk/js_chat.mjs): a guest
/// cannot publish, a mute ends on time, a ban closes a user on both workers and refuses
/// reconnects, reactions count once per user, mentions and DMs notify only who may read.
#[test]
fn javascript_sdk_chat() {
    let dir = root().join("tests/sdk");
    if !installed(&dir.join("node_modules/centrifuge"), "npm centrifuge") {
        return;
    }
    let config = root().join("deploy/chat-dev.toml");
    let s = common::start(&[
        "--config",
        config.to_str().unwrap(),
        "--token-hmac-secret",
        SECRET,
    ]);
    let api = s.handle().api_addr.expect("the API listens");
    let mut cmd = node_script("js_chat.mjs", s.port, &s.cert_path());
    cmd.env("RINGCAST_API", format!("http://{api}"));
    run(cmd, "npm centrifuge (chat)");
}

/// The chat page (GET /) in headless Chromium: three users in three windows with tokens from
/// `ringcast token`, on the committed `deploy/chat-dev.toml` (tests/sdk/py_browser_chat.py).
/// RINGCAST_SCREENSHOTS=DIR keeps screenshots of the chat and stats pages.
#[test]
fn chromium_chat_page() {
    let python = root().join(".venv/bin/python");
    if !chromium_ready(&python) {
        return;
    }
    let config = root().join("deploy/chat-dev.toml");
    let s = common::start(&["--config", config.to_str().unwrap()]);
    let mut cmd = Command::new(python);
    cmd.arg(root().join("tests/sdk/py_browser_chat.py"))
        .env("RINGCAST_HTTPS", format!("https://127.0.0.1:{}", s.port));
    for (user, roles) in [("alice", "user"), ("bob", "user"), ("mia", "moderator")] {
        cmd.env(
            format!("RINGCAST_TOKEN_{}", user.to_uppercase()),
            chat_token(&config, user, roles),
        );
    }
    run(cmd, "headless chromium chat page");
}

/// The server API through PyPI `cent`, SDK connections on the receiving end, /metrics through
/// the Prometheus text parser (tests/sdk/py_api.py).
#[test]
fn python_api_client() {
    let python = root().join(".venv/bin/python");
    if !installed(&python, "cent (venv in .venv)") {
        return;
    }
    let s = server_with(&["--api-key", "test-api-key"]);
    let api = s.handle().api_addr.expect("the API listens");
    let mut cmd = Command::new(python);
    cmd.arg(root().join("tests/sdk/py_api.py"))
        .env(
            "RINGCAST_URL",
            format!("wss://localhost:{}/connection/websocket", s.port),
        )
        .env("RINGCAST_SECRET", SECRET)
        .env("RINGCAST_CA", s.cert_path())
        .env("RINGCAST_API", format!("http://{api}/api"))
        .env("RINGCAST_API_KEY", "test-api-key")
        .env("RINGCAST_METRICS", format!("http://{api}/metrics"));
    run(cmd, "cent");
}
