#!/usr/bin/env bash
# Placement benchmark of the router in the namespace lab (ci/lab.sh, IPv4 only): how well new
# connections use two unequal lines, wan1 100 Mbit/s and wan2 50 Mbit/s (tbf in the ISPs,
# LAB_RATES), static weights 2:1. Run as root. Issue #14's three figures:
#
#  (a) 4 long TCP flows started at once (iperf3 -R -P 4 from the LAN client, not pinned):
#      aggregate goodput / the sum of the two lines' single-link goodput (each measured once per
#      lab with the same 4-flow download from a LAN host that a policy pins to that line).
#      BENCH_RUNS runs per placement; every run's ratio, min and median. Target with
#      spare_capacity: every run >= 0.90, median >= 0.95. With static weights a run that puts
#      all 4 flows on one line gets 0.67 (all on wan1) or 0.33 (all on wan2).
#  (b) while a second LAN host (192.168.1.101, pinned to wan1) saturates wan1 with one bulk
#      download, BENCH_CONNS new TCP connections from the LAN client: the share placed on wan2.
#      Target with spare_capacity >= 0.80 (static weights: ~0.33).
#  (c) weights = "auto": both lines' speeds learned from a download on each, then, during a
#      download on wan1, wan1's tbf rate is halved (100 -> 50 Mbit/s, `tc qdisc change` in
#      P-isp1): seconds until wan1's learned speed is within 20 % and within 10 % of the new
#      rate (<= 60 and <= 55 Mbit/s) and the weights then. Target <= 60 s.
#
# Each placement gets a fresh lab for (a)+(b) ("weight" = static, "spare_capacity"), (c) a third.
# Knobs: BENCH_PREFIX [bpl]  BENCH_RUNS [10]  BENCH_SECONDS [6] per (a) run
#        BENCH_SETTLE [3] idle seconds before each (a) run (the daemon measures rates every
#        second; spare-capacity placement returns to the weights once the lines are idle)
#        BENCH_CONNS [20]  BENCH_B_WAIT [8] seconds of bulk download before (b) counts
#        BENCH_SCENARIOS ["a b c"]  BENCH_PLACEMENTS ["weight spare_capacity"]
#        BENCH_OUT [a new /tmp/bench-placement.XXXXXX] (iperf3 JSON, daemon logs, summary.md)
#        LAB_BUILD [1] (0: do not run cargo build --release first; skipped when LAB_BIN is set)
# Takes about 4-5 minutes with the defaults on 2 cores plus the build.
set -euo pipefail

CI_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=ci/lib/lab-common.sh
source "$CI_DIR/lib/lab-common.sh"
LAB_SH=$CI_DIR/lab.sh
HELPER=$CI_DIR/lib/placement_probe.py

BENCH_PREFIX=${BENCH_PREFIX:-bpl}
BENCH_RUNS=${BENCH_RUNS:-10}
BENCH_SECONDS=${BENCH_SECONDS:-6}
BENCH_SETTLE=${BENCH_SETTLE:-3}
BENCH_CONNS=${BENCH_CONNS:-20}
BENCH_B_WAIT=${BENCH_B_WAIT:-8}
BENCH_SCENARIOS=${BENCH_SCENARIOS:-a b c}
BENCH_PLACEMENTS=${BENCH_PLACEMENTS:-weight spare_capacity}
BENCH_OUT=${BENCH_OUT:-$(mktemp -d /tmp/bench-placement.XXXXXX)}
LAB_PREFIX=$BENCH_PREFIX   # for log()
mkdir -p "$BENCH_OUT"

HOST1=192.168.1.101   # pinned to wan1
HOST2=192.168.1.102   # pinned to wan2
RUN_PORT=5301         # iperf3 server for the unpinned flows
BULK1_PORT=5302       # ... for HOST1's downloads
BULK2_PORT=5303       # ... for HOST2's downloads
PROBE_PORT=40100      # the connection counter's server
WANS_ARG="wan1=$(wan_rtr_addr 1),wan2=$(wan_rtr_addr 2)"

LABS_UP=()
PIDS=()
declare -A R   # results: R[placement.key]

calc() { python3 -c "import sys; print(round(float(eval(sys.argv[1])), 3))" "$1"; }
has_scenario() { [[ " $BENCH_SCENARIOS " == *" $1 "* ]]; }

stop_bg() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}

cleanup() {
    local p
    stop_bg
    for p in "${LABS_UP[@]}"; do LAB_PREFIX=$p "$LAB_SH" down >/dev/null 2>&1 || true; done
}

# lab_up PREFIX ROUTING_TOML: a fresh IPv4 2-WAN lab (100 + 50 Mbit/s, weights 2:1) with the
# two pinned LAN hosts, iperf3 servers and the connection counter on the internet host.
lab_up() {
    local p=$1 routing=$2 port i
    LABS_UP+=("$p")
    if ! env LAB_PREFIX="$p" LAB_WANS=2 LAB_IPV6=0 LAB_WEB=0 LAB_ROUTING_TOML="$routing" \
        LAB_EXTRA_TOML="$BENCH_OUT/pins.toml" "$LAB_SH" up >"$BENCH_OUT/$p-lab-up.log" 2>&1; then
        cat "$BENCH_OUT/$p-lab-up.log" >&2
        die "lab $p did not come up (is the daemon built and working?)"
    fi
    ip -n "$p-lan" addr add "$HOST1/24" dev eth0
    ip -n "$p-lan" addr add "$HOST2/24" dev eth0
    for port in $RUN_PORT $BULK1_PORT $BULK2_PORT; do
        ip netns exec "$p-inet" iperf3 -s -p "$port" >/dev/null 2>&1 &
        PIDS+=($!)
    done
    ip netns exec "$p-inet" python3 "$HELPER" server --addr "$LAB_INET_HOST" --port "$PROBE_PORT" \
        >"$BENCH_OUT/$p-server.out" 2>&1 &
    PIDS+=($!)
    for ((i = 0; i < 50; i++)); do
        grep -q ready "$BENCH_OUT/$p-server.out" 2>/dev/null && break
        sleep 0.1
    done
    grep -q ready "$BENCH_OUT/$p-server.out" || die "connection counter did not start in $p-inet"
}

lab_down() {
    local p=$1 f
    stop_bg
    for f in daemon.log routeros.toml; do
        cp "/run/routeros-lab/$p/$f" "$BENCH_OUT/$p-$f" 2>/dev/null || true
    done
    LAB_PREFIX=$p "$LAB_SH" down >/dev/null 2>&1 || true
}

sock() { echo "/run/routeros-lab/$1/control.sock"; }

# download PREFIX SOURCE PORT SECONDS OUT [-P N]: iperf3 -R from the internet host to SOURCE
# (a LAN host address), JSON result in OUT. Runs in the foreground.
download() {
    local p=$1 src=$2 port=$3 secs=$4 out=$5; shift 5
    ip netns exec "$p-lan" iperf3 -c "$LAB_INET_HOST" -p "$port" -B "$src" -R -t "$secs" -J "$@" \
        >"$out" 2>&1 || die "iperf3 from $src failed, see $out"
}

goodput() { python3 "$HELPER" goodput "$1"; }

# scenario_a PLACEMENT PREFIX
scenario_a() {
    local pl=$1 p=$2 g1 g2 r ratio ratios=()
    download "$p" "$HOST1" "$BULK1_PORT" "$BENCH_SECONDS" "$BENCH_OUT/$p-single-wan1.json" -P 4
    g1=$(goodput "$BENCH_OUT/$p-single-wan1.json")
    download "$p" "$HOST2" "$BULK2_PORT" "$BENCH_SECONDS" "$BENCH_OUT/$p-single-wan2.json" -P 4
    g2=$(goodput "$BENCH_OUT/$p-single-wan2.json")
    log "$pl: single-link goodput wan1 $g1 + wan2 $g2 Mbit/s; $(python3 "$HELPER" speeds --socket "$(sock "$p")")"
    R[$pl.single]="$g1 + $g2"
    for ((r = 1; r <= BENCH_RUNS; r++)); do
        sleep "$BENCH_SETTLE"
        download "$p" "$LAB_LAN_CLIENT" "$RUN_PORT" "$BENCH_SECONDS" "$BENCH_OUT/$p-run$r.json" -P 4
        ratio=$(calc "$(goodput "$BENCH_OUT/$p-run$r.json") / ($g1 + $g2)")
        ratios+=("$ratio")
        log "$pl: run $r: aggregate/sum $ratio"
    done
    R[$pl.runs]="${ratios[*]}"
    R[$pl.stats]=$(python3 "$HELPER" stats "${ratios[@]}")
}

# scenario_b PLACEMENT PREFIX
scenario_b() {
    local pl=$1 p=$2 bulk counts
    ip netns exec "$p-lan" iperf3 -c "$LAB_INET_HOST" -p "$BULK1_PORT" -B "$HOST1" -R \
        -t $((BENCH_B_WAIT + 20)) >/dev/null 2>&1 &
    bulk=$!
    PIDS+=("$bulk")
    sleep "$BENCH_B_WAIT"
    log "$pl: wan1 saturated: $(python3 "$HELPER" speeds --socket "$(sock "$p")")"
    counts=$(ip netns exec "$p-lan" python3 "$HELPER" probe --server "$LAB_INET_HOST" \
        --port "$PROBE_PORT" --count "$BENCH_CONNS" --wans "$WANS_ARG")
    kill -TERM "$bulk" 2>/dev/null || true
    wait "$bulk" 2>/dev/null || true
    R[$pl.b]=$(python3 -c "import json,sys; c=json.loads(sys.argv[1]); print(f\"{c['wan2']/$BENCH_CONNS:.2f} {c}\")" "$counts")
    log "$pl: new connections on wan2 while wan1 is full: ${R[$pl.b]}"
}

# scenario_c PREFIX
scenario_c() {
    local p=$1 out t_change
    # Teach both speeds (a download on each at once), then keep wan1 busy and halve its rate.
    ip netns exec "$p-lan" iperf3 -c "$LAB_INET_HOST" -p "$BULK2_PORT" -B "$HOST2" -R -t 8 \
        >/dev/null 2>&1 &
    PIDS+=($!)
    ip netns exec "$p-lan" iperf3 -c "$LAB_INET_HOST" -p "$BULK1_PORT" -B "$HOST1" -R -t 150 \
        >/dev/null 2>&1 &
    PIDS+=($!)
    sleep 10
    log "speeds learned: $(python3 "$HELPER" speeds --socket "$(sock "$p")")"
    R[c.before]=$(python3 "$HELPER" speeds --socket "$(sock "$p")")
    # The lab's tbf (ci/lab.sh shape) at half the rate, 50 Mbit/s, with the bucket it had at
    # 100 Mbit/s (rate/250 = 50000 bytes): `tc qdisc change` keeps the packets already queued
    # (GRO'd, up to the old bucket's size), and a head packet bigger than the new bucket never
    # leaves: a smaller burst here froze the qdisc for good (kernel 6.1: "Sent" stuck, 545 KB
    # backlog), the line went down and nothing was left to learn from.
    tc -n "$p-isp1" qdisc change dev down root tbf rate 50mbit burst 50000 latency "${LAB_TBF_LATENCY:-50ms}"
    t_change=$(date +%s.%N)
    local below
    for below in 60000 55000; do
        if out=$(python3 "$HELPER" follow --socket "$(sock "$p")" --wan wan1 --below "$below" \
            --since "$t_change" --timeout 120); then
            R[c.$below]="${out%% *} s after the change: ${out#* }"
        else
            R[c.$below]="not within 120 s: ${out#timeout }"
        fi
        log "wan1 learned <= $((below / 1000)) Mbit/s: ${R[c.$below]}"
    done
}

print_report() {
    local pl
    {
        echo "## Placement benchmark (ci/bench-placement.sh): wan1 100 + wan2 50 Mbit/s tbf, weights 2:1"
        echo
        if has_scenario a; then
            echo "(a) 4 TCP flows started at once, aggregate / sum of single-link goodput, $BENCH_RUNS runs of ${BENCH_SECONDS} s"
            echo
            echo "| placement | single-link goodput (Mbit/s) | min | median | runs |"
            echo "|---|---|---|---|---|"
            for pl in $BENCH_PLACEMENTS; do
                read -r mn md <<<"${R[$pl.stats]:-- -}"
                echo "| $pl | ${R[$pl.single]:--} | $mn | $md | ${R[$pl.runs]:--} |"
            done
            echo
        fi
        if has_scenario b; then
            echo "(b) wan1 saturated by one download from another host: $BENCH_CONNS new connections, share on wan2"
            echo
            echo "| placement | share on wan2 (counts) |"
            echo "|---|---|"
            for pl in $BENCH_PLACEMENTS; do echo "| $pl | ${R[$pl.b]:--} |"; done
            echo
        fi
        if has_scenario c; then
            echo "(c) weights = \"auto\", wan1's tbf halved (100 -> 50 Mbit/s) during a download"
            echo
            echo "- before: ${R[c.before]:--}"
            echo "- learned <= 60 Mbit/s after: ${R[c.60000]:--}"
            echo "- learned <= 55 Mbit/s after: ${R[c.55000]:--}"
        fi
    } >"$BENCH_OUT/summary.md"
    echo
    echo "=== Summary (markdown, also in $BENCH_OUT/summary.md)"
    cat "$BENCH_OUT/summary.md"
    echo
    echo "iperf3 results, daemon logs: $BENCH_OUT"
}

main() {
    [[ $EUID -eq 0 ]] || die "run as root (network namespaces)"
    ensure_tools install ip tc nft iperf3 python3
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    build_once
    cat >"$BENCH_OUT/pins.toml" <<EOF
[[policies]]
name = "host1-wan1"
src = "$HOST1"
via = ["wan1"]

[[policies]]
name = "host2-wan2"
src = "$HOST2"
via = ["wan2"]
EOF
    local start=$SECONDS pl i=0
    if has_scenario a || has_scenario b; then
        for pl in $BENCH_PLACEMENTS; do
            i=$((i + 1))
            lab_up "$BENCH_PREFIX$i" "placement = \"$pl\""
            if has_scenario a; then scenario_a "$pl" "$BENCH_PREFIX$i"; fi
            if has_scenario b; then scenario_b "$pl" "$BENCH_PREFIX$i"; fi
            lab_down "$BENCH_PREFIX$i"
        done
    fi
    if has_scenario c; then
        lab_up "${BENCH_PREFIX}c" 'weights = "auto"'
        scenario_c "${BENCH_PREFIX}c"
        lab_down "${BENCH_PREFIX}c"
    fi
    log "scenarios took $((SECONDS - start)) s"
    print_report
}

main "$@"
