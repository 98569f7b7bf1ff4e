#!/usr/bin/env bash
# Self-test of the ISP guest (ci/lib/isp-guest.sh): the guest as ISP ("server") and a second
# instance as its customer ("client"), an internet host in a network namespace on the server's
# uplink, and two namespaces with a bridge each as the wires of the two lines:
#
#   P-inet  lo 203.0.113.10, .11 (HTTP: answers with the client's address)
#           tap P-su 203.0.113.135/31  <->  server NIC uplink 203.0.113.134/31
#   P-l1    br0: tap P-sp (server NIC pppoe)  +  tap P-cp (client NIC pppoe)
#   P-l2    br0: tap P-sv (server NIC vlan)   +  tap P-cv (client NIC vlan)
#
# Checks (with timings): both guests boot and serve; a wrong PPPoE password makes the client's
# pppd exit 19 with "authentication failed" in its log; the right one brings ppp0 up and the
# client reaches the internet host through it (ping, HTTP); the server killing the session takes
# the client's ppp0 down within 1 s; a persisting client reconnects once pppoe-server is back
# after a restart; DHCP on VLAN 7 hands the client an address that reaches the internet host,
# untagged DHCP on the same NIC gets no answer. IPv6: the session (IPv6CP) and the VLAN line
# each give the client an address by SLAAC from the server's router advertisements, and the
# client reaches the internet host's IPv6 address through them.
#
#   ci/test-isp-guest.sh [--keep]     --keep: leave guests and namespaces up (--down removes them)
#
# Environment: IMGLAB_P [ispt] prefix of namespaces, taps and the state folder; ISPG_CACHE.
# Needs root; installs QEMU from Debian if missing. Prints "N passed, M failed".
set -euo pipefail
IMGLAB_P=${IMGLAB_P:-ispt}
# shellcheck source=ci/lib/isp-guest.sh
source "$(dirname "$0")/lib/isp-guest.sh"
P=$IMGLAB_P
INET_HOST=203.0.113.10
INET_HOST2=203.0.113.11
INET_HOST6=2001:db8:f000::10

keep=0
case ${1:-} in
    --keep) keep=1 ;;
    --down) down_only=1 ;;
    "") ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) ispg_die "unknown argument $1 (see --help)" ;;
esac
[[ $EUID -eq 0 ]] || ispg_die "run as root (namespaces, taps)"

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); printf 'ok     %s\n' "$*"; }
nok() { FAIL=$((FAIL + 1)); printf 'FAILED %s\n' "$*"; }
# check DESCRIPTION CMD...: ok if CMD succeeds, else FAILED and both guests' log tails
check() {
    local what=$1; shift
    if "$@"; then ok "$what"; else nok "$what"; tails; fi
}
tails() { ispg_tail server 15; ispg_tail client 15; }
# must CMD...: a step the rest depends on; stop the test (and say so) when it fails
must() { "$@" || { nok "could not: $*"; tails; exit 1; }; }
ms() { printf '%d.%03d s' $(($1 / 1000)) $(($1 % 1000)); }

down() {
    ispg_down
    local ns pid
    for ns in inet l1 l2; do # (l1, l2: ispg_down's, unless an earlier run died half-way)
        [[ -e /run/netns/$P-$ns ]] || continue
        for pid in $(ip netns pids "$P-$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
        ip netns del "$P-$ns" 2>/dev/null || true
    done
    for t in su sp sv cp cv; do ip link del "$P-$t" 2>/dev/null || true; done
    rm -rf "$ISPG_DIR"
    rmdir --ignore-fail-on-non-empty "$(dirname "$ISPG_DIR")" 2>/dev/null || true
}
if [[ ${down_only:-0} == 1 ]]; then down; exit 0; fi

cleanup() {
    local rc=$?
    if ((keep)); then
        ispg_log "--keep: guests and namespaces stay; $0 --down removes them"
    else
        down
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build -------------------------------------------------------------------------------------
command -v qemu-system-x86_64 >/dev/null || ensure_isp_pkgs qemu-system-x86
command -v python3 >/dev/null || ensure_isp_pkgs python3
command -v ip >/dev/null || ensure_isp_pkgs iproute2
t=$SECONDS
ispg_build
echo "ISP guest: $(basename "$(dirname "$ISPG_KERNEL")") ($((SECONDS - t)) s to build or find in $ISPG_CACHE)"

# --- lab ---------------------------------------------------------------------------------------
down
mkdir -p "$ISPG_DIR"
ip netns add "$P-inet"
ip -n "$P-inet" link set lo up
ip -n "$P-inet" addr add "$INET_HOST/32" dev lo
ip -n "$P-inet" addr add "$INET_HOST2/32" dev lo
ip -n "$P-inet" addr add "$INET_HOST6/128" dev lo
# The internet host answers every HTTP request with the address it came from.
setsid ip netns exec "$P-inet" python3 -c '
import http.server, socketserver
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (self.client_address[0] + "\n").encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer): daemon_threads = True
S(("0.0.0.0", 80), H).serve_forever()' </dev/null >"$ISPG_DIR/http.log" 2>&1 &

ispg_start server server "$P-su" "$P-sp" "$P-sv"
ispg_start client client - "$P-cp" "$P-cv"
ispg_uplink "$P-inet" "$P-su"
ispg_bridge "$P-l1" "$P-sp" "$P-cp"
ispg_bridge "$P-l2" "$P-sv" "$P-cv"
if s_ready=$(ispg_wait_ready server 60) && c_ready=$(ispg_wait_ready client 60); then
    ok "both guests boot under TCG: server serving ${s_ready} s after QEMU started, client ready ${c_ready} s (in parallel, host load $(cut -d' ' -f1 /proc/loadavg))"
else
    nok "the guests did not boot within 60 s"
    exit 1
fi
up_ms=$(ispg_now_ms)
check "server routes its uplink: the internet host answers its ping" ispg_cmd server "ping -c 1 -W 3 $INET_HOST >/dev/null"

# --- PPPoE: wrong password ------------------------------------------------------------------------
# wait_rc TIMEOUT: until the client's pppd has exited; prints its exit code
wait_rc() {
    local deadline=$((SECONDS + $1)) rc
    while ((SECONDS < deadline)); do
        rc=$(ispg_cmd client 'isp ppp-rc' 10 || true)
        [[ $rc =~ ^[0-9]+$ ]] && { echo "$rc"; return 0; }
        sleep 0.5
    done
    echo "${rc:-none}"
    return 1
}
t=$(ispg_now_ms)
must ispg_cmd client 'isp ppp-start isp-user wrong-password'
rc=$(wait_rc 60 || true)
auth_line=$(ispg_cmd client 'grep -i "authentication failed" /var/log/ppp-client.log' || true)
# pppd exits 19 (EXIT_AUTH_TOPEER_FAILED), unless the PADT the server sends once its session
# pppd has refused the client arrives before the client's pppd has finished terminating the
# link: then "Modem hangup" overwrites the status and it exits 16. A real access server races
# the same way, so the log line is what tells an authentication failure for sure.
auth_rc() { [[ $1 == 19 || $1 == 16 ]]; }
auth_failed() { auth_rc "$1" && [[ -n $2 ]]; } # EXIT_CODE LOG_LINES
check "wrong password: the client's pppd exits after $(ms $(($(ispg_now_ms) - t))) with 19, or 16 when the server's PADT overtook it (exit code $rc)" auth_rc "$rc"
check "wrong password: pppd's log names it [${auth_line//$'\n'/ | }]" test -n "$auth_line"
echo "  client pppd log, wrong password:"
ispg_cmd client 'cat /var/log/ppp-client.log' | sed 's/^/    /'
ispg_cmd client ': >/var/log/ppp-client.log'

# The same with PAP, after the server changed the account's password (the client keeps the old one).
must ispg_cmd server 'isp auth pap && isp secret isp-user changed-password'
t=$(ispg_now_ms)
must ispg_cmd client 'isp ppp-start isp-user isp-pass'
rc=$(wait_rc 60 || true)
auth_line=$(ispg_cmd client 'grep -i "authentication failed" /var/log/ppp-client.log' || true)
check "PAP, password changed on the server: the client's pppd exits after $(ms $(($(ispg_now_ms) - t))) (exit code $rc), its log names it [${auth_line//$'\n'/ | }]" \
    auth_failed "$rc" "$auth_line"
must ispg_cmd server 'isp auth chap && isp secret isp-user isp-pass'
ispg_cmd client ': >/var/log/ppp-client.log'

# --- PPPoE: session up, traffic -------------------------------------------------------------------
L=$(ispg_console_lines client)
t=$(ispg_now_ms)
must ispg_cmd client 'isp ppp-start'
if ispg_wait_console client '^ISP-EVENT link ppp0 up' 30 "$L" >/dev/null; then
    ok "PPPoE session up: client ppp0 up $(ms $(($(ispg_now_ms) - t))) after the test started pppd"
else
    nok "PPPoE session: client ppp0 not up within 30 s"; tails
fi
addr=$(ispg_cmd client 'ip -4 addr show dev ppp0' || true)
ppp_addr=$(awk '/inet /{ print $2; exit }' <<<"$addr")
check "PPPoE: ppp0 has an address of the pool 192.0.2.18-.22 and peer 192.0.2.17 [$(awk '/inet /{print $2, $3, $4}' <<<"$addr")]" \
    grep -qE 'inet 192\.0\.2\.(1[89]|2[0-2]) peer 192\.0\.2\.17/' <<<"$addr"
mtu=$(ispg_cmd client 'cat /sys/class/net/ppp0/mtu' || true)
check "PPPoE: ppp0 MTU 1492 [$mtu]" test "$mtu" = 1492
check "PPPoE: the client pings the internet host $INET_HOST through ppp0" \
    ispg_cmd client "ping -c 2 -W 3 $INET_HOST >/dev/null"
src=$(ispg_cmd client "isp http $INET_HOST" || true)
check "PPPoE: HTTP to the internet host over TCP, which sees the session's address [$src]" test "$src" = "$ppp_addr"
# addr6 IFACE TRIES -> the client's global IPv6 address on IFACE (SLAAC)
addr6() { ispg_cmd client "isp addr6 $1 $2" $(($2 + 10)) || true; }
t=$(ispg_now_ms)
a6=$(addr6 ppp0 30)
check "PPPoE IPv6: IPv6CP up and ppp0 has an address by SLAAC from the session's /64 in 2001:db8:ff03::/48 after $(ms $(($(ispg_now_ms) - t))) [${a6:-none}]" \
    bash -c "[[ '$a6' =~ ^2001:db8:ff03:[0-4]:[0-9a-f:]+/64$ ]]"
check "PPPoE IPv6: the client pings the internet host $INET_HOST6 through ppp0" \
    ispg_cmd client "ping6 -c 2 -W 3 $INET_HOST6 >/dev/null"
sess=$(ispg_cmd server 'isp sessions' || true)
check "server lists the session [$sess]" grep -q "peer=$ppp_addr client=52:54:00:15:01:02" <<<"$sess"

# --- PPPoE: the server kills the session --------------------------------------------------------------
# Timed from the server's console line written just before the kill to the client's line for
# ppp0 going down (both read by the host as they arrive, 20 ms apart at most), and, as an upper
# bound, from the moment the test sends the command.
L=$(ispg_console_lines client)
ispg_console_seen server '^ISP-EVENT kill-sessions' 10 "$(ispg_console_lines server)" >"$ISPG_DIR/kill.at" &
seen=$!
t=$(ispg_now_ms)
must ispg_cmd server 'isp kill-sessions TERM' >/dev/null
if c_at=$(ispg_console_seen client '^ISP-EVENT link ppp0 down' 10 "$L") && wait "$seen"; then
    s_at=$(<"$ISPG_DIR/kill.at")
    check "server kills the session (SIGTERM to its pppd): client ppp0 down $(ms $((c_at - s_at))) after the kill (limit 1 s; $(ms $((c_at - t))) after the test sent the command)" \
        test $((c_at - s_at)) -le 1000
else
    nok "server killed the session: client ppp0 still up after 10 s"; tails
fi
rc=$(wait_rc 20 || true)
echo "  client pppd after the server killed the session: exit code $rc; its log:"
ispg_cmd client 'cat /var/log/ppp-client.log' | sed 's/^/    /'
check "client pppd exits 16 (hangup: the server's PADT) after the server killed the session (exit code $rc)" test "$rc" = 16

# --- PPPoE: pppoe-server restart, a persisting client comes back -----------------------------------
must ispg_cmd client ': >/var/log/ppp-client.log; isp ppp-start persist'
if ! ispg_wait_console client '^ISP-EVENT link ppp0 up' 30 "$(ispg_console_lines client)" >/dev/null; then
    nok "persisting client: ppp0 not up within 30 s"; tails
fi
L=$(ispg_console_lines client)
t=$(ispg_now_ms)
must ispg_cmd server 'isp pppoe-server stop' >/dev/null
if ispg_wait_console client '^ISP-EVENT link ppp0 down' 10 "$L" >/dev/null; then
    ok "pppoe-server stopped: client ppp0 down after $(ms $(($(ispg_now_ms) - t)))"
else
    nok "pppoe-server stopped: client ppp0 still up after 10 s (sessions: $(ispg_cmd server 'isp sessions'))"
fi
L=$(ispg_console_lines client)
t=$(ispg_now_ms)
must ispg_cmd server 'isp pppoe-server start' >/dev/null
if ispg_wait_console client '^ISP-EVENT link ppp0 up' 60 "$L" >/dev/null; then
    ok "pppoe-server started again: the client's pppd (persist) reconnected after $(ms $(($(ispg_now_ms) - t)))"
else
    nok "pppoe-server started again: no reconnect within 60 s"; tails
fi
addr=$(ispg_cmd client 'ip -4 addr show dev ppp0' | awk '/inet /{ print $2; exit }' || true)
src=$(ispg_cmd client "isp http $INET_HOST" || true)
check "after the reconnect the client reaches the internet host again from $addr [$src]" test "$src" = "$addr"
must ispg_cmd client 'isp ppp-stop'

# --- VLAN 7 DHCP line --------------------------------------------------------------------------------
untagged=$(ispg_cmd client 'isp dhcp-client vlan 4' 30 || true)
check "untagged DHCP on the VLAN line gets no answer in 4 tries [${untagged:-none}]" test -z "$untagged"
must ispg_cmd client 'isp vlan vlan 7'
t=$(ispg_now_ms)
lease=$(ispg_cmd client 'isp dhcp-client vlan.7 10' 30 || true)
check "VLAN 7: DHCP hands the client ${lease:-nothing} after $(ms $(($(ispg_now_ms) - t))) (range 192.0.2.26-.30/29)" \
    bash -c "[[ '$lease' =~ ^192\.0\.2\.(2[6-9]|30)/29$ ]]"
gw=$(ispg_cmd client 'cat /run/dhcp.vlan.7.router' || true)
check "VLAN 7: the lease names the server 192.0.2.25 as router [$gw]" test "$gw" = 192.0.2.25
ispg_cmd client "ip route replace $INET_HOST2/32 via $gw dev vlan.7" || true
check "VLAN 7: the client pings the internet host $INET_HOST2 through the VLAN line" \
    ispg_cmd client "ping -c 2 -W 3 $INET_HOST2 >/dev/null"
src=$(ispg_cmd client "isp http $INET_HOST2" || true)
check "VLAN 7: HTTP to the internet host sees the lease's address [$src]" test "$src" = "${lease%/*}"
t=$(ispg_now_ms)
a6=$(addr6 vlan.7 30)
check "VLAN 7 IPv6: vlan.7 has an address by SLAAC from 2001:db8:ff04::/64 after $(ms $(($(ispg_now_ms) - t))) [${a6:-none}]" \
    bash -c "[[ '$a6' =~ ^2001:db8:ff04::?[0-9a-f:]*/64$ ]]"
check "VLAN 7 IPv6: the client pings the internet host $INET_HOST6 through the VLAN line" \
    ispg_cmd client "ping6 -c 2 -W 3 $INET_HOST6 >/dev/null"
dns=$(ispg_cmd client "nslookup internet.test $gw 2>&1 | awk '/^Address/ { a = \$NF } END { print a }'" || true)
check "VLAN 7: the ISP's DNS answers internet.test = $INET_HOST [$dns]" test "$dns" = "$INET_HOST"

echo
echo "Timings: server serving ${s_ready} s after QEMU start (client ${c_ready} s); the tests took $(ms $(($(ispg_now_ms) - up_ms))) after that; $((SECONDS)) s in all"
echo "$PASS passed, $FAIL failed"
((FAIL == 0))
