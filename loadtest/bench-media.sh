#!/usr/bin/env bash
# The live-video benchmark: townhall's relay and Janus's streaming plugin side by side, same
# load, same run, same machine.
#
# One synthetic publisher (VP8 3 × 1100-byte packets at 30 frames/s + Opus 100 bytes every
# 20 ms, a keyframe every 2 s), then N viewers built with webrtc-rs, N = STEPS, each step on a
# freshly started server. townhall gets the stream over WHIP and serves WHEP; Janus gets the
# same stream as plain RTP on a streaming mountpoint and serves viewers over its HTTP API.
# A series stops at the first step with ≥ 1 % loss, a saturated server thread (≥ 95 % of a
# core) or failed viewers. Reports: loadtest/results/media-<time>/, summary table on stdout.
#
#   loadtest/bench-media.sh                      # defaults below
#   STEPS="100 200" DURATION=15 loadtest/bench-media.sh
#   PERF=1 loadtest/bench-media.sh               # also `perf record -g` townhall at each step
#
# Everything listens on 127.0.0.1 with ephemeral ports, except Janus's ICE: Janus 1.1 gathers
# no loopback candidates (ice_enforce_list = "lo" still yields eth0's), so its candidates are
# the host's own address (HOST_IP), which Linux routes through the loopback device as well.
set -euo pipefail
cd "$(dirname "$0")/.."

STEPS=${STEPS:-"100 200 400 800 1200 1600"}
DURATION=${DURATION:-20}  # seconds each step holds every viewer (after the ramp)
SETTLE=${SETTLE:-3}       # seconds after the last join before the measured window starts
RAMP=${RAMP:-50}          # viewers joining per second
MAX_SECONDS=${MAX_SECONDS:-2400}
TARGETS=${TARGETS:-"townhall janus"}
PERF=${PERF:-0}
HOST_IP=${HOST_IP:-$(ip -4 route get 1.1.1.1 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "src") print $(i + 1)}')}
HOST_IP=${HOST_IP:-127.0.0.1}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=loadtest/results/media-$stamp
mkdir -p "$out"
tmp=$(mktemp -d)
pids=()

cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "bench-media: interrupted" >&2; exit 130' INT TERM

# Bounded in time: a watchdog ends the script (and, through the trap, everything it started).
(
  trap 'kill "$nap" 2>/dev/null; exit 0' TERM
  sleep "$MAX_SECONDS" & nap=$!
  wait "$nap" && { echo "bench-media: over $MAX_SECONDS s, stopping" >&2; kill -TERM $$; }
) &
pids+=($!)

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

echo "== building (release)"
cargo build --release -p townhall-server -p townhall-loadtest
bin=target/release

free_udp_port() {
  python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
free_tcp_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stop() { # pid
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# Whether the series goes on after this report: loss < 1 %, no failed viewers, no server
# thread at ≥ 95 % of a core.
verdict() { # report.json → "ok" or the reason to stop
  python3 - "$1" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
w = r.get("steady") or {}
loss = max(w.get("loss_percent", 100), w.get("delivery_loss_percent", 100))
top = max([t[1] for t in w.get("server_threads", [])] or [0])
if not w:
    print("no steady window")
elif r["viewers_failed"] > 0:
    print(f"{r['viewers_failed']} viewers failed")
elif loss >= 1:
    print(f"loss {loss:.2f} %")
elif top >= 0.95:
    print(f"a server thread at {top * 100:.0f} % of a core")
else:
    print("ok")
EOF
}

load() { # common townhall-load media arguments
  echo --publish --duration "$DURATION" --settle "$SETTLE" --ramp "$RAMP"
}

run_townhall() { # viewers
  local n=$1 dir=$tmp/townhall-$1
  mkdir -p "$dir/data"
  cat > "$dir/townhall.toml" <<EOF
[media]
max_sessions_per_ip = 100000
max_viewers = 100000
EOF
  local admin
  admin=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
  TOWNHALL_ADMIN_TOKEN=$admin TOWNHALL_LOG=warn "$bin/townhall" --listen 127.0.0.1:0 \
    --data-dir "$dir/data" --config "$dir/townhall.toml" --durability normal \
    --media-bind-ip 127.0.0.1 --media-udp-port 0 --media-tcp-port 0 \
    > "$dir/stdout" 2> "$dir/stderr" &
  local pid=$!
  pids+=("$pid")
  local url=""
  for _ in $(seq 100); do
    url=$(head -n1 "$dir/stdout" 2>/dev/null | sed -n 's/^townhall listening on \(http:[^ ]*\).*/\1/p')
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || { echo "townhall did not start:"; cat "$dir/stderr"; return 1; }
  local meeting studio
  meeting=$(curl -fsS -X POST "$url/api/meetings" -H "Authorization: Bearer $admin" \
    -H 'Content-Type: application/json' -d '{"title":"bench-media"}')
  studio=$(jq -r '.studio_url | sub(".*#"; "")' <<<"$meeting")
  meeting=$(jq -r .id <<<"$meeting")
  curl -fsS -X POST "$url/api/meetings/$meeting/start" -H "Authorization: Bearer $admin" > /dev/null
  local perf_pid=""
  if [ "$PERF" = 1 ]; then
    ( sleep $((n / RAMP + SETTLE + 2)); exec perf record -F 499 -g -p "$pid" -o "$out/perf-townhall-$n.data" -- sleep 10 ) \
      > /dev/null 2>&1 &
    perf_pid=$!
    pids+=("$perf_pid")
  fi
  echo "== townhall, $n viewers ($url, meeting $meeting, pid $pid)"
  local cmd=("$bin/townhall-load" media --url "$url" --meeting "$meeting" --studio-token "$studio"
    --viewers "$n" $(load) --server-pid "$pid" --json "$out/townhall-$n.json")
  echo "${cmd[*]}" | sed "s/$studio/STUDIO_TOKEN/" > "$out/townhall-$n.cmd"
  "${cmd[@]}" | grep -v '^ *[0-9]*s viewers' | tee "$out/townhall-$n.txt" || true
  [ -n "$perf_pid" ] && wait "$perf_pid" 2>/dev/null
  curl -fsS "$url/metrics" > "$out/townhall-$n.metrics" || true
  stop "$pid"
}

run_janus() { # viewers
  local n=$1 dir=$tmp/janus-$1
  mkdir -p "$dir"
  cp /etc/janus/*.jcfg "$dir/"
  local http_port video_port audio_port
  http_port=$(free_tcp_port)
  video_port=$(free_udp_port)
  audio_port=$(free_udp_port)
  while [ "$audio_port" = "$video_port" ]; do audio_port=$(free_udp_port); done
  local lib=/usr/lib/x86_64-linux-gnu/janus
  list() { (cd "$lib/$1" && ls lib*.so) | grep -v -x "$2" | paste -sd, -; }
  cat > "$dir/janus.jcfg" <<EOF
general: {
	configs_folder = "$dir"
	plugins_folder = "$lib/plugins"
	transports_folder = "$lib/transports"
	events_folder = "$lib/events"
	loggers_folder = "$lib/loggers"
	debug_level = 3
	session_timeout = 60
}
media: {
	rtp_port_range = "20000-60000"
}
nat: {
	ice_enforce_list = "$HOST_IP"
}
plugins: {
	disable = "$(list plugins libjanus_streaming.so)"
}
transports: {
	disable = "$(list transports libjanus_http.so)"
}
loggers: {
	disable = "$(list loggers NONE)"
}
events: {
	broadcast = false
	disable = "$(list events NONE)"
}
EOF
  cat > "$dir/janus.transport.http.jcfg" <<EOF
general: {
	json = "compact"
	base_path = "/janus"
	http = true
	port = $http_port
	ip = "127.0.0.1"
	https = false
}
admin: {
	admin_http = false
}
EOF
  cat > "$dir/janus.plugin.streaming.jcfg" <<EOF
general: {
}
bench: {
	type = "rtp"
	id = 1
	description = "townhall bench"
	media = (
		{ type = "video" mid = "v" label = "video" port = $video_port pt = 96 codec = "vp8" bufferkf = true },
		{ type = "audio" mid = "a" label = "audio" port = $audio_port pt = 111 codec = "opus" }
	)
}
EOF
  janus -F "$dir" -C "$dir/janus.jcfg" > "$dir/stdout" 2>&1 &
  local pid=$!
  pids+=("$pid")
  local janus_url=http://127.0.0.1:$http_port/janus
  for _ in $(seq 100); do curl -fsS "$janus_url/info" > /dev/null 2>&1 && break; sleep 0.1; done
  curl -fsS "$janus_url/info" > /dev/null || { echo "janus did not start:"; tail -20 "$dir/stdout"; return 1; }
  echo "== janus, $n viewers ($janus_url, RTP video :$video_port audio :$audio_port, ICE on $HOST_IP, pid $pid)"
  local cmd=("$bin/townhall-load" media --target janus --janus-url "$janus_url" --mountpoint 1
    --rtp-video "127.0.0.1:$video_port" --rtp-audio "127.0.0.1:$audio_port" --bind-ip "$HOST_IP"
    --viewers "$n" $(load) --server-pid "$pid" --json "$out/janus-$n.json")
  echo "${cmd[*]}" > "$out/janus-$n.cmd"
  "${cmd[@]}" | grep -v '^ *[0-9]*s viewers' | tee "$out/janus-$n.txt" || true
  cp "$dir/stdout" "$out/janus-$n.log"
  stop "$pid"
}

{
  echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr)"
  echo "janus: $(janus --version 2>/dev/null | head -1)"
  echo "commit: $(git rev-parse --short HEAD)"
  echo "steps: $STEPS; duration $DURATION s, settle $SETTLE s, ramp $RAMP/s"
} | tee "$out/machine.txt"

for target in $TARGETS; do
  for n in $STEPS; do
    "run_$target" "$n"
    why=$(verdict "$out/$target-$n.json" 2>/dev/null || echo "no report")
    echo "-- $target $n viewers: $why"
    [ "$why" = ok ] || break
  done
done

echo
python3 - "$out" <<'EOF' | tee "$out/summary.md"
import glob, json, os, sys
out = sys.argv[1]
rows = []
for path in glob.glob(os.path.join(out, "*.json")):
    r = json.load(open(path))
    w = r.get("steady") or {}
    target = os.path.basename(path).split("-")[0]
    rows.append((target, r["viewers_requested"], r, w))
rows.sort(key=lambda x: (x[0] != "townhall", x[1]))
f = lambda v, fmt: "–" if v is None else format(v, fmt)
print("| server | viewers | packets/s delivered | server CPU (cores) | CPU µs/packet delivered | CPU µs/forwarded (metric count) | RSS/viewer KB | loss % (seq / delivery) | jitter ms mean | TTFF p50 / p99 ms | busiest server thread | generator CPU (cores) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for target, n, r, w in rows:
    top = (w.get("server_threads") or [["–", 0]])[0]
    rss = w.get("rss_per_viewer_bytes")
    ttff = r["time_to_first_frame"]
    print(f"| {target} | {r['viewers_connected']}/{n} | {f(w.get('packets_per_second'), '.0f')} | {f(w.get('server_cpu_cores'), '.2f')} "
          f"| {f(w.get('cpu_us_per_received_packet'), '.1f')} | {f(w.get('cpu_us_per_forwarded_packet'), '.1f')} "
          f"| {f(None if rss is None else rss / 1e3, '.0f')} | {f(w.get('loss_percent'), '.2f')} / {f(w.get('delivery_loss_percent'), '.2f')} "
          f"| {r['jitter_ms_mean']:.2f} | {f(ttff.get('p50_ms'), '.0f')} / {f(ttff.get('p99_ms'), '.0f')} "
          f"| {top[0].split('/')[0]} {top[1] * 100:.0f} % | {f(w.get('generator_cpu_cores'), '.2f')} |")
EOF
echo "reports: $out"
