#!/usr/bin/env bash
# File streaming over TLS: ringcast --files vs nginx (Debian) serving the same 100 MiB file
# with the same certificate on the same machine, alternating rounds. CLIENTS concurrent curl
# downloads per round; reports throughput and server CPU per GiB (utime + stime of the server's
# processes, from /proc), and the ratio ringcast / nginx.
#
#   results/files-vs-nginx.sh [ROUNDS] [CLIENTS]   (defaults 2, 100; from the repository root;
#                                                   needs Debian nginx and curl)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin ringcast >&2
ROUNDS="${1:-2}"
CLIENTS="${2:-100}"
PORT="${PORT:-18449}"
NGINX_PORT="${NGINX_PORT:-18450}"
KEY="00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
OUT=results/files-vs-nginx
mkdir -p "$OUT" certs
WORK="$(mktemp -d)"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/files" "$WORK/nginx-tmp"
chmod 755 "$WORK" "$WORK/files"  # nginx workers run as www-data
head -c $((100 << 20)) /dev/urandom >"$WORK/files/big.bin"
chmod 644 "$WORK/files/big.bin"
# The dev certificate (made by a first ringcast start if missing).
if [ ! -f certs/dev-cert.pem ]; then
  target/release/ringcast --listen "127.0.0.1:$PORT" --api-listen off --cert-dir certs &
  p=$!; sleep 1; kill "$p"; wait "$p" || true
fi
cat >"$WORK/nginx.conf" <<NGINX
worker_processes $(nproc);
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx-tmp;
  proxy_temp_path $WORK/nginx-tmp;
  fastcgi_temp_path $WORK/nginx-tmp;
  uwsgi_temp_path $WORK/nginx-tmp;
  scgi_temp_path $WORK/nginx-tmp;
  sendfile on;
  server {
    listen 127.0.0.1:$NGINX_PORT ssl;
    ssl_certificate $PWD/certs/dev-cert.pem;
    ssl_certificate_key $PWD/certs/dev-key.pem;
    root $WORK;
  }
}
NGINX
cpu_of() { # pids… → CPU seconds
  local t=0
  for p in "$@"; do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  python3 -c "print($t / $(getconf CLK_TCK))"
}
download() { # url → wall seconds
  local t0 t1
  t0="$(date +%s.%N)"
  seq "$CLIENTS" | xargs -P "$CLIENTS" -I{} curl -sS --fail -o /dev/null --cacert certs/dev-cert.pem "$1"
  t1="$(date +%s.%N)"
  python3 -c "print($t1 - $t0)"
}
{
  echo "# files over TLS: $CLIENTS concurrent downloads of a 100 MiB file, $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r), $(nginx -v 2>&1)"
  echo "round  server    wall_s  GiB_per_s  server_cpu_s  cpu_s_per_GiB"
} >"$OUT/table.txt"
gib=$(python3 -c "print($CLIENTS * 100 / 1024)")
for r in $(seq 1 "$ROUNDS"); do
  echo "=== round $r: ringcast" >&2
  target/release/ringcast --listen "127.0.0.1:$PORT" --api-listen off --cert-dir certs \
    --files "$WORK/files" --url-signing-key "$KEY" --log-format json 2>>target/files-bench-server.log &
  server_pid=$!
  sleep 1
  link="$(target/release/ringcast sign big.bin --ttl 1h --url-signing-key "$KEY")"
  c0="$(cpu_of "$server_pid")"
  wall="$(download "https://localhost:$PORT$link")"
  c1="$(cpu_of "$server_pid")"
  python3 -c "w=$wall; c=$c1-$c0; g=$gib; print(f'{$r:>5}  ringcast  {w:6.2f}  {g/w:9.2f}  {c:12.2f}  {c/g:13.2f}')" >>"$OUT/table.txt"
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""

  echo "=== round $r: nginx" >&2
  nginx -c "$WORK/nginx.conf" -p "$WORK"
  sleep 1
  master="$(cat "$WORK/nginx.pid")"
  pids=("$master" $(pgrep -P "$master"))
  c0="$(cpu_of "${pids[@]}")"
  wall="$(download "https://localhost:$NGINX_PORT/files/big.bin")"
  c1="$(cpu_of "${pids[@]}")"
  python3 -c "w=$wall; c=$c1-$c0; g=$gib; print(f'{$r:>5}  nginx     {w:6.2f}  {g/w:9.2f}  {c:12.2f}  {c/g:13.2f}')" >>"$OUT/table.txt"
  kill "$master"; sleep 0.5
done
cat "$OUT/table.txt"
