#!/usr/bin/env bash
# The standard ringcast benchmark: each scenario against a fresh release server on loopback,
# loadgen sampling the server's CPU and memory, results in results/<scenario>/.
#
#   results/bench.sh [SCENARIO ...]     (default: all; run from the repository root)
#
# Scenarios: broadcast-1k broadcast-10k-10 broadcast-10k-100 echo-100 connect-10k idle-10k
# Then:  target/release/loadgen compare results/broadcast-1k results/broadcast-10k-10 ...
#        target/release/loadgen plot results/broadcast-* -o results/broadcast.png
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins >&2
PORT="${PORT:-18443}"
URL="wss://127.0.0.1:$PORT"
LG=(target/release/loadgen)
CA=(--ca certs/dev-cert.pem)

# shellcheck source=results/lib.sh
source results/lib.sh
SERVER_ARGS=(--rate-limit 0)
SERVER_LOG=target/bench-server.log
trap stop_server EXIT

run() { # name, loadgen args...
  local name=$1; shift
  echo "=== $name: loadgen $*" >&2
  start_server
  "${LG[@]}" "$@" "${CA[@]}" --server-pid "$server_pid" --out "results/$name" || echo "($name: loadgen exit $?)" >&2
  stop_server
}

scenario() {
  case "$1" in
    broadcast-1k)      run broadcast-1k      broadcast --url "$URL/b1k"  --clients 1000  --senders 10 --rate 100  --size 100 --warmup 2s --duration 20s ;;
    broadcast-10k-10)  run broadcast-10k-10  broadcast --url "$URL/b10k" --clients 10000 --senders 10 --rate 10   --size 100 --warmup 2s --duration 20s ;;
    broadcast-10k-100) run broadcast-10k-100 broadcast --url "$URL/b10k" --clients 10000 --senders 10 --rate 100  --size 100 --warmup 2s --duration 10s --drain 10s ;;
    echo-100)
      for r in 10 100 1000; do
        run "echo-100-r$r" echo --url "$URL/echo" --clients 100 --rate "$r" --size 100 --warmup 2s --duration 15s
      done ;;
    connect-10k)       run connect-10k       connect   --url "$URL/storm" --clients 10000 ;;
    idle-10k)          run idle-10k          idle      --url "$URL/idle"  --clients 10000 --hold 10s ;;
    *) echo "unknown scenario $1" >&2; exit 2 ;;
  esac
}

if [ $# -eq 0 ]; then
  set -- broadcast-1k broadcast-10k-10 broadcast-10k-100 echo-100 connect-10k idle-10k
fi
for s in "$@"; do scenario "$s"; done
