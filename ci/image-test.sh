#!/usr/bin/env bash
# Boot the appliance image in QEMU (TCG, q35, OVMF) with two emulated ISPs and a LAN client in
# network namespaces, and check it as a user would:
#
#   network   the LAN client gets its static DHCP lease and DNS answers; it reaches the
#             internet host through both WANs; the web UI and SSH answer from the LAN and not
#             from a WAN (SSH: IPv4, and IPv6 link-local and global); a port forward works from the internet and from the LAN (hairpin);
#             cutting ISP 1's uplink moves new traffic (and DNS) to ISP 2; shaping: the added
#             latency of a ping under load on a bloated 10 Mbit/s line, CAKE off and on (<= 30 ms)
#   lines     (after network, same boot) WAN 3 and 4 wired to the ISP guest (ci/lib/isp-guest.sh):
#             a PPPoE line and a VLAN 7 DHCP line come up next to the static and DHCP ones and
#             carry traffic; the ISP ending the session takes wan3 out within 1 s and it comes
#             back by itself; a wrong password shows "authentication failed" (ci/lib/image-lines.sh)
#   upgrade   the web UI's upgrade page (its API, from the LAN client) has version 2 installed
#             (bundle over HTTP) into slot B; the router reboots, B boots and is marked good,
#             the page says so; config, SSH host key and machine id are kept
#   rollback  an upgrade to a deliberately broken version 3 (its daemon cannot start, and it
#             rewrites the config to a schema version 2 refuses) is tried, never marked good,
#             and systemd-boot falls back to version 2 by itself, whose config is intact
#   watchdog  (not by default: ~5 min more) PID 1 is frozen; the hardware watchdog it no longer
#             feeds resets the router, which comes back on the same version and routes again
#   iso       (not by default: ~10 min more) the USB ISO boots live, routeros-install writes an
#             empty disk, which then boots alone with the factory defaults: DHCP on the first
#             port, web wizard at http://192.168.1.1:8080
#
#   ci/image-test.sh [--no-build] [--derived] [--keep] [--stages network[,lines][,watchdog],upgrade,rollback[,iso]]
#   ci/image-test.sh --ci        the CI-sized run: --derived --stages network,lines,upgrade,rollback,
#                                and the broken version gets 1 boot attempt (a --stages after
#                                --ci narrows it, e.g. --ci --stages network,rollback: the
#                                rollback then goes from version 1 to 3 and back to 1)
#
#   --no-build   reuse the images of the previous run (target/image/test/versions.env)
#   --derived    build version 1 with mkosi, and make versions 2 and 3 from it without mkosi
#                (ci/image-build.sh --derive-from: same packages, re-stamped version, the
#                broken variant's files written in): saves two image builds (~6 min)
#   --keep       leave the VM and the namespaces running at the end (ci/image-test.sh --down
#                removes them)
# Environment: IMG_TEST_TRIES [2] boot attempts the broken version gets (product default 3),
# IMGVM_MEM [1536] guest memory in MiB.
#
# Prints boot-to-routing-ready times under TCG, image sizes, build times, and "N passed,
# M failed". Needs root; installs QEMU, OVMF, dnsmasq, dhclient, mtools from Debian if missing.
set -euo pipefail
# shellcheck source=ci/lib/image-common.sh
source "$(dirname "$0")/lib/image-common.sh"
# shellcheck source=ci/lib/image-lab.sh
source "$(dirname "$0")/lib/image-lab.sh"
# shellcheck source=ci/lib/image-vm.sh
source "$(dirname "$0")/lib/image-vm.sh"
# shellcheck source=ci/lib/image-lines.sh
source "$(dirname "$0")/lib/image-lines.sh"
# shellcheck source=ci/lib/image-shaping.sh
source "$(dirname "$0")/lib/image-shaping.sh"

build=1
keep=0
stages=network,lines,upgrade,rollback
derived=0
TRIES=${IMG_TEST_TRIES:-2}
while (($#)); do
    case $1 in
        --no-build) build=0 ;;
        --derived) derived=1 ;;
        --ci) derived=1; stages=network,lines,upgrade,rollback; TRIES=${IMG_TEST_TRIES:-1} ;;
        --keep) keep=1 ;;
        --stages) stages=$2; shift ;;
        --down) imgvm_stop; ispg_down; imglab_down; exit 0 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) img_die "unknown argument $1 (see --help)" ;;
    esac
    shift
done
[[ $EUID -eq 0 ]] || img_die "run as root (namespaces, taps)"
has_stage() { [[ ,$stages, == *,$1,* ]]; }

# QEMU + UEFI firmware, the seed volume (mtools, dosfstools), the ISPs' DHCP/DNS (dnsmasq),
# the LAN client (dhclient, dig, curl, ssh, python3 for its web server), namespaces (iproute2).
img_need_pkgs qemu-system-x86 ovmf mtools dosfstools dnsmasq-base isc-dhcp-client openssh-client \
    curl bind9-dnsutils python3 iproute2 util-linux procps iputils-ping
command -v qemu-img >/dev/null || img_need_pkgs qemu-utils

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); printf 'ok     %s\n' "$*"; }
nok() { FAIL=$((FAIL + 1)); printf 'FAILED %s\n' "$*"; }
check() { # DESCRIPTION CMD...: ok if CMD succeeds
    local what=$1; shift
    if "$@"; then ok "$what"; else nok "$what"; fi
}
declare -A timing

cleanup() {
    local rc=$?
    if ((keep)); then
        img_log "--keep: VM (pid $(imgvm_pid || echo -)) and namespaces stay; ci/image-test.sh --down removes them"
    else
        imgvm_stop
        ispg_down
        imglab_down
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- images --------------------------------------------------------------------------------
VERSIONS_ENV=$IMGVM_DIR/versions.env
mkdir -p "$IMGVM_DIR"
if ((build)); then
    t=$SECONDS
    base=$(awk '/^\[/ { s = $0 } s == "[workspace.package]" && /^version/ { gsub(/.*= *"|".*/, ""); print; exit }' \
        "$IMG_REPO_ROOT/Cargo.toml").$(date -u +%Y%m%d%H%M)
    V1=$base.1 V2=$base.2 V3=$base.3
    iso_opt=--no-iso
    has_stage iso && iso_opt=""
    "$IMG_REPO_ROOT/ci/image-build.sh" --version "$V1" $iso_opt | tee "$IMGVM_DIR/build-$V1.txt"
    timing[build1]=$((SECONDS - t))
    t=$SECONDS
    from=()
    ((derived)) && from=(--derive-from "$V1")
    if has_stage upgrade; then
        IMG_SKIP_PACKAGE=1 "$IMG_REPO_ROOT/ci/image-build.sh" --version "$V2" "${from[@]}" --no-iso --no-qcow2 | tee "$IMGVM_DIR/build-$V2.txt"
    fi
    timing[build2]=$((SECONDS - t))
    t=$SECONDS
    if has_stage rollback; then
        IMG_SKIP_PACKAGE=1 "$IMG_REPO_ROOT/ci/image-build.sh" --version "$V3" "${from[@]}" --variant broken-for-test \
            --no-iso --no-qcow2 | tee "$IMGVM_DIR/build-$V3.txt"
    fi
    timing[build3]=$((SECONDS - t))
    printf 'V1=%s\nV2=%s\nV3=%s\n' "$V1" "$V2" "$V3" >"$VERSIONS_ENV"
else
    [[ -r $VERSIONS_ENV ]] || img_die "--no-build: no $VERSIONS_ENV from an earlier run"
    # shellcheck source=/dev/null
    . "$VERSIONS_ENV"
fi
DIST=$IMG_TARGET/dist
QCOW=$DIST/router_$V1.qcow2
[[ -s $QCOW ]] || img_die "$QCOW missing"

# ci/image-run.sh, the command a person boots the image with, builds its QEMU command line
# with the function this test boots with (imgvm_qemu_args); it parses and asks for its ports.
run_cmd=$("$IMG_REPO_ROOT/ci/image-run.sh" --image "$QCOW" --wans-lab --accel tcg --print 2>&1 || true)
# shellcheck disable=SC2016  # expanded by the inner bash
check "ci/image-run.sh --wans-lab --print: TCG, OVMF, the LAN tap first, then the lab ISPs' taps, an overlay disk" \
    bash -c '[[ $1 == *"-accel tcg "* && $1 == *"unit=0,readonly=on,file=$2"* &&
        $1 == *"ifname=run-l,"*"ifname=run-w1,"*"ifname=run-w2,"* && $1 == *"/disk.qcow2,"* ]]' _ \
    "$run_cmd" "$OVMF_CODE"
run_cmd=$("$IMG_REPO_ROOT/ci/image-run.sh" --image "$QCOW" --wans 3 --print 2>&1 || true)
# shellcheck disable=SC2016  # expanded by the inner bash
check "ci/image-run.sh --wans 3 --print: three WANs on QEMU's user networking" \
    bash -c '[[ $1 == *"id=wan1,net=10.0.2.0/24"*"id=wan2,net=10.0.3.0/24"*"id=wan3,net=10.0.4.0/24"* ]]' _ "$run_cmd"

# --- seed, lab, boot -----------------------------------------------------------------------
rm -f "$IMGVM_SSH_KEY" "$IMGVM_SSH_KEY.pub"
ssh-keygen -q -t ed25519 -N "" -C image-test -f "$IMGVM_SSH_KEY"
seed_dir=$IMGVM_DIR/seed
rm -rf "$seed_dir" && mkdir -p "$seed_dir"
cp "$IMG_REPO_ROOT/cloud-init/qemu/meta-data" "$IMG_REPO_ROOT/cloud-init/qemu/network-config" "$seed_dir/"
sed "s|@SSH_KEY@|$(<"$IMGVM_SSH_KEY.pub")|" "$IMG_REPO_ROOT/cloud-init/qemu/user-data.in" >"$seed_dir/user-data"
imgvm_seed "$seed_dir" "$IMGVM_DIR/seed.img"

boot_story() { # LABEL: where this boot's time went: systemd's totals, the chains to the LAN's
    # DHCP server and the daemon's first plan, and the slowest units
    imgvm_ssh 'systemd-analyze; systemd-analyze critical-chain routeros-dnsmasq.service routeros-watchdog.service;
        systemd-analyze blame --no-pager | grep -v "\.device$" | head -n 12' 2>&1 |
        sed "s/^/  $1: /" || true
}

# check_data_binds WHAT: the data partition's directories are over the image's (routeros-data
# mounts the binds of data.fstab: the config, the daemon's state and the logs survive upgrades).
check_data_binds() {
    local binds
    # shellcheck disable=SC2016  # expanded on the router
    binds=$(imgvm_ssh 'systemctl is-active routeros-data.service; n=0; m=0
        for d in $(awk "/^\// { print \$2 }" /usr/lib/routeros-image/data.fstab); do
            n=$((n + 1)); findmnt -n "$d" >/dev/null && m=$((m + 1)); done; echo "$m/$n"' 2>/dev/null | xargs || true)
    # shellcheck disable=SC2016
    check "$1: routeros-data active, its directories bind-mounted ($binds)" \
        bash -c '[[ $1 =~ ^active\ ([0-9]+)/([0-9]+)$ && ${BASH_REMATCH[1]} == "${BASH_REMATCH[2]}" && ${BASH_REMATCH[2]} -ge 8 ]]' _ "$binds"
}
# Routing ready, as the LAN client sees it: it got its lease and reaches the internet host.
lan_addr=""
wait_routing() { # TIMEOUT -> 0 when the LAN client has an address and reaches the internet host
    local deadline=$((SECONDS + $1))
    while ((SECONDS < deadline)); do
        imgvm_pid >/dev/null || return 1
        if [[ -z $lan_addr ]]; then
            lan_addr=$(imglab_lan_dhcp 20 || true)
            [[ -n $lan_addr ]] || { sleep 1; continue; }
        fi
        if imglab_ns lan curl -fsS --max-time 3 -o /dev/null "http://$IMGLAB_INET/"; then
            return 0
        fi
        sleep 1
    done
    return 1
}
if has_stage network || has_stage lines || has_stage watchdog || has_stage upgrade || has_stage rollback; then
    imglab_up
    img_log "booting router_$V1 (TCG); serial console: $IMGVM_SERIAL"
    # The build's gigabytes still being written back would slow the emulated boot we time.
    sync
    boot_t0=$SECONDS
    qemu_t0=$(date +%s.%N)
    imgvm_start "$QCOW" "$IMGVM_DIR/seed.img"
    imgvm_firmware_mark 0 "$IMGVM_DIR/firmware1.time"
    imglab_attach
    if wait_routing 900; then
        timing[boot1]=$((SECONDS - boot_t0))
        ok "first boot with the NoCloud seed: LAN client routed to the internet after ${timing[boot1]} s"
        # QEMU start to the firmware handing over to the boot loader: added to a reboot's
        # figure (timed from that hand-over) to give the time from power-on.
        imgvm_firmware_wait "$IMGVM_DIR/firmware1.time" 5 &&
            firmware_s=$(awk -v a="$(<"$IMGVM_DIR/firmware1.time")" -v b="$qemu_t0" 'BEGIN { printf "%.1f", a - b }')
    else
        nok "first boot: LAN client not routed within 900 s (lease: ${lan_addr:-none})"
        tail -n 60 "$IMGVM_SERIAL" | sed 's/^/  serial: /'
        exit 1
    fi
    imgvm_wait_ssh 120 || img_die "no SSH from the LAN"
    boot_story boot
    check_data_binds "data partition"
fi

# --- network --------------------------------------------------------------------------------
# tcp_open NS ADDR PORT: a TCP connection from namespace NS to ADDR (fe80::...%dev allowed) opens.
tcp_open() { [[ -n $2 && $2 != %* ]] && timeout 6 ip netns exec "$IMGLAB_P-$1" bash -c "</dev/tcp/$2/$3" 2>/dev/null; }
# tcp_closed NS PORT ADDR...: a connection to PORT opens on none of the addresses.
tcp_closed() {
    local ns=$1 port=$2 a; shift 2
    for a in "$@"; do [[ -n $a && $a != %* ]] && ! tcp_open "$ns" "$a" "$port" || return 1; done
}
# ping6_all NS ADDR...: every address answers a ping from NS.
ping6_all() {
    local ns=$1 a; shift
    for a in "$@"; do [[ -n $a && $a != %* ]] && ip netns exec "$IMGLAB_P-$ns" ping -6 -c 2 -W 3 "$a" >/dev/null || return 1; done
}
# ll_of DEV: the router's link-local address on DEV (asked over SSH from the LAN).
ll_of() { imgvm_ssh ip -6 -o addr show dev "$1" scope link 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }'; }
# WAN ports keep IPv6 (link-local always, SLAAC with an ISP's RAs) and sshd listens on ::. ISP 1
# pings the router's WAN addresses (so they are right and reachable), yet SSH must not connect;
# the LAN reaches SSH over the router's link-local address. The global WAN address is set by
# hand (a fixed one; the router's SLAAC address from ISP 1's RAs is another in the same /64).
check_ssh_ipv6() {
    local wan6=2001:db8:ff01::2 wan_ll lan_ll
    wan_ll=$(ll_of wan1)%$IMGLAB_TAP_W1
    lan_ll=$(ll_of lan)%$IMGLAB_TAP_LAN
    ip -n "$IMGLAB_P-isp1" addr add 2001:db8:ff01::1/64 dev "$IMGLAB_TAP_W1" nodad 2>/dev/null || true
    imgvm_ssh sudo ip -6 addr replace "$wan6/64" dev wan1 nodad 2>/dev/null || true
    check "IPv6: ISP 1 reaches the router's WAN link-local $wan_ll and global $wan6 (ping)" \
        ping6_all isp1 "$wan_ll" "$wan6"
    check "IPv6: SSH does not answer from ISP 1 on the WAN link-local or global address" \
        tcp_closed isp1 22 "$wan_ll" "$wan6"
    check "IPv6: SSH answers from the LAN on the router's link-local address $lan_ll" \
        tcp_open lan "$lan_ll" 22
}
# The LAN client configures itself from the router's advertisements (the daemon's dnsmasq
# config; the factory LAN port holds the ULA) and reaches the internet host over IPv6,
# translated to the address of one of the WANs (each took its /64 from its ISP's RAs).
check_lan_ipv6() {
    local addr="" seen="" t=$SECONDS
    while [[ -z $addr ]] && ((SECONDS - t < 60)); do
        addr=$(ip -n "$IMGLAB_P-lan" -6 -o addr show dev "$IMGLAB_TAP_LAN" scope global -tentative 2>/dev/null |
            awk '{ print $4; exit }')
        [[ -n $addr ]] || sleep 2
    done
    check "IPv6: the LAN client took ${addr:-nothing} by SLAAC from the router's advertisements" \
        test "${addr%%:*}" = fd7a
    while ((SECONDS - t < 90)); do
        seen=$(imglab_ns lan curl -6 -fsS --max-time 5 "http://[$IMGLAB_INET6]/" 2>/dev/null || true)
        [[ $seen == 2001:db8:ff0[12]:* ]] && break
        sleep 3
    done
    check "IPv6: the LAN client reaches $IMGLAB_INET6 through a WAN's address [${seen:-no answer}]" \
        bash -c "[[ '$seen' == 2001:db8:ff0[12]:* ]]"
}
sources() { # N [HOST] -> the source addresses the internet host (HOST: default its IPv4
    local i  #               address; "[addr]" for IPv6) saw for N new connections from the LAN
    for ((i = 0; i < $1; i++)); do
        imglab_ns lan curl -fsS --max-time 3 "http://${2:-$IMGLAB_INET}/" 2>/dev/null || echo fail
    done | sort | uniq -c | awk '{ printf "%s=%s ", $2, $1 }'
}
if has_stage network; then
    check "DHCP: the LAN client got its static lease $IMGLAB_LAN_STATIC (from [lan.dhcp] of the TOML)" \
        test "$lan_addr" = "$IMGLAB_LAN_STATIC"
    check "DHCP: the lease names the router as gateway and DNS server" \
        grep -qx "nameserver $IMGLAB_ROUTER_LAN" "/etc/netns/$IMGLAB_P-lan/resolv.conf"
    ans=$(imglab_ns lan dig +short +time=3 +tries=2 "@$IMGLAB_ROUTER_LAN" internet.test A || true)
    check "DNS: the router answers internet.test = $IMGLAB_INET (forwarded to an ISP) [$ans]" \
        test "$ans" = "$IMGLAB_INET"
    # Right after boot a WAN may still be coming up (DHCP, health probes): up to 2 min for both.
    both_wans() { [[ $1 == *$IMGLAB_WAN1_RTR=* && $1 == *$IMGLAB_WAN2_RTR=* && $1 != *fail=* ]]; }
    t=$SECONDS
    seen=$(sources 24)
    while ! both_wans "$seen" && ((SECONDS - t < 120)); do sleep 5; seen=$(sources 24); done
    check "both WANs carry LAN traffic (sources seen by the internet host: $seen)" both_wans "$seen"
    code=$(imglab_ns lan curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$IMGLAB_ROUTER_LAN:8080/" || true)
    check "web UI answers on the LAN at http://$IMGLAB_ROUTER_LAN:8080/ (HTTP $code)" \
        bash -c "[[ '$code' =~ ^[23] ]]"
    check "web UI does not answer from ISP 1 (http://$IMGLAB_WAN1_RTR:8080/)" \
        bash -c "! ip netns exec $IMGLAB_P-isp1 curl -s -o /dev/null --max-time 4 http://$IMGLAB_WAN1_RTR:8080/"
    check "web UI does not answer from the internet (http://$IMGLAB_WAN2_RTR:8080/)" \
        bash -c "! ip netns exec $IMGLAB_P-inet curl -s -o /dev/null --max-time 4 http://$IMGLAB_WAN2_RTR:8080/"
    check "SSH answers from the LAN and not from ISP 1" \
        bash -c "! timeout 6 ip netns exec $IMGLAB_P-isp1 bash -c '</dev/tcp/$IMGLAB_WAN1_RTR/22' 2>/dev/null"
    check_ssh_ipv6
    check_lan_ipv6
    fwd=$(imglab_ns inet curl -fsS --max-time 5 "http://$IMGLAB_WAN1_RTR:8088/" 2>/dev/null || true)
    check "port forward: the internet reaches the LAN client through wan1:8088 [$fwd]" test "$fwd" = client
    fwd=$(imglab_ns lan curl -fsS --max-time 5 "http://$IMGLAB_WAN2_RTR:8088/" 2>/dev/null || true)
    check "hairpin NAT: the LAN client reaches itself through the public wan2:8088 [$fwd]" test "$fwd" = client
    wd=$(imgvm_ssh 'w=/sys/class/watchdog/watchdog0; echo $(cat $w/identity) $(cat $w/state) $(cat $w/timeout)' 2>/dev/null || true)
    check "hardware watchdog (q35's chipset TCO) fed by systemd: active, 60 s timeout ($wd)" \
        test "$wd" = "iTCO_wdt active 60"

    # systemd-networkd deletes every route and rule it did not configure when it starts or
    # reconfigures, unless told not to (/usr/lib/systemd/networkd.conf.d/10-routeros.conf);
    # whatever is deleted anyway, the daemon puts back (kernel events, a check every 5 s).
    ours() { imgvm_ssh 'ip -4 route show table all proto 201 | sort; ip rule show | grep "proto 201"' 2>/dev/null; }
    restores() { imgvm_ssh sudo routeros-kill-switch --status --json 2>/dev/null | grep -o '"kernel_restores":[0-9]*' | cut -d: -f2; }
    back_within() { # SECONDS WANT: until our routes and rules are WANT again; prints how long it took
        local t0=$SECONDS
        while ((SECONDS - t0 <= $1)); do
            [[ $(ours) == "$2" ]] && { echo $((SECONDS - t0)); return 0; }
            sleep 1
        done
        echo never; return 1
    }
    drop_in=$(imgvm_ssh systemd-analyze cat-config systemd/networkd.conf 2>/dev/null | grep -c '^ManageForeign[A-Za-z]*=no$' || true)
    check "networkd.conf drop-in: networkd leaves foreign routes and rules alone ($drop_in of 2 settings)" \
        test "$drop_in" = 2
    routes_rules=$(ours)
    restores0=$(restores)
    check "the daemon's routes and rules are there ($(grep -c . <<<"$routes_rules") lines) and it reports kernel_restores (${restores0:-none})" \
        bash -c "[[ '$(grep -c 'proto 201' <<<"$routes_rules")' -ge 6 && -n '$restores0' ]]"
    for key in networkd_restart netplan_apply; do
        action="systemctl restart systemd-networkd"
        [[ $key == netplan_apply ]] && action="netplan apply"
        imgvm_ssh sudo "$action" >/dev/null 2>&1 || nok "$action failed on the router"
        took=$(back_within 20 "$routes_rules" || true)
        [[ $took == never ]] || timing[$key]=$took
        check "$action: our routes and rules are all there afterwards (after ${took} s, 1 s polls over SSH)" \
            test "$took" != never
    done
    # The seed gives both lines a mode: the daemon's networkd files bring them up, also after
    # networkd's restart and `netplan apply` (which regenerates only netplan's own files).
    files=$(imgvm_ssh 'networkctl status wan1 wan2 2>/dev/null | grep -c "Network File: /etc/systemd/network/05-routeros-wan[12].network"' 2>/dev/null || true)
    check "networkd runs wan1 (static) and wan2 (DHCP) from the daemon's files, after the restart and netplan apply ($files of 2)" \
        test "$files" = 2
    # Information, not a check: a DHCP client that drops and re-adds an address takes the
    # routes through it along, drop-in or not, and then the daemon restores them.
    restores1=$(restores)
    img_log "the daemon's kernel_restores: ${restores0:-?} before networkd's restart and netplan apply, ${restores1:-?} after"
    # A box booted without a seed gets routeros-netdefault's netplan file; netplan refusing it
    # leaves the factory first boot without a LAN (the ISO stage, not in CI, boots that way).
    check "factory port defaults (no seed): netplan's generator accepts routeros-netdefault's file, networkd can read the result" \
        imgvm_ssh 'sudo rm -rf /tmp/nd && sudo install -d -m 0755 /tmp/nd && sudo ROUTEROS_NETDEFAULT_ROOT=/tmp/nd /usr/lib/routeros-image/netdefault &&
            sudo -u systemd-network test -r /tmp/nd/run/systemd/network/10-netplan-lan.network &&
            sudo -u systemd-network test -r /tmp/nd/run/systemd/network/10-netplan-wan1.network'
    imgvm_ssh "sudo ip rule del priority 1100 && sudo ip route flush table 100" >/dev/null 2>&1 ||
        nok "could not delete a rule and flush table 100 on the router"
    took=$(back_within 10 "$routes_rules" || true)
    check "ip rule del / ip route flush table 100 on the router: put back by the daemon (after ${took} s, 1 s polls over SSH)" \
        test "$took" != never
    seen=$(sources 24)
    check "both WANs still carry LAN traffic afterwards ($seen)" both_wans "$seen"

    img_log "cutting ISP 1's uplink"
    imglab_isp_cut 1
    t=$SECONDS
    moved=0
    # Until the daemon has taken wan1 out and 6 new connections all leave through wan2 (6 by
    # chance through wan2 before it noticed happens: 1 in 64 at weights 1:1).
    while ((SECONDS - t < 30)); do
        if [[ $(lines_eval "w('wan1').get('usable')") == False ]]; then
            seen=$(sources 6)
            if [[ $seen == "$IMGLAB_WAN2_RTR=6 " ]]; then moved=1; break; fi
        fi
        sleep 1
    done
    timing[failover]=$((SECONDS - t))
    check "failover: with ISP 1 cut, new connections leave through wan2 (after ${timing[failover]} s)" test $moved = 1
    seen=$(sources 12)
    check "failover: 12 more connections all through wan2 ($seen)" test "$seen" = "$IMGLAB_WAN2_RTR=12 "
    ans=$(imglab_ns lan dig +short +time=3 +tries=3 "@$IMGLAB_ROUTER_LAN" isp.test A || true)
    check "failover: DNS follows the live WAN (isp.test answered by ISP 2: $ans)" test "$ans" = "$IMGLAB_WAN2_ISP"
    imglab_isp_restore 1
    # Shaping with CAKE (the namespace lab's kernel has none): added latency under load, off
    # and on (ci/lib/image-shaping.sh).
    shaping_stage
fi

# --- upgrade --------------------------------------------------------------------------------
rsh() { imgvm_ssh sudo "$@"; }
config_sum() { rsh sha256sum /opt/routeros/config/routeros.toml 2>/dev/null | cut -c1-64; }
hostkey() { imglab_ns lan ssh-keyscan -t ed25519 "$IMGLAB_ROUTER_LAN" 2>/dev/null | awk '{ print $3 }'; }
serve_dist() { # the upgrade bundles over HTTP from the LAN client (routeros-upgrade URL)
    imglab_bg lan dist python3 -m http.server 8001 --bind "$IMGLAB_LAN_STATIC" --directory "$DIST"
    sleep 1
}
wait_version() { # VERSION TIMEOUT: until the router answers SSH running VERSION
    local deadline=$((SECONDS + $2)) v
    while ((SECONDS < deadline)); do
        v=$(imgvm_ssh '. /etc/os-release; echo $IMAGE_VERSION' 2>/dev/null || true)
        [[ $v == "$1" ]] && return 0
        imgvm_pid >/dev/null || return 1
        sleep 5
    done
    return 1
}
wait_blessed() { # TIMEOUT: until routeros-boot-check has finished (good) on this boot
    local deadline=$((SECONDS + $1))
    while ((SECONDS < deadline)); do
        [[ $(imgvm_ssh systemctl show -P ActiveState routeros-boot-check.service 2>/dev/null) == active ]] && return 0
        sleep 3
    done
    return 1
}

# The web API from the LAN client, as the upgrade page uses it: a session cookie, and our
# Origin on changes. web METHOD PATH [JSON] -> the body, then the HTTP code on a line of its own.
WEB_URL="http://$IMGLAB_ROUTER_LAN:8080"
WEB_PASSWORD=image-test-admin-1
web() {
    imglab_ns lan curl -s --max-time 30 -b "$IMGVM_DIR/web.cookies" -c "$IMGVM_DIR/web.cookies" \
        -H "Origin: $WEB_URL" -H 'Content-Type: application/json' -X "$1" ${3:+--data "$3"} \
        -w '\n%{http_code}\n' "$WEB_URL$2"
}
web_code() { web "$@" | tail -n1; }
web_login() { # as admin; on first use replace the default password (the wizard's first step)
    local login='{"username":"admin","password":"%s"}'
    # shellcheck disable=SC2059
    [[ $(web_code POST /api/v1/login "$(printf "$login" "$WEB_PASSWORD")") == 200 ]] && return 0
    # shellcheck disable=SC2059
    [[ $(web_code POST /api/v1/login "$(printf "$login" routeros123)") == 200 ]] || return 1
    [[ $(web_code POST /api/v1/setup/password "{\"new_password\":\"$WEB_PASSWORD\"}") == 204 ]] || return 1
    # shellcheck disable=SC2059
    [[ $(web_code POST /api/v1/login "$(printf "$login" "$WEB_PASSWORD")") == 200 ]]
}
upgrade_page() { # FIELD: one field of GET /api/v1/system/upgrade (lists joined by " | ")
    local out
    out=$(web GET /api/v1/system/upgrade)
    # Sessions do not outlive a reboot: log in again.
    [[ ${out##*$'\n'} == 401 ]] && web_login && out=$(web GET /api/v1/system/upgrade)
    sed '$d' <<<"$out" | python3 -c '
import json, sys
v = json.load(sys.stdin).get(sys.argv[1])
print(" | ".join(v) if isinstance(v, list) else v)' "$1" 2>/dev/null
}
wait_page_state() { # TIMEOUT STATE...: until the upgrade page shows one of the states; prints it
    local deadline=$((SECONDS + $1)) st=""; shift
    while ((SECONDS < deadline)); do
        st=$(upgrade_page state || true)
        [[ " $* " == *" $st "* ]] && break
        sleep 2
    done
    echo "$st"
}

# --- lines: PPPoE and VLAN lines against the ISP guest (same boot, through the wizard) -------
if has_stage lines; then
    lines_stage
fi

# --- watchdog: a hung PID 1 is reset by the hardware watchdog --------------------------------
if has_stage watchdog; then
    boot0=$(imgvm_ssh cat /proc/sys/kernel/random/boot_id 2>/dev/null || true)
    running=$(imgvm_ssh '. /etc/os-release; echo $IMAGE_VERSION' 2>/dev/null || true)
    img_log "freezing PID 1 (SIGSEGV: systemd's crash handler freezes it, so nothing feeds the watchdog)"
    t=$SECONDS
    rsh kill -SEGV 1 2>/dev/null || true
    lan_addr=""
    # Two expiries of the 60 s timeout (the TCO resets on the second), then a boot. SSH keeps
    # answering while only PID 1 is frozen: wait for another boot id.
    boot1=$boot0
    deadline=$((SECONDS + 900))
    while [[ $boot1 == "$boot0" ]] && ((SECONDS < deadline)) && imgvm_pid >/dev/null; do
        sleep 5
        boot1=$(imgvm_ssh cat /proc/sys/kernel/random/boot_id 2>/dev/null || echo "$boot0")
    done
    [[ $boot1 != "$boot0" ]] && timing[watchdog]=$((SECONDS - t))
    check "watchdog: the frozen router was reset and is back (${timing[watchdog]:-no} s)" \
        bash -c "[[ -n '$boot1' && '$boot1' != '$boot0' ]]"
    check "watchdog: still version $running" wait_version "$running" 60
    check "watchdog: a version already marked good stays after the reset" wait_blessed 300
    check "watchdog: LAN routed again" wait_routing 300
fi

if has_stage upgrade || has_stage rollback; then
    wait_blessed 300 || nok "routeros-boot-check did not pass on version $V1"
    serve_dist
    cfg0=$(config_sum)
    key0=$(hostkey)
    mid0=$(imgvm_ssh cat /etc/machine-id)
fi

if has_stage upgrade; then
    # Through the web UI's upgrade page (its API): the root helper runs routeros-upgrade.
    img_log "upgrading to $V2 from the web UI (POST /api/v1/system/upgrade with the bundle's URL)"
    check "upgrade: admin logs in to the web UI from the LAN" web_login
    check "upgrade: the page offers image upgrades, running $V1" \
        test "$(upgrade_page available) $(upgrade_page running_version)" = "True $V1"
    # An uploaded bundle whose signature is not from the image's key: refused, nothing written.
    forged=$IMGVM_DIR/forged
    rm -rf "$forged"; mkdir -p "$forged"
    head -c 4096 /dev/urandom >"$forged/router_9.9.root.raw.zst"
    head -c 4096 /dev/urandom >"$forged/router_9.9.efi"
    (cd "$forged" && sha256sum router_9.9.root.raw.zst router_9.9.efi >SHA256SUMS)
    head -c 64 /dev/urandom >"$forged/SHA256SUMS.sig"
    tar -C "$forged" -cf "$forged.tar" SHA256SUMS SHA256SUMS.sig router_9.9.root.raw.zst router_9.9.efi
    code=$(imglab_ns lan curl -s -o /dev/null -w '%{http_code}' --max-time 60 -b "$IMGVM_DIR/web.cookies" \
        -H "Origin: $WEB_URL" -H 'Content-Type: application/octet-stream' \
        --data-binary @"$forged.tar" "$WEB_URL/api/v1/system/upgrade/bundle")
    check "upgrade: the web UI takes an uploaded bundle (HTTP $code)" test "$code" = 202
    st=$(wait_page_state 300 failed rebooting)
    msg=$(upgrade_page message)
    check "upgrade: a bundle with a forged signature is refused ($st: $msg)" \
        bash -c "[[ '$st' == failed && '$msg' == *'not a valid signature'* ]]"
    left=$(imgvm_ssh sudo ls -A /var/lib/routeros-web/upgrade/ 2>/dev/null || echo '(ssh failed)')
    running=$(upgrade_page running_version)
    check "upgrade: the refused upload is deleted (left: ${left:-nothing}), $running still runs" \
        bash -c "[[ -z '$left' && '$running' == '$V1' ]]"
    t=$SECONDS
    serial0=$(imgvm_serial_lines)
    imgvm_firmware_mark "$(imgvm_firmware_boots)" "$IMGVM_DIR/firmware2.time"
    bundle_url="http://$IMGLAB_LAN_STATIC:8001/router_$V2.upgrade.tar"
    code=$(web_code POST /api/v1/system/upgrade "{\"url\":\"$bundle_url\"}")
    check "upgrade: the web UI accepts the request (HTTP $code)" test "$code" = 202
    # Until the page shows this request, its state is the refused upload's 'failed'.
    for ((i = 0; i < 60; i++)); do
        [[ $(upgrade_page source) == "$bundle_url" ]] && break
        sleep 1
    done
    # "installed" if the 5 s of "rebooting" before the reboot were missed (the router is back).
    st=$(wait_page_state 900 rebooting installed failed)
    timing[upgrade_write]=$((SECONDS - t))
    check "upgrade: the page went to '$st' after ${timing[upgrade_write]} s ($(upgrade_page message))" \
        bash -c "[[ '$st' == rebooting || '$st' == installed ]]"
    rsh cat /data/routeros/upgrade/web-upgrade.log 2>/dev/null | grep -v '^Imported' | sed 's/^/  router: /' || true
    boot_t0=$SECONDS
    lan_addr=""
    # The old version shuts down before the firmware starts the new one: ask for a lease
    # only then (the old dnsmasq would answer).
    imgvm_firmware_wait "$IMGVM_DIR/firmware2.time" 600 || true
    if wait_routing 900 && routed_at=$(date +%s.%N) && wait_version "$V2" 600; then
        timing[boot2]=$((SECONDS - boot_t0))
        ok "upgrade: version $V2 boots and routes the LAN (${timing[boot2]} s after the reboot)"
        # A later boot as from power-on: this boot from its firmware pass on, plus the
        # firmware's start-up measured on the first boot.
        if [[ -s $IMGVM_DIR/firmware2.time && -n ${firmware_s:-} ]]; then
            timing[later_boot]=$(awk -v r="$routed_at" -v f="$(<"$IMGVM_DIR/firmware2.time")" \
                -v s="$firmware_s" 'BEGIN { printf "%.0f", r - f + s }')
            img_log "later boot (version $V2, no cloud-init): LAN routed ${timing[later_boot]} s after power-on (firmware start-up $firmware_s s)"
        fi
    else
        nok "upgrade: version $V2 did not come up"
        imgvm_serial_story "$serial0"
    fi
    check "upgrade: $V2 passes its boot check and is marked good" wait_blessed 300
    boot_story later-boot
    # The lines' networkd files came over with the upgrade (carry-over.list): networkd had
    # them from the start, so the daemon neither rewrote them nor reloaded it, and no line
    # went down while it was still being configured.
    journal2=$(imgvm_ssh 'sudo journalctl -b -o cat -u routeros-watchdog' 2>/dev/null || true)
    check "upgrade: no networkd reload and no line down on $V2's boot ($(grep -c 'systemd-networkd reloaded' <<<"$journal2") reloads, $(grep -Ec ': (up|degraded) -> down' <<<"$journal2") downs)" \
        bash -c "[[ -n \"\$1\" ]] && ! grep -Eq 'systemd-networkd reloaded|: (up|degraded) -> down' <<<\"\$1\"" _ "$journal2"
    bless=$(rsh /usr/lib/systemd/systemd-bless-boot status 2>/dev/null || true)
    check "upgrade: systemd-bless-boot says good (got: $bless)" test "$bless" = good
    root=$(imgvm_ssh findmnt -no PARTLABEL / 2>/dev/null || true)
    slot=$(imgvm_ssh findmnt -no SOURCE / 2>/dev/null || true)
    check "upgrade: running from the other slot ($slot, label $root)" \
        bash -c "[[ '$root' == router_$V2 && '$slot' == /dev/vda3 ]]"
    entries=$(rsh routeros-upgrade status 2>/dev/null | grep -E '^\s+router_.*\.efi' | xargs || true)
    check "upgrade: boot entry router_$V2.efi without a try counter, $V1 kept ($entries)" \
        bash -c "[[ ' $entries ' == *' router_$V2.efi '* && '$entries' == *router_$V1.efi* ]]"
    check "upgrade: config unchanged" test "$(config_sum)" = "$cfg0"
    check_data_binds "upgrade"
    check "upgrade: SSH host key and machine id kept" \
        bash -c "[[ '$(hostkey)' == '$key0' && '$(imgvm_ssh cat /etc/machine-id)' == '$mid0' ]]"
    st="$(upgrade_page state) $(upgrade_page running_version)"
    check "upgrade: the web page says installed, running $V2 (got: $st)" test "$st" = "installed $V2"
    seen=$(sources 16)
    check "upgrade: both WANs carry traffic on $V2 ($seen)" \
        bash -c "[[ '$seen' == *$IMGLAB_WAN1_RTR=* && '$seen' == *$IMGLAB_WAN2_RTR=* ]]"
fi

if has_stage rollback; then
    running=$(imgvm_ssh '. /etc/os-release; echo $IMAGE_VERSION')
    img_log "upgrading $running to the deliberately broken $V3 ($TRIES tries)"
    fails0=$(imgvm_serial_count "routeros boot-check: version $V3 FAILED")
    serial0=$(imgvm_serial_lines)
    rsh routeros-upgrade --yes --tries "$TRIES" "http://$IMGLAB_LAN_STATIC:8001/router_$V3.upgrade.tar" \
        >"$IMGVM_DIR/upgrade-$V3.log" 2>&1 || true
    grep -v '^Imported' "$IMGVM_DIR/upgrade-$V3.log" | sed 's/^/  router: /'
    t=$SECONDS
    check "rollback: $V3 was tried $TRIES times and failed its boot check each time" \
        imgvm_wait_serial "routeros boot-check: version $V3 FAILED" $((fails0 + TRIES)) $((600 * TRIES))
    lan_addr=""
    if wait_version "$running" 900; then
        timing[rollback]=$((SECONDS - t))
        ok "rollback: back on $running by itself ${timing[rollback]} s after the upgrade's reboot"
    else
        nok "rollback: not back on $running"
        imgvm_serial_story "$serial0"
    fi
    wait_blessed 300 || true
    check "rollback: LAN routed again" wait_routing 300
    check "rollback: config intact (the one from before the upgrade)" test "$(config_sum)" = "$cfg0"
    # (ssh joins its arguments into one command line: the pipe runs on the router)
    refused=$(rsh "ls /opt/routeros/config/ | grep -c refused" 2>/dev/null || true)
    check "rollback: the config $V3 wrote was refused by $running and kept aside ($refused file)" \
        bash -c "[[ '${refused:-0}' -ge 1 ]]"
    entries=$(rsh routeros-upgrade status 2>/dev/null | grep -E '^\s+router_.*\.efi' | xargs || true)
    check "rollback: $V3's boot entry has no tries left ($entries)" \
        bash -c "[[ '$entries' == *router_$V3+0-$TRIES.efi* ]]"
    daemon_active() { [[ $(imgvm_ssh systemctl is-active routeros-watchdog.service 2>/dev/null) == active ]]; }
    check "rollback: daemon active on $running" daemon_active
    cfg_owner=$(rsh stat -c %U:%G:%a /opt/routeros/config/routeros.toml 2>/dev/null || true)
    check "rollback: the restored config keeps its owner and mode (root:routeros 640: $cfg_owner)" \
        test "$cfg_owner" = root:routeros:640
fi

# --- iso: USB stick live system, routeros-install, first boot with factory defaults -------------
if has_stage iso; then
    ISO=$DIST/router_$V1.iso
    [[ -s $ISO ]] || img_die "$ISO missing (ci/image-build.sh without --no-iso)"
    imgvm_stop
    imglab_down
    imglab_up
    # The stick: a writable overlay of the ISO (the live system writes its data partition).
    qemu-img create -q -f qcow2 -F raw -b "$(readlink -f "$ISO")" "$IMGVM_DIR/stick.qcow2"
    qemu-img create -q -f qcow2 "$IMGVM_DIR/internal.qcow2" 10G
    img_log "booting the USB stick image router_$V1.iso (live) with an empty 10 GiB disk"
    t=$SECONDS
    # vda: the stick, vdb: the internal disk, vdc: the test seed (an admin to log in as)
    imgvm_boot "$IMGVM_DIR/stick.qcow2" "$IMGVM_DIR/internal.qcow2" "raw:$IMGVM_DIR/seed.img"
    imglab_attach
    if imgvm_wait_serial 'Cloud-init .* finished' 1 900; then
        timing[live_boot]=$((SECONDS - t))
        ok "live system of the ISO booted (${timing[live_boot]} s)"
    else
        nok "live system of the ISO did not finish booting"
    fi
    live=$(imgvm_console 'grep -ow routeros.live=1 /proc/cmdline; findmnt -no FSTYPE /' 120 2>/dev/null | tr -d '\r' | xargs || true)
    check "live: booted by the stick's live entry, root is a RAM overlay ($live)" \
        bash -c "[[ '$live' == *routeros.live=1*overlay* ]]"
    t=$SECONDS
    imgvm_console 'routeros-install --list; routeros-install --yes /dev/vdb >/tmp/install.log 2>&1; echo rc=$?; tail -n 3 /tmp/install.log' 900 \
        >"$IMGVM_DIR/install.log" 2>&1 || true
    timing[install]=$((SECONDS - t))
    sed 's/^/  router: /' "$IMGVM_DIR/install.log"
    check "routeros-install wrote the A/B layout to the internal disk (${timing[install]} s)" grep -q '^rc=0' "$IMGVM_DIR/install.log"
    imgvm_stop
    imglab_down
    imglab_up
    img_log "booting the internal disk alone, no seed: factory defaults"
    t=$SECONDS
    imgvm_boot "$IMGVM_DIR/internal.qcow2"
    imglab_attach
    lan_addr=""
    deadline=$((SECONDS + 900))
    while ((SECONDS < deadline)) && [[ -z $lan_addr ]]; do
        lan_addr=$(imglab_lan_dhcp 20 || true)
        [[ -n $lan_addr ]] || sleep 3
    done
    timing[factory_boot]=$((SECONDS - t))
    check "first boot without cloud-init: the LAN client gets an address from 192.168.1.100-250 ($lan_addr, ${timing[factory_boot]} s)" \
        bash -c "[[ '$lan_addr' =~ ^192\.168\.1\.([0-9]+)$ ]] && ((BASH_REMATCH[1] >= 100 && BASH_REMATCH[1] <= 250))"
    code=""
    for ((i = 0; i < 40; i++)); do
        code=$(imglab_ns lan curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$IMGLAB_ROUTER_LAN:8080/" || true)
        [[ $code =~ ^[23] ]] && break
        sleep 5
    done
    check "first boot without cloud-init: the web wizard answers at http://192.168.1.1:8080 (HTTP $code)" \
        bash -c "[[ '$code' =~ ^[23] ]]"
    ans=$(imglab_ns lan dig +time=3 +tries=2 "@$IMGLAB_ROUTER_LAN" router.lan A 2>/dev/null | grep -c 'status:' || true)
    check "first boot without cloud-init: the router answers DNS on the LAN" test "${ans:-0}" -ge 1
fi

# --- report ---------------------------------------------------------------------------------
echo
echo "Times (TCG, $(nproc) host cores, load $(cut -d' ' -f1-3 /proc/loadavg)):"
for k in build1 build2 build3 boot1 failover networkd_restart netplan_apply lines_up ppp_back watchdog upgrade_write boot2 later_boot rollback live_boot install factory_boot; do
    [[ -n ${timing[$k]:-} ]] && printf '  %-14s %5d s\n' "$k" "${timing[$k]}"
done
[[ -n ${timing[shaping_on_down_ms]:-} ]] &&
    printf '  %-14s down %s ms, up %s ms off; down %s ms, up %s ms with CAKE (added ping latency, %s Mbit/s line, 300 ms buffer)\n' \
        shaping "${timing[shaping_off_down_ms]}" "${timing[shaping_off_up_ms]}" \
        "${timing[shaping_on_down_ms]}" "${timing[shaping_on_up_ms]}" "$SHAPING_MBIT"
[[ -n ${timing[ppp_down_ms]:-} ]] && printf '  %-14s %5d ms (the ISP ends the PPPoE session -> wan3 out of service)\n' ppp_down "${timing[ppp_down_ms]}"
echo "  (boot1: power-on to LAN routed, first boot with the NoCloud seed; boot2: upgrade reboot to LAN routed;"
echo "   later_boot: that boot of version 2 from its firmware pass, plus the firmware start-up: as from power-on)"
printf '  %-14s %5d s  (the whole run: builds and stages %s)\n' total "$SECONDS" "$stages"
echo "Image sizes:"
img_sizes "$DIST/router_$V1.qcow2" "$DIST/router_$V1.upgrade.tar" "$IMG_TARGET/out/router_$V1.raw" \
    "$IMG_TARGET/out/router_$V1.efi"
echo
echo "$PASS passed, $FAIL failed"
((FAIL == 0))
