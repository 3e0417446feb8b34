//! The client session: any sequence of frames and clock steps never panics; every output frame
//! is newline-delimited JSON; a decided disconnect has a reason that fits a Close frame and
//! nothing is produced after it; the host's subscriber list always equals the session's; every
//! push the engine encodes is JSON.
#![no_main]

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use ringcast::client_protocol::codes::{ClientError, MAX_REASON_LEN};
use ringcast::client_protocol::reply::ClientInfo;
use ringcast::config::AppConfig;
use ringcast::engine::memory::{Limits, MemoryEngine};
use ringcast::engine::{
    Broker, HistoryOptions, HistoryQuery, Outlet, PresenceEntry, PresenceManager, Stored,
    StreamPosition,
};
use ringcast::session::{ClientSession, Host, Now, SessionEnv};
use serde_json::value::RawValue;

struct Null;
impl Outlet for Null {
    fn frame(&self, push: &[u8]) -> bytes::Bytes {
        serde_json::from_slice::<serde_json::Value>(push).expect("every push is JSON");
        bytes::Bytes::copy_from_slice(push)
    }
    fn deliver(&self, _: &str, _: u64, _: bytes::Bytes) {}
}

struct H {
    subs: BTreeSet<String>,
    users: i64,
    engine: MemoryEngine,
}

impl Default for H {
    fn default() -> Self {
        Self {
            subs: BTreeSet::new(),
            users: 0,
            engine: MemoryEngine::new(
                Arc::new(Null),
                Limits {
                    max_channels: 64,
                    max_history_bytes: 1 << 16,
                    max_presence: 64,
                },
            ),
        }
    }
}

impl Host for H {
    fn join(&mut self, c: &str) -> Result<(), ClientError> {
        assert!(self.subs.insert(c.to_owned()), "joined twice: {c}");
        Ok(())
    }
    fn set_position(&mut self, c: &str, _: u64) {
        assert!(self.subs.contains(c), "positioned without joining: {c}");
    }
    fn leave(&mut self, c: &str) {
        assert!(self.subs.remove(c), "left {c} without joining");
    }
    fn publish(
        &mut self,
        c: &str,
        d: &RawValue,
        i: Option<&ClientInfo<'_>>,
        h: HistoryOptions,
        now: Instant,
    ) -> Result<Option<StreamPosition>, ClientError> {
        self.engine
            .publish(c, d, i, h, now)
            .map_err(|e| ClientError::INTERNAL.with_detail(e))
    }
    fn history(
        &mut self,
        c: &str,
        q: HistoryQuery,
        h: HistoryOptions,
        now: Instant,
    ) -> Result<(Vec<Stored>, StreamPosition), ClientError> {
        self.engine
            .history(c, q, h, now)
            .map_err(|e| ClientError::NOT_AVAILABLE.with_detail(e))
    }
    fn presence_event(&mut self, c: &str, join: bool, i: &ClientInfo<'_>) {
        self.engine.publish_presence_event(c, join, i)
    }
    fn presence_add(&mut self, c: &str, e: PresenceEntry) -> bool {
        self.engine.add_presence(c, e)
    }
    fn presence_remove(&mut self, c: &str, client: &str) {
        self.engine.remove_presence(c, client)
    }
    fn presence(&mut self, c: &str) -> Vec<PresenceEntry> {
        self.engine.presence(c)
    }
    fn presence_stats(&mut self, c: &str) -> (usize, usize) {
        self.engine.presence_stats(c)
    }
    fn user_connected(&mut self, _: &str) -> bool {
        self.users += 1;
        true
    }
    fn user_disconnected(&mut self, _: &str) {
        self.users -= 1;
    }
    fn to_sessions(&mut self, _: ringcast::api::SessionCommand) -> bool {
        true
    }
}

fn env() -> Arc<SessionEnv> {
    static ENV: OnceLock<Arc<SessionEnv>> = OnceLock::new();
    ENV.get_or_init(|| {
        // Channels without a namespace open to all; `h:` with history, recovery, presence and
        // join/leave, so the fuzzer reaches the engine paths too; `c:` the same as a chat room
        // where guests may do everything, so it reaches chat's publish and rpc paths.
        let text = "[client]\nallow_anonymous = true\ncommand_rate_limit = 0\n\
            [channel.without_namespace]\nallow_subscribe_for_client = true\n\
            allow_subscribe_for_anonymous = true\nallow_publish_for_client = true\n\
            allow_publish_for_anonymous = true\n\
            [[channel.namespaces]]\nname = \"h\"\nallow_subscribe_for_client = true\n\
            allow_subscribe_for_anonymous = true\nallow_publish_for_client = true\n\
            allow_publish_for_anonymous = true\nallow_history_for_client = true\n\
            allow_history_for_anonymous = true\nallow_presence_for_client = true\n\
            allow_presence_for_anonymous = true\nhistory_size = 5\nhistory_ttl = \"10s\"\n\
            force_recovery = true\npresence = true\njoin_leave = true\n\
            [[channel.namespaces]]\nname = \"c\"\nallow_subscribe_for_client = true\n\
            allow_subscribe_for_anonymous = true\nallow_publish_for_client = true\n\
            allow_publish_for_anonymous = true\nallow_history_for_client = true\n\
            allow_history_for_anonymous = true\nallow_presence_for_client = true\n\
            allow_presence_for_anonymous = true\nhistory_size = 5\nhistory_ttl = \"10s\"\n\
            presence = true\njoin_leave = true\n\
            [chat]\nnamespaces = [\"c\"]\nmax_text_len = 50\n\
            [chat.permissions.c]\nguest = [\"publish\", \"react\", \"mention\", \"warn\", \"mute\", \
            \"kick\", \"ban\", \"unban\"]\n";
        let file = ringcast::config::FileConfig::parse(text, false).expect("fuzz config");
        let flags = ringcast::config::AppFlags { raw_rooms: "on".into(), ..Default::default() };
        let cfg = AppConfig::from_parts(file, true, &flags).expect("fuzz config");
        Arc::new(SessionEnv::new(Arc::new(cfg)))
    })
    .clone()
}

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let mut now = Now {
        at: start,
        unix: 1_800_000_000,
        unix_ms: 1_800_000_000_000,
    };
    let mut host = H::default();
    let mut s = ClientSession::new(env(), "fuzz".into(), None, now);
    // Frames separated by 0xff; a 0xfe byte steps the clock by 7 s and fires timers.
    for piece in data.split(|&b| b == 0xff) {
        let closed = s.disconnect().is_some();
        if piece.first() == Some(&0xfe) {
            now = Now {
                at: now.at + Duration::from_secs(7),
                unix: now.unix + 7,
                unix_ms: now.unix_ms + 7_000,
            };
            s.handle_timeout(now, &mut host);
        } else {
            s.handle_frame(piece, now, &mut host);
        }
        let out = s.take_output();
        if closed {
            assert!(out.is_none(), "output after the disconnect");
        }
        if let Some(out) = out {
            for line in out.split(|&b| b == b'\n') {
                serde_json::from_slice::<serde_json::Value>(line)
                    .expect("every output line is JSON");
            }
        }
        if let Some(d) = s.disconnect() {
            assert!(d.reason.len() <= MAX_REASON_LEN);
        }
        let mine: BTreeSet<String> = s.subscriptions().map(str::to_owned).collect();
        assert_eq!(mine, host.subs);
    }
    s.on_closed(&mut host);
    assert!(host.subs.is_empty());
    assert_eq!(host.users, 0);
});
