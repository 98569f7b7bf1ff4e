# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source this
# Shared helpers for ci/lab.sh and ci/bench-throughput.sh. Source it, do not run it.
#
# Everything here only looks at, or acts on, the namespaces of one lab prefix, so several
# labs (and the bench's own labs) can coexist on one machine.

# Repository root: ci/lib/.. /..
LAB_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

log() { printf '[lab %s] %s\n' "${LAB_PREFIX:-?}" "$*" >&2; }
die() { printf '[lab %s] ERROR: %s\n' "${LAB_PREFIX:-?}" "$*" >&2; exit 1; }

# Map each tool the lab needs to the Debian package that ships it.
declare -A LAB_TOOL_PKG=(
    [ip]=iproute2 [tc]=iproute2 [nft]=nftables [iperf3]=iperf3
    [conntrack]=conntrack [socat]=socat [python3]=python3
    [dnsmasq]=dnsmasq-base [dbus-daemon]=dbus [networkctl]=systemd [nsenter]=util-linux
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

# unit_nofile UNIT -> the soft open-files limit the shipped systemd unit gives its service
# (LimitNOFILE=, else systemd's default soft limit 1024), so the lab runs our processes with
# the limit they have on a box, not the developer shell's.
unit_nofile() {
    local v
    v=$(sed -n 's/^LimitNOFILE=\([0-9]*\).*/\1/p' "$LAB_REPO_ROOT/overlay/usr/lib/systemd/system/$1" 2>/dev/null | tail -1)
    echo "${v:-1024}"
}
