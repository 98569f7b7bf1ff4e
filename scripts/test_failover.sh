#!/usr/bin/env bash
# Manual failover drill: take one WAN out with the kill-switch, show that traffic moves,
# then put it back.   /opt/routeros/scripts/test_failover.sh [WAN] [SECONDS] [--socket PATH]
set -euo pipefail
WAN=${1:-}
HOLD=${2:-20}
SOCKET=${ROUTEROS_SOCKET:-/run/routeros/control.sock}
[[ ${3:-} == --socket ]] && SOCKET=$4
KS=(routeros-kill-switch --socket "$SOCKET")

if [[ -z $WAN ]]; then
    # The first WAN the daemon lists is the primary.
    WAN=$("${KS[@]}" --status | awk '/^WAN / { table = 1; next } table && NF { print $1; exit }')
fi
[[ -n $WAN ]] || { echo "no WAN found; is routeros-watchdog running?" >&2; exit 1; }
[[ $HOLD =~ ^[0-9]+$ ]] || { echo "SECONDS must be a number, not '$HOLD'" >&2; exit 2; }

echo "== before"
"${KS[@]}" --status
echo
echo "== disabling $WAN for ${HOLD}s (its connections are reset and move to the other lines)"
"${KS[@]}" --disable "$WAN"
trap '"${KS[@]}" --enable "$WAN" >/dev/null' EXIT
"${KS[@]}" --status
sleep "$HOLD"
echo
echo "== enabling $WAN again"
"${KS[@]}" --enable "$WAN"
trap - EXIT
"${KS[@]}" --status
