#!/usr/bin/env bash
# Issue 14's table, side by side in one run: ringcast, the two peer servers of ../shared/peers
# (tokio-tungstenite with a 4 KiB read buffer, fastwebsockets) and the kernel's floor, the same
# loadgen command for every server, servers alternating, ROUNDS rounds, a fresh server per run.
#
#   results/vs-peers.sh [ROUNDS]     (default 2; from the repository root)
#   PEERS=dir    the peer servers' sources (default ../shared/peers)
#   OUT=dir      where the runs go (default results/vs-peers)
#   SERVERS="ringcast fastws tungstenite"  SCENARIOS="b1k b10k b10k100 idle connect"
#
# The floor (`floor N RATE SECS SIZE`: one plain send of 130 bytes per delivery, the size of a
# 100-byte message as loadgen's frame in a TLS record) runs at 1,000 × 100/s and 9,000 × 10/s
# (its own limit: two descriptors per connection under the 20,000 fd limit).
# Then: results/vs_peers_table.py results/vs-peers
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins >&2
ROUNDS="${1:-2}"
PORT="${PORT:-18447}"
PEERS="${PEERS:-../shared/peers}"
OUT="${OUT:-results/vs-peers}"
SERVERS="${SERVERS:-ringcast fastws tungstenite}"
SCENARIOS=" ${SCENARIOS:-b1k b10k b10k100 idle connect} "
mkdir -p "$OUT"
"$PEERS/run.sh" floor 10 1 1 130 >/dev/null # builds the peers once (into target/peers)

# shellcheck source=results/lib.sh
source results/lib.sh
SERVER_LOG=target/vs-peers-server.log
SERVER_ARGS=(--rate-limit 0)
trap 'stop_server' EXIT

start() { # server name
  if [ "$1" = ringcast ]; then start_server; return; fi
  local env=()
  [ "$1" = tungstenite ] && env=(PEER_READ_BUF=4096)
  env "${env[@]}" "$PEERS/run.sh" "$1" "$PORT" certs/dev-cert.pem certs/dev-key.pem 2>>"$SERVER_LOG" &
  server_pid=$!
  wait_port "$1"
}

one() { # server, run name, loadgen mode and args... (the URL is added)
  local server=$1 name=$2 mode=$3; shift 3
  echo "=== $name" >&2
  start "$server"
  target/release/loadgen "$mode" --url "wss://127.0.0.1:$PORT/$mode" "$@" \
    --ca certs/dev-cert.pem --server-pid "$server_pid" --out "$OUT/$name" >&2 \
    || echo "($name: loadgen exit $?)" >&2
  stop_server
}

for r in $(seq 1 "$ROUNDS"); do
  echo "=== floor-r$r" >&2
  "$PEERS/run.sh" floor 1000 100 10 130 | tee "$OUT/floor-1k-r$r.txt" >&2
  "$PEERS/run.sh" floor 9000 10 10 130 | tee "$OUT/floor-9k-r$r.txt" >&2
  for s in $SERVERS; do
    case $SCENARIOS in *" b1k "*) one "$s" "b1k-$s-r$r" broadcast --clients 1000 --senders 10 --rate 100 --size 100 --warmup 2s --duration 15s ;; esac
    case $SCENARIOS in *" b10k "*) one "$s" "b10k-$s-r$r" broadcast --clients 10000 --senders 10 --rate 10 --size 100 --warmup 2s --duration 15s ;; esac
    case $SCENARIOS in *" b10k100 "*) one "$s" "b10k100-$s-r$r" broadcast --clients 10000 --senders 10 --rate 100 --size 100 --warmup 2s --duration 10s --drain 10s ;; esac
    case $SCENARIOS in *" idle "*) one "$s" "idle-$s-r$r" idle --clients 10000 --hold 5s ;; esac
    case $SCENARIOS in *" connect "*) one "$s" "connect-$s-r$r" connect --clients 10000 --connect-rate 2000 ;; esac
  done
done
python3 results/vs_peers_table.py "$OUT"
