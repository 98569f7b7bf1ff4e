#!/usr/bin/env bash
# Phoenix Nexus Router status at a glance: services, WAN lines, routes, connection counts.
#   /opt/routeros/scripts/status.sh [--socket PATH]
set -u
SOCKET=${ROUTEROS_SOCKET:-/run/routeros/control.sock}
[[ ${1:-} == --socket ]] && SOCKET=$2

section() { printf '\n== %s\n' "$1"; }

section "services"
for unit in routeros-watchdog routeros-web; do
    printf '%-20s %s\n' "$unit" "$(systemctl is-active "$unit" 2>/dev/null || echo unknown)"
done

section "WAN lines"
routeros-kill-switch --socket "$SOCKET" --status || echo "(daemon not reachable at $SOCKET)"

section "routes and rules installed by the router (proto 201)"
ip route show table all proto 201
ip rule show | grep 'proto 201' || true

section "connections per WAN (conntrack mark)"
if command -v conntrack >/dev/null; then
    for mark in $(ip rule show | sed -n 's/.*fwmark \(0x[0-9a-f]*\)\/0xff00 lookup \([0-9a-z]*\).*/\1/p'); do
        printf 'mark %-7s %s connections\n' "$mark" "$(conntrack -L -m "$mark/0xff00" 2>/dev/null | wc -l)"
    done
    printf 'total         %s\n' "$(conntrack -C 2>/dev/null || echo '?')"
fi
