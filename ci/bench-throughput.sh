#!/usr/bin/env bash
# Throughput and rule-apply benchmark of the router in the namespace lab (ci/lab.sh). Run as root.
#
#  1. single-link goodput of every WAN: iperf3 from the router namespace bound to the WAN's
#     address (the router's `from <addr>` rules send it out of that WAN), upload and download;
#  2. aggregate goodput from the LAN client through the router, 16 and 4 streams, both ways;
#  3. ratio aggregate / sum of single links; PASS when >= BENCH_TARGET at 16 streams;
#  4. rule-apply time reported by the daemon for a reload after a weight change, in a 2-WAN and
#     a 16-WAN lab.
#
# Knobs: BENCH_PREFIX [bench]  BENCH_STRICT [0] (1: exit 1 on FAIL)  BENCH_TARGET [0.97]
#        BENCH_SINGLE_TIME [8]  BENCH_AGG_TIME [10]  BENCH_RELOADS [5]  BENCH_APPLY_WANS ["2 16"]
#        BENCH_OUT [a new /tmp/bench-throughput.XXXXXX] (iperf3 JSON, server log, summary.md)
#        LAB_BUILD [1] (0: do not run cargo build --release first; skipped when LAB_BIN is set)
#        LAB_BIN, LAB_RATES, LAB_WEIGHTS are passed on to ci/lab.sh.
set -euo pipefail

CI_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=ci/lib/lab-common.sh
source "$CI_DIR/lib/lab-common.sh"
LAB_SH=$CI_DIR/lab.sh

BENCH_PREFIX=${BENCH_PREFIX:-bench}
BENCH_STRICT=${BENCH_STRICT:-0}
BENCH_TARGET=${BENCH_TARGET:-0.97}
BENCH_SINGLE_TIME=${BENCH_SINGLE_TIME:-8}
BENCH_AGG_TIME=${BENCH_AGG_TIME:-10}
BENCH_RELOADS=${BENCH_RELOADS:-5}
BENCH_APPLY_WANS=${BENCH_APPLY_WANS:-2 16}
BENCH_OUT=${BENCH_OUT:-$(mktemp -d /tmp/bench-throughput.XXXXXX)}
LAB_PREFIX=$BENCH_PREFIX   # for log()
LAB_RATES=${LAB_RATES:-100 50}
export LAB_RATES
mkdir -p "$BENCH_OUT"

LABS_UP=()        # prefixes to tear down on exit
IPERF_PIDFILE=$BENCH_OUT/iperf3-server.pid

# --- plumbing -------------------------------------------------------------------------------

lab() { # lab PREFIX WANS SUBCOMMAND: run ci/lab.sh for one of our labs
    LAB_PREFIX=$1 LAB_WANS=$2 "$LAB_SH" "$3"
}

lab_up() {
    LABS_UP+=("$1")
    lab "$1" "$2" up
}

cleanup() {
    local p
    if [[ -s $IPERF_PIDFILE ]]; then kill "$(<"$IPERF_PIDFILE")" 2>/dev/null || true; fi
    for p in "${LABS_UP[@]}"; do
        LAB_PREFIX=$p "$LAB_SH" down >/dev/null 2>&1 || true
    done
}

start_iperf_server() {
    local ns=$BENCH_PREFIX-inet i
    ip netns exec "$ns" iperf3 -s -B "$LAB_INET_HOST" -D --pidfile "$IPERF_PIDFILE" \
        --logfile "$BENCH_OUT/iperf3-server.log"
    for ((i = 0; i < 50; i++)); do   # -D returns before the socket listens
        ip netns exec "$ns" ss -Hltn "sport = :5201" | grep -q . && return 0
        sleep 0.1
    done
    die "iperf3 server did not start in $ns"
}

# iperf NAME NS ARGS...: run one iperf3 client, keep its JSON as $BENCH_OUT/NAME.json and print
# the receiver-side goodput in Mbit/s (end.sum_received), or "ERR" when the run failed.
# One retry: iperf3 occasionally loses a test to a control-connection hiccup under loss.
iperf() {
    local name=$1 ns=$2; shift 2
    local json=$BENCH_OUT/$name.json try
    for try in 1 2; do
        ip netns exec "$ns" iperf3 -c "$LAB_INET_HOST" --json "$@" >"$json" 2>&1 || true
        if python3 - "$json" <<'EOF'; then return 0; fi
import json, sys
d = {}
try:
    d = json.load(open(sys.argv[1]))
    print("%.2f" % (d["end"]["sum_received"]["bits_per_second"] / 1e6))
except Exception as e:  # error runs have {"error": "..."} and no sums
    sys.stderr.write("iperf3 %s: %s\n" % (sys.argv[1], d.get("error") or repr(e)))
    sys.exit(1)
EOF
        log "iperf3 $name failed (try $try), see $json"
        sleep 1
    done
    echo ERR
}

# calc EXPR [FORMAT]: float arithmetic for the table; "n/a" if an operand is not a number.
calc() { python3 -c "import sys
try: print(format(float(eval(sys.argv[1])), sys.argv[2]))
except Exception: print('n/a')" "$1" "${2:-.2f}"; }

# at_least A B: true when both are numbers and A >= B.
at_least() { python3 -c "import sys
try: sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)
except ValueError: sys.exit(1)" "$1" "$2"; }

# --- measurements ---------------------------------------------------------------------------

declare -A UP DOWN AGG_UP AGG_DOWN RATIO_UP RATIO_DOWN APPLY
WANS=2
SUM_UP=0 SUM_DOWN=0

measure_single_links() {
    local i addr
    for ((i = 1; i <= WANS; i++)); do
        addr=$(wan_rtr_addr "$i")
        log "single link wan$i ($addr): upload, then download"
        UP[$i]=$(iperf "single-wan$i-up" "$BENCH_PREFIX-rtr" -B "$addr" -P 4 -t "$BENCH_SINGLE_TIME")
        DOWN[$i]=$(iperf "single-wan$i-down" "$BENCH_PREFIX-rtr" -B "$addr" -P 4 -t "$BENCH_SINGLE_TIME" -R)
        SUM_UP=$(calc "$SUM_UP+${UP[$i]}")
        SUM_DOWN=$(calc "$SUM_DOWN+${DOWN[$i]}")
    done
}

measure_aggregate() {
    local n
    for n in 16 4; do
        log "aggregate from the LAN client, $n streams: upload, then download"
        AGG_UP[$n]=$(iperf "lan-P$n-up" "$BENCH_PREFIX-lan" -P "$n" -t "$BENCH_AGG_TIME")
        AGG_DOWN[$n]=$(iperf "lan-P$n-down" "$BENCH_PREFIX-lan" -P "$n" -t "$BENCH_AGG_TIME" -R)
        RATIO_UP[$n]=$(calc "${AGG_UP[$n]}/$SUM_UP" .3f)
        RATIO_DOWN[$n]=$(calc "${AGG_DOWN[$n]}/$SUM_DOWN" .3f)
    done
}

# reload_once CONFIG SOCKET WEIGHT: set the first WAN's weight in CONFIG, send {"cmd":"reload"}
# and print "apply_ms roundtrip_ms" (apply_ms "n/a" if the answer has none), or fail with why.
reload_once() {
    python3 - "$@" <<'EOF'
import json, re, socket, sys, time
config, sock_path, weight = sys.argv[1], sys.argv[2], int(sys.argv[3])
text = open(config).read()
text, n = re.subn(r"(?m)^weight\s*=\s*\d+", "weight = %d" % weight, text, count=1)
if n != 1:
    sys.exit("no 'weight = N' line in %s" % config)
open(config, "w").write(text)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
t0 = time.monotonic()
s.connect(sock_path)
s.sendall(b'{"cmd":"reload"}\n')
buf = b""
while not buf.endswith(b"\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
rtt = (time.monotonic() - t0) * 1000
try:
    answer = json.loads(buf)
except ValueError:
    sys.exit("unparsable answer: %r" % buf[:200])
if not answer.get("ok"):
    sys.exit("daemon refused the reload: %s" % json.dumps(answer)[:300])
apply_ms = answer.get("apply_ms")
print("%s %.1f" % ("%.1f" % apply_ms if isinstance(apply_ms, (int, float)) else "n/a", rtt))
EOF
}

# kernel_state PREFIX: a fingerprint of what the daemon owns, to confirm a reload changed it.
kernel_state() {
    {
        ip netns exec "$1-rtr" nft list table inet routeros 2>/dev/null || true
        ip -n "$1-rtr" route show table all proto 201 2>/dev/null || true
        ip -n "$1-rtr" rule 2>/dev/null || true
    } | md5sum | cut -c1-12
}

# measure_apply WANS: own lab, BENCH_RELOADS reloads alternating the first WAN's weight between
# w+1 and w (w as generated); fills APPLY[WANS] with "median min max rtt_median changed".
measure_apply() {
    local wans=$1 p=${BENCH_PREFIX}a$1 k out before after changed=0 w w0 step=1
    local dir=/run/routeros-lab/$p
    if ! lab_up "$p" "$wans" >"$BENCH_OUT/lab-up-$p.log" 2>&1; then
        log "the $wans-WAN lab did not come up: see $BENCH_OUT/lab-up-$p.log"
        APPLY[$wans]="n/a n/a n/a n/a 0 (lab did not come up)"
        return 0
    fi
    local applies=() rtts=()
    w0=$(sed -n 's/^weight *= *\([0-9]*\).*/\1/p' "$dir/routeros.toml" | head -n 1)
    ((w0 >= 255)) && step=-1
    for ((k = 1; k <= BENCH_RELOADS; k++)); do
        w=$((k % 2 ? w0 + step : w0))   # every reload is a real change
        before=$(kernel_state "$p")
        if ! out=$(reload_once "$dir/routeros.toml" "$dir/control.sock" "$w" 2>&1); then
            log "reload on the $wans-WAN lab failed: $out"
            APPLY[$wans]="n/a n/a n/a n/a 0 (${out//$'\n'/ })"
            lab "$p" "$wans" down >/dev/null
            return 0
        fi
        sleep 0.2
        after=$(kernel_state "$p")
        [[ $before != "$after" ]] && changed=$((changed + 1))
        applies+=("${out% *}"); rtts+=("${out#* }")
    done
    APPLY[$wans]=$(python3 - "${#applies[@]}" "${applies[@]}" "${rtts[@]}" "$changed" <<'EOF'
import statistics, sys
n = int(sys.argv[1]); a = sys.argv[2:2 + n]; r = [float(x) for x in sys.argv[2 + n:2 + 2 * n]]
nums = [float(x) for x in a if x != "n/a"]
f = lambda v: "%.1f" % v
if nums:
    print(f(statistics.median(nums)), f(min(nums)), f(max(nums)), f(statistics.median(r)), sys.argv[-1])
else:
    print("n/a n/a n/a", f(statistics.median(r)), sys.argv[-1], "(no apply_ms in the answers)")
EOF
)
    lab "$p" "$wans" down >/dev/null
}

# --- report ---------------------------------------------------------------------------------

print_report() {
    local i n rate pass=PASS
    echo
    echo "=== Single-link goodput (iperf3 -P 4 -t $BENCH_SINGLE_TIME from $BENCH_PREFIX-rtr, -B <WAN address>; receiver side, Mbit/s)"
    printf '%-6s %8s %10s %10s\n' WAN shaped upload download
    for ((i = 1; i <= WANS; i++)); do
        # shellcheck disable=SC2086
        rate=$(nth_word "$i" 50 $LAB_RATES)
        printf '%-6s %8s %10s %10s\n' "wan$i" "$rate" "${UP[$i]}" "${DOWN[$i]}"
    done
    printf '%-6s %8s %10s %10s\n' sum "" "$SUM_UP" "$SUM_DOWN"

    echo
    echo "=== Aggregate from $BENCH_PREFIX-lan (iperf3 -t $BENCH_AGG_TIME; receiver side, Mbit/s; ratio = aggregate / sum of single links)"
    printf '%-8s %10s %8s %10s %8s\n' streams upload ratio download ratio
    for n in 16 4; do
        printf '%-8s %10s %8s %10s %8s\n' "$n" "${AGG_UP[$n]}" "${RATIO_UP[$n]}" "${AGG_DOWN[$n]}" "${RATIO_DOWN[$n]}"
    done
    for n in "${RATIO_UP[16]}" "${RATIO_DOWN[16]}"; do
        at_least "$n" "$BENCH_TARGET" || pass=FAIL
    done
    RESULT=$pass
    echo "$pass: 16-stream ratio upload ${RATIO_UP[16]}, download ${RATIO_DOWN[16]} (target >= $BENCH_TARGET)"

    echo
    echo "=== Rule-apply time: reload after a weight change ($BENCH_RELOADS reloads per lab)"
    printf '%-6s %12s %8s %8s %14s %s\n' WANs apply_median min max round_trip_med "kernel state changed"
    for n in $BENCH_APPLY_WANS; do
        # shellcheck disable=SC2086
        set -- ${APPLY[$n]:-n/a n/a n/a n/a 0}
        printf '%-6s %12s %8s %8s %14s %s\n' "$n" "$1" "$2" "$3" "$4" "$5/$BENCH_RELOADS ${*:6}"
    done

    {
        echo "| Measurement (lab: tbf-shaped veths, $(nproc) cores) | Upload | Download |"
        echo "| --- | ---: | ---: |"
        for ((i = 1; i <= WANS; i++)); do
            # shellcheck disable=SC2086
            rate=$(nth_word "$i" 50 $LAB_RATES)
            echo "| wan$i alone ($rate Mbit/s tbf), iperf3 -P 4 | ${UP[$i]} Mbit/s | ${DOWN[$i]} Mbit/s |"
        done
        echo "| Sum of single links | $SUM_UP Mbit/s | $SUM_DOWN Mbit/s |"
        for n in 16 4; do
            echo "| LAN client, $n streams (ratio to sum) | ${AGG_UP[$n]} Mbit/s (${RATIO_UP[$n]}) | ${AGG_DOWN[$n]} Mbit/s (${RATIO_DOWN[$n]}) |"
        done
        echo
        echo "| Rule apply after a weight change (reload, $BENCH_RELOADS times) | apply_ms median (min-max) | socket round trip median |"
        echo "| --- | ---: | ---: |"
        for n in $BENCH_APPLY_WANS; do
            # shellcheck disable=SC2086
            set -- ${APPLY[$n]:-n/a n/a n/a n/a 0}
            if [[ $1 == n/a ]]; then
                echo "| $n WANs | n/a ${*:6} | $4 ms |"
            else
                echo "| $n WANs | $1 ms ($2-$3) | $4 ms |"
            fi
        done
    } >"$BENCH_OUT/summary.md"
    echo
    echo "=== Summary (markdown, also in $BENCH_OUT/summary.md)"
    cat "$BENCH_OUT/summary.md"
    echo
    echo "Raw iperf3 JSON and server log: $BENCH_OUT"
}

main() {
    [[ $EUID -eq 0 ]] || die "run as root (network namespaces)"
    ensure_tools install ip tc nft iperf3 conntrack socat python3
    trap cleanup EXIT
    trap 'exit 130' INT TERM

    build_once

    log "bringing up the lab ($WANS WANs, rates: $LAB_RATES)"
    lab_up "$BENCH_PREFIX" "$WANS" >"$BENCH_OUT/lab-up.log" 2>&1 ||
        { cat "$BENCH_OUT/lab-up.log" >&2; die "lab did not come up (is the daemon built and working?)"; }
    start_iperf_server
    measure_single_links
    measure_aggregate
    # Free the CPU for the apply-time labs: nothing else should run while they are timed.
    kill "$(<"$IPERF_PIDFILE")" 2>/dev/null || true
    lab "$BENCH_PREFIX" "$WANS" down >/dev/null

    local n
    for n in $BENCH_APPLY_WANS; do
        log "rule-apply time with $n WANs"
        measure_apply "$n"
    done

    RESULT=FAIL
    print_report
    if [[ $RESULT != PASS && $BENCH_STRICT == 1 ]]; then
        exit 1
    fi
}

main "$@"
