# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source this
# Shared helpers for ci/image-build.sh and ci/image-test.sh. Source it, do not run it.

IMG_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Everything big (mkosi, its tools tree and caches, outputs, test disks) lives here; it is
# inside target/, which .gitignore already covers.
IMG_TARGET=${IMG_TARGET:-$IMG_REPO_ROOT/target/image}

# The pinned mkosi: Debian trixie's package (architecture all), fetched with apt-get download
# through a private apt state and unpacked; nothing is installed on the host.
MKOSI_DEB_VERSION=25.3-7
MKOSI_DEB_SHA256=ef56c81324fd47d65490e944ec4697bb3f6fb21326d0d071bfc2fb5ba5383252
MKOSI_DIR=$IMG_TARGET/mkosi-$MKOSI_DEB_VERSION

img_log() { printf '[image %(%T)T] %s\n' -1 "$*" >&2; }
img_die() { printf '[image %(%T)T] ERROR: %s\n' -1 "$*" >&2; exit 1; }

# img_need_pkgs PKG...: apt-get install those Debian packages that are not installed
# (ci/lib/deps.sh's ensure_packages; its progress goes to stderr here, stdout is reports).
# shellcheck source=ci/lib/deps.sh
source "$IMG_REPO_ROOT/ci/lib/deps.sh"
img_need_pkgs() { ensure_packages "$@" >&2; }

# img_fetch_mkosi: unpack the pinned mkosi into $MKOSI_DIR (once).
img_fetch_mkosi() {
    [[ -e $MKOSI_DIR/.ok ]] && return 0
    img_need_pkgs python3 apt dpkg debian-archive-keyring
    local apt=$IMG_TARGET/apt-trixie
    rm -rf "$apt" "$MKOSI_DIR"
    mkdir -p "$apt"/{lists/partial,cache/archives/partial,etc/sources.list.d,etc/preferences.d}
    touch "$apt/status"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
        >"$apt/etc/sources.list"
    local opts=(-o "Dir::Etc=$apt/etc" -o "Dir::Etc::SourceList=$apt/etc/sources.list"
        -o "Dir::Etc::SourceParts=$apt/etc/sources.list.d" -o "Dir::State=$apt"
        -o "Dir::State::Lists=$apt/lists" -o "Dir::State::status=$apt/status"
        -o "Dir::Cache=$apt/cache" -o APT::Architecture=amd64 -o APT::Sandbox::User=root)
    img_log "fetching mkosi $MKOSI_DEB_VERSION (Debian trixie package)"
    apt-get "${opts[@]}" -qq update
    (cd "$apt" && apt-get "${opts[@]}" -qq download "mkosi=$MKOSI_DEB_VERSION")
    local deb=$apt/mkosi_${MKOSI_DEB_VERSION}_all.deb
    echo "$MKOSI_DEB_SHA256  $deb" | sha256sum -c --quiet - || img_die "mkosi package checksum mismatch"
    dpkg-deb -x "$deb" "$MKOSI_DIR"
    touch "$MKOSI_DIR/.ok"
    rm -rf "$apt"
}

# img_mkosi ARGS...: run the pinned mkosi from image/ (its config directory).
img_mkosi() {
    (cd "$IMG_REPO_ROOT/image" &&
        PYTHONPATH=$MKOSI_DIR/usr/lib/python3/dist-packages python3 -m mkosi "$@")
}

# img_human BYTES -> "123.4 MiB"
img_human() { numfmt --to=iec-i --suffix=B --format='%.1f' "$1"; }

# img_sizes FILE...: "name: apparent / allocated" per file.
img_sizes() {
    local f
    for f in "$@"; do
        [[ -e $f ]] || continue
        printf '  %-40s %10s apparent, %10s on disk\n' "$(basename "$f")" \
            "$(img_human "$(stat -c %s "$f")")" "$(img_human "$(($(stat -c %b "$f") * 512))")"
    done
}
