# Shared by the benchmark scripts in results/ (sourced, not run): one fresh release server per
# run, stopped by PID. Set SERVER_ARGS (array) and SERVER_LOG before start_server; the server API
# is off unless API_LISTEN is set (an address); SERVER_BIN picks another server binary.
# run_loadgen also needs SECRET (token secret) and OUT (results directory).
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; server_pid=""; fi
}
start_server() {
  "${SERVER_BIN:-target/release/ringcast}" --listen "127.0.0.1:$PORT" --api-listen "${API_LISTEN:-off}" "${SERVER_ARGS[@]}" --log-format json 2>>"$SERVER_LOG" &
  server_pid=$!
  wait_port "server"
}
wait_port() { # what (for the error): waits up to 5 s until 127.0.0.1:$PORT accepts
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "$1 did not start" >&2; exit 1
}
run_loadgen() { # name, loadgen args...: a fresh server, one loadgen run into $OUT/name, stopped
  local name=$1; shift
  echo "=== $name: loadgen $*" >&2
  start_server
  target/release/loadgen "$@" --ca certs/dev-cert.pem --token-hmac-secret "$SECRET" \
    --server-pid "$server_pid" --out "$OUT/$name" || echo "($name: loadgen exit $?)" >&2
  stop_server
}
bench_config() { # extra TOML for [channel.without_namespace]: writes the client-protocol bench
  # configuration (no command rate limit; channels without namespace open to clients) to a
  # temporary file and prints its path
  local f
  f="$(mktemp --suffix .toml)"
  printf '[client]\ncommand_rate_limit = 0\n[channel.without_namespace]\nallow_subscribe_for_client = true\nallow_publish_for_client = true\n%s\n' "${1:-}" >"$f"
  echo "$f"
}
