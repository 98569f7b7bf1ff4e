# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source this
# Shared helpers for ci/lab.sh and ci/bench-throughput.sh. Source it, do not run it.
#
# Everything here only looks at, or acts on, the namespaces of one lab prefix, so several
# labs (and the bench's own labs) can coexist on one machine.

# Repository root: ci/lib/.. /..
LAB_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

log() { printf '[lab %s] %s\n' "${LAB_PREFIX:-?}" "$*" >&2; }
die() { printf '[lab %s] ERROR: %s\n' "${LAB_PREFIX:-?}" "$*" >&2; exit 1; }

# build_once: a benchmark measures what the sources say, not a stale binary: one release build
# here (cargo skips an up-to-date one) unless the caller points LAB_BIN elsewhere or sets
# LAB_BUILD=0. The labs then use that binary as it is (LAB_BUILD=0), so an edit made while the
# benchmark runs cannot trigger a rebuild midway.
build_once() {
    if [[ -z ${LAB_BIN:-} && ${LAB_BUILD:-1} != 0 ]]; then
        # shellcheck source=ci/lib/deps.sh
        source "$LAB_REPO_ROOT/ci/lib/deps.sh"
        ensure_rust >&2
        log "cargo build --release --workspace --bins"
        (cd "$LAB_REPO_ROOT" && cargo build --release --workspace --bins) >&2
    fi
    export LAB_BUILD=0
}

# Map each tool the lab needs to the Debian package that ships it.
declare -A LAB_TOOL_PKG=(
    [ip]=iproute2 [tc]=iproute2 [nft]=nftables [iperf3]=iperf3
    [conntrack]=conntrack [socat]=socat [python3]=python3
    [dnsmasq]=dnsmasq-base [kea-dhcp6]=kea-dhcp6-server [radvd]=radvd [dbus-daemon]=dbus [networkctl]=systemd [nsenter]=util-linux
)

# missing_pkgs TOOL... -> prints the (deduplicated) apt packages of the tools not on PATH.
missing_pkgs() {
    local t pkgs=()
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || pkgs+=("${LAB_TOOL_PKG[$t]:-$t}")
    done
    ((${#pkgs[@]})) && printf '%s\n' "${pkgs[@]}" | sort -u | tr '\n' ' '
    return 0
}

# ensure_tools MODE TOOL...: MODE "check" prints the apt command and fails; MODE "install" runs
# `apt-get install -y` (loudly, refreshing the package lists once if the first try fails).
ensure_tools() {
    local mode=$1; shift
    local pkgs
    pkgs=$(missing_pkgs "$@")
    [[ -z $pkgs ]] && return 0
    if [[ $mode != install ]]; then
        die "missing tools; install them with: apt-get install -y $pkgs (or set LAB_INSTALL=1)"
    fi
    log "installing missing packages: $pkgs"
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y $pkgs; then
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y $pkgs
    fi
}

# lab_namespaces PREFIX -> every namespace of that lab, one per line.
lab_namespaces() {
    local p=$1
    ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${p}-(rtr|inet|lan|isp[0-9]+)$" || true
}

# nth_word INDEX DEFAULT WORDS... -> the INDEX-th (1-based) word, or DEFAULT if there is none.
nth_word() {
    local i=$1 def=$2; shift 2
    local words=("$@")
    if ((i <= ${#words[@]})); then printf '%s' "${words[i - 1]}"; else printf '%s' "$def"; fi
}

# Addressing plan (documentation ranges only). Kept in one place so lab.sh, the bench and the
# Rust namespace tests can agree on it.
#   WAN 1:    192.0.2.0/29      (isp .1, router .2)
#   WAN 2:    198.51.100.0/29   (isp .1, router .2)
#   WAN i>=3: 192.0.2.(8*(i-1))/29 (isp +1, router +2)
#   ISP i uplink: 203.0.113.(128+2i)/31 in the ISP, +1 in the internet namespace
wan_net_base() { # i -> network address of WAN i's /29
    local i=$1
    case $i in
        1) echo 192.0.2.0 ;;
        2) echo 198.51.100.0 ;;
        *) echo "192.0.2.$((8 * (i - 1)))" ;;
    esac
}
wan_isp_addr() { local b; b=$(wan_net_base "$1"); echo "${b%.*}.$((${b##*.} + 1))"; }
wan_rtr_addr() { local b; b=$(wan_net_base "$1"); echo "${b%.*}.$((${b##*.} + 2))"; }
uplink_isp_addr() { echo "203.0.113.$((128 + 2 * $1))"; }
uplink_inet_addr() { echo "203.0.113.$((129 + 2 * $1))"; }

# link_isp_uplink ISP_NS INET_NS i: ISP i's uplink to the internet namespace (veth "up" in the
# ISP, "isp<i>" in the internet, a /31), the ISP's default route over it, and the internet's
# route back to WAN i's /29 through that ISP (ISPs do not NAT).
link_isp_uplink() {
    local isp=$1 inet=$2 i=$3 up_a inet_a
    up_a=$(uplink_isp_addr "$i"); inet_a=$(uplink_inet_addr "$i")
    ip -n "$isp" link add name up type veth peer name "isp$i" netns "$inet"
    ip -n "$isp" addr add "$up_a/31" dev up
    ip -n "$inet" addr add "$inet_a/31" dev "isp$i"
    ip -n "$isp" link set dev up up
    ip -n "$inet" link set dev "isp$i" up
    ip -n "$isp" route add default via "$inet_a"
    ip -n "$inet" route add "$(wan_net_base "$i")/29" via "$up_a" dev "isp$i"
}

LAB_INET_HOST=203.0.113.10
LAB_INET_HOST2=203.0.113.11
LAB_LAN_RTR=192.168.1.1
LAB_LAN_CLIENT=192.168.1.100

# IPv6 plan (documentation prefix 2001:db8::/32; the LAN a ULA). XX = i as two hex digits
# (01, 02, ... 10), so the plan holds for all 16 WANs. Mirrored in
# router/daemon/tests/common/lab.rs.
#   WAN i link:   2001:db8:ffXX::/64, the ISP ::1 (static), the router by SLAAC from the ISP's
#                 router advertisements; the lab sets the interface identifier token ::2, so
#                 it is 2001:db8:ffXX::2 (tests match by prefix all the same)
#   ISP i uplink: 2001:db8:feXX::/64, the ISP ::1, the internet namespace ::2
#   ISP i PD:     2001:db8:1XX::/48, delegated as /56s by DHCPv6 (dhcp-mode WANs only)
#   internet:     2001:db8:f000::10 and ::11 on the internet namespace's lo
#   LAN:          fd7a:9e51:5c34::/64, the router ::1 (static), the client by SLAAC from the
#                 router's advertisements (token ::100, so fd7a:9e51:5c34::100)
hex2() { printf '%02x' "$1"; }
wan6_prefix() { echo "2001:db8:ff$(hex2 "$1")::"; }      # i -> WAN i's /64 (without /64)
wan6_isp_addr() { echo "$(wan6_prefix "$1")1"; }
wan6_rtr_addr() { echo "$(wan6_prefix "$1")2"; }         # what SLAAC with the lab's token gives
uplink6_prefix() { echo "2001:db8:fe$(hex2 "$1")::"; }
uplink6_isp_addr() { echo "$(uplink6_prefix "$1")1"; }
uplink6_inet_addr() { echo "$(uplink6_prefix "$1")2"; }
# DHCPv6 prefix delegation (ISPs of WANs with mode dhcp, Kea): ISP i delegates a /56 from its
# pool 2001:db8:1XX::/48 (so WAN i's first delegation is 2001:db8:1XX::/56; networkd gives the
# line an address in its first /64, SubnetId=0) and routes the pool to the router.
pd6_pool() { echo "2001:db8:1$(hex2 "$1")::"; }           # i -> ISP i's /48 pool (without /48)
LAB_PD6_POOL_LEN=48
LAB_PD6_LEN=56
LAB_INET_HOST6=2001:db8:f000::10
LAB_INET_HOST6_2=2001:db8:f000::11
LAB_LAN6_PREFIX=fd7a:9e51:5c34::
LAB_LAN_RTR6=fd7a:9e51:5c34::1
LAB_LAN_CLIENT6=fd7a:9e51:5c34::100
# The interface identifiers the SLAAC hosts get (ip token): the router on its WANs, the client.
LAB_RTR6_TOKEN=::2
LAB_CLIENT6_TOKEN=::100

# ipv6_forwarder NS: for the emulated ISPs and internet (not the router under test): IPv6
# forwarding on (all and default, so later interfaces inherit it); global addresses kept over
# a link down/up, as for IPv4 (the failure emulations set links down; without this the ISP
# would lose its static IPv6 addresses for good); and no duplicate address detection, so
# their link-local addresses work at once (a tentative one delays neighbour discovery on the
# uplinks by a second after `up`).
ipv6_forwarder() {
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv6.conf.default.forwarding=1 \
        net.ipv6.conf.all.keep_addr_on_down=1 net.ipv6.conf.default.keep_addr_on_down=1 \
        net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
}

# fast_nd NS DEV: neighbour discovery retransmits every 100 ms instead of 1 s on DEV, and a
# host solicits routers at once. Duplicate address detection (one probe, one retransmit
# time) and router solicitation still happen as on a real link, only faster, so a lab with
# IPv6 settles in well under a second instead of 3-8 s. Call it before DEV is up.
fast_nd() {
    ip netns exec "$1" sysctl -qw "net.ipv6.neigh.$2.retrans_time_ms=100" \
        "net.ipv6.conf.$2.router_solicitation_delay=0"
}

# link_isp_uplink6 ISP_NS INET_NS i: IPv6 on the uplink link_isp_uplink made: a /64, the ISP's
# default route over it and the internet's route back to WAN i's /64 through that ISP.
# Addresses without DAD: both ends are ours, and routes over them work at once.
link_isp_uplink6() {
    local isp=$1 inet=$2 i=$3
    ip -n "$isp" addr add "$(uplink6_isp_addr "$i")/64" dev up nodad
    ip -n "$inet" addr add "$(uplink6_inet_addr "$i")/64" dev "isp$i" nodad
    ip -n "$isp" -6 route add default via "$(uplink6_inet_addr "$i")" dev up
    ip -n "$inet" -6 route add "$(wan6_prefix "$i")/64" via "$(uplink6_isp_addr "$i")" dev "isp$i"
}

# eui64_ll MAC -> the link-local address the kernel (and networkd, by default) derives from MAC.
eui64_ll() {
    local o
    IFS=: read -ra o <<<"$1"
    printf 'fe80::%x:%x:%x:%x\n' $(((0x${o[0]} ^ 2) << 8 | 0x${o[1]})) $((0x${o[2]} << 8 | 0xff)) \
        $((0xfe << 8 | 0x${o[3]})) $((0x${o[4]} << 8 | 0x${o[5]}))
}

# unit_nofile UNIT -> the soft open-files limit the shipped systemd unit gives its service
# (LimitNOFILE=, else systemd's default soft limit 1024), so the lab runs our processes with
# the limit they have on a box, not the developer shell's.
unit_nofile() {
    local v
    v=$(sed -n 's/^LimitNOFILE=\([0-9]*\).*/\1/p' "$LAB_REPO_ROOT/overlay/usr/lib/systemd/system/$1" 2>/dev/null | tail -1)
    echo "${v:-1024}"
}
