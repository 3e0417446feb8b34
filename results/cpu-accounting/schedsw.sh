#!/usr/bin/env bash
# How the worker threads (and loadgen's) leave the CPU over 5 s of a b1k run, per build, two
# alternating rounds (perf sched:sched_switch, all CPUs): R+ preempted, R yielded, S slept.
#   results/cpu-accounting/schedsw.sh OUT NAME=BINARY ...
set -euo pipefail
OUT=${1:?out dir}; shift; mkdir -p "$OUT"
cd "$(dirname "$0")/../.."
PORT=18464
source results/lib.sh
SERVER_ARGS=(--rate-limit 0); SERVER_LOG=target/schedsw-server.log
trap stop_server EXIT
for r in 1 2; do
for nb in "$@"; do
  name=${nb%%=*}; SERVER_BIN=${nb#*=}
  start_server
  target/release/loadgen broadcast --url "wss://127.0.0.1:$PORT/b" --senders 10 --size 100 --warmup 2s --clients 1000 --rate 100 --duration 12s --ca certs/dev-cert.pem --server-pid "$server_pid" --out $OUT/$name-r$r >/dev/null 2>&1 &
  lg=$!
  sleep 6
  perf record -e sched:sched_switch -a -o $OUT/$name-r$r.data -- sleep 5 2>/dev/null >/dev/null
  wait $lg
  stop_server
  perf script -i $OUT/$name-r$r.data 2>/dev/null | grep -o "prev_comm=ringcast-w[0-9]* .*prev_state=[A-Z+]*" | awk '{print $NF}' | sort | uniq -c | tr '\n' ' ' | sed "s/^/$name-r$r worker switches: /"; echo
  perf script -i $OUT/$name-r$r.data 2>/dev/null | grep -o "prev_comm=loadgen[^ ]* .*prev_state=[A-Z+]*" | awk '{print $NF}' | sort | uniq -c | tr '\n' ' ' | sed "s/^/$name-r$r loadgen switches: /"; echo
  results/summary_line.py $OUT/$name-r$r | cut -c1-100
done; done
