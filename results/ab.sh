#!/usr/bin/env bash
# Server builds side by side, alternating, a fresh server per run, the same loadgen command for
# each build (the first version, `ab-idle-b1k.sh`, ran idle and b1k only).
#
#   results/ab.sh OUT ROUNDS NAME=BINARY ...     (from the repository root)
#   SCENARIOS="idle b1k"   any of:
#     idle     10,000 idle wss connections held 5 s: RSS growth per connection
#     b1k      broadcast, 1,000 clients × 100 msg/s, 12 s: CPU per delivery, latency
#     b10k     broadcast, 10,000 clients × 10 msg/s, 15 s
#     b10k100  broadcast, 10,000 clients × 100 msg/s, 10 s + 10 s drain (both cores saturated)
#     connect  10,000 new wss connections at 2,000/s: server CPU per connection
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?out dir}; ROUNDS=${2:?rounds}; shift 2
PORT="${PORT:-18449}"
SCENARIOS="${SCENARIOS:-idle b1k}"
# shellcheck source=results/lib.sh
source results/lib.sh
SERVER_ARGS=(--rate-limit 0)
SERVER_LOG=target/ab-server.log
trap stop_server EXIT
for r in $(seq 1 "$ROUNDS"); do
  for nb in "$@"; do
    name=${nb%%=*}; SERVER_BIN=${nb#*=}
    for sc in $SCENARIOS; do
      b=(broadcast --url "wss://127.0.0.1:$PORT/b" --senders 10 --size 100 --warmup 2s)
      case $sc in
        idle) args=(idle --url "wss://127.0.0.1:$PORT/idle" --clients 10000 --hold 5s) ;;
        b1k) args=("${b[@]}" --clients 1000 --rate 100 --duration 12s) ;;
        b10k) args=("${b[@]}" --clients 10000 --rate 10 --duration 15s) ;;
        b10k100) args=("${b[@]}" --clients 10000 --rate 100 --duration 10s --drain 10s) ;;
        connect) args=(connect --url "wss://127.0.0.1:$PORT/connect" --clients 10000 --connect-rate 2000) ;;
        *) echo "unknown scenario $sc" >&2; exit 2 ;;
      esac
      start_server
      target/release/loadgen "${args[@]}" --ca certs/dev-cert.pem --server-pid "$server_pid" --out "$OUT/$sc-$name-r$r" >/dev/null 2>&1 || echo "($sc-$name-r$r: loadgen exit $?)" >&2
      stop_server
      results/summary_line.py "$OUT/$sc-$name-r$r"
    done
  done
done
