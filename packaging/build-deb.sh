#!/usr/bin/env bash
# Build the Debian package `routeros` from already built release binaries, with plain
# dpkg-deb: no debian/ source package, no debhelper, no cargo-deb.
#
#   packaging/build-deb.sh [--bin-dir DIR] [--out DIR]
#
#   --bin-dir DIR   where routeros-watchdog, routeros-kill-switch, routeros-web are
#                   (default target/release; ci/package-build.sh builds them)
#   --out DIR       where the .deb goes (default target/debian)
#
# Prints the path of the package. Needs dpkg-dev (dpkg-shlibdeps, dpkg-parsechangelog) and
# binutils (strip). The version is the workspace's (Cargo.toml [workspace.package]); the
# top entry of packaging/changelog must carry the same version.
#
# What goes where:
#   /usr/bin/routeros-{watchdog,kill-switch,web}       release binaries, stripped
#   overlay/ (the files listed below) -> /              units, sysctl, modules-load, logrotate,
#                                                       networkd.conf drop-in (keeps our routes),
#                                                       the LAN dnsmasq's fallback config writer
#                                                       (files under /etc are conffiles)
#   config/routeros.toml -> /usr/share/routeros/        the default config; postinst copies it
#                                                       to /opt/routeros/config/ when absent
#   packaging/80-routeros.preset -> /usr/lib/systemd/system-preset/   units off by default
#   scripts/{status,test_failover}.sh -> /usr/lib/routeros/scripts/, linked from
#                                                       /opt/routeros/scripts/ by postinst
#   packaging/{postinst,prerm,postrm}                   maintainer scripts (@UNITS@ filled in)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
bin_dir="$repo/target/release"
out_dir="$repo/target/debian"

usage_error() { echo "build-deb.sh: $* (see --help)" >&2; exit 2; }
while (( $# )); do
  case "$1" in
    --bin-dir|--out) (( $# >= 2 )) && [[ -n $2 ]] || usage_error "$1 needs a directory" ;;
  esac
  case "$1" in
    --bin-dir)
      [[ -d $2 ]] || usage_error "--bin-dir: no directory '$2'"
      bin_dir=$(cd "$2" && pwd); shift 2 ;;
    --out)
      [[ ! -e $2 || -d $2 ]] || usage_error "--out: '$2' is not a directory"
      out_dir=$(realpath -m "$2"); shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
done

die() { echo "build-deb.sh: $*" >&2; exit 1; }
for tool in dpkg-deb dpkg-shlibdeps dpkg-parsechangelog strip; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install dpkg-dev binutils)"
done

package=routeros
binaries=(routeros-watchdog routeros-kill-switch routeros-web)

# Version: [workspace.package] version in the workspace Cargo.toml.
version=$(awk '
  /^\[/ { section = $0 }
  section == "[workspace.package]" && /^version[[:space:]]*=/ {
    gsub(/.*=[[:space:]]*"|".*/, ""); print; exit
  }' "$repo/Cargo.toml")
[[ -n $version ]] || die "no version in [workspace.package] of $repo/Cargo.toml"
changelog_version=$(dpkg-parsechangelog -l "$here/changelog" -S Version)
[[ $changelog_version == "$version" ]] ||
  die "packaging/changelog's top entry is $changelog_version but Cargo.toml says $version: add an entry"
# Reproducible: every file's time is the changelog entry's.
SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -l "$here/changelog" -S Timestamp)
export SOURCE_DATE_EPOCH
arch=$(dpkg --print-architecture)

for b in "${binaries[@]}"; do
  [[ -x "$bin_dir/$b" ]] || die "$bin_dir/$b is missing: cargo build --release --locked first"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/routeros-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root/DEBIAN"
umask 022

# Binaries, stripped as dh_strip does.
install -d "$root/usr/bin"
for b in "${binaries[@]}"; do
  install -m 0755 "$bin_dir/$b" "$root/usr/bin/$b"
  strip --remove-section=.comment --remove-section=.note --strip-unneeded "$root/usr/bin/$b"
done

# From overlay/: only the files listed here. overlay/ also holds the appliance image's own
# files (fstab, boot checks, cloud-init, factory config, ...), which must never reach an
# existing machine through this package.
overlay_files=(
  usr/lib/systemd/system/routeros-watchdog.service
  usr/lib/systemd/system/routeros-web.service
  usr/lib/systemd/system/routeros-dnsmasq.service
  usr/lib/sysctl.d/60-routeros.conf
  usr/lib/modules-load.d/routeros.conf
  usr/lib/systemd/networkd.conf.d/10-routeros.conf
  etc/logrotate.d/routeros
)
for f in "${overlay_files[@]}"; do
  install -D -m 0644 "$repo/overlay/$f" "$root/$f"
done
# routeros-dnsmasq.service's ExecStartPre: a minimal dnsmasq.conf from [lan] when the daemon
# has not rendered one yet.
install -D -m 0755 "$repo/overlay/usr/lib/routeros/dnsmasq-fallback" "$root/usr/lib/routeros/dnsmasq-fallback"

install -D -m 0644 "$repo/config/routeros.toml" "$root/usr/share/routeros/routeros.toml"
# Off by default (see postinst); the appliance image's 40-routeros-image.preset comes first.
install -D -m 0644 "$here/80-routeros.preset" "$root/usr/lib/systemd/system-preset/80-routeros.preset"
# The scripts live in /usr/lib/routeros/scripts; postinst links them into /opt/routeros/scripts/.
# Nothing is shipped under /opt: dpkg would delete an empty /opt (made by base-files'
# postinst, owned by no package) when this package is removed.
install -d "$root/usr/lib/routeros/scripts"
install -m 0755 "$repo/scripts/status.sh" "$repo/scripts/test_failover.sh" "$root/usr/lib/routeros/scripts/"

doc="$root/usr/share/doc/$package"
install -D -m 0644 "$here/copyright" "$doc/copyright"
gzip -9n <"$here/changelog" >"$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"

# Manual pages from --help, so that `man routeros-watchdog` says something.
for b in "${binaries[@]}"; do
  section=8; [[ $b == routeros-kill-switch ]] && section=1
  install -d "$root/usr/share/man/man$section"
  {
    summary=$("$root/usr/bin/$b" --help | head -n1)
    printf '.TH %s %s "" "%s %s" "Phoenix Nexus Router"\n' "${b^^}" "$section" "$package" "$version"
    printf '.SH NAME\n%s \\- %s\n' "$b" "$summary"
    printf '.SH SYNOPSIS\n.nf\n'
    "$root/usr/bin/$b" --help | sed -n 's/^Usage: //p' | sed 's/\\/\\\\/g; s/^-/\\-/'
    printf '.fi\n.SH OPTIONS\n.nf\n'
    "$root/usr/bin/$b" --help | awk '/^Options:/ { on = 1; next } on' | sed 's/\\/\\\\/g; s/-/\\-/g'
    printf '.fi\n.SH FILES\n.nf\n/opt/routeros/config/routeros.toml\n/run/routeros/control.sock\n.fi\n'
    printf '.SH SEE ALSO\n/usr/share/doc/%s/, https://github.com/Djnirds1984/Phoenix\\-Nexus\\-Router\n' "$package"
  } | gzip -9n >"$root/usr/share/man/man$section/$b.$section.gz"
  chmod 0644 "$root/usr/share/man/man$section/$b.$section.gz"
done

# Units that have an [Install] section: postinst records them (never enables or starts them on a
# first installation), restarts the running ones on upgrade; prerm stops them.
units=$(cd "$root/usr/lib/systemd/system" && grep -l '^\[Install\]' ./*.service | sed 's|^\./||' | sort)
units_reversed=$(printf '%s\n' $units | tac | xargs)
units=$(printf '%s\n' $units | xargs)
for s in postinst prerm postrm; do
  sed -e "s|@UNITS@|$units|g" -e "s|@UNITS_REVERSED@|$units_reversed|g" "$here/$s" >"$root/DEBIAN/$s"
  chmod 0755 "$root/DEBIAN/$s"
done

# Every file under /etc is a conffile.
if [[ -d "$root/etc" ]]; then
  (cd "$root" && find etc -type f | sort | sed 's|^|/|') >"$root/DEBIAN/conffiles"
  chmod 0644 "$root/DEBIAN/conffiles"
fi

# Library dependencies of the binaries, as dpkg-shlibdeps computes them.
mkdir -p "$work/shlibs/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$package" "$package" >"$work/shlibs/debian/control"
shlibs=$(cd "$work/shlibs" && dpkg-shlibdeps -O -e"$root/usr/bin/routeros-watchdog" \
  -e"$root/usr/bin/routeros-kill-switch" -e"$root/usr/bin/routeros-web" 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')
[[ -n $shlibs ]] || die "dpkg-shlibdeps found no library dependencies"

# md5sums of everything but the conffiles (dh_md5sums).
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort |
  grep -vxF -f <(sed 's|^/||' DEBIAN/conffiles 2>/dev/null || true) | xargs md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"

installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@INSTALLED_SIZE@|$installed_size|" \
  -e "s|@SHLIBS@|$shlibs|" "$here/control.in" >"$root/DEBIAN/control"

# Every directory 0755, every timestamp the changelog's.
find "$root" -type d -exec chmod 0755 {} +
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$out_dir"
deb="$out_dir/${package}_${version}_${arch}.deb"
# Built beside and renamed into place: a reader of the old package never sees half a file.
# The temporary name is this build's own: another build (ci/image-build.sh) may run meanwhile.
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb.tmp.$$" >/dev/null
mv -f "$deb.tmp.$$" "$deb"
echo "$deb"
