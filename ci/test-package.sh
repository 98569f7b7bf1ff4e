#!/usr/bin/env bash
# Tests of the Debian package and setup.sh, as root, in throw-away machines made from a
# Debian 12 root made by mmdebstrap (cached as a tarball under target/ci-cache/): first entered
# with chroot inside its own network, mount and PID namespaces, with veth ports eth0..eth3 and
# no systemd; then booted with systemd-nspawn. WAN-side addresses are documentation ranges.
# Installs every host tool it needs (ci/lib/deps.sh); the test machines have no network.
#
#   sudo ci/test-package.sh              build the package (ci/package-build.sh), then test it
#   sudo ci/test-package.sh --no-build   test target/debian/routeros_<version>_<arch>.deb as it is
#   sudo ci/test-package.sh --keep       leave the test root (target/ci-pkgtest/) for a look
#
# 1. lintian: no errors, no warnings (informational tags are listed).
# 2. The package: install, units valid (systemd-analyze verify), hardening, users, default
#    config; installing enables and starts nothing, the image's preset enables all three; install
#    again; upgrade and remove/reinstall keep the config and the admin's enable choice; remove
#    keeps the config; purge leaves nothing (every file compared with the pristine root).
# 3. setup.sh: --help; bad flags refused with a message naming the flag and nothing changed on
#    disk; --dry-run changes nothing; a first run failing after any of its six steps undoes
#    everything (conntrack and dnsmasq-base, which it installs, purged again); the real run with
#    the seed's flags (config, netplan, LAN address, sysctl, units enabled); dnsmasq-fallback;
#    the daemon and the web server started as the units would start them (socket group, web
#    user, the LAN dnsmasq.conf rendered); a re-run with other flags updates the config and keeps the
#    user's edits; a failing re-run restores the previous set-up.
# 4. The same root booted with systemd as PID 1 (systemd-nspawn, its own network namespace with
#    four veth ports): dpkg -i, reinstall and upgrade start nothing and leave routes, rules,
#    nftables and sysctls alone; setup.sh's real run has systemd-networkd configure the LAN
#    port and systemd start both services under their hardened units (users, capabilities,
#    socket group checked in /proc); routeros-dnsmasq beside systemd-resolved's 127.0.0.53 stub;
#    a LAN client (dhclient in its own namespace) gets a lease of the [lan.dhcp] range with the
#    router as gateway and DNS, resolves its own .lan name and, through the live WANs' DNS
#    server (a dnsmasq on the ISP side), other names; without /usr/sbin/dnsmasq the unit is
#    skipped, not failed; a re-run reloads the daemon, which re-renders dnsmasq.conf and restarts
#    dnsmasq (the client then gets the new LAN); a failing run restores the set-up and restarts
#    the services; an upgrade restarts them; remove stops them; purge.
# Takes about 3.5 minutes with the cached root on a busy 2-core machine; building the root
# (mmdebstrap) adds about 2 minutes on the first run.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/lib/deps.sh
require_root

build=1 keep=0
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    --keep) keep=1 ;;
    *) echo "unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

started=$SECONDS
step() { printf '\n==== %s  (%ds)\n' "$*" $((SECONDS - started)); }
PASS=0 FAIL=0 FAILED=()
pass() { PASS=$((PASS + 1)); printf '  ok   %s\n' "$1"; }
fail() { FAIL=$((FAIL + 1)); FAILED+=("$1"); printf '  FAIL %s\n' "$1"; [[ -n ${2:-} ]] && printf '%s\n' "$2" | sed 's/^/       | /' | head -40; return 0; }
# check NAME CMD...: the command must succeed.
check() { local name=$1; shift; local out; if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$out"; fi; }

# Every host tool this script and ci/package-build.sh use (coreutils, findutils, grep, sed, tar,
# diffutils, mount and debian-archive-keyring are part of every Debian system).
# dnsmasq-base: the ISPs' DNS server; isc-dhcp-client, bind9-dnsutils: the LAN client (dhclient, dig).
ensure_packages lintian mmdebstrap dpkg-dev binutils zstd iproute2 util-linux procps systemd systemd-container \
  dnsmasq-base isc-dhcp-client bind9-dnsutils

step "build"
if (( build )); then
  ci/package-build.sh
fi
version=$(awk '/^\[/ { s = $0 } s == "[workspace.package]" && /^version/ { gsub(/.*= *"|".*/, ""); print; exit }' Cargo.toml)
DEB=target/debian/routeros_${version}_$(dpkg --print-architecture).deb
[[ -f $DEB ]] || { echo "no $DEB: run without --no-build" >&2; exit 1; }
echo "$DEB ($(du -h "$DEB" | cut -f1))"
# Tested from a copy: a rebuild of target/debian/ meanwhile (ci/image-build.sh builds it too)
# does not change the package under test.
deb_copy=$(mktemp -d)
cp "$DEB" "$deb_copy/"
DEB=$deb_copy/$(basename "$DEB")

# ---------------------------------------------------------------------------------------
step "lintian"
work_lintian=$(mktemp)
lintian --display-level '>=info' "$DEB" 2>&1 | grep -v '^running with root privileges' >"$work_lintian" || true
sed 's/^/  lintian: /' "$work_lintian"
if grep -q '^[EW]: ' "$work_lintian"; then
  fail "lintian: errors or warnings" "$(grep '^[EW]: ' "$work_lintian")"
else
  pass "lintian: no errors, no warnings ($(grep -c '^I: ' "$work_lintian") informational tags)"
fi

check "package holds the files the seed names" bash -c "
  list=\$(dpkg-deb -c '$DEB' | awk '{ print \$6 }')
  for f in ./usr/bin/routeros-watchdog ./usr/bin/routeros-kill-switch ./usr/bin/routeros-web \
           ./usr/lib/systemd/system/routeros-watchdog.service ./usr/lib/systemd/system/routeros-web.service \
           ./usr/lib/systemd/system/routeros-dnsmasq.service ./usr/lib/routeros/dnsmasq-fallback \
           ./usr/lib/sysctl.d/60-routeros.conf ./etc/logrotate.d/routeros ./usr/share/routeros/routeros.toml \
           ./usr/lib/systemd/networkd.conf.d/10-routeros.conf \
           ./usr/lib/routeros/scripts/status.sh ./usr/lib/routeros/scripts/test_failover.sh; do
    grep -qx \"\$f\" <<<\"\$list\" || { echo \"missing \$f\"; exit 1; }
  done
  ! grep -q '^./etc/fstab\$\|routeros-image' <<<\"\$list\" || { echo 'image-only files in the package'; exit 1; }
  ! grep -q '^./opt/' <<<\"\$list\" || { echo 'files under /opt: dpkg would remove an empty /opt with them'; exit 1; }"
check "Recommends dnsmasq-base (not dnsmasq: its own service would take ports 53 and 67)" bash -c "
  r=\$(dpkg-deb -f '$DEB' Recommends); echo \"Recommends: \$r\"
  tr ',' '\n' <<<\"\$r\" | sed 's/^ *//; s/ .*//' | grep -qx dnsmasq-base
  ! tr ',' '\n' <<<\"\$r\" | sed 's/^ *//; s/ .*//' | grep -qx dnsmasq
  ! dpkg-deb -f '$DEB' Depends | grep -q dnsmasq"
check "conffiles: /etc/logrotate.d/routeros only" bash -c "
  d=\$(mktemp -d); dpkg-deb -e '$DEB' \$d; [[ \$(cat \$d/conffiles) == /etc/logrotate.d/routeros ]]; rm -rf \$d"

# ---------------------------------------------------------------------------------------
step "test machine: Debian 12 root, namespaces, veth ports"
suite=bookworm
mirror=${PKGTEST_MIRROR:-http://deb.debian.org/debian}
# What setup.sh and the package need, pre-installed: the test machine has no network to fetch
# (ppp too: setup.sh installs it for PPPoE lines; the local repository below offers only two).
include=systemd,systemd-sysv,udev,dbus,nftables,iproute2,conntrack,netplan.io,adduser,procps,logrotate,libnss-systemd,python3-yaml,dnsmasq-base,systemd-resolved,ppp
key=$(printf '%s %s mmdebstrap-v1' "$suite" "$include" | sha256sum | cut -c1-12)
cache=target/ci-cache/root-$suite-$key.tar.zst
work=$(realpath -m target/ci-pkgtest)
ROOT=$work/root
NS=pnrpkg-rtr PEER=pnrpkg-peer BOOT_PEER=pnrpkg-bpeer BOOT_LANC=pnrpkg-blan
BOOT_ROOT=$work/boot NSPAWN_PID="" BOOT_PID1="" ISP_DNS_PID="" DHCLIENT_PID=""
stop_boot() { # power the booted machine off (SIGTERM asks its systemd to shut down)
  [[ -n $NSPAWN_PID ]] || return 0
  kill "$NSPAWN_PID" 2>/dev/null || true
  for _ in $(seq 60); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$NSPAWN_PID" 2>/dev/null || true
  wait "$NSPAWN_PID" 2>/dev/null || true
  NSPAWN_PID=""
}

cleanup() {
  stop_boot
  for pid in $ISP_DNS_PID $DHCLIENT_PID; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$deb_copy" "$work_lintian"
  ip netns del "$NS" 2>/dev/null || true
  ip netns del "$PEER" 2>/dev/null || true
  ip netns del "$BOOT_PEER" 2>/dev/null || true
  ip netns del "$BOOT_LANC" 2>/dev/null || true
  if (( keep )); then echo "test root kept in $ROOT"; else rm -rf "$work"; fi
}
trap cleanup EXIT
ip netns del "$NS" 2>/dev/null || true
ip netns del "$PEER" 2>/dev/null || true
ip netns del "$BOOT_PEER" 2>/dev/null || true
ip netns del "$BOOT_LANC" 2>/dev/null || true
rm -rf "$work"
mkdir -p "$work" target/ci-cache

if [[ ! -f $cache ]]; then
  # mmdebstrap, not debootstrap: apt downloads in parallel and installs in one go (about 1.5
  # minutes here against 3.5). Of the downloaded packages only conntrack's and dnsmasq-base's are
  # kept, in /srv/repo: the local repository of the setup.sh tests below (the test machine has no
  # network). systemd-resolved: its stub listener (127.0.0.53:53, as on Ubuntu) runs beside the
  # LAN's dnsmasq on the booted machine.
  echo "mmdebstrap $suite (no cached root $cache)"
  mmdebstrap --mode=root --variant=minbase --include="$include" \
    --customize-hook='mkdir -p "$1/srv/repo" && cp "$1"/var/cache/apt/archives/conntrack_*.deb "$1"/var/cache/apt/archives/dnsmasq-base_*.deb "$1/srv/repo/"' \
    "$suite" "$work/bootstrap" "$mirror" >"$work/mmdebstrap.log" 2>&1 ||
    { tail -20 "$work/mmdebstrap.log"; exit 1; }
  rm -f target/ci-cache/root-"$suite"-*.tar.zst
  tar -C "$work/bootstrap" --zstd -cf "$cache.tmp" . && mv "$cache.tmp" "$cache"
  rm -rf "$work/bootstrap"
fi
mkdir -p "$ROOT"
tar -C "$ROOT" --zstd -xf "$cache"
mkdir -p "$ROOT/root/pnr/target/debian"
cp setup.sh "$ROOT/root/pnr/"
cp "$DEB" "$ROOT/root/pnr/target/debian/"
echo "root ready: $ROOT"

# Router namespace: eth0, eth1 (WANs), eth2 (LAN), eth3 (spare); peers in $PEER act as the ISPs.
ip netns add "$NS"
ip netns add "$PEER"
ip -n "$NS" link set lo up
for i in 0 1 2 3; do
  ip link add "eth$i" netns "$NS" type veth peer name "p$i" netns "$PEER"
  ip -n "$PEER" link set "p$i" up
done
ip -n "$PEER" addr add 192.0.2.1/24 dev p0
ip -n "$PEER" addr add 198.51.100.1/24 dev p1
# The WANs' own addresses come from the ISP (DHCP or netplan) on a real box; here, by hand.
for i in 0 1 3; do ip -n "$NS" link set "eth$i" up; done
ip -n "$NS" addr add 192.0.2.2/24 dev eth0
ip -n "$NS" addr add 198.51.100.2/24 dev eth1

# in_root 'COMMANDS': run in the test machine (router netns, own mount and PID namespace,
# chrooted, fresh /run, a clean environment). Extra environment: IN_ROOT_ENV="K=V ...".
in_root() {
  ip netns exec "$NS" unshare --mount --pid --fork --mount-proc="$ROOT/proc" /bin/bash -c '
    set -e
    root=$1
    mount -t sysfs sysfs "$root/sys"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs -o mode=0755 tmpfs "$root/run"
    exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
      $3 /bin/bash -e -c "$2"' _ "$ROOT" "$1" "${IN_ROOT_ENV:-}"
}
# check_root NAME 'COMMANDS': a check that runs in the test machine.
check_root() { local out; if out=$(in_root "$2" 2>&1); then pass "$1"; else fail "$1" "$out"; fi; }

# snapshot strict|content: every file of the test machine. strict: with times (nothing may have
# been touched); content: with checksums, without the package manager's own records and logs.
snapshot() {
  local prune=(-path ./proc -o -path ./sys -o -path ./dev -o -path ./run -o -path ./tmp)
  if [[ $1 == strict ]]; then
    (cd "$ROOT" && find . -xdev \( "${prune[@]}" \) -prune -o -printf '%p %y %m %u %g %s %T@ %l\n') | sort
  else
    prune+=(-o -path ./var/log -o -path ./var/lib/dpkg -o -path ./var/lib/apt -o -path ./var/cache
      -o -path './var/lib/systemd/deb-systemd-helper-*' -o -path './etc/*-')
    (
      cd "$ROOT"
      find . -xdev \( "${prune[@]}" \) -prune -o -printf '%p %y %m %u %g %l\n'
      find . -xdev \( "${prune[@]}" \) -prune -o -type f -print0 | xargs -0 -r sha256sum | awk '{ print $2, "sha256", $1 }'
    ) | sort
  fi
}
same_snapshot() { # same_snapshot NAME BEFORE AFTER
  if diff <(echo "$2") <(echo "$3") >"$work/diff" 2>&1; then pass "$1"; else fail "$1" "$(head -30 "$work/diff")"; fi
}

SEED_FLAGS="--wan1-interface eth0 --wan1-gateway 192.0.2.1 --wan2-interface eth1 --wan2-gateway 198.51.100.1 --lan-interface eth2 --lan-network 192.168.1.0/24"
PKGFILE=/root/pnr/target/debian/$(basename "$DEB")
in_root 'cat /etc/os-release | head -1; ls /sys/class/net | xargs; [ ! -d /run/systemd/system ] && echo "systemd: not running (PID 1 is $(cat /proc/1/comm))"'

# ---------------------------------------------------------------------------------------
step "package: install"
pristine=$(snapshot content)
check_root "dpkg -i; says the services are neither enabled nor started" "dpkg -i $PKGFILE | tee /dev/stderr | grep -q 'not enabled or started. Run setup.sh'"
check_root "installed, users and group" '
  dpkg-query -W -f="\${Status}" routeros | grep -qx "install ok installed"
  getent group routeros >/dev/null
  [ "$(getent passwd routeros-web | cut -d: -f7)" = /usr/sbin/nologin ]
  id -nG routeros-web | tr " " "\n" | grep -qx routeros'
check_root "default config created from the template, valid" '
  cmp /usr/share/routeros/routeros.toml /opt/routeros/config/routeros.toml
  [ "$(stat -c "%U:%G %a" /opt/routeros/config/routeros.toml)" = "root:routeros 640" ]
  routeros-watchdog --check --config /opt/routeros/config/routeros.toml'
check_root "routeros-kill-switch on PATH, scripts in /opt/routeros/scripts" '
  [ "$(command -v routeros-kill-switch)" = /usr/bin/routeros-kill-switch ]
  routeros-kill-switch --help >/dev/null
  [ -x /opt/routeros/scripts/status.sh ]; [ -x /opt/routeros/scripts/test_failover.sh ]
  /opt/routeros/scripts/test_failover.sh eth0 x 2>&1 | grep -q "must be a number"'
# Policy: nothing runs before setup.sh (or the admin) has written this machine's config: the
# default one names eth0..eth2 and the daemon rewrites routes and nftables.
check_root "first installation enables nothing (no unit links)" '
  for u in routeros-watchdog.service routeros-web.service routeros-dnsmasq.service; do
    [ "$(systemctl is-enabled $u)" = disabled ] || { systemctl is-enabled $u; exit 1; }
  done
  ! ls -l /etc/systemd/system/*/routeros-* 2>/dev/null'
cp overlay/usr/lib/systemd/system-preset/40-routeros-image.preset "$ROOT/tmp/"
check_root "presets: off by default (80-routeros.preset); the appliance image's 40-routeros-image.preset enables all three" '
  units="routeros-watchdog.service routeros-web.service routeros-dnsmasq.service"
  systemctl preset $units 2>&1; for u in $units; do [ "$(systemctl is-enabled $u)" = disabled ]; done
  mv /tmp/40-routeros-image.preset /usr/lib/systemd/system-preset/
  systemctl preset $units 2>&1; for u in $units; do [ "$(systemctl is-enabled $u)" = enabled ]; done
  rm /usr/lib/systemd/system-preset/40-routeros-image.preset; systemctl disable --quiet $units
  ! ls -l /etc/systemd/system/*/routeros-* 2>/dev/null'
check_root "systemd-analyze verify: the three units valid" '
  out=$(systemd-analyze verify routeros-watchdog.service routeros-web.service routeros-dnsmasq.service 2>&1); echo "$out"; [ -z "$out" ]'
check_root "systemd-analyze verify would catch a broken unit" '
  mkdir -p /tmp/bad; sed "s/^User=/Userr=/" /usr/lib/systemd/system/routeros-web.service >/tmp/bad/routeros-web.service
  systemd-analyze verify /tmp/bad/routeros-web.service 2>&1 | grep -q "Unknown key .Userr."'
check_root "hardening: only the watchdog has capabilities; the web unit runs as its own user" '
  w=/usr/lib/systemd/system/routeros-watchdog.service u=/usr/lib/systemd/system/routeros-web.service
  grep -qx "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW" $w
  grep -q -- "--socket-group routeros" $w
  grep -qx "CapabilityBoundingSet=" $u; grep -qx "User=routeros-web" $u; grep -qx "SupplementaryGroups=routeros" $u
  for k in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes; do grep -qx $k $w; grep -qx $k $u; done
  exposure() { systemd-analyze security --offline=true "$1" 2>/dev/null | sed -n "s/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p"; }
  echo "exposure: watchdog $(exposure routeros-watchdog.service), web $(exposure routeros-web.service)"
  awk -v e="$(exposure routeros-web.service)" "BEGIN { exit !(e != \"\" && e <= 2.0) }"'
check_root "logrotate accepts its file (10 MB, like [logging] max_size)" '
  logrotate -d /etc/logrotate.d/routeros >/dev/null 2>&1; grep -q "maxsize 10M" /etc/logrotate.d/routeros'

step "package: install again, upgrade, remove, install after remove, purge"
check_root "user edits the config" 'sed -i "s/^weight = 2 /weight = 5 /" /opt/routeros/config/routeros.toml; echo "# edited by the test" >>/opt/routeros/config/routeros.toml
  routeros-watchdog --check --config /opt/routeros/config/routeros.toml'
edited=$(cat "$ROOT/opt/routeros/config/routeros.toml")
check_root "install the same package again" "dpkg -i $PKGFILE"
check "  config kept" test "$edited" == "$(cat "$ROOT/opt/routeros/config/routeros.toml")"
check_root "  still not enabled" '! systemctl is-enabled --quiet routeros-watchdog.service; ! systemctl is-enabled --quiet routeros-web.service'
check_root "the admin enables the units" 'systemctl enable --quiet routeros-watchdog.service routeros-web.service
  systemctl is-enabled routeros-watchdog.service routeros-web.service'
# An upgrade: the same package with a higher version.
rm -rf "$work/upgrade" && dpkg-deb -R "$DEB" "$work/upgrade"
sed -i "s/^Version: .*/Version: ${version}+pkgtest1/" "$work/upgrade/DEBIAN/control"
dpkg-deb --root-owner-group -Zxz -b "$work/upgrade" "$ROOT/root/pnr/upgrade.deb" >/dev/null
check_root "upgrade to ${version}+pkgtest1" "dpkg -i /root/pnr/upgrade.deb && [ \"\$(dpkg-query -W -f='\${Version}' routeros)\" = ${version}+pkgtest1 ]"
check "  config kept" test "$edited" == "$(cat "$ROOT/opt/routeros/config/routeros.toml")"
check_root "  the admin's choice kept: units still enabled" 'systemctl is-enabled routeros-watchdog.service routeros-web.service'
check_root "remove" 'dpkg -r routeros
  dpkg-query -W -f="\${Status}" routeros | grep -qx "deinstall ok config-files"
  [ ! -e /usr/bin/routeros-watchdog ] && [ ! -e /opt/routeros/scripts ] && [ ! -e /usr/lib/systemd/system/routeros-web.service ]'
check "  config kept" test "$edited" == "$(cat "$ROOT/opt/routeros/config/routeros.toml")"
check_root "  users and logrotate conffile kept" 'getent passwd routeros-web >/dev/null && [ -f /etc/logrotate.d/routeros ]'
check_root "install after remove; the admin's choice kept: units enabled" "dpkg -i $PKGFILE && systemctl is-enabled routeros-watchdog.service routeros-web.service"
check "  config kept" test "$edited" == "$(cat "$ROOT/opt/routeros/config/routeros.toml")"
check_root "what the daemons write (history, state, log)" 'mkdir -p /opt/routeros/config/history /var/lib/routeros /var/lib/routeros-web
  echo x >/opt/routeros/config/history/1.toml; echo x >/var/lib/routeros/plan.txt; echo x >/var/log/routeros.log; echo x >/var/log/routeros.log.1
  chown routeros-web: /var/lib/routeros-web; echo x >/var/lib/routeros-web/users.json'
check_root "purge" 'dpkg -P routeros; ! dpkg-query -W routeros 2>/dev/null | grep -q .
  [ ! -e /opt/routeros ]; [ ! -e /var/lib/routeros ]; [ ! -e /var/lib/routeros-web ]; [ ! -e /var/log/routeros.log ]
  if getent passwd routeros-web || getent group routeros || getent group routeros-web; then exit 1; fi
  [ ! -e /etc/logrotate.d/routeros ] && ! ls /etc/systemd/system/*/routeros-* 2>/dev/null'
mv "$ROOT/root/pnr/upgrade.deb" "$work/upgrade.deb"
same_snapshot "purge leaves nothing behind (every file as before the install, unit links included)" "$pristine" "$(snapshot content)"

# ---------------------------------------------------------------------------------------
step "setup.sh: --help, bad flags"
chmod o+rx "$ROOT/root" "$ROOT/root/pnr"   # for the not-root check below
# The test machine has no network: its "distribution" is a local repository holding conntrack
# and dnsmasq-base, which are taken away, so that setup.sh has dependencies to install (and to
# purge on failure). dnsmasq-base's user stays (its purge keeps it), as on any machine that had it.
mkdir -p "$ROOT/srv/repo"
(cd "$ROOT/srv/repo" && dpkg-scanpackages -m . >Packages 2>/dev/null)
mv "$ROOT/etc/apt/sources.list" "$work/sources.list.orig"
echo "deb [trusted=yes] file:/srv/repo ./" >"$ROOT/etc/apt/sources.list.d/pkgtest.list"
check_root "dependencies to install: conntrack and dnsmasq-base removed, offered by the local repository" '
  dpkg -P conntrack dnsmasq-base >/dev/null; ls /srv/repo/conntrack_*.deb /srv/repo/dnsmasq-base_*.deb >/dev/null'
check_root "--help" 'h=$(/root/pnr/setup.sh --help); for s in --wanN-interface "wan3 needs wan2" --lan-network --dry-run; do grep -qF -- "$s" <<<"$h"; done'

# refused NAME EXPECTED-MESSAGE ARGS...: exit status 2, the message, nothing changed on disk.
# The "before" snapshot is the previous call's "after" (nothing else runs in between).
REFUSED_BEFORE=""
refused() {
  local name=$1 expect=$2; shift 2
  local before after out rc=0
  before=${REFUSED_BEFORE:-$(snapshot strict)}
  out=$(in_root "${PRE:-true}; /root/pnr/setup.sh $*" 2>&1) || rc=$?
  after=$(snapshot strict)
  REFUSED_BEFORE=$after
  if (( rc != 2 )); then fail "refused: $name (exit $rc, not 2)" "$out"; return; fi
  if ! grep -qF -- "$expect" <<<"$out"; then fail "refused: $name (no '$expect')" "$out"; return; fi
  if [[ $before != "$after" ]]; then fail "refused: $name (files changed)" "$(diff <(echo "$before") <(echo "$after") | head)"; return; fi
  pass "refused: $name: $(grep -F -- "$expect" <<<"$out" | head -1)"
}
seed() { echo "$SEED_FLAGS"; }
refused "missing interface" "--wan2-interface: there is no network interface 'nosuch0'" "$(seed | sed 's/--wan2-interface eth1/--wan2-interface nosuch0/')"
refused "same interface twice" "--wan2-interface: eth0 is already --wan1-interface" "$(seed | sed 's/--wan2-interface eth1/--wan2-interface eth0/')"
refused "LAN port is a WAN port" "--lan-interface: eth1 is already --wan2-interface" "$(seed | sed 's/--lan-interface eth2/--lan-interface eth1/')"
refused "bad CIDR (prefix)" "--lan-network: '192.168.1.0/33' is not an IPv4 network" "$(seed | sed 's|192.168.1.0/24|192.168.1.0/33|')"
refused "bad CIDR (address)" "--lan-network: '192.168.1.300/24' is not an IPv4 network" "$(seed | sed 's|192.168.1.0/24|192.168.1.300/24|')"
refused "bad CIDR (no prefix)" "--lan-network: '192.168.1.0' is not an IPv4 network" "$(seed | sed 's|192.168.1.0/24|192.168.1.0|')"
refused "CIDR with host bits" "--lan-network: 192.168.1.5/24 has host bits set" "$(seed | sed 's|192.168.1.0/24|192.168.1.5/24|')"
refused "bad gateway" "--wan1-gateway: '192.0.2.256' is not a usable IPv4 address" "$(seed | sed 's/192.0.2.1 /192.0.2.256 /')"
refused "gateway inside the LAN" "--wan2-gateway: 192.168.1.9 is inside the LAN" "$(seed | sed 's/198.51.100.1 /192.168.1.9 /')"
refused "gateway not an address" "--wan2-gateway: 'isp.example' is not a usable IPv4 address" "$(seed | sed 's/198.51.100.1 /isp.example /')"
refused "multicast gateway" "--wan1-gateway: '224.0.0.1' is not a usable IPv4 address" "$(seed | sed 's/192.0.2.1 /224.0.0.1 /')"
refused "flag without a value" "--lan-network needs a value" "$(seed) --lan-network"
refused "bad weight" "--wan2-weight: '0' is not a number from 1 to 255" "$(seed) --wan2-weight 0"
refused "missing --lan-network" "--lan-network is required" "$(seed | sed 's|--lan-network 192.168.1.0/24||')"
refused "wan3 flags without --wan3-interface" "without --wan3-interface" "$(seed) --wan3-gateway 10.3.0.1"
refused "unknown flag" "unknown argument '--wan4-interface'" "$(seed) --wan4-interface eth3"
refused "several problems at once" "3 problem(s)" "$(seed | sed 's/eth1/eth0/; s|/24|/40|; s/192.0.2.1 /1.2.3 /')"
PRE='echo "ID=ubuntu
VERSION_ID=\"22.04\"
PRETTY_NAME=\"Ubuntu 22.04.4 LTS\"" >/run/os-release; mount --bind /run/os-release /etc/os-release' \
  refused "not Ubuntu 24.04 / Debian 12-13" "this is Ubuntu 22.04.4 LTS; setup.sh supports Ubuntu 24.04" "$(seed)"
refused "not root" "run it as root" "--help >/dev/null; setpriv --reuid=65534 --regid=65534 --clear-groups /root/pnr/setup.sh $(seed)"

# ---------------------------------------------------------------------------------------
step "setup.sh: --dry-run"
before=$(snapshot strict)
out=$(in_root "/root/pnr/setup.sh --dry-run $SEED_FLAGS" 2>&1) && rc=0 || rc=$?
printf '%s\n' "$out" | sed -n '1,12p' | sed 's/^/  | /'
check "--dry-run exits 0" test "$rc" = 0
check "--dry-run shows config, netplan, packages and the dashboard" bash -c '
  for s in "name = \"eth0\"" "gateway = \"192.0.2.1\"" "name = \"eth1\"" "gateway = \"198.51.100.1\"" \
           "interface = \"eth2\"" "address = \"192.168.1.1/24\"" "\"eth2\":" "addresses: [\"192.168.1.1/24\"]" \
           "Would install routeros '"$version"'" "routeros-watchdog --check: configuration is valid" \
           "Would install from the distribution: conntrack dnsmasq-base" \
           "LAN services: routeros-dnsmasq (dnsmasq-base) answers DHCP ([lan.dhcp]) and DNS on eth2 at 192.168.1.1" \
           "http://192.168.1.1:8080"; do
    grep -qF -- "$s" <<<"$1" || { echo "missing: $s"; exit 1; }
  done' _ "$out"
same_snapshot "--dry-run changed nothing" "$before" "$(snapshot strict)"

# ---------------------------------------------------------------------------------------
step "setup.sh: a first run failing after any step undoes everything"
before=$(snapshot content)
# The last step (services) fails after enabling the units; sysctl after changing forwarding.
for fp in deps package config network sysctl services; do
  out=$(IN_ROOT_ENV=ROUTEROS_SETUP_FAILPOINT=$fp in_root "/root/pnr/setup.sh $SEED_FLAGS" 2>&1) && rc=0 || rc=$?
  check "failing after '$fp': exits 1 and says so" bash -c '[ "$1" = 1 ] && grep -q "failing after step .$3." <<<"$2" && grep -q "Undoing this run" <<<"$2" && grep -q "the machine is as it was before" <<<"$2"' _ "$rc" "$out" "$fp"
  [[ $fp == services ]] && printf '%s\n' "$out" | sed -n '/Undoing/,$p' | sed 's/^/  | /'
  same_snapshot "  every file as before (package, conntrack, dnsmasq-base purged, config, netplan, unit links gone)" "$before" "$(snapshot content)"
  check "  the dependencies it installed were purged again" bash -c '
    grep -q "purge the distribution packages installed by this run: conntrack dnsmasq-base" <<<"$1"' _ "$out"
  check_root "  LAN address and forwarding as before" '! ip -o addr show dev eth2 | grep -q 192.168.1.1; [ "$(sysctl -n net.ipv4.ip_forward)" = 0 ]'
done

# ---------------------------------------------------------------------------------------
step "setup.sh: the real run with the seed's flags"
out=$(in_root "/root/pnr/setup.sh $SEED_FLAGS" 2>&1) && rc=0 || rc=$?
printf '%s\n' "$out" | sed 's/^/  | /'
check "setup.sh exits 0" test "$rc" = 0
check "tells the dashboard address and that systemd is not running (not the package's hint)" bash -c '
  grep -q "Dashboard: http://192.168.1.1:8080" <<<"$1" && grep -q "systemd is not running" <<<"$1" &&
  ! grep -q "not enabled or started" <<<"$1"' _ "$out"
# expect_config JSON: the config parsed as TOML must have these WANs and LAN (and be valid).
expect_config() {
  in_root "routeros-watchdog --check --config /opt/routeros/config/routeros.toml >/dev/null && python3 - '$1' <<'EOF'
import json, sys, tomllib
want = json.loads(sys.argv[1])
cfg = tomllib.load(open('/opt/routeros/config/routeros.toml', 'rb'))
got = {'wans': [{k: w.get(k) for k in ('name', 'gateway', 'weight', 'dns')} for w in cfg['wan_interfaces']],
       'lan': {k: cfg['lan'].get(k) for k in ('interface', 'address')}}
for k, v in want.get('keep', {}).items():
    section, key = k.split('.')
    if cfg.get(section, {}).get(key) != v:
        sys.exit(f'{k} is {cfg.get(section, {}).get(key)!r}, expected {v!r}')
want.pop('keep', None)
if got != want:
    sys.exit(f'config is {got}\nexpected  {want}')
EOF"
}
check "config matches the flags" expect_config '{"wans": [
  {"name": "eth0", "gateway": "192.0.2.1", "weight": 2, "dns": ["8.8.8.8", "8.8.4.4"]},
  {"name": "eth1", "gateway": "198.51.100.1", "weight": 1, "dns": ["1.1.1.1", "1.0.0.1"]}],
  "lan": {"interface": "eth2", "address": "192.168.1.1/24"},
  "keep": {"logging.max_size": "10MB", "health_check.target_host": "1.1.1.1"}}'
check_root "netplan for the LAN port" '
  [ "$(stat -c %a /etc/netplan/60-routeros-lan.yaml)" = 600 ]
  python3 -c "
import yaml
d = yaml.safe_load(open(\"/etc/netplan/60-routeros-lan.yaml\"))[\"network\"][\"ethernets\"][\"eth2\"]
assert d[\"addresses\"] == [\"192.168.1.1/24\"] and d[\"dhcp4\"] is False, d"
  netplan generate'
check_root "LAN address set, forwarding on" 'ip -o addr show dev eth2 | grep -q "inet 192.168.1.1/24"; [ "$(sysctl -n net.ipv4.ip_forward)" = 1 ]'
check_root "package and the missing dependencies installed, the three units enabled by setup.sh" '
  for p in routeros conntrack dnsmasq-base; do dpkg-query -W -f="\${Status}" $p | grep -qx "install ok installed"; done
  systemctl is-enabled routeros-watchdog.service routeros-web.service routeros-dnsmasq.service'

step "the daemon and the web server, started as their units start them"
check_root "dnsmasq-fallback (before the daemon ever ran): a LAN config from [lan] that dnsmasq accepts" '
  [ ! -e /var/lib/routeros/dnsmasq.conf ]
  /usr/lib/routeros/dnsmasq-fallback
  c=/var/lib/routeros/dnsmasq.conf; cat $c
  grep -q "^# Fallback written by dnsmasq-fallback" $c; grep -qx "interface=eth2" $c
  grep -qx "dhcp-range=192.168.1.100,192.168.1.200,255.255.255.0,43200" $c
  dnsmasq --test --conf-file=$c
  rm $c'
check_root "daemon up; control socket root:routeros 0660; routeros-web (and only it) may use it" '
  unit() { sed -n "s/^$2=//p" /usr/lib/systemd/system/$1.service; }
  mkdir -p /run/routeros /var/lib/routeros
  $(unit routeros-watchdog ExecStartPre)
  $(unit routeros-watchdog ExecStart) >/tmp/watchdog.log 2>&1 &
  for i in $(seq 50); do [ -S /run/routeros/control.sock ] && break; sleep 0.2; done
  [ -S /run/routeros/control.sock ] || { cat /tmp/watchdog.log; exit 1; }
  # bind() makes the socket, then the daemon gives it to the group and sets the mode: wait for that.
  for i in $(seq 25); do [ "$(stat -c "%U:%G %a" /run/routeros/control.sock)" = "root:routeros 660" ] && break; sleep 0.2; done
  stat -c "%U:%G %a" /run/routeros/control.sock | grep -x "root:routeros 660"
  # The socket exists from bind(); the answer and dnsmasq.conf come with the first apply.
  for i in $(seq 50); do routeros-kill-switch --status >/tmp/status 2>&1 && break; sleep 0.2; done
  cat /tmp/status; grep -q eth0 /tmp/status; grep -q eth1 /tmp/status
  # The LAN dnsmasq config, rendered from [lan] at the first apply.
  c=/var/lib/routeros/dnsmasq.conf
  for i in $(seq 50); do [ -s $c ] && break; sleep 0.2; done
  grep -q "^# Generated by routeros-watchdog" $c; grep -qx "interface=eth2" $c; grep -qx bind-dynamic $c
  grep -qx "dhcp-option=option:router,192.168.1.1" $c; dnsmasq --test --conf-file=$c 2>/dev/null
  setpriv --reuid=routeros-web --regid=routeros-web --init-groups routeros-kill-switch --status >/dev/null
  if setpriv --reuid=nobody --regid=nogroup --clear-groups routeros-kill-switch --status >/dev/null 2>&1; then echo "nobody may use the socket"; exit 1; fi
  /opt/routeros/scripts/status.sh >/tmp/status.sh.out 2>&1; grep -q "WAN lines" /tmp/status.sh.out
  install -d -o routeros-web -g routeros-web -m 0750 /var/lib/routeros-web
  setpriv --reuid=routeros-web --regid=routeros-web --init-groups --inh-caps=-all --bounding-set=-all \
    $(unit routeros-web ExecStart) >/tmp/web.log 2>&1 &
  python3 - <<EOF || { cat /tmp/web.log; exit 1; }
import json, time, urllib.request
for _ in range(50):
    try:
        page = urllib.request.urlopen("http://127.0.0.1:8080/", timeout=2)
        break
    except OSError:
        time.sleep(0.2)
assert page.status == 200
setup = json.load(urllib.request.urlopen("http://127.0.0.1:8081/api/v1/setup", timeout=2))
assert "eth2" in setup["interfaces"], setup
EOF'

# ---------------------------------------------------------------------------------------
step "setup.sh: re-run with other flags"
check_root "user adds a policy and tunes health checks" "
  sed -i 's/^check_interval = 5 /check_interval = 2 /' /opt/routeros/config/routeros.toml
  printf '\n[[policies]]\nname = \"console\"\nsrc = \"192.168.1.50\"\nvia = [\"eth0\"]\n' >>/opt/routeros/config/routeros.toml
  routeros-watchdog --check --config /opt/routeros/config/routeros.toml"
previous=$(cat "$ROOT/opt/routeros/config/routeros.toml")
RERUN_FLAGS="--wan1-interface eth0 --wan1-gateway 192.0.2.1 --wan1-weight 3 --wan2-interface eth1 --wan2-dns none --wan3-interface eth3 --wan3-gateway 203.0.113.1 --lan-interface eth2 --lan-network 10.10.0.0/24"
out=$(in_root "/root/pnr/setup.sh $RERUN_FLAGS" 2>&1) && rc=0 || rc=$?
printf '%s\n' "$out" | sed 's/^/  | /' | tail -12
check "re-run exits 0, keeps the installed package" bash -c '[ "$1" = 0 ] && grep -q "is installed; keeping it" <<<"$2"' _ "$rc" "$out"
check "config updated: three WANs, new LAN; the policy and check_interval kept" expect_config '{"wans": [
  {"name": "eth0", "gateway": "192.0.2.1", "weight": 3, "dns": ["8.8.8.8", "8.8.4.4"]},
  {"name": "eth1", "gateway": null, "weight": 1, "dns": []},
  {"name": "eth3", "gateway": "203.0.113.1", "weight": 1, "dns": ["9.9.9.9", "149.112.112.112"]}],
  "lan": {"interface": "eth2", "address": "10.10.0.1/24"},
  "keep": {"health_check.check_interval": 2, "logging.max_size": "10MB"}}'
check_root "  the policy is still there" 'grep -q "^name = \"console\"" /opt/routeros/config/routeros.toml'
check_root "  LAN address moved, netplan updated" '
  ip -o addr show dev eth2 | grep -q "inet 10.10.0.1/24"; ! ip -o addr show dev eth2 | grep -q 192.168.1.1
  grep -q "10.10.0.1/24" /etc/netplan/60-routeros-lan.yaml'
check "  previous config saved in /var/backups/routeros-setup/" bash -c '
  f=$(ls -d "$1"/var/backups/routeros-setup/*/opt/routeros/config/routeros.toml | tail -1); [ "$(cat "$f")" = "$2" ]' _ "$ROOT" "$previous"

step "setup.sh: failing re-runs leave the set-up as it was"
before=$(snapshot content)
out=$(IN_ROOT_ENV=ROUTEROS_SETUP_FAILPOINT=services in_root "/root/pnr/setup.sh $SEED_FLAGS" 2>&1) && rc=0 || rc=$?
check "failing re-run exits 1 and undoes" bash -c '[ "$1" = 1 ] && grep -q "failing after step .services." <<<"$2" && grep -q "the machine is as it was before" <<<"$2"' _ "$rc" "$out"
printf '%s\n' "$out" | sed -n '/Undoing/,$p' | sed 's/^/  | /'
same_snapshot "  config and netplan restored byte for byte" "$before" "$(snapshot content)"
check_root "  LAN address restored" 'ip -o addr show dev eth2 | grep -q "inet 10.10.0.1/24"; ! ip -o addr show dev eth2 | grep -q 192.168.1.1'
REFUSED_BEFORE=""   # much has changed since the refusals above
# The user's policy sends traffic via eth0: a set-up without eth0 is refused by --check.
refused "a config the daemon refuses (policy via a WAN no longer there)" "pass --reset-config" \
  "--wan1-interface eth3 --wan2-interface eth1 --lan-interface eth2 --lan-network 10.10.0.0/24"

step "purge after setup.sh"
check_root "purge removes the config, the LAN netplan file, setup.sh's backups and the unit links it made" 'dpkg -P routeros >/dev/null
  [ ! -e /opt/routeros ]; [ ! -e /etc/netplan/60-routeros-lan.yaml ]; [ ! -e /var/backups/routeros-setup ]
  ! ls -l /etc/systemd/system/*/routeros-* 2>/dev/null'

# ---------------------------------------------------------------------------------------
# The same root booted with systemd as PID 1 (systemd-nspawn, in its own network namespace
# with eth0..eth2): setup.sh's real run with netplan apply, and the services started by
# systemd under their hardened units.
step "booted machine: systemd as PID 1 (systemd-nspawn)"
mkdir -p "$BOOT_ROOT"
tar -C "$BOOT_ROOT" --zstd -xf "$cache"
mkdir -p "$BOOT_ROOT/root/pnr/target/debian"
cp setup.sh "$BOOT_ROOT/root/pnr/"
cp "$DEB" "$BOOT_ROOT/root/pnr/target/debian/"
cp "$work/upgrade.deb" "$BOOT_ROOT/root/pnr/upgrade.deb"
# Its ports: veth pairs made here and moved in by systemd-nspawn (its own network namespace
# then has a matching /sys/class/net); the peers act as the ISPs and the LAN.
# Their own peer namespace (same addresses as the first machine's ISPs); deleting it at the end
# deletes the pairs too.
BOOT_WAN1=pkbwan1 BOOT_WAN2=pkbwan2 BOOT_WAN3=pkbwan3 BOOT_LAN=pkblan0
ip netns add "$BOOT_PEER"
i=0
for port in $BOOT_WAN1 $BOOT_WAN2 $BOOT_WAN3 $BOOT_LAN; do
  ip link del "$port" 2>/dev/null || true
  ip link add "$port" type veth peer name "pb$i" netns "$BOOT_PEER"
  ip -n "$BOOT_PEER" link set "pb$i" up
  i=$((i + 1))
done
ip -n "$BOOT_PEER" addr add 192.0.2.1/24 dev pb0
ip -n "$BOOT_PEER" addr add 198.51.100.1/24 dev pb1
# The health checks' target (1.1.1.1) answers from the ISPs' side, so both WANs are live and
# the daemon gives dnsmasq their DNS servers: the ISPs' own, a dnsmasq that knows one name.
ip -n "$BOOT_PEER" link set lo up
ip -n "$BOOT_PEER" addr add 1.1.1.1/32 dev lo
ip netns exec "$BOOT_PEER" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
  --bind-interfaces --listen-address=192.0.2.1 --listen-address=198.51.100.1 \
  --address=/isp.example/203.0.113.53 --pid-file="$work/isp-dns.pid" >"$work/isp-dns.log" 2>&1 &
ISP_DNS_PID=$!
# The LAN client: the LAN port's peer in a namespace of its own (dhclient, dig).
ip netns add "$BOOT_LANC"
ip -n "$BOOT_PEER" link set pb3 netns "$BOOT_LANC"
ip -n "$BOOT_LANC" link set lo up
ip -n "$BOOT_LANC" link set pb3 up
# With /sys read-only in its own mount namespace, systemd-nspawn does not wait for udev (which
# does not run here) to initialize the ports.
unshare --mount --propagation private /bin/sh -c 'mount -o remount,bind,ro /sys && exec "$@"' _ \
  systemd-nspawn --quiet --register=no --keep-unit --console=passive -D "$BOOT_ROOT" --boot \
  --network-interface=$BOOT_WAN1 --network-interface=$BOOT_WAN2 --network-interface=$BOOT_WAN3 \
  --network-interface=$BOOT_LAN >"$work/boot.log" 2>&1 &
NSPAWN_PID=$!
# The machine's PID 1: the descendant of systemd-nspawn that is PID 1 in its own namespace.
find_pid1() {
  local level=$NSPAWN_PID p next
  for _ in 1 2 3 4; do
    next=""
    for p in $level; do
      if [[ $p != "$NSPAWN_PID" ]] && grep -qE '^NSpid:[[:space:]]+[0-9]+[[:space:]]+1$' "/proc/$p/status" 2>/dev/null; then
        echo "$p"; return 0
      fi
      next+=" $(ps -o pid= --ppid "$p" | xargs)"
    done
    level=$next
  done
  return 1
}
for _ in $(seq 150); do
  BOOT_PID1=$(find_pid1) && break
  kill -0 "$NSPAWN_PID" 2>/dev/null || break
  sleep 0.2
done
# in_boot 'COMMANDS': a root shell (errexit) in the booted machine. Extra environment: IN_BOOT_ENV.
# active/inactive UNIT...: every unit is (not) active (systemctl is-active is true if any is).
BOOT_HELPERS='active() { local u rc=0; for u; do echo "$u: $(systemctl is-active $u)"; systemctl is-active --quiet $u || rc=1; done; return $rc; }
inactive() { local u rc=0; for u; do echo "$u: $(systemctl is-active $u)"; ! systemctl is-active --quiet $u || rc=1; done; return $rc; }'

in_boot() {
  # shellcheck disable=SC2086
  nsenter --target "$BOOT_PID1" --mount --uts --ipc --net --pid --root --wd \
    /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    BOOT_WAN1=$BOOT_WAN1 BOOT_WAN2=$BOOT_WAN2 BOOT_WAN3=$BOOT_WAN3 BOOT_LAN=$BOOT_LAN ${IN_BOOT_ENV:-} /bin/bash -e -c "$BOOT_HELPERS
$1"
}
check_boot() { local out; if out=$(in_boot "$2" 2>&1); then pass "$1"; else fail "$1" "$out"; fi; }

# lan_dhcp: the LAN client asks for an address (dhclient, one try, 30 s at most) and keeps it;
# prints what it got (dhclient's new_* variables). dhclient passes its script none of our
# environment (the script writes to a fixed path); it stays in the foreground and is stopped
# once the lease is there.
lan_dhcp() {
  local out=$work/lan.lease i ip mask
  printf '#!/bin/sh\ncase $reason in BOUND|RENEW|REBIND|REBOOT) env | grep "^new_" | sort >%s.tmp; mv %s.tmp %s ;; esac\nexit 0\n' \
    "$out" "$out" "$out" >"$work/dhclient-script"
  chmod 755 "$work/dhclient-script"
  printf 'send host-name "pnr-lan-client";\n' >"$work/dhclient.conf"
  rm -f "$out" "$work/dhclient.leases"
  ip -n "$BOOT_LANC" addr flush dev pb3
  ip netns exec "$BOOT_LANC" dhclient -d -1 -v -cf "$work/dhclient.conf" -sf "$work/dhclient-script" \
    -lf "$work/dhclient.leases" -pf "$work/dhclient.pid" pb3 >"$work/dhclient.log" 2>&1 &
  DHCLIENT_PID=$!
  for (( i = 0; i < 60; i++ )); do [[ -s $out ]] && break; kill -0 "$DHCLIENT_PID" 2>/dev/null || break; sleep 0.5; done
  kill "$DHCLIENT_PID" 2>/dev/null || true
  wait "$DHCLIENT_PID" 2>/dev/null || true
  DHCLIENT_PID=""
  [[ -s $out ]] || { tail -15 "$work/dhclient.log"; return 1; }
  cat "$out"
  ip=$(sed -n 's/^new_ip_address=//p' "$out"); mask=$(sed -n 's/^new_subnet_mask=//p' "$out")
  ip -n "$BOOT_LANC" addr add "$ip/$mask" dev pb3
}
# lan_dig ARGS: dig from the LAN client; boot_dig ARGS: dig in the router's network namespace.
lan_dig() { ip netns exec "$BOOT_LANC" dig +time=2 +tries=3 "$@"; }
boot_dig() { nsenter --target "$BOOT_PID1" --net dig +time=2 +tries=3 "$@"; }
# check_fn NAME FUNCTION ARGS...: a check run by a function of this script (in a subshell).
check_fn() { local name=$1 out; shift; if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$out"; fi; }

if [[ -z $BOOT_PID1 ]]; then
  fail "the machine boots" "$(tail -30 "$work/boot.log")"
else
  check_boot "the machine boots (systemd is PID 1)" '
    for i in $(seq 100); do [ -S /run/systemd/private ] && break; sleep 0.2; done
    state=$(timeout 60 systemctl is-system-running --wait); echo "system: $state"
    [ "$(cat /proc/1/comm)" = systemd ]
    case $state in running|degraded) ;; *) exit 1 ;; esac'
  in_boot 'systemctl --failed --no-legend --plain | sed "s/^/  (failed at boot, not ours: /; s/$/)/"' || true
  # The WAN ports' addresses, as their ISPs' DHCP would give them.
  in_boot "ip link set $BOOT_WAN1 up; ip link set $BOOT_WAN2 up; ip link set $BOOT_WAN3 up
    ip addr add 192.0.2.2/24 dev $BOOT_WAN1; ip addr add 198.51.100.2/24 dev $BOOT_WAN2"
  BOOT_FLAGS="--wan1-interface $BOOT_WAN1 --wan1-gateway 192.0.2.1 --wan1-dns 192.0.2.1 --wan2-interface $BOOT_WAN2 --wan2-gateway 198.51.100.1 --wan2-dns 198.51.100.1 --lan-interface $BOOT_LAN --lan-network 192.168.1.0/24"
  BOOT_RERUN_FLAGS="--wan1-interface $BOOT_WAN1 --wan1-gateway 192.0.2.1 --wan1-weight 3 --wan2-interface $BOOT_WAN2 --wan3-interface $BOOT_WAN3 --lan-interface $BOOT_LAN --lan-network 10.10.0.0/24"

  # The policy on a running system: the default config names eth0..eth2, and this box could be
  # anyone's; installing, reinstalling or upgrading the package alone must start nothing and
  # leave routes, rules and nftables as they were.
  check_boot "dpkg -i on a running system: nothing enabled or started; routes, rules, nftables, sysctl untouched" '
    ip route add default via 192.0.2.1 dev $BOOT_WAN1   # the owner'"'"'s own default route
    # IPv4 routes (the ports just came up: their IPv6 link-local routes may still appear), rules of
    # both families, the whole nftables ruleset.
    # And the kernel settings of 60-routeros.conf: applied by setup.sh (or at boot), not by dpkg.
    snap() { ip -4 route show table all; ip -4 rule show; ip -6 rule show; nft list ruleset
      sysctl net.ipv4.ip_forward net.ipv4.conf.all.rp_filter net.ipv4.fib_multipath_hash_policy; }
    snap >/tmp/net.before
    dpkg -i /root/pnr/target/debian/routeros_*.deb >/tmp/dpkg.out 2>&1 || { cat /tmp/dpkg.out; exit 1; }
    grep -q "not enabled or started" /tmp/dpkg.out
    dpkg -i /root/pnr/target/debian/routeros_*.deb >/dev/null 2>&1   # reinstall: postinst try-restart
    dpkg -i /root/pnr/upgrade.deb >/dev/null 2>&1                    # upgrade: the same
    sleep 2
    inactive routeros-watchdog routeros-web routeros-dnsmasq
    for u in routeros-watchdog routeros-web routeros-dnsmasq; do [ "$(systemctl is-enabled $u)" = disabled ]; done
    snap | diff /tmp/net.before -
    # Without dnsmasq (it is only recommended) the unit is skipped, not failed.
    mv /usr/sbin/dnsmasq /usr/sbin/dnsmasq.away
    systemctl start routeros-dnsmasq; r=$(systemctl show -p ConditionResult --value routeros-dnsmasq)
    mv /usr/sbin/dnsmasq.away /usr/sbin/dnsmasq
    echo "without /usr/sbin/dnsmasq: ConditionResult=$r, $(systemctl is-active routeros-dnsmasq)"
    [ "$r" = no ]; inactive routeros-dnsmasq; ! systemctl is-failed --quiet routeros-dnsmasq
    dpkg -P routeros >/dev/null 2>&1
    ip route del default via 192.0.2.1 dev $BOOT_WAN1'

  out=$(in_boot "/root/pnr/setup.sh --dry-run $BOOT_FLAGS" 2>&1) && rc=0 || rc=$?
  check "--dry-run on the booted machine: would apply netplan and start the services" bash -c '
    [ "$1" = 0 ] && grep -q "Would run netplan generate and have systemd-networkd configure" <<<"$2" && grep -q "and start (or reload) them" <<<"$2" || { echo "$2"; exit 1; }' _ "$rc" "$out"

  out=$(in_boot "/root/pnr/setup.sh $BOOT_FLAGS" 2>&1) && rc=0 || rc=$?
  printf '%s\n' "$out" | sed -n '/==> LAN port/,$p' | sed 's/^/  | /'
  check "setup.sh exits 0 with the services running" bash -c '
    [ "$1" = 0 ] && grep -q "routeros-watchdog.service: active" <<<"$2" && grep -q "routeros-web.service: active" <<<"$2" &&
    grep -q "routeros-dnsmasq.service: active" <<<"$2" &&
    grep -q "Dashboard: http://192.168.1.1:8080" <<<"$2"' _ "$rc" "$out"
  check_boot "  the WAN ports untouched (their addresses kept), the daemon routing rules in place" '
    ip -o addr show dev $BOOT_WAN1 | grep -q "inet 192.0.2.2/24"; ip -o addr show dev $BOOT_WAN2 | grep -q "inet 198.51.100.2/24"
    for i in $(seq 50); do ip rule show | grep -q "proto 201" && break; sleep 0.2; done
    ip rule show | grep "proto 201"; nft list table inet routeros >/dev/null'
  check_boot "netplan applied by systemd-networkd: 192.168.1.1/24 on the LAN port; forwarding on" '
    for i in $(seq 50); do ip -o addr show dev $BOOT_LAN | grep -q "inet 192.168.1.1/24" && break; sleep 0.2; done
    ip -o addr show dev $BOOT_LAN | grep -q "inet 192.168.1.1/24"
    networkctl list --no-legend $BOOT_LAN
    [ "$(sysctl -n net.ipv4.ip_forward)" = 1 ]'
  check_boot "routeros-dnsmasq: the daemon's config for the LAN port, on its address and lo's, beside systemd-resolved's 127.0.0.53" '
    active routeros-dnsmasq systemd-resolved
    c=/var/lib/routeros/dnsmasq.conf
    grep -q "^# Generated by routeros-watchdog" $c; grep -qx "interface=$BOOT_LAN" $c; grep -qx bind-dynamic $c
    for i in $(seq 50); do grep -q "^nameserver 192.0.2.1$" /var/lib/routeros/resolv.conf 2>/dev/null && break; sleep 0.2; done
    cat /var/lib/routeros/resolv.conf
    grep -qx "nameserver 192.0.2.1" /var/lib/routeros/resolv.conf
    ss -Hlnup "sport = :53" | tee /tmp/ss53
    grep "127.0.0.53" /tmp/ss53 | grep -q "systemd-resolve"
    grep "192.168.1.1" /tmp/ss53 | grep -q "dnsmasq"
    grep "127.0.0.1" /tmp/ss53 | grep -q "dnsmasq"
    if journalctl -u routeros-dnsmasq --no-pager | grep -Ei "failed|permission denied|address in use"; then exit 1; fi'
  resolved_and_dnsmasq() {
    local a
    a=$(boot_dig +short @127.0.0.53 localhost A); echo "127.0.0.53 localhost: $a"; [[ $a == 127.0.0.1 ]] || return 1
    boot_dig @127.0.0.1 nosuch.lan | grep "status:"
    boot_dig @127.0.0.1 nosuch.lan | grep -q "status: NXDOMAIN"
  }
  check_fn "  systemd-resolved's stub still answers (127.0.0.53), dnsmasq answers on 127.0.0.1" resolved_and_dnsmasq
  # lan_lease NET: the LAN client's lease is in NET.100-.200 (the default [lan.dhcp] range) with
  # NET.1 as gateway and DNS server, domain "lan".
  lan_lease() {
    local net=$1 lease ip
    lease=$(lan_dhcp) || { echo "$lease"; return 1; }
    echo "$lease"
    ip=$(sed -n "s/^new_ip_address=//p" <<<"$lease")
    [[ $ip == "$net".* ]] && (( ${ip##*.} >= 100 && ${ip##*.} <= 200 )) || return 1
    grep -qx "new_routers=$net.1" <<<"$lease" && grep -qx "new_domain_name_servers=$net.1" <<<"$lease" &&
      grep -qx "new_domain_name=lan" <<<"$lease" && grep -qx "new_subnet_mask=255.255.255.0" <<<"$lease"
  }
  check_fn "a LAN client (dhclient) gets an address of the [lan.dhcp] range (.100-.200), the router as gateway and DNS, domain lan" \
    lan_lease 192.168.1
  lan_dns() {
    local a ip
    ip=$(sed -n "s/^new_ip_address=//p" "$work/lan.lease" 2>/dev/null)
    a=$(lan_dig +short @192.168.1.1 pnr-lan-client.lan A); echo "pnr-lan-client.lan: $a (lease ${ip:-none})"
    [[ -n $ip && $a == "$ip" ]] || return 1
    lan_dig @192.168.1.1 nosuch.lan | grep -q "status: NXDOMAIN" || return 1
    a=$(lan_dig +short @192.168.1.1 isp.example A); echo "isp.example (the ISP's server): $a"
    [[ $a == 203.0.113.53 ]]
  }
  check_fn "  DNS at the router from the LAN: the client by its DHCP name (.lan), unknown .lan names NXDOMAIN, others from the live WANs' server" lan_dns
  check_boot "units as installed: web as routeros-web without capabilities, watchdog with NET_ADMIN+NET_RAW only" '
    pid() { systemctl show -p MainPID --value "$1"; }
    w=$(pid routeros-watchdog) u=$(pid routeros-web); [ "$w" -gt 0 ]; [ "$u" -gt 0 ]
    [ "$(ps -o user= -p "$u")" = routeros-web ]; [ "$(ps -o user= -p "$w")" = root ]
    grep -q "^CapEff:[[:space:]]*0000000000000000$" /proc/$u/status
    grep -q "^CapBnd:[[:space:]]*0000000000000000$" /proc/$u/status
    grep -q "^CapBnd:[[:space:]]*0000000000003000$" /proc/$w/status
    grep -qw "$(getent group routeros | cut -d: -f3)" <(grep ^Groups: /proc/$u/status)
    grep -q "^NoNewPrivs:[[:space:]]*1$" /proc/$u/status; grep -q "^Seccomp:[[:space:]]*2$" /proc/$u/status
    stat -c "%U:%G %a" /run/routeros/control.sock | grep -qx "root:routeros 660"
    stat -c "%U:%G %a" /var/lib/routeros-web | grep -qx "routeros-web:routeros-web 750"'
  check_boot "the daemon answers; the dashboard and API answer on the LAN address" '
    routeros-kill-switch --status | grep -q $BOOT_WAN1
    /opt/routeros/scripts/status.sh | grep -q "routeros-watchdog *active"
    python3 -c "
import json, time, urllib.request
for _ in range(50):
    try:
        page = urllib.request.urlopen(\"http://192.168.1.1:8080/\", timeout=2)
        break
    except OSError:
        time.sleep(0.2)
assert page.status == 200
setup = json.load(urllib.request.urlopen(\"http://192.168.1.1:8081/api/v1/setup\", timeout=2))
assert \"$BOOT_LAN\" in setup[\"interfaces\"], setup
"
    if journalctl -u routeros-web -u routeros-watchdog --no-pager | grep -i "permission denied"; then exit 1; fi'

  out=$(in_boot "/root/pnr/setup.sh $BOOT_RERUN_FLAGS" 2>&1) && rc=0 || rc=$?
  printf '%s\n' "$out" | sed -n '/==> Services/,$p' | sed 's/^/  | /'
  check "re-run with other flags reloads the running daemon" bash -c '
    [ "$1" = 0 ] && grep -q "systemctl reload routeros-watchdog.service" <<<"$2" || { echo "$2"; exit 1; }' _ "$rc" "$out"
  check_boot "  the daemon runs the new config (three WANs; LAN 10.10.0.1/24 by networkd)" '
    for i in $(seq 50); do
      routeros-kill-switch --status | grep -q $BOOT_WAN3 && ip -o addr show dev $BOOT_LAN | grep -q "inet 10.10.0.1/24" && break
      sleep 0.2
    done
    routeros-kill-switch --status | grep -q $BOOT_WAN3
    ip -o addr show dev $BOOT_LAN | grep -q "inet 10.10.0.1/24"
    if ip -o addr show dev $BOOT_LAN | grep 192.168.1.1; then exit 1; fi
    active routeros-watchdog routeros-web routeros-dnsmasq'
  lan_after_move() { lan_lease 10.10.0 && lan_dig @10.10.0.1 nosuch.lan | grep -q "status: NXDOMAIN"; }
  check_fn "  the daemon re-rendered dnsmasq.conf and restarted dnsmasq: the LAN client now gets 10.10.0.x, router 10.10.0.1" lan_after_move

  before=$(cat "$BOOT_ROOT/opt/routeros/config/routeros.toml")
  out=$(IN_BOOT_ENV=ROUTEROS_SETUP_FAILPOINT=services in_boot "/root/pnr/setup.sh $BOOT_FLAGS" 2>&1) && rc=0 || rc=$?
  printf '%s\n' "$out" | sed -n '/Undoing/,$p' | sed 's/^/  | /'
  check "a failing run on the booted machine is undone" bash -c '
    [ "$1" = 1 ] && grep -q "failing after step .services." <<<"$2" && grep -q "the machine is as it was before" <<<"$2" && [ "$3" = "$4" ]' \
    _ "$rc" "$out" "$before" "$(cat "$BOOT_ROOT/opt/routeros/config/routeros.toml")"
  check_boot "  back on the previous set-up, services running" '
    for i in $(seq 50); do
      ip -o addr show dev $BOOT_LAN | grep -q "inet 10.10.0.1/24" && ! ip -o addr show dev $BOOT_LAN | grep -q 192.168.1.1 && break
      sleep 0.2
    done
    ip -o addr show dev $BOOT_LAN | grep -q "inet 10.10.0.1/24"
    if ip -o addr show dev $BOOT_LAN | grep 192.168.1.1; then exit 1; fi
    active routeros-watchdog routeros-web routeros-dnsmasq
    routeros-kill-switch --status | grep -q $BOOT_WAN3'

  check_boot "an upgrade restarts the running services and keeps the config" '
    pid() { systemctl show -p MainPID --value "$1"; }
    w=$(pid routeros-watchdog) u=$(pid routeros-web) d=$(pid routeros-dnsmasq); conf=$(md5sum </opt/routeros/config/routeros.toml)
    dpkg -i /root/pnr/upgrade.deb >/dev/null 2>&1
    for i in $(seq 50); do active routeros-watchdog routeros-web routeros-dnsmasq >/dev/null 2>&1 && break; sleep 0.2; done
    active routeros-watchdog routeros-web routeros-dnsmasq
    echo "main PIDs $w $u $d -> $(pid routeros-watchdog) $(pid routeros-web) $(pid routeros-dnsmasq)"
    [ "$(pid routeros-watchdog)" != "$w" ]; [ "$(pid routeros-web)" != "$u" ]; [ "$(pid routeros-dnsmasq)" != "$d" ]
    [ "$(md5sum </opt/routeros/config/routeros.toml)" = "$conf" ]
    dpkg-query -W -f="\${Version}" routeros | grep -q pkgtest1'
  check_boot "remove stops the services and keeps the config; purge removes everything" '
    dpkg -r routeros >/dev/null 2>&1
    inactive routeros-watchdog routeros-web routeros-dnsmasq
    [ -f /opt/routeros/config/routeros.toml ]
    dpkg -P routeros >/dev/null 2>&1
    [ ! -e /opt/routeros ]; [ ! -e /var/lib/routeros-web ]; [ ! -e /etc/netplan/60-routeros-lan.yaml ]; [ -d /opt ]
    if getent passwd routeros-web; then exit 1; fi
    if ls -l /etc/systemd/system/*/routeros-* 2>/dev/null; then exit 1; fi'
  stop_boot
fi

# ---------------------------------------------------------------------------------------
step "summary"
if (( FAIL )); then
  printf 'failed: %s\n' "${FAILED[@]}"
fi
echo "package tests took $((SECONDS - started)) s"
echo "$PASS passed, $FAIL failed"
(( FAIL == 0 ))
