#!/usr/bin/env bash
# loadgen against a plain tokio-tungstenite client doing the same broadcast work
# (loadgen/examples/tungstenite_baseline.rs), one server, alternating, two rounds per load.
#   results/vs-tungstenite.sh     (from the repository root)
set -u
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins >&2
cargo build --release -p loadgen --example tungstenite_baseline >&2
PORT="${PORT:-18460}"
target/release/ringcast --listen "127.0.0.1:$PORT" --rate-limit 0 --log-format json 2>>target/vs-server.log &
SP=$!
sleep 0.5
for rate in 100 500; do
  for round in 1 2; do
    echo "## 1000 clients, 10 senders, $rate msg/s total, round $round"
    target/release/examples/tungstenite_baseline "wss://127.0.0.1:$PORT/b$rate$round" certs/dev-cert.pem 1000 10 "$rate" 12 "$SP" 2>&1 | grep "baseline: s"
    target/release/loadgen broadcast --url "wss://127.0.0.1:$PORT/l$rate$round" --ca certs/dev-cert.pem --clients 1000 \
      --senders 10 --rate "$rate" --warmup 1s --duration 11s --server-pid "$SP" 2>&1 | grep -E "messages|loadgen CPU|server  "
  done
done
kill "$SP"; wait "$SP"
