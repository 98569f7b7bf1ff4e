#!/usr/bin/env bash
# Phoenix Nexus Router: install the `routeros` package on an existing Ubuntu 24.04 or
# Debian 12/13 machine and configure it from the command line. `./setup.sh --help` for usage.
#
# Test hook (ci/test-package.sh only): ROUTEROS_SETUP_FAILPOINT=STEP makes the real run fail
# right after STEP (deps, package, config, network, sysctl, services) to prove that every
# change of the run is undone.
set -Eeuo pipefail
umask 022
export LC_ALL=C

PROG=setup.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONFIG=/opt/routeros/config/routeros.toml
NETPLAN_FILE=/etc/netplan/60-routeros-lan.yaml
NETPLAN_MARK="# Written by Phoenix Nexus Router setup.sh"
SYSCTL_FILE=/usr/lib/sysctl.d/60-routeros.conf
BACKUP_ROOT=/var/backups/routeros-setup
UNITS=(routeros-watchdog.service routeros-web.service routeros-dnsmasq.service)
# dnsmasq-base: the LAN's DHCP/DNS server for routeros-dnsmasq.service (the binary only, not
# Debian's dnsmasq package and its service); python3: that unit's fallback config writer.
DEPS=(nftables iproute2 conntrack netplan.io dnsmasq-base python3 ppp)
PKG=routeros

usage() {
  cat <<'EOF'
Phoenix Nexus Router setup: installs the routeros package and makes this machine a
multi-WAN router. Runs on Ubuntu 24.04, Debian 12 or Debian 13, as root.

  sudo ./setup.sh --wan1-interface eth0 --wan1-gateway 192.168.100.1 \
                  --wan2-interface eth1 --wan2-gateway 192.168.200.1 \
                  --lan-interface eth2 --lan-network 192.168.1.0/24

WAN lines (N is 1, 2 or 3; wan1 is required, wan3 needs wan2):
  --wanN-interface IF       the port of ISP line N
  --wanN-gateway IP|dhcp    its next hop (default dhcp: learned from the port's DHCP route)
  --wanN-weight W           its share of new connections, 1-255 (default: wan1 2, others 1)
  --wanN-dns IP[,IP]|none   its DNS servers (default: wan1 8.8.8.8,8.8.4.4;
                            wan2 1.1.1.1,1.0.0.1; wan3 9.9.9.9,149.112.112.112)
LAN:
  --lan-interface IF        the LAN port
  --lan-network CIDR        the LAN, e.g. 192.168.1.0/24 (prefix /8 to /30)
  --lan-address IP          the router's address in it (default: the first, e.g. 192.168.1.1)
Options:
  --package FILE.deb        the package to install (default: the newest routeros_*.deb beside
                            this script or in its target/debian/; none if already installed)
  --reset-config            start from the default configuration, not the current one
  --no-start                configure everything, but do not start or reload the services
  --dry-run                 check everything, print what would be done, change nothing
  -h, --help                this text

What a run does, in order: checks the flags, the system and the interfaces (nothing is
changed before every check has passed); installs what is missing of nftables, iproute2,
conntrack, netplan.io, dnsmasq-base and python3 from the distribution, then the package; writes
/opt/routeros/config/routeros.toml (in an existing file only [[wan_interfaces]] and the
[lan] interface and address are replaced, everything else is kept) and checks it with
`routeros-watchdog --check`; writes the LAN port's /etc/netplan/60-routeros-lan.yaml and
has systemd-networkd configure that one port (unlike `netplan apply`, the WAN ports are left
alone); applies the sysctl settings; enables and (re)starts routeros-watchdog,
routeros-web and routeros-dnsmasq, the LAN's DHCP server and DNS forwarder (installing the
package alone enables and starts nothing); prints the dashboard's address. Re-run it with
other flags to change the set-up.

If a step fails, every change of the run is undone (replaced files come back from
/var/backups/routeros-setup/, packages it installed are purged) and the error is shown.
Without systemd as PID 1 (a container, a chroot) the services are enabled for the next boot
but not started, and the LAN address is set with ip(8), since netplan cannot apply it there.

Exit status: 0 done; 1 a step failed and its changes were undone; 2 bad flags or an
unsuitable machine (nothing changed).
EOF
}

# ---------------------------------------------------------------------------------------
# Output

say() { printf '%s\n' "$*"; }
step() { printf '\n==> %s\n' "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
refuse() { # refuse MESSAGE...: a problem found before any change; exit 2
  printf '%s: %s\n' "$PROG" "$@" >&2
  printf '%s: nothing was changed.\n' "$PROG" >&2
  exit 2
}

# ---------------------------------------------------------------------------------------
# Flags

declare -A WAN_IF=() WAN_GW=() WAN_WEIGHT=() WAN_DNS=()
LAN_IF="" LAN_NET="" LAN_ADDR_FLAG="" PACKAGE_FILE=""
DRY_RUN=0 NO_START=0 RESET_CONFIG=0
PROBLEMS=()
problem() { PROBLEMS+=("$*"); }

parse_flags() {
  local flag value
  while (( $# )); do
    flag=$1
    case "$flag" in
      -h|--help) usage; exit 0 ;;
      --dry-run) DRY_RUN=1; shift; continue ;;
      --no-start) NO_START=1; shift; continue ;;
      --reset-config) RESET_CONFIG=1; shift; continue ;;
      --*=*) value=${flag#*=}; flag=${flag%%=*}; shift ;;
      --wan[1-3]-interface|--wan[1-3]-gateway|--wan[1-3]-weight|--wan[1-3]-dns|\
      --lan-interface|--lan-network|--lan-address|--package)
        (( $# >= 2 )) || refuse "$flag needs a value (see --help)"
        value=$2; shift 2 ;;
      *) refuse "unknown argument '$flag' (see --help)" ;;
    esac
    case "$flag" in
      --wan[1-3]-interface) WAN_IF[${flag:5:1}]=$value ;;
      --wan[1-3]-gateway) WAN_GW[${flag:5:1}]=$value ;;
      --wan[1-3]-weight) WAN_WEIGHT[${flag:5:1}]=$value ;;
      --wan[1-3]-dns) WAN_DNS[${flag:5:1}]=$value ;;
      --lan-interface) LAN_IF=$value ;;
      --lan-network) LAN_NET=$value ;;
      --lan-address) LAN_ADDR_FLAG=$value ;;
      --package) PACKAGE_FILE=$value ;;
      *) refuse "unknown argument '$flag' (see --help)" ;;
    esac
  done
}

# ip4_int ADDR: the address as a number; fails unless ADDR is a dotted quad (no leading zeros).
ip4_int() {
  local re='^(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})$'
  [[ $1 =~ $re ]] || return 1
  local n=0 i
  for i in 1 2 3 4; do
    (( BASH_REMATCH[i] <= 255 )) || return 1
    n=$(( n * 256 + BASH_REMATCH[i] ))
  done
  echo "$n"
}
int_ip4() { echo "$(( $1 >> 24 & 255 )).$(( $1 >> 16 & 255 )).$(( $1 >> 8 & 255 )).$(( $1 & 255 ))"; }

# A unicast host address a WAN gateway or DNS server can be.
usable_host() {
  local n=$1
  (( n != 0 && (n >> 24) != 127 && (n >> 24) != 0 && (n >> 28) < 14 ))
}

# The LAN: LAN_NET_INT, LAN_PREFIX, LAN_MASK, LAN_ADDR (router address with prefix).
check_lan() {
  if [[ -z $LAN_IF ]]; then problem "--lan-interface is required (the LAN port)"; fi
  if [[ -z $LAN_NET ]]; then problem "--lan-network is required (e.g. 192.168.1.0/24)"; return; fi
  local ip prefix n
  if [[ ! $LAN_NET =~ ^([0-9.]+)/([0-9]{1,2})$ ]] || ! n=$(ip4_int "${BASH_REMATCH[1]}") ||
    (( BASH_REMATCH[2] < 8 || BASH_REMATCH[2] > 30 )); then
    problem "--lan-network: '$LAN_NET' is not an IPv4 network like 192.168.1.0/24 (prefix /8 to /30)"
    return
  fi
  ip=${BASH_REMATCH[1]}; prefix=${BASH_REMATCH[2]}
  LAN_MASK=$(( (0xffffffff << (32 - prefix)) & 0xffffffff ))
  LAN_NET_INT=$(( n & LAN_MASK ))
  if (( n != LAN_NET_INT )); then
    problem "--lan-network: $LAN_NET has host bits set; the network is $(int_ip4 "$LAN_NET_INT")/$prefix (the router's own address goes in --lan-address $ip)"
    return
  fi
  local broadcast=$(( LAN_NET_INT | (~LAN_MASK & 0xffffffff) )) a
  if [[ -n $LAN_ADDR_FLAG ]]; then
    if ! a=$(ip4_int "$LAN_ADDR_FLAG"); then
      problem "--lan-address: '$LAN_ADDR_FLAG' is not an IPv4 address"; return
    fi
    if (( (a & LAN_MASK) != LAN_NET_INT || a == LAN_NET_INT || a == broadcast )); then
      problem "--lan-address: $LAN_ADDR_FLAG is not a host address of $LAN_NET"; return
    fi
  else
    a=$(( LAN_NET_INT + 1 ))
  fi
  LAN_ADDR="$(int_ip4 "$a")/$prefix"
  LAN_ADDR_IP=$(int_ip4 "$a")
}

WANS=()   # the configured WAN numbers, in order
check_wans() {
  local n gw g dns d w
  for n in 1 2 3; do
    if [[ -z ${WAN_IF[$n]:-} ]]; then
      if [[ -n ${WAN_GW[$n]:-}${WAN_WEIGHT[$n]:-}${WAN_DNS[$n]:-} ]]; then
        problem "--wan$n-gateway/-weight/-dns given without --wan$n-interface"
      fi
      continue
    fi
    if (( n > 1 )) && [[ -z ${WAN_IF[$((n - 1))]:-} ]]; then
      problem "--wan$n-interface needs --wan$((n - 1))-interface first"
    fi
    WANS+=("$n")
    gw=${WAN_GW[$n]:-dhcp}
    if [[ $gw != dhcp ]]; then
      if ! g=$(ip4_int "$gw") || ! usable_host "$g"; then
        problem "--wan$n-gateway: '$gw' is not a usable IPv4 address (or 'dhcp')"
      elif [[ -n ${LAN_NET_INT:-} ]] && (( (g & LAN_MASK) == LAN_NET_INT )); then
        problem "--wan$n-gateway: $gw is inside the LAN $LAN_NET"
      fi
    fi
    w=${WAN_WEIGHT[$n]:-$([[ $n == 1 ]] && echo 2 || echo 1)}
    WAN_WEIGHT[$n]=$w
    if [[ ! $w =~ ^[1-9][0-9]{0,2}$ ]] || (( w > 255 )); then
      problem "--wan$n-weight: '$w' is not a number from 1 to 255"
    fi
    if [[ -z ${WAN_DNS[$n]+set} ]]; then
      case $n in
        1) WAN_DNS[$n]=8.8.8.8,8.8.4.4 ;;
        2) WAN_DNS[$n]=1.1.1.1,1.0.0.1 ;;
        3) WAN_DNS[$n]=9.9.9.9,149.112.112.112 ;;
      esac
    fi
    dns=${WAN_DNS[$n]}
    if [[ $dns != none ]]; then
      IFS=, read -r -a ds <<<"$dns"
      (( ${#ds[@]} )) || problem "--wan$n-dns: empty (use 'none' for no DNS servers)"
      for d in "${ds[@]}"; do
        if ! g=$(ip4_int "$d") || ! usable_host "$g"; then
          problem "--wan$n-dns: '$d' is not a usable IPv4 address"
        fi
      done
    fi
  done
  [[ -n ${WAN_IF[1]:-} ]] || problem "--wan1-interface is required (the port of the first ISP line)"
}

# Interface names: valid, present, one role each.
check_interfaces() {
  local roles=() names=() i name role j present
  for i in "${WANS[@]}"; do roles+=("--wan$i-interface"); names+=("${WAN_IF[$i]}"); done
  if [[ -n $LAN_IF ]]; then roles+=(--lan-interface); names+=("$LAN_IF"); fi
  present=$(find /sys/class/net/ -mindepth 1 -maxdepth 1 ! -name lo -printf '%f\n' 2>/dev/null | sort | xargs || true)
  for i in "${!names[@]}"; do
    name=${names[$i]} role=${roles[$i]}
    # . and .. pass the pattern but name directories (/sys/class/net/.. exists), not ports.
    if [[ ! $name =~ ^[A-Za-z0-9_.-]{1,15}$ || $name == . || $name == .. ]]; then
      problem "$role: '$name' is not a network interface name"; continue
    fi
    for (( j = 0; j < i; j++ )); do
      if [[ ${names[$j]} == "$name" ]]; then
        problem "$role: $name is already ${roles[$j]}; each port can have one role only"
        continue 2
      fi
    done
    if [[ $name == lo ]]; then problem "$role: lo is the loopback interface"; continue; fi
    if [[ ! -e /sys/class/net/$name ]]; then
      problem "$role: there is no network interface '$name' on this machine (there are: ${present:-none})"
    fi
  done
}

check_system() {
  local id="" version="" pretty=""
  if [[ -r /etc/os-release ]]; then
    id=$(. /etc/os-release && echo "${ID:-}")
    version=$(. /etc/os-release && echo "${VERSION_ID:-}")
    pretty=$(. /etc/os-release && echo "${PRETTY_NAME:-}")
  fi
  case "$id:$version" in
    ubuntu:24.04|debian:12|debian:13) OS_NAME=$pretty ;;
    *) problem "this is ${pretty:-an unknown system}; setup.sh supports Ubuntu 24.04, Debian 12 and Debian 13" ;;
  esac
  if [[ $(id -u) -ne 0 ]]; then
    if (( DRY_RUN )); then
      warn "not root: this dry run shows the plan; the real run needs root"
    else
      problem "run it as root: sudo $0 ..."
    fi
  fi
  for tool in dpkg dpkg-deb dpkg-query apt-get ip awk; do
    command -v "$tool" >/dev/null || problem "$tool is missing: this is not a complete Debian/Ubuntu system"
  done
}

# ---------------------------------------------------------------------------------------
# The package: PKG_DEB (file to install, or empty), PKG_ACTION, WATCHDOG_BIN, DEFAULT_CONFIG

WORK=""
cleanup_work() { if [[ -n $WORK ]]; then rm -rf "$WORK"; fi; WORK=""; }

installed_version() {
  dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null |
    awk '$1 == "install" && $3 == "installed" { print $4 }' || true
}

find_package() {
  local arch candidates=() f best="" bestv="" v
  arch=$(dpkg --print-architecture)
  if [[ -n $PACKAGE_FILE ]]; then
    [[ -f $PACKAGE_FILE ]] || refuse "--package: no file $PACKAGE_FILE"
    [[ $(dpkg-deb -f "$PACKAGE_FILE" Package 2>/dev/null) == "$PKG" ]] ||
      refuse "--package: $PACKAGE_FILE is not a $PKG package"
    candidates=("$PACKAGE_FILE")
  else
    shopt -s nullglob
    candidates=("$SCRIPT_DIR/${PKG}"_*_"$arch".deb "$SCRIPT_DIR/target/debian/${PKG}"_*_"$arch".deb)
    shopt -u nullglob
  fi
  for f in "${candidates[@]}"; do
    v=$(dpkg-deb -f "$f" Version 2>/dev/null) || continue
    if [[ -z $bestv ]] || dpkg --compare-versions "$v" gt "$bestv"; then best=$f bestv=$v; fi
  done
  INSTALLED=$(installed_version "$PKG")
  if [[ -n $best ]]; then
    [[ $(dpkg-deb -f "$best" Architecture) == "$arch" ]] ||
      refuse "$best is for $(dpkg-deb -f "$best" Architecture), this machine is $arch"
    PKG_DEB=$(cd "$(dirname "$best")" && pwd)/$(basename "$best")
    PKG_VERSION=$bestv
  elif [[ -n $INSTALLED ]]; then
    PKG_DEB="" PKG_VERSION=$INSTALLED
  else
    refuse "no $PKG package: build it with ci/package-build.sh (target/debian/), put the .deb beside setup.sh, or pass --package FILE.deb"
  fi

  WORK=$(mktemp -d "${TMPDIR:-/tmp}/routeros-setup.XXXXXX")
  PKG_ACTION=keep
  if [[ -n $PKG_DEB ]]; then
    if [[ -z $INSTALLED ]]; then
      PKG_ACTION=install
    elif dpkg --compare-versions "$PKG_VERSION" gt "$INSTALLED"; then
      PKG_ACTION=upgrade
    elif dpkg --compare-versions "$PKG_VERSION" lt "$INSTALLED"; then
      warn "$PKG $INSTALLED is installed, newer than $PKG_DEB ($PKG_VERSION): keeping it"
      PKG_DEB="" PKG_VERSION=$INSTALLED
    else
      # Same version: reinstall only when the files differ (a rebuilt package).
      mkdir -p "$WORK/control"
      dpkg-deb -e "$PKG_DEB" "$WORK/control"
      if ! cmp -s "$WORK/control/md5sums" "/var/lib/dpkg/info/$PKG.md5sums"; then PKG_ACTION=reinstall; fi
    fi
  fi
  if [[ $PKG_ACTION == keep ]]; then
    WATCHDOG_BIN=/usr/bin/routeros-watchdog
    DEFAULT_CONFIG=/usr/share/routeros/routeros.toml
  else
    dpkg-deb -x "$PKG_DEB" "$WORK/pkg"
    WATCHDOG_BIN=$WORK/pkg/usr/bin/routeros-watchdog
    DEFAULT_CONFIG=$WORK/pkg/usr/share/routeros/routeros.toml
  fi
  [[ -x $WATCHDOG_BIN && -f $DEFAULT_CONFIG ]] || refuse "the $PKG package lacks $WATCHDOG_BIN or $DEFAULT_CONFIG"
}

is_installed() { [[ -n $(installed_version "$1") ]]; }

missing_deps() {
  local deps=("${DEPS[@]}") d
  if [[ -n ${PKG_DEB:-} ]]; then
    # The package's own Depends (first alternative, without versions).
    while read -r d; do [[ -n $d ]] && deps+=("$d"); done < <(
      dpkg-deb -f "$PKG_DEB" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/[[:space:]]//g')
  fi
  for d in "${deps[@]}"; do
    is_installed "$d" || echo "$d"
  done | sort -u | xargs
}

# ---------------------------------------------------------------------------------------
# What gets written

toml_list() { # a,b -> ["a", "b"]
  [[ $1 == none ]] && { echo '[]'; return; }
  local out="" d
  IFS=, read -r -a ds <<<"$1"
  for d in "${ds[@]}"; do out+="${out:+, }\"$d\""; done
  echo "[$out]"
}

wan_blocks() {
  local n
  for n in "${WANS[@]}"; do
    echo "[[wan_interfaces]]"
    echo "# wan$n, written by setup.sh (re-run it to change this line; more keys: table, mark, priority)"
    echo "name = \"${WAN_IF[$n]}\""
    echo "weight = ${WAN_WEIGHT[$n]}"
    if [[ ${WAN_GW[$n]:-dhcp} == dhcp ]]; then
      echo "# gateway: learned from the interface's DHCP default route"
    else
      echo "gateway = \"${WAN_GW[$n]}\""
    fi
    echo "dns = $(toml_list "${WAN_DNS[$n]}")"
    echo
  done
}

# merge_config BASE > NEW: BASE with its [[wan_interfaces]] replaced by the flags' and the
# interface and address of [lan] set; every other table, key and comment kept as it is.
merge_config() {
  WANS_TEXT=$(wan_blocks) LAN_IF="$LAN_IF" LAN_ADDR="$LAN_ADDR" awk '
    function header(l) { return l ~ /^[ \t]*\[/ }
    function lan_keys() {
      printf "interface = \"%s\"\naddress = \"%s\"     # router address and LAN prefix\n", ENVIRON["LAN_IF"], ENVIRON["LAN_ADDR"]
    }
    BEGIN { state = "root"; wans = 0; lan = 0 }
    /^[ \t]*\[\[[ \t]*wan_interfaces[ \t]*\]\]/ || /^[ \t]*\[[ \t]*wan_interfaces[ \t]*\./ {
      if (!wans) { print ENVIRON["WANS_TEXT"]; print ""; wans = 1 }
      state = "wan"; next
    }
    /^[ \t]*\[[ \t]*lan[ \t]*\][ \t]*(#.*)?$/ { print; lan_keys(); lan = 1; state = "lan"; next }
    header($0) { state = "other"; print; next }
    state == "wan" { next }
    state == "lan" && /^[ \t]*(interface|address)[ \t]*=/ { next }
    { print }
    END {
      if (!wans) { print ""; print ENVIRON["WANS_TEXT"] }
      if (!lan) { print ""; print "[lan]"; lan_keys() }
    }' "$1"
}

netplan_text() {
  cat <<EOF
$NETPLAN_MARK: the LAN port of the router.
# Re-run setup.sh to change it; the routing daemon's config is /opt/routeros/config/routeros.toml.
network:
  version: 2
  ethernets:
    "$LAN_IF":
      renderer: networkd
      dhcp4: false
      dhcp6: false
      accept-ra: false
      link-local: []
      addresses: ["$LAN_ADDR"]
      ignore-carrier: true
      optional: true
EOF
}

# systemd is PID 1 (sd_booted(), plus PID 1's name: tools like `netplan generate` create
# /run/systemd/system even in a chroot). Decided once, before any change.
SYSTEMD=0
if [[ -d /run/systemd/system && $(cat /proc/1/comm 2>/dev/null) == systemd ]]; then SYSTEMD=1; fi
systemd_running() { (( SYSTEMD )); }

prepare() {
  BASE_CONFIG=$DEFAULT_CONFIG BASE_DESC="the default configuration"
  if [[ -f $CONFIG ]] && (( ! RESET_CONFIG )); then
    BASE_CONFIG=$CONFIG BASE_DESC="the current $CONFIG"
  fi
  merge_config "$BASE_CONFIG" >"$WORK/routeros.toml"
  if ! "$WATCHDOG_BIN" --check --config "$WORK/routeros.toml" >"$WORK/check.out" 2>&1; then
    {
      echo "$PROG: the configuration made from $BASE_DESC and the flags is refused by routeros-watchdog --check:"
      sed 's/^/    /' "$WORK/check.out"
      if [[ $BASE_CONFIG == "$CONFIG" ]]; then
        echo "$PROG: fix $CONFIG, or pass --reset-config to start from the default configuration."
      fi
      echo "$PROG: nothing was changed."
    } >&2
    exit 2
  fi
  netplan_text >"$WORK/netplan.yaml"
  # With netplan present, check the result together with the machine's other netplan files.
  if command -v netplan >/dev/null; then
    mkdir -p "$WORK/np/etc/netplan"
    cp /etc/netplan/*.yaml "$WORK/np/etc/netplan/" 2>/dev/null || true
    cp "$WORK/netplan.yaml" "$WORK/np$NETPLAN_FILE"
    if ! PYTHONDONTWRITEBYTECODE=1 netplan generate --root-dir "$WORK/np" >"$WORK/netplan.out" 2>&1; then
      {
        echo "$PROG: netplan refuses the LAN configuration together with /etc/netplan:"
        sed 's/^/    /' "$WORK/netplan.out"
        echo "$PROG: nothing was changed."
      } >&2
      exit 2
    fi
  fi
  local f
  for f in /etc/netplan/*.yaml; do
    [[ -f $f && $f != "$NETPLAN_FILE" ]] || continue
    if grep -Eq "^[[:space:]]*\"?$LAN_IF\"?:" "$f"; then
      warn "$f also configures $LAN_IF; $NETPLAN_FILE comes later and sets its address"
    fi
  done
  if [[ -f /etc/network/interfaces ]] && grep -Eqs "^(auto|allow-hotplug|iface)[[:space:]]+$LAN_IF\b" \
    /etc/network/interfaces /etc/network/interfaces.d/*; then
    warn "ifupdown (/etc/network/interfaces) configures $LAN_IF too: remove it there"
  fi
  MISSING_DEPS=$(missing_deps)
}

dashboard() { echo "http://$LAN_ADDR_IP:8080"; }

show_plan() {
  say "Dry run: nothing is changed."
  say "System: $OS_NAME"
  local n
  for n in "${WANS[@]}"; do
    say "WAN $n: ${WAN_IF[$n]}, gateway ${WAN_GW[$n]:-dhcp}, weight ${WAN_WEIGHT[$n]}, dns ${WAN_DNS[$n]}"
  done
  say "LAN: $LAN_IF, $LAN_NET, router address $LAN_ADDR"
  say "LAN services: routeros-dnsmasq (dnsmasq-base) answers DHCP ([lan.dhcp]) and DNS on $LAN_IF at $LAN_ADDR_IP"
  say
  if [[ -n $MISSING_DEPS ]]; then
    say "Would install from the distribution: $MISSING_DEPS"
  else
    say "Distribution packages: nothing missing"
  fi
  case $PKG_ACTION in
    install) say "Would install $PKG $PKG_VERSION from $PKG_DEB" ;;
    upgrade) say "Would upgrade $PKG $INSTALLED to $PKG_VERSION from $PKG_DEB" ;;
    reinstall) say "Would reinstall $PKG $PKG_VERSION from $PKG_DEB (its files differ)" ;;
    keep) say "$PKG $PKG_VERSION is installed; keeping it" ;;
  esac
  say
  if [[ -f $CONFIG ]]; then
    say "Would replace $CONFIG (from $BASE_DESC) with:"
  else
    say "Would write $CONFIG (from $BASE_DESC):"
  fi
  sed 's/^/    /' "$WORK/routeros.toml"
  if [[ -f $CONFIG ]]; then
    say "Changes against the current file:"
    diff -u "$CONFIG" "$WORK/routeros.toml" | tail -n +3 | sed 's/^/    /' || true
  fi
  say "routeros-watchdog --check: configuration is valid"
  say
  say "Would write $NETPLAN_FILE:"
  sed 's/^/    /' "$WORK/netplan.yaml"
  say
  if systemd_running; then
    say "Would run netplan generate and have systemd-networkd configure $LAN_IF (other ports untouched),"
    say "apply $SYSCTL_FILE, enable ${UNITS[*]}"
    (( NO_START )) && say "and not start them (--no-start)" || say "and start (or reload) them"
  else
    say "Would set $LAN_ADDR on $LAN_IF with ip(8), apply $SYSCTL_FILE and enable ${UNITS[*]} for the next boot;"
    say "systemd is not running, so no services would be started"
  fi
  say "The dashboard would be at $(dashboard) (REST API on port 8081)"
}

# ---------------------------------------------------------------------------------------
# The transaction: every change is journaled first and undone in reverse order on failure.

UNDO=()           # "KIND ARG..." entries
declare -A UNIT_BEFORE=()
BACKUP_DIR=""
COMMITTED=0
CURRENT_STEP="checks"

journal() { UNDO+=("$*"); }

# backup_file PATH: journal how to put PATH back as it is now (once per run).
declare -A BACKED_UP=()
backup_file() {
  local f=$1
  [[ -n ${BACKED_UP[$f]:-} ]] && return 0
  BACKED_UP[$f]=1
  if [[ -e $f ]]; then
    mkdir -p "$BACKUP_DIR$(dirname "$f")"
    cp -a "$f" "$BACKUP_DIR$f"
    journal restore-file "$f"
  else
    journal remove-file "$f"
  fi
}

# write_file SRC DEST MODE OWNER: atomically, after backing DEST up.
write_file() {
  local src=$1 dest=$2 mode=$3 owner=$4
  backup_file "$dest"
  mkdir -p "$(dirname "$dest")"
  install -m "$mode" -o "${owner%:*}" -g "${owner#*:}" "$src" "$dest.setup-tmp"
  mv -f "$dest.setup-tmp" "$dest"
}

failpoint() {
  if [[ ${ROUTEROS_SETUP_FAILPOINT:-} == "$1" ]]; then
    echo "$PROG: failing after step '$1' (ROUTEROS_SETUP_FAILPOINT)" >&2
    false
  fi
}

unit_state() { # unit_state UNIT -> "enabled|disabled active|inactive"
  local e a
  e=$(systemctl is-enabled "$1" 2>/dev/null) || true
  a=$(systemctl is-active "$1" 2>/dev/null) || true
  echo "${e:-absent} ${a:-inactive}"
}

undo_one() {
  local kind=$1; shift
  case $kind in
    restore-file)
      say "  restore $1"
      cp -a "$BACKUP_DIR$1" "$1.setup-tmp" && mv -f "$1.setup-tmp" "$1" ;;
    remove-file)
      say "  remove $1"
      rm -f "$1" ;;
    purge-package)
      say "  purge the $1 package installed by this run"
      DEBIAN_FRONTEND=noninteractive dpkg --purge "$1" >/dev/null ;;
    note-package)
      say "  $PKG stays at $(installed_version "$PKG") (was $1): reinstall that version by hand if needed" ;;
    purge-deps)
      local now new
      now=$(dpkg-query -W -f='${Status} ${Package}\n' 2>/dev/null | awk '$3 == "installed" { print $4 }' | sort)
      new=$(comm -13 "$1" <(echo "$now") | xargs)
      if [[ -n $new ]]; then
        say "  purge the distribution packages installed by this run: $new"
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq $new >/dev/null
      fi ;;
    del-address)
      say "  remove $2 from $1"
      ip addr del "$2" dev "$1" 2>/dev/null || true ;;
    add-address)
      say "  put $2 back on $1"
      ip addr add "$2" dev "$1" 2>/dev/null || true ;;
    sysctl)
      say "  set $1 back to $2"
      sysctl -q -w "$1=$2" >/dev/null 2>&1 || true ;;
    networkd-reload)
      say "  netplan generate; networkctl reload; networkctl reconfigure ${*} (the restored files)"
      netplan generate 2>/dev/null || true
      networkctl reload 2>/dev/null || true
      networkctl reconfigure "$@" 2>/dev/null || true ;;
    unit-back) # UNIT ENABLED ACTIVE: the state a unit had before the run
      if [[ $3 != active ]]; then say "  stop $1"; systemctl stop "$1" 2>/dev/null || true; fi
      if [[ $2 == disabled ]]; then say "  disable $1"; systemctl disable --quiet "$1" 2>/dev/null || true; fi ;;
    units)
      local unit e a
      for unit in "${UNITS[@]}"; do
        read -r e a <<<"${UNIT_BEFORE[$unit]}"
        if [[ $e != enabled && $(systemctl is-enabled "$unit" 2>/dev/null) == enabled ]]; then
          say "  disable $unit"
          systemctl disable --quiet "$unit" 2>/dev/null || true
        fi
      done
      systemd_running || return 0
      systemctl daemon-reload 2>/dev/null || true
      for unit in "${UNITS[@]}"; do
        read -r e a <<<"${UNIT_BEFORE[$unit]}"
        if [[ $a == active ]]; then
          say "  restart $unit with the restored configuration"
          systemctl restart "$unit" 2>/dev/null || true
        elif [[ $(systemctl is-active "$unit" 2>/dev/null) == active ]]; then
          say "  stop $unit"
          systemctl stop "$unit" 2>/dev/null || true
        fi
      done ;;
  esac
}

rollback() {
  local i failed=0
  set +e
  echo >&2
  echo "$PROG: error during '$CURRENT_STEP'. Undoing this run's changes:" >&2
  for (( i = ${#UNDO[@]} - 1; i >= 0; i-- )); do
    # shellcheck disable=SC2086
    undo_one ${UNDO[$i]} >&2 || { failed=1; echo "  (could not undo: ${UNDO[$i]})" >&2; }
  done
  if (( failed )); then
    echo "$PROG: some changes could not be undone (above); the originals are in $BACKUP_DIR" >&2
  else
    rm -rf "$BACKUP_DIR"
    rmdir "$BACKUP_ROOT" 2>/dev/null || true
    echo "$PROG: the machine is as it was before this run." >&2
  fi
}

on_exit() {
  local status=$?
  trap - EXIT INT TERM HUP ERR
  if (( ! COMMITTED )) && [[ -n $BACKUP_DIR ]]; then
    rollback
    status=1
  fi
  cleanup_work
  exit "$status"
}

on_err() {
  local cmd=$2
  [[ $cmd == '"$@"' ]] && cmd=$LAST_CMD
  echo "$PROG: failed: $cmd (exit status $1)" >&2
}

LAST_CMD=""
run() { # run CMD...: show it and run it
  LAST_CMD="$*"
  printf '    $ %s\n' "$*"
  "$@"
}

apply() {
  exec 9>/run/routeros-setup.lock
  flock -n 9 || { echo "$PROG: another setup.sh is running" >&2; exit 2; }

  BACKUP_DIR=$BACKUP_ROOT/$(date +%Y%m%d-%H%M%S)-$$
  mkdir -p "$BACKUP_DIR"
  trap on_exit EXIT
  trap 'on_err $? "$BASH_COMMAND"' ERR
  trap 'echo "$PROG: interrupted" >&2; exit 130' INT TERM HUP

  CURRENT_STEP="distribution packages"
  step "Distribution packages"
  dpkg-query -W -f='${Status} ${Package}\n' 2>/dev/null | awk '$3 == "installed" { print $4 }' |
    sort >"$WORK/packages-before"
  journal purge-deps "$WORK/packages-before"
  if [[ -n $MISSING_DEPS ]]; then
    export DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a
    run apt-get update -qq
    # shellcheck disable=SC2086
    run apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends $MISSING_DEPS
  else
    say "nothing missing"
  fi
  failpoint deps

  CURRENT_STEP="installing the $PKG package"
  step "The $PKG package"
  local unit
  # The package enables nothing; this run enables the units (step "services"). Undone: back
  # to the enabled/active state each unit had before.
  for unit in "${UNITS[@]}"; do UNIT_BEFORE[$unit]=$(unit_state "$unit"); done
  journal units
  case $PKG_ACTION in
    install) journal purge-package "$PKG" ;;
    upgrade) journal note-package "$INSTALLED" ;;
  esac
  if [[ $PKG_ACTION == keep ]]; then
    say "$PKG $PKG_VERSION is installed; keeping it"
  else
    # ROUTEROS_SETUP: postinst leaves out its "not enabled or started" hint; this run enables them.
    ROUTEROS_SETUP=1 run dpkg -i "$PKG_DEB"
  fi
  if [[ $(installed_version "$PKG") != "$PKG_VERSION" ]]; then
    echo "$PROG: $PKG $PKG_VERSION is not installed after dpkg" >&2
    false
  fi
  failpoint package

  CURRENT_STEP="writing the configuration"
  step "Configuration"
  if systemd_running; then
    # Undone in reverse: the restored files are applied while networkd still runs, then the
    # address this run added goes, then networkd is stopped if this run started it.
    NETWORKD_BEFORE=$(unit_state systemd-networkd.service)
    # shellcheck disable=SC2086
    [[ $NETWORKD_BEFORE == *" active" ]] || journal unit-back systemd-networkd.service $NETWORKD_BEFORE
    has_address "$LAN_IF" "$LAN_ADDR" || journal del-address "$LAN_IF" "$LAN_ADDR"
    # shellcheck disable=SC2046
    journal networkd-reload $(printf '%s\n' "$LAN_IF" "${OLD_LAN_IF:-}" | sort -u | xargs)
  fi
  write_file "$WORK/routeros.toml" "$CONFIG" 0640 root:routeros
  run /usr/bin/routeros-watchdog --check --config "$CONFIG"
  write_file "$WORK/netplan.yaml" "$NETPLAN_FILE" 0600 root:root
  say "wrote $CONFIG and $NETPLAN_FILE"
  failpoint config

  CURRENT_STEP="configuring the LAN port"
  step "LAN port $LAN_IF: $LAN_ADDR"
  if systemd_running; then
    configure_lan_networkd
  else
    say "systemd is not running (PID 1 is $(cat /proc/1/comm 2>/dev/null || echo unknown)): netplan applies the file at the next boot; setting the address now with ip(8)"
    set_lan_address_now
  fi
  failpoint network

  CURRENT_STEP="kernel settings"
  step "Kernel settings ($SYSCTL_FILE)"
  apply_sysctl
  failpoint sysctl

  CURRENT_STEP="starting the services"
  step "Services"
  if ! systemd_running; then
    run systemctl enable --quiet "${UNITS[@]}"
    say "systemd is not running here: enabled for the next boot, not started; on a booted system: systemctl start ${UNITS[*]}"
  elif (( NO_START )); then
    run systemctl daemon-reload
    run systemctl enable --quiet "${UNITS[@]}"
    say "--no-start: start them with: systemctl start ${UNITS[*]}"
  else
    start_services
  fi
  failpoint services

  COMMITTED=1
  step "Done"
  local n
  for n in "${WANS[@]}"; do
    say "WAN $n: ${WAN_IF[$n]} (gateway ${WAN_GW[$n]:-dhcp}, weight ${WAN_WEIGHT[$n]})"
  done
  say "LAN:   $LAN_IF $LAN_ADDR"
  say "Config: $CONFIG   (check: routeros-watchdog --check --config $CONFIG)"
  say "Status: /opt/routeros/scripts/status.sh   routeros-kill-switch --status"
  if [[ -n $(find "$BACKUP_DIR" -mindepth 1 -print -quit) ]]; then
    say "Replaced files were saved in $BACKUP_DIR"
  else
    rm -rf "$BACKUP_DIR"
  fi
  say
  say "Dashboard: $(dashboard)   (REST API: http://$LAN_ADDR_IP:8081), from the LAN"
}

has_address() { # has_address IF ADDR/PREFIX (no grep -q under pipefail: ip could get SIGPIPE)
  local out
  out=$(ip -4 -o addr show dev "$1" 2>/dev/null) || return 1
  [[ $out == *" inet $2 "* ]]
}

# The address an earlier run gave the LAN, when the LAN moved or changed.
drop_old_lan_address() {
  if [[ -n ${OLD_LAN_IF:-} && -n ${OLD_LAN_ADDR:-} && ( $OLD_LAN_IF != "$LAN_IF" || $OLD_LAN_ADDR != "$LAN_ADDR" ) ]] &&
    has_address "$OLD_LAN_IF" "$OLD_LAN_ADDR"; then
    journal add-address "$OLD_LAN_IF" "$OLD_LAN_ADDR"
    run ip addr del "$OLD_LAN_ADDR" dev "$OLD_LAN_IF"
  fi
}

# Without systemd: the address by hand; netplan applies the file at the next boot.
set_lan_address_now() {
  drop_old_lan_address
  if ! has_address "$LAN_IF" "$LAN_ADDR"; then
    journal del-address "$LAN_IF" "$LAN_ADDR"
    run ip addr add "$LAN_ADDR" dev "$LAN_IF"
  fi
  run ip link set "$LAN_IF" up
}

# With systemd: netplan generate writes networkd's file for the LAN port; networkd reloads
# and reconfigures that one link. Unlike `netplan apply`, the WAN ports (their DHCP leases,
# an SSH session over them) are not touched.
configure_lan_networkd() {
  local i
  if [[ $NETWORKD_BEFORE != *" active" ]]; then
    run systemctl enable --now --quiet systemd-networkd.service
  fi
  run netplan generate
  run networkctl reload
  run networkctl reconfigure "$LAN_IF"
  # The reconfiguration is asynchronous: wait until the address has been there for 0.5 s.
  local seen=0
  for (( i = 0; i < 150 && seen < 5; i++ )); do
    if has_address "$LAN_IF" "$LAN_ADDR"; then seen=$((seen + 1)); else seen=0; fi
    sleep 0.1
  done
  if (( seen < 5 )); then
    echo "$PROG: systemd-networkd did not put $LAN_ADDR on $LAN_IF:" >&2
    networkctl status "$LAN_IF" --no-pager >&2 2>/dev/null || true
    false
  fi
  drop_old_lan_address
  say "$LAN_IF has $LAN_ADDR"
}

apply_sysctl() {
  local key value old changed=0
  while IFS='=' read -r key value; do
    key=${key#-}   # "-key = value": failure to set it is not an error
    if ! old=$(sysctl -n "$key" 2>/dev/null); then
      warn "$key: not available here (it is set at boot)"
      continue
    fi
    [[ $old == "$value" ]] && continue
    journal sysctl "$key" "$old"
    changed=1
    if sysctl -q -w "$key=$value" >/dev/null 2>&1; then
      say "$key = $value"
    else
      warn "$key: cannot be set here (it is set at boot)"
    fi
  done < <(sed -e 's/^[[:space:]]*//; s/[[:space:]]*$//' -e '/^[#;]/d; /^$/d' \
    -e 's/[[:space:]]*=[[:space:]]*/=/' "$SYSCTL_FILE")
  (( changed )) || say "already in effect"
}

unit_failed() {
  echo "$PROG: $1 is not running; its log:" >&2
  journalctl -u "$1" -n 15 --no-pager -o cat >&2 2>/dev/null || true
  false
}

start_services() {
  local unit
  run systemctl daemon-reload
  run systemctl enable --quiet "${UNITS[@]}"
  if systemctl is-active --quiet routeros-watchdog.service; then
    run systemctl reload routeros-watchdog.service || unit_failed routeros-watchdog.service
  else
    run systemctl start routeros-watchdog.service || unit_failed routeros-watchdog.service
  fi
  run systemctl start routeros-web.service || unit_failed routeros-web.service
  # The daemon has rendered /var/lib/routeros/dnsmasq.conf from [lan] when its start returns
  # (Type=notify); on a reload it rewrites the file and restarts the running dnsmasq itself.
  run systemctl start routeros-dnsmasq.service || unit_failed routeros-dnsmasq.service
  sleep 2
  for unit in "${UNITS[@]}"; do
    systemctl is-active --quiet "$unit" || unit_failed "$unit"
    say "$unit: active"
  done
}

# The [lan] interface and address of the current config, to clean up after a move.
read_old_lan() {
  [[ -f $CONFIG ]] || return 0
  eval "$(awk '
    /^[ \t]*\[/ { lan = ($0 ~ /^[ \t]*\[[ \t]*lan[ \t]*\]/) ; next }
    lan && /^[ \t]*interface[ \t]*=/ { split($0, a, "\""); printf "OLD_LAN_IF=%s\n", a[2] }
    lan && /^[ \t]*address[ \t]*=/ { split($0, a, "\""); printf "OLD_LAN_ADDR=%s\n", a[2] }
  ' "$CONFIG" | grep -E '^OLD_LAN_(IF|ADDR)=[A-Za-z0-9_.:/-]*$')"
}

main() {
  parse_flags "$@"
  check_lan
  check_wans
  check_system
  check_interfaces
  if (( ${#PROBLEMS[@]} )); then
    local p
    for p in "${PROBLEMS[@]}"; do echo "$PROG: $p" >&2; done
    echo "$PROG: ${#PROBLEMS[@]} problem(s); nothing was changed. See ./setup.sh --help." >&2
    exit 2
  fi
  trap cleanup_work EXIT
  find_package
  read_old_lan
  prepare
  if (( DRY_RUN )); then
    show_plan
    exit 0
  fi
  apply
}

main "$@"
