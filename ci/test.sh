#!/usr/bin/env bash
# Every test of the project, as root, on a fresh Debian 12 / Ubuntu 24.04 machine:
# installs what it needs, then formatting and lint checks, unit tests, the namespace
# end-to-end tests (real kernel routing, nftables, conntrack), the benchmarks, the
# appliance image booted under QEMU and the reliability suite.
#   sudo ci/test.sh            everything
#   sudo ci/test.sh --quick    skip the benchmarks, the appliance image test and the reliability suite
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/lib/deps.sh

quick=0
[[ "${1:-}" == "--quick" ]] && quick=1

require_root
# The namespace labs need dnsmasq (DHCP, router advertisements), Kea and radvd (an ISP that
# only delegates IPv6), D-Bus (their own networkd), keepalived and conntrackd (the HA pair):
# installed here, once, since the labs of two parallel tests would otherwise race for the
# package manager's lock.
ensure_packages nftables iproute2 conntrack iperf3 socat python3 procps curl openssl nmap iputils-ping \
  dnsmasq-base kea-dhcp6-server radvd dbus keepalived conntrackd
# On a machine run by systemd the package starts the host's own conntrackd, which would sync
# (and on a role change, commit) the host's connections next to the tests': stop it.
if [[ -d /run/systemd/system ]]; then systemctl stop conntrackd keepalived 2>/dev/null || true; fi
ensure_rust

step() { printf '\n==== %s\n' "$*"; }

step "format and lint"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "web UI checks (pure helpers, no inline code, nothing from other origins)"
command -v node >/dev/null || ensure_packages nodejs
node --test router/web/web-ui-tests/*.test.mjs

step "setup.sh flag checks (fast, --dry-run refusals)"
ci/test-setup-flags.sh

step "image first boot: the NoCloud seed reader (routeros-seed), no root or QEMU"
python3 -c 'import yaml' 2>/dev/null || ensure_packages python3-yaml
python3 ci/test-seed-early.py

step "upgrade bundle and root helper: links, paths, swaps, URL schemes and globbing (no QEMU)"
ci/test-upgrade-bundle.sh

step "unit and namespace tests"
# Debug profile: a dozen test binaries with release LTO would cost more build time than the
# tests take. Two threads: each namespace test builds its own lab; more would fight for 2 cores.
# Tests that need root (namespaces, nftables, conntrack) are `#[ignore = "needs root"]`, so a
# plain `cargo test` as a normal user lists them as ignored instead of passing them unrun; we
# are root here, so --include-ignored runs them. That flag runs *every* ignored test, so
# "needs root" must stay the only reason to ignore one: a test that should not run in CI
# belongs behind an env var or a feature, not #[ignore]. The grep enforces it.
if other=$(grep -rnE '#\[ignore' router --include='*.rs' | grep -vF '#[ignore = "needs root"]'); then
  printf 'ignored for another reason than "needs root" (would run here):\n%s\n' "$other" >&2
  exit 1
fi
cargo test --workspace --locked -- --include-ignored --test-threads=2

step "browser test: wizard, live dashboard, failover, kill-switch dialog, audit, config errors"
ci/test-browser.sh

step "package: .deb build, lintian, install/upgrade/remove/purge, setup.sh flags, hardened units"
ci/test-package.sh

if (( ! quick )); then
  step "benchmark: throughput and rule-apply time"
  ci/bench-throughput.sh
  step "benchmark: failover outage, lost connections, flapping"
  ci/bench-failover.sh
  step "benchmark: web server latency under load, SSE clients, memory"
  ci/bench-web.sh
  step "benchmark: placement by spare capacity (4 flows at once, a saturated line, a line that slows down)"
  ci/bench-placement.sh
  step "benchmark: HA pair (master killed under 50 TCP connections and a UDP stream, its return, a cut sync link)"
  ci/bench-ha.sh

  step "ISP guest (QEMU): PPPoE server and VLAN 7 DHCP, checked with a client guest"
  ci/test-isp-guest.sh

  step "appliance image: mkosi build, QEMU TCG boots: LAN/WANs/failover, PPPoE + VLAN lines (ISP guest, wizard), A/B upgrade, rollback"
  # Versions 2 and 3 are derived from version 1 (no second mkosi build) and the broken one gets
  # one boot attempt: the CI-sized run (see ci/image-test.sh --help).
  ci/image-test.sh --ci
  # mkosi's caches and raw outputs (~7 GB) only speed up the next local build; on a machine
  # with little disk left they go, so the reliability stage's builds have room.
  free_gb=$(df --output=avail -BG target | awk 'NR == 2 { print int($1) }')
  if (( free_gb < 20 )); then
    echo "only ${free_gb} GB free: removing the image build's caches (target/image/{cache,pkgcache,out,work})"
    rm -rf target/image/cache target/image/pkgcache target/image/out target/image/work
  fi
  df -h target | tail -1

  step "reliability: WAN port scans (IPv4 + IPv6), kill -9 under load, resource exhaustion, schemathesis, long property runs"
  REL_API_SECONDS=180 ci/test-reliability.sh
fi

step "all tests passed"
