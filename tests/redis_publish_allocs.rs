//! What a publish through the Redis engine allocates on the calling thread (a worker: the
//! house rule is no allocation on the hot path), counted by a counting global allocator,
//! against a real Redis (tests/common/redis.rs). After a warm-up (the connection's buffers
//! grow once), publishes into a channel with history and into one without allocate nothing:
//! the command is written into the connection's buffer (key names in parts, numbers in place),
//! the publication into its scratch buffer, the reply read in place, the epoch shared while it
//! repeats. On the node's subscriber thread, each publication coming back from Redis costs one
//! allocation: the frame its subscribers share (the outlet's).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringcast::engine::redis::{RedisEngine, RedisOptions};
use ringcast::engine::{Broker, HistoryOptions, Outlet};
use serde_json::value::RawValue;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// Counts allocations (and reallocations) per thread.
struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Notes, at each delivery, the delivering thread's allocation count (from the 100th on).
#[derive(Default)]
struct Counted {
    delivered: AtomicU64,
    first: AtomicU64,
    last: AtomicU64,
}

impl Outlet for Counted {
    fn frame(&self, push: &[u8]) -> Bytes {
        Bytes::copy_from_slice(push)
    }
    fn deliver(&self, _: &str, _: u64, _: Bytes) {
        let n = self.delivered.fetch_add(1, Ordering::Relaxed) + 1;
        if n == 100 {
            self.first.store(allocations(), Ordering::Relaxed);
        }
        self.last.store(allocations(), Ordering::Relaxed);
    }
}

#[test]
fn a_publish_allocates_nothing_on_the_calling_thread() {
    let Some(redis) = common::redis::Redis::start() else {
        return;
    };
    let outlet = Arc::new(Counted::default());
    let engine = RedisEngine::start(
        outlet.clone(),
        RedisOptions {
            address: redis.address(),
            prefix: "allocs".into(),
            presence_ttl: Duration::from_secs(60),
            max_presence_per_channel: 100,
            timeout: Duration::from_secs(2),
            tls_ca_file: None,
        },
    )
    .expect("the Redis engine starts");
    let data = RawValue::from_string(format!("{{\"text\":\"{}\"}}", "x".repeat(90))).unwrap();
    let history = HistoryOptions {
        size: 100,
        ttl: Duration::from_secs(300),
        meta_ttl: Duration::ZERO,
    };
    let none = HistoryOptions {
        size: 0,
        ttl: Duration::ZERO,
        meta_ttl: Duration::ZERO,
    };
    let publish = |opts: HistoryOptions, channel: &str| {
        engine
            .publish(channel, &data, None, opts, Instant::now())
            .expect("published")
    };
    engine.node_subscribe("chat:a").unwrap();
    engine.node_subscribe("live:a").unwrap();
    for _ in 0..10 {
        publish(history, "chat:a");
        publish(none, "live:a");
    }
    const N: u64 = 1_000;
    let before = allocations();
    let mut last = 0;
    for _ in 0..N {
        last = publish(history, "chat:a").expect("a position").offset;
    }
    let with_history = allocations() - before;
    let before = allocations();
    for _ in 0..N {
        assert!(publish(none, "live:a").is_none());
    }
    let without = allocations() - before;
    println!(
        "allocations per publish on the calling thread: {:.2} with history, {:.2} without",
        with_history as f64 / N as f64,
        without as f64 / N as f64
    );
    assert_eq!(last, 10 + N, "every publish got the next offset");
    let all = 2 * (10 + N);
    let deadline = Instant::now() + Duration::from_secs(10);
    while outlet.delivered.load(Ordering::Relaxed) < all {
        assert!(Instant::now() < deadline, "every publication came back");
        std::thread::sleep(Duration::from_millis(10));
    }
    let received = outlet.last.load(Ordering::Relaxed) - outlet.first.load(Ordering::Relaxed);
    let per_message = received as f64 / (all - 100) as f64;
    println!("allocations per publication received on the subscriber thread: {per_message:.2}");
    // The reader's buffer may still grow once or twice (a burst larger than it held so far).
    assert!(
        (all - 100..=all - 100 + 4).contains(&received),
        "one allocation per publication received (the shared frame): {received} for {}",
        all - 100
    );
    assert_eq!(with_history, 0, "{N} publishes with history");
    assert_eq!(without, 0, "{N} publishes without history");
}
