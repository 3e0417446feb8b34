#!/usr/bin/env bash
# Diagnostic (not an A/B): one 10,000-client broadcast per server binary at RATE msg/s; samples
# the server's /metrics every 100 ms (publications read, bytes sent) into OUT/NAME-samples.txt,
# then backlog.py prints the server's own backlog in messages. From the repository root:
#   OUT=dir RATE=50 results/flusher/diag/backlog.sh NAME=BINARY ...
set -euo pipefail
OUT=${OUT:?out dir}; RATE=${RATE:-50}
for nb in "$@"; do
  name=${nb%%=*}; bin=${nb#*=}
  "$bin" --listen 127.0.0.1:18449 --api-listen 127.0.0.1:18450 --rate-limit 0 --log-format json 2>/dev/null &
  pid=$!
  sleep 1
  target/release/loadgen broadcast --url wss://127.0.0.1:18449/b --senders 10 --size 100 --warmup 2s \
    --clients 10000 --rate "$RATE" --duration 10s --drain 10s --ca certs/dev-cert.pem \
    --server-pid "$pid" --out "$OUT/rate$RATE-$name" >/dev/null 2>&1 &
  lg=$!
  for _ in $(seq 1 150); do
    sleep 0.1
    curl -s http://127.0.0.1:18450/metrics | awk '/^ringcast_messages_in_total/{m=$2} /^ringcast_bytes_out_total/{b=$2} END{printf "%d %d\n", m, b}'
  done > "$OUT/rate$RATE-$name-samples.txt"
  wait "$lg"
  echo "== $name"; python3 results/flusher/diag/backlog.py "$OUT/rate$RATE-$name-samples.txt"
  results/summary_line.py "$OUT/rate$RATE-$name"
  kill "$pid"; wait "$pid" || true
done
