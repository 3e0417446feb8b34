#!/usr/bin/env bash
# TLS 1.3 session tickets on vs off: server CPU per new wss connection (TLS 1.3 handshake +
# HTTP upgrade), same server build, alternating rounds, a fresh server per run. loadgen's
# clients never resume, as most load generators and many server-to-server clients do not.
#
#   results/handshake-tickets.sh [ROUNDS] [CLIENTS] [RATE]     (defaults 4, 5000, 2000; from the repo root)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins >&2
ROUNDS="${1:-4}"
CLIENTS="${2:-5000}"
RATE="${3:-2000}"
PORT="${PORT:-18445}"
URL="wss://127.0.0.1:$PORT"
OUT=results/handshake-tickets
mkdir -p "$OUT" certs

# shellcheck source=results/lib.sh
source results/lib.sh
SERVER_LOG=target/handshake-bench-server.log
trap 'stop_server' EXIT

for r in $(seq 1 "$ROUNDS"); do
  for t in 0 2; do
    name="connect-tickets$t-r$r"
    echo "=== $name" >&2
    SERVER_ARGS=(--rate-limit 0 --tls-tickets "$t")
    start_server
    target/release/loadgen connect --url "$URL/storm" --clients "$CLIENTS" --connect-rate "$RATE" \
      --ca certs/dev-cert.pem --server-pid "$server_pid" --out "$OUT/$name" >&2 \
      || echo "($name: loadgen exit $?)" >&2
    stop_server
  done
done
# One line per run: server CPU µs per connection, handshake p50/p99 µs.
for f in "$OUT"/*/summary.json; do
  python3 - "$f" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
n = d["counts"]["connected"]
s = d["server"]
h = d["handshake_us"]
print(f'{d["name"]:<24} connected {n:>6}  server cpu {s["cpu_s"]*1e6/n:7.1f} µs/conn '
      f'(user {s["user_s"]*1e6/n:6.1f})  handshake p50 {h["p50"]/1000:6.2f} ms  p99 {h["p99"]/1000:6.2f} ms')
PY
done
