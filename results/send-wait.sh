#!/usr/bin/env bash
# One broadcast run with the server's send-wait and send-flight histograms read at its end: how much of loadgen's
# latency is the server's own queueing (a connection's oldest unsent frame waiting for its send).
#
#   results/send-wait.sh OUT [loadgen broadcast flags...]     (from the repository root)
#   e.g. results/send-wait.sh results/saturated-tail/send-wait-b10k100 --clients 10000 --rate 100 --duration 10s --drain 10s
#
# Prints loadgen's latency lines and the send-wait and send-flight percentiles (interpolated
# within the histograms' buckets); OUT gets loadgen's files and the server's /metrics as metrics.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$1; shift
PORT="${PORT:-18449}"
API_LISTEN="127.0.0.1:${API_PORT:-18450}"
# shellcheck source=results/lib.sh
source results/lib.sh
SERVER_LOG=target/send-wait-server.log
SERVER_ARGS=(--rate-limit 0)
trap 'stop_server' EXIT
mkdir -p "$OUT"
start_server
target/release/loadgen broadcast --url "wss://127.0.0.1:$PORT/b" --senders 10 --size 100 --warmup 2s \
  "$@" --ca certs/dev-cert.pem --server-pid "$server_pid" --out "$OUT" >"$OUT/loadgen.txt" 2>&1 \
  || echo "(loadgen exit $?)" >&2
curl -s "http://$API_LISTEN/metrics" >"$OUT/metrics.txt"
stop_server
grep -E "^latency|receivers|behind plan|^server " "$OUT/loadgen.txt"
python3 - "$OUT/metrics.txt" <<'P'
import re, sys
text = open(sys.argv[1]).read()
for name, what in (("send_wait", "send wait  "), ("send_flight", "send flight")):
    buckets = [(float(le), int(c)) for le, c in
               re.findall(r'ringcast_%s_seconds_bucket\{le="([^"]+)"\} (\d+)' % name, text)]
    n = buckets[-1][1]
    def quantile(p):
        target, lo, below = p * n, 0.0, 0
        for le, c in buckets:
            if c >= target:
                return lo + (le - lo) * (target - below) / max(c - below, 1)
            lo, below = le, c
    ms = [quantile(p) * 1e3 for p in (0.5, 0.9, 0.99)]
    print(f"{what}  p50 {ms[0]:.1f} ms  p90 {ms[1]:.1f} ms  p99 {ms[2]:.1f} ms  (n={n} sends, within buckets)")
P
