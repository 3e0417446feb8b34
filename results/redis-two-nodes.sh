#!/usr/bin/env bash
# Two nodes sharing one Redis against one node with the memory engine, same server binary, same
# run: alternating rounds of a 1,000-client client-protocol broadcast at 100 msg/s (10 senders,
# 100-byte payloads, a channel with history). With two nodes loadgen spreads clients and senders
# over both (client i on node i mod 2: `--also-url`), so every publication reaches half of its
# subscribers through the other node; server CPU and memory are summed over both nodes and
# redis-server (`--server-pid` three times): what the scale-out costs in all. Starts a throw-away redis-server (Debian redis-server) on a free port.
#
#   results/redis-two-nodes.sh [ROUNDS]     (default 2; from the repo root)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins >&2
ROUNDS="${1:-2}"
PORT="${PORT:-18446}"
PORT2="${PORT2:-18447}"
REDIS_PORT="${REDIS_PORT:-16380}"
SECRET="redis-bench-secret-redis-bench-secret-1"
OUT=results/redis-two-nodes
mkdir -p "$OUT"
# shellcheck source=results/lib.sh
source results/lib.sh
CFG="$(bench_config $'history_size = 100\nhistory_ttl = "60s"')"

redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no >/dev/null &
redis_pid=$!
SERVER_LOG=target/redis-two-nodes-server.log
node2_pid=""
stop_node2() {
  if [ -n "$node2_pid" ]; then kill "$node2_pid" 2>/dev/null || true; wait "$node2_pid" 2>/dev/null || true; node2_pid=""; fi
}
trap 'stop_server; stop_node2; kill "$redis_pid" 2>/dev/null; rm -f "$CFG"' EXIT
LOAD=(broadcast --protocol centrifuge --clients 1000 --senders 10 --rate 100 --size 100
  --warmup 3s --duration 15s)

mkdir -p certs
runs=()
for r in $(seq 1 "$ROUNDS"); do
  SERVER_ARGS=(--rate-limit 0 --config "$CFG" --token-hmac-secret "$SECRET" --engine memory)
  run_loadgen "one-node-memory-r$r" "${LOAD[@]}" --url "wss://127.0.0.1:$PORT/b1k"
  runs+=("$OUT/one-node-memory-r$r")

  name="two-nodes-redis-r$r"
  SERVER_ARGS=(--rate-limit 0 --config "$CFG" --token-hmac-secret "$SECRET" --engine redis
    --redis-address "redis://127.0.0.1:$REDIS_PORT" --redis-prefix "bench$r")
  start_server
  target/release/ringcast --listen "127.0.0.1:$PORT2" --api-listen off "${SERVER_ARGS[@]}" \
    --log-format json 2>>"$SERVER_LOG" &
  node2_pid=$!
  PORT="$PORT2" wait_port "node 2"
  echo "=== $name: loadgen ${LOAD[*]} (two nodes)" >&2
  target/release/loadgen "${LOAD[@]}" --url "wss://127.0.0.1:$PORT/b1k" \
    --also-url "wss://127.0.0.1:$PORT2/b1k" --ca certs/dev-cert.pem --token-hmac-secret "$SECRET" \
    --server-pid "$server_pid" --server-pid "$node2_pid" --server-pid "$redis_pid" --out "$OUT/$name" ||
    echo "($name: loadgen exit $?)" >&2
  stop_node2
  stop_server
  runs+=("$OUT/$name")
done
target/release/loadgen compare "${runs[@]}"
