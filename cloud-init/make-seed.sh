#!/usr/bin/env bash
# make-seed.sh DIR OUT.img: a NoCloud seed volume (vfat, label CIDATA) from DIR's meta-data,
# user-data and network-config. Write it to a small USB stick (dd) or attach it to a VM; plug
# it in for the router's first boot. Needs dosfstools and mtools.
#   cloud-init/make-seed.sh cloud-init/headless seed.img && dd if=seed.img of=/dev/sdX
set -euo pipefail
dir=${1:?usage: make-seed.sh DIR OUT.img} out=${2:?usage: make-seed.sh DIR OUT.img}
for f in meta-data user-data; do [[ -r $dir/$f ]] || { echo "make-seed.sh: $dir/$f missing" >&2; exit 1; }; done
rm -f "$out"
mkfs.vfat -n CIDATA -C "$out" 2048 >/dev/null
mcopy -i "$out" "$dir/meta-data" "$dir/user-data" ::
[[ -r $dir/network-config ]] && mcopy -i "$out" "$dir/network-config" ::
echo "$out"
