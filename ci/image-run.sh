#!/usr/bin/env bash
# Boot the appliance image in QEMU to try it: the router's serial console on this terminal,
# its LAN port on a tap of this host (so this host's browser reaches the first-boot wizard at
# http://192.168.1.1:8080), its WAN ports on QEMU's user networking (the router reaches the
# internet through this host, where the host has it) or, with --wans-lab, on two emulated
# ISPs in network namespaces. Everything it made goes when QEMU exits (Ctrl-a x).
#
#   sudo ci/image-run.sh [--image FILE] [--wans N] [--wans-lab] [--persist] [--seed DIR]
#                        [--accel auto|kvm|tcg] [--mem MB] [--print]
#
#   --image FILE  the qcow2 to boot (default target/image/dist/router.qcow2, what
#                 ci/image-build.sh makes; or a downloaded router_<version>.qcow2)
#   --wans N      WAN ports on QEMU user networking, 1..4 (default 2): wanK gets 10.0.(K+1).15
#                 by DHCP from QEMU, its gateway 10.0.(K+1).2 is this host
#   --wans-lab    two WAN ports on the namespaces of ci/lib/image-lab.sh instead: ISP 1
#                 (192.0.2.0/29) and ISP 2 (198.51.100.0/29), both by DHCP, an emulated
#                 internet behind them that also holds the default health targets (1.1.1.1
#                 and 9.9.9.9, inside the namespace: nothing leaves this host). Pull a line
#                 while it runs: ip -n run-isp1 link set dev up down (and up)
#   --persist     boot FILE itself, so the wizard's settings stay (default: a throw-away
#                 copy-on-write overlay; FILE is never written). The firmware variables are
#                 kept next to it as FILE.vars.fd.
#   --seed DIR    a NoCloud seed directory (meta-data, user-data, network-config; see
#                 cloud-init/) attached as a second disk; without one the image boots to its
#                 factory defaults and the wizard
#   --accel       KVM when it works here, else TCG (default auto; the choice is printed)
#   --mem MB      guest memory (default 1536)
#   --print       print the QEMU command line and exit (nothing is made or changed)
#
# The host side of the LAN is tap run-l with 192.168.1.250/32 and a route to 192.168.1.1
# only, so a home LAN that is itself 192.168.1.0/24 keeps working (except its own .1).
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/lib/image-common.sh
IMGLAB_P=${IMGLAB_P:-run}
source ci/lib/image-lab.sh

image=$IMG_TARGET/dist/router.qcow2
wans=
lab=0
persist=0
seed_dir=
print=0
IMGVM_MEM=${IMGVM_MEM:-1536}
IMGVM_ACCEL=auto
IMGVM_CONSOLE=stdio
while (($#)); do
    case $1 in
    --image) image=${2:?--image needs a file}; shift ;;
    --wans) wans=${2:?--wans needs a number}; shift ;;
    --wans-lab) lab=1 ;;
    --persist) persist=1 ;;
    --seed) seed_dir=${2:?--seed needs a directory}; shift ;;
    --accel) IMGVM_ACCEL=${2:?--accel needs auto, kvm or tcg}; shift ;;
    --mem) IMGVM_MEM=${2:?--mem needs a size in MiB}; shift ;;
    --print) print=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) img_die "unknown argument $1 (see --help)" ;;
    esac
    shift
done
if ((lab)); then
    [[ -z $wans ]] || img_die "--wans and --wans-lab: one or the other (the lab has two ISPs)"
    wans=2
fi
wans=${wans:-2}
[[ $wans =~ ^[1-4]$ ]] || img_die "--wans: 1 to 4 WAN ports, not '$wans'"
[[ $IMGVM_ACCEL =~ ^(auto|kvm|tcg)$ ]] || img_die "--accel: auto, kvm or tcg, not '$IMGVM_ACCEL'"
if ! [[ $IMGVM_MEM =~ ^[0-9]+$ ]] || ((IMGVM_MEM < 512)); then
    img_die "--mem: at least 512 (MiB), not '$IMGVM_MEM'"
fi
[[ -s $image ]] || img_die "--image: no image at $image (build one with ci/image-build.sh, or pass a downloaded router_<version>.qcow2)"
[[ -z $seed_dir || -r $seed_dir/user-data ]] || img_die "--seed: $seed_dir has no user-data (a NoCloud directory as in cloud-init/)"

# Its own directory, whatever the environment says: it is removed on exit.
IMGVM_DIR=/tmp/routeros-run.$$
source ci/lib/image-vm.sh
RUN_LAN_HOST=192.168.1.250
image=$(readlink -f "$image")

# The router's ports, in PCI order: the LAN first, as the factory defaults expect.
IMGVM_NICS=("lan tap $IMGLAB_TAP_LAN $IMGLAB_MAC_LAN")
if ((lab)); then
    IMGVM_NICS+=("wan1 tap $IMGLAB_TAP_W1 $IMGLAB_MAC_W1" "wan2 tap $IMGLAB_TAP_W2 $IMGLAB_MAC_W2")
else
    for ((k = 1; k <= wans; k++)); do
        IMGVM_NICS+=("wan$k user 10.0.$((k + 1)).0/24 52:54:00:52:00:$(printf %02x $((k + 0x10)))")
    done
fi
disks=("$IMGVM_DIR/disk.qcow2")
if ((persist)); then
    disks=("$image")
    IMGVM_VARS=$image.vars.fd
fi
[[ -n $seed_dir ]] && disks+=("raw:$IMGVM_DIR/seed.img")
accel=$(imgvm_accel)
imgvm_qemu_args "$accel" "${disks[@]}"
if ((print)); then
    for a in qemu-system-x86_64 "${IMGVM_ARGS[@]}" -pidfile "$IMGVM_PIDFILE"; do
        if [[ $a =~ ^[[:alnum:]_./:=,@+-]+$ ]]; then printf '%s ' "$a"; else printf '%q ' "$a"; fi
    done
    echo
    exit 0
fi

[[ $EUID -eq 0 ]] || img_die "run as root (a tap for the LAN port$( ((lab)) && echo ', namespaces for the ISPs'))"
img_need_pkgs qemu-system-x86 ovmf iproute2 procps
command -v qemu-img >/dev/null || img_need_pkgs qemu-utils
((lab)) && img_need_pkgs dnsmasq-base python3
[[ -n $seed_dir ]] && img_need_pkgs mtools dosfstools

ping_range=
cleanup() {
    local rc=$?
    imgvm_stop
    if ((lab)); then imglab_down; else ip link del "$IMGLAB_TAP_LAN" 2>/dev/null || true; fi
    [[ -n $ping_range ]] && sysctl -qw net.ipv4.ping_group_range="$ping_range"
    rm -rf "$IMGVM_DIR"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$IMGVM_DIR"

if ((lab)); then
    IMGLAB_ISP1_DHCP=1 IMGLAB_DEFAULT_TARGETS=1
    imglab_up
else
    ip link del "$IMGLAB_TAP_LAN" 2>/dev/null || true
    ip tuntap add dev "$IMGLAB_TAP_LAN" mode tap
    # QEMU's user networking forwards the router's health pings through ICMP datagram
    # sockets, which the kernel allows only to the groups of ping_group_range (root's too).
    read -r lo hi </proc/sys/net/ipv4/ping_group_range
    if ((lo > 0 || hi < 0)); then
        ping_range="$lo $hi"
        sysctl -qw net.ipv4.ping_group_range="0 $((hi > 0 ? hi : 0))"
        echo "net.ipv4.ping_group_range set to 0 $((hi > 0 ? hi : 0)) while QEMU runs (was $ping_range), so the router's health pings pass"
    fi
fi
ip addr add "$RUN_LAN_HOST/32" dev "$IMGLAB_TAP_LAN"
ip link set "$IMGLAB_TAP_LAN" up
ip route replace "$IMGLAB_ROUTER_LAN/32" dev "$IMGLAB_TAP_LAN" src "$RUN_LAN_HOST"

if ((persist)); then
    [[ -s $IMGVM_VARS ]] || cp "$OVMF_VARS" "$IMGVM_VARS"
else
    qemu-img create -q -f qcow2 -F qcow2 -b "$image" "$IMGVM_DIR/disk.qcow2"
    cp "$OVMF_VARS" "$IMGVM_VARS"
fi
[[ -n $seed_dir ]] && imgvm_seed "$seed_dir" "$IMGVM_DIR/seed.img"

if [[ $accel == kvm ]]; then
    speed="KVM"
elif [[ $IMGVM_ACCEL == auto ]]; then
    speed="TCG (software emulation: KVM is missing or does not work here), first boot takes minutes"
else
    speed="TCG (software emulation), first boot takes minutes"
fi
cat <<EOF
Booting $(basename "$image") $( ((persist)) && echo "(persistent: changes are written to it)" || echo "(on a throw-away overlay)") with $speed.
  LAN port  -> tap $IMGLAB_TAP_LAN on this host ($RUN_LAN_HOST)
$(for n in "${IMGVM_NICS[@]:1}"; do read -r id kind arg _ <<<"$n"
    if [[ $kind == user ]]; then echo "  $id port -> QEMU user networking $arg (through this host)"
    else echo "  $id port -> emulated ISP (namespace $IMGLAB_P-isp${id#wan})"; fi; done)
  Wizard and dashboard, once it has booted: http://$IMGLAB_ROUTER_LAN:8080
  Serial console below; Ctrl-a x quits (everything this made is removed), Ctrl-a c is QEMU's monitor.

EOF

if ((lab)); then
    # The ISPs' taps move into their namespaces once QEMU holds them.
    (
        imgvm_wait_taps
        imglab_attach_wans
    ) >"$IMGVM_DIR/attach.log" 2>&1 &
fi
# In the foreground: the terminal is the router's console (raw mode, Ctrl-a x to quit).
qemu-system-x86_64 "${IMGVM_ARGS[@]}" -pidfile "$IMGVM_PIDFILE"
