#!/usr/bin/env bash
# image-iso.sh BASE VERSION OUT.iso: the USB installer/live medium of one image version.
#
# A hybrid ISO made with xorriso: a small ISO 9660 file system (README) followed by three GPT
# partitions, so that `dd if=router_<v>.iso of=/dev/sdX` gives a stick that UEFI firmware
# boots like a disk:
#   ESP    systemd-boot, the UKI (in /EFI/routeros, so that systemd-boot lists no entry of
#          its own for it) and one menu entry, "live": the UKI with systemd.volatile=overlay
#          routeros.live=1, the root read-only with a RAM overlay
#   root   router_<v>: the files of the image's root partition as squashfs (zstd), about
#          40 % of the ext4 partition's size
#   data   a small data partition (live config and logs)
# In the live system `routeros-install /dev/sdX` writes the A/B layout to an internal disk,
# with root A an ext4 file system holding the squashfs's files.
#
# Not a CD image: firmware boots CDs through El Torito, whose boot image must be small, and
# Linux does not read partition tables on /dev/sr0, so the root partition would be out of
# reach. See image/README.md ("ISO").
set -euo pipefail
# shellcheck source=ci/lib/image-common.sh
source "$(dirname "$0")/image-common.sh"

base=$1 version=$2 out=$3
work=$IMG_TARGET/iso-work
rm -rf "$work" && mkdir -p "$work/esp-tree" "$work/isofs"

# --- ESP: only what booting needs, sized to it -------------------------------------------------
mcopy -s -i "$base.esp.raw" ::/EFI "$work/esp-tree/"
mkdir -p "$work/esp-tree/EFI/routeros"
mv "$work/esp-tree/EFI/Linux/router_$version.efi" "$work/esp-tree/EFI/routeros/"
mkdir -p "$work/esp-tree/loader/entries"
mcopy -i "$base.esp.raw" ::/loader/loader.conf "$work/esp-tree/loader/loader.conf.installed"
cmdline="root=PARTLABEL=router_$version ro systemd.volatile=overlay routeros.live=1"
cmdline+=" console=tty0 console=ttyS0,115200 panic=10 audit=0 loglevel=4 8250.nr_uarts=4"
cat >"$work/esp-tree/loader/loader.conf" <<EOF
# Phoenix Nexus Router $version: USB stick (live system and installer).
timeout 5
default live.conf
editor no
EOF
cat >"$work/esp-tree/loader/entries/live.conf" <<EOF
title      Phoenix Nexus Router $version (live; install with routeros-install)
sort-key   0-live
efi        /EFI/routeros/router_$version.efi
options    $cmdline
EOF
esp_kib=$(( ($(du -sk "$work/esp-tree" | cut -f1) * 11 / 10 + 8192 + 1023) / 1024 * 1024 ))
rm -f "$work/esp.img"
mkfs.vfat -n ESP -C "$work/esp.img" "$esp_kib" >/dev/null
mcopy -s -i "$work/esp.img" "$work/esp-tree"/* ::/

# --- root: the image's root files as squashfs (owners, modes, xattrs such as file
# capabilities and hard links kept; the kernel has squashfs with zstd built in) -----------------
mkdir -p "$work/root-mnt"
mount -o ro,loop "$base.root-x86-64.raw" "$work/root-mnt"
trap 'umount "$work/root-mnt" 2>/dev/null || true' EXIT
mksquashfs "$work/root-mnt" "$work/root.img" -noappend -quiet -no-progress \
    -comp zstd -Xcompression-level 19 -b 1M >/dev/null
umount "$work/root-mnt"
trap - EXIT

# --- data: small, for the live system's config and logs -----------------------------------------
truncate -s 64M "$work/data.img"
mkfs.ext4 -q -F -L data "$work/data.img"

cat >"$work/isofs/README.txt" <<EOF
Phoenix Nexus Router $version - USB installer and live system (UEFI, x86-64).

Write it to a USB stick (everything on the stick is erased):
    dd if=router_$version.iso of=/dev/sdX bs=4M conv=fsync status=progress
Boot a UEFI mini-PC from the stick. "live" runs the router from the stick (the LAN port
answers at 192.168.1.1, web UI http://192.168.1.1:8080). To install on the internal disk,
log in on the console and run:  sudo routeros-install --list ; sudo routeros-install /dev/sdX
EOF

rm -f "$out"
xorriso -as mkisofs -quiet -o "$out" -V "ROUTEROS" -iso-level 3 -J -R \
    -append_partition 2 C12A7328-F81F-11D2-BA4B-00A0C93EC93B "$work/esp.img" \
    -append_partition 3 4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709 "$work/root.img" \
    -append_partition 4 0FC63DAF-8483-4772-8E79-3D69D8477DE4 "$work/data.img" \
    -appended_part_as_gpt \
    -e --interval:appended_partition_2:all:: -no-emul-boot \
    "$work/isofs" 2>&1 | grep -v "^xorriso : UPDATE" >&2 || true
[[ -s $out ]] || img_die "xorriso did not write $out"

# GPT names: the UKI finds its root by PARTLABEL, fstab the data partition.
label() { # TYPE-GUID NAME
    local n
    n=$(sfdisk --json "$out" | python3 -c '
import json, sys
for i, p in enumerate(json.load(sys.stdin)["partitiontable"]["partitions"], 1):
    if p["type"].upper() == sys.argv[1]: print(p["node"][len(sys.argv[2]):]); break' "$1" "$out")
    [[ -n $n ]] || img_die "no partition of type $1 in $out"
    sfdisk -q --part-label "$out" "$n" "$2" >/dev/null
}
label C12A7328-F81F-11D2-BA4B-00A0C93EC93B esp
label 4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709 "router_$version"
label 0FC63DAF-8483-4772-8E79-3D69D8477DE4 data
rm -rf "$work"
img_log "ISO: $out"
sfdisk -l "$out" | sed -n '/^Device/,$p' | sed 's/^/  /' >&2
