# Shared install helpers for ci/*.sh: install only what is missing, from the distribution.

require_root() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "run as root (network namespaces, nftables and routing need it): sudo $0 $*" >&2
    exit 1
  fi
}

# ensure_packages PKG...: apt-get install the packages that dpkg does not list as installed.
ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if (( ${#missing[@]} )); then
    echo "installing: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# ensure_rust: a stable toolchain with rustfmt and clippy. Without cargo: rustup from the
# distribution where it has one (Ubuntu 24.04), else rustup's installer, then the stable
# toolchain (both need static.rust-lang.org; Debian 12's own rustc is too old for our crates).
ensure_rust() {
  [[ -d "$HOME/.cargo/bin" ]] && export PATH="$HOME/.cargo/bin:$PATH"
  if ! command -v cargo >/dev/null; then
    echo "no Rust toolchain: installing rustup and the stable toolchain"
    if ! command -v rustup >/dev/null; then
      if apt-cache show rustup >/dev/null 2>&1; then
        ensure_packages rustup
      else
        ensure_packages curl ca-certificates
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --no-modify-path
        export PATH="$HOME/.cargo/bin:$PATH"
      fi
    fi
    rustup toolchain install stable --profile minimal -c clippy,rustfmt && rustup default stable || {
      echo "could not install a Rust toolchain (is https://static.rust-lang.org reachable?)" >&2
      exit 1
    }
  fi
  if command -v rustup >/dev/null; then
    rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
  fi
}
