#!/usr/bin/env bash
# Build the release binaries and the Debian package into target/debian/; prints the
# package's path and size.
#   ci/package-build.sh              cargo build --release --locked, then packaging/build-deb.sh
#   ci/package-build.sh --no-cargo   package the binaries already in target/release
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/lib/deps.sh

cargo_build=1
for arg in "$@"; do
  case "$arg" in
    --no-cargo) cargo_build=0 ;;
    *) echo "package-build.sh: unknown argument '$arg' (only --no-cargo)" >&2; exit 2 ;;
  esac
done

# dpkg-dev: dpkg-shlibdeps and dpkg-parsechangelog; binutils: strip. Installing needs root.
if [[ $(id -u) -eq 0 ]]; then
  ensure_packages dpkg-dev binutils
fi
if (( cargo_build )); then
  ensure_rust
  cargo build --release --locked --bins
fi

deb=$(packaging/build-deb.sh --bin-dir target/release --out target/debian)
printf '%s %s\n' "$deb" "$(du -h "$deb" | cut -f1)"
