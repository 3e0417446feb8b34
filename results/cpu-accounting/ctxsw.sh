#!/usr/bin/env bash
# Context switches of the worker threads (from /proc at the end of the run) beside one b1k run per
# build, three alternating rounds:  results/cpu-accounting/ctxsw.sh OUT NAME=BINARY ...
set -euo pipefail
cd "$(dirname "$0")/../.."
PORT=18463
source results/lib.sh
SERVER_ARGS=(--rate-limit 0); SERVER_LOG=target/ctxsw-server.log
trap stop_server EXIT
OUT=$1; shift
for r in 1 2 3; do
  for nb in "$@"; do
    name=${nb%%=*}; SERVER_BIN=${nb#*=}
    start_server
    target/release/loadgen broadcast --url "wss://127.0.0.1:$PORT/b" --senders 10 --size 100 --warmup 2s --clients 1000 --rate 100 --duration 12s --ca certs/dev-cert.pem --server-pid "$server_pid" --out "$OUT/b1k-$name-r$r" >/dev/null 2>&1
    vol=0; inv=0
    for t in /proc/$server_pid/task/*; do
      grep -q ringcast-w "$t/comm" || continue
      v=$(awk '/^voluntary_ctxt/ {print $2}' "$t/status"); i=$(awk '/^nonvoluntary_ctxt/ {print $2}' "$t/status")
      vol=$((vol+v)); inv=$((inv+i))
    done
    echo "b1k-$name-r$r voluntary $vol involuntary $inv  $(results/summary_line.py "$OUT/b1k-$name-r$r" | cut -c24-80)"
    stop_server
  done
done
