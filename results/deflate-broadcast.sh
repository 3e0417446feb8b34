#!/usr/bin/env bash
# permessage-deflate on a broadcast: 1,000 raw-room clients, one sender, 100 msg/s of a 2 KiB
# chat-feed JSON message (loadgen --filler json), the same server (--compression) in every run;
# the clients offer permessage-deflate (loadgen --compression) or not, alternating rounds.
# Server CPU per delivery and RSS from loadgen --server-pid; bytes on the wire and the deflate
# counters from the server's /metrics after each run.
#
#   results/deflate-broadcast.sh [ROUNDS]     (default 2; from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins >&2
ROUNDS="${1:-2}"
PORT="${PORT:-18447}"
API_LISTEN="127.0.0.1:${API_PORT:-18007}"
URL="wss://127.0.0.1:$PORT"
OUT=results/deflate-broadcast
mkdir -p "$OUT" certs
# shellcheck source=results/lib.sh
source results/lib.sh
SERVER_ARGS=(--rate-limit 0 --compression)
SERVER_LOG=target/deflate-bench-server.log
trap 'stop_server' EXIT
metric() { grep "^$1 " "$2" | awk '{print $2}'; }
run() { # name, extra loadgen flags…
  local name="$1"; shift
  echo "=== $name" >&2
  start_server
  target/release/loadgen broadcast --url "$URL/deflate" --clients 1000 --senders 1 --rate 100 \
    --size 2KiB --filler json --warmup 3s --duration 15s --ca certs/dev-cert.pem \
    --server-pid "$server_pid" "$@" --out "$OUT/$name" >&2 || echo "($name: exit $?)" >&2
  curl -s "http://$API_LISTEN/metrics" >"$OUT/$name/metrics.txt"
  stop_server
}
runs=()
for r in $(seq 1 "$ROUNDS"); do
  run "plain-r$r"; runs+=("$OUT/plain-r$r")
  run "deflate-r$r" --compression; runs+=("$OUT/deflate-r$r")
done
target/release/loadgen compare "${runs[@]}"
echo
echo "| run | bytes out (whole run) | bytes out per delivery | compressions | skipped | payload before → after | compress s |"
echo "|---|---|---|---|---|---|---|"
for d in "${runs[@]}"; do
  m="$d/metrics.txt"
  delivered="$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['counts']['delivered'])" "$d/summary.json")"
  out="$(metric ringcast_bytes_out_total "$m")"
  echo "| $(basename "$d") | $out | $(( out / (delivered > 0 ? delivered : 1) )) | $(metric ringcast_deflate_messages_compressed_total "$m") | $(metric ringcast_deflate_messages_skipped_total "$m") | $(metric ringcast_deflate_bytes_before_total "$m") → $(metric ringcast_deflate_bytes_after_total "$m") | $(metric ringcast_deflate_compress_seconds_total "$m") |"
done
