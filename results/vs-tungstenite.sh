#!/usr/bin/env bash
# loadgen against a plain tokio-tungstenite client doing the same broadcast work
# (loadgen/examples/tungstenite_baseline.rs): one server, the two clients alternating, two rounds
# per load, TCP segments counted from /proc/net/snmp around each run.
#   results/vs-tungstenite.sh     (from the repository root; needs `ulimit -n` ≥ 10100)
# Loads: CLIENTS:RATE pairs (10 senders, RATE messages/s in total, 100-byte messages).
set -u
cd "$(dirname "$0")/.."
LOADS="${LOADS:-1000:5 1000:20 1000:100 1000:500 10000:10 10000:100}"
ROUNDS="${ROUNDS:-2}"
SECS="${SECS:-12}"
cargo build --release --workspace --bins >&2
cargo build --release -p loadgen --example tungstenite_baseline >&2
ulimit -n 20000 2>/dev/null || true
PORT="${PORT:-18460}"
target/release/ringcast --listen "127.0.0.1:$PORT" --api-listen off --rate-limit 0 --log-format json 2>>target/vs-server.log &
SP=$!
sleep 0.5
segs() { awk '/^Tcp: [0-9]/ { print $11 + $12 }' /proc/net/snmp; } # InSegs + OutSegs
for load in $LOADS; do
  clients="${load%%:*}"
  rate="${load##*:}"
  for round in $(seq 1 "$ROUNDS"); do
    echo "## $clients clients, 10 senders, $rate msg/s total, round $round"
    s0=$(segs)
    target/release/examples/tungstenite_baseline "wss://127.0.0.1:$PORT/b$clients-$rate-$round" certs/dev-cert.pem \
      "$clients" 10 "$rate" "$SECS" "$SP" 2>&1 | grep -E "baseline: (s|l)"
    echo "tungstenite run: $(($(segs) - s0)) TCP segments (in + out, both ends)"
    s0=$(segs)
    target/release/loadgen broadcast --url "wss://127.0.0.1:$PORT/l$clients-$rate-$round" --ca certs/dev-cert.pem \
      --clients "$clients" --senders 10 --rate "$rate" --warmup 1s --duration "$((SECS - 1))s" \
      --server-pid "$SP" 2>&1 | grep -E "messages|latency|loadgen CPU|server  "
    echo "loadgen run: $(($(segs) - s0)) TCP segments (in + out, both ends)"
  done
done
kill "$SP"
wait "$SP"
