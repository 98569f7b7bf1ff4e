# shellcheck shell=bash
# The network around the QEMU router of ci/image-test.sh: two emulated ISPs with an
# "internet" host behind them and a LAN client, each in its own network namespace, each
# linked to one of the router's NICs by a tap device. Same addressing plan as ci/lab.sh
# (documentation ranges only); nothing leaves the namespaces.
#
#   P-isp1  tap P-w1 192.0.2.1/29      DNS (dnsmasq)              <-> router wan1 192.0.2.2 (static)
#   P-isp2  tap P-w2 198.51.100.1/29   DNS + DHCP (198.51.100.2)  <-> router wan2 (DHCP)
#   P-ispN  up 203.0.113.(128+2N)/31 <-> P-inet ispN 203.0.113.(129+2N)/31
#   P-inet  lo 203.0.113.10 (HTTP server that answers with the client's address), .11
#   P-lan   tap P-l (MAC 02:00:00:52:01:32) DHCP client <-> router lan 192.168.1.1/24
# and IPv6 (ci/lib/lab-common.sh's plan): ISP N advertises 2001:db8:ff0N::/64 on its tap
# (SLAAC for the router's WAN), uplinks 2001:db8:fe0N::/64, the internet host
# 2001:db8:f000::10; the LAN client takes fd7a:9e51:5c34::/64 from the router's RAs.
#
# The taps are made in the root namespace for QEMU to open, and moved into their
# namespaces once QEMU holds them (imglab_attach). Source it; uses img_log / img_die.

# shellcheck source=ci/lib/lab-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lab-common.sh"

IMGLAB_P=${IMGLAB_P:-img}
IMGLAB_DIR=${IMGLAB_DIR:-/run/routeros-image-lab/$IMGLAB_P}
IMGLAB_LAN_MAC=02:00:00:52:01:32
IMGLAB_LAN_STATIC=192.168.1.50
IMGLAB_INET=203.0.113.10
IMGLAB_INET2=203.0.113.11
# IPv6 as in ci/lab.sh: the internet host, each ISP advertising its /64 to the router's WAN
# (SLAAC), the LAN client configured by the router's own router advertisements.
IMGLAB_INET6=$LAB_INET_HOST6
IMGLAB_WAN1_ISP=192.0.2.1
IMGLAB_WAN1_RTR=192.0.2.2
IMGLAB_WAN2_ISP=198.51.100.1
IMGLAB_WAN2_RTR=198.51.100.2
IMGLAB_ROUTER_LAN=192.168.1.1
# The router's NICs: name on the host side, guest MAC (matched by cloud-init/qemu/network-config).
IMGLAB_TAP_LAN=$IMGLAB_P-l
IMGLAB_TAP_W1=$IMGLAB_P-w1
IMGLAB_TAP_W2=$IMGLAB_P-w2
# WAN 3 (PPPoE) and WAN 4 (VLAN 7 + DHCP) lead to the ISP guest (ci/lib/image-lines.sh); until
# it is wired they are taps without a peer.
IMGLAB_TAP_W3=$IMGLAB_P-w3
IMGLAB_TAP_W4=$IMGLAB_P-w4
IMGLAB_MAC_LAN=52:54:00:52:00:03
IMGLAB_MAC_W1=52:54:00:52:00:01
IMGLAB_MAC_W2=52:54:00:52:00:02
IMGLAB_MAC_W3=52:54:00:52:00:04
IMGLAB_MAC_W4=52:54:00:52:00:05

imglab_ns() { local ns=$1; shift; ip netns exec "$IMGLAB_P-$ns" "$@"; }

# imglab_bg NS NAME CMD...: run CMD in namespace NS in the background, pid in $IMGLAB_DIR/NAME.pid
imglab_bg() {
    local ns=$1 name=$2; shift 2
    setsid ip netns exec "$IMGLAB_P-$ns" "$@" </dev/null >>"$IMGLAB_DIR/$name.log" 2>&1 &
    echo $! >"$IMGLAB_DIR/$name.pid"
}

imglab_down() {
    local f pid ns
    for f in "$IMGLAB_DIR"/*.pid; do
        [[ -e $f ]] || continue
        pid=$(<"$f")
        [[ $pid =~ ^[0-9]+$ ]] && kill -TERM "$pid" 2>/dev/null || true
        rm -f "$f"
    done
    for ns in isp1 isp2 inet lan; do
        if [[ -e /run/netns/$IMGLAB_P-$ns ]]; then
            for pid in $(ip netns pids "$IMGLAB_P-$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
            ip netns del "$IMGLAB_P-$ns" 2>/dev/null || true
        fi
    done
    for f in "$IMGLAB_TAP_LAN" "$IMGLAB_TAP_W1" "$IMGLAB_TAP_W2" "$IMGLAB_TAP_W3" "$IMGLAB_TAP_W4"; do
        ip link del "$f" 2>/dev/null || true
    done
    rm -rf /etc/netns/"$IMGLAB_P"-lan
    return 0
}

# imglab_up: namespaces, ISPs, internet host and the five taps (still in the root namespace).
imglab_up() {
    imglab_down
    rm -rf "$IMGLAB_DIR" # no leases, logs or pids of an earlier lab
    mkdir -p "$IMGLAB_DIR"
    local ns i
    for ns in isp1 isp2 inet lan; do
        ip netns add "$IMGLAB_P-$ns"
        ip -n "$IMGLAB_P-$ns" link set lo up
    done
    imglab_ns inet sysctl -qw net.ipv4.ip_forward=1
    ip -n "$IMGLAB_P-inet" addr add "$IMGLAB_INET/32" dev lo
    ip -n "$IMGLAB_P-inet" addr add "$IMGLAB_INET2/32" dev lo
    ipv6_forwarder "$IMGLAB_P-inet"
    ip -n "$IMGLAB_P-inet" addr add "$IMGLAB_INET6/128" dev lo
    # ci/image-run.sh --wans-lab: the factory config's health targets answer too (inside this
    # namespace; the tests set theirs to the two addresses above).
    if [[ ${IMGLAB_DEFAULT_TARGETS:-0} == 1 ]]; then
        ip -n "$IMGLAB_P-inet" addr add 1.1.1.1/32 dev lo
        ip -n "$IMGLAB_P-inet" addr add 9.9.9.9/32 dev lo
    fi
    for i in 1 2; do
        imglab_ns "isp$i" sysctl -qw net.ipv4.ip_forward=1
        ipv6_forwarder "$IMGLAB_P-isp$i"
        link_isp_uplink "$IMGLAB_P-isp$i" "$IMGLAB_P-inet" "$i"
        link_isp_uplink6 "$IMGLAB_P-isp$i" "$IMGLAB_P-inet" "$i"
    done
    for f in "$IMGLAB_TAP_LAN" "$IMGLAB_TAP_W1" "$IMGLAB_TAP_W2" "$IMGLAB_TAP_W3" "$IMGLAB_TAP_W4"; do
        ip tuntap add dev "$f" mode tap
    done
    # The LAN client resolves through what DHCP gives it (dhclient writes this file).
    mkdir -p /etc/netns/"$IMGLAB_P"-lan
    : >/etc/netns/"$IMGLAB_P"-lan/resolv.conf
    imglab_services
}

imglab_services() {
    # Internet host: answers every HTTP request with the address it came from, on its IPv4
    # and its IPv6 address.
    imglab_bg inet http python3 -c '
import http.server, socket, socketserver, sys, threading
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (self.client_address[0] + "\n").encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer): daemon_threads = True
class S6(S): address_family = socket.AF_INET6
threading.Thread(target=S6((sys.argv[2], 80), H).serve_forever, daemon=True).start()
S((sys.argv[1], 80), H).serve_forever()' "$IMGLAB_INET" "$IMGLAB_INET6"
    # LAN client: a web server for the port-forward test (answers "client").
    mkdir -p "$IMGLAB_DIR/www" && echo client >"$IMGLAB_DIR/www/index.html"
    imglab_bg lan www python3 -m http.server 8000 --bind 0.0.0.0 --directory "$IMGLAB_DIR/www"
}

# imglab_attach: QEMU holds the taps now; move each into its namespace and address it.
imglab_attach() {
    ip link set "$IMGLAB_TAP_LAN" netns "$IMGLAB_P-lan"
    ip -n "$IMGLAB_P-lan" link set "$IMGLAB_TAP_LAN" address "$IMGLAB_LAN_MAC"
    ip -n "$IMGLAB_P-lan" link set "$IMGLAB_TAP_LAN" up
    imglab_attach_wans
}

# imglab_attach_wans: the ISPs' side of the router's wan1 and wan2 taps, and their servers.
imglab_attach_wans() {
    ip link set "$IMGLAB_TAP_W1" netns "$IMGLAB_P-isp1"
    ip link set "$IMGLAB_TAP_W2" netns "$IMGLAB_P-isp2"
    ip -n "$IMGLAB_P-isp1" addr add "$IMGLAB_WAN1_ISP/29" dev "$IMGLAB_TAP_W1"
    ip -n "$IMGLAB_P-isp2" addr add "$IMGLAB_WAN2_ISP/29" dev "$IMGLAB_TAP_W2"
    ip -n "$IMGLAB_P-isp1" addr add "$(wan6_isp_addr 1)/64" dev "$IMGLAB_TAP_W1" nodad
    ip -n "$IMGLAB_P-isp2" addr add "$(wan6_isp_addr 2)/64" dev "$IMGLAB_TAP_W2" nodad
    local t
    ip -n "$IMGLAB_P-isp1" link set "$IMGLAB_TAP_W1" up
    ip -n "$IMGLAB_P-isp2" link set "$IMGLAB_TAP_W2" up
    # Each ISP's DNS server answers internet.test with the internet host and isp.test with its
    # own address (tells which ISP answered); ISP 2 also hands the router its WAN address, and
    # ISP 1 too when IMGLAB_ISP1_DHCP=1 (the tests give wan1 a static address instead).
    local common=(--keep-in-foreground --no-resolv --no-hosts --bind-interfaces --log-facility=-
        --address=/internet.test/$IMGLAB_INET --user=root)
    # isp_dhcp N ISP_ADDR ROUTER_ADDR: dnsmasq's options for ISP N handing out ROUTER_ADDR.
    isp_dhcp() {
        dhcp=(--dhcp-range="$3,$3,255.255.255.248,600" --dhcp-option=option:router,"$2"
            --dhcp-option=option:dns-server,"$2" --dhcp-leasefile="$IMGLAB_DIR/isp$1.leases"
            --dhcp-authoritative)
    }
    local dhcp=() dhcp1=()
    if [[ ${IMGLAB_ISP1_DHCP:-0} == 1 ]]; then
        isp_dhcp 1 "$IMGLAB_WAN1_ISP" "$IMGLAB_WAN1_RTR"
        dhcp1=("${dhcp[@]}")
    fi
    isp_dhcp 2 "$IMGLAB_WAN2_ISP" "$IMGLAB_WAN2_RTR"
    # ra N TAP: router advertisements of ISP N's /64 for SLAAC, every 10 s and on solicitation.
    ra() { echo --enable-ra --dhcp-range="::,constructor:$2,ra-only,64" --ra-param="$2,10,1800"; }
    # shellcheck disable=SC2046  # ra's words are separate options
    imglab_bg isp1 dns1 dnsmasq "${common[@]}" --pid-file="$IMGLAB_DIR/dnsmasq1.pidfile" \
        --listen-address="$IMGLAB_WAN1_ISP" --interface="$IMGLAB_TAP_W1" \
        --address=/isp.test/$IMGLAB_WAN1_ISP "${dhcp1[@]}" $(ra 1 "$IMGLAB_TAP_W1")
    # shellcheck disable=SC2046
    imglab_bg isp2 dns2 dnsmasq "${common[@]}" --pid-file="$IMGLAB_DIR/dnsmasq2.pidfile" \
        --listen-address="$IMGLAB_WAN2_ISP" --interface="$IMGLAB_TAP_W2" \
        --address=/isp.test/$IMGLAB_WAN2_ISP "${dhcp[@]}" --dhcp-host="$IMGLAB_MAC_W2,$IMGLAB_WAN2_RTR" \
        $(ra 2 "$IMGLAB_TAP_W2")
    for t in dns1 dns2; do
        sleep 0.2
        kill -0 "$(<"$IMGLAB_DIR/$t.pid")" 2>/dev/null || { cat "$IMGLAB_DIR/$t.log" >&2; img_die "ISP $t server did not start"; }
    done
}

# imglab_lan_dhcp [TIMEOUT]: the LAN client asks the router for an address (dhclient, one
# try); prints the address. dhclient forks into the background once it has a lease and gives
# its script none of our environment: the script writes to a fixed path, and the background
# dhclient is stopped at once (the lease outlives the test).
imglab_lan_dhcp() {
    local timeout=${1:-60} out=$IMGLAB_DIR/lan.address pidfile=$IMGLAB_DIR/dhclient.pidfile rc=0

    {
        echo '#!/bin/sh'
        echo '# Minimal dhclient script for the LAN client namespace.'
        echo 'case $reason in'
        echo 'BOUND|RENEW|REBIND|REBOOT)'
        echo '    ip -4 addr flush dev "$interface"  # IPv4 only: the link-local address stays'
        echo '    ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface"'
        echo '    for r in $new_routers; do ip route replace default via "$r"; break; done'
        echo '    : >/etc/resolv.conf'
        echo '    for d in $new_domain_name_servers; do echo "nameserver $d" >>/etc/resolv.conf; done'
        echo "    echo \"\$new_ip_address\" >$out ;;"
        echo 'esac'
        echo 'exit 0'
    } >"$IMGLAB_DIR/dhclient-script"
    chmod 755 "$IMGLAB_DIR/dhclient-script"
    # dhclient waits 10 s after its first DISCOVER by default: the boot figures would then
    # measure its back-off, not the router. Ask every second instead.
    printf 'initial-interval 1;\nbackoff-cutoff 1;\n' >"$IMGLAB_DIR/dhclient.conf"
    rm -f "$out"
    # -d: stays in the foreground (no fork to lose track of); stopped once the lease is there.
    ip netns exec "$IMGLAB_P-lan" dhclient -d -1 -v -sf "$IMGLAB_DIR/dhclient-script" \
        -cf "$IMGLAB_DIR/dhclient.conf" -lf "$IMGLAB_DIR/dhclient.leases" -pf "$pidfile" \
        "$IMGLAB_TAP_LAN" >>"$IMGLAB_DIR/dhclient.log" 2>&1 &
    local pid=$! deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)) && [[ ! -s $out ]] && kill -0 "$pid" 2>/dev/null; do sleep 0.5; done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    [[ -s $out ]] || rc=1
    ((rc == 0)) && [[ -s $out ]] && cat "$out"
}
# imglab_isp_cut N / imglab_isp_restore N: ISP N loses (regains) its uplink to the internet.
imglab_isp_cut() { ip -n "$IMGLAB_P-isp$1" link set dev up down; }
imglab_isp_restore() {
    ip -n "$IMGLAB_P-isp$1" link set dev up up
    ip -n "$IMGLAB_P-isp$1" route replace default via 203.0.113.$((129 + 2 * $1))
    ip -n "$IMGLAB_P-isp$1" -6 route replace default via "$(uplink6_inet_addr "$1")" dev up
}
