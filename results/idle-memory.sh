#!/usr/bin/env bash
# Server memory per idle wss connection: this build against a baseline build, alternating
# rounds, a fresh server per run, plus this build over ws:// (--plaintext) to show what TLS costs.
#
#   results/idle-memory.sh [ROUNDS] [CLIENTS] [BASELINE_REV]   (defaults 2, 10000, HEAD~1; from the repo root)
#   BASELINE_BIN=path  uses an already built baseline server instead of building BASELINE_REV.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins >&2
ROUNDS="${1:-2}"
CLIENTS="${2:-10000}"
REV="${3:-HEAD~1}"
PORT="${PORT:-18446}"
OUT=results/idle-memory
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
SERVER_LOG=target/idle-memory-server.log
trap 'stop_server' EXIT

one() { # name, binary, scheme, server args...
  local name=$1 bin=$2 scheme=$3; shift 3
  echo "=== $name" >&2
  SERVER_BIN=$bin
  SERVER_ARGS=(--rate-limit 0 "$@")
  start_server
  target/release/loadgen idle --url "$scheme://127.0.0.1:$PORT/idle" --clients "$CLIENTS" --hold 5s \
    --ca certs/dev-cert.pem --server-pid "$server_pid" --out "$OUT/$name" >&2 \
    || echo "($name: loadgen exit $?)" >&2
  stop_server
}
for r in $(seq 1 "$ROUNDS"); do
  one "baseline-r$r" "$BASELINE_BIN" wss
  one "new-r$r" "$NEW_BIN" wss
  one "plaintext-r$r" "$NEW_BIN" ws --plaintext
done
# One line per run: bytes of server RSS per idle connection.
for f in "$OUT"/*/summary.json; do
  python3 - "$f" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
n = d["counts"]["connected"]
s = d["server"]
print(f'{d["name"]:<16} connected {n:>6}  server RSS {s["rss_start_kib"]:>7} -> {s["rss_end_kib"]:>7} KiB  '
      f'{(s["rss_end_kib"] - s["rss_start_kib"]) * 1024 / n:8.0f} B per connection')
PY
done
