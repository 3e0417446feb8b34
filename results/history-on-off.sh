#!/usr/bin/env bash
# The channel engine's cost: a 1,000-subscriber broadcast at 100 msg/s through the client
# protocol into a channel with history (offsets, a stored copy of every publication, positions
# checked per subscriber) vs one without, same server, alternating rounds.
#
#   results/history-on-off.sh [ROUNDS]     (default 2; from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins >&2
ROUNDS="${1:-2}"
PORT="${PORT:-18445}"
URL="wss://127.0.0.1:$PORT"
SECRET="history-bench-secret-history-bench-secret"
OUT=results/history-on-off
mkdir -p "$OUT" certs
CFG="$(mktemp --suffix .toml)"
cat >"$CFG" <<'TOML'
[client]
command_rate_limit = 0
[[channel.namespaces]]
name = "plain"
allow_subscribe_for_client = true
allow_publish_for_client = true
[[channel.namespaces]]
name = "hist"
allow_subscribe_for_client = true
allow_publish_for_client = true
history_size = 1000
history_ttl = "300s"
force_recovery = true
TOML
# shellcheck source=results/lib.sh
source results/lib.sh
SERVER_ARGS=(--rate-limit 0 --config "$CFG" --token-hmac-secret "$SECRET")
SERVER_LOG=target/history-bench-server.log
trap 'stop_server; rm -f "$CFG"' EXIT
run() { # name, channel
  echo "=== $1" >&2
  start_server
  target/release/loadgen broadcast --protocol centrifuge --url "$URL/$2" --clients 1000 --senders 10 \
    --rate 100 --size 100 --warmup 3s --duration 15s --ca certs/dev-cert.pem \
    --token-hmac-secret "$SECRET" --server-pid "$server_pid" --out "$OUT/$1" || echo "($1: exit $?)" >&2
  stop_server
}
runs=()
for r in $(seq 1 "$ROUNDS"); do
  run "off-r$r" "plain:b1k"; runs+=("$OUT/off-r$r")
  run "on-r$r" "hist:b1k"; runs+=("$OUT/on-r$r")
done
target/release/loadgen compare "${runs[@]}"
