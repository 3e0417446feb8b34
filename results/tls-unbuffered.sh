#!/usr/bin/env bash
# This build's TLS against a baseline build (by default the commit before), alternating rounds,
# a fresh server per run: server memory per idle wss connection (plus this build over ws:// to
# show what TLS costs), server CPU per delivery in two broadcasts, and per new connection.
# Used for rustls' unbuffered API (results/tls-unbuffered.md) and our TLS 1.3 record layer
# (results/tls-own-records.md), both against the buffered rustls build.
#
#   results/tls-unbuffered.sh [ROUNDS] [BASELINE_REV]   (defaults 2, HEAD~1; from the repo root)
#   BASELINE_BIN=path  uses an already built baseline server instead of building BASELINE_REV.
#   OUT=dir  where the runs go (default results/tls-unbuffered);
#   SCENARIOS="idle b1k b10k connect"  which ones to run (default: all four).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins >&2
ROUNDS="${1:-2}"
REV="${2:-HEAD~1}"
PORT="${PORT:-18446}"
SCENARIOS=" ${SCENARIOS:-idle b1k b10k connect} "
OUT="${OUT:-results/tls-unbuffered}"
mkdir -p "$OUT" certs
if [ -z "${BASELINE_BIN:-}" ]; then
  rm -rf target/baseline-src
  git worktree add --force --detach target/baseline-src "$REV" >&2
  (cd target/baseline-src && CARGO_TARGET_DIR=../baseline cargo build --release --bin ringcast >&2)
  git worktree remove --force target/baseline-src
  BASELINE_BIN=target/baseline/release/ringcast
fi
NEW_BIN=target/release/ringcast

# shellcheck source=results/lib.sh
source results/lib.sh
SERVER_LOG=target/tls-unbuffered-server.log
trap 'stop_server' EXIT

one() { # name, binary, scheme, loadgen mode and args... (the URL is added)
  local name=$1 bin=$2 scheme=$3 mode=$4; shift 4
  local extra=()
  [ "$scheme" = ws ] && extra=(--plaintext)
  echo "=== $name" >&2
  SERVER_BIN=$bin
  SERVER_ARGS=(--rate-limit 0 "${extra[@]}")
  start_server
  target/release/loadgen "$mode" --url "$scheme://127.0.0.1:$PORT/$mode" "$@" \
    --ca certs/dev-cert.pem --server-pid "$server_pid" --out "$OUT/$name" >&2 \
    || echo "($name: loadgen exit $?)" >&2
  stop_server
}
for r in $(seq 1 "$ROUNDS"); do
  for v in baseline new; do
    bin=$BASELINE_BIN; [ $v = new ] && bin=$NEW_BIN
    case $SCENARIOS in *" idle "*) one "idle-$v-r$r" "$bin" wss idle --clients 10000 --hold 5s ;; esac
    case $SCENARIOS in *" b1k "*) one "b1k-$v-r$r" "$bin" wss broadcast --clients 1000 --senders 10 --rate 100 --size 100 --warmup 2s --duration 15s ;; esac
    case $SCENARIOS in *" b10k "*) one "b10k-$v-r$r" "$bin" wss broadcast --clients 10000 --senders 10 --rate 10 --size 100 --warmup 2s --duration 15s ;; esac
    case $SCENARIOS in *" connect "*) one "connect-$v-r$r" "$bin" wss connect --clients 5000 --connect-rate 2000 ;; esac
  done
  case $SCENARIOS in *" idle "*) one "idle-plaintext-r$r" "$NEW_BIN" ws idle --clients 10000 --hold 5s ;; esac
done
python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
for name in sorted(os.listdir(out)):
    f = os.path.join(out, name, "summary.json")
    if not os.path.exists(f):
        continue
    d = json.load(open(f))
    s, c = d["server"], d["counts"]
    if name.startswith("connect"):
        h = d["handshake_us"]
        print(f'{name:<20} connected {c["connected"]:>6}  server cpu {s["cpu_s"] * 1e6 / c["connected"]:6.1f} µs per connection '
              f'(user {s["user_s"] * 1e6 / c["connected"]:6.1f})  handshake p50 {h["p50"] / 1000:5.2f} ms p99 {h["p99"] / 1000:5.2f} ms')
    elif name.startswith("idle"):
        print(f'{name:<20} connected {c["connected"]:>6}  server RSS at the end {s["rss_end_kib"]:>7} KiB  '
              f'{(s["rss_end_kib"] - s["rss_start_kib"]) * 1024 / c["connected"]:7.0f} B per connection (growth)')
    else:
        print(f'{name:<20} delivered {c["delivered"]:>8} lost {c["lost"]}  server cpu {s["cpu_us_per_delivered"]:5.2f} µs/delivery '
              f'(user {s["user_us_per_delivered"]:4.2f})  p99 {d["latency_us"]["p99"]/1000:7.2f} ms  '
              f'behind plan p99 {d["schedule_lag_us"]["p99"]/1000:6.2f} ms')
PY
