#!/usr/bin/env bash
# Network-namespace lab for the multi-WAN router: one router namespace, N emulated ISPs with
# shaped links, an "internet" host and a LAN client. Run as root.
#
#   ci/lab.sh up|down|status|daemon-start|daemon-stop
#   ci/lab.sh isp-dhcp I FIRST [LAST]   (re)start ISP I's DHCP server handing out FIRST..LAST
#   ci/lab.sh networkctl ARGS...        networkctl of the router's own networkd (LAB_WAN_MODES)
#   ci/lab.sh isp-ra I                  (re)start ISP I's IPv6 router advertisements
#   ci/lab.sh isp-pd I                  (re)start ISP I's DHCPv6 prefix delegation (Kea)
#
# Topology (P = $LAB_PREFIX, i = 1..$LAB_WANS):
#
#   P-lan  eth0 192.168.1.100/24 ── lan0 192.168.1.1/24  P-rtr
#   P-rtr  wan<i> <router addr>/29 ── down <isp addr>/29  P-isp<i>   (tbf: download rate)
#   P-isp<i> up 203.0.113.(128+2i)/31 ── isp<i> 203.0.113.(129+2i)/31  P-inet  (tbf: upload rate)
#   P-inet lo 203.0.113.10/32, 203.0.113.11/32 (the internet host and a second target)
#
#   WAN 1: 192.0.2.0/29, WAN 2: 198.51.100.0/29, WAN i>=3: 192.0.2.(8*(i-1))/29;
#   the ISP is .1 (+1) and the router .2 (+2) of each. ISPs do not NAT: the router masquerades,
#   so the internet host sees the router's WAN address and tests can tell which WAN was used.
#
# IPv6 (LAB_IPV6=1, the default; XX = i as two hex digits, plan in ci/lib/lab-common.sh):
#
#   P-lan  eth0 fd7a:9e51:5c34::100/64 (SLAAC) ── lan0 fd7a:9e51:5c34::1/64  P-rtr (sends RAs)
#   P-rtr  wan<i> 2001:db8:ffXX::2/64 (SLAAC) ── down 2001:db8:ffXX::1/64  P-isp<i> (sends RAs)
#   P-isp<i> up 2001:db8:feXX::1/64 ── isp<i> 2001:db8:feXX::2/64  P-inet
#   P-inet lo 2001:db8:f000::10/128, 2001:db8:f000::11/128
#
#   A WAN with mode dhcp is an ISP that only delegates: its RAs (radvd) have M and O set and
#   no SLAAC prefix, and Kea DHCPv6 in P-isp<i> delegates a /56 from 2001:db8:1XX::/48, which
#   the ISP and the internet namespace route to the router. networkd gives the line an address
#   in the delegated prefix's first /64 (2001:db8:1XX::<EUI-64>).
#
#   The router forwards IPv6 and takes each lab-addressed WAN's address and default route
#   (proto ra, via the ISP's link-local address, main table) from the ISP's router
#   advertisements (dnsmasq, accept_ra=2); the LAN client takes its address and default route
#   from the router's. `up` waits until those addresses passed DAD and the routes are there.
#
# Environment knobs (defaults in brackets):
#   LAB_PREFIX [pnr]          prefix of every namespace; several labs can coexist
#   LAB_WANS [2]              number of ISPs, 1..16
#   LAB_RATES ["100 50"]      Mbit/s per ISP (both directions); missing entries are 50
#   LAB_WEIGHTS ["2 1"]       weight per WAN in the generated config; missing entries are 1
#   LAB_WAN_MODES [""]        per WAN: "-" (the lab sets the router's address, no `mode` in the
#                             config), "dhcp" (`mode = "dhcp"`, dnsmasq in the ISP hands out the
#                             router address; with IPv6 the ISP only delegates, see above) or "static" (`mode = "static"` with address and
#                             gateway); missing entries are "-". With any mode set the router
#                             namespace runs its own systemd-networkd (ci/lib/lab-networkd.sh)
#                             and the daemon brings those lines up through it.
#   LAB_BIN [target/release]  folder with routeros-watchdog (relative paths: from the repo root)
#   LAB_DIR [/run/routeros-lab/$LAB_PREFIX]  config, state dir, socket, logs, pid
#   LAB_EXTRA_TOML            file appended to the generated config (e.g. [[policies]])
#   LAB_NO_DAEMON [0]         1: build the topology only
#   LAB_BUILD [auto]          auto: cargo build --release for the default LAB_BIN (cargo skips
#                             an up-to-date build), or when a custom LAB_BIN lacks the binary;
#                             1: always run it; 0: never
#   LAB_CHECK_INTERVAL [1] LAB_CHECK_TIMEOUT [1] LAB_RETRY_COUNT [3]   [health_check] values
#   LAB_TARGETS ["203.0.113.10 203.0.113.11"]  [health_check] targets, space-separated
#   LAB_HEALTH_TOML           extra lines inside [health_check] (e.g. "recovery_count = 2")
#   LAB_ROUTING_TOML          extra lines inside [routing] (e.g. "move_back_on_recovery = true")
#   LAB_LOG_LEVEL [DEBUG]     [logging] level
#   LAB_READY_TIMEOUT [10]    seconds to wait for the daemon's control socket and nft table
#   LAB_STOP_TIMEOUT [10]     seconds to wait for the daemon to exit on SIGTERM
#   LAB_BURST_MIN [32768]     minimum tbf burst in bytes (burst = rate/250, i.e. one 4 ms tick)
#   LAB_TBF_LATENCY [50ms]    tbf queue length expressed as latency
#   LAB_INSTALL [1]           0: fail on missing tools instead of apt-get installing them
#   LAB_KEEP_ON_FAIL [0]      1: leave a half-built lab in place when `up` fails (debugging)
#   LAB_WEB_ARGS              extra routeros-web arguments, split on spaces (e.g.
#                             "--upgrade-dir DIR --os-release FILE")
#   LAB_IPV6 [1]              0: an IPv4-only lab (no IPv6 addresses, RAs or forwarding)
#   LAB_V6_TIMEOUT [10]       seconds `up` waits for the SLAAC addresses and RA routes
#   LAB_RA_INTERVAL [10]      seconds between the unsolicited RAs of the ISPs and the LAN
#   LAB_TARGETS6 ["2001:db8:f000::10 2001:db8:f000::11"]  `[health_check] targets6` (IPv6 labs)
set -euo pipefail

# shellcheck source=ci/lib/lab-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/lab-common.sh"

LAB_PREFIX=${LAB_PREFIX:-pnr}
LAB_WANS=${LAB_WANS:-2}
LAB_RATES=${LAB_RATES:-100 50}
LAB_WEIGHTS=${LAB_WEIGHTS:-2 1}
LAB_WAN_MODES=${LAB_WAN_MODES:-}
LAB_BIN=${LAB_BIN:-target/release}
LAB_DIR=${LAB_DIR:-/run/routeros-lab/$LAB_PREFIX}
LAB_EXTRA_TOML=${LAB_EXTRA_TOML:-}
LAB_NO_DAEMON=${LAB_NO_DAEMON:-0}
LAB_BUILD=${LAB_BUILD:-auto}
LAB_CHECK_INTERVAL=${LAB_CHECK_INTERVAL:-1}
LAB_CHECK_TIMEOUT=${LAB_CHECK_TIMEOUT:-1}
LAB_RETRY_COUNT=${LAB_RETRY_COUNT:-3}
LAB_TARGETS=${LAB_TARGETS:-$LAB_INET_HOST $LAB_INET_HOST2}
LAB_HEALTH_TOML=${LAB_HEALTH_TOML:-}
LAB_ROUTING_TOML=${LAB_ROUTING_TOML:-}
LAB_LOG_LEVEL=${LAB_LOG_LEVEL:-DEBUG}
LAB_READY_TIMEOUT=${LAB_READY_TIMEOUT:-10}
LAB_STOP_TIMEOUT=${LAB_STOP_TIMEOUT:-10}
LAB_BURST_MIN=${LAB_BURST_MIN:-32768}
LAB_TBF_LATENCY=${LAB_TBF_LATENCY:-50ms}
LAB_INSTALL=${LAB_INSTALL:-1}
LAB_KEEP_ON_FAIL=${LAB_KEEP_ON_FAIL:-0}
LAB_IPV6=${LAB_IPV6:-1}
LAB_V6_TIMEOUT=${LAB_V6_TIMEOUT:-10}
LAB_RA_INTERVAL=${LAB_RA_INTERVAL:-10}
LAB_TARGETS6=${LAB_TARGETS6:-$LAB_INET_HOST6 $LAB_INET_HOST6_2}

P=$LAB_PREFIX
RTR=$P-rtr
LAN=$P-lan
INET=$P-inet
[[ $LAB_BIN = /* ]] || LAB_BIN=$LAB_REPO_ROOT/$LAB_BIN
WATCHDOG=$LAB_BIN/routeros-watchdog
KILLSWITCH=$LAB_BIN/routeros-kill-switch
WEB=$LAB_BIN/routeros-web
# The dashboard: routeros-web in the router namespace (LAN side 192.168.1.1:8080), and for the
# default lab a forward from this machine's 127.0.0.1:8080 so a local browser reaches it.
LAB_WEB=${LAB_WEB:-1}
LAB_WEB_ARGS=${LAB_WEB_ARGS:-}
if [[ $LAB_PREFIX == pnr ]]; then LAB_WEB_LOCAL=${LAB_WEB_LOCAL:-8080}; else LAB_WEB_LOCAL=${LAB_WEB_LOCAL:-}; fi
CONFIG=$LAB_DIR/routeros.toml
PIDFILE=$LAB_DIR/daemon.pid
DAEMON_LOG=$LAB_DIR/daemon.log
SOCKET=$LAB_DIR/control.sock
MARKER=$LAB_DIR/.routeros-lab   # down only removes a LAB_DIR that carries this marker

validate_knobs() {
    # Namespace names end up in /run/netns and in grep patterns: keep the prefix simple.
    [[ $P =~ ^[a-zA-Z0-9_]{1,20}$ ]] || die "LAB_PREFIX must be 1-20 letters, digits or _"
    if ! [[ $LAB_WANS =~ ^[0-9]+$ ]] || ((LAB_WANS < 1 || LAB_WANS > 16)); then
        die "LAB_WANS must be 1..16 (got '$LAB_WANS')"
    fi
    local i r w
    for ((i = 1; i <= LAB_WANS; i++)); do
        r=$(wan_rate "$i"); w=$(wan_weight "$i")
        if ! [[ $r =~ ^[0-9]+$ ]] || ((r == 0)); then
            die "LAB_RATES entry $i is not a positive integer: '$r'"
        fi
        [[ $w =~ ^[0-9]+$ ]] || die "LAB_WEIGHTS entry $i is not an integer: '$w'"
        [[ $(wan_mode "$i") =~ ^(-|dhcp|static)$ ]] || die "LAB_WAN_MODES entry $i is not -, dhcp or static: '$(wan_mode "$i")'"
    done
    local t
    # shellcheck disable=SC2086  # LAB_TARGETS is a space-separated list
    for t in $LAB_TARGETS; do
        [[ $t =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || die "LAB_TARGETS entry is not an IPv4 address: '$t'"
    done
    [[ -n ${LAB_TARGETS// /} ]] || die "LAB_TARGETS is empty"
    [[ $LAB_IPV6 =~ ^[01]$ ]] || die "LAB_IPV6 must be 0 or 1 (got '$LAB_IPV6')"
    [[ $LAB_V6_TIMEOUT =~ ^[0-9]+$ ]] || die "LAB_V6_TIMEOUT must be whole seconds (got '$LAB_V6_TIMEOUT')"
    if ! [[ $LAB_RA_INTERVAL =~ ^[0-9]+$ ]] || ((LAB_RA_INTERVAL < 4 || LAB_RA_INTERVAL > 1800)); then
        die "LAB_RA_INTERVAL must be 4..1800 seconds (got '$LAB_RA_INTERVAL')"
    fi
    # shellcheck disable=SC2086  # LAB_TARGETS6 is a space-separated list
    for t in $LAB_TARGETS6; do
        [[ $t =~ ^[0-9a-fA-F:]+$ && $t == *:* ]] || die "LAB_TARGETS6 entry is not an IPv6 address: '$t'"
    done
    if [[ -n $LAB_EXTRA_TOML && ! -r $LAB_EXTRA_TOML ]]; then
        die "LAB_EXTRA_TOML=$LAB_EXTRA_TOML is not a readable file"
    fi
    return 0
}

# shellcheck disable=SC2086  # the knobs are space-separated lists
wan_rate() { nth_word "$1" 50 $LAB_RATES; }
# shellcheck disable=SC2086
wan_weight() { nth_word "$1" 1 $LAB_WEIGHTS; }
# shellcheck disable=SC2086
wan_mode() { nth_word "$1" - $LAB_WAN_MODES; }
# Whether any WAN is brought up by the daemon (then the router runs its own networkd).
any_managed() { [[ -n ${LAB_WAN_MODES//[ -]/} ]]; }
v6() { [[ $LAB_IPV6 == 1 ]]; }

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
ns_exists() { [[ -e /run/netns/$1 ]]; }

# --- topology -----------------------------------------------------------------------------

# A fresh namespace with loopback up. Forwarding and rp_filter are set per role below.
make_ns() {
    ip netns add "$1"
    ip -n "$1" link set dev lo up
}

setup_router_ns() {
    make_ns "$RTR"
    # Set before the interfaces exist so they inherit conf/default. rp_filter off: replies of
    # policy-routed connections may arrive on a WAN that is not the main table's choice.
    # Hash policy 1 = L4: multipath routes spread flows, not just host pairs.
    nsx "$RTR" sysctl -qw net.ipv4.ip_forward=1 \
        net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
        net.ipv4.fib_multipath_hash_policy=1
    # A router forwards IPv6 on every interface (all + default, so the veths made later
    # inherit it). The kernel then ignores RAs unless an interface has accept_ra=2, which
    # setup_isp sets on the WANs the lab addresses (on the appliance networkd does RA itself).
    if v6; then
        nsx "$RTR" sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv6.conf.default.forwarding=1
    fi
}

setup_lan() {
    make_ns "$LAN"
    # A veth carries the sender socket's flow hash (skb->hash) into the router, and TCP picks a
    # new random hash after each retransmission timeout; a multipath route would then move the
    # flow to another WAN mid-connection (and masquerade kills a flow whose oif changed). A real
    # NIC hashes the 5-tuple, which is stable, so make the LAN client's hash stable too.
    nsx "$LAN" sysctl -qw net.core.txrehash=0 2>/dev/null ||
        log "warning: net.core.txrehash missing (kernel < 5.19): TCP flows may change WAN after an RTO"
    ip -n "$RTR" link add name lan0 type veth peer name eth0 netns "$LAN"
    ip -n "$RTR" addr add "$LAB_LAN_RTR/24" dev lan0
    ip -n "$LAN" addr add "$LAB_LAN_CLIENT/24" dev eth0
    if v6; then
        # The router's LAN address is the system's, like the IPv4 one (no DAD: ours alone).
        # The client is a plain host (accept_ra=1, no forwarding): SLAAC with a fixed
        # interface identifier, set before the link is up so no other address appears first.
        ip -n "$RTR" addr add "$LAB_LAN_RTR6/64" dev lan0 nodad
        ip -n "$LAN" token set "$LAB_CLIENT6_TOKEN" dev eth0
        fast_nd "$RTR" lan0
        fast_nd "$LAN" eth0
    fi
    ip -n "$RTR" link set dev lan0 up
    ip -n "$LAN" link set dev eth0 up
    ip -n "$LAN" route add default via "$LAB_LAN_RTR"
    # With the daemon, the LAN's RAs come from its own dnsmasq.conf (lan_dnsmasq, started
    # with the daemon); without it, from a stand-in, so the topology alone is dual-stack too.
    if v6 && [[ $LAB_NO_DAEMON == 1 ]]; then lan_ra; fi
}

# lan_ra: a stand-in for the daemon's LAN service: a dnsmasq without DNS announcing lan0's
# /64 for SLAAC (stateless DHCPv6 for the rest).
lan_ra() {
    ra_server "$RTR" lan0 ra-stateless "$LAB_DIR/lan-ra"
}

# lan_dnsmasq: (re)start dnsmasq in the router namespace with the file the daemon wrote
# (state/dnsmasq.conf: DHCP, DNS and the LAN's router advertisements), as systemd runs it
# on the appliance; the stand-in RA server is stopped first. Leases stay in the lab dir.
lan_dnsmasq() {
    local conf=$LAB_DIR/state/dnsmasq.conf base=$LAB_DIR/lan-dnsmasq n pidfile
    [[ -s $conf ]] || die "$conf missing: the daemon writes it on its first apply"
    for pidfile in "$LAB_DIR/lan-ra.pid" "$base.pid"; do
        [[ -s $pidfile ]] || continue
        kill "$(<"$pidfile")" 2>/dev/null || true
        for ((n = 0; n < 50; n++)); do kill -0 "$(<"$pidfile")" 2>/dev/null || break; sleep 0.1; done
        rm -f "$pidfile"
    done
    setsid ip netns exec "$RTR" dnsmasq --keep-in-foreground --conf-file="$conf" \
        --dhcp-leasefile="$base.leases" --pid-file= --log-dhcp --log-facility=- \
        </dev/null >>"$base.log" 2>&1 &
    echo $! >"$base.pid"
}

# ra_server NS DEV MODE BASE: (re)start a dnsmasq in NS sending router advertisements on DEV
# for DEV's own /64 (constructor:), MODE ra-only or ra-stateless; pid in BASE.pid, log in
# BASE.log. Every LAB_RA_INTERVAL seconds unsolicited, and at once on a router solicitation.
ra_server() {
    local ns=$1 dev=$2 mode=$3 base=$4 n
    if [[ -s $base.pid ]]; then
        kill "$(<"$base.pid")" 2>/dev/null || true
        for ((n = 0; n < 50; n++)); do kill -0 "$(<"$base.pid")" 2>/dev/null || break; sleep 0.1; done
    fi
    setsid ip netns exec "$ns" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 \
        --interface="$dev" --bind-interfaces --enable-ra \
        --dhcp-range="::,constructor:$dev,$mode,64" --ra-param="$dev,$LAB_RA_INTERVAL,1800" \
        --dhcp-leasefile="$base.leases" --pid-file= --log-dhcp --log-facility=- \
        </dev/null >>"$base.log" 2>&1 &
    echo $! >"$base.pid"
}

setup_inet() {
    make_ns "$INET"
    ip -n "$INET" addr add "$LAB_INET_HOST/32" dev lo
    ip -n "$INET" addr add "$LAB_INET_HOST2/32" dev lo
    nsx "$INET" sysctl -qw net.ipv4.ip_forward=1
    if v6; then
        ip -n "$INET" addr add "$LAB_INET_HOST6/128" dev lo
        ip -n "$INET" addr add "$LAB_INET_HOST6_2/128" dev lo
        ipv6_forwarder "$INET"
    fi
}

# tbf on the egress of DEV in NS at RATE Mbit/s. The burst is one 4 ms timer tick at that rate
# (rate/250) but at least LAB_BURST_MIN so TCP is not starved by a too-small bucket.
shape() {
    local ns=$1 dev=$2 rate=$3
    local burst=$((rate * 1000000 / 8 / 250))
    ((burst < LAB_BURST_MIN)) && burst=$LAB_BURST_MIN
    tc -n "$ns" qdisc replace dev "$dev" root tbf rate "${rate}mbit" burst "$burst" latency "$LAB_TBF_LATENCY"
}

setup_isp() {
    local i=$1 isp=$P-isp$1
    local isp_a rtr_a rate
    isp_a=$(wan_isp_addr "$i"); rtr_a=$(wan_rtr_addr "$i"); rate=$(wan_rate "$i")

    make_ns "$isp"
    nsx "$isp" sysctl -qw net.ipv4.ip_forward=1
    if v6; then ipv6_forwarder "$isp"; fi

    # Router side. No default route in the router: the config names each WAN's gateway (or
    # DHCP brings it). A line with a mode gets its address from the daemon's networkd files.
    ip -n "$RTR" link add name "wan$i" type veth peer name down netns "$isp"
    if [[ $(wan_mode "$i") == - ]]; then ip -n "$RTR" addr add "$rtr_a/29" dev "wan$i"; fi
    ip -n "$isp" addr add "$isp_a/29" dev down
    if v6; then
        ip -n "$isp" addr add "$(wan6_isp_addr "$i")/64" dev down nodad
        # IPv6 by SLAAC from the ISP's RAs, despite forwarding (accept_ra=2), with the
        # interface identifier ::2 (set before link up, so no other address comes first). A
        # line with a mode is networkd's: it does RA processing itself, as on the appliance.
        if [[ $(wan_mode "$i") == - ]]; then
            nsx "$RTR" sysctl -qw "net.ipv6.conf.wan$i.accept_ra=2"
            ip -n "$RTR" token set "$LAB_RTR6_TOKEN" dev "wan$i"
        fi
        fast_nd "$RTR" "wan$i"
        fast_nd "$isp" down
    fi
    ip -n "$RTR" link set dev "wan$i" up
    ip -n "$isp" link set dev down up
    if [[ $(wan_mode "$i") == dhcp ]]; then isp_dhcp "$i" "$rtr_a" "$rtr_a"; fi
    if v6; then isp_ra "$i"; fi
    if v6 && [[ $(wan_mode "$i") == dhcp ]]; then isp_pd "$i"; fi

    link_isp_uplink "$isp" "$INET" "$i"
    if v6; then link_isp_uplink6 "$isp" "$INET" "$i"; fi
    if v6 && [[ $(wan_mode "$i") == dhcp ]]; then
        ip -n "$INET" -6 route add "$(pd6_pool "$i")/$LAB_PD6_POOL_LEN" via "$(uplink6_isp_addr "$i")" dev "isp$i"
    fi

    shape "$isp" down "$rate"   # download: ISP -> router
    shape "$isp" up "$rate"     # upload:   ISP -> internet
}

# isp_dhcp I FIRST LAST: (re)start ISP I's DHCP server (dnsmasq, no DNS) on its side of WAN I,
# handing out FIRST..LAST with the ISP as the router, 2-minute leases. Authoritative, so a
# renew of an address it no longer hands out is refused at once (NAK) and the client asks anew.
isp_dhcp() {
    local i=$1 first=$2 last=$3 isp=$P-isp$1 pidfile=$LAB_DIR/isp$1-dhcp.pid n
    if [[ -s $pidfile ]]; then
        kill "$(<"$pidfile")" 2>/dev/null || true
        for ((n = 0; n < 50; n++)); do kill -0 "$(<"$pidfile")" 2>/dev/null || break; sleep 0.1; done
    fi
    setsid ip netns exec "$isp" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 \
        --interface=down --bind-interfaces --dhcp-authoritative \
        --dhcp-range="$first,$last,255.255.255.248,2m" \
        --dhcp-option="option:router,$(wan_isp_addr "$i")" \
        --dhcp-leasefile="$LAB_DIR/isp$i.leases" --pid-file= --log-dhcp --log-facility=- \
        </dev/null >>"$LAB_DIR/isp$i-dhcp.log" 2>&1 &
    echo $! >"$pidfile"
}

# isp_ra I: (re)start ISP I's router advertisements on its side of WAN I, the ISP as default
# router. A lab-addressed (or static) WAN gets the link's /64 for SLAAC (dnsmasq, no DHCPv6).
# A DHCP line is an ISP that only delegates (isp_pd): radvd announces the /64 on-link but not
# for SLAAC (A flag off) and sets the M and O flags, so the line's only global address is the
# one networkd makes from the delegated prefix.
isp_ra() {
    local i=$1 base=$LAB_DIR/isp$1-ra n
    if [[ $(wan_mode "$i") != dhcp ]]; then
        ra_server "$P-isp$i" down ra-only "$base"
        return 0
    fi
    if [[ -s $base.pid ]]; then
        kill "$(<"$base.pid")" 2>/dev/null || true
        for ((n = 0; n < 50; n++)); do kill -0 "$(<"$base.pid")" 2>/dev/null || break; sleep 0.1; done
    fi
    cat >"$base.conf" <<EOF
interface down {
    AdvSendAdvert on;
    MinRtrAdvInterval $((LAB_RA_INTERVAL * 3 / 4));
    MaxRtrAdvInterval $LAB_RA_INTERVAL;
    AdvDefaultLifetime 1800;
    AdvManagedFlag on;
    AdvOtherConfigFlag on;
    prefix $(wan6_prefix "$i")/64 { AdvOnLink on; AdvAutonomous off; };
};
EOF
    setsid ip netns exec "$P-isp$i" radvd --nodaemon --config="$base.conf" --pidfile="$base.radvd.pid" \
        --logmethod=stderr </dev/null >>"$base.log" 2>&1 &
    echo $! >"$base.pid"
}

# isp_pd I: ISP I's DHCPv6 server (Kea) on its side of WAN I, for a line the daemon brings up
# with DHCP: it delegates /56s from the ISP's pool (pd6_pool) and hands out no addresses, and
# the ISP routes the whole pool to the router's link-local address on WAN I (Kea installs no
# routes; a real ISP's relay or BNG does). Config, leases, pid and lock files in LAB_DIR, so
# labs never share Kea state; the log in LAB_DIR/isp<I>-pd.log.
isp_pd() {
    local i=$1 isp=$P-isp$1 base=$LAB_DIR/isp$1-pd mac n
    if [[ -s $base.pid ]]; then
        kill "$(<"$base.pid")" 2>/dev/null || true
        for ((n = 0; n < 50; n++)); do kill -0 "$(<"$base.pid")" 2>/dev/null || break; sleep 0.1; done
    fi
    cat >"$base.json" <<EOF
{
  "Dhcp6": {
    "interfaces-config": { "interfaces": [ "down" ] },
    "lease-database": { "type": "memfile", "persist": true, "name": "$base.leases", "lfc-interval": 0 },
    "data-directory": "$LAB_DIR",
    "server-id": { "type": "LL", "persist": false },
    "renew-timer": 600, "rebind-timer": 900, "preferred-lifetime": 1200, "valid-lifetime": 1800,
    "subnet6": [ {
      "id": 1, "subnet": "$(wan6_prefix "$i")/64", "interface": "down",
      "pd-pools": [ { "prefix": "$(pd6_pool "$i")", "prefix-len": $LAB_PD6_POOL_LEN, "delegated-len": $LAB_PD6_LEN } ]
    } ],
    "loggers": [ { "name": "kea-dhcp6", "severity": "INFO", "output_options": [ { "output": "stdout" } ] } ]
  }
}
EOF
    setsid env KEA_PIDFILE_DIR="$LAB_DIR" KEA_LOCKFILE_DIR="$LAB_DIR" \
        ip netns exec "$isp" kea-dhcp6 -c "$base.json" </dev/null >>"$base.log" 2>&1 &
    echo $! >"$base.pid"
    mac=$(ip -n "$RTR" -br link show dev "wan$i" | awk '{print $3}')
    ip -n "$isp" -6 route replace "$(pd6_pool "$i")/$LAB_PD6_POOL_LEN" via "$(eui64_ll "$mac")" dev down
}

# The router namespace's own systemd-networkd (and D-Bus) in a private mount namespace, for
# the lines the daemon brings up; its pid in networkd.pid (the daemon joins its namespaces).
start_networkd() {
    local pidfile=$LAB_DIR/networkd.pid n
    setsid ip netns exec "$RTR" unshare --mount --propagation private \
        "$LAB_REPO_ROOT/ci/lib/lab-networkd.sh" "$LAB_REPO_ROOT/overlay/usr/lib/systemd/networkd.conf.d/10-routeros.conf" \
        </dev/null >>"$LAB_DIR/networkd.log" 2>&1 &
    echo $! >"$pidfile"
    for ((n = 0; n < 100; n++)); do
        if nsenter --target "$(<"$pidfile")" --mount --net networkctl list >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$(<"$pidfile")" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$LAB_DIR/networkd.log" >&2 || true
    die "the router's systemd-networkd did not answer on its D-Bus within 10 s"
}

# Run a command in the router namespace: inside its networkd's mount namespace when it has one.
rtr_exec() {
    if [[ -s $LAB_DIR/networkd.pid ]]; then
        nsenter --target "$(<"$LAB_DIR/networkd.pid")" --mount --net -- "$@"
    else
        ip netns exec "$RTR" "$@"
    fi
}

build_topology() {
    setup_router_ns
    setup_lan
    setup_inet
    local i
    for ((i = 1; i <= LAB_WANS; i++)); do setup_isp "$i"; done
    if any_managed; then start_networkd; fi
    if v6; then wait_ipv6 wans; fi
    if v6 && [[ $LAB_NO_DAEMON == 1 ]]; then wait_ipv6 lan; fi
}

# v6_missing NS DEV PREFIX: prints what DEV in NS still lacks of a settled SLAAC setup: a
# global address in PREFIX (a /64, "2001:db8:ff01::") past DAD, and a default route from an
# RA. Prints nothing once both are there.
v6_missing() {
    local ns=$1 dev=$2 prefix=$3
    ip -6 -n "$ns" -o addr show dev "$dev" scope global -tentative 2>/dev/null |
        grep -q " inet6 ${prefix%::}:" || echo "$ns $dev: no SLAAC address in $prefix/64 past DAD"
    [[ -n $(ip -6 -n "$ns" route show default dev "$dev" proto ra 2>/dev/null) ]] ||
        echo "$ns $dev: no default route from a router advertisement"
}

# wait_ipv6 wans|lan: wait (LAB_V6_TIMEOUT) until the router's lab-addressed WANs, or the
# LAN client, have their SLAAC addresses and RA default routes, so tests start from a
# settled state.
wait_ipv6() {
    local deadline=$((SECONDS + LAB_V6_TIMEOUT)) i missing
    while :; do
        missing=$(
            if [[ $1 == wans ]]; then
                for ((i = 1; i <= LAB_WANS; i++)); do
                    if [[ $(wan_mode "$i") == - ]]; then v6_missing "$RTR" "wan$i" "$(wan6_prefix "$i")"; fi
                done
            else
                v6_missing "$LAN" eth0 "$LAB_LAN6_PREFIX"
            fi
        )
        [[ -z $missing ]] && return 0
        ((SECONDS < deadline)) || break
        sleep 0.1
    done
    printf '%s\n' "$missing" >&2
    die "IPv6 not settled within ${LAB_V6_TIMEOUT}s (RA logs: $LAB_DIR/*-ra.log)"
}

# --- config and daemon ----------------------------------------------------------------------

# toml_strings a b -> "a", "b" (the items of a TOML array of strings)
toml_strings() {
    local x sep=""
    for x in "$@"; do printf '%s"%s"' "$sep" "$x"; sep=", "; done
}

write_config() {
    local i targets targets6=""
    # shellcheck disable=SC2086  # LAB_TARGETS is a space-separated list
    targets=$(toml_strings $LAB_TARGETS)
    # IPv6 in the config: each WAN's `ipv6 = "auto"` and the LAN's address6 are the product's
    # defaults, so the lab writes neither; the IPv6 probes go to the lab's internet hosts (none
    # in an IPv4-only lab).
    if v6; then
        # shellcheck disable=SC2086  # LAB_TARGETS6 is a space-separated list
        targets6="targets6 = [$(toml_strings $LAB_TARGETS6)]"
    else
        targets6="targets6 = []"
    fi
    {
        echo "# Generated by ci/lab.sh for lab '$P' ($LAB_WANS WANs). Re-run 'ci/lab.sh up' to regenerate."
        for ((i = 1; i <= LAB_WANS; i++)); do
            cat <<EOF

[[wan_interfaces]]
name = "wan$i"
weight = $(wan_weight "$i")
dns = ["$(wan_isp_addr "$i")"]
EOF
            case $(wan_mode "$i") in
                -) echo "gateway = \"$(wan_isp_addr "$i")\"" ;;
                dhcp) echo 'mode = "dhcp"' ;;
                static) printf 'mode = "static"\naddress = "%s/29"\ngateway = "%s"\n' \
                    "$(wan_rtr_addr "$i")" "$(wan_isp_addr "$i")" ;;
            esac
        done
        cat <<EOF

[lan]
interface = "lan0"
address = "$LAB_LAN_RTR/24"

[health_check]
targets = [$targets]
${targets6:+$targets6
}check_interval = $LAB_CHECK_INTERVAL
timeout_seconds = $LAB_CHECK_TIMEOUT
retry_count = $LAB_RETRY_COUNT
${LAB_HEALTH_TOML:+$LAB_HEALTH_TOML
}
[routing]
load_balancing = "ecmp"
${LAB_ROUTING_TOML:+$LAB_ROUTING_TOML
}
[logging]
level = "$LAB_LOG_LEVEL"
file = "$LAB_DIR/routeros.log"
EOF
        if [[ -n $LAB_EXTRA_TOML ]]; then
            printf '\n# --- appended from %s ---\n' "$LAB_EXTRA_TOML"
            cat "$LAB_EXTRA_TOML"
        fi
    } >"$CONFIG"
}

ensure_binary() {
    # A fresh machine has no cargo yet (nor ~/.cargo/bin on sudo's PATH): ci/lib/deps.sh.
    if [[ $LAB_BUILD != 0 ]]; then
        # shellcheck source=ci/lib/deps.sh
        source "$LAB_REPO_ROOT/ci/lib/deps.sh"
        ensure_rust >&2
    fi
    case $LAB_BUILD in
        0) ;;
        1) log "cargo build --release --workspace --bins (LAB_BUILD=1)"
           (cd "$LAB_REPO_ROOT" && cargo build --release --workspace --bins) >&2 ;;
        *) # auto: keep the default release binary up to date (incremental, quick when
           # nothing changed); a custom LAB_BIN (tests) is used as given unless missing.
           if [[ $LAB_BIN == target/release || ! -x $WATCHDOG ]]; then
               log "cargo build --release --workspace --bins"
               (cd "$LAB_REPO_ROOT" && cargo build --release --workspace --bins) >&2
           fi ;;
    esac
    [[ -x $WATCHDOG ]] || die "$WATCHDOG still missing after the build (is LAB_BIN right?)"
}

# The pid in PIDFILE, if that process is alive and is still our daemon (pids get reused).
daemon_pid() {
    local pid
    [[ -r $PIDFILE ]] || return 1
    pid=$(<"$PIDFILE")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    local cmdline
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmdline == *routeros-watchdog* ]] || return 1
    echo "$pid"
}

daemon_log_tail() {
    echo "----- $DAEMON_LOG (last 40 lines) -----" >&2
    tail -n 40 "$DAEMON_LOG" >&2 2>/dev/null || echo "(no daemon log)" >&2
    if [[ -s $LAB_DIR/routeros.log ]]; then
        echo "----- $LAB_DIR/routeros.log (last 20 lines) -----" >&2
        tail -n 20 "$LAB_DIR/routeros.log" >&2
    fi
    echo "-----" >&2
}

cmd_daemon_start() {
    ns_exists "$RTR" || die "namespace $RTR does not exist: run 'ci/lab.sh up' first"
    [[ -r $CONFIG ]] || die "$CONFIG missing: run 'ci/lab.sh up' first"
    ensure_binary
    if daemon_pid >/dev/null; then die "daemon already running (pid $(daemon_pid))"; fi
    mkdir -p "$LAB_DIR/state"
    rm -f "$SOCKET" "$PIDFILE"   # a stale socket from a killed daemon would block bind()

    # setsid: its own session, so it outlives this script and a Ctrl-C here does not reach it.
    # The inner shell records its own pid and then execs `ip netns exec`, which execs the
    # daemon (no fork in between), so PIDFILE holds the daemon's pid.
    echo "=== $(date '+%F %T') daemon-start" >>"$DAEMON_LOG"
    # Inside the router's own networkd mount namespace when it has one (its files, its bus).
    # Otherwise the daemon shares this machine's /run and system bus: point it at a private
    # directory for networkd files and at no bus, so a lab never changes this machine's
    # network config, time zone or units.
    local enter=(ip netns exec "$RTR" env "DBUS_SYSTEM_BUS_ADDRESS=unix:path=$LAB_DIR/no-system-bus")
    local lines=(--network-dir "$LAB_DIR/network")
    if [[ -s $LAB_DIR/networkd.pid ]]; then
        enter=(nsenter --target "$(<"$LAB_DIR/networkd.pid")" --mount --net --)
        lines=()
    fi
    # shellcheck disable=SC2016  # $$ and $@ belong to the inner shell
    setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PIDFILE" \
        "${enter[@]}" prlimit --nofile="$(unit_nofile routeros-watchdog.service)" -- "$WATCHDOG" \
        --config "$CONFIG" --state-dir "$LAB_DIR/state" --socket "$SOCKET" --log-dir "$LAB_DIR" \
        "${lines[@]}" </dev/null >>"$DAEMON_LOG" 2>&1 &

    # Ready = the daemon is alive, serves its control socket (it binds it only after its first
    # apply; the socket was removed above) and our nft table exists in the router namespace.
    # The table alone is not enough: after a restart it survives from the previous run
    # (fail-static), so it would report "ready" at once, even for a daemon that then exits.
    local deadline=$((SECONDS + LAB_READY_TIMEOUT)) pid
    while ((SECONDS < deadline)); do
        if [[ -s $PIDFILE ]] && ! pid=$(daemon_pid); then
            daemon_log_tail
            die "daemon exited before it was ready"
        fi
        if [[ -S $SOCKET ]] && nsx "$RTR" nft list table inet routeros >/dev/null 2>&1; then
            log "daemon ready (pid ${pid:-?})"
            if v6; then lan_dnsmasq; wait_ipv6 lan; fi
            return 0
        fi
        sleep 0.1
    done
    daemon_log_tail
    die "daemon did not serve $SOCKET and 'table inet routeros' in $RTR within ${LAB_READY_TIMEOUT}s"
}

cmd_daemon_stop() {
    local pid i
    if ! pid=$(daemon_pid); then
        rm -f "$PIDFILE"
        return 0
    fi
    kill -TERM "$pid"
    for ((i = 0; i < LAB_STOP_TIMEOUT * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; log "daemon stopped"; return 0; }
        sleep 0.1
    done
    log "daemon (pid $pid) ignored SIGTERM for ${LAB_STOP_TIMEOUT}s: SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    rm -f "$PIDFILE"
    return 1
}

# --- subcommands ----------------------------------------------------------------------------

# Start the web server (never fatal: the routing lab works without it).
# shellcheck disable=SC2086  # LAB_WEB_ARGS is a space-separated list of arguments
start_web() {
    [[ $LAB_WEB == 1 && -x $WEB ]] || return 0
    mkdir -p "$LAB_DIR/web"
    ip netns exec "$RTR" setsid prlimit --nofile="$(unit_nofile routeros-web.service)" -- "$WEB" --listen-ui "$LAB_LAN_RTR:8080" --listen-api "$LAB_LAN_RTR:8081" \
        --socket "$SOCKET" --data-dir "$LAB_DIR/web" $LAB_WEB_ARGS >>"$LAB_DIR/web.log" 2>&1 </dev/null &
    if [[ -n $LAB_WEB_LOCAL ]] && command -v socat >/dev/null; then
        setsid socat "TCP-LISTEN:$LAB_WEB_LOCAL,bind=127.0.0.1,fork,reuseaddr" \
            "EXEC:ip netns exec $RTR socat STDIO TCP\:$LAB_LAN_RTR\:8080" >/dev/null 2>&1 </dev/null &
        echo $! >"$LAB_DIR/web-forward.pid"
    fi
}

cmd_down() {
    if [[ -f $LAB_DIR/web-forward.pid ]]; then
        kill "$(cat "$LAB_DIR/web-forward.pid")" 2>/dev/null || true
    fi
    cmd_daemon_stop || true
    local ns pid
    for ns in $(lab_namespaces "$P"); do
        # Anything the lab started in there (iperf3 servers, shells of tests) would keep the
        # namespace alive after `ip netns del`: end those processes by pid.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    if [[ -d $LAB_DIR ]]; then
        if [[ -e $MARKER ]]; then
            rm -rf -- "$LAB_DIR"
        else
            log "not removing $LAB_DIR: it has no $MARKER marker (not made by this script?)"
        fi
    fi
    return 0
}

# global6 NS DEV -> DEV's global IPv6 addresses (with their length), space-separated, or "-".
global6() {
    local a
    a=$(ip -6 -n "$1" -o addr show dev "$2" scope global 2>/dev/null | awk '{printf "%s%s", sep, $4; sep=" "}')
    echo "${a:--}"
}

print_summary() {
    local i
    echo
    echo "Lab '$P' is up: $LAB_WANS WAN(s)."
    echo "  namespaces:    $(lab_namespaces "$P" | sort -V | tr '\n' ' ')"
    echo "  LAN:           $LAN eth0 $LAB_LAN_CLIENT/24 (default via $LAB_LAN_RTR) <-> $RTR lan0 $LAB_LAN_RTR/24"
    for ((i = 1; i <= LAB_WANS; i++)); do
        printf '  %-15s%s wan%s %s/29 <-> %s down %s (gateway) | %s Mbit/s, weight %s | uplink %s/31 <-> %s isp%s %s\n' \
            "WAN$i:" "$RTR" "$i" "$(wan_rtr_addr "$i")" "$P-isp$i" "$(wan_isp_addr "$i")" \
            "$(wan_rate "$i")" "$(wan_weight "$i")" \
            "$(uplink_isp_addr "$i")" "$INET" "$i" "$(uplink_inet_addr "$i")"
    done
    echo "  internet host: $INET lo $LAB_INET_HOST and $LAB_INET_HOST2 (health-check targets)"
    if v6; then
        echo "  IPv6 LAN:      $LAN eth0 $(global6 "$LAN" eth0) (SLAAC) <-> $RTR lan0 $LAB_LAN_RTR6/64 (sends RAs)"
        for ((i = 1; i <= LAB_WANS; i++)); do
            printf '  %-15s%s wan%s %s <-> %s down %s/64 (sends RAs) | uplink %s/64 <-> %s isp%s %s/64\n' \
                "IPv6 WAN$i:" "$RTR" "$i" "$(global6 "$RTR" "wan$i")" "$P-isp$i" "$(wan6_isp_addr "$i")" \
                "$(uplink6_isp_addr "$i")" "$INET" "$i" "$(uplink6_inet_addr "$i")"
            if [[ $(wan_mode "$i") == dhcp ]]; then
                printf '  %-15sno SLAAC; Kea in %s delegates /%s from %s/%s\n' "" "$P-isp$i" \
                    "$LAB_PD6_LEN" "$(pd6_pool "$i")" "$LAB_PD6_POOL_LEN"
            fi
        done
        echo "  IPv6 internet: $INET lo $LAB_INET_HOST6 and $LAB_INET_HOST6_2"
    else
        echo "  IPv6:          off (LAB_IPV6=0)"
    fi
    echo "  config:        $CONFIG"
    if [[ $LAB_NO_DAEMON == 1 ]]; then
        echo "  daemon:        not started (LAB_NO_DAEMON=1); start it with: ci/lab.sh daemon-start"
    else
        echo "  daemon:        pid $(daemon_pid || echo '?'), log $DAEMON_LOG, socket $SOCKET"
    fi
    echo "  shell:         ip netns exec $LAN bash    (router: ip netns exec $RTR bash)"
    if [[ $LAB_WEB == 1 && -x $WEB && $LAB_NO_DAEMON != 1 ]]; then
        echo "  dashboard:     http://$LAB_LAN_RTR:8080 from $LAN${LAB_WEB_LOCAL:+, and http://127.0.0.1:$LAB_WEB_LOCAL on this machine} (first login: admin / routeros123, then the wizard)"
    else
        echo "  dashboard:     not started (LAB_WEB=0 or no $WEB)"
    fi
    echo "  tear down:     LAB_PREFIX=$P ci/lab.sh down"
}

LAB_UP_OK=1
on_exit() {
    local rc=$?
    if ((rc != 0)) && [[ $LAB_UP_OK == 0 ]]; then
        if [[ $LAB_KEEP_ON_FAIL == 1 ]]; then
            log "up failed (rc $rc); LAB_KEEP_ON_FAIL=1 leaves the lab as it is"
        else
            log "up failed (rc $rc); removing the half-built lab"
            cmd_down || true
        fi
    fi
}

cmd_up() {
    validate_knobs
    local mode=check
    [[ $LAB_INSTALL == 1 ]] && mode=install
    ensure_tools "$mode" ip tc nft iperf3 conntrack
    if any_managed; then ensure_tools "$mode" dnsmasq dbus-daemon networkctl nsenter; fi
    if v6 && [[ " $LAB_WAN_MODES " == *" dhcp "* ]]; then ensure_tools "$mode" kea-dhcp6 radvd; fi
    if v6; then ensure_tools "$mode" dnsmasq; fi
    [[ $LAB_NO_DAEMON == 1 ]] || ensure_binary   # before tearing anything down: a build can fail

    cmd_down   # re-running `up` starts from scratch
    LAB_UP_OK=0
    trap on_exit EXIT
    trap 'exit 130' INT TERM

    mkdir -p "$LAB_DIR"
    touch "$MARKER"
    build_topology
    write_config
    [[ $LAB_NO_DAEMON == 1 ]] || { cmd_daemon_start; start_web; }
    LAB_UP_OK=1
    print_summary
}

cmd_status() {
    local ns
    echo "== namespaces (prefix $P)"
    lab_namespaces "$P" | sort -V | sed 's/^/  /'
    if ! ns_exists "$RTR"; then
        echo "  ($RTR does not exist: lab is down)"
        return 0
    fi
    echo "== routes of proto 201 in $RTR (all tables)"
    ip -n "$RTR" route show table all proto 201 | sed 's/^/  /'
    echo "== rules in $RTR"
    ip -n "$RTR" rule | sed 's/^/  /'
    echo "== IPv6 in $RTR and $LAN (global addresses, default routes)"
    local dev
    for dev in $(ip -n "$RTR" -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E '^(wan[0-9]+|lan0)$' | sort -V); do
        echo "  $RTR $dev: $(global6 "$RTR" "$dev")"
    done
    ns_exists "$LAN" && echo "  $LAN eth0: $(global6 "$LAN" eth0)"
    ip -6 -n "$RTR" route show default | sed "s/^/  $RTR: /"
    if ns_exists "$LAN"; then ip -6 -n "$LAN" route show default | sed "s/^/  $LAN: /"; fi
    echo "== daemon"
    if pid=$(daemon_pid); then echo "  running, pid $pid"; else echo "  not running"; fi
    if [[ -x $KILLSWITCH ]]; then
        echo "== kill-switch status"
        "$KILLSWITCH" --socket "$SOCKET" --status 2>&1 | sed 's/^/  /' || true
    fi
}

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    exit 2
}

main() {
    [[ $EUID -eq 0 ]] || die "run as root (network namespaces)"
    case ${1:-} in
        up) cmd_up ;;
        down) cmd_down ;;
        status) cmd_status ;;
        daemon-start) cmd_daemon_start ;;
        daemon-stop) cmd_daemon_stop ;;
        isp-dhcp) shift; (($# >= 2)) || usage; isp_dhcp "$1" "$2" "${3:-$2}" ;;
        isp-ra) shift; (($# >= 1)) || usage; isp_ra "$1" ;;
        isp-pd) shift; (($# >= 1)) || usage; isp_pd "$1" ;;
        networkctl) shift; rtr_exec networkctl "$@" ;;
        *) usage ;;
    esac
}

main "$@"
