//! `/stats.json` for the web stats page: the server's counters summed over workers, as one
//! flat JSON object (the page shows each with its rate). `/metrics` on the API listener is the
//! complete, labelled set; this is what a person watching the server wants at a glance.

use std::sync::atomic::Ordering;

use super::ServerShared;
use super::counters::WorkerCounters;

pub fn json(shared: &ServerShared) -> String {
    let sum = |f: fn(&WorkerCounters) -> u64| shared.counters.iter().map(f).sum::<u64>();
    let opened = sum(|c| WorkerCounters::get(&c.protocol_opened));
    let closed = sum(|c| WorkerCounters::get(&c.protocol_closed));
    let raw = sum(|c| WorkerCounters::get(&c.raw_opened))
        .saturating_sub(sum(|c| WorkerCounters::get(&c.raw_closed)));
    let subs = sum(|c| WorkerCounters::get(&c.subs_added))
        .saturating_sub(sum(|c| WorkerCounters::get(&c.subs_removed)));
    let s = &shared.stats;
    let now = crate::session::Now::system().unix;
    serde_json::json!({
        "uptime_seconds": now.saturating_sub(shared.started),
        "workers": shared.counters.len(),
        "connections": shared.connections.load(Ordering::Relaxed),
        "client_protocol_connections": opened.saturating_sub(closed),
        "raw_room_connections": raw,
        "subscriptions": subs,
        "connections_accepted": s.accepted.load(Ordering::Relaxed),
        "handshakes_refused": s.handshakes_refused.load(Ordering::Relaxed),
        "messages_in": s.messages_in.load(Ordering::Relaxed),
        "frames_out": sum(|c| WorkerCounters::get(&c.frames_out)),
        "bytes_in": sum(|c| WorkerCounters::get(&c.bytes_in)),
        "bytes_out": sum(|c| WorkerCounters::get(&c.bytes_out)),
        "slow_consumers_closed": s.slow_consumers.load(Ordering::Relaxed),
    })
    .to_string()
}
