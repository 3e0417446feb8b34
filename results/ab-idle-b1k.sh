#!/usr/bin/env bash
# Server builds side by side, alternating, a fresh server per run: memory per idle wss
# connection (10,000) and CPU per delivery (1,000 clients × 100 msg/s). Used for the
# one-task-per-connection experiment (results/one-task.md).
#
#   results/ab-idle-b1k.sh OUT ROUNDS NAME=BINARY ...     (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?out dir}; ROUNDS=${2:?rounds}; shift 2
PORT="${PORT:-18449}"
# shellcheck source=results/lib.sh
source results/lib.sh
SERVER_ARGS=(--rate-limit 0)
SERVER_LOG=target/ab-server.log
trap stop_server EXIT
for r in $(seq 1 "$ROUNDS"); do
  for nb in "$@"; do
    name=${nb%%=*}; SERVER_BIN=${nb#*=}
    for sc in idle b1k; do
      start_server
      if [ $sc = idle ]; then
        args=(idle --url "wss://127.0.0.1:$PORT/idle" --clients 10000 --hold 5s)
      else
        args=(broadcast --url "wss://127.0.0.1:$PORT/b" --clients 1000 --senders 10 --rate 100 --size 100 --warmup 2s --duration 12s)
      fi
      target/release/loadgen "${args[@]}" --ca certs/dev-cert.pem --server-pid "$server_pid" --out "$OUT/$sc-$name-r$r" >/dev/null 2>&1 || echo "($sc-$name-r$r: loadgen exit $?)" >&2
      stop_server
      python3 - "$OUT/$sc-$name-r$r/summary.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); s, c = d["server"], d["counts"]
name = sys.argv[1].split("/")[-2]
if name.startswith("idle"):
    print(f'{name:<22} connected {c["connected"]:>6}  RSS at the end {s["rss_end_kib"]:>6} KiB  {(s["rss_end_kib"] - s["rss_start_kib"]) * 1024 / c["connected"]:6.0f} B per connection (growth)')
else:
    print(f'{name:<22} delivered {c["delivered"]:>8} lost {c["lost"]}  {s["cpu_us_per_delivered"]:5.2f} µs/delivery (user {s["user_us_per_delivered"]:4.2f})  p99 {d["latency_us"]["p99"] / 1000:6.2f} ms')
PY
    done
  done
done
