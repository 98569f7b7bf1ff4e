#!/usr/bin/env bash
# Build the Phoenix Nexus Router appliance image: Ubuntu 24.04 (noble), x86-64, UEFI, A/B.
#
#   ci/image-build.sh [--version V] [--variant normal|broken-for-test] [--no-iso] [--no-qcow2]
#   ci/image-build.sh --derive-from V1 --version V2 [--variant broken-for-test]
#
# Outputs, in target/image/dist/ (git-ignored through target/):
#   router_<V>.qcow2           the disk (ESP, root A, empty root B, data), zstd-compressed qcow2
#   router.qcow2               symlink to the newest normal build
#   router_<V>.upgrade.tar     signed upgrade bundle for `routeros-upgrade FILE|URL`
#   router_<V>.iso             hybrid ISO for a USB stick (dd): live system + routeros-install
#   SHA256SUMS                 of the above
# and prints the build time and the sizes.
#
# What it does: runs ci/package-build.sh (release binaries -> target/debian/routeros_*.deb),
# fetches the pinned mkosi (Debian trixie's 25.3, unpacked, nothing installed), builds the
# image from image/ with a Debian trixie tools tree (systemd-repart, ukify, bootctl), signs
# the upgrade bundle and wraps the ISO.
#
# --derive-from V1 (for the test's CI-sized mode): no mkosi run; version V2 is version V1's
# root partition and UKI re-stamped with the new version (and the variant's files written
# in), as an upgrade bundle only. V1 must be the newest build in target/image/out and V2 as
# long as V1 (e.g. 0.1.0.202611281200.1 -> .2). See ci/lib/image-derive.sh.
#
# Signing key (Ed25519, PEM): ROUTEROS_SIGNING_KEY=/path/to/key.pem. Production keeps it off
# the build machine's disk except during the build (e.g. a CI secret written to a tmpfs);
# documented in image/README.md. Without it a test key is generated once in
# target/image/keys/ and reused, and the image trusts only that key.
#
# Environment: IMAGE_VERSION (same as --version), ROUTEROS_SIGNING_KEY, IMG_TARGET
# (default target/image), IMG_SKIP_PACKAGE=1 (use the .deb already in target/debian/).
set -euo pipefail
# shellcheck source=ci/lib/image-common.sh
source "$(dirname "$0")/lib/image-common.sh"

version=${IMAGE_VERSION:-}
variant=normal
want_iso=1
want_qcow2=1
derive_from=""
while (($#)); do
    case $1 in
        --version) version=$2; shift ;;
        --variant) variant=$2; shift ;;
        --no-iso) want_iso=0 ;;
        --no-qcow2) want_qcow2=0 ;;
        --derive-from) derive_from=$2; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) img_die "unknown argument $1 (see --help)" ;;
    esac
    shift
done
[[ $EUID -eq 0 ]] || img_die "run as root (mkosi builds the image as root here)"
case $variant in
    normal | broken-for-test) ;;
    *) img_die "--variant must be normal or broken-for-test" ;;
esac
if [[ -z $version ]]; then
    cargo_version=$(awk '/^\[/ { s = $0 } s == "[workspace.package]" && /^version/ { gsub(/.*= *"|".*/, ""); print; exit }' \
        "$IMG_REPO_ROOT/Cargo.toml")
    version=$cargo_version.$(date -u +%Y%m%d%H%M%S)
fi
[[ $version =~ ^[0-9][A-Za-z0-9.~^-]*$ && ${#version} -le 29 ]] ||
    img_die "version '$version': digits, letters, . ~ ^ - only, at most 29 characters (GPT labels)"

T0=$SECONDS
declare -A took
step() { took[$1]=$((SECONDS - $2)); }

DIST=$IMG_TARGET/dist
OUT=$IMG_TARGET/out
KEYS=$IMG_TARGET/keys
STAGING=$IMG_TARGET/staging
mkdir -p "$DIST" "$OUT" "$KEYS" "$IMG_TARGET"/{cache,pkgcache,work}

# --- host tools ---------------------------------------------------------------------------
# mkosi runs on python3 and builds its Debian tools tree with the host's apt; the rest is
# for the bundle (openssl, zstd, tar), the qcow2 (qemu-img), the ISO (xorriso, mtools,
# dosfstools, fdisk's sfdisk, e2fsprogs, squashfs-tools) and derived versions (e2fsprogs'
# debugfs).
img_need_pkgs python3 apt dpkg gpgv debian-archive-keyring ca-certificates openssl zstd tar \
    xorriso mtools dosfstools fdisk e2fsprogs squashfs-tools
command -v qemu-img >/dev/null || img_need_pkgs qemu-utils

if [[ -n $derive_from ]]; then
    [[ -n $version ]] || img_die "--derive-from needs --version"
    want_iso=0 want_qcow2=0
fi

# --- our Debian package --------------------------------------------------------------------
t=$SECONDS
if [[ -n $derive_from ]]; then
    : # the base version's package
elif [[ ${IMG_SKIP_PACKAGE:-0} != 1 ]]; then
    img_log "building the Debian package (ci/package-build.sh)"
    "$IMG_REPO_ROOT/ci/package-build.sh" >&2
fi
if [[ -z $derive_from ]]; then
    deb=$(ls -t "$IMG_REPO_ROOT"/target/debian/routeros_*.deb 2>/dev/null | head -n1)
    [[ -n $deb ]] || img_die "no target/debian/routeros_*.deb (ci/package-build.sh failed?)"
    pkgdir=$IMG_TARGET/debs
    rm -rf "$pkgdir" && mkdir -p "$pkgdir" && cp "$deb" "$pkgdir/"
    img_log "package: $(basename "$deb")"
    step package "$t"
fi

# --- signing key ---------------------------------------------------------------------------
key=${ROUTEROS_SIGNING_KEY:-}
if [[ -z $key ]]; then
    key=$KEYS/test-upgrade-signing.key
    if [[ ! -s $key ]]; then
        img_log "no ROUTEROS_SIGNING_KEY: generating a TEST signing key $key"
        (umask 077 && openssl genpkey -algorithm ed25519 -out "$key")
    fi
fi
[[ -r $key ]] || img_die "signing key $key is not readable"
openssl pkey -in "$key" -noout 2>/dev/null || img_die "$key is not a private key openssl reads"
rm -rf "$STAGING" && mkdir -p "$STAGING/usr/share/routeros/upgrade-keys"
openssl pkey -in "$key" -pubout -out "$STAGING/usr/share/routeros/upgrade-keys/router-upgrade.pem"
keyid=$(openssl pkey -pubin -in "$STAGING/usr/share/routeros/upgrade-keys/router-upgrade.pem" -outform DER | sha256sum | cut -c1-16)
img_log "upgrade signing key: $keyid$([[ -z ${ROUTEROS_SIGNING_KEY:-} ]] && echo ' (test key)')"

base=$OUT/router_$version
if [[ -n $derive_from ]]; then
    t=$SECONDS
    tree=""
    [[ $variant == broken-for-test ]] && tree=$IMG_REPO_ROOT/image/variants/broken-for-test
    "$IMG_REPO_ROOT/ci/lib/image-derive.sh" "$OUT/router_$derive_from" "$derive_from" "$version" "$base" $tree
    step derive "$t"
else
    # --- mkosi -----------------------------------------------------------------------------------
    t=$SECONDS
    img_fetch_mkosi
    step mkosi-fetch "$t"

    t=$SECONDS
    args=(--image-version="$version" -O "$OUT" --cache-directory="$IMG_TARGET/cache"
        --package-cache-dir="$IMG_TARGET/pkgcache" --workspace-directory="$IMG_TARGET/work"
        --volatile-package-directory="$pkgdir" --volatile-package=routeros
        --extra-tree="$STAGING")
    [[ $variant == broken-for-test ]] && args+=(--extra-tree="$IMG_REPO_ROOT/image/variants/broken-for-test")
    img_log "mkosi build: version $version ($variant)"
    log=$IMG_TARGET/mkosi-$version.log
    if ! img_mkosi "${args[@]}" -f build >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        img_die "mkosi failed; full log: $log"
    fi
    step mkosi-build "$t"

    for f in "$base.raw" "$base.efi" "$base.root-x86-64.raw" "$base.esp.raw"; do
        [[ -s $f ]] || img_die "mkosi did not produce $f"
    done
fi

# --- upgrade bundle ----------------------------------------------------------------------------
t=$SECONDS
bundle_dir=$IMG_TARGET/bundle-$version
rm -rf "$bundle_dir" && mkdir -p "$bundle_dir"
zstd -q -T0 -6 "$base.root-x86-64.raw" -o "$bundle_dir/router_$version.root.raw.zst"
cp "$base.efi" "$bundle_dir/router_$version.efi"
(cd "$bundle_dir" && sha256sum "router_$version.root.raw.zst" "router_$version.efi" >SHA256SUMS)
openssl pkeyutl -sign -inkey "$key" -rawin -in "$bundle_dir/SHA256SUMS" -out "$bundle_dir/SHA256SUMS.sig"
tar -C "$bundle_dir" -cf "$DIST/router_$version.upgrade.tar" SHA256SUMS SHA256SUMS.sig \
    "router_$version.root.raw.zst" "router_$version.efi"
rm -rf "$bundle_dir"
step bundle "$t"

# --- qcow2 -----------------------------------------------------------------------------------
if ((want_qcow2)); then
    t=$SECONDS
    qemu-img convert -O qcow2 -c -o compression_type=zstd "$base.raw" "$DIST/router_$version.qcow2"
    [[ $variant == normal ]] && ln -sfn "router_$version.qcow2" "$DIST/router.qcow2"
    step qcow2 "$t"
fi

# --- ISO -------------------------------------------------------------------------------------
if ((want_iso)); then
    t=$SECONDS
    "$IMG_REPO_ROOT/ci/lib/image-iso.sh" "$base" "$version" "$DIST/router_$version.iso"
    step iso "$t"
fi

if [[ -n $derive_from ]]; then
    # Only the bundle is kept of a derived version; the base's outputs stay for the next one.
    derived_sizes=("$base.root-x86-64.raw" "$base.efi")
else
    # Keep the raw disk of the newest build for local tests; older raw outputs go.
    find "$OUT" -maxdepth 1 -name 'router_*' ! -name "router_$version*" -exec rm -f {} +
fi
# SHA256SUMS of dist/: this version's lines replace any earlier ones (hashing every older
# output again would cost a minute per build).
(
    cd "$DIST"
    mine=()
    for f in "router_$version.qcow2" "router_$version.upgrade.tar" "router_$version.iso"; do
        [[ -e $f ]] && mine+=("$f")
    done
    {
        if [[ -e SHA256SUMS ]]; then
            while read -r sum name; do
                if [[ -e $name && $name != router_$version.* ]]; then printf '%s  %s\n' "$sum" "$name"; fi
            done <SHA256SUMS
        fi
        sha256sum "${mine[@]}"
    } >SHA256SUMS.tmp
    mv SHA256SUMS.tmp SHA256SUMS
)

# --- report ----------------------------------------------------------------------------------
echo
echo "Image router_$version ($variant${derive_from:+, derived from $derive_from}) built in $((SECONDS - T0)) s:"
for k in package mkosi-fetch mkosi-build derive bundle qcow2 iso; do
    [[ -n ${took[$k]:-} ]] && printf '  %-12s %4d s\n' "$k" "${took[$k]}"
done
echo "Sizes:"
img_sizes "$base.raw" "$base.efi" "$base.root-x86-64.raw" "$DIST/router_$version.qcow2" \
    "$DIST/router_$version.upgrade.tar" "$DIST/router_$version.iso"
echo "Outputs in $DIST"
[[ -n $derive_from ]] && rm -f "${derived_sizes[@]}"
exit 0
