//! The memory engine without sockets: a recording outlet, time moved by hand.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::value::RawValue;

use super::*;

#[derive(Default)]
struct Recorder {
    delivered: Mutex<Vec<(String, u64, Bytes)>>,
}

impl Outlet for Recorder {
    fn frame(&self, push: &[u8]) -> Bytes {
        // A stand-in frame header, so the history slice must skip it.
        let mut v = b"HDR".to_vec();
        v.extend_from_slice(push);
        Bytes::from(v)
    }
    fn deliver(&self, channel: &str, offset: u64, frame: Bytes) {
        self.delivered
            .lock()
            .unwrap()
            .push((channel.to_owned(), offset, frame));
    }
}

fn limits() -> Limits {
    Limits {
        max_channels: 1000,
        max_history_bytes: 1 << 30,
        max_presence: 1000,
    }
}

fn opts(size: usize, ttl: u64) -> HistoryOptions {
    HistoryOptions {
        size,
        ttl: Duration::from_secs(ttl),
        meta_ttl: Duration::ZERO,
    }
}

fn data(s: &str) -> Box<RawValue> {
    RawValue::from_string(s.to_owned()).unwrap()
}

#[test]
fn offsets_are_contiguous_and_delivered_in_order_under_concurrent_publishers() {
    let rec = Arc::new(Recorder::default());
    let e = Arc::new(MemoryEngine::new(rec.clone(), limits()));
    let now = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|w| {
            let e = e.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    let d = data(&format!("{{\"w\":{w},\"i\":{i}}}"));
                    e.publish("ch", &d, None, opts(10_000, 60), now).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let got = rec.delivered.lock().unwrap();
    let offsets: Vec<u64> = got.iter().map(|(_, o, _)| *o).collect();
    assert_eq!(
        offsets,
        (1..=2000).collect::<Vec<_>>(),
        "delivered in offset order"
    );
    for (_, o, frame) in got.iter() {
        let v: serde_json::Value = serde_json::from_slice(&frame[3..]).unwrap();
        assert_eq!(
            v["push"]["pub"]["offset"], *o,
            "the frame carries its offset"
        );
    }
    // Each publisher's own messages keep their order too.
    for w in 0..4 {
        let mine: Vec<u64> = got
            .iter()
            .filter_map(|(_, _, f)| {
                let v: serde_json::Value = serde_json::from_slice(&f[3..]).unwrap();
                (v["push"]["pub"]["data"]["w"] == w)
                    .then(|| v["push"]["pub"]["data"]["i"].as_u64().unwrap())
            })
            .collect();
        assert_eq!(mine, (0..500).collect::<Vec<_>>());
    }
}

#[test]
fn history_is_the_frames_publication_and_positions_carry_the_epoch() {
    let rec = Arc::new(Recorder::default());
    let e = MemoryEngine::new(rec.clone(), limits());
    let now = Instant::now();
    let (empty, pos0) = e
        .history(
            "c",
            HistoryQuery {
                limit: 10,
                ..Default::default()
            },
            opts(5, 60),
            now,
        )
        .unwrap();
    assert!(empty.is_empty());
    assert_eq!(pos0.offset, 0);
    assert_eq!(pos0.epoch.len(), 8);
    let p = e
        .publish("c", &data("{\"x\":1}"), None, opts(5, 60), now)
        .unwrap()
        .unwrap();
    assert_eq!(
        p,
        StreamPosition {
            offset: 1,
            epoch: pos0.epoch.clone()
        }
    );
    let (items, pos) = e
        .history(
            "c",
            HistoryQuery {
                since: Some(0),
                limit: 10,
                reverse: false,
            },
            opts(5, 60),
            now,
        )
        .unwrap();
    assert_eq!(pos.offset, 1);
    assert_eq!(&items[0].publication[..], br#"{"data":{"x":1},"offset":1}"#);
    // Without history: no offset, nothing stored, still delivered.
    assert_eq!(
        e.publish("plain", &data("1"), None, opts(0, 0), now)
            .unwrap(),
        None
    );
    assert_eq!(
        e.history("plain", HistoryQuery::default(), opts(0, 0), now)
            .unwrap_err(),
        EngineError::NoHistory
    );
    assert_eq!(rec.delivered.lock().unwrap().last().unwrap().1, 0);
    // Another engine (a restart): another epoch.
    let e2 = MemoryEngine::new(rec.clone(), limits());
    let (_, pos2) = e2
        .history("c", HistoryQuery::default(), opts(5, 60), now)
        .unwrap();
    assert_ne!(pos2.epoch, pos0.epoch);
}

#[test]
fn ttl_expires_history_but_not_the_position() {
    let rec = Arc::new(Recorder::default());
    let e = MemoryEngine::new(rec, limits());
    let t0 = Instant::now();
    for i in 0..3 {
        e.publish(
            "c",
            &data("1"),
            None,
            opts(100, 10),
            t0 + Duration::from_secs(i),
        )
        .unwrap();
    }
    let q = HistoryQuery {
        since: None,
        limit: 100,
        reverse: false,
    };
    let (items, _) = e
        .history("c", q, opts(100, 10), t0 + Duration::from_secs(11))
        .unwrap();
    assert_eq!(
        items.iter().map(|i| i.offset).collect::<Vec<_>>(),
        vec![3],
        "1 and 2 expired"
    );
    let (items, pos) = e
        .history("c", q, opts(100, 10), t0 + Duration::from_secs(60))
        .unwrap();
    assert!(items.is_empty());
    assert_eq!(pos.offset, 3, "the top offset outlives the history");
    assert_eq!(e.history_bytes(), 0);
}

#[test]
fn history_memory_bound_sheds_the_least_recently_published_channel() {
    let rec = Arc::new(Recorder::default());
    let e = MemoryEngine::new(
        rec,
        Limits {
            max_history_bytes: 3000,
            ..limits()
        },
    );
    let t0 = Instant::now();
    let payload = data(&format!("\"{}\"", "x".repeat(500)));
    for (i, ch) in ["old", "mid", "new"].iter().enumerate() {
        for k in 0..2 {
            e.publish(
                ch,
                &payload,
                None,
                opts(100, 600),
                t0 + Duration::from_secs((i * 2 + k) as u64),
            )
            .unwrap();
        }
    }
    assert!(e.history_bytes() <= 3000);
    assert_eq!(e.stats.history_shed.load(Ordering::Relaxed), 1);
    let q = HistoryQuery {
        since: None,
        limit: 100,
        reverse: false,
    };
    let t = t0 + Duration::from_secs(10);
    assert!(
        e.history("old", q, opts(100, 600), t).unwrap().0.is_empty(),
        "oldest shed"
    );
    assert_eq!(e.history("new", q, opts(100, 600), t).unwrap().0.len(), 2);
    assert_eq!(
        e.history("old", q, opts(100, 600), t).unwrap().1.offset,
        2,
        "position kept"
    );
}

#[test]
fn channel_count_is_bounded() {
    let e = MemoryEngine::new(
        Arc::new(Recorder::default()),
        Limits {
            max_channels: 2,
            ..limits()
        },
    );
    let now = Instant::now();
    e.publish("a", &data("1"), None, opts(1, 60), now).unwrap();
    e.publish("b", &data("1"), None, opts(1, 60), now).unwrap();
    assert_eq!(
        e.publish("c", &data("1"), None, opts(1, 60), now)
            .unwrap_err(),
        EngineError::TooManyChannels(2)
    );
    assert!(e.publish("a", &data("2"), None, opts(1, 60), now).is_ok());
}

#[test]
fn presence_counts_clients_and_users_and_is_bounded() {
    let e = MemoryEngine::new(
        Arc::new(Recorder::default()),
        Limits {
            max_presence: 3,
            ..limits()
        },
    );
    let entry = |c: &str, u: &str| PresenceEntry {
        client: c.into(),
        user: u.into(),
        conn_info: None,
    };
    assert!(e.add_presence("c", entry("1", "alice")));
    assert!(e.add_presence("c", entry("2", "alice")));
    assert!(e.add_presence("c", entry("3", "bob")));
    assert!(
        e.add_presence("c", entry("3", "bob")),
        "refreshing an entry is not a new one"
    );
    assert!(!e.add_presence("d", entry("4", "carol")), "bound reached");
    assert_eq!(e.presence_stats("c"), (3, 2));
    e.remove_presence("c", "1");
    assert_eq!(e.presence_stats("c"), (2, 2));
    assert!(e.add_presence("d", entry("4", "carol")));
    assert_eq!(e.presence("d").len(), 1);
}
