//! The Redis engine against a real Redis (tests/common/redis.rs), two ringcast nodes on it:
//! a publication on one node reaches subscribers on the other in offset order, history and
//! presence are the same from both, a client recovers what it missed on the other node, a
//! Redis restart under the nodes is survived (the subscribers learn about the gap), and a node
//! without Redis says so instead of starting.

mod common;

use std::time::Duration;

use common::TestServer;
use common::protocol::Client;
use common::redis::Redis;
use serde_json::{Value, json};

const SECRET: &str = "redis-engine-test-secret-of-32-bytes!";

const CONFIG: &str = r#"
[[channel.namespaces]]
name = "chat"
allow_subscribe_for_client = true
allow_publish_for_client = true
allow_history_for_client = true
allow_presence_for_client = true
presence = true
join_leave = true
force_push_join_leave = true
history_size = 100
history_ttl = "300s"
force_recovery = true

[[channel.namespaces]]
name = "live"
allow_subscribe_for_client = true
allow_publish_for_client = true
"#;

fn node(redis: &Redis, prefix: &str) -> TestServer {
    node_with(redis, prefix, "")
}

/// A node whose configuration file adds `extra` (TOML) to [`CONFIG`].
fn node_with(redis: &Redis, prefix: &str, extra: &str) -> TestServer {
    redis.node(&format!("{CONFIG}\n{extra}"), SECRET, prefix)
}

/// Runs `ringcast --engine redis --redis-address ADDRESS`, which must not start; its output.
fn refused_start(address: &str) -> String {
    refused_start_with(address, &[])
}

/// [`refused_start`] with more flags.
fn refused_start_with(address: &str, more: &[&str]) -> String {
    let dir = std::env::temp_dir().join(format!(
        "ringcast-refused-{}-{}",
        std::process::id(),
        address.len()
    ));
    let out = common::process::ringcast()
        .args(["--engine", "redis", "--redis-address", address])
        .args(more)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--api-listen",
            "off",
            "--cert-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success(), "it must not start");
    String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
}

fn clients_in(presence: &Value) -> Vec<String> {
    let mut users: Vec<String> = presence["presence"]["presence"]
        .as_object()
        .unwrap_or_else(|| panic!("a presence reply: {presence}"))
        .values()
        .map(|e| e["user"].as_str().unwrap().to_owned())
        .collect();
    users.sort();
    users
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_publications_history_presence_and_recovery() {
    let Some(redis) = Redis::start() else { return };
    let (a, b) = (node(&redis, "t1"), node(&redis, "t1"));
    let mut x = Client::connect(&a, SECRET, "xavier").await;
    let mut y = Client::connect(&b, SECRET, "yvonne").await;
    let sub = x.call(json!({"subscribe": {"channel": "chat:r"}})).await;
    assert!(sub["subscribe"].is_object(), "{sub}");
    let epoch = sub["subscribe"]["epoch"].as_str().unwrap().to_owned();
    assert!(!epoch.is_empty(), "{sub}");
    let r = y.call(json!({"subscribe": {"channel": "chat:r"}})).await;
    assert!(r["subscribe"].is_object(), "{r}");
    // Yvonne's join, published by node b, reaches Xavier on node a.
    let join = x.push(|p| p["join"]["info"]["user"] == "yvonne").await;
    assert_eq!(join["join"]["info"]["user"], "yvonne", "{join}");

    const N: u64 = 30;
    for n in 0..N {
        let r = y
            .call(json!({"publish": {"channel": "chat:r", "data": {"n": n}}}))
            .await;
        assert!(r["publish"].is_object(), "{r}");
    }
    let want: Vec<(u64, u64)> = (0..N).map(|n| (n, n + 1)).collect();
    assert_eq!(
        x.publications("chat:r", N as usize).await,
        want,
        "node a: all, in offset order"
    );
    assert_eq!(
        y.publications("chat:r", N as usize).await,
        want,
        "node b (the publisher's own node): the same"
    );

    // History and presence: the same answer from both nodes.
    for c in [&mut x, &mut y] {
        let h = c
            .call(json!({"history": {"channel": "chat:r", "limit": -1}}))
            .await;
        let pubs = h["history"]["publications"]
            .as_array()
            .unwrap_or_else(|| panic!("{h}"));
        assert_eq!(pubs.len(), N as usize, "{h}");
        assert_eq!(pubs[4]["data"]["n"], 4);
        assert_eq!(pubs[4]["offset"], 5);
        assert_eq!(h["history"]["offset"], N);
        assert_eq!(h["history"]["epoch"], epoch.as_str());
        let p = c.call(json!({"presence": {"channel": "chat:r"}})).await;
        assert_eq!(clients_in(&p), ["xavier", "yvonne"], "{p}");
        let s = c
            .call(json!({"presence_stats": {"channel": "chat:r"}}))
            .await;
        assert_eq!(s["presence_stats"]["num_clients"], 2, "{s}");
        assert_eq!(s["presence_stats"]["num_users"], 2, "{s}");
    }

    // Xavier leaves node a; his presence goes with him.
    drop(x);
    let leave = y.push(|p| p["leave"]["info"]["user"] == "xavier").await;
    assert_eq!(leave["leave"]["info"]["user"], "xavier", "{leave}");
    let p = y.call(json!({"presence": {"channel": "chat:r"}})).await;
    assert_eq!(clients_in(&p), ["yvonne"], "{p}");
    for n in N..N + 5 {
        y.call(json!({"publish": {"channel": "chat:r", "data": {"n": n}}}))
            .await;
    }
    // He comes back on node b and recovers what he missed there.
    let mut x2 = Client::connect(&b, SECRET, "xavier").await;
    let r = x2
        .call(json!({"subscribe": {"channel": "chat:r", "recover": true, "offset": N, "epoch": epoch}}))
        .await;
    assert_eq!(r["subscribe"]["recovered"], true, "{r}");
    let missed: Vec<u64> = r["subscribe"]["publications"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|p| p["data"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(missed, (N..N + 5).collect::<Vec<_>>(), "{r}");

    // A channel without history: publications cross nodes too, without offsets.
    let mut z = Client::connect(&a, SECRET, "zoe").await;
    let r = z.call(json!({"subscribe": {"channel": "live:x"}})).await;
    assert!(r["subscribe"].is_object(), "{r}");
    for n in 0..5 {
        x2.call(json!({"publish": {"channel": "live:x", "data": {"n": n}}}))
            .await;
    }
    assert_eq!(
        z.publications("live:x", 5).await,
        (0..5).map(|n| (n, 0)).collect::<Vec<_>>()
    );
    let h = z.call(json!({"history": {"channel": "live:x"}})).await;
    assert_eq!(h["error"]["code"], 108, "no history there: {h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_is_survived_and_the_gap_is_told() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let (a, b) = (node(&redis, "t2"), node(&redis, "t2"));
    let mut x = Client::connect(&a, SECRET, "xavier").await;
    let mut y = Client::connect(&b, SECRET, "yvonne").await;
    let sub = x.call(json!({"subscribe": {"channel": "chat:g"}})).await;
    let epoch = sub["subscribe"]["epoch"].as_str().unwrap().to_owned();
    y.call(json!({"publish": {"channel": "chat:g", "data": {"n": 1}}}))
        .await;
    assert_eq!(x.publications("chat:g", 1).await, [(1, 1)]);

    redis.stop();
    // Node a's subscriber connection broke: whatever Redis published meanwhile is lost for
    // it, so Xavier, positioned in chat:g's stream, is told at once (unsubscribe push 2500,
    // insufficient state; his SDK would resubscribe and recover) instead of later getting
    // offsets as if nothing happened.
    let gap = x.push(|p| p.get("unsubscribe").is_some()).await;
    assert_eq!(gap["channel"], "chat:g", "{gap}");
    assert_eq!(gap["unsubscribe"]["code"], 2500, "{gap}");
    // Without Redis a publish fails with an error naming the cause, not silently.
    let r = y
        .call(json!({"publish": {"channel": "chat:g", "data": {"n": 2}}}))
        .await;
    assert_eq!(r["error"]["code"], 100, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unavailable"),
        "{r}"
    );
    let r = x.call(json!({"subscribe": {"channel": "chat:g"}})).await;
    assert_eq!(
        r["error"]["code"], 100,
        "no subscription without Redis: {r}"
    );

    redis.run();
    // The node's subscriber connects again by itself (backoff at most 2 s).
    let api = a.handle().api_addr.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let metrics = common::http_get(api, "/metrics").await;
        if metrics.contains("ringcast_engine_backend_connects_total 2") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node a did not reconnect: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Redis came back empty (no persistence): a new epoch. Xavier's recovery says it could
    // not recover, and the stream goes on from there.
    let r = x
        .call(json!({"subscribe": {"channel": "chat:g", "recover": true, "offset": 1, "epoch": epoch}}))
        .await;
    assert_ne!(
        r["subscribe"]["recovered"], true,
        "not recovered (false is omitted): {r}"
    );
    assert_ne!(r["subscribe"]["epoch"], epoch.as_str(), "{r}");
    y.call(json!({"publish": {"channel": "chat:g", "data": {"n": 3}}}))
        .await;
    assert_eq!(x.publications("chat:g", 1).await, [(3, 1)]);
}

#[test]
fn a_node_without_redis_does_not_start() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = refused_start(&format!("redis://127.0.0.1:{port}"));
    assert!(
        out.contains("cannot reach Redis at redis://127.0.0.1:"),
        "{out}"
    );
}

/// A Redis that wants a password: nodes given it in the address share channels (the pooled
/// connections and the PUB/SUB one both log in); a node with a wrong one does not start and
/// says why, without printing the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_protected_redis() {
    let Some(redis) = Redis::with_password("s3cret-pw") else {
        return;
    };
    let (a, b) = (node(&redis, "t5"), node(&redis, "t5"));
    let mut x = Client::connect(&a, SECRET, "xavier").await;
    x.call(json!({"subscribe": {"channel": "chat:pw"}})).await;
    let mut y = Client::connect(&b, SECRET, "yvonne").await;
    let r = y
        .call(json!({"publish": {"channel": "chat:pw", "data": {"n": 1}}}))
        .await;
    assert!(r.get("publish").is_some(), "{r}");
    assert_eq!(x.publications("chat:pw", 1).await, [(1, 1)]);

    let out = refused_start(&format!("redis://:wrong-pw@127.0.0.1:{}", redis.port));
    assert!(
        out.contains("cannot reach Redis at redis://:***@127.0.0.1:"),
        "{out}"
    );
    assert!(
        out.contains("Redis refused the login") && out.contains("WRONGPASS"),
        "{out}"
    );
    assert!(
        !out.contains("wrong-pw"),
        "the password is not printed: {out}"
    );
}

/// A Redis that speaks TLS only (`rediss://`, its CA given with --redis-tls-ca): two nodes
/// share a publication, history and presence through it; a node that does not trust the
/// certificate does not start and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_over_tls() {
    let Some(redis) = Redis::with_tls() else {
        return;
    };
    let (a, b) = (node(&redis, "t6"), node(&redis, "t6"));
    let mut x = Client::connect(&a, SECRET, "xavier").await;
    x.call(json!({"subscribe": {"channel": "chat:tls"}})).await;
    let mut y = Client::connect(&b, SECRET, "yvonne").await;
    for n in 1..=3 {
        let r = y
            .call(json!({"publish": {"channel": "chat:tls", "data": {"n": n}}}))
            .await;
        assert!(r.get("publish").is_some(), "{r}");
    }
    assert_eq!(
        x.publications("chat:tls", 3).await,
        [(1, 1), (2, 2), (3, 3)]
    );
    let h = y
        .call(json!({"history": {"channel": "chat:tls", "limit": -1}}))
        .await;
    assert_eq!(
        h["history"]["publications"].as_array().map(Vec::len),
        Some(3),
        "{h}"
    );
    let p = y.call(json!({"presence": {"channel": "chat:tls"}})).await;
    assert_eq!(clients_in(&p), ["xavier"]);

    // Trusting another CA: the handshake fails, the node does not start.
    let other = common::temp_file(
        "other-ca.pem",
        &rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .cert
            .pem(),
    );
    let out = refused_start_with(&redis.address(), &["--redis-tls-ca", &other]);
    assert!(
        out.contains("cannot reach Redis at rediss://127.0.0.1:") && out.contains("TLS"),
        "{out}"
    );
}

/// The real SDK judges: centrifuge-python subscribed on node a gets, in order, what the server
/// API of node b publishes (curl, as a backend would).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_on_one_node_gets_what_the_api_of_the_other_publishes() {
    let root = common::root();
    let Some(python) = common::venv_python("centrifuge-python (venv in .venv)") else {
        return;
    };
    let Some(redis) = Redis::start() else { return };
    let (a, b) = (node(&redis, "t3"), node(&redis, "t3"));
    const N: u32 = 50;
    let mut sub = std::process::Command::new(python)
        .arg(root.join("tests/sdk/py_outbox.py"))
        .env(
            "RINGCAST_URL",
            format!("wss://localhost:{}/connection/websocket", a.port),
        )
        .env("RINGCAST_SECRET", SECRET)
        .env("RINGCAST_CA", a.cert_path())
        .env("RINGCAST_CHANNEL", "chat:sdk")
        .env("RINGCAST_COUNT", N.to_string())
        .env("RINGCAST_WAIT", "30")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(sub.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let api = b.handle().api_addr.unwrap();
    for n in 0..N {
        let out = std::process::Command::new("curl")
            .args(["-sS", "-d"])
            .arg(format!(r#"{{"channel":"chat:sdk","data":{{"n":{n}}}}}"#))
            .arg(format!("http://{api}/api/publish"))
            .output()
            .expect("curl runs");
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(
            body.contains(&format!("\"offset\":{}", n + 1)),
            "publish {n}: {body}"
        );
    }
    let got: Vec<u32> = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let _ = sub.wait();
    assert_eq!(got, (0..N).collect::<Vec<_>>(), "all, in order, once");
}

/// A node keeps its clients' presence alive past the TTL by refreshing it (every third of the
/// TTL), and a client that left is gone from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_outlives_its_ttl_while_the_client_stays() {
    let Some(redis) = Redis::start() else { return };
    let fast = "[engine.redis]\npresence_ttl = \"3s\"\n";
    let (a, b) = (node_with(&redis, "t4", fast), node_with(&redis, "t4", fast));
    let mut x = Client::connect(&a, SECRET, "xavier").await;
    x.call(json!({"subscribe": {"channel": "chat:p"}})).await;
    let mut y = Client::connect(&b, SECRET, "yvonne").await;
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let p = y.call(json!({"presence": {"channel": "chat:p"}})).await;
    assert_eq!(
        clients_in(&p),
        ["xavier"],
        "refreshed past the 3 s TTL: {p}"
    );
    x.call(json!({"unsubscribe": {"channel": "chat:p"}})).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let p = y.call(json!({"presence": {"channel": "chat:p"}})).await;
    assert!(
        clients_in(&p).is_empty(),
        "gone once unsubscribed, refresh or not: {p}"
    );
}

/// A node that dies without a word (SIGKILL): its clients' presence entries expire after the
/// presence TTL, since no one refreshes them, and the other node stops listing them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_presence_expires() {
    let Some(redis) = Redis::start() else { return };
    let fast = "[engine.redis]\npresence_ttl = \"3s\"\n";
    let a = node_with(&redis, "t7", fast);
    let cfg = common::temp_file("dying-node.toml", &format!("{CONFIG}\n{fast}"));
    let address = redis.address();
    let mut b = common::process::serve(&[
        "--plaintext",
        "--listen",
        "127.0.0.1:0",
        "--api-listen",
        "off",
        "--config",
        &cfg,
        "--token-hmac-secret",
        SECRET,
        "--engine",
        "redis",
        "--redis-address",
        &address,
        "--redis-prefix",
        "t7",
    ]);
    let (ws, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/connection/websocket", b.port))
            .await
            .unwrap();
    let mut x = Client::connect_over(ws, SECRET, "xavier").await;
    let r = x.call(json!({"subscribe": {"channel": "chat:p"}})).await;
    assert!(r.get("subscribe").is_some(), "{r}");
    let mut y = Client::connect(&a, SECRET, "yvonne").await;
    let p = y.call(json!({"presence": {"channel": "chat:p"}})).await;
    assert_eq!(clients_in(&p), ["xavier"], "{p}");

    b.child.kill().unwrap();
    let _ = b.child.wait();
    let killed = std::time::Instant::now();
    loop {
        let p = y.call(json!({"presence": {"channel": "chat:p"}})).await;
        if clients_in(&p).is_empty() {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(8),
            "still present 8 s after its node died (TTL 3 s, whole seconds, refreshed every 1 s): {p}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        killed.elapsed() >= Duration::from_millis(500),
        "gone at once: was it the TTL? ({:?})",
        killed.elapsed()
    );
}

/// `ringcast check` with the Redis engine says whether Redis answers (the address without its
/// password) and fails when it does not.
#[test]
fn check_reports_whether_redis_answers() {
    let Some(redis) = Redis::with_password("check-pw") else {
        return;
    };
    let check = |address: &str| {
        let out = common::process::ringcast()
            .args(["--engine", "redis", "--redis-address", address])
            .args(["--listen", "127.0.0.1:0", "--api-listen", "off", "check"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success(), text)
    };
    let (ok, text) = check(&redis.address());
    assert!(ok, "{text}");
    let line = format!(
        "redis            redis://:***@127.0.0.1:{}/0 answers",
        redis.port
    );
    assert!(text.contains(&line), "{text}");
    let (ok, text) = check(&format!("redis://:wrong-pw@127.0.0.1:{}", redis.port));
    assert!(!ok, "{text}");
    assert!(text.contains("redis            NOT usable:"), "{text}");
    assert!(
        !text.contains("wrong-pw") && !text.contains("check-pw"),
        "{text}"
    );
}

/// A hung Redis (SIGSTOP: connections open, nothing answered) costs a node one call's timeout,
/// not one per call: after the first failure calls fail at once, with an error saying Redis is
/// unavailable and when the node tries again, until Redis answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_fails_calls_at_once_until_it_answers_again() {
    let Some(redis) = Redis::start() else { return };
    let a = node_with(&redis, "t8", "[engine.redis]\ntimeout = \"1s\"\n");
    let api = a.handle().api_addr.unwrap();
    let mut x = Client::connect(&a, SECRET, "xavier").await;
    let mut y = Client::connect(&a, SECRET, "yvonne").await;
    x.call(json!({"subscribe": {"channel": "chat:h"}})).await;
    let r = y
        .call(json!({"publish": {"channel": "chat:h", "data": {"n": 1}}}))
        .await;
    assert!(r.get("error").is_none(), "{r}");
    assert_eq!(x.publications("chat:h", 1).await, [(1, 1)]);

    redis.freeze();
    let started = std::time::Instant::now();
    let r = y
        .call(json!({"publish": {"channel": "chat:h", "data": {"n": 2}}}))
        .await;
    let first = started.elapsed();
    assert_eq!(r["error"]["code"], 100, "{r}");
    assert!(
        first >= Duration::from_millis(900) && first < Duration::from_secs(3),
        "the first call waits out the 1 s timeout: {first:?}"
    );
    // Twenty more calls while Redis stays frozen: each would wait 1 s; they fail at once.
    let started = std::time::Instant::now();
    for n in 3..23 {
        let r = y
            .call(json!({"publish": {"channel": "chat:h", "data": {"n": n}}}))
            .await;
        assert_eq!(r["error"]["code"], 100, "{r}");
        let message = r["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("unavailable") && message.contains("again in"),
            "{r}"
        );
    }
    let rest = started.elapsed();
    assert!(
        rest < Duration::from_millis(500),
        "20 calls against a hung Redis took {rest:?}"
    );
    // A subscription to a channel the node does not listen to yet (its SUBSCRIBE would wait
    // 3 s for a confirmation) fails at once too.
    let started = std::time::Instant::now();
    let r = x.call(json!({"subscribe": {"channel": "chat:h2"}})).await;
    assert_eq!(r["error"]["code"], 100, "{r}");
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    let metrics = common::http_get(api, "/metrics").await;
    assert!(
        metrics.contains("ringcast_engine_backend_available 0"),
        "{metrics}"
    );

    redis.thaw();
    // Once Redis answers, the node's next attempt (at most a second later) finds it.
    let thawed = std::time::Instant::now();
    let n = loop {
        let r = y
            .call(json!({"publish": {"channel": "chat:h", "data": {"n": 100}}}))
            .await;
        if r.get("error").is_none() {
            break 100;
        }
        assert!(
            thawed.elapsed() < Duration::from_secs(5),
            "Redis answers again, the node still refuses: {r}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The call that timed out was sent: Redis, thawed, may carry it out (the error said the
    // outcome is unknown). The refused ones were never sent.
    let mut got = x.publications("chat:h", 1).await;
    if got[0].0 == 2 {
        got = x.publications("chat:h", 1).await;
    }
    assert_eq!(got[0].0, n, "only n=2 (timed out) may come before: {got:?}");
    let r = x.call(json!({"subscribe": {"channel": "chat:h2"}})).await;
    assert!(r.get("subscribe").is_some(), "{r}");
    let metrics = common::http_get(api, "/metrics").await;
    assert!(
        metrics.contains("ringcast_engine_backend_available 1"),
        "{metrics}"
    );
    let refused: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("ringcast_engine_backend_refused_total "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(
        refused >= 21,
        "20 publishes and a subscribe refused, and those of the wait for the retry: {refused}"
    );
}
