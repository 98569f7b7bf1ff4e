#!/usr/bin/env bash
# Load test of routeros-web (release build) against a fake daemon (ci/lib/fake_daemon.py),
# all on 127.0.0.1: GET /api/v1/status with an API key at RATE requests/s for DURATION s
# (oha), while SSE_CLIENTS clients hold /api/v1/stream open. Prints p50/p99 latency, the
# server's RSS (VmRSS now, VmHWM peak) and PASS/FAIL against the targets (p99 < 10 ms,
# RSS < 30 MB), then a markdown block for the README.
#   ci/bench-web.sh                  report only (exit 0 even on FAIL)
#   BENCH_STRICT=1 ci/bench-web.sh   exit 1 on FAIL
# Knobs: RATE=1000 DURATION=10 SSE_CLIENTS=50 CONNECTIONS=20
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${RATE:-1000}
DURATION=${DURATION:-10}
SSE_CLIENTS=${SSE_CLIENTS:-50}
CONNECTIONS=${CONNECTIONS:-20}
P99_TARGET_MS=10
RSS_TARGET_MB=30
OHA=target/tools/bin/oha

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for tool in python3 curl; do
  command -v "$tool" >/dev/null || { echo "bench-web: $tool is needed" >&2; exit 2; }
done

if [[ ! -x $OHA ]]; then
  echo "== installing oha into target/tools"
  t0=$(date +%s)
  cargo install oha --locked --root target/tools
  echo "oha installed in $(( $(date +%s) - t0 )) s"
fi

echo "== building routeros-web (release)"
cargo build --release --locked -p routeros --bin routeros-web

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
ui_port=$(free_port)
api_port=$(free_port)
api="http://127.0.0.1:$api_port"
sock="$work/control.sock"

python3 ci/lib/fake_daemon.py --socket "$sock" &
pids+=($!)
for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done
[[ -S $sock ]] || { echo "fake daemon did not start" >&2; exit 2; }

target/release/routeros-web --listen-ui "127.0.0.1:$ui_port" --listen-api "127.0.0.1:$api_port" \
  --socket "$sock" --data-dir "$work/data" 2>"$work/web.log" &
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

echo "== $SSE_CLIENTS SSE clients + GET /api/v1/status at $RATE req/s for $DURATION s"
for i in $(seq "$SSE_CLIENTS"); do
  curl -sN --max-time $((DURATION + 3)) -H "$auth" "$api/api/v1/stream" >"$work/sse.$i" 2>/dev/null &
  pids+=($!)
done
sleep 1
"$OHA" -z "${DURATION}s" -q "$RATE" -c "$CONNECTIONS" --no-tui --output-format json \
  -H "$auth" "$api/api/v1/status" >"$work/oha.json"
rss_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$web_pid/status")
hwm_kb=$(awk '/^VmHWM/ {print $2}' "/proc/$web_pid/status")
sleep 3 # let the SSE clients finish

sse_events=0
sse_ok=0
for i in $(seq "$SSE_CLIENTS"); do
  n=$(grep -c '^event: status' "$work/sse.$i" || true)
  sse_events=$((sse_events + n))
  (( n >= DURATION / 2 )) && sse_ok=$((sse_ok + 1))
done

python3 - "$work/oha.json" "$rss_kb" "$hwm_kb" "$sse_ok" "$SSE_CLIENTS" "$sse_events" \
  "$RATE" "$DURATION" "$P99_TARGET_MS" "$RSS_TARGET_MB" "${BENCH_STRICT:-0}" <<'EOF'
import json, sys
(path, rss_kb, hwm_kb, sse_ok, sse_n, sse_events, rate, duration, p99_target, rss_target,
 strict) = sys.argv[1:]
r = json.load(open(path))
s = r["summary"]
pct = r.get("latencyPercentiles", {})
p50 = pct["p50"] * 1000
p99 = pct["p99"] * 1000
codes = r.get("statusCodeDistribution", {})
total = sum(codes.values())
ok = codes.get("200", 0)
rss = int(rss_kb) / 1024
hwm = int(hwm_kb) / 1024
checks = {
    f"p99 {p99:.2f} ms < {p99_target} ms": p99 < float(p99_target),
    f"RSS {rss:.1f} MB < {rss_target} MB": rss < float(rss_target),
    f"all {total} requests answered 200": total > 0 and ok == total,
    f"{sse_ok}/{sse_n} SSE clients got a status every ~2 s": int(sse_ok) == int(sse_n),
}
print(f"requests: {total} ({ok} x 200), {s['requestsPerSec']:.0f} req/s")
print(f"latency: p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {s['slowest'] * 1000:.2f} ms")
print(f"server memory: VmRSS {rss:.1f} MB, VmHWM {hwm:.1f} MB")
print(f"SSE: {sse_n} clients, {sse_events} status events received")
for name, good in checks.items():
    print(f"{'PASS' if good else 'FAIL'}: {name}")
passed = all(checks.values())
print()
print("| routeros-web benchmark | result | target |")
print("|---|---|---|")
print(f"| GET /api/v1/status at {rate} req/s for {duration} s, API key, {sse_n} SSE clients | "
      f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, {ok}/{total} OK | p99 < {p99_target} ms |")
print(f"| Server memory under that load | VmRSS {rss:.1f} MB (peak {hwm:.1f} MB) | < {rss_target} MB |")
print()
print("bench-web: " + ("PASS" if passed else "FAIL"))
sys.exit(1 if (not passed and strict == "1") else 0)
EOF
