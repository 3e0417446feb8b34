#!/usr/bin/env bash
# The client protocol path vs raw rooms, same server, same machine, same run: alternating rounds
# of a 1,000-client broadcast at 100 msg/s (10 senders, 100-byte payloads), then idle
# connections held open (server RSS per connection). Every client has an HS256 token (raw
# rooms: Authorization header; protocol: the connect command) and the server's configuration
# is the same for both paths.
#
#   results/protocol-vs-raw.sh [ROUNDS] [IDLE_CLIENTS]     (defaults 2, 5000; from the repo root)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins >&2
ROUNDS="${1:-2}"
IDLE="${2:-5000}"
PORT="${PORT:-18444}"
URL="wss://127.0.0.1:$PORT"
SECRET="protocol-bench-secret-protocol-bench-secret"
OUT=results/protocol-vs-raw
mkdir -p "$OUT"
# shellcheck source=results/lib.sh
source results/lib.sh
CFG="$(bench_config)"

SERVER_ARGS=(--rate-limit 0 --config "$CFG" --token-hmac-secret "$SECRET")
SERVER_LOG=target/protocol-bench-server.log
trap 'stop_server; rm -f "$CFG"' EXIT

mkdir -p certs
for r in $(seq 1 "$ROUNDS"); do
  for p in raw centrifuge; do
    run_loadgen "broadcast-1k-$p-r$r" broadcast --protocol "$p" --url "$URL/b1k" --clients 1000 \
      --senders 10 --rate 100 --size 100 --warmup 3s --duration 15s
  done
done
for r in $(seq 1 "$ROUNDS"); do
  for p in raw centrifuge; do
    run_loadgen "idle-$p-r$r" idle --protocol "$p" --url "$URL/idle" --clients "$IDLE" --hold 10s
  done
done
runs=()
for r in $(seq 1 "$ROUNDS"); do runs+=("$OUT/broadcast-1k-raw-r$r" "$OUT/broadcast-1k-centrifuge-r$r"); done
target/release/loadgen compare "${runs[@]}"
runs=()
for r in $(seq 1 "$ROUNDS"); do runs+=("$OUT/idle-raw-r$r" "$OUT/idle-centrifuge-r$r"); done
target/release/loadgen compare "${runs[@]}"
