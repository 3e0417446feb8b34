//! The API without HTTP: a real memory engine, the session commands recorded.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;
use crate::config::AppFlags;
use crate::engine::memory::{Limits, MemoryEngine};
use crate::engine::{Engine, Outlet, PresenceManager};

#[derive(Default)]
struct Frames(Mutex<Vec<(String, u64, String)>>);

impl Outlet for Frames {
    fn frame(&self, push: &[u8]) -> Bytes {
        Bytes::copy_from_slice(push)
    }
    fn deliver(&self, channel: &str, offset: u64, frame: Bytes) {
        let text = String::from_utf8(frame.to_vec()).unwrap();
        self.0.lock().unwrap().push((channel.into(), offset, text));
    }
}

struct Host {
    engine: MemoryEngine,
    frames: Arc<Frames>,
    commands: RefCell<Vec<SessionCommand>>,
    full: bool,
}

impl ApiHost for Host {
    fn engine(&self) -> &dyn Engine {
        &self.engine
    }
    fn to_sessions(&self, cmd: SessionCommand) -> bool {
        self.commands.borrow_mut().push(cmd);
        !self.full
    }
}

const CONFIG: &str = r#"
[[channel.namespaces]]
name = "news"
history_size = 10
history_ttl = "60s"
presence = true
[[channel.namespaces]]
name = "plain"
"#;

fn setup() -> (Api, Host) {
    let dir = std::env::temp_dir().join(format!("ringcast-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("a{n}.toml"));
    std::fs::write(&path, CONFIG).unwrap();
    let flags = AppFlags {
        config: Some(path),
        token_hmac_secret: Some("s".into()),
        ..AppFlags::default()
    };
    let cfg = Arc::new(AppConfig::build(&flags).unwrap());
    let frames = Arc::new(Frames::default());
    let engine = MemoryEngine::new(
        frames.clone(),
        Limits {
            max_channels: 100,
            max_history_bytes: 1 << 20,
            max_presence: 100,
        },
    );
    let node = Node {
        uid: "node-1".into(),
        name: "test".into(),
        version: "0.1.0",
        started: 1_000,
    };
    (
        Api::new(cfg, node),
        Host {
            engine,
            frames,
            commands: RefCell::new(Vec::new()),
            full: false,
        },
    )
}

fn call(api: &mut Api, host: &Host, method: &str, body: &str) -> (u16, Value) {
    call_with(api, host, method, body, None)
}

fn call_with(
    api: &mut Api,
    host: &Host,
    method: &str,
    body: &str,
    survey: Option<&Survey>,
) -> (u16, Value) {
    let o = api.call(
        Method::parse(method),
        method,
        body.as_bytes(),
        host,
        survey,
        (Instant::now(), 1_100),
    );
    (o.status, serde_json::from_slice(&o.body).unwrap())
}

#[test]
fn publish_reaches_the_outlet_with_offsets_and_no_publisher_info() {
    let (mut api, host) = setup();
    let (s, r) = call(
        &mut api,
        &host,
        "publish",
        r#"{"channel":"news:a","data":{"x":1}}"#,
    );
    assert_eq!(s, 200);
    assert_eq!(r["result"]["offset"], 1);
    let epoch = r["result"]["epoch"].as_str().unwrap().to_owned();
    let (_, r) = call(
        &mut api,
        &host,
        "publish",
        r#"{"channel":"news:a","data":{"x":2}}"#,
    );
    assert_eq!(r["result"]["offset"], 2);
    assert_eq!(r["result"]["epoch"], epoch.as_str());
    let frames = host.frames.0.lock().unwrap();
    assert_eq!(frames.len(), 2);
    assert_eq!(
        frames[0].2,
        r#"{"push":{"channel":"news:a","pub":{"data":{"x":1},"offset":1}}}"#
    );
    // Without history: no offset, no epoch.
    drop(frames);
    let (_, r) = call(
        &mut api,
        &host,
        "publish",
        r#"{"channel":"plain:b","data":"hi"}"#,
    );
    assert_eq!(r, json!({"result": {}}));
}

#[test]
fn publish_errors_name_the_problem() {
    let (mut api, host) = setup();
    for (body, code, words) in [
        (r#"{"data":{}}"#, 107, "empty channel name"),
        (r#"{"channel":"news:a"}"#, 107, "data required"),
        (r#"{"channel":"news:a","b64data":"aGk="}"#, 107, "b64data"),
        (r#"{"channel":"nope:a","data":1}"#, 102, "nope"),
        (
            r#"{"channel":"news:a","data":1,"tags":{"k":"v"}}"#,
            107,
            "tags",
        ),
        (r#"{"channel":5,"data":1}"#, 107, "invalid type"),
    ] {
        let (s, r) = call(&mut api, &host, "publish", body);
        assert_eq!(s, 200, "{body}");
        assert_eq!(r["error"]["code"], code, "{body}: {r}");
        let msg = r["error"]["message"].as_str().unwrap();
        assert!(msg.contains(words), "{body}: {msg}");
    }
    let long = format!(r#"{{"channel":"{}","data":1}}"#, "x".repeat(300));
    let (_, r) = call(&mut api, &host, "publish", &long);
    assert_eq!(r["error"]["code"], 107);
    assert!(
        host.frames.0.lock().unwrap().is_empty(),
        "nothing published"
    );
}

#[test]
fn not_json_is_400_and_unknown_methods_404() {
    let (mut api, host) = setup();
    let (s, r) = call(&mut api, &host, "publish", "{not json");
    assert_eq!(s, 400);
    assert_eq!(r["error"]["code"], 107);
    let (s, r) = call(&mut api, &host, "frobnicate", "{}");
    assert_eq!(s, 404);
    assert_eq!(r["error"]["code"], 104);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("frobnicate")
    );
}

#[test]
fn idempotency_keys_publish_once() {
    let (mut api, host) = setup();
    let body = r#"{"channel":"news:a","data":1,"idempotency_key":"k1"}"#;
    let (_, a) = call(&mut api, &host, "publish", body);
    let (_, b) = call(&mut api, &host, "publish", body);
    assert_eq!(a, b, "the same result");
    assert_eq!(host.frames.0.lock().unwrap().len(), 1, "published once");
    let other = r#"{"channel":"news:b","data":1,"idempotency_key":"k1"}"#;
    call(&mut api, &host, "publish", other);
    assert_eq!(
        host.frames.0.lock().unwrap().len(),
        2,
        "keys are per channel"
    );
}

#[test]
fn broadcast_answers_per_channel() {
    let (mut api, host) = setup();
    let (_, r) = call(
        &mut api,
        &host,
        "broadcast",
        r#"{"channels":["news:a","nope:x","plain:c"],"data":{"m":1}}"#,
    );
    let responses = r["result"]["responses"].as_array().unwrap();
    assert_eq!(responses.len(), 3);
    assert_eq!(responses[0]["result"]["offset"], 1);
    assert_eq!(responses[1]["error"]["code"], 102);
    assert_eq!(responses[2]["result"], json!({}));
    let (_, r) = call(&mut api, &host, "broadcast", r#"{"channels":[],"data":1}"#);
    assert_eq!(r["error"]["code"], 107);
}

#[test]
fn session_commands_go_to_every_worker() {
    let (mut api, mut host) = setup();
    let (_, r) = call(&mut api, &host, "disconnect", r#"{"user":"alice"}"#);
    assert_eq!(r, json!({"result": {}}));
    call(
        &mut api,
        &host,
        "disconnect",
        r#"{"user":"bob","whitelist":["c1"],"disconnect":{"code":4001,"reason":"bye"}}"#,
    );
    call(
        &mut api,
        &host,
        "unsubscribe",
        r#"{"user":"a","channel":"news:x","client":"c9"}"#,
    );
    call(
        &mut api,
        &host,
        "subscribe",
        r#"{"user":"a","channel":"news:x"}"#,
    );
    call(
        &mut api,
        &host,
        "refresh",
        r#"{"user":"a","expire_at":2000}"#,
    );
    let cmds = host.commands.borrow().clone();
    assert_eq!(cmds.len(), 5);
    assert_eq!(
        cmds[0],
        SessionCommand::Disconnect(
            Sessions {
                user: "alice".into(),
                client: None,
                except: vec![]
            },
            Disconnect::FORCE_NO_RECONNECT
        )
    );
    match &cmds[1] {
        SessionCommand::Disconnect(to, d) => {
            assert_eq!((d.code, &*d.reason), (4001, "bye"));
            assert!(to.matches("bob", "c2"));
            assert!(!to.matches("bob", "c1"), "whitelisted");
            assert!(!to.matches("alice", "c2"));
        }
        c => panic!("{c:?}"),
    }
    match &cmds[2] {
        SessionCommand::Unsubscribe(to, ch) => {
            assert_eq!(ch, "news:x");
            assert!(to.matches("a", "c9") && !to.matches("a", "c8"));
        }
        c => panic!("{c:?}"),
    }
    assert!(matches!(
        &cmds[4],
        SessionCommand::Refresh {
            expire_at: Some(2000),
            expired: false,
            ..
        }
    ));
    for (method, body) in [
        ("disconnect", r#"{}"#),
        (
            "disconnect",
            r#"{"user":"a","disconnect":{"code":1000,"reason":""}}"#,
        ),
        ("subscribe", r#"{"user":"a","channel":"nope:x"}"#),
        ("unsubscribe", r#"{"user":"a"}"#),
        ("refresh", r#"{}"#),
    ] {
        let (_, r) = call(&mut api, &host, method, body);
        assert!(r["error"]["code"].is_number(), "{method} {body}: {r}");
    }
    assert_eq!(
        host.commands.borrow().len(),
        5,
        "refused commands are not sent"
    );
    host.full = true;
    let (_, r) = call(&mut api, &host, "disconnect", r#"{"user":"a"}"#);
    assert_eq!(
        r["error"]["code"], 100,
        "a full queue is an error, not a silent drop"
    );
}

#[test]
fn history_presence_and_their_errors() {
    let (mut api, host) = setup();
    for i in 1..=5 {
        call(
            &mut api,
            &host,
            "publish",
            &format!(r#"{{"channel":"news:h","data":{i}}}"#),
        );
    }
    let (_, r) = call(
        &mut api,
        &host,
        "history",
        r#"{"channel":"news:h","limit":-1}"#,
    );
    let pubs = r["result"]["publications"].as_array().unwrap();
    assert_eq!(pubs.len(), 5);
    assert_eq!(pubs[4], json!({"data": 5, "offset": 5}));
    let epoch = r["result"]["epoch"].as_str().unwrap().to_owned();
    let (_, r) = call(&mut api, &host, "history", r#"{"channel":"news:h"}"#);
    assert_eq!(
        r["result"]["publications"],
        json!([]),
        "limit 0: position only"
    );
    assert_eq!(r["result"]["offset"], 5);
    let body =
        format!(r#"{{"channel":"news:h","limit":10,"since":{{"offset":3,"epoch":"{epoch}"}}}}"#);
    let (_, r) = call(&mut api, &host, "history", &body);
    let offsets: Vec<u64> = r["result"]["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, vec![4, 5]);
    let (_, r) = call(
        &mut api,
        &host,
        "history",
        r#"{"channel":"news:h","limit":10,"since":{"offset":3,"epoch":"other"}}"#,
    );
    assert_eq!(r["error"]["code"], 112);
    let (_, r) = call(&mut api, &host, "history", r#"{"channel":"plain:h"}"#);
    assert_eq!(r["error"]["code"], 108);
    call(&mut api, &host, "history_remove", r#"{"channel":"news:h"}"#);
    let (_, r) = call(
        &mut api,
        &host,
        "history",
        r#"{"channel":"news:h","limit":-1}"#,
    );
    assert_eq!(r["result"]["publications"], json!([]));

    host.engine.add_presence(
        "news:p",
        crate::engine::PresenceEntry {
            client: "c1".into(),
            user: "alice".into(),
            conn_info: Some(r#"{"name":"Alice"}"#.into()),
        },
    );
    let (_, r) = call(&mut api, &host, "presence", r#"{"channel":"news:p"}"#);
    assert_eq!(
        r["result"]["presence"]["c1"],
        json!({"user":"alice","client":"c1","conn_info":{"name":"Alice"}})
    );
    let (_, r) = call(&mut api, &host, "presence_stats", r#"{"channel":"news:p"}"#);
    assert_eq!(r["result"], json!({"num_clients": 1, "num_users": 1}));
    let (_, r) = call(&mut api, &host, "presence", r#"{"channel":"plain:p"}"#);
    assert_eq!(r["error"]["code"], 108);
}

#[test]
fn channels_and_info_from_the_survey() {
    let (mut api, host) = setup();
    let mut survey = Survey::default();
    survey.merge(Survey {
        channels: [("news:a".to_owned(), 2), ("chat:b".to_owned(), 1)].into(),
        clients: 3,
        subs: 3,
        users: 2,
        ..Survey::default()
    });
    survey.merge(Survey {
        channels: [("news:a".to_owned(), 1)].into(),
        clients: 1,
        subs: 1,
        users: 0,
        ..Survey::default()
    });
    survey.users = 2; // server-wide, set by whoever assembles the survey
    // Another node's channels count in `channels` (not in this node's `info`).
    survey.elsewhere = [("news:a".to_owned(), 5), ("news:c".to_owned(), 1)].into();
    assert_eq!(survey.clients, 4, "summed over workers");
    let (_, r) = call_with(
        &mut api,
        &host,
        "channels",
        r#"{"pattern":"news:*"}"#,
        Some(&survey),
    );
    assert_eq!(
        r["result"]["channels"],
        json!({"news:a": {"num_clients": 8}, "news:c": {"num_clients": 1}})
    );
    let (_, r) = call_with(&mut api, &host, "info", "{}", Some(&survey));
    let node = &r["result"]["nodes"][0];
    assert_eq!(node["num_clients"], 4);
    assert_eq!(node["num_users"], 2);
    assert_eq!(node["num_channels"], 2);
    assert_eq!(node["uptime"], 100);
    assert_eq!(node["uid"], "node-1");
    assert!(node.get("started").is_none(), "uptime instead: {node}");
}

#[test]
fn batches_answer_each_command() {
    let (mut api, host) = setup();
    let body = r#"{"commands":[
        {"publish":{"channel":"news:a","data":1}},
        {"publish":{"channel":"nope:a","data":1}},
        {"nothing":{}},
        {"presence_stats":{"channel":"news:a"}}
    ]}"#;
    let (s, r) = call(&mut api, &host, "batch", body);
    assert_eq!(s, 200);
    let replies = r["result"]["replies"].as_array().unwrap();
    assert_eq!(replies[0]["publish"]["offset"], 1);
    assert_eq!(replies[1]["error"]["code"], 102);
    assert_eq!(replies[2]["error"]["code"], 104);
    assert_eq!(replies[3]["presence_stats"]["num_clients"], 0);
    assert!(Api::batch_has(
        br#"{"commands":[{"info":{}}]}"#,
        Method::needs_survey
    ));
    assert!(!Api::batch_has(body.as_bytes(), Method::needs_survey));
    assert!(!Api::batch_has(br#"{"commands":[{"info":{}}]}"#, |m| m == Method::Channels));
}

#[test]
fn legacy_endpoint() {
    let (mut api, host) = setup();
    let o = api.call_legacy(
        br#"{"method":"publish","params":{"channel":"news:a","data":1}}"#,
        &host,
        None,
        (Instant::now() + Duration::ZERO, 0),
    );
    let r: Value = serde_json::from_slice(&o.body).unwrap();
    assert_eq!(r["result"]["offset"], 1);
}

#[test]
fn globs() {
    assert!(glob("*", "anything"));
    assert!(glob("news:*", "news:a"));
    assert!(glob("*:a", "news:a"));
    assert!(glob("n*s:*a", "news:xa"));
    assert!(!glob("news:*", "chat:a"));
    assert!(!glob("a*b*c", "abx"));
    assert!(glob("exact", "exact") && !glob("exact", "exactly"));
}
