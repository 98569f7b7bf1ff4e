# shellcheck shell=bash
# The ISP guest: a small QEMU machine (Debian's kernel + an initramfs with pppoe-server, pppd,
# dnsmasq and busybox; ci/isp-guest/) that plays an ISP whose lines this machine's kernel
# cannot emulate (no PPP, no 802.1Q here): a PPPoE line and a VLAN-7-tagged DHCP line, routed
# to an "uplink" towards the lab's internet host. The same image, booted as isp.role=client,
# is the other end for ci/test-isp-guest.sh. Source it (needs bash, root, python3, QEMU).
#
#   ispg_build                      build (or find in the cache) the kernel and initramfs
#   ispg_start NAME ROLE UPLINK_TAP PPPOE_TAP VLAN_TAP [isp.KEY=VALUE...]
#                                   boot a guest (TCG); each TAP a host tap ("-": no such NIC),
#                                   made here if missing, UP; returns once QEMU holds them
#   ispg_wait_ready NAME TIMEOUT    until the guest serves (prints seconds since ispg_start)
#   ispg_cmd NAME SCRIPT [TIMEOUT]  run SCRIPT in the guest (sh, as root), print its output,
#                                   return its exit code (the `isp` command: see ci/isp-guest/isp)
#   ispg_console_lines NAME         lines on the guest's console so far
#   ispg_wait_console NAME REGEX TIMEOUT [FROM_LINE]
#                                   until a console line after FROM_LINE matches REGEX; prints
#                                   the milliseconds it took (console: ttyS0, ISP-EVENT lines)
#   ispg_console_seen NAME REGEX TIMEOUT [FROM_LINE]
#                                   the same, printing the host clock (ms) when it was seen
#   ispg_tail NAME [N]              the console's last N lines and the guest's syslog tail
#   ispg_stop NAME                  stop the guest, delete its taps
#   ispg_down                       stop every guest of $ISPG_DIR, delete the namespaces
#                                   ispg_bridge made
#   ispg_bridge NS TAP...           a namespace NS (made if missing) with bridge br0 joining the
#                                   taps (a "wire" between a guest's NIC and the router's)
#   ispg_uplink NS TAP              the server's uplink tap into the internet namespace NS:
#                                   $ISPG_INET_ADDR/31 and $ISPG_INET_ADDR6/64 there, routes
#                                   to the lines' IPv4 and IPv6 prefixes
#
# Server addressing (defaults of ci/isp-guest/isp, documentation ranges, lab-common.sh's plan for
# WAN 3 and 4): uplink 203.0.113.134/31 (internet side .135); PPPoE line: server 192.0.2.17,
# sessions get 192.0.2.18-.22, MTU 1492; VLAN 7 line: server 192.0.2.25/29, DHCP .26-.30,
# gateway and DNS .25; DNS on both lines answers internet.test = 203.0.113.10. Routed, no NAT.
# IPv6: uplink 2001:db8:fe03::1/64 (internet side ::2); each PPPoE session (IPv6CP) gets its
# own /64 from 2001:db8:ff03::/48, the VLAN line 2001:db8:ff04::/64, both by router
# advertisements (SLAAC) with stateless DHCPv6 for DNS.
# NICs have fixed MACs 52:54:00:15:0R:0N (R 0 server, 1 client; N 1 uplink, 2 pppoe, 3 vlan);
# the guest names them by N. Server parameters (isp.KEY=VALUE, values of A-Za-z0-9._:,/@+-):
# user, pass (the PPPoE account; default isp-user / isp-pass), auth (chap|pap|any), mtu,
# service (PPPoE service name offered; default: any), ac, vlan, vlan_addr, dhcp_range, lease,
# uplink, uplink_gw, ppp_local, ppp_first, ppp_sessions (see ci/isp-guest/isp).
#
# Wiring the router of ci/image-test.sh (two more WAN taps, made and opened like its others):
#   ispg_start isp server "$IMGLAB_P-iu" "$IMGLAB_P-ip" "$IMGLAB_P-iv" isp.user=U isp.pass=P
#   imgvm_start ...; imglab_attach                           # router with taps P-w3, P-w4
#   ispg_uplink "$IMGLAB_P-inet" "$IMGLAB_P-iu"               # ISP -> internet host
#   ispg_bridge "$IMGLAB_P-l3" "$IMGLAB_P-ip" "$IMGLAB_P-w3"  # the PPPoE line
#   ispg_bridge "$IMGLAB_P-l4" "$IMGLAB_P-iv" "$IMGLAB_P-w4"  # the VLAN 7 DHCP line
#   ispg_wait_ready isp 60
#   ispg_cmd isp 'isp kill-sessions'; ispg_cmd isp 'isp pppoe-server restart'; ...
#   ispg_down                                                 # guest, its taps, l3 and l4

ISPG_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Built kernel + initramfs, one folder per recipe hash; outside the clone so CI builds once.
ISPG_CACHE=${ISPG_CACHE:-/var/cache/routeros-ci/isp-guest}
ISPG_DIR=${ISPG_DIR:-/run/routeros-isp-guest/${IMGLAB_P:-isp}}
ISPG_MEM=${ISPG_MEM:-256}
ISPG_INET_ADDR=${ISPG_INET_ADDR:-203.0.113.135}
ISPG_UPLINK_ADDR=${ISPG_UPLINK_ADDR:-203.0.113.134}
ISPG_LINE_PREFIXES=${ISPG_LINE_PREFIXES:-192.0.2.16/28}
ISPG_INET_ADDR6=${ISPG_INET_ADDR6:-2001:db8:fe03::2}
ISPG_UPLINK_ADDR6=${ISPG_UPLINK_ADDR6:-2001:db8:fe03::1}
ISPG_LINE_PREFIXES6=${ISPG_LINE_PREFIXES6:-2001:db8:ff03::/48 2001:db8:ff04::/64}
ISPG_KERNEL=""
ISPG_INITRD=""

ispg_log() { printf '[isp-guest %(%T)T] %s\n' -1 "$*" >&2; }
ispg_die() { printf '[isp-guest %(%T)T] ERROR: %s\n' -1 "$*" >&2; exit 1; }
# The host clock in ms (bash's EPOCHREALTIME: no process per reading).
ispg_now_ms() { local t=${EPOCHREALTIME//[.,]/}; echo $((t / 1000)); }

# ispg_key -> hash of the recipe (every file of ci/isp-guest/)
ispg_key() {
    (cd "$ISPG_REPO_ROOT/ci/isp-guest" && find . -type f | LC_ALL=C sort | xargs sha256sum) |
        sha256sum | cut -c1-16
}

ispg_build() {
    local key dir
    key=$(ispg_key)
    dir=$ISPG_CACHE/$key
    if [[ ! -s $dir/vmlinux || ! -s $dir/initrd.img ]]; then
        if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
            ispg_die "building the ISP guest needs apt-get and dpkg-deb (a Debian host)"
        fi
        [[ -r /usr/share/keyrings/debian-archive-keyring.gpg ]] || ensure_isp_pkgs debian-archive-keyring
        command -v xz >/dev/null || ensure_isp_pkgs xz-utils
        mkdir -p "$ISPG_CACHE"
        ispg_log "building the ISP guest (recipe $key) into $dir"
        (
            flock 9 # one build at a time; a waiting one finds the result
            [[ -s $dir/vmlinux ]] || "$ISPG_REPO_ROOT/ci/isp-guest/build.sh" "$dir" >&2
        ) 9>"$ISPG_CACHE/.lock" || ispg_die "ISP guest build failed"
        # Older recipes' builds go (a few tens of MB each).
        find "$ISPG_CACHE" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -exec rm -rf {} +
    fi
    ISPG_KERNEL=$dir/vmlinux
    ISPG_INITRD=$dir/initrd.img
}

# ensure_isp_pkgs PKG...: apt-get install what is missing (ci/lib/deps.sh).
ensure_isp_pkgs() {
    # shellcheck source=ci/lib/deps.sh
    declare -F ensure_packages >/dev/null || source "$ISPG_REPO_ROOT/ci/lib/deps.sh"
    ensure_packages "$@" >&2
}

ispg_pid() {
    local f=$ISPG_DIR/$1/qemu.pid pid
    [[ -s $f ]] || return 1
    pid=$(<"$f")
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

ispg_start() {
    local name=$1 role=$2 d=$ISPG_DIR/$1 r i tap
    shift 2
    local taps=("$1" "$2" "$3")
    shift 3
    [[ -n $ISPG_KERNEL ]] || ispg_build
    command -v qemu-system-x86_64 >/dev/null || ensure_isp_pkgs qemu-system-x86
    case $role in server) r=0 ;; client) r=1 ;; *) ispg_die "role must be server or client, not $role" ;; esac
    ispg_stop "$name"
    mkdir -p "$d"
    # shellcheck disable=SC2054  # commas belong to QEMU's option syntax
    local args=(-accel tcg -machine pc -cpu max -smp 1 -m "$ISPG_MEM" -nodefaults -no-user-config
        -display none -vga none -no-reboot
        -kernel "$ISPG_KERNEL" -initrd "$ISPG_INITRD"
        # Kernel options that shorten a TCG boot (measured with initcall_debug): no crypto
        # self-tests (~2 s: cryptomgr's, and the KDF's, which runs its own), no TSC
        # recalibration, no mitigation patching, no audit/AppArmor; nothing here needs them.
        -append "console=ttyS0,115200 panic=-1 quiet loglevel=4 cryptomgr.notests initcall_blacklist=crypto_kdf108_init mitigations=off tsc=reliable no_timer_check audit=0 apparmor=0 isp.role=$role $*"
        -chardev "file,id=con,path=$d/console.log" -serial chardev:con
        -chardev "socket,id=ctl,path=$d/ctl.sock,server=on,wait=off" -serial chardev:ctl
        -object rng-random,id=rng,filename=/dev/urandom -device virtio-rng-pci,rng=rng)
    : >"$d/taps"
    for i in 0 1 2; do
        tap=${taps[i]}
        [[ $tap == - ]] && continue
        [[ -e /sys/class/net/$tap ]] || ip tuntap add dev "$tap" mode tap
        ip link set dev "$tap" up
        echo "$tap" >>"$d/taps"
        # romfile=: no iPXE option ROM to load (faster firmware, nothing to boot from the net)
        args+=(-netdev "tap,id=n$i,ifname=$tap,script=no,downscript=no"
            -device "virtio-net-pci,netdev=n$i,mac=52:54:00:15:0$r:0$((i + 1)),romfile=")
    done
    : >"$d/console.log"
    ispg_now_ms >"$d/t0"
    setsid qemu-system-x86_64 "${args[@]}" </dev/null >"$d/qemu.log" 2>&1 &
    echo $! >"$d/qemu.pid"
    # QEMU holds a tap once it has carrier (a tap nobody attached to has none).
    local deadline=$((SECONDS + 15)) held
    while ((SECONDS < deadline)); do
        ispg_pid "$name" >/dev/null || { cat "$d/qemu.log" >&2; ispg_die "QEMU of ISP guest $name did not start"; }
        held=1
        while read -r tap; do
            [[ $(cat "/sys/class/net/$tap/carrier" 2>/dev/null) == 1 ]] || held=0
        done <"$d/taps"
        ((held)) && return 0
        sleep 0.1
    done
    ispg_die "QEMU of ISP guest $name did not open its taps within 15 s"
}

# ispg_wait_ready NAME TIMEOUT: prints the seconds (ms resolution) from ispg_start to serving.
ispg_wait_ready() {
    local name=$1 d=$ISPG_DIR/$1
    if ispg_wait_console "$name" '^ISP-EVENT ready ' "$2" 0 >/dev/null; then
        local t1 t0
        t1=$(ispg_now_ms) t0=$(<"$d/t0")
        printf '%d.%03d\n' $(((t1 - t0) / 1000)) $(((t1 - t0) % 1000))
        return 0
    fi
    ispg_log "ISP guest $name did not become ready within $2 s"
    ispg_tail "$name" 30 >&2
    return 1
}

ispg_console_lines() { wc -l <"$ISPG_DIR/$1/console.log" 2>/dev/null || echo 0; }

ispg_wait_console() {
    local name=$1 rx=$2 from=${4:-0} f=$ISPG_DIR/$1/console.log t0 deadline fd line part="" n=0 now pid
    pid=$(ispg_pid "$name") || return 1
    t0=${EPOCHREALTIME//[.,]/}
    deadline=$((t0 + $3 * 1000000))
    exec {fd}<"$f" || return 1
    # Reads the log as it grows (one process, not a pipeline every poll): a line is complete
    # once read finds its newline; a partial one at the end is kept for the next round.
    while :; do
        if IFS= read -r line <&"$fd"; then
            line=$part$line part=""
            n=$((n + 1))
            ((n > from)) || continue
            if [[ ${line%$'\r'} =~ $rx ]]; then
                exec {fd}<&-
                now=${EPOCHREALTIME//[.,]/}
                echo $(((now - t0) / 1000))
                return 0
            fi
        else
            part+=$line
            now=${EPOCHREALTIME//[.,]/}
            if ((now >= deadline)) || [[ ! -e /proc/$pid ]]; then
                exec {fd}<&-
                return 1
            fi
            sleep 0.02
        fi
    done
}

# ispg_console_seen NAME REGEX TIMEOUT [FROM_LINE]: like ispg_wait_console, but prints the
# host's clock (ms since the epoch) when the line was seen; to time events across guests.
ispg_console_seen() { ispg_wait_console "$@" >/dev/null && ispg_now_ms; }

ispg_cmd() {
    python3 "$ISPG_REPO_ROOT/ci/lib/isp-guest-ctl.py" "$ISPG_DIR/$1/ctl.sock" "$2" "${3:-30}"
}

ispg_tail() {
    local name=$1 n=${2:-30}
    echo "  ISP guest $name, console (last $n lines):"
    tail -n "$n" "$ISPG_DIR/$name/console.log" 2>/dev/null | tr -d '\r' | cut -c1-200 | sed 's/^/  console: /'
    if ispg_pid "$name" >/dev/null; then
        echo "  ISP guest $name, syslog (last $n lines):"
        ispg_cmd "$name" "isp log $n" 10 2>&1 | cut -c1-200 | sed 's/^/  syslog: /'
    else
        echo "  ISP guest $name: QEMU is not running; its log: $(tail -n 5 "$ISPG_DIR/$name/qemu.log" 2>/dev/null | tr '\n' ' ')"
    fi
}

ispg_stop() {
    local name=$1 d=$ISPG_DIR/$1 pid i tap
    if pid=$(ispg_pid "$name"); then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    if [[ -e $d/taps ]]; then
        while read -r tap; do ip link del "$tap" 2>/dev/null || true; done <"$d/taps"
    fi
    rm -rf "$d"
}

ispg_down() {
    local d ns pid
    for d in "$ISPG_DIR"/*/; do
        [[ -d $d ]] && ispg_stop "$(basename "$d")"
    done
    if [[ -e $ISPG_DIR/netns ]]; then
        while read -r ns; do
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
            ip netns del "$ns" 2>/dev/null || true
        done <"$ISPG_DIR/netns"
        rm -f "$ISPG_DIR/netns"
    fi
    return 0
}

ispg_bridge() {
    local ns=$1 tap
    shift
    if [[ ! -e /run/netns/$ns ]]; then
        ip netns add "$ns"
        mkdir -p "$ISPG_DIR" && echo "$ns" >>"$ISPG_DIR/netns" # ispg_down deletes it
    fi
    ip -n "$ns" link set lo up
    ip -n "$ns" link show br0 >/dev/null 2>&1 ||
        ip -n "$ns" link add name br0 type bridge forward_delay 0 stp_state 0
    for tap in "$@"; do
        ip link set dev "$tap" netns "$ns"
        ip -n "$ns" link set dev "$tap" master br0
        ip -n "$ns" link set dev "$tap" up
    done
    ip -n "$ns" link set dev br0 up
}

ispg_uplink() {
    local ns=$1 tap=$2 p
    ip link set dev "$tap" netns "$ns"
    ip -n "$ns" addr add "$ISPG_INET_ADDR/31" dev "$tap"
    ip -n "$ns" link set dev "$tap" up
    for p in $ISPG_LINE_PREFIXES; do
        ip -n "$ns" route replace "$p" via "$ISPG_UPLINK_ADDR" dev "$tap"
    done
    ip -n "$ns" addr add "$ISPG_INET_ADDR6/64" dev "$tap" nodad
    for p in $ISPG_LINE_PREFIXES6; do
        ip -n "$ns" -6 route replace "$p" via "$ISPG_UPLINK_ADDR6" dev "$tap"
    done
}
