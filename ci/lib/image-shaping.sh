# shellcheck shell=bash disable=SC2034  # timing[] is image-test.sh's (reported there)
# The shaping check of ci/image-test.sh's network stage (#14), on the image's Ubuntu kernel
# (which has sch_cake, unlike the namespace lab's): ISP 1's line becomes a slow line with a
# modem-sized buffer (tbf, 2 Mbit/s, 300 ms of queue, in ISP 1's namespace, both directions:
# slow enough that the emulated router, a TCG guest, forwards it at full speed, so the queue
# builds in the "modem" and not in the guest; the goodput is printed to show the line full);
# a policy sends the LAN client's traffic to the second internet address through wan1; the LAN
# client pings that address while iperf3 fills the line, download then upload, first with the
# router's shaping off, then on (CAKE at the same declared speeds). Printed: the added latency
# under load of each (median ping under load minus idle); checked: CAKE's <= 30 ms.
#
# Afterwards the config and the line are put back as they were (later stages expect them).
# Source it after image-lab.sh, image-vm.sh and image-lines.sh (lines_eval, lines_wait); uses
# check/ok/nok/timing of image-test.sh.

SHAPING_MBIT=2
SHAPING_PORT=5299
SHAPING_BACKUP=/run/routeros-shaping-test.toml
SHAPING_TARGET_MS=30

# shaping_isp_line on|off: ISP 1's bloated line (download: towards the router; upload: its
# uplink to the internet).
shaping_isp_line() {
    local dev
    for dev in "$IMGLAB_TAP_W1" up; do
        if [[ $1 == on ]]; then
            ip -n "$IMGLAB_P-isp1" link set dev "$dev" txqueuelen 10000
            tc -n "$IMGLAB_P-isp1" qdisc replace dev "$dev" root tbf rate "${SHAPING_MBIT}mbit" burst 32kb latency 300ms
        else
            tc -n "$IMGLAB_P-isp1" qdisc del dev "$dev" root 2>/dev/null || true
        fi
    done
}

# shaping_config on|off: the saved config plus the test policy and wan1's speeds, with
# shaping on or off; checked with --check, then reloaded.
shaping_config() {
    local enabled=false
    [[ $1 == on ]] && enabled=true
    imgvm_ssh "sudo cat $SHAPING_BACKUP" | python3 -c '
import sys
text, enabled, mbit, target = sys.stdin.read(), sys.argv[1], sys.argv[2], sys.argv[3]
anchor = "name = \"wan1\"\n"
assert text.count(anchor) == 1, "wan1 once in the config"
text = text.replace(anchor, anchor + f"download_mbit = {mbit}\nupload_mbit = {mbit}\nshaping = {{ enabled = {enabled} }}\n")
text += f"\n[[policies]]\nname = \"shaping-test\"\ndst = \"{target}\"\nvia = [\"wan1\"]\n"
print(text, end="")' "$enabled" "$SHAPING_MBIT" "$IMGLAB_INET2" |
        imgvm_ssh "sudo tee $LINES_CONFIG >/dev/null && sudo routeros-watchdog --check --config $LINES_CONFIG && sudo systemctl reload routeros-watchdog"
}

# shaping_median_ms PING-OUTPUT: the median round trip of its replies.
shaping_median_ms() {
    grep -o 'time=[0-9.]*' | cut -d= -f2 | sort -n | awk '{ a[NR] = $1 } END { if (NR) printf "%.1f", a[int((NR + 1) / 2)]; else print "none" }'
}

# shaping_loaded_ms DIRECTION(down|up): the median ping while iperf3 fills the line that way;
# the transfer's goodput is logged.
shaping_loaded_ms() {
    local reverse="" pid out log=$IMGLAB_DIR/shaping-iperf-$1.log
    [[ $1 == down ]] && reverse=-R
    imglab_ns lan iperf3 -c "$IMGLAB_INET2" -p "$SHAPING_PORT" -t 22 -f m $reverse >"$log" 2>&1 &
    pid=$!
    sleep 4 # the queue fills
    out=$(imglab_ns lan ping -n -c 75 -i 0.2 "$IMGLAB_INET2" 2>/dev/null || true)
    wait "$pid" || true
    img_log "shaping: $1 goodput $(grep receiver "$log" | grep -o '[0-9.]* Mbits/sec' | tail -1)"
    shaping_median_ms <<<"$out"
}

# shaping_measure LABEL: idle, download and upload figures; prints "IDLE DOWN_ADDED UP_ADDED".
shaping_measure() {
    local idle down up
    idle=$(imglab_ns lan ping -n -c 20 -i 0.2 "$IMGLAB_INET2" 2>/dev/null | shaping_median_ms)
    down=$(shaping_loaded_ms down)
    up=$(shaping_loaded_ms up)
    img_log "shaping $1: idle ${idle} ms, under download ${down} ms, under upload ${up} ms"
    awk -v i="$idle" -v d="$down" -v u="$up" 'BEGIN { printf "%s %.0f %.0f\n", i, d - i, u - i }'
}

shaping_stage() {
    imgvm_ssh "sudo cp -p $LINES_CONFIG $SHAPING_BACKUP" || { nok "shaping: cannot keep the config aside"; return 1; }
    imglab_bg inet shaping-iperf iperf3 -s -p "$SHAPING_PORT"
    shaping_isp_line on
    local took qd off_down off_up on_down on_up
    lines_wait 60 "w('wan1').get('usable') is True" >/dev/null || nok "shaping: wan1 not usable before the test"
    if shaping_config off; then ok "shaping: the test policy and wan1's speeds (shaping off) accepted"; else nok "shaping: config with shaping off refused"; fi
    lines_wait 20 "w('wan1').get('shaping') is None" >/dev/null ||
        nok "shaping: the router did not take the config with shaping off"
    read -r _ off_down off_up <<<"$(shaping_measure off)"

    if shaping_config on; then ok "shaping: shaping on accepted by --check (the image's kernel has sch_cake)"; else nok "shaping: config with shaping on refused"; fi
    took=$(lines_wait 20 "(w('wan1').get('shaping') or {}).get('active') is True" || true)
    qd=$(imgvm_ssh "tc qdisc show dev wan1; tc qdisc show dev ifb-wan1" 2>/dev/null | grep -c 'cake' || true)
    check "shaping: wan1 shaped by CAKE (status active after ${took} s; cake qdiscs on wan1 and ifb-wan1: $qd)" \
        bash -c "[[ '$took' != never && '$qd' == 2 ]]"
    read -r _ on_down on_up <<<"$(shaping_measure on)"

    img_log "added latency under load on a ${SHAPING_MBIT} Mbit/s line with a 300 ms buffer: shaping off: download ${off_down} ms, upload ${off_up} ms; shaping on (CAKE): download ${on_down} ms, upload ${on_up} ms"
    timing[shaping_off_down_ms]=$off_down timing[shaping_off_up_ms]=$off_up
    timing[shaping_on_down_ms]=$on_down timing[shaping_on_up_ms]=$on_up
    check "shaping: added latency under a download with CAKE ${on_down} ms <= ${SHAPING_TARGET_MS} ms (off: ${off_down} ms)" \
        bash -c "[[ '$on_down' =~ ^-?[0-9]+$ ]] && (($on_down <= $SHAPING_TARGET_MS))"
    check "shaping: added latency under an upload with CAKE ${on_up} ms <= ${SHAPING_TARGET_MS} ms (off: ${off_up} ms)" \
        bash -c "[[ '$on_up' =~ ^-?[0-9]+$ ]] && (($on_up <= $SHAPING_TARGET_MS))"

    # Put back: the line, the config (the daemon removes its qdiscs and the ifb).
    shaping_isp_line off
    [[ -e $IMGLAB_DIR/shaping-iperf.pid ]] && kill -TERM "$(<"$IMGLAB_DIR/shaping-iperf.pid")" 2>/dev/null || true
    rm -f "$IMGLAB_DIR/shaping-iperf.pid"
    imgvm_ssh "sudo cp -p $SHAPING_BACKUP $LINES_CONFIG && sudo rm $SHAPING_BACKUP && sudo systemctl reload routeros-watchdog"
    took=$(lines_wait 20 "w('wan1').get('shaping') is None" || true)
    sleep 2
    qd=$(imgvm_ssh "tc qdisc show dev wan1 | grep -c cake; ip -br link show type ifb | wc -l" 2>/dev/null | tr '\n' ' ')
    check "shaping: turned off again, the daemon removed its qdiscs and ifb (cake qdiscs, ifbs: $qd)" \
        test "$qd" = "0 0 "
}
