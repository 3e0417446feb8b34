//! The client session: any sequence of frames and clock steps never panics; every output frame
//! is newline-delimited JSON; a decided disconnect has a reason that fits a Close frame and
//! nothing is produced after it; the host's subscriber list always equals the session's.
#![no_main]

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use ringcast::client_protocol::codes::{ClientError, MAX_REASON_LEN};
use ringcast::client_protocol::reply::ClientInfo;
use ringcast::config::AppConfig;
use ringcast::session::{ClientSession, Host, Now, SessionEnv};
use serde_json::value::RawValue;

#[derive(Default)]
struct H {
    subs: BTreeSet<String>,
    users: i64,
}

impl Host for H {
    fn subscribe(&mut self, c: &str) -> Result<(), ClientError> {
        assert!(self.subs.insert(c.to_owned()), "subscribed twice to {c}");
        Ok(())
    }
    fn unsubscribe(&mut self, c: &str) {
        assert!(self.subs.remove(c), "unsubscribed from {c} without a subscription");
    }
    fn publish(&mut self, _: &str, d: &RawValue, _: Option<&ClientInfo<'_>>) -> Result<(), ClientError> {
        serde_json::from_str::<serde_json::Value>(d.get()).expect("published data is JSON");
        Ok(())
    }
    fn user_connected(&mut self, _: &str) -> bool {
        self.users += 1;
        true
    }
    fn user_disconnected(&mut self, _: &str) {
        self.users -= 1;
    }
}

fn env() -> Arc<SessionEnv> {
    static ENV: OnceLock<Arc<SessionEnv>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(SessionEnv::new(Arc::new(AppConfig::try_it_out()))))
        .clone()
}

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let mut now = Now { at: start, unix: 1_800_000_000 };
    let mut host = H::default();
    let mut s = ClientSession::new(env(), "fuzz".into(), None, now);
    // Frames separated by 0xff; a 0xfe byte steps the clock by 7 s and fires timers.
    for piece in data.split(|&b| b == 0xff) {
        let closed = s.disconnect().is_some();
        if piece.first() == Some(&0xfe) {
            now = Now { at: now.at + Duration::from_secs(7), unix: now.unix + 7 };
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
                serde_json::from_slice::<serde_json::Value>(line).expect("every output line is JSON");
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
