#!/usr/bin/env bash
# Fast checks of setup.sh's flag validation (no package, no changes: every case is refused
# before setup.sh touches anything). The full install/remove test is ci/test-package.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

fails=0
# refused "WHAT" "EXPECTED STDERR TEXT" ARGS...: setup.sh must exit 2 naming the problem.
refused() {
  local what=$1 want=$2 out rc=0
  shift 2
  out=$(./setup.sh --dry-run "$@" 2>&1) || rc=$?
  if [[ $rc == 2 && $out == *"$want"* ]]; then
    echo "ok   $what"
  else
    echo "FAIL $what: want exit 2 and '$want', got exit $rc:"; sed 's/^/     /' <<<"$out"
    fails=$((fails + 1))
  fi
}

lan=(--lan-network 192.168.1.0/24)
refused "--lan-interface .. is not an interface name" \
  "--lan-interface: '..' is not a network interface name" --wan1-interface eth0 --lan-interface .. "${lan[@]}"
refused "--lan-interface . is not an interface name" \
  "--lan-interface: '.' is not a network interface name" --wan1-interface eth0 --lan-interface . "${lan[@]}"
refused "--wan1-interface .. is not an interface name" \
  "--wan1-interface: '..' is not a network interface name" --wan1-interface .. --lan-interface lan0 "${lan[@]}"
refused "a 16-character name is too long" \
  "'abcdefghijklmnop' is not a network interface name" --wan1-interface abcdefghijklmnop --lan-interface lan0 "${lan[@]}"

((fails == 0)) || { echo "$fails setup.sh flag check(s) failed"; exit 1; }
echo "setup.sh flag checks passed"
