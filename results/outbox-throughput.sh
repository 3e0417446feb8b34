#!/usr/bin/env bash
# Outbox events per second, end to end: N rows inserted in one transaction into a throw-away
# PostgreSQL (fsync off: this measures ringcast's consumer, not the disk), applied by ringcast
# (--outbox, batch sizes 100 and 1000), received by a centrifuge-python subscriber. Reports the
# time until every row is marked processed (ringcast's apply rate) and until the subscriber has
# all N (end to end, the Python SDK included).
#
#   results/outbox-throughput.sh [N]     (default 20000; from the repository root; needs
#                                         Debian postgresql and the .venv of scripts/test)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin ringcast >&2
N="${1:-20000}"
PORT="${PORT:-18448}"
API="127.0.0.1:${API_PORT:-18008}"
PGPORT="${PGPORT:-18543}"
SECRET="outbox-bench-secret-outbox-bench-secret"
OUT=results/outbox-throughput
mkdir -p "$OUT" certs
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
PGDIR="$(mktemp -d)"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$PGDIR"
CFG="$PGDIR/ringcast.toml"
printf '[[channel.namespaces]]\nname = "orders"\nallow_subscribe_for_client = true\n' >"$CFG"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }
  as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$PGDIR"
}
trap cleanup EXIT
as_pg "$PGBIN/initdb" -D "$PGDIR/data" -A trust -U ringcast --no-sync >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/pg.log" -w \
  -o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
DB="postgres://ringcast@127.0.0.1:$PGPORT/postgres"
sql() { psql -q -t -A -h 127.0.0.1 -p "$PGPORT" -U ringcast -d postgres -c "$1"; }
target/release/ringcast outbox-init --outbox "$DB" >&2
now() { date +%s.%N; }
{
  echo "# outbox throughput, $N rows in one INSERT, $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r)"
  echo "batch  apply_s  apply_rows_per_s  e2e_s  e2e_events_per_s  received"
} >"$OUT/table.txt"
for batch in 100 1000; do
  echo "=== batch $batch" >&2
  sql "TRUNCATE ringcast_outbox"
  target/release/ringcast --listen "127.0.0.1:$PORT" --api-listen "$API" --cert-dir certs \
    --config "$CFG" --token-hmac-secret "$SECRET" --outbox "$DB" --outbox-batch "$batch" \
    --log-format json 2>>target/outbox-bench-server.log &
  server_pid=$!
  sleep 1
  exec 3< <(RINGCAST_URL="wss://localhost:$PORT/connection/websocket" RINGCAST_SECRET="$SECRET" \
    RINGCAST_CA=certs/dev-cert.pem RINGCAST_CHANNEL=orders:o RINGCAST_COUNT="$N" RINGCAST_WAIT=120 \
    .venv/bin/python tests/sdk/py_outbox.py)
  read -r ready <&3
  [ "$ready" = ready ] || { echo "subscriber not ready: $ready" >&2; exit 1; }
  t0="$(now)"
  sql "INSERT INTO ringcast_outbox (method, payload) SELECT 'publish', jsonb_build_object('channel','orders:o','data',jsonb_build_object('n',g)) FROM generate_series(0, $N - 1) g"
  while [ "$(sql "SELECT count(*) FROM ringcast_outbox WHERE processed_at IS NULL")" != 0 ]; do sleep 0.02; done
  t1="$(now)"
  read -r got <&3
  t2="$(now)"
  exec 3<&-
  received="$(python3 -c "import json,sys; print(len(json.loads(sys.argv[1])))" "$got")"
  python3 - "$batch" "$N" "$t0" "$t1" "$t2" "$received" >>"$OUT/table.txt" <<'PY'
import sys
b, n, t0, t1, t2, got = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:6]), int(sys.argv[6])
print(f"{b:>5}  {t1-t0:7.2f}  {n/(t1-t0):16.0f}  {t2-t0:5.2f}  {n/(t2-t0):16.0f}  {got}")
PY
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
done
cat "$OUT/table.txt"
