#!/usr/bin/env bash
# Browser end-to-end test of the web dashboard, as root: Debian's headless Chromium, driven by
# playwright-core (npm, pinned in tests/browser/package-lock.json), against routeros-web on a
# namespace lab router (ci/lab.sh with LAB_WEB=1). The browser runs in the lab's LAN namespace
# (a LAN client, 192.168.1.100) and talks to http://192.168.1.1:8080; the lab's ISPs and
# internet host are namespaces too, so no traffic leaves the machine.
#
# Steps: first-boot wizard (wan1 and wan2 static, wan3 PPPoE: the lab has three ISPs; its
# kernel has no PPP, so wan3 stays down) -> the config has each line's mode and the PPPoE
# account without its password -> the dashboard shows wan3 as PPPoE with its session state
# -> log in with the new password -> both static WANs up -> cut ISP2 (wan2
# loses carrier) -> wan2's card turns down within 2 s without a reload (the time is printed) ->
# disable wan1 through the confirmation dialog (with and without another line to take over) ->
# audit log -> a bad weight in the config form shows its field error -> the System page of a
# fake appliance (--upgrade-dir/--os-release: running version, history, an upgrade request
# refused at the URL field, one queued, then failed as the root helper would report it; an
# uploaded bundle queued, then running and rebooting).
# See tests/browser/e2e.mjs.
#
#   sudo ci/test-browser.sh
# Screenshots of every step, figures.json and the lab's logs go to target/artifacts/browser/.
# Knobs: BROWSER_LAB_PREFIX [wb] (namespace prefix), CHROMIUM [/usr/bin/chromium].
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/lib/deps.sh

PREFIX=${BROWSER_LAB_PREFIX:-wb}
ARTIFACTS=target/artifacts/browser
start=$(date +%s)

require_root
# Debian's nodejs (18) ships npm separately; NodeSource's nodejs includes it (and conflicts
# with Debian's npm package), so ask for npm only when there is no npm command.
ensure_packages chromium nodejs iproute2 nftables conntrack curl
command -v npm >/dev/null || ensure_packages npm
ensure_rust

step() { printf '\n==== %s\n' "$*"; }

step "npm ci (playwright-core; no browser download: Debian's chromium is used)"
(cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)

step "cargo build --locked (debug)"
cargo build --locked

rm -rf "$ARTIFACTS"
mkdir -p "$ARTIFACTS"

# A fake appliance for the System page: the root helper's upgrade folder (web-status.json,
# web-upgrade.log, history) and an os-release with IMAGE_VERSION. Next to the lab's folder, not
# in it: `lab up` starts by tearing down what a previous run may have left there.
APPLIANCE=/run/routeros-lab/$PREFIX-appliance
rm -rf "$APPLIANCE"
mkdir -p "$APPLIANCE/upgrade"
echo "2026-11-28T14:00:00Z installed 0.1.0.1 from 0.1.0.0 (1 tries)" >"$APPLIANCE/upgrade/history"
printf 'ID=debian\nIMAGE_ID=routeros\nIMAGE_VERSION=0.1.0.1\n' >"$APPLIANCE/os-release"

lab() {
  LAB_PREFIX=$PREFIX LAB_WANS=3 LAB_BIN=target/debug LAB_WEB=1 LAB_WEB_LOCAL='' \
    LAB_WEB_ARGS="--upgrade-dir $APPLIANCE/upgrade --os-release $APPLIANCE/os-release" "$@"
}
teardown() {
  local rc=$?
  # Keep the logs next to the screenshots, then always remove the lab.
  cp "/run/routeros-lab/$PREFIX/daemon.log" "/run/routeros-lab/$PREFIX/web.log" "$ARTIFACTS/" 2>/dev/null || true
  lab ci/lab.sh down >/dev/null 2>&1 || true
  rm -rf "$APPLIANCE"
  if ip netns list | grep -qE "^$PREFIX-(rtr|lan|inet|isp[0-9]+)( |$)"; then
    echo "test-browser: lab $PREFIX still has namespaces after down" >&2
    rc=1
  fi
  echo "test-browser: wall time $(( $(date +%s) - start )) s"
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

step "lab $PREFIX with routeros-web"
lab ci/lab.sh up >"$ARTIFACTS/lab-up.log" 2>&1 || { cat "$ARTIFACTS/lab-up.log" >&2; exit 1; }
# routeros-web starts in the background: wait until it answers on the LAN address.
for _ in $(seq 100); do
  ip netns exec "$PREFIX-lan" curl -sf -o /dev/null http://192.168.1.1:8080/api/v1/setup && break
  sleep 0.1
done
ip netns exec "$PREFIX-lan" curl -sf -o /dev/null http://192.168.1.1:8080/api/v1/setup ||
  { echo "routeros-web does not answer on 192.168.1.1:8080" >&2; cat "/run/routeros-lab/$PREFIX/web.log" >&2; exit 1; }

step "browser test (Chromium in $PREFIX-lan)"
ip netns exec "$PREFIX-lan" env LAB_PREFIX="$PREFIX" ARTIFACTS="$ARTIFACTS" \
  CHROMIUM="${CHROMIUM:-/usr/bin/chromium}" \
  WEB_DATA_DIR="/run/routeros-lab/$PREFIX/web" UPGRADE_DIR="$APPLIANCE/upgrade" \
  node tests/browser/e2e.mjs

step "browser test passed; screenshots in $ARTIFACTS"
