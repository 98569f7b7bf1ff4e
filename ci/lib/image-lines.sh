# shellcheck shell=bash disable=SC2034  # timing[] is image-test.sh's (reported there)
# The "lines" stage of ci/image-test.sh, in the network stage's boot: the router's WAN 3 and
# WAN 4 are wired to the ISP guest (ci/lib/isp-guest.sh: Debian's kernel, pppoe-server,
# dnsmasq), the config gains a PPPoE line (wan3) and a VLAN 7 DHCP line (wan4) next to the
# static wan1 and DHCP wan2, and the checks are what a user of those lines would see:
#
#   both lines come up (PPPoE session, VLAN lease) and carry LAN traffic with the others
#   both carry IPv6 too: over the session (IPv6CP, then the ISP's router advertisements,
#   handled by networkd) and over VLAN 7, each line's address from its ISP's prefix, and the
#   LAN client's IPv6 connections leave through them
#   the ISP ends the PPPoE session: wan3 leaves service at once (by the link event; the figure
#   is printed), and comes back by itself
#   a wrong PPPoE password: the status says "authentication failed", the others carry on
#
# Afterwards the router's config is put back as it was (the later stages expect it). Source it
# after image-lab.sh and image-vm.sh; uses check/ok/nok/timing of image-test.sh.

# shellcheck source=ci/lib/isp-guest.sh
source "$(dirname "${BASH_SOURCE[0]}")/isp-guest.sh"

LINES_USER=router-test
LINES_PASS="line-pass-1"
# What the ISP guest hands out (ci/isp-guest/isp): PPPoE sessions and VLAN 7 leases.
LINES_PPP_RE='^192\.0\.2\.(1[89]|2[0-2])$'
LINES_VLAN_RE='^192\.0\.2\.(2[6-9]|30)$'
LINES_CONFIG=/opt/routeros/config/routeros.toml

# lines_eval EXPR: a Python expression over the router's status `s` (w(name): one WAN);
# prints its value ("" when the status cannot be read).
lines_eval() {
    imgvm_ssh sudo routeros-kill-switch --status --json 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)
def w(name):
    return next((x for x in s["wans"] if x["name"] == name), {})
def session(name):
    return ((w(name).get("line") or {}).get("session") or {})
def addr(name):
    return (w(name).get("address") or "").split("/")[0]
def v6(name):
    return w(name).get("ipv6") or {}
def addr6(name):
    return (v6(name).get("address") or "").split("/")[0]
print(eval(sys.argv[1]))' "$1" 2>/dev/null || true
}

# lines_wait TIMEOUT EXPR: until EXPR is True; prints the seconds it took (or "never").
lines_wait() {
    local t0=$SECONDS
    while ((SECONDS - t0 <= $1)); do
        [[ $(lines_eval "$2") == True ]] && { echo $((SECONDS - t0)); return 0; }
        sleep 1
    done
    echo never
    return 1
}

# The wizard's answer as a user gives it on the LAN (web API): the four lines (static, DHCP,
# PPPoE, DHCP on VLAN 7), the LAN as it is, a time zone.
lines_wizard_body() {
    cat <<EOF
{"wans": [
  {"name": "wan1", "mode": "static", "address": "$IMGLAB_WAN1_RTR/29", "gateway": "$IMGLAB_WAN1_ISP", "dns": ["$IMGLAB_WAN1_ISP"]},
  {"name": "wan2", "mode": "dhcp", "dns": ["$IMGLAB_WAN2_ISP"]},
  {"name": "wan3", "mode": "pppoe", "dns": ["192.0.2.17"],
   "pppoe": {"username": "$LINES_USER", "password": "$LINES_PASS"}},
  {"name": "wan4", "mode": "dhcp", "vlan": 7, "dns": ["192.0.2.25"]}],
 "lan": {"interface": "lan", "address": "$IMGLAB_ROUTER_LAN/24", "dhcp_start": "192.168.1.100", "dhcp_end": "192.168.1.199"},
 "timezone": "Europe/Berlin"}
EOF
}

# json_field FIELD.PATH: one field of the JSON on stdin ("" when absent).
json_field() {
    python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v.get(k) if isinstance(v, dict) else None
print("" if v is None else v)' "$1" 2>/dev/null || true
}

# The wizard through the web API (logged in as admin), then the confirmation; the config as
# it was is kept aside (byte for byte) and put back afterwards, for the later stages.
LINES_BACKUP=/run/routeros-lines-test.toml
lines_wizard() {
    local out code id tz_set
    imgvm_ssh "sudo cp -p $LINES_CONFIG $LINES_BACKUP" || return 1
    web_login || { nok "wizard: cannot log in to the web API"; return 1; }
    out=$(web POST /api/v1/setup/apply "$(lines_wizard_body)")
    code=${out##*$'\n'}
    out=$(sed '$d' <<<"$out")
    check "wizard (POST /api/v1/setup/apply) with static, DHCP, PPPoE and VLAN lines accepted (HTTP $code)" test "$code" = 200
    [[ $code == 200 ]] || { echo "  answer: $out"; return 1; }
    id=$(json_field pending.id <<<"$out")
    tz_set=$(json_field timezone.set <<<"$out")
    code=$(web_code POST /api/v1/config/confirm "{\"id\":\"$id\"}")
    check "wizard's change confirmed (HTTP $code)" bash -c "[[ '$code' =~ ^2 ]]"
    local tz
    tz=$(imgvm_ssh timedatectl show -p Timezone --value 2>/dev/null || true)
    check "wizard's time zone applied through timedated (set=$tz_set, router: $tz)" \
        bash -c "[[ '$tz_set' == True && '$tz' == Europe/Berlin ]]"
    local leaks modes
    leaks=$(imgvm_ssh "sudo grep -rlF -- '$LINES_PASS' $LINES_CONFIG /opt/routeros/config/history /var/lib/routeros-web 2>/dev/null | wc -l" || echo "?")
    modes=$(imgvm_ssh "sudo sh -c 'stat -c %a /opt/routeros/config/secrets/wan3-*.pppoe'" 2>/dev/null | sort -u | tr '\n' ' ')
    check "the PPPoE password is in no saved config, history or web file ($leaks files), only in its secret file (mode $modes)" \
        bash -c "[[ '$leaks' == 0 && '$modes' == '600 ' ]]"
}
lines_restore_config() {
    imgvm_ssh "sudo cp -p $LINES_BACKUP $LINES_CONFIG && sudo rm $LINES_BACKUP && sudo timedatectl set-timezone UTC && sudo systemctl reload routeros-watchdog"
}

# lines_clock_offset -> "OFFSET ERROR": the router's clock minus the host's, in ms, and its
# bound. Asked over one SSH session kept open (a new one per sample would put its handshake
# into the round trip): of 6 samples the first is dropped, the one with the shortest round
# trip kept; half that round trip is the error.
lines_clock_offset() {
    local a b r i best=999999 off=0
    coproc CLK { imgvm_ssh 'while read -r _; do date +%s%3N; done' 2>/dev/null; }
    for i in 1 2 3 4 5 6; do
        a=$(ispg_now_ms)
        echo >&"${CLK[1]}"
        read -r -t 15 r <&"${CLK[0]}" || break
        b=$(ispg_now_ms)
        if ((i > 1 && b - a < best)); then best=$((b - a)) off=$((r - (a + b) / 2)); fi
    done
    kill "$CLK_PID" 2>/dev/null || true
    wait "$CLK_PID" 2>/dev/null || true
    echo "$off $(((best + 1) / 2))"
}

# lines_journal_ms SINCE_MS REGEX -> the router's clock (ms) of the first line of the daemon's
# unit (pppd runs in it) at or after SINCE_MS (router clock) that matches REGEX
lines_journal_ms() {
    imgvm_ssh "journalctl -o short-unix --no-pager -u routeros-watchdog --since=@$(($1 / 1000))" 2>/dev/null |
        awk -v since="$1" -v rx="$2" '{ split($1, t, "."); ms = t[1] * 1000 + substr(t[2] "000", 1, 3) }
            ms >= since && $0 ~ rx && !found { printf "%.0f\n", ms; found = 1 }' || true
}

# lines_event_ms SINCE_MS KIND PYTHON_CONDITION_ON_e -> at_ms of the first such event of wan3
lines_event_ms() {
    web GET "/api/v1/events?wan=wan3&kind=$2&since_ms=$1" | sed '$d' | python3 -c '
import json, sys
for e in json.load(sys.stdin)["events"]:
    d = e.get("details") or {}
    if '"$3"':
        print(e["at_ms"]); break' 2>/dev/null || true
}

# lines_sources N [HOST]: "addr=count ..." of N new connections from the LAN to the internet
# host (HOST: its IPv6 address in brackets).
lines_sources() { sources "$@"; }

lines_stage() {
    local t took seen off
    ispg_build >/dev/null
    ispg_down # a guest or wiring left by an interrupted run
    t=$SECONDS
    ispg_start isp server "$IMGLAB_P-iu" "$IMGLAB_P-ip" "$IMGLAB_P-iv" \
        "isp.user=$LINES_USER" "isp.pass=$LINES_PASS"
    ispg_uplink "$IMGLAB_P-inet" "$IMGLAB_P-iu"
    ispg_bridge "$IMGLAB_P-l3" "$IMGLAB_P-ip" "$IMGLAB_TAP_W3"
    ispg_bridge "$IMGLAB_P-l4" "$IMGLAB_P-iv" "$IMGLAB_TAP_W4"
    if ! took=$(ispg_wait_ready isp 120); then
        nok "ISP guest: not serving within 120 s"
        ispg_tail isp 30 | sed 's/^/  isp: /'
        return 1
    fi
    ok "ISP guest (PPPoE server, VLAN 7 DHCP) serving ${took} s after its QEMU started"

    lines_wizard || return 1
    t=$SECONDS
    took=$(lines_wait 90 "session('wan3').get('state') == 'up' and w('wan3').get('usable') and w('wan4').get('usable')" || true)
    if [[ $took != never ]]; then timing["lines_up"]=$took; fi
    check "PPPoE line wan3 (session up, device $(lines_eval "w('wan3').get('device')") $(lines_eval "addr('wan3')")) and VLAN line wan4 ($(lines_eval "w('wan4').get('device')") $(lines_eval "addr('wan4')")) in service after ${took} s" \
        test "$took" != never
    check "the PPPoE session's address is one the ISP hands out ($(lines_eval "addr('wan3')"))" \
        bash -c "[[ '$(lines_eval "addr('wan3')")' =~ $LINES_PPP_RE ]]"
    check "the VLAN 7 lease is one the ISP hands out ($(lines_eval "addr('wan4')") on $(lines_eval "w('wan4').get('device')"))" \
        bash -c "[[ '$(lines_eval "addr('wan4')")' =~ $LINES_VLAN_RE && '$(lines_eval "w('wan4').get('device')")' == wan4.7 ]]"
    local vfile
    vfile=$(imgvm_ssh 'networkctl status wan4.7 2>/dev/null | grep -c "Network File: /etc/systemd/network/05-routeros-wan4.7.network"' 2>/dev/null || true)
    check "networkd runs wan4.7 from the daemon's file" test "$vfile" = 1

    # Static (wan1), PPPoE (wan3) and VLAN (wan4) lines all carry new LAN connections.
    local ppp_addr vlan_addr
    ppp_addr=$(lines_eval "addr('wan3')")
    vlan_addr=$(lines_eval "addr('wan4')")
    all3() { [[ $1 == *"$IMGLAB_WAN1_RTR="* && $1 == *"$ppp_addr="* && $1 == *"$vlan_addr="* && $1 != *fail=* ]]; }
    t=$SECONDS
    seen=$(lines_sources 40)
    while ! all3 "$seen" && ((SECONDS - t < 60)); do sleep 3; seen=$(lines_sources 40); done
    check "static, PPPoE and VLAN lines all carry LAN traffic (sources: $seen)" all3 "$seen"

    # IPv6 on both: the session's from its own /64 of 2001:db8:ff03::/48, the VLAN line's
    # from 2001:db8:ff04::/64, both by SLAAC, probed (ICMPv6) and in service; the LAN
    # client's IPv6 connections leave through them too.
    took=$(lines_wait 60 "v6('wan3').get('usable') and v6('wan4').get('usable')" || true)
    if [[ $took != never ]]; then timing["lines_up6"]=$took; fi
    local ppp6 vlan6
    ppp6=$(lines_eval "addr6('wan3')")
    vlan6=$(lines_eval "addr6('wan4')")
    check "IPv6 over the PPPoE session (wan3 ${ppp6:-no address}, gateway $(lines_eval "v6('wan3').get('gateway')")) and over VLAN 7 (wan4 ${vlan6:-no address}) in service after ${took} s" \
        bash -c "[[ '$took' != never && '$ppp6' =~ ^2001:db8:ff03:[0-4]: && '$vlan6' == 2001:db8:ff04:* ]]"
    all3v6() { [[ $1 == *"$ppp6="* && $1 == *"$vlan6="* && $1 != *fail=* ]]; }
    t=$SECONDS
    seen=$(lines_sources 40 "[$IMGLAB_INET6]")
    while ! all3v6 "$seen" && ((SECONDS - t < 60)); do sleep 3; seen=$(lines_sources 40 "[$IMGLAB_INET6]"); done
    check "PPPoE and VLAN lines carry the LAN's IPv6 connections too (sources: $seen)" all3v6 "$seen"

    # The ISP ends the session (SIGTERM to its pppd: LCP terminate, PADT): the line leaves
    # service at once, and pppd dials again by itself. Timed from the ISP guest's console
    # line printed just before the kill (read by the host within 20 ms), to the daemon's
    # events on the router's clock (offset over SSH, its error printed).
    local err console from seen_at hangup_at down_at plan_at
    read -r off err < <(lines_clock_offset)
    from=$(ispg_console_lines isp)
    ispg_console_seen isp '^ISP-EVENT kill-sessions' 20 "$from" >"$IMGVM_DIR/kill.at" &
    console=$!
    ispg_cmd isp 'isp kill-sessions' >/dev/null || nok "could not end the PPPoE session on the ISP guest"
    wait "$console" || true
    seen_at=$(<"$IMGVM_DIR/kill.at")
    sleep 3 # the line is back within seconds, too soon to catch by polling over SSH
    local since=$((seen_at + off - 2000))
    hangup_at=$(lines_journal_ms "$since" 'pppd\[[0-9]+\]: (Modem hangup|.*terminated by peer)')
    # (the IPv4 side's events: IPv6 has its own, at the same moment)
    down_at=$(lines_event_ms "$since" state_change 'd.get("to") == "down" and d.get("family") == "v4"')
    plan_at=$(lines_event_ms "$since" failover '"wan3" not in d.get("active", ["wan3"]) and d.get("family") == "v4"')
    local down=never plan=never
    if [[ $seen_at =~ ^[0-9]+$ && $down_at =~ ^[0-9]+$ ]]; then
        down=$((down_at - off - seen_at))
        timing["ppp_down_ms"]=$down
    fi
    [[ $seen_at =~ ^[0-9]+$ && $plan_at =~ ^[0-9]+$ ]] && plan=$((plan_at - off - seen_at))
    if [[ $down_at =~ ^[0-9]+$ && $hangup_at =~ ^[0-9]+$ && $plan_at =~ ^[0-9]+$ ]]; then
        echo "    on the router's clock: pppd saw the session end, $((down_at - hangup_at)) ms later wan3 was down, $((plan_at - down_at)) ms after that the new plan was applied and wan3's connections reset (nft is slow under TCG)"
    fi
    check "ISP ends the PPPoE session: wan3 down ${down} ms after the kill (±${err} ms clock offset; issue's limit 1000)" \
        bash -c "[[ '$down' =~ ^-?[0-9]+$ ]] && (( $down <= 1000 ))"
    # The plan without wan3 follows at the first try, not after retries: pppd removes the
    # device meanwhile, and no plan may name it. What that costs is one nft apply, which
    # under TCG varies with the host's load (0.4-1.8 s seen), so the limit is loose and the
    # point is checked directly: no failed apply between the kill and that plan.
    local failed_at
    failed_at=$(lines_journal_ms "$((seen_at + off))" 'apply failed')
    check "... and new connections avoid it ${plan} ms after the kill, at the first apply (no failed apply before it${failed_at:+: one at $failed_at}; limit 4000)" \
        bash -c "[[ '$plan' =~ ^-?[0-9]+$ ]] && (( $plan < 4000 )) && [[ -z '$failed_at' || '$failed_at' -gt '$plan_at' ]]"
    took=$(lines_wait 60 "session('wan3').get('state') == 'up' and w('wan3').get('usable')" || true)
    if [[ $took != never ]]; then timing["ppp_back"]=$took; fi
    check "the PPPoE line comes back by itself (in service again after ${took} s)" test "$took" != never
    took=$(lines_wait 60 "v6('wan3').get('usable')" || true)
    check "... with IPv6 over the new session too (wan3 $(lines_eval "addr6('wan3')") after ${took} s more)" test "$took" != never

    # A wrong password (the ISP changes the account): authentication failed, shown as such;
    # the other lines carry the traffic.
    ispg_cmd isp "isp secret $LINES_USER not-the-password" >/dev/null
    ispg_cmd isp 'isp kill-sessions' >/dev/null
    took=$(lines_wait 60 "session('wan3').get('state') == 'auth_failed'" || true)
    check "wrong PPPoE password: wan3 shows auth_failed (\"$(lines_eval "session('wan3').get('last_error')")\") after ${took} s" \
        bash -c "[[ '$took' != never && '$(lines_eval "session('wan3').get('last_error')")' == *'authentication failed'* ]]"
    seen=$(lines_sources 20)
    check "with wan3 refused, the other lines carry the LAN's connections (sources: $seen)" \
        bash -c "[[ '$seen' != *fail=* && '$seen' != *'$ppp_addr='* ]]"

    # Back to the config the later stages expect.
    ispg_cmd isp "isp secret $LINES_USER $LINES_PASS" >/dev/null
    lines_restore_config || nok "could not put the router's config back"
    took=$(lines_wait 30 "not w('wan3') and not w('wan4')" || true)
    check "config put back: wan3 and wan4 gone from the status after ${took} s" test "$took" != never
    # The guest goes; its wiring (holding the router's wan3/wan4 taps, which QEMU keeps open
    # through the later stages' reboots) stays until the test's exit.
    ispg_stop isp
}
