# shellcheck shell=bash
# The QEMU router, as ci/image-run.sh boots it for a person and ci/image-test.sh for the
# tests: q35 + OVMF (UEFI, a private copy of the variables so boot entries and boot counting
# persist across the VM's reboots), virtio NICs in a fixed PCI order (the first is the LAN in
# the factory defaults), the disk as a qcow2 overlay of the built image and the NoCloud seed
# as a second disk. Source it after image-lab.sh.

IMGVM_DIR=${IMGVM_DIR:-$IMG_TARGET/test}
IMGVM_SERIAL=$IMGVM_DIR/serial.log
IMGVM_PIDFILE=$IMGVM_DIR/qemu.pid
IMGVM_MEM=${IMGVM_MEM:-1536}
IMGVM_SSH_KEY=$IMGVM_DIR/ssh_key
IMGVM_VARS=${IMGVM_VARS:-$IMGVM_DIR/vars.fd} # UEFI variables: boot entries, boot counting
OVMF_CODE=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
OVMF_VARS=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}
# tcg, kvm or auto (KVM when it works here, see imgvm_kvm_works). The tests stay on TCG:
# their timings are comparable from run to run.
IMGVM_ACCEL=${IMGVM_ACCEL:-tcg}
# socket: the serial console is logged to $IMGVM_SERIAL and reachable on a socket to log in
# (tests); stdio: it is this terminal, with QEMU's monitor on Ctrl-a c and Ctrl-a x to quit.
IMGVM_CONSOLE=${IMGVM_CONSOLE:-socket}
# The NICs in PCI order, "ID KIND ARG MAC" each: KIND tap (ARG: the host's tap device) or
# user (ARG: the IPv4 subnet QEMU's user networking gives that port, e.g. 10.0.2.0/24).
# Default: the LAN and four WANs on the taps of ci/lib/image-lab.sh.
if [[ -z ${IMGVM_NICS+set} ]]; then
    IMGVM_NICS=("lan tap $IMGLAB_TAP_LAN $IMGLAB_MAC_LAN"
        "wan1 tap $IMGLAB_TAP_W1 $IMGLAB_MAC_W1" "wan2 tap $IMGLAB_TAP_W2 $IMGLAB_MAC_W2"
        "wan3 tap $IMGLAB_TAP_W3 $IMGLAB_MAC_W3" "wan4 tap $IMGLAB_TAP_W4 $IMGLAB_MAC_W4")
fi

# imgvm_kvm_works: /dev/kvm is there and QEMU can create a q35 machine on it (on some hosts
# it aborts at once setting an MSR: a paused QEMU still running after 3 s means it works).
imgvm_kvm_works() {
    [[ -w /dev/kvm ]] || return 1
    local rc=0
    timeout 3 qemu-system-x86_64 -accel kvm -machine q35 -cpu host -m 64 -S -display none \
        -nodefaults >/dev/null 2>&1 || rc=$?
    ((rc == 124))
}

# imgvm_accel -> "kvm" or "tcg", as IMGVM_ACCEL asks (auto: KVM if it works).
imgvm_accel() {
    case $IMGVM_ACCEL in
    kvm | tcg) echo "$IMGVM_ACCEL" ;;
    auto) if imgvm_kvm_works; then echo kvm; else echo tcg; fi ;;
    *) img_die "IMGVM_ACCEL must be tcg, kvm or auto, not '$IMGVM_ACCEL'" ;;
    esac
}

# imgvm_qemu_args ACCEL DISK [[FORMAT:]DISK...]: the QEMU command line (array IMGVM_ARGS)
# for firmware variables $IMGVM_VARS, the NICs of IMGVM_NICS, the console of
# IMGVM_CONSOLE and these virtio disks (qcow2 unless FORMAT: says otherwise), first one first.
# shellcheck disable=SC2054  # QEMU's options hold commas
imgvm_qemu_args() {
    local accel=$1 cpu=max; shift
    [[ $accel == kvm ]] && cpu=host
    IMGVM_ARGS=(-accel "$accel" -machine q35 -cpu "$cpu" -smp 2 -m "$IMGVM_MEM"
        # The chipset watchdog (TCO) resets the machine as on real boards (QEMU 7.2's strap
        # default keeps it from rebooting).
        -global ICH9-LPC.noreboot=false
        -drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE"
        -drive "if=pflash,format=raw,unit=1,file=$IMGVM_VARS"
        -object rng-random,id=rng,filename=/dev/urandom -device virtio-rng-pci,rng=rng
        -display none -nodefaults -vga none)
    local nic id kind arg mac
    for nic in "${IMGVM_NICS[@]}"; do
        read -r id kind arg mac <<<"$nic"
        case $kind in
        tap) IMGVM_ARGS+=(-netdev "tap,id=$id,ifname=$arg,script=no,downscript=no") ;;
        user) IMGVM_ARGS+=(-netdev "user,id=$id,net=$arg") ;;
        *) img_die "NIC $id: kind must be tap or user, not '$kind'" ;;
        esac
        # romfile=: no iPXE option ROM. The router boots from its disk, never the network,
        # and the firmware starting one iPXE driver per NIC cost seconds under TCG.
        IMGVM_ARGS+=(-device "virtio-net-pci,netdev=$id,mac=$mac,romfile=")
    done
    case $IMGVM_CONSOLE in
    # Logged to a file, and a socket to log in on (socat - UNIX-CONNECT:...).
    socket) IMGVM_ARGS+=(-chardev "socket,id=ser0,path=$IMGVM_DIR/console.sock,server=on,wait=off,logfile=$IMGVM_SERIAL"
        -serial chardev:ser0 -monitor none) ;;
    stdio) IMGVM_ARGS+=(-chardev "stdio,id=ser0,mux=on,signal=off,logfile=$IMGVM_SERIAL"
        -serial chardev:ser0 -mon chardev=ser0,mode=readline) ;;
    *) img_die "IMGVM_CONSOLE must be socket or stdio, not '$IMGVM_CONSOLE'" ;;
    esac
    # The first disk is the only boot device the firmware is told of (bootindex): then OVMF
    # starts the drivers of that disk alone, not a network stack on every NIC (~0.8 s each
    # under TCG, 3 s of every boot with five ports).
    local d fmt n=0 boot
    for d in "$@"; do
        fmt=qcow2
        [[ $d == raw:* ]] && { fmt=raw; d=${d#raw:}; }
        boot=""
        ((n == 0)) && boot=",bootindex=0"
        IMGVM_ARGS+=(-drive "if=none,id=disk$n,format=$fmt,file=$d,cache=unsafe"
            -device "virtio-blk-pci,drive=disk$n$boot")
        n=$((n + 1))
    done
}

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
    # A VM left running by an earlier --keep run would take a core from this one (seen: a
    # first boot 81 s instead of 50).
    imgvm_stop
    rm -f "$IMGVM_SERIAL"
    cp "$OVMF_VARS" "$IMGVM_VARS"
    imgvm_qemu_args "$(imgvm_accel)" "$@"
    setsid qemu-system-x86_64 "${IMGVM_ARGS[@]}" </dev/null >"$IMGVM_DIR/qemu.log" 2>&1 &
    echo $! >"$IMGVM_PIDFILE"
    imgvm_wait_taps
}

# imgvm_wait_taps: until QEMU ($IMGVM_PIDFILE) holds every tap of IMGVM_NICS (a tun file
# descriptor's fdinfo names its device), so they can be moved into namespaces; dies if QEMU
# exits first or takes over 10 s.
imgvm_wait_taps() {
    local i pid nic id kind arg mac missing
    for ((i = 0; i < 100; i++)); do
        if ! pid=$(imgvm_pid); then
            [[ -s $IMGVM_PIDFILE ]] && break # started, and gone again
            sleep 0.1                        # not started yet (QEMU writes its -pidfile)
            continue
        fi
        missing=0
        for nic in "${IMGVM_NICS[@]}"; do
            read -r id kind arg mac <<<"$nic"
            [[ $kind == tap ]] || continue
            grep -qs "^iff:[[:space:]]*$arg\$" /proc/"$pid"/fdinfo/* || missing=1
        done
        ((missing)) || return 0
        sleep 0.1
    done
    cat "$IMGVM_DIR/qemu.log" >&2
    img_die "QEMU did not start or did not open its taps"
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

# imgvm_firmware_boots: how many boots the firmware has started so far (OVMF prints
# "BdsDxe: loading" on the serial console as it hands over to the boot loader).
imgvm_firmware_boots() { grep -c 'BdsDxe: loading' "$IMGVM_SERIAL" 2>/dev/null || true; }

# imgvm_firmware_mark N FILE: in the background, write the time (epoch seconds, with
# fractions) at which the firmware starts boot N+1 into FILE. A reboot's boot is then timed
# from its firmware pass, as a boot from power-on would be, without the old system's shutdown.
imgvm_firmware_mark() {
    local n=$1 file=$2
    rm -f "$file"
    (
        for _ in $(seq 6000); do # 20 min
            (($(imgvm_firmware_boots) > n)) && { date +%s.%N >"$file"; exit 0; }
            sleep 0.2
        done
    ) &
}

# imgvm_firmware_wait FILE TIMEOUT: until imgvm_firmware_mark has written FILE.
imgvm_firmware_wait() {
    local deadline=$((SECONDS + $2))
    while [[ ! -s $1 ]] && ((SECONDS < deadline)); do sleep 0.2; done
    [[ -s $1 ]]
}

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
