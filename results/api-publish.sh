#!/usr/bin/env bash
# The server API as a publisher: 1,000 subscribers of one channel (client protocol), the same
# open-loop publications sent through the server API (pipelined HTTP/1.1, loadgen
# --publish-api) vs through a sender's WebSocket (`publish` command), alternating rounds, at
# each rate; then the API alone (10 subscribers) at rising rates, to find what one API
# connection sustains.
#
#   results/api-publish.sh [ROUNDS]     (default 2; from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins >&2
ROUNDS="${1:-2}"
PORT="${PORT:-18446}"
API_LISTEN="127.0.0.1:${API_PORT:-18006}"
URL="wss://127.0.0.1:$PORT"
SECRET="api-bench-secret-api-bench-secret-api-bench"
KEY="api-bench-key"
OUT=results/api-publish
mkdir -p "$OUT" certs
CFG="$(mktemp --suffix .toml)"
cat >"$CFG" <<'TOML'
[client]
command_rate_limit = 0
[[channel.namespaces]]
name = "bench"
allow_subscribe_for_client = true
allow_publish_for_client = true
TOML
# shellcheck source=results/lib.sh
source results/lib.sh
SERVER_ARGS=(--rate-limit 0 --config "$CFG" --token-hmac-secret "$SECRET" --api-key "$KEY")
SERVER_LOG=target/api-bench-server.log
trap 'stop_server; rm -f "$CFG"' EXIT
run() { # name, clients, rate, via (ws|api)
  echo "=== $1" >&2
  start_server
  local via=()
  [ "$4" = api ] && via=(--publish-api "http://$API_LISTEN/api" --api-key "$KEY")
  target/release/loadgen broadcast --protocol centrifuge --url "$URL/bench:api" --clients "$2" --senders 1 \
    --rate "$3" --size 100 --warmup 3s --duration 15s --ca certs/dev-cert.pem \
    --token-hmac-secret "$SECRET" --server-pid "$server_pid" "${via[@]}" --out "$OUT/$1" || echo "($1: exit $?)" >&2
  stop_server
}
fanout=()
for r in $(seq 1 "$ROUNDS"); do
  for rate in 100 300; do
    run "ws-1k-${rate}-r$r" 1000 "$rate" ws; fanout+=("$OUT/ws-1k-${rate}-r$r")
    run "api-1k-${rate}-r$r" 1000 "$rate" api; fanout+=("$OUT/api-1k-${rate}-r$r")
  done
done
target/release/loadgen compare "${fanout[@]}"
alone=()
for rate in 2000 5000 10000 20000; do
  run "api-10-${rate}" 10 "$rate" api; alone+=("$OUT/api-10-${rate}")
done
target/release/loadgen compare "${alone[@]}"
