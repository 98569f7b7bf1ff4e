#!/usr/bin/env bash
# Load benchmark of routeros-web (release build), all on 127.0.0.1:
#   1. GET /api/v1/status on the API port with a viewer API key, paced at RATE requests/s
#      for DURATION s;
#   2. GET /js/app.js (a UI file) on the UI port, paced the same way;
# while SSE_CLIENTS clients hold /api/v1/stream open the whole time. Prints p50/p99 latency
# per phase, the server's RSS (VmRSS after the load, VmHWM peak), how many status events
# the SSE clients got, and PASS/FAIL against the targets (p99 < 10 ms, RSS < 30 MB).
#
# The load generator is Debian's `wrk` (apt; one thread), paced by a Lua schedule (wrk has
# no fixed-rate mode; the achieved rate is printed and must be within 10 % of RATE). The
# control-socket peer is routeros-web's example `fake_daemon` (router/web/examples, the web
# tests' fake built from the control protocol's types), a stand-in that answers at once with
# canned status: this measures the web server (HTTP, API-key auth, JSON, SSE fan-out, static files),
# not routeros-watchdog. Root is not needed.
#   ci/bench-web.sh                  report only (exit 0 even on FAIL)
#   BENCH_STRICT=1 ci/bench-web.sh   exit 1 on FAIL
# Knobs: RATE=1000 DURATION=10 SSE_CLIENTS=50 CONNECTIONS=10 WEB_BIN=target/release/routeros-web
# FAKE_BIN=target/release/examples/fake_daemon (both set: no cargo build).
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/lib/deps.sh

RATE=${RATE:-1000}
DURATION=${DURATION:-10}
SSE_CLIENTS=${SSE_CLIENTS:-50}
CONNECTIONS=${CONNECTIONS:-10}
P99_TARGET_MS=10
RSS_TARGET_MB=30
start=$(date +%s)

for tool in wrk curl python3; do
  if ! command -v "$tool" >/dev/null; then
    if [[ $(id -u) -eq 0 ]]; then
      ensure_packages wrk curl python3
    else
      echo "bench-web: $tool is needed (apt-get install wrk curl python3)" >&2
      exit 2
    fi
  fi
done

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

if [[ -z ${WEB_BIN:-} || -z ${FAKE_BIN:-} ]]; then
  echo "== building routeros-web and the fake daemon (release)"
  t0=$(date +%s)
  cargo build --release --locked -p routeros-web --bin routeros-web --example fake_daemon
  echo "build: $(( $(date +%s) - t0 )) s"
  WEB_BIN=${WEB_BIN:-target/release/routeros-web}
  FAKE_BIN=${FAKE_BIN:-target/release/examples/fake_daemon}
fi

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
ui_port=$(free_port)
api_port=$(free_port)
api="http://127.0.0.1:$api_port"
ui="http://127.0.0.1:$ui_port"
sock="$work/control.sock"

"$FAKE_BIN" --socket "$sock" &
pids+=($!)
for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done
[[ -S $sock ]] || { echo "fake daemon did not start" >&2; exit 2; }

# All clients come from 127.0.0.1 with one key: lift the per-address and per-key caps
# (64 connections, 8 streams by default) so the benchmark measures the server, not them.
"$WEB_BIN" --listen-ui "127.0.0.1:$ui_port" --listen-api "127.0.0.1:$api_port" \
  --socket "$sock" --data-dir "$work/data" \
  --max-connections-per-ip 1024 --max-streams-per-principal 256 >"$work/web.log" 2>&1 &
web_pid=$!
pids+=("$web_pid")
for _ in $(seq 100); do curl -sf "$api/api/v1/setup" >/dev/null 2>&1 && break; sleep 0.05; done
curl -sf "$api/api/v1/setup" >/dev/null || { cat "$work/web.log" >&2; exit 2; }

# First-boot setup and a viewer API key, the way an operator would do it.
jar="$work/cookies"
origin="http://127.0.0.1:$api_port"
json() { curl -sf -b "$jar" -c "$jar" -H "Origin: $origin" -H 'Content-Type: application/json' "$@"; }
json -d '{"username":"admin","password":"routeros123"}' "$api/api/v1/login" >/dev/null
json -d '{"new_password":"bench-password-1"}' "$api/api/v1/setup/password"
key=$(json -d '{"role":"viewer","label":"bench"}' "$api/api/v1/keys" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
auth="Authorization: Bearer $key"
curl -sf -H "$auth" "$api/api/v1/status" >/dev/null
curl -sf "$ui/js/app.js" >/dev/null

# Pacing: wrk (4.x) has no fixed-rate mode, so a Lua delay() hands out send times on a fixed
# schedule, one slot every 1/RATE s (wall clock through LuaJIT's ffi): a connection waits for
# its slot, so the offered load is RATE/s whatever the answer times are, as long as no more
# than CONNECTIONS answers are outstanding (a slower server lowers the achieved rate, which
# is checked). wrk measures each latency from the send of its request. done() prints what
# the report needs as one JSON line.
cat >"$work/paced.lua" <<EOF
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_usec; } bench_timeval;
           int gettimeofday(bench_timeval *tv, void *tz); ]]
local tv = ffi.new("bench_timeval")
local function now_ms()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) * 1000 + tonumber(tv.tv_usec) / 1000
end
local interval = 1000 / $RATE
local next_at = nil
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
function delay()
  local now = now_ms()
  -- the next free slot; after a stall, at most 100 ms of missed slots are caught up
  next_at = math.max(next_at or now, now - 100) + interval
  local d = next_at - now
  if d <= 0 then return 0 end
  return math.floor(d + 0.5)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests": %d, "duration_us": %d, "non2xx": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
EOF

echo "== $SSE_CLIENTS SSE clients on /api/v1/stream for the whole run"
for i in $(seq "$SSE_CLIENTS"); do
  curl -sN --max-time $((2 * DURATION + 6)) -H "$auth" "$api/api/v1/stream" >"$work/sse.$i" 2>/dev/null &
  pids+=($!)
done
sleep 1

run_wrk() { # name url [auth]
  local name=$1 url=$2
  echo "== $name: GET $url at $RATE req/s for $DURATION s ($CONNECTIONS connections, wrk)"
  BENCH_AUTH=${3:-} wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 2s -s "$work/paced.lua" "$url" \
    >"$work/$name.out" 2>&1 || { cat "$work/$name.out" >&2; exit 2; }
  grep '^BENCH ' "$work/$name.out" | sed 's/^BENCH //' >"$work/$name.json"
}
run_wrk api "$api/api/v1/status" "Bearer $key"
run_wrk ui "$ui/js/app.js"
rss_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$web_pid/status")
hwm_kb=$(awk '/^VmHWM/ {print $2}' "/proc/$web_pid/status")
sleep 4 # let the SSE clients finish

sse_events=0
sse_ok=0
sse_min=$((2 * DURATION))
for i in $(seq "$SSE_CLIENTS"); do
  n=$(grep -c '^event: status' "$work/sse.$i" || true)
  sse_events=$((sse_events + n))
  (( n >= sse_min )) && sse_ok=$((sse_ok + 1))
done

python3 - "$work" "$rss_kb" "$hwm_kb" "$sse_ok" "$SSE_CLIENTS" "$sse_events" "$sse_min" \
  "$RATE" "$DURATION" "$CONNECTIONS" "$P99_TARGET_MS" "$RSS_TARGET_MB" "${BENCH_STRICT:-0}" \
  "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)" "$(( $(date +%s) - start ))" <<'EOF'
import json, os, sys
(work, rss_kb, hwm_kb, sse_ok, sse_n, sse_events, sse_min, rate, duration, conns, p99_target,
 rss_target, strict, load, cpus, elapsed) = sys.argv[1:]
rate, p99_target, rss_target = float(rate), float(p99_target), float(rss_target)
rss, hwm = int(rss_kb) / 1024, int(hwm_kb) / 1024
checks = {}
rows = []
print()
print("routeros-web under load (control socket: the fake_daemon example, a canned stand-in for")
print("routeros-watchdog; HTTP, auth, JSON, SSE and static files are the real server's work)")
print(f"machine: {cpus} CPUs, load average {load} at the end (shared: figures vary with it)")
for name, what in (("api", "GET /api/v1/status (API key)"), ("ui", "GET /js/app.js (UI file)")):
    r = json.load(open(os.path.join(work, f"{name}.json")))
    secs = r["duration_us"] / 1e6
    achieved = r["requests"] / secs
    errors = r["non2xx"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
    p50, p99, mx = r["p50_us"] / 1000, r["p99_us"] / 1000, r["max_us"] / 1000
    print(f"{what}: {r['requests']} requests in {secs:.1f} s = {achieved:.0f} req/s, "
          f"{errors} errors; latency p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {mx:.2f} ms")
    checks[f"{name}: p99 {p99:.2f} ms < {p99_target:g} ms"] = p99 < p99_target
    checks[f"{name}: {achieved:.0f} req/s within 10 % of {rate:g}"] = abs(achieved - rate) <= rate / 10
    checks[f"{name}: no errors ({errors})"] = errors == 0 and r["requests"] > 0
    rows.append((what, f"{achieved:.0f} req/s", p50, p99))
print(f"server memory: VmRSS {rss:.1f} MB after the load, VmHWM {hwm:.1f} MB peak")
print(f"SSE: {sse_n} clients, {sse_events} status events received (>= {sse_min} each expected)")
checks[f"RSS {rss:.1f} MB (peak {hwm:.1f} MB) < {rss_target:g} MB"] = hwm < rss_target
checks[f"{sse_ok}/{sse_n} SSE clients got a status every second"] = int(sse_ok) == int(sse_n)
for name, good in checks.items():
    print(f"{'PASS' if good else 'FAIL'}: {name}")
passed = all(checks.values())
print()
print(f"| routeros-web, {sse_n} SSE clients open, {duration} s per row, wrk paced over {conns} connections | rate | p50 | p99 | target |")
print("|---|---|---|---|---|")
for what, got, p50, p99 in rows:
    print(f"| {what} | {got} | {p50:.2f} ms | {p99:.2f} ms | p99 < {p99_target:g} ms |")
print(f"| Server memory (VmHWM peak) | | | {hwm:.1f} MB | < {rss_target:g} MB |")
print()
print(f"bench-web: {'PASS' if passed else 'FAIL'} ({elapsed} s)")
sys.exit(1 if (not passed and strict == "1") else 0)
EOF
