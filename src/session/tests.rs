//! The session without sockets: a fake host, time moved by hand.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;
use serde_json::value::RawValue;

use std::collections::HashMap;

use super::*;
use crate::config::{AppConfig, AppFlags};

/// Records what the engine hands to the workers.
#[derive(Default)]
struct Recorder {
    delivered: std::sync::Mutex<Vec<(String, u64, String)>>,
}

impl crate::engine::Outlet for Recorder {
    fn frame(&self, push: &[u8]) -> bytes::Bytes {
        bytes::Bytes::copy_from_slice(push)
    }
    fn deliver(&self, channel: &str, offset: u64, frame: bytes::Bytes) {
        self.delivered.lock().unwrap().push((
            channel.into(),
            offset,
            String::from_utf8(frame.to_vec()).unwrap(),
        ));
    }
}

/// A host over a real memory engine, with this worker's subscriber list and positions.
struct FakeHost {
    engine: crate::engine::memory::MemoryEngine,
    outlet: Arc<Recorder>,
    subscribed: Vec<String>,
    positions: HashMap<String, u64>,
    published: Vec<(String, String, Option<String>)>,
    users: HashMap<String, usize>,
    cap: usize,
    /// Publish this into the channel right before the next history read (a race).
    before_history: Option<String>,
    /// Commands handed to every worker's sessions.
    commands: Vec<crate::api::SessionCommand>,
}

impl Default for FakeHost {
    fn default() -> Self {
        let outlet = Arc::new(Recorder::default());
        Self {
            engine: crate::engine::memory::MemoryEngine::new(
                outlet.clone(),
                crate::engine::memory::Limits {
                    max_channels: 1000,
                    max_history_bytes: 1 << 20,
                    max_presence: 1000,
                },
            ),
            outlet,
            subscribed: Vec::new(),
            positions: HashMap::new(),
            published: Vec::new(),
            users: HashMap::new(),
            cap: 0,
            before_history: None,
            commands: Vec::new(),
        }
    }
}

impl Host for FakeHost {
    fn join(&mut self, channel: &str) -> Result<(), ClientError> {
        self.subscribed.push(channel.to_owned());
        Ok(())
    }
    fn set_position(&mut self, channel: &str, offset: u64) {
        self.positions.insert(channel.into(), offset);
    }
    fn leave(&mut self, channel: &str) {
        self.subscribed.retain(|c| c != channel);
        self.positions.remove(channel);
    }
    fn publish(
        &mut self,
        channel: &str,
        data: &RawValue,
        info: Option<&ClientInfo<'_>>,
        history: HistoryOptions,
        now: Instant,
    ) -> Result<Option<StreamPosition>, ClientError> {
        self.published.push((
            channel.into(),
            data.get().into(),
            info.map(|i| i.user.to_owned()),
        ));
        use crate::engine::Broker;
        self.engine
            .publish(channel, data, info, history, now)
            .map_err(|e| ClientError::INTERNAL.with_detail(e))
    }
    fn history(
        &mut self,
        channel: &str,
        query: HistoryQuery,
        history: HistoryOptions,
        now: Instant,
    ) -> Result<(Vec<Stored>, StreamPosition), ClientError> {
        use crate::engine::Broker;
        if let Some(d) = self.before_history.take() {
            let d = RawValue::from_string(d).unwrap();
            self.engine
                .publish(channel, &d, None, history, now)
                .unwrap();
        }
        self.engine
            .history(channel, query, history, now)
            .map_err(|e| ClientError::NOT_AVAILABLE.with_detail(e))
    }
    fn presence_event(&mut self, channel: &str, join: bool, info: &ClientInfo<'_>) {
        use crate::engine::Broker;
        self.engine.publish_presence_event(channel, join, info)
    }
    fn presence_add(&mut self, channel: &str, entry: PresenceEntry) -> bool {
        use crate::engine::PresenceManager;
        self.engine.add_presence(channel, entry)
    }
    fn presence_remove(&mut self, channel: &str, client: &str) {
        use crate::engine::PresenceManager;
        self.engine.remove_presence(channel, client)
    }
    fn presence(&mut self, channel: &str) -> Vec<PresenceEntry> {
        use crate::engine::PresenceManager;
        self.engine.presence(channel)
    }
    fn presence_stats(&mut self, channel: &str) -> (usize, usize) {
        use crate::engine::PresenceManager;
        self.engine.presence_stats(channel)
    }
    fn user_connected(&mut self, user: &str) -> bool {
        let n = self.users.entry(user.into()).or_default();
        if self.cap > 0 && *n >= self.cap {
            return false;
        }
        *n += 1;
        true
    }
    fn to_sessions(&mut self, cmd: crate::api::SessionCommand) -> bool {
        self.commands.push(cmd);
        true
    }
    fn user_disconnected(&mut self, user: &str) {
        *self.users.get_mut(user).unwrap() -= 1;
    }
}

const SECRET: &str = "test-secret";
const CONFIG: &str = r#"
[client]
ping_interval = "25s"
pong_timeout = "8s"
command_rate_limit = 0
[channel.without_namespace]
allow_subscribe_for_client = true
[[channel.namespaces]]
name = "chat"
allow_subscribe_for_client = true
allow_publish_for_subscriber = true
[[channel.namespaces]]
name = "ro"
allow_subscribe_for_client = true
[[channel.namespaces]]
name = "personal"
allow_user_limited_channels = true
[[channel.namespaces]]
name = "feed"
allow_subscribe_for_client = true
allow_publish_for_subscriber = true
allow_history_for_subscriber = true
allow_presence_for_subscriber = true
history_size = 100
history_ttl = "300s"
force_recovery = true
presence = true
join_leave = true
"#;

fn env_with(extra: &str) -> Arc<SessionEnv> {
    let dir = std::env::temp_dir().join(format!("ringcast-session-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // One file per call: tests run in parallel and must not read each other's half-written file.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("c{n}.toml"));
    std::fs::write(&path, format!("{CONFIG}{extra}")).unwrap();
    let flags = AppFlags {
        config: Some(path),
        token_hmac_secret: Some(SECRET.into()),
        raw_rooms: "on".into(),
        ..AppFlags::default()
    };
    Arc::new(SessionEnv::new(Arc::new(AppConfig::build(&flags).unwrap())))
}

fn token(claims: serde_json::Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn t0() -> Now {
    Now {
        at: Instant::now(),
        unix: 1_800_000_000,
        unix_ms: 1_800_000_000_000,
    }
}

fn later(now: Now, secs: u64) -> Now {
    Now {
        at: now.at + Duration::from_secs(secs),
        unix: now.unix + secs,
        unix_ms: now.unix_ms + secs * 1000,
    }
}

fn out(s: &mut ClientSession) -> String {
    String::from_utf8(s.take_output().unwrap_or_default()).unwrap()
}

fn connected(env: &Arc<SessionEnv>, host: &mut FakeHost, user: &str, now: Now) -> ClientSession {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
    let id = format!("c{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let mut s = ClientSession::new(env.clone(), id, None, now);
    let t = token(json!({"sub": user, "exp": now.unix + 3600}));
    s.handle_frame(
        format!(r#"{{"id":1,"connect":{{"token":"{t}"}}}}"#).as_bytes(),
        now,
        host,
    );
    let reply = out(&mut s);
    assert!(reply.contains(r#""client":"c"#), "{reply}");
    assert!(s.is_connected());
    s
}

#[test]
fn connect_reply_tells_expiry_and_ping() {
    let env = env_with("");
    let mut host = FakeHost::default();
    let now = t0();
    let mut s = ClientSession::new(env, "c1".into(), None, now);
    let t = token(json!({"sub":"alice","exp": now.unix + 60}));
    s.handle_frame(
        format!(r#"{{"id":1,"connect":{{"token":"{t}"}}}}"#).as_bytes(),
        now,
        &mut host,
    );
    let r = out(&mut s);
    assert_eq!(
        r,
        format!(
            r#"{{"id":1,"connect":{{"client":"c1","version":"{}","expires":true,"ttl":60,"ping":25,"pong":true}}}}"#,
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(s.user(), "alice");
    assert_eq!(host.users["alice"], 1);
}

#[test]
fn expired_token_is_109_and_the_session_waits_for_another_connect() {
    let env = env_with("");
    let mut host = FakeHost::default();
    let now = t0();
    let mut s = ClientSession::new(env, "c1".into(), None, now);
    let t = token(json!({"sub":"alice","exp": now.unix - 1}));
    s.handle_frame(
        format!(r#"{{"id":1,"connect":{{"token":"{t}"}}}}"#).as_bytes(),
        now,
        &mut host,
    );
    assert_eq!(
        out(&mut s),
        r#"{"id":1,"error":{"code":109,"message":"token expired"}}"#
    );
    assert!(s.disconnect().is_none());
    let t = token(json!({"sub":"alice"}));
    s.handle_frame(
        format!(r#"{{"id":2,"connect":{{"token":"{t}"}}}}"#).as_bytes(),
        now,
        &mut host,
    );
    assert!(s.is_connected());
}

#[test]
fn invalid_token_closes_3500_and_no_token_3501() {
    let env = env_with("");
    let mut host = FakeHost::default();
    let mut s = ClientSession::new(env.clone(), "c1".into(), None, t0());
    s.handle_frame(
        br#"{"id":1,"connect":{"token":"garbage"}}"#,
        t0(),
        &mut host,
    );
    assert_eq!(s.disconnect().unwrap().code, 3500);
    let mut s = ClientSession::new(env, "c2".into(), None, t0());
    s.handle_frame(br#"{"id":1,"connect":{}}"#, t0(), &mut host);
    assert_eq!(s.disconnect().unwrap().code, 3501);
}

#[test]
fn commands_before_connect_and_stale_connections_are_closed() {
    let env = env_with("");
    let mut host = FakeHost::default();
    let now = t0();
    let mut s = ClientSession::new(env.clone(), "c1".into(), None, now);
    s.handle_frame(br#"{"id":1,"subscribe":{"channel":"a"}}"#, now, &mut host);
    assert_eq!(s.disconnect().unwrap().code, 3501);
    let mut s = ClientSession::new(env, "c2".into(), None, now);
    let at = s.poll_timeout().unwrap();
    assert_eq!(at, now.at + Duration::from_secs(10));
    s.handle_timeout(later(now, 10), &mut host);
    assert_eq!(s.disconnect().unwrap().code, 3502);
}

#[test]
fn subscribe_publish_and_their_errors() {
    let env = env_with("");
    let mut host = FakeHost::default();
    let now = t0();
    let mut s = connected(&env, &mut host, "alice", now);
    s.handle_frame(
        b"{\"id\":2,\"subscribe\":{\"channel\":\"chat:a\"}}\n{\"id\":3,\"publish\":{\"channel\":\"chat:a\",\"data\":{\"t\":1}}}\n{\"id\":4,\"publish\":{\"channel\":\"ro:x\",\"data\":{}}}\n{\"id\":5,\"subscribe\":{\"channel\":\"nope:x\"}}\n{\"id\":6,\"subscribe\":{\"channel\":\"chat:a\"}}",
        now,
        &mut host,
    );
    let r = out(&mut s);
    let lines: Vec<&str> = r.lines().collect();
    assert_eq!(lines[0], r#"{"id":2,"subscribe":{}}"#);
    assert_eq!(lines[1], r#"{"id":3,"publish":{}}"#);
    assert!(
        lines[2].starts_with(r#"{"id":4,"error":{"code":103"#),
        "{r}"
    );
    assert!(
        lines[3].starts_with(r#"{"id":5,"error":{"code":102"#),
        "{r}"
    );
    assert!(
        lines[4].starts_with(r#"{"id":6,"error":{"code":105"#),
        "{r}"
    );
    assert_eq!(
        host.published,
        vec![("chat:a".into(), r#"{"t":1}"#.into(), Some("alice".into()))]
    );
    s.on_closed(&mut host);
    assert!(host.subscribed.is_empty());
    assert_eq!(host.users["alice"], 0);
}

#[test]
fn channel_limit_is_106() {
    let env = env_with("");
    let mut host = FakeHost::default();
    let now = t0();
    let mut s = connected(&env, &mut host, "alice", now);
    let frame: Vec<String> = (1..=129)
        .map(|i| format!(r#"{{"id":{},"subscribe":{{"channel":"c{i}"}}}}"#, i + 1))
        .collect();
    s.handle_frame(frame.join("\n").as_bytes(), now, &mut host);
    let r = out(&mut s);
    assert_eq!(
        r.lines()
            .filter(|l| l.contains(r#""subscribe":{}"#))
            .count(),
        128
    );
    assert!(r.lines().last().unwrap().contains(r#""code":106"#), "{r}");
}

#[test]
fn malformed_commands_get_their_codes() {
    let env = env_with("");
    let mut host = FakeHost::default();
    let now = t0();
    let mut s = connected(&env, &mut host, "alice", now);
    s.handle_frame(br#"{"id":7,"frobnicate":{}}"#, now, &mut host);
    assert!(out(&mut s).contains(r#""code":104"#));
    s.handle_frame(br#"{"id":8}"#, now, &mut host);
    assert!(out(&mut s).contains(r#""code":107"#));
    s.handle_frame(br#"{"id":9,"rpc":{"method":"nope"}}"#, now, &mut host);
    assert!(out(&mut s).contains(r#""code":104"#));
    s.handle_frame(
        br#"{"id":10,"history":{"channel":"chat:a"}}"#,
        now,
        &mut host,
    );
    assert!(out(&mut s).contains(r#""code":108"#));
    s.handle_frame(br#"{"id":0,"subscribe":{"channel":"x"}}"#, now, &mut host);
    assert_eq!(s.disconnect().unwrap().code, 3501);
    let mut s = connected(&env, &mut host, "bob", now);
    s.handle_frame(b"not json", now, &mut host);
    assert_eq!(s.disconnect().unwrap().code, 3501);
    let mut s = connected(&env, &mut host, "carol", now);
    s.handle_binary();
    assert_eq!(s.disconnect().unwrap().code, 3506);
}

#[test]
fn ping_pong_and_a_missing_pong() {
    let env = env_with("");
    let mut host = FakeHost::default();
    let now = t0();
    let mut s = connected(&env, &mut host, "alice", now);
    assert_eq!(s.poll_timeout(), Some(now.at + Duration::from_secs(25)));
    let t1 = later(now, 25);
    s.handle_timeout(t1, &mut host);
    assert_eq!(out(&mut s), "{}");
    s.handle_frame(b"{}", later(now, 26), &mut host);
    s.handle_timeout(later(now, 34), &mut host);
    assert!(s.disconnect().is_none(), "pong arrived");
    s.handle_timeout(later(now, 50), &mut host);
    assert_eq!(out(&mut s), "{}");
    s.handle_timeout(later(now, 58), &mut host);
    assert_eq!(s.disconnect().unwrap().code, 3012);
}

#[test]
fn refresh_extends_and_missing_refresh_closes_3005() {
    let env = env_with("");
    let mut host = FakeHost::default();
    let now = t0();
    let mut s = ClientSession::new(env, "c1".into(), None, now);
    let t = token(json!({"sub":"alice","exp": now.unix + 10}));
    s.handle_frame(
        format!(r#"{{"id":1,"connect":{{"token":"{t}"}}}}"#).as_bytes(),
        now,
        &mut host,
    );
    out(&mut s);
    let t = token(json!({"sub":"alice","exp": now.unix + 100}));
    let at = later(now, 5);
    s.handle_frame(
        format!(r#"{{"id":2,"refresh":{{"token":"{t}"}}}}"#).as_bytes(),
        at,
        &mut host,
    );
    assert!(out(&mut s).contains(r#""ttl":95"#));
    s.handle_timeout(later(now, 36), &mut host);
    assert!(s.disconnect().is_none(), "refreshed: no 3005 at 10 + 25 s");
    let mut s2 = ClientSession::new(env_with(""), "c2".into(), None, now);
    let t = token(json!({"sub":"bob","exp": now.unix + 10}));
    s2.handle_frame(
        format!(r#"{{"id":1,"connect":{{"token":"{t}"}}}}"#).as_bytes(),
        now,
        &mut host,
    );
    s2.handle_timeout(later(now, 35), &mut host);
    assert_eq!(s2.disconnect().unwrap().code, 3005);
    // Another user's token in refresh: 3500.
    let t = token(json!({"sub":"mallory"}));
    s.handle_frame(
        format!(r#"{{"id":3,"refresh":{{"token":"{t}"}}}}"#).as_bytes(),
        at,
        &mut host,
    );
    assert_eq!(s.disconnect().unwrap().code, 3500);
}

#[test]
fn user_connection_cap_is_3504() {
    let env = env_with("");
    let mut host = FakeHost {
        cap: 1,
        ..FakeHost::default()
    };
    let now = t0();
    let _a = connected(&env, &mut host, "alice", now);
    let mut b = ClientSession::new(env, "c2".into(), None, now);
    let t = token(json!({"sub":"alice"}));
    b.handle_frame(
        format!(r#"{{"id":1,"connect":{{"token":"{t}"}}}}"#).as_bytes(),
        now,
        &mut host,
    );
    assert_eq!(b.disconnect().unwrap().code, 3504);
}

#[test]
fn personal_and_token_channels_are_server_side() {
    let env = env_with(
        "\n[client.subscribe_to_user_personal_channel]\nenabled = true\npersonal_channel_namespace = \"personal\"\n",
    );
    let mut host = FakeHost::default();
    let now = t0();
    let mut s = ClientSession::new(env.clone(), "c1".into(), None, now);
    let t = token(json!({"sub":"alice","channels":["news"]}));
    s.handle_frame(
        format!(r#"{{"id":1,"connect":{{"token":"{t}"}}}}"#).as_bytes(),
        now,
        &mut host,
    );
    let r = out(&mut s);
    assert!(
        r.contains(r#""subs":{"news":{},"personal:#alice":{}}"#),
        "{r}"
    );
    assert_eq!(host.subscribed, vec!["news", "personal:#alice"]);
    // Another user's personal channel: refused.
    s.handle_frame(
        br##"{"id":2,"subscribe":{"channel":"personal:#bob"}}"##,
        now,
        &mut host,
    );
    assert!(out(&mut s).contains(r#""code":103"#));
}

#[test]
fn private_channels_need_a_matching_subscription_token() {
    let env = env_with("");
    let mut host = FakeHost::default();
    let now = t0();
    let mut s = connected(&env, &mut host, "alice", now);
    s.handle_frame(
        br#"{"id":2,"subscribe":{"channel":"$chat:x"}}"#,
        now,
        &mut host,
    );
    assert!(out(&mut s).contains(r#""code":103"#));
    let t = token(json!({"sub":"alice","channel":"$chat:x","exp": now.unix + 30}));
    s.handle_frame(
        format!(r#"{{"id":3,"subscribe":{{"channel":"$chat:x","token":"{t}"}}}}"#).as_bytes(),
        now,
        &mut host,
    );
    assert_eq!(
        out(&mut s),
        r#"{"id":3,"subscribe":{"expires":true,"ttl":30}}"#
    );
    // Not refreshed: unsubscribed with 2501 after exp + 25 s.
    s.handle_timeout(later(now, 55), &mut host);
    let r = out(&mut s);
    assert!(r.contains(r#""unsubscribe":{"code":2501"#), "{r}");
    assert!(s.disconnect().is_none());
    let t = token(json!({"sub":"bob","channel":"$chat:x"}));
    s.handle_frame(
        format!(r#"{{"id":4,"subscribe":{{"channel":"$chat:x","token":"{t}"}}}}"#).as_bytes(),
        later(now, 55),
        &mut host,
    );
    assert_eq!(s.disconnect().unwrap().code, 3500);
}

#[test]
fn command_rate_limit_answers_111_then_closes_3013() {
    let env = env_with("");
    let mut cfg_text = CONFIG.replace("command_rate_limit = 0", "command_rate_limit = 5");
    cfg_text.push('\n');
    let dir = std::env::temp_dir().join(format!("ringcast-session-rl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rl.toml");
    std::fs::write(&path, cfg_text).unwrap();
    let flags = AppFlags {
        config: Some(path),
        token_hmac_secret: Some(SECRET.into()),
        raw_rooms: "on".into(),
        ..AppFlags::default()
    };
    let env2 = Arc::new(SessionEnv::new(Arc::new(AppConfig::build(&flags).unwrap())));
    drop(env);
    let mut host = FakeHost::default();
    let now = t0();
    let mut s = connected(&env2, &mut host, "alice", now);
    let pings: Vec<String> = (2..=30)
        .map(|i| format!(r#"{{"id":{i},"ping":{{}}}}"#))
        .collect();
    s.handle_frame(pings.join("\n").as_bytes(), now, &mut host);
    let r = out(&mut s);
    assert!(r.contains(r#""code":111"#), "{r}");
    assert_eq!(s.disconnect().unwrap().code, 3013);
}

fn subscribe_reply(
    s: &mut ClientSession,
    host: &mut FakeHost,
    now: Now,
    frame: &str,
) -> serde_json::Value {
    s.handle_frame(frame.as_bytes(), now, host);
    serde_json::from_str(out(s).lines().next().unwrap()).unwrap()
}

#[test]
fn history_channels_position_and_recover_without_gap_or_duplicate() {
    let env = env_with("");
    let mut host = FakeHost::default();
    let now = t0();
    let mut publisher = connected(&env, &mut host, "pub", now);
    let r = subscribe_reply(
        &mut publisher,
        &mut host,
        now,
        r#"{"id":2,"subscribe":{"channel":"feed:a"}}"#,
    );
    let epoch = r["subscribe"]["epoch"].as_str().unwrap().to_owned();
    assert_eq!(r["subscribe"]["recoverable"], true);
    assert_eq!(r["subscribe"]["positioned"], true);
    for i in 1..=5 {
        publisher.handle_frame(
            format!(
                r#"{{"id":{},"publish":{{"channel":"feed:a","data":{{"n":{i}}}}}}}"#,
                i + 10
            )
            .as_bytes(),
            now,
            &mut host,
        );
    }
    out(&mut publisher);
    // A client that saw offset 2 comes back; offset 6 is published while it subscribes.
    let mut back = connected(&env, &mut host, "sub", now);
    host.before_history = Some(r#"{"n":6}"#.into());
    let r = subscribe_reply(
        &mut back,
        &mut host,
        now,
        &format!(
            r#"{{"id":2,"subscribe":{{"channel":"feed:a","recover":true,"offset":2,"epoch":"{epoch}"}}}}"#
        ),
    );
    let sub = &r["subscribe"];
    assert_eq!(sub["recovered"], true, "{r}");
    assert_eq!(sub["was_recovering"], true);
    assert_eq!(sub["offset"], 6);
    let offsets: Vec<u64> = sub["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(
        offsets,
        vec![3, 4, 5, 6],
        "the gap, with the racing publication"
    );
    // The racing publication's live copy is dropped by the position (no duplicate).
    assert_eq!(host.positions["feed:a"], 6);
    let live_6 = host
        .outlet
        .delivered
        .lock()
        .unwrap()
        .iter()
        .filter(|(c, o, _)| c == "feed:a" && *o == 6)
        .count();
    assert_eq!(
        live_6, 1,
        "delivered live once, to be skipped for this subscriber at offset ≤ 6"
    );

    // Another epoch: not recovered, nothing sent.
    let mut other = connected(&env, &mut host, "o", now);
    let r = subscribe_reply(
        &mut other,
        &mut host,
        now,
        r#"{"id":2,"subscribe":{"channel":"feed:a","recover":true,"offset":2,"epoch":"xxxxxxxx"}}"#,
    );
    assert_ne!(
        r["subscribe"]["recovered"], true,
        "false is omitted on the wire"
    );
    assert!(r["subscribe"].get("publications").is_none());
    // Up to date: recovered with nothing to send.
    let mut fresh = connected(&env, &mut host, "f", now);
    let r = subscribe_reply(
        &mut fresh,
        &mut host,
        now,
        &format!(
            r#"{{"id":2,"subscribe":{{"channel":"feed:a","recover":true,"offset":6,"epoch":"{epoch}"}}}}"#
        ),
    );
    assert_eq!(r["subscribe"]["recovered"], true);
}

#[test]
fn too_many_missed_is_not_recovered() {
    let env = env_with("");
    let mut host = FakeHost::default();
    let now = t0();
    let mut p = connected(&env, &mut host, "p", now);
    let r = subscribe_reply(
        &mut p,
        &mut host,
        now,
        r#"{"id":2,"subscribe":{"channel":"feed:b"}}"#,
    );
    let epoch = r["subscribe"]["epoch"].as_str().unwrap().to_owned();
    // history_size 100 keeps 100; the client missed all 100 after offset 0 of 400 publications:
    // the first kept one is 301, not 1 → not recovered.
    let frame: Vec<String> = (0..400)
        .map(|i| {
            format!(
                r#"{{"id":{},"publish":{{"channel":"feed:b","data":{i}}}}}"#,
                i + 3
            )
        })
        .collect();
    p.handle_frame(frame[..200].join("\n").as_bytes(), now, &mut host);
    p.handle_frame(frame[200..].join("\n").as_bytes(), now, &mut host);
    out(&mut p);
    let mut s = connected(&env, &mut host, "s", now);
    let r = subscribe_reply(
        &mut s,
        &mut host,
        now,
        &format!(
            r#"{{"id":2,"subscribe":{{"channel":"feed:b","recover":true,"offset":0,"epoch":"{epoch}"}}}}"#
        ),
    );
    assert_ne!(r["subscribe"]["recovered"], true, "{r}");
    assert_eq!(r["subscribe"]["offset"], 400);
}

#[test]
fn history_command_and_its_permissions() {
    let env = env_with("");
    let mut host = FakeHost::default();
    let now = t0();
    let mut s = connected(&env, &mut host, "alice", now);
    s.handle_frame(
        br#"{"id":2,"history":{"channel":"feed:c","limit":10}}"#,
        now,
        &mut host,
    );
    let o = out(&mut s);
    assert!(o.contains(r#""code":103"#), "subscribers only: {o}");
    s.handle_frame(
        br#"{"id":3,"history":{"channel":"chat:c","limit":10}}"#,
        now,
        &mut host,
    );
    assert!(out(&mut s).contains(r#""code":108"#), "no history in chat:");
    s.handle_frame(b"{\"id\":4,\"subscribe\":{\"channel\":\"feed:c\"}}\n{\"id\":5,\"publish\":{\"channel\":\"feed:c\",\"data\":1}}\n{\"id\":6,\"publish\":{\"channel\":\"feed:c\",\"data\":2}}", now, &mut host);
    out(&mut s);
    s.handle_frame(
        br#"{"id":7,"history":{"channel":"feed:c","limit":-1,"reverse":true}}"#,
        now,
        &mut host,
    );
    let r: serde_json::Value = serde_json::from_str(&out(&mut s)).unwrap();
    let data: Vec<u64> = r["history"]["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["data"].as_u64().unwrap())
        .collect();
    assert_eq!(data, vec![2, 1]);
    assert_eq!(r["history"]["offset"], 2);
    s.handle_frame(br#"{"id":8,"history":{"channel":"feed:c","limit":10,"since":{"offset":1,"epoch":"nope"}}}"#, now, &mut host);
    assert!(out(&mut s).contains(r#""code":112"#));
}

#[test]
fn presence_and_join_leave() {
    let env = env_with("");
    let mut host = FakeHost::default();
    let now = t0();
    let mut a1 = connected(&env, &mut host, "alice", now);
    let mut a2 = connected(&env, &mut host, "alice", now);
    let mut b = connected(&env, &mut host, "bob", now);
    for s in [&mut a1, &mut a2, &mut b] {
        s.handle_frame(
            br#"{"id":2,"subscribe":{"channel":"feed:p"}}"#,
            now,
            &mut host,
        );
        out(s);
    }
    b.handle_frame(
        br#"{"id":3,"presence_stats":{"channel":"feed:p"}}"#,
        now,
        &mut host,
    );
    assert_eq!(
        out(&mut b),
        r#"{"id":3,"presence_stats":{"num_clients":3,"num_users":2}}"#
    );
    b.handle_frame(
        br#"{"id":4,"presence":{"channel":"feed:p"}}"#,
        now,
        &mut host,
    );
    let r: serde_json::Value = serde_json::from_str(&out(&mut b)).unwrap();
    assert_eq!(
        r["presence"]["presence"].as_object().unwrap().len(),
        3,
        "{r}"
    );
    let joins = host
        .outlet
        .delivered
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, f)| f.contains(r#""join":"#))
        .count();
    assert_eq!(joins, 3, "{:?}", host.outlet.delivered.lock().unwrap());
    a1.on_closed(&mut host);
    let leaves = host
        .outlet
        .delivered
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, f)| f.contains(r#""leave":"#))
        .count();
    assert_eq!(leaves, 1);
    b.handle_frame(
        br#"{"id":5,"presence_stats":{"channel":"feed:p"}}"#,
        now,
        &mut host,
    );
    assert_eq!(
        out(&mut b),
        r#"{"id":5,"presence_stats":{"num_clients":2,"num_users":2}}"#
    );
    let mut c = connected(&env, &mut host, "carol", now);
    c.handle_frame(
        br#"{"id":2,"presence":{"channel":"feed:p"}}"#,
        now,
        &mut host,
    );
    assert!(out(&mut c).contains(r#""code":103"#), "not a subscriber");
}

#[test]
fn a_gap_unsubscribes_with_2500() {
    let env = env_with("");
    let mut host = FakeHost::default();
    let now = t0();
    let mut s = connected(&env, &mut host, "alice", now);
    s.handle_frame(
        br#"{"id":2,"subscribe":{"channel":"feed:g"}}"#,
        now,
        &mut host,
    );
    out(&mut s);
    s.on_insufficient_state("feed:g", &mut host);
    assert_eq!(
        out(&mut s),
        r#"{"push":{"channel":"feed:g","unsubscribe":{"code":2500,"reason":"insufficient state"}}}"#
    );
    assert!(host.subscribed.is_empty());
    assert!(s.disconnect().is_none());
}

mod chat;
