//! Cross-core wake-up: a round trip through two ringcast inboxes (bounded ArrayQueue +
//! compio's cross-thread Waker, i.e. an eventfd registered with the io_uring plus an "awake"
//! flag) between two threads each running a compio runtime, against the same round trip
//! through `std::sync::mpsc` between two plain threads (futex wake) measured in the same run.
//!
//! `cargo bench --bench cross_core` — results in results/cross-core-wake.md.

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::mpsc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use ringcast::server::inbox::{Delivery, Inbox, Target};

/// Waits on `inbox` inside a compio runtime until a delivery arrives.
async fn recv(inbox: &Inbox) -> Delivery {
    poll_fn(|cx| match inbox.pop() {
        Some(d) => Poll::Ready(d),
        None => {
            if inbox.poll_ready(cx) {
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        }
    })
    .await
}

fn delivery() -> Delivery {
    Delivery {
        target: Target::Room,
        room: Arc::from("r"),
        frame: Bytes::from_static(b"x"),
        offset: 0,
    }
}

fn inbox_round_trips(c: &mut Criterion) {
    let a = Arc::new(Inbox::new(1024));
    let b = Arc::new(Inbox::new(1024));
    // Thread B: echo every delivery from its inbox back into A's.
    {
        let (a, b) = (a.clone(), b.clone());
        std::thread::spawn(move || {
            compio::runtime::Runtime::new()
                .unwrap()
                .block_on(async move {
                    loop {
                        let d = recv(&b).await;
                        if d.frame.is_empty() {
                            return;
                        }
                        a.send(d);
                    }
                })
        });
    }
    // Thread A: runs `n` round trips on request and reports the time taken.
    let (req_tx, req_rx) = mpsc::channel::<u64>();
    let (res_tx, res_rx) = mpsc::channel::<Duration>();
    {
        let (a, b) = (a.clone(), b.clone());
        std::thread::spawn(move || {
            compio::runtime::Runtime::new()
                .unwrap()
                .block_on(async move {
                    while let Ok(n) = req_rx.recv() {
                        let t = Instant::now();
                        for _ in 0..n {
                            b.send(delivery());
                            recv(&a).await;
                        }
                        res_tx.send(t.elapsed()).unwrap();
                    }
                    b.send(Delivery {
                        target: Target::Room,
                        room: Arc::from("r"),
                        frame: Bytes::new(),
                        offset: 0,
                    });
                })
        });
    }
    let mut g = c.benchmark_group("cross_core_round_trip");
    g.bench_function("inbox_compio_waker", |bench| {
        bench.iter_custom(|n| {
            req_tx.send(n).unwrap();
            res_rx.recv().unwrap()
        })
    });

    let (to_b, b_rx) = mpsc::channel::<u64>();
    let (to_a, a_rx) = mpsc::channel::<u64>();
    std::thread::spawn(move || {
        while let Ok(v) = b_rx.recv() {
            if to_a.send(v).is_err() {
                return;
            }
        }
    });
    g.bench_function("std_mpsc_futex", |bench| {
        bench.iter(|| {
            to_b.send(1).unwrap();
            a_rx.recv().unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, inbox_round_trips);
criterion_main!(benches);
