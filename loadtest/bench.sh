#!/usr/bin/env bash
# townhall chat benchmark: builds release, starts townhall (and the Socket.IO peer) on loopback
# with temp data dirs, runs the scenarios of issue 4 with townhall-load, and writes JSON reports,
# SVG plots and a Markdown summary under loadtest/results/<timestamp>/. Every process it starts
# is stopped on exit; every run is bounded by `timeout`.
#
#   loadtest/bench.sh [SCENARIO...]
#
# Scenarios: meeting stress scaling slow socketio (= the peer at the same steps), all (default),
# chat-quick (1,000 citizens, 10 s, both targets: a smoke run).
# Environment: DURATION (load phase per run, default 30s), CITIZENS (default 10000),
# REDIS_URL (default redis://127.0.0.1:6379), RAMP (connections/s, default 2000).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STAMP=$(date -u +%Y%m%d-%H%M%S)
RESULTS="$ROOT/loadtest/results/$STAMP"
DURATION=${DURATION:-30s}
CITIZENS=${CITIZENS:-10000}
RAMP=${RAMP:-2000}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
ADMIN_TOKEN="bench-admin-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
# The largest scaling step: the container's hard open-files limit caps one process's sockets.
MAX_CONN=$(( $(ulimit -Hn) - 500 ))

TMP=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ulimit -n "$(ulimit -Hn)"
mkdir -p "$RESULTS"
echo "results: $RESULTS"

cargo build --release -p townhall-server -p townhall-loadtest --manifest-path "$ROOT/Cargo.toml"
TOWNHALL="$ROOT/target/release/townhall"
LOAD="$ROOT/target/release/townhall-load"

# Waits up to 30 s for "<name> listening on http://…" as the first line of $1; prints the URL.
wait_url() {
  local log=$1 url=""
  for _ in $(seq 300); do
    url=$(head -1 "$log" 2>/dev/null | grep -o 'http://[0-9.:]*' || true)
    [[ -n "$url" ]] && { echo "$url"; return 0; }
    sleep 0.1
  done
  echo "server did not start; its log:" >&2
  cat "$log" "$log.err" >&2 || true
  return 1
}

# A fresh townhall on an ephemeral loopback port with a temp data dir and per-IP limits lifted
# (the generator's connections share a few 127.0.0.x addresses). Durability stays `full`.
start_townhall() {
  local dir="$TMP/townhall-$RANDOM"
  mkdir -p "$dir"
  cat > "$dir/townhall.toml" <<TOML
listen = "127.0.0.1:0"
data_dir = "$dir/data"
admin_token = "$ADMIN_TOKEN"
log_format = "json"

[hub]
max_connections_per_ip = 50000
commands_per_sec = 1000.0
command_burst = 1000
frames_per_sec = 1000.0
frame_burst = 1000
ip_commands_per_sec = 1000000.0
ip_command_burst = 1000000
people_per_address = 0
address_questions_per_min = 0
address_comments_per_min = 0
address_votes_per_min = 0
address_renames_per_min = 0

[media]
enabled = false
TOML
  TOWNHALL_LOG=warn "$TOWNHALL" --config "$dir/townhall.toml" > "$dir/out.log" 2> "$dir/out.log.err" &
  SERVER_PID=$!
  SERVER_URL=$(wait_url "$dir/out.log")
}

start_socketio() {
  local peer="$ROOT/loadtest/peers/socketio" log="$TMP/socketio-$RANDOM.log"
  [[ -d "$peer/node_modules" ]] || (cd "$peer" && npm ci --no-audit --no-fund)
  PORT=0 node "$peer/server.js" > "$log" 2> "$log.err" &
  SERVER_PID=$!
  SERVER_URL=$(wait_url "$log")
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

# run NAME TARGET LIMIT_SECONDS ARGS...: one bounded townhall-load run against a fresh server.
run() {
  local name=$1 target=$2 limit=$3
  shift 3
  if [[ $target == townhall ]]; then start_townhall; else start_socketio; fi
  local auth=()
  [[ $target == townhall ]] && auth=(--admin-token "$ADMIN_TOKEN")
  echo "── $name ($target at $SERVER_URL)"
  timeout --signal=INT --kill-after=15 "$limit" "$LOAD" chat --target "$target" --url "$SERVER_URL" \
    "${auth[@]}" --server-pid "$SERVER_PID" --ramp-rate "$RAMP" \
    --json "$RESULTS/$name.json" --plot "$RESULTS/$name.svg" "$@" 2> "$RESULTS/$name.progress" \
    | tee "$RESULTS/$name.txt" || echo "!! $name failed or timed out (see $RESULTS/$name.progress)"
  stop_server
}

secs() { local d=${1%s}; echo "${d%m}"; }
LIMIT=$(( $(secs "$DURATION") + 120 ))
REAL=(--ask-rate 2 --vote-rate 20 --comment-rate 10 --moderators 3)
# Stress: comments only (every comment reaches every citizen, on both targets alike), doubling
# every 10 s from 10/s, until a step's p99 passes 100 ms.
STRESS=(--ask-rate 0 --vote-rate 0 --comment-rate 10 --moderators 0 --step 10s --step-factor 2
  --duration 80s --stop-p99-ms 100)

meeting()  { run "meeting-townhall-$CITIZENS" townhall "$LIMIT" --citizens "$CITIZENS" "${REAL[@]}" --duration "$DURATION"; }
slow()     { run "slow-townhall-$CITIZENS" townhall "$LIMIT" --citizens "$CITIZENS" "${REAL[@]}" --duration "$DURATION" --slow-percent 1; }
stress()   { run "stress-townhall-$CITIZENS" townhall 300 --citizens "$CITIZENS" "${STRESS[@]}"; }
scaling_of() {
  local target=$1
  for n in 1000 2000 5000 10000 20000; do
    (( n > MAX_CONN )) && n=$MAX_CONN
    run "scaling-$target-$n" "$target" "$LIMIT" --citizens "$n" "${REAL[@]}" --duration 20s
  done
}
scaling()  { scaling_of townhall; }
socketio() {
  run "meeting-socketio-$CITIZENS" socketio "$LIMIT" --citizens "$CITIZENS" "${REAL[@]}" --duration "$DURATION"
  run "stress-socketio-$CITIZENS" socketio 300 --citizens "$CITIZENS" "${STRESS[@]}"
  scaling_of socketio
}
chat_quick() {
  run quick-townhall townhall 120 --citizens 1000 "${REAL[@]}" --duration 10s
  run quick-socketio socketio 120 --citizens 1000 "${REAL[@]}" --duration 10s
}

[[ $# -eq 0 ]] && set -- all
for scenario in "$@"; do
  case $scenario in
    all) meeting; slow; stress; scaling; socketio ;;
    meeting|slow|stress|scaling|socketio) $scenario ;;
    chat-quick) chat_quick ;;
    *) echo "unknown scenario $scenario (meeting stress scaling slow socketio all chat-quick)" >&2; exit 64 ;;
  esac
done

shopt -s nullglob
reports=("$RESULTS"/*.json)
if (( ${#reports[@]} )); then
  "$LOAD" summarize --scaling-plot "$RESULTS/scaling.svg" "${reports[@]}" | tee "$RESULTS/summary.md"
fi
echo "results: $RESULTS"
