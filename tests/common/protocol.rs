//! A Centrifugo protocol client for tests (tokio-tungstenite): HS256 tokens, commands with ids,
//! replies matched by id, pushes kept in order, the close a server sends.

use std::collections::VecDeque;
use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::{TestServer, Ws, next_msg, send_text};

/// An HS256 token with `claims`.
pub fn hs256(secret: &str, claims: Value) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token for `user`, valid for an hour.
pub fn user_token(secret: &str, user: &str) -> String {
    hs256(secret, json!({"sub": user, "exp": unix_now() + 3600}))
}

/// A protocol client: commands with ids, replies matched by id, pushes kept in order.
pub struct Client {
    pub ws: Ws,
    next_id: u64,
    pub pushes: VecDeque<Value>,
    replies: VecDeque<Value>,
}

/// What a read brought.
enum Read {
    Lines,
    Closed(u16, String),
}

impl Client {
    /// Connected as `user` (a token signed with `secret`).
    pub async fn connect(s: &TestServer, secret: &str, user: &str) -> Self {
        let (c, r) = Self::try_connect(s, secret, user).await;
        let r = r.unwrap_or_else(|close| panic!("closed at connect: {close:?}"));
        assert!(r["connect"]["client"].is_string(), "{r}");
        c
    }

    /// Connects as `user` over an open WebSocket (e.g. a `ws://` one to a `--plaintext`
    /// server in another process).
    pub async fn connect_over(ws: Ws, secret: &str, user: &str) -> Self {
        let mut c = Self {
            ws,
            next_id: 0,
            pushes: VecDeque::new(),
            replies: VecDeque::new(),
        };
        let r = c
            .call(json!({"connect": {"token": user_token(secret, user)}}))
            .await;
        assert!(r["connect"]["client"].is_string(), "{r}");
        c
    }

    /// Sends a connect as `user`; the reply (a `connect` result or an `error`), or the close
    /// code and reason if the server closed instead.
    pub async fn try_connect(
        s: &TestServer,
        secret: &str,
        user: &str,
    ) -> (Self, Result<Value, (u16, String)>) {
        let mut c = Self {
            ws: s.ws("/connection/websocket").await,
            next_id: 0,
            pushes: VecDeque::new(),
            replies: VecDeque::new(),
        };
        let r = c
            .call_or_close(json!({"connect": {"token": user_token(secret, user)}}))
            .await;
        (c, r)
    }

    async fn read_once(&mut self) -> Read {
        match tokio::time::timeout(Duration::from_secs(10), next_msg(&mut self.ws)).await {
            Ok(Message::Text(t)) => {
                for line in t.as_str().split('\n').filter(|l| *l != "{}") {
                    let v: Value = serde_json::from_str(line).expect("JSON");
                    if v.get("push").is_some() {
                        self.pushes.push_back(v["push"].clone());
                    } else {
                        self.replies.push_back(v);
                    }
                }
                Read::Lines
            }
            Ok(Message::Close(f)) => {
                let (code, reason) = f.map_or((1005, String::new()), |f| {
                    (u16::from(f.code), f.reason.as_str().to_owned())
                });
                Read::Closed(code, reason)
            }
            Ok(other) => panic!("expected text, got {other:?}"),
            Err(_) => panic!("nothing within 10 s"),
        }
    }

    async fn read(&mut self) {
        if let Read::Closed(code, reason) = self.read_once().await {
            panic!("closed by the server: {code} {reason:?}");
        }
    }

    /// Reads until the server closes; its close code and reason (pushes before it are kept).
    pub async fn closed(&mut self) -> (u16, String) {
        loop {
            if let Read::Closed(code, reason) = self.read_once().await {
                return (code, reason);
            }
        }
    }

    /// Sends `cmd` and returns its reply.
    pub async fn call(&mut self, cmd: Value) -> Value {
        self.call_or_close(cmd)
            .await
            .unwrap_or_else(|(code, reason)| panic!("closed by the server: {code} {reason:?}"))
    }

    /// Sends `cmd`; its reply, or the close code and reason if the server closed instead.
    pub async fn call_or_close(&mut self, mut cmd: Value) -> Result<Value, (u16, String)> {
        self.next_id += 1;
        let id = self.next_id;
        cmd["id"] = json!(id);
        send_text(&mut self.ws, &cmd.to_string()).await;
        loop {
            if let Some(i) = self.replies.iter().position(|r| r["id"] == json!(id)) {
                return Ok(self.replies.remove(i).unwrap());
            }
            if let Read::Closed(code, reason) = self.read_once().await {
                return Err((code, reason));
            }
        }
    }

    /// The next push matching `pred` (earlier ones that do not match are dropped).
    pub async fn push(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            while let Some(p) = self.pushes.pop_front() {
                if pred(&p) {
                    return p;
                }
            }
            self.read().await;
        }
    }

    /// The `n` of the next `count` publications of `channel`, with their offsets.
    pub async fn publications(&mut self, channel: &str, count: usize) -> Vec<(u64, u64)> {
        let mut got = Vec::new();
        while got.len() < count {
            let p = self
                .push(|p| p["channel"] == channel && p.get("pub").is_some())
                .await;
            got.push((
                p["pub"]["data"]["n"].as_u64().unwrap(),
                p["pub"]["offset"].as_u64().unwrap_or(0),
            ));
        }
        got
    }
}
