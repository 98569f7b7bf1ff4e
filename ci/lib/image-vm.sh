# shellcheck shell=bash
# The QEMU router of ci/image-test.sh: q35 + OVMF (UEFI, a private copy of the variables so
# boot entries and boot counting persist across the VM's reboots), TCG only, five virtio
# NICs (LAN, wan1..wan4) on the taps of ci/lib/image-lab.sh, the disk as a qcow2 overlay of the built image and
# the NoCloud seed as a second disk. Source it after image-lab.sh.

IMGVM_DIR=${IMGVM_DIR:-$IMG_TARGET/test}
IMGVM_SERIAL=$IMGVM_DIR/serial.log
IMGVM_PIDFILE=$IMGVM_DIR/qemu.pid
IMGVM_MEM=${IMGVM_MEM:-1536}
IMGVM_SSH_KEY=$IMGVM_DIR/ssh_key
OVMF_CODE=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
OVMF_VARS=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}

imgvm_pid() {
    local pid
    [[ -s $IMGVM_PIDFILE ]] || return 1
    pid=$(<"$IMGVM_PIDFILE")
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

# imgvm_seed SRC_DIR OUT_IMG: a CIDATA vfat image with SRC_DIR's meta-data, user-data, network-config
imgvm_seed() { "$IMG_REPO_ROOT/cloud-init/make-seed.sh" "$1" "$2" >/dev/null; }

# imgvm_start BASE_QCOW2 [SEED_IMG]: a fresh overlay disk and firmware variables, then boot.
imgvm_start() {
    local base=$1 seed=${2:-}
    mkdir -p "$IMGVM_DIR"
    rm -f "$IMGVM_DIR/disk.qcow2"
    qemu-img create -q -f qcow2 -F qcow2 -b "$(readlink -f "$base")" "$IMGVM_DIR/disk.qcow2"
    imgvm_boot "$IMGVM_DIR/disk.qcow2" ${seed:+"raw:$seed"}
}

# imgvm_boot DISK [[FORMAT:]DISK...]: boot fresh firmware variables with these virtio disks
# (qcow2 unless FORMAT: says otherwise), the first one first on the bus.
imgvm_boot() {
    rm -f "$IMGVM_SERIAL"
    cp "$OVMF_VARS" "$IMGVM_DIR/vars.fd"
    local args=(-accel tcg -machine q35 -cpu max -smp 2 -m "$IMGVM_MEM"
        # The chipset watchdog (TCO) resets the machine as on real boards (QEMU 7.2's strap
        # default keeps it from rebooting).
        -global ICH9-LPC.noreboot=false
        -drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE"
        -drive "if=pflash,format=raw,unit=1,file=$IMGVM_DIR/vars.fd"
        # The LAN port first: the lowest PCI address is the LAN in the factory defaults.
        -netdev "tap,id=lan,ifname=$IMGLAB_TAP_LAN,script=no,downscript=no"
        -device "virtio-net-pci,netdev=lan,mac=$IMGLAB_MAC_LAN"
        -netdev "tap,id=wan1,ifname=$IMGLAB_TAP_W1,script=no,downscript=no"
        -device "virtio-net-pci,netdev=wan1,mac=$IMGLAB_MAC_W1"
        -netdev "tap,id=wan2,ifname=$IMGLAB_TAP_W2,script=no,downscript=no"
        -device "virtio-net-pci,netdev=wan2,mac=$IMGLAB_MAC_W2"
        -netdev "tap,id=wan3,ifname=$IMGLAB_TAP_W3,script=no,downscript=no"
        -device "virtio-net-pci,netdev=wan3,mac=$IMGLAB_MAC_W3"
        -netdev "tap,id=wan4,ifname=$IMGLAB_TAP_W4,script=no,downscript=no"
        -device "virtio-net-pci,netdev=wan4,mac=$IMGLAB_MAC_W4"
        -object rng-random,id=rng,filename=/dev/urandom -device virtio-rng-pci,rng=rng
        # The serial console: logged to a file, and a socket to log in on (socat - UNIX-CONNECT:...).
        -chardev "socket,id=ser0,path=$IMGVM_DIR/console.sock,server=on,wait=off,logfile=$IMGVM_SERIAL"
        -serial chardev:ser0 -display none -monitor none -nodefaults -vga none)
    local d fmt
    for d in "$@"; do
        fmt=qcow2
        [[ $d == raw:* ]] && { fmt=raw; d=${d#raw:}; }
        args+=(-drive "if=virtio,format=$fmt,file=$d,cache=unsafe")
    done
    setsid qemu-system-x86_64 "${args[@]}" </dev/null >"$IMGVM_DIR/qemu.log" 2>&1 &
    echo $! >"$IMGVM_PIDFILE"
    local i
    for ((i = 0; i < 50; i++)); do
        ip link show "$IMGLAB_TAP_LAN" 2>/dev/null | grep -q . && ! imgvm_pid >/dev/null && break
        # QEMU has opened the taps once they carry its queue (flag "UP" comes from us later).
        [[ -e /sys/class/net/$IMGLAB_TAP_W2/tun_flags ]] && imgvm_pid >/dev/null && sleep 0.5 && break
        sleep 0.1
    done
    imgvm_pid >/dev/null || { cat "$IMGVM_DIR/qemu.log" >&2; img_die "QEMU did not start"; }
}

imgvm_stop() {
    local pid i
    pid=$(imgvm_pid) || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$IMGVM_PIDFILE"
}

# imgvm_serial_count PATTERN -> how many lines of the serial log match (extended regex)
imgvm_serial_count() { grep -a -c -E "$1" "$IMGVM_SERIAL" 2>/dev/null || true; }

# imgvm_serial_lines -> how many lines the serial log has so far
imgvm_serial_lines() { wc -l <"$IMGVM_SERIAL" 2>/dev/null || echo 0; }

# imgvm_serial_story FROM_LINE: what the router printed since then, for a failed check in a CI
# log that keeps no files: boots, shutdowns, failures and the boot check (up to 150 lines),
# then the last 40 lines as they are.
imgvm_serial_story() {
    echo "  serial console since line $1 ($IMGVM_SERIAL), the milestones:"
    tail -n +"$(($1 + 1))" "$IMGVM_SERIAL" | tr -d '\r' |
        grep -a -E 'Linux version|systemd-boot|Boot[ -]|boot-check|boot-failed|Reached target|Failed|FAILED|failed|timed out|Timed out|[Ee]mergency|panic|Oops|Watchdog|watchdog|reboot|Rebooting|Power|[Cc]ycle|hung|A stop job|A start job|Starting .*routeros|login:' |
        tail -n 150 | cut -c1-200 | sed 's/^/  serial: /'
    echo "  serial console, the last 40 lines:"
    tail -n 40 "$IMGVM_SERIAL" | tr -d '\r' | cut -c1-200 | sed 's/^/  serial: /'
    # A guest spinning (firmware prompt, lockup) shows as QEMU busy; a stuck shutdown as idle.
    local pid
    if pid=$(imgvm_pid); then
        echo "  QEMU $pid: $(ps -o etimes=,times= -p "$pid" | awk '{ printf "up %d s, %d s of CPU", $1, $2 }'), host load $(cut -d' ' -f1-3 /proc/loadavg)"
    else
        echo "  QEMU is not running; its log: $(tail -n 5 "$IMGVM_DIR/qemu.log" 2>/dev/null | tr '\n' ' ')"
    fi
}

# imgvm_wait_serial PATTERN COUNT TIMEOUT: until PATTERN matched COUNT lines in total
imgvm_wait_serial() {
    local pattern=$1 count=$2 deadline=$((SECONDS + $3))
    while ((SECONDS < deadline)); do
        (($(imgvm_serial_count "$pattern") >= count)) && return 0
        imgvm_pid >/dev/null || return 1
        sleep 2
    done
    return 1
}

imgvm_ssh_opts=(-i "$IMGVM_SSH_KEY" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
    -o LogLevel=ERROR -o ConnectTimeout=5 -o BatchMode=yes -o ServerAliveInterval=5
    -o ServerAliveCountMax=3)
# imgvm_ssh CMD...: run CMD as admin on the router, from the LAN client.
imgvm_ssh() { ip netns exec "$IMGLAB_P-lan" ssh "${imgvm_ssh_opts[@]}" "admin@$IMGLAB_ROUTER_LAN" "$@"; }

# imgvm_wait_ssh TIMEOUT: until the router answers over SSH from the LAN
imgvm_wait_ssh() {
    local deadline=$((SECONDS + $1))
    while ((SECONDS < deadline)); do
        imgvm_ssh true 2>/dev/null && return 0
        imgvm_pid >/dev/null || return 1
        sleep 3
    done
    return 1
}

# imgvm_console CMD [TIMEOUT]: run CMD as root on the serial console (test seed's admin password)
imgvm_console() {
    python3 "$IMG_REPO_ROOT/ci/lib/image-console.py" "$IMGVM_DIR/console.sock" admin admin-test "$1" "${2:-120}"
}
