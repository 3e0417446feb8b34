#!/usr/bin/env bash
# A whole node with the Redis engine against the memory engine, same server binary, same run:
# alternating rounds of a 1,000-client client-protocol broadcast at 100 msg/s (10 senders
# publishing through the engine, 100-byte payloads, channel without namespace). Starts a
# throw-away redis-server (Debian redis-server) on a free port.
#
#   results/redis-engine.sh [ROUNDS]     (default 2; from the repo root)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins >&2
ROUNDS="${1:-2}"
PORT="${PORT:-18445}"
REDIS_PORT="${REDIS_PORT:-16379}"
URL="wss://127.0.0.1:$PORT"
SECRET="redis-bench-secret-redis-bench-secret-1"
OUT=results/redis-engine
mkdir -p "$OUT"
# shellcheck source=results/lib.sh
source results/lib.sh
CFG="$(bench_config)"

redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no >/dev/null &
redis_pid=$!
SERVER_LOG=target/redis-bench-server.log
trap 'stop_server; kill "$redis_pid" 2>/dev/null; rm -f "$CFG"' EXIT

mkdir -p certs
runs=()
for r in $(seq 1 "$ROUNDS"); do
  for e in memory redis; do
    SERVER_ARGS=(--rate-limit 0 --config "$CFG" --token-hmac-secret "$SECRET" --engine "$e"
      --redis-address "redis://127.0.0.1:$REDIS_PORT")
    run_loadgen "broadcast-1k-$e-r$r" broadcast --protocol centrifuge --url "$URL/b1k" --clients 1000 \
      --senders 10 --rate 100 --size 100 --warmup 3s --duration 15s
    runs+=("$OUT/broadcast-1k-$e-r$r")
  done
done
target/release/loadgen compare "${runs[@]}"
