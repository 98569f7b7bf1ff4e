#!/usr/bin/env bash
# Reliability and security suite (issue #10), on a namespace lab (ci/lab.sh), as root:
#   scan     full TCP + UDP port scan (nmap) of the router's WAN addresses from each ISP,
#            IPv4 and IPv6 (link-local and global), with decoy listeners on every address of
#            the router (a positive control from the LAN proves they answer): 0 open.
#   kill9    kill -9 of the daemon under 16 long-lived TCP flows: 0 flows lost while it is
#            gone and after it is back; it adopts the kernel state (marks and rules unchanged).
#   exhaust  1,100 idle/slowloris connections to the web UI from one LAN host, 2,000 idle
#            connections to the control socket and a 300 MiB line on it, all at once: the UI
#            and API answer another LAN host, the daemon answers --status, its memory stays
#            small, routing and health checks go on (no WAN declared down).
#   api      schemathesis (PyPI) against the running web server from its own OpenAPI
#            document, bounded: 0 server errors, 0 schema violations.
#   props    the proptest properties of the config parser and the control-request parser,
#            with more cases than the unit-test run (REL_PROPTEST_CASES).
#
#   sudo ci/test-reliability.sh [--stages scan,kill9,exhaust,api,props]
# Knobs: REL_PREFIX [rel]  REL_API_EXAMPLES [50] examples per API operation
#        REL_API_SECONDS [300] schemathesis time limit  REL_SCHEMATHESIS [4.32.5] its version
#        REL_PROPTEST_CASES [5000]  REL_OUT [new /tmp/reliability.XXXXXX]
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/lib/deps.sh
source ci/lib/lab-common.sh

stages=scan,kill9,exhaust,api,props
while (($#)); do
  case $1 in
    --stages) stages=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
has_stage() { [[ ,$stages, == *,$1,* ]]; }

require_root
ensure_packages nftables iproute2 conntrack iperf3 socat python3 python3-venv procps nmap
ensure_rust

REL_PREFIX=${REL_PREFIX:-rel}
REL_API_EXAMPLES=${REL_API_EXAMPLES:-50}
REL_API_SECONDS=${REL_API_SECONDS:-300}
REL_SCHEMATHESIS=${REL_SCHEMATHESIS:-4.32.5}
REL_PROPTEST_CASES=${REL_PROPTEST_CASES:-5000}
REL_OUT=${REL_OUT:-$(mktemp -d /tmp/reliability.XXXXXX)}
PY=python3
REL=ci/lib/reliability.py
PROBE=ci/lib/udp_probe.py
P=$REL_PREFIX
LAB_DIR=/run/routeros-lab/$P
SOCK=$LAB_DIR/control.sock
WEB=192.168.1.1
SECOND_LAN_HOST=192.168.1.101
results=()
fail=0

say() { printf '[reliability] %s\n' "$*"; }
result() { results+=("$1"); say "$1"; }
bad() { result "FAIL $*"; fail=1; }

lab() { LAB_PREFIX=$P LAB_IPV6=1 LAB_BUILD=0 ci/lab.sh "$@"; }
cleanup() {
  local pids
  pids=$(jobs -p) && [[ -n $pids ]] && kill $pids 2>/dev/null
  wait 2>/dev/null
  lab down >/dev/null 2>&1 || true
}
trap cleanup EXIT

say "building release binaries"
cargo build --release --locked --workspace --bins
lab down >/dev/null 2>&1 || true
lab up

wan_addr() { wan_rtr_addr "$1"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$(cat "$LAB_DIR/daemon.pid")/status"; }
wans_down() { $PY $REL ctl --socket "$SOCK" '{"cmd":"events"}' | awk '{n += gsub(/"to":"down"/, "")} END {print n + 0}'; }

# --- scan ---------------------------------------------------------------------------------
if has_stage scan; then
  # Decoys on every address of the router, TCP and UDP, IPv4 and IPv6 (`::` with
  # IPV6_V6ONLY off takes both): what a forgotten service would look like.
  for port in 22 2222 53; do
    ip netns exec "$P-rtr" socat "TCP6-LISTEN:$port,ipv6only=0,reuseaddr,fork" SYSTEM:'echo decoy' &
  done
  ip netns exec "$P-rtr" socat "UDP6-RECVFROM:5353,ipv6only=0,reuseaddr,fork" SYSTEM:'echo decoy' &
  sleep 1
  # Positive control: the LAN reaches the decoys (the router's LAN address).
  if ip netns exec "$P-lan" socat -T2 - "TCP:$WEB:2222" </dev/null | grep -q decoy; then
    result "scan: control: decoy on 2222 answers the LAN"
  else
    bad "scan: control: decoy on 2222 does not answer the LAN (the scan would prove nothing)"
  fi
  for i in 1 2; do
    isp=$P-isp$i
    v4=$(wan_addr "$i")
    lladdr=$(ip -n "$P-rtr" -6 addr show dev "wan$i" scope link | awk '/inet6/ {sub("/.*","",$2); print $2; exit}')
    gaddr=$(ip -n "$P-rtr" -6 addr show dev "wan$i" scope global | awk '/inet6/ {sub("/.*","",$2); print $2; exit}')
    targets=("-4 $v4")
    [[ -n $lladdr ]] && targets+=("-6 -e down $lladdr")
    [[ -n $gaddr ]] && targets+=("-6 $gaddr")
    [[ -n $lladdr ]] || bad "scan: wan$i has no IPv6 link-local address (lab without IPv6?)"
    for t in "${targets[@]}"; do
      for proto in sS sU; do
        out=$REL_OUT/scan-wan$i-${proto}-${t//[^a-z0-9]/_}.txt
        # shellcheck disable=SC2086  # $t is "-4 ADDR" or "-6 [-e IF] ADDR"
        ip netns exec "$isp" nmap -n -Pn -"$proto" -p- --min-rate 5000 --max-retries 2 \
          -oG "$out" $t >/dev/null
        open=$(awk '{n += gsub(/[0-9]+\/open\//, "")} END {print n + 0}' "$out")
        if ((open == 0)); then
          result "scan: wan$i $t -$proto all 65535 ports: 0 open"
        else
          bad "scan: wan$i $t -$proto: $open open: $(grep -o '[0-9]*/open/[a-z]*' "$out" | tr '\n' ' ')"
        fi
      done
    done
  done
  kill $(jobs -p) 2>/dev/null; wait 2>/dev/null || true
fi

# --- kill9 --------------------------------------------------------------------------------
if has_stage kill9; then
  ip netns exec "$P-inet" $PY $PROBE server --addr "$LAB_INET_HOST" --udp-port 40000 --tcp-port 40001 &
  server=$!
  sleep 0.5
  log=$REL_OUT/kill9-tcp.log
  ip netns exec "$P-lan" $PY $PROBE tcp --server "$LAB_INET_HOST" --port 40001 --conns 16 \
    --interval 0.2 --log "$log" &
  flows=$!
  sleep 3
  marks_before=$(ip netns exec "$P-rtr" conntrack -L -p tcp --dport 40001 2>/dev/null | grep -o 'mark=[0-9]*' | sort | uniq -c)
  rules_before=$(ip -n "$P-rtr" rule show)
  kill -9 "$(cat "$LAB_DIR/daemon.pid")"
  t_kill=$(date +%s%3N)
  sleep 3
  lab daemon-start
  sleep 4
  kill -TERM $flows; wait $flows 2>/dev/null || true
  kill -TERM $server; wait $server 2>/dev/null || true
  marks_after=$(ip netns exec "$P-rtr" conntrack -L -p tcp --dport 40001 2>/dev/null | grep -o 'mark=[0-9]*' | sort | uniq -c)
  opened=$(grep -c '^C ' "$log" || true)
  lost=$(grep -c '^E ' "$log" || true)
  # Every flow must have exchanged a line after the daemon came back.
  t_back=$(date +%s%3N)
  late=$(awk -v t=$((t_back - 2000)) '$1 == "r" && $3 > t {print $2}' "$log" | sort -u | wc -l)
  if ((opened == 16 && lost == 0 && late == 16)); then
    result "kill9: 16 flows, daemon killed for 3 s and restarted: 0 lost, 16 of 16 still answering"
  else
    bad "kill9: opened $opened, lost $lost, answering after restart $late of 16"
  fi
  if [[ $marks_before == "$marks_after" && $rules_before == "$(ip -n "$P-rtr" rule show)" ]]; then
    result "kill9: restarted daemon adopted the state: conntrack marks and policy rules unchanged"
  else
    bad "kill9: state changed across the restart: marks before [$marks_before] after [$marks_after]"
  fi
fi

# --- exhaust ------------------------------------------------------------------------------
if has_stage exhaust; then
  ip -n "$P-lan" addr add "$SECOND_LAN_HOST/24" dev eth0 2>/dev/null || true
  downs_before=$(wans_down)
  rss_before=$(rss_kb)
  log_before=$(stat -c %s "$LAB_DIR/daemon.log")
  ok=1
  # One 300 MiB request line: refused after the cap, without buffering it.
  $PY $REL ctl-line --socket "$SOCK" --mib 300 | tee "$REL_OUT/ctl-line.txt"
  grep -q 'longer than' "$REL_OUT/ctl-line.txt" || { say "the long line was not refused by its length"; ok=0; }
  rss_line=$(rss_kb)
  # Then floods of both servers at once, from one LAN host (web) and locally (control socket).
  ip netns exec "$P-lan" $PY $REL web-flood --host $WEB --port 8080 --source "$LAB_LAN_CLIENT" \
    --conns 1100 >"$REL_OUT/web-flood.txt" &
  web_flood=$!
  $PY $REL ctl-flood --socket "$SOCK" --conns 2000 >"$REL_OUT/ctl-flood.txt" &
  ctl_flood=$!
  sleep 5
  for port in 8080 8081; do
    ip netns exec "$P-lan" $PY $REL http-check --host $WEB --port $port --source $SECOND_LAN_HOST \
      --max-seconds 2 || ok=0
  done
  ip netns exec "$P-lan" ping -c3 -i0.2 -W1 "$LAB_INET_HOST" >/dev/null || { say "routing broke"; ok=0; }
  sleep 5   # health checks go on meanwhile: no WAN may be declared down
  kill -TERM $web_flood $ctl_flood; wait $web_flood $ctl_flood 2>/dev/null || true
  cat "$REL_OUT/web-flood.txt" "$REL_OUT/ctl-flood.txt"
  # Once the control flood is gone, the CLI answers again.
  timeout 30 target/release/routeros-kill-switch --socket "$SOCK" --timeout 20 --status >/dev/null ||
    { say "--status did not answer after the control flood"; ok=0; }
  downs_after=$(wans_down)
  rss_after=$(rss_kb)
  log_kib=$((($(stat -c %s "$LAB_DIR/daemon.log") - log_before) / 1024))
  if ((ok && downs_after == downs_before && rss_line < 64 * 1024 && rss_after < 64 * 1024 && log_kib < 1024)); then
    result "exhaust: 300 MiB control line refused (daemon RSS ${rss_before} -> ${rss_line} KiB); under 1,100 web + 2,000 control connections the UI and API answer another LAN host, routing and health checks go on (0 WAN down), --status answers after; daemon RSS ${rss_after} KiB, log +${log_kib} KiB"
  else
    bad "exhaust: ok=$ok, WAN down events $downs_before -> $downs_after, RSS ${rss_before} -> ${rss_line} -> ${rss_after} KiB, log +${log_kib} KiB"
  fi
fi

# --- api ----------------------------------------------------------------------------------
if has_stage api; then
  venv=target/reliability-venv
  [[ -x $venv/bin/schemathesis ]] || { $PY -m venv "$venv" && "$venv/bin/pip" install -q "schemathesis==$REL_SCHEMATHESIS"; }
  key=$(ip netns exec "$P-lan" $PY $REL api-key --base "http://$WEB:8080" --password 'reliability-suite-pw')
  # The key goes in schemathesis' auth config (not a header on every request), so its
  # missing/invalid-auth checks still work.
  printf '[auth.openapi.api_key]\nbearer = "${ROUTEROS_KEY}"\n' >"$REL_OUT/schemathesis.toml"
  # Left out: /api/v1/stream never ends; ignored_auth would flag the documented 429 (bad keys
  # count against the address's login limit); positive_data_acceptance flags what the schema
  # cannot say (valid addresses, "config or toml", integral floats that serde refuses).
  if ROUTEROS_KEY=$key ip netns exec "$P-lan" "$venv/bin/schemathesis" --config-file "$REL_OUT/schemathesis.toml" \
      run "http://$WEB:8081/api/v1/openapi.json" --exclude-path /api/v1/stream \
      --checks all --exclude-checks ignored_auth,positive_data_acceptance \
      --max-examples "$REL_API_EXAMPLES" -w 2 --max-time "$REL_API_SECONDS" --seed 7 \
      >"$REL_OUT/schemathesis.txt" 2>&1; then
    result "api: schemathesis $REL_SCHEMATHESIS from the server's OpenAPI document: $(grep -Eo '[0-9]+ generated|[0-9,]+ (test )?cases.*' "$REL_OUT/schemathesis.txt" | tail -1), 0 failures"
  else
    tail -40 "$REL_OUT/schemathesis.txt"
    bad "api: schemathesis found failures (full output: $REL_OUT/schemathesis.txt)"
  fi
  if grep -qi 'panick' "$LAB_DIR/web.log"; then bad "api: routeros-web panicked ($LAB_DIR/web.log)"; fi
fi

# --- props --------------------------------------------------------------------------------
if has_stage props; then
  # Debug build, selected with --workspace as ci/test.sh's unit-test run does: the same
  # feature set, so its artifacts are reused (`-p` alone would compile another copy).
  if PROPTEST_CASES=$REL_PROPTEST_CASES cargo test --locked --workspace --lib config::prop_tests \
        >"$REL_OUT/props.txt" 2>&1 &&
     PROPTEST_CASES=$REL_PROPTEST_CASES cargo test --locked --workspace --test control_parser \
        >>"$REL_OUT/props.txt" 2>&1; then
    result "props: config parser and control-request parser, $REL_PROPTEST_CASES cases per property: $(grep -c '^test .* ok$' "$REL_OUT/props.txt") tests passed"
  else
    tail -40 "$REL_OUT/props.txt"
    bad "props: a property failed (full output: $REL_OUT/props.txt)"
  fi
fi

printf '\n==== reliability summary (logs: %s)\n' "$REL_OUT"
printf '  %s\n' "${results[@]}"
exit $fail
