#!/usr/bin/env bash
# image-derive.sh FROM_BASE FROM_VERSION VERSION OUT_BASE [TREE]: a new image version made
# from an already built one without running mkosi again (ci/image-build.sh --derive-from,
# used by the test's CI-sized mode).
#
# The root partition image is copied and re-stamped: IMAGE_VERSION in /usr/lib/os-release
# becomes VERSION (debugfs, no mount), the file system gets a new UUID, and TREE (e.g.
# image/variants/broken-for-test) is written into it. The UKI is copied with its two version
# strings (the root=PARTLABEL=router_<v> of its command line and IMAGE_VERSION of its
# os-release section) replaced in place: VERSION must be exactly as long as FROM_VERSION, so
# no offset of the PE file moves (the UKI is not signed). Everything else, packages, kernel,
# initrd, is the base version's: what is tested with it is the upgrade machinery, not the
# build.
#
# Writes OUT_BASE.root-x86-64.raw and OUT_BASE.efi.
set -euo pipefail
# shellcheck source=ci/lib/image-common.sh
source "$(dirname "$0")/image-common.sh"

from=$1 from_version=$2 version=$3 out=$4 tree=${5:-}
[[ ${#version} -eq ${#from_version} ]] ||
    img_die "--derive-from: $version must have as many characters as $from_version"
for f in "$from.root-x86-64.raw" "$from.efi"; do
    [[ -s $f ]] || img_die "--derive-from: $f missing (build $from_version first, in this target/image)"
done

# --- UKI ---------------------------------------------------------------------------------------
python3 - "$from.efi" "$out.efi" "$from_version" "$version" <<'PY'
import sys
src, dst, old, new = sys.argv[1:5]
data = open(src, "rb").read()
pairs = [(f"root=PARTLABEL=router_{old} ".encode(), f"root=PARTLABEL=router_{new} ".encode()),
         (f'IMAGE_VERSION="{old}"'.encode(), f'IMAGE_VERSION="{new}"'.encode())]
for a, b in pairs:
    n = data.count(a)
    if n != 1:
        sys.exit(f"image-derive: {a!r} found {n} times in {src}, expected once")
    data = data.replace(a, b)
open(dst, "wb").write(data)
PY

# --- root partition ----------------------------------------------------------------------------
work=$IMG_TARGET/derive-work
rm -rf "$work" && mkdir -p "$work"
cp --sparse=always "$from.root-x86-64.raw" "$out.root-x86-64.raw"
root=$out.root-x86-64.raw
debugfs -R 'cat /usr/lib/os-release' "$root" 2>/dev/null >"$work/os-release"
grep -q "^IMAGE_VERSION=\"$from_version\"\$" "$work/os-release" ||
    img_die "--derive-from: no IMAGE_VERSION=\"$from_version\" in the root's /usr/lib/os-release"
sed -i "s/^IMAGE_VERSION=.*/IMAGE_VERSION=\"$version\"/" "$work/os-release"
chmod 0644 "$work/os-release"
{
    echo "cd /usr/lib"
    echo "rm os-release"
    echo "write $work/os-release os-release"
    echo "set_inode_field os-release uid 0"
    echo "set_inode_field os-release gid 0"
} >"$work/cmds"
if [[ -n $tree ]]; then
    # Directories first (parents before children), then files; owned by root like mkosi's.
    (cd "$tree" && find . -mindepth 1 -type d | sort) | while read -r d; do
        d=${d#.}
        debugfs -R "stat $d" "$root" >/dev/null 2>&1 || { echo "mkdir $d"; echo "set_inode_field $d mode 040755"; }
    done >>"$work/cmds"
    (cd "$tree" && find . -type f | sort) | while read -r f; do
        f=${f#.}
        echo "rm $f"
        echo "write $tree$f $f"
        echo "set_inode_field $f mode 0100644"
        echo "set_inode_field $f uid 0"
        echo "set_inode_field $f gid 0"
    done >>"$work/cmds"
fi
debugfs -w -f "$work/cmds" "$root" >"$work/debugfs.log" 2>&1 || { cat "$work/debugfs.log" >&2; img_die "debugfs failed on $root"; }
got=$(debugfs -R 'cat /usr/lib/os-release' "$root" 2>/dev/null | grep '^IMAGE_VERSION=' || true)
[[ $got == "IMAGE_VERSION=\"$version\"" ]] || { cat "$work/debugfs.log" >&2; img_die "re-stamping the root failed ($got)"; }
e2fsck -fy "$root" >"$work/e2fsck.log" 2>&1 || (($? <= 1)) || { cat "$work/e2fsck.log" >&2; img_die "e2fsck failed on $root"; }
tune2fs -U random "$root" >/dev/null 2>&1 || img_die "tune2fs -U random failed on $root"
rm -rf "$work"
img_log "derived $version from $from_version${tree:+ with ${tree#"$IMG_REPO_ROOT"/}}"
