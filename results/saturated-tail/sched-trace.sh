#!/usr/bin/env bash
# One saturated broadcast (10,000 × 100 msg/s, 100-ms timeline) with `perf record -e
# sched:sched_switch -a` over 5 s of it (CLOCK_MONOTONIC; the offset to Unix time in
# mono-offset.txt); then: results/saturated-tail/sched_by_step.py OUT > OUT/by-step.txt
#   results/saturated-tail/sched-trace.sh OUT
set -euo pipefail
cd "$(dirname "$0")/../.."
PORT=18465
source results/lib.sh
SERVER_ARGS=(--rate-limit 0); SERVER_LOG=target/trace-server.log
trap stop_server EXIT
OUT=${1:?out dir}; mkdir -p "$OUT"
start_server
target/release/loadgen broadcast --url "wss://127.0.0.1:$PORT/b" --senders 10 --size 100 --warmup 2s --clients 10000 --rate 100 --duration 10s --drain 10s --timeline-step 100ms --ca certs/dev-cert.pem --server-pid "$server_pid" --out $OUT/run >/dev/null 2>&1 &
lg=$!
sleep 7
python3 -c "import time;print(time.time()-time.clock_gettime(time.CLOCK_MONOTONIC))" > $OUT/mono-offset.txt; perf record -e sched:sched_switch -a -k CLOCK_MONOTONIC -o $OUT/sw.data -- sleep 5 2>/dev/null >/dev/null
wait $lg
stop_server
perf script -i $OUT/sw.data -F cpu,time,event,trace 2>/dev/null > $OUT/sw.txt && rm $OUT/sw.data
wc -l $OUT/sw.txt
results/summary_line.py $OUT/run
