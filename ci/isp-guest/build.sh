#!/usr/bin/env bash
# Build the ISP guest of ci/lib/isp-guest.sh: Debian bookworm's kernel and an initramfs holding
# busybox, pppd (+ its rp-pppoe plugin), pppoe-server and dnsmasq, all from Debian's archive,
# with this folder's init and isp scripts.
#
#   ci/isp-guest/build.sh OUTDIR      -> OUTDIR/vmlinux, OUTDIR/initrd.img, OUTDIR/manifest.txt
#
# Nothing is installed on the host: the packages are fetched with `apt-get download` through a
# private apt state (sources: bookworm + bookworm-security) and unpacked with dpkg-deb. The
# shared libraries are found with the packages' own dynamic loader (--list), and the modules'
# dependencies with busybox's depmod, so the host needs only apt, dpkg, xz and the archive keyring.
# Every program is run once in a chroot of the initramfs tree before it is packed (a missing
# library fails the build here, not in the guest).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUTDIR}
log() { printf '[isp-guest build %(%T)T] %s\n' -1 "$*" >&2; }
die() { printf '[isp-guest build %(%T)T] ERROR: %s\n' -1 "$*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "run as root (chroot check, file ownership in the initramfs)"

# The userland: apt resolves each package's dependencies (about 30 MB of .debs); only the
# files below and the libraries they load go into the initramfs.
PACKAGES=(busybox-static ppp pppoe dnsmasq-base)
# Programs copied in (paths as the packages ship them).
# Debian's pppoe-server is built without its kernel mode (no -k): each session is a pppd on a
# pty talking to /usr/sbin/pppoe (hence ppp_async). Clients use the kernel's PPPoE (pppoe module
# + rp-pppoe.so); the wire protocol is the same.
PROGRAMS=(/usr/sbin/pppd /usr/sbin/pppoe-server /usr/sbin/pppoe /usr/sbin/dnsmasq /usr/lib/pppd/2.4.9/pppoe.so)
# Kernel modules (their dependencies come along): NICs, PPP over Ethernet, PPP on a pty,
# 802.1Q, entropy.
MODULES=(virtio_pci virtio_net virtio_rng pppoe ppp_async 8021q)

work=$(mktemp -d "${out%/}.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
apt=$work/apt pkg=$work/pkg root=$work/root
mkdir -p "$apt"/{lists/partial,cache/archives/partial,etc/sources.list.d,etc/preferences.d} "$pkg" "$root"
touch "$apt/status"
cat >"$apt/etc/sources.list" <<'EOF'
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
EOF
aopts=(-o "Dir::Etc=$apt/etc" -o "Dir::Etc::SourceList=$apt/etc/sources.list"
    -o "Dir::Etc::SourceParts=$apt/etc/sources.list.d" -o "Dir::State=$apt"
    -o "Dir::State::Lists=$apt/lists" -o "Dir::State::status=$apt/status"
    -o "Dir::Cache=$apt/cache" -o APT::Architecture=amd64 -o APT::Sandbox::User=root
    -o APT::Install-Recommends=0)

log "apt: bookworm package lists"
apt-get "${aopts[@]}" -qq update
kpkg=$(apt-cache "${aopts[@]}" depends linux-image-amd64 | awk '/Depends: linux-image-/ { print $2; exit }')
[[ -n $kpkg ]] || die "linux-image-amd64 names no kernel package"
log "apt: downloading $kpkg ${PACKAGES[*]} (and their dependencies)"
(cd "$apt" && apt-get "${aopts[@]}" -qq download "$kpkg")
apt-get "${aopts[@]}" -qq --download-only install "${PACKAGES[@]}" >/dev/null
for d in "$apt"/*.deb "$apt"/cache/archives/*.deb; do dpkg-deb -x "$d" "$pkg"; done
{
    echo "# Debian packages in this ISP guest (name version)"
    # shellcheck disable=SC2016  # dpkg-deb's own ${field} syntax
    for d in "$apt"/*.deb "$apt"/cache/archives/*.deb; do dpkg-deb -W --showformat '${Package} ${Version}\n' "$d"; done | sort
} >"$work/manifest.txt"

kver=${kpkg#linux-image-}
[[ -s $pkg/boot/vmlinuz-$kver ]] || die "no vmlinuz-$kver in $kpkg"
bb=$pkg/bin/busybox
[[ -x $bb ]] || die "busybox-static has no /bin/busybox"

# --- the tree: merged /usr, busybox for everything but the programs above ----------------------
log "assembling the initramfs tree (kernel $kver)"
mkdir -p "$root"/usr/{bin,sbin,lib/x86_64-linux-gnu,lib64} "$root"/{dev,proc,sys,run,tmp,etc/ppp,var/log,root}
# The kernel opens the console for /init before devtmpfs is mounted; null and urandom serve the
# chroot check below (devtmpfs covers all three in the guest).
mknod -m 600 "$root/dev/console" c 5 1
mknod -m 666 "$root/dev/null" c 1 3
mknod -m 666 "$root/dev/urandom" c 1 9
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
ln -s ../run "$root/var/run"
chmod 1777 "$root/tmp"
cp "$bb" "$root/usr/bin/busybox"
for a in $("$bb" --list); do
    [[ $a == busybox || -e $root/usr/bin/$a ]] || ln -s busybox "$root/usr/bin/$a"
done

libdirs=$pkg/lib/x86_64-linux-gnu:$pkg/usr/lib/x86_64-linux-gnu
for p in "${PROGRAMS[@]}"; do
    [[ -e $pkg$p ]] || die "$p is in none of the packages"
    mkdir -p "$root$(dirname "$p")"
    cp "$pkg$p" "$root$p"
    # The packages' own loader lists what the program loads, resolved inside the unpacked tree.
    while read -r lib; do
        [[ -n $lib ]] || continue
        cp -L "$lib" "$root/usr/lib/x86_64-linux-gnu/$(basename "$lib")"
    done < <("$pkg/lib64/ld-linux-x86-64.so.2" --library-path "$libdirs" --list "$pkg$p" |
        awk '$2 == "=>" { if ($3 == "not") { print "MISSING " $1 > "/dev/stderr"; exit 1 } print $3 }')
done
cp -L "$pkg/lib64/ld-linux-x86-64.so.2" "$root/usr/lib64/ld-linux-x86-64.so.2"
# The plugin as the ppp package ships it: pppoe.so, and rp-pppoe.so a symlink to it (pppd
# looks plugin names up in /usr/lib/pppd/2.4.9/).
ln -s pppoe.so "$root/usr/lib/pppd/2.4.9/rp-pppoe.so"

# --- kernel modules ---------------------------------------------------------------------------
kmod=$pkg/lib/modules/$kver
"$bb" depmod -b "$pkg" "$kver"
declare -A want=()
add_mod() { # NAME|PATH: the module and, first, what it depends on
    local name=$1 line rel dep
    line=$(grep -E "(^|/)${name//_/[_-]}\.ko: ?" "$kmod/modules.dep" | head -n1) ||
        die "kernel $kver has no module $name"
    rel=${line%%:*}
    [[ -n ${want[$rel]:-} ]] && return 0
    want[$rel]=1
    for dep in ${line#*:}; do add_mod "$(basename "$dep" .ko)"; done
}
for m in "${MODULES[@]}"; do add_mod "$m"; done
for rel in "${!want[@]}"; do
    mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"
    cp "$kmod/$rel" "$root/lib/modules/$kver/$rel"
done
"$bb" depmod -b "$root" "$kver"
printf '%s\n' "${MODULES[@]}" >"$root/etc/isp-modules"

# --- our scripts and configuration -------------------------------------------------------------
install -m 755 "$here/init" "$root/init"
install -m 755 "$here/isp" "$root/usr/bin/isp"
ln -s isp "$root/usr/bin/isp-udhcpc" # udhcpc's event script
install -m 755 "$here/ppp-hook" "$root/etc/ppp/ip-up"
for h in ip-down ipv6-up ipv6-down; do ln -s ip-up "$root/etc/ppp/$h"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
echo 'hosts: files' >"$root/etc/nsswitch.conf"
echo isp >"$root/etc/hostname"
: >"$root/etc/ppp/options" # pppd's defaults, not Debian's options file: every option is on the command line
cp "$work/manifest.txt" "$root/etc/isp-manifest.txt"

# Every program starts with what the tree holds (run on the host's kernel, in a chroot).
for check in "pppd --version" "dnsmasq --version" "pppoe-server -h" "busybox true"; do
    if ! chroot "$root" /bin/sh -c "$check" >"$work/check.log" 2>&1; then
        # pppoe-server -h exits 1 after printing its usage: what counts is that it ran.
        grep -qi usage "$work/check.log" || { cat "$work/check.log" >&2; die "'$check' does not run in the initramfs tree"; }
    fi
done

# --- pack -------------------------------------------------------------------------------------
# Uncompressed: under TCG unpacking costs more than QEMU loading a few more MB.
mkdir -p "$out"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | "$bb" cpio -o -H newc 2>/dev/null) >"$work/initrd.img"
# The kernel uncompressed: QEMU boots the ELF vmlinux directly (PVH entry, CONFIG_PVH=y), which
# saves the 5-10 s TCG spends in the bzImage's xz decompressor. Debian compresses with xz.
vmlinuz=$pkg/boot/vmlinuz-$kver
off=$(LC_ALL=C grep -abo $'\xfd''7zXZ' "$vmlinuz" | head -n1 | cut -d: -f1)
[[ -n $off ]] || die "no xz stream in vmlinuz-$kver (not xz-compressed any more?)"
tail -c +"$((off + 1))" "$vmlinuz" | xz -dc >"$work/vmlinux" 2>/dev/null || true
[[ $(head -c4 "$work/vmlinux" | od -An -c | tr -d ' ') == 177ELF ]] ||
    die "vmlinuz-$kver did not unpack to an ELF vmlinux"
mv "$work/initrd.img" "$work/vmlinux" "$work/manifest.txt" "$out/"
log "done: $(du -h "$out/vmlinux" | cut -f1) kernel (uncompressed), $(du -h "$out/initrd.img" | cut -f1) initramfs in $out"
