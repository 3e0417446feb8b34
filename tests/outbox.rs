//! The PostgreSQL outbox against a real PostgreSQL (tests/common/postgres.rs): rows inserted in
//! transactions reach a centrifuge-python subscriber in order; a PostgreSQL restart in the
//! middle loses nothing and repeats nothing; two servers on one outbox apply each row once.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::postgres::Postgres;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "outbox-test-secret-of-at-least-32-bytes";

use common::root;

fn config(pg: &Postgres) -> String {
    let p = pg.dir().join("ringcast.toml");
    std::fs::write(
        &p,
        "[[channel.namespaces]]\nname = \"orders\"\nallow_subscribe_for_client = true\n",
    )
    .unwrap();
    p.to_string_lossy().into_owned()
}

fn server(pg: &Postgres, cfg: &str) -> common::TestServer {
    let url = pg.url();
    common::start(&[
        "--config",
        cfg,
        "--token-hmac-secret",
        SECRET,
        "--outbox",
        &url,
        "--outbox-poll",
        "200ms",
        "--outbox-batch",
        "20",
    ])
}

fn outbox_init(pg: &Postgres) {
    let out = common::process::run_ok(["outbox-init", "--outbox", &pg.url()]);
    assert!(out.contains("ringcast_outbox ready"), "{out}");
}

/// Inserts `publish` rows n = from..to into channel `orders:o`, one transaction each,
/// reconnecting when the database restarts under it.
async fn insert(pg: &Postgres, from: u32, to: u32) {
    let mut n = from;
    while n < to {
        let Ok((client, conn)) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls).await
        else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        tokio::spawn(conn);
        while n < to {
            let payload = format!(r#"{{"channel":"orders:o","data":{{"n":{n}}}}}"#);
            let r = client
                .execute(
                    "INSERT INTO ringcast_outbox (method, payload) VALUES ('publish', $1::text::jsonb)",
                    &[&payload],
                )
                .await;
            if r.is_err() {
                // The row may or may not have been committed: a backend would retry the whole
                // business transaction; here the row is just the counter, so check.
                break;
            }
            n += 1;
        }
    }
}

async fn count_pending(pg: &Postgres) -> i64 {
    let (client, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .query_one(
            "SELECT count(*) FROM ringcast_outbox WHERE processed_at IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_reach_an_sdk_subscriber_in_order_across_a_database_restart() {
    let Some(python) = common::venv_python("centrifuge-python (venv in .venv)") else {
        return;
    };
    let Some(pg) = Postgres::start() else { return };
    outbox_init(&pg);
    outbox_init(&pg); // again: idempotent
    let cfg = config(&pg);
    let s = server(&pg, &cfg);
    const N: u32 = 200;
    let mut sub = Command::new(python)
        .arg(root().join("tests/sdk/py_outbox.py"))
        .env(
            "RINGCAST_URL",
            format!("wss://localhost:{}/connection/websocket", s.port),
        )
        .env("RINGCAST_SECRET", SECRET)
        .env("RINGCAST_CA", s.cert_path())
        .env("RINGCAST_CHANNEL", "orders:o")
        .env("RINGCAST_COUNT", N.to_string())
        .env("RINGCAST_WAIT", "60")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(sub.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    insert(&pg, 0, N / 2).await;
    // The database goes away under the consumer (and the inserter) and comes back.
    pg.restart();
    insert(&pg, N / 2, N).await;
    let got: Vec<u32> = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let _ = sub.wait();
    assert_eq!(got, (0..N).collect::<Vec<_>>(), "all, in order, once");
    assert_eq!(count_pending(&pg).await, 0, "every row marked");
    // The consumer reconnected (its figures say so).
    let api = s.handle().api_addr.unwrap();
    let metrics = common::http_get(api, "/metrics").await;
    assert!(
        metrics.contains(&format!("ringcast_outbox_applied_total {N}")),
        "{metrics}"
    );
    assert!(
        !metrics.contains("ringcast_outbox_reconnects_total 0\n"),
        "{metrics}"
    );
}

/// A protocol client subscribed to `orders:o`, returning the `n` of each publication.
async fn subscriber(s: &common::TestServer) -> common::Ws {
    use jsonwebtoken::{EncodingKey, Header, encode};
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let t = encode(
        &Header::default(),
        &serde_json::json!({"sub": "w", "exp": exp}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let mut ws = s.ws("/connection/websocket").await;
    ws.send(Message::text(format!(
        "{{\"id\":1,\"connect\":{{\"token\":\"{t}\"}}}}\n{{\"id\":2,\"subscribe\":{{\"channel\":\"orders:o\"}}}}"
    )))
    .await
    .unwrap();
    let mut replies = 0;
    while replies < 2 {
        let m = ws.next().await.unwrap().unwrap();
        replies += m
            .to_text()
            .unwrap()
            .lines()
            .filter(|l| l.contains("\"id\":"))
            .count();
    }
    ws
}

async fn collect(ws: &mut common::Ws, until: Duration) -> Vec<u64> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + until;
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if let Message::Text(t) = m {
            for line in t.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                if let Some(n) = v["push"]["pub"]["data"]["n"].as_u64() {
                    got.push(n);
                }
            }
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_outbox_apply_each_row_once() {
    let Some(pg) = Postgres::start() else { return };
    outbox_init(&pg);
    let cfg = config(&pg);
    let (a, b) = (server(&pg, &cfg), server(&pg, &cfg));
    let (mut wa, mut wb) = (subscriber(&a).await, subscriber(&b).await);
    const N: u32 = 300;
    insert(&pg, 0, N).await;
    let (ga, gb) = tokio::join!(
        collect(&mut wa, Duration::from_secs(8)),
        collect(&mut wb, Duration::from_secs(8))
    );
    let mut all: Vec<u64> = ga.iter().chain(gb.iter()).copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..N as u64).collect::<Vec<_>>(),
        "each row delivered by exactly one server ({} by a, {} by b)",
        ga.len(),
        gb.len()
    );
    // Each server applies in id order: what each delivered is ascending.
    assert!(ga.windows(2).all(|w| w[0] < w[1]) && gb.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(count_pending(&pg).await, 0);
}
