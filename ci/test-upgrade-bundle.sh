#!/usr/bin/env bash
# The upgrade bundle's untrusted input, without QEMU: runs the real routeros-upgrade
# (`check`: unpack and verify, install nothing) and the real root helper upgrade-request
# against crafted bundles and requests in a temporary directory, in a network namespace of
# its own (the URL cases use an HTTP server on its loopback). Each case must be refused, or
# be harmless. A few seconds; run as root (ci/test.sh does).
#
# What only the appliance can do (write a slot, reboot) is left to ci/image-test.sh: here
# ROUTEROS_UPGRADE_CMD stands in for the install with `routeros-upgrade check`.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
UPGRADE=$REPO/overlay/usr/sbin/routeros-upgrade
HELPER=$REPO/overlay/usr/lib/routeros-image/upgrade-request

if [[ -z ${UPGRADE_TEST_NETNS:-} ]]; then
    ((EUID == 0)) || { echo "run as root (it uses a network namespace of its own)" >&2; exit 1; }
    exec unshare --net env UPGRADE_TEST_NETNS=1 "$0" "$@"
fi
ip link set lo up

T=$(mktemp -d /tmp/routeros-upgrade-test.XXXXXX)
server_pid=""
cleanup() {
    [[ -z $server_pid ]] || kill "$server_pid" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT

export ROUTEROS_UPGRADE_DATA=$T/data ROUTEROS_UPGRADE_KEY_DIRS=$T/keys
fails=0 passes=0
ok() { echo "ok   $1"; passes=$((passes + 1)); }
bad() { echo "FAIL $1"; [[ -z ${2:-} ]] || sed 's/^/     /' <<<"$2"; fails=$((fails + 1)); }

# --- a signing key and a good bundle (version 1.2) ------------------------------------------
mkdir -p "$T/keys" "$T/src" "$T/web"
openssl genpkey -algorithm ed25519 -out "$T/key.pem" 2>/dev/null
openssl pkey -in "$T/key.pem" -pubout -out "$T/keys/test.pem"
V=1.2
head -c 65536 /dev/urandom >"$T/src/router_$V.root.raw.zst"
echo "a kernel image" >"$T/src/router_$V.efi"
(cd "$T/src" && sha256sum "router_$V.root.raw.zst" "router_$V.efi" >SHA256SUMS)
openssl pkeyutl -sign -inkey "$T/key.pem" -rawin -in "$T/src/SHA256SUMS" -out "$T/src/SHA256SUMS.sig"
tar -C "$T/src" -cf "$T/good.tar" SHA256SUMS SHA256SUMS.sig "router_$V.root.raw.zst" "router_$V.efi"

# craft OUT SPEC...: a tar of the good files, where SPEC "NAME" adds the good file of that
# name, "sym:NAME:TARGET" a symlink, "hard:NAME:TARGET" a hard link, "as:NAME:FILE" the good
# FILE stored under NAME (e.g. ../x), "dir:NAME" a directory.
craft() {
    python3 - "$T/src" "$@" <<'PY'
import io, sys, tarfile
src, out, specs = sys.argv[1], sys.argv[2], sys.argv[3:]
with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tar:
    for spec in specs:
        kind, _, rest = spec.partition(":")
        if not rest:
            tar.add(f"{src}/{kind}", arcname=kind)
            continue
        name, _, target = rest.partition(":")
        if kind == "as":
            tar.add(f"{src}/{target}", arcname=name)
            continue
        info = tarfile.TarInfo(name)
        info.type = {"sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE, "dir": tarfile.DIRTYPE}[kind]
        info.linkname = target
        info.mode = 0o755 if kind == "dir" else 0o644
        tar.addfile(info)
PY
}

# refused NAME WANT CMD...: CMD must fail with WANT in its output.
refused() {
    local name=$1 want=$2 out rc=0
    shift 2
    out=$("$@" 2>&1) || rc=$?
    if ((rc != 0)) && [[ $out == *"$want"* ]]; then ok "$name"; else bad "$name (exit $rc, want '$want')" "$out"; fi
}
accepted() {
    local name=$1 want=$2 out rc=0
    shift 2
    out=$("$@" 2>&1) || rc=$?
    if ((rc == 0)) && [[ $out == *"$want"* ]]; then ok "$name"; else bad "$name (exit $rc, want '$want')" "$out"; fi
}

echo "--- routeros-upgrade check: bundles"
accepted "a good bundle is accepted" "bundle of version $V is good" "$UPGRADE" check "$T/good.tar"

# The efi member is a symlink to a file the web user owns, with the right content at first:
# following it, the checks pass and the content can change before it is used.
cp "$T/src/router_$V.efi" "$T/web/evil.efi"
craft "$T/sym.tar" SHA256SUMS SHA256SUMS.sig "router_$V.root.raw.zst" "sym:router_$V.efi:$T/web/evil.efi"
refused "a symlink member is refused" "member 'router_$V.efi' is a symlink" "$UPGRADE" check "$T/sym.tar"
craft "$T/hard.tar" SHA256SUMS SHA256SUMS.sig "router_$V.root.raw.zst" "hard:router_$V.efi:SHA256SUMS"
refused "a hard link member is refused" "member 'router_$V.efi' is a hard link" "$UPGRADE" check "$T/hard.tar"
craft "$T/dotdot.tar" SHA256SUMS SHA256SUMS.sig "router_$V.root.raw.zst" "router_$V.efi" "as:../router_$V.efi:router_$V.efi"
refused "a member with .. is refused" "unexpected member '../router_$V.efi'" "$UPGRADE" check "$T/dotdot.tar"
[[ ! -e $T/data/upgrade/router_$V.efi ]] && ok "  ...and nothing was written beside the stage" ||
    bad "  ...a file was written beside the stage"
craft "$T/abs.tar" SHA256SUMS SHA256SUMS.sig "router_$V.root.raw.zst" "as:$T/abs-escape:router_$V.efi"
refused "an absolute member path is refused" "unexpected member" "$UPGRADE" check "$T/abs.tar"
[[ ! -e $T/abs-escape ]] && ok "  ...and nothing was written there" || bad "  ...$T/abs-escape was written"
craft "$T/dir.tar" "dir:stage" SHA256SUMS SHA256SUMS.sig "router_$V.root.raw.zst" "router_$V.efi"
refused "a directory member is refused" "member 'stage' is a directory" "$UPGRADE" check "$T/dir.tar"
craft "$T/twice.tar" SHA256SUMS SHA256SUMS.sig "router_$V.root.raw.zst" "router_$V.efi" "router_$V.efi"
refused "a member given twice is refused" "appears twice" "$UPGRADE" check "$T/twice.tar"
ln -s "$T/good.tar" "$T/link.tar"
refused "a bundle path that is a symlink is refused" "link.tar is a symlink, which is not followed" \
    "$UPGRADE" check "$T/link.tar"
# A bundle signed by another key.
openssl genpkey -algorithm ed25519 -out "$T/other.pem" 2>/dev/null
mkdir "$T/forged" && cp "$T/src/"* "$T/forged/"
openssl pkeyutl -sign -inkey "$T/other.pem" -rawin -in "$T/forged/SHA256SUMS" -out "$T/forged/SHA256SUMS.sig"
tar -C "$T/forged" -cf "$T/forged.tar" SHA256SUMS SHA256SUMS.sig "router_$V.root.raw.zst" "router_$V.efi"
refused "a bundle signed by another key is refused" "not a valid signature" "$UPGRADE" check "$T/forged.tar"

stage=$T/data/upgrade/stage
"$UPGRADE" check --keep "$T/good.tar" >/dev/null 2>&1
mode=$(stat -c %a "$stage")
[[ $mode == 700 ]] && ok "the stage is root-only (mode $mode)" || bad "the stage has mode $mode, not 700"

echo "--- routeros-upgrade check: URLs"
mkdir -p "$T/www"
cp "$T/good.tar" "$T/www/b1.tar"
cp "$T/good.tar" "$T/www/b2.tar"
python3 -m http.server --bind 127.0.0.1 --directory "$T/www" 8765 >"$T/http.log" 2>&1 &
server_pid=$!
for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:8765/ && break; sleep 0.1; done
accepted "a good bundle over http is accepted" "bundle of version $V is good" "$UPGRADE" check "http://127.0.0.1:8765/b1.tar"
refused "file:// is refused up front" "only http:// and https:// URLs are accepted, not file:" "$UPGRADE" check "file://$T/good.tar"
refused "ftp:// is refused up front" "only http:// and https:// URLs are accepted, not ftp:" "$UPGRADE" check "ftp://127.0.0.1/b1.tar"
refused "{a,b} in a URL is refused up front" "must not contain { or }" "$UPGRADE" check "http://127.0.0.1:8765/{b1,b2}.tar"
: >"$T/http.log"
refused "[1-2] in a URL is no curl pattern (--globoff): one request for the literal path" \
    "download of http://127.0.0.1:8765/b[1-2].tar failed" "$UPGRADE" check "http://127.0.0.1:8765/b[1-2].tar"
if grep -q 'GET /b[12]\.tar' "$T/http.log"; then
    bad "  ...curl expanded the pattern" "$(cat "$T/http.log")"
else
    ok "  ...curl did not expand it"
fi
refused "a URL with a space is refused up front" "spaces or control characters" "$UPGRADE" check "http://127.0.0.1:8765/b1.tar x"

echo "--- upgrade-request (the root helper) with requests from the web user"
REQ=$T/webdata/upgrade
OUT=$T/out
mkdir -p "$REQ" "$OUT"
# Stands in for the install (a disk slot, systemd-sysupdate): the real `routeros-upgrade
# check --keep`, after the web user has swapped everything it owns (see below).
cat >"$T/fake-install" <<EOF
#!/bin/bash
src=\${!#}
# The web user, racing the helper before the copy: bundle.tar becomes a symlink to a bundle
# signed by another key (the helper has opened the upload already, so this changes nothing).
ln -sfn "$T/forged.tar" "$REQ/bundle.tar"
"$UPGRADE" check --keep "\$src" || exit 1
# ...and after the check: the uploaded inode is overwritten through a second name the web
# user kept. What gets installed is the stage copy: it must still be the checked one.
[[ -e "$REQ/kept.tar" ]] && cat "$T/forged.tar" >"$REQ/kept.tar"
(cd "$stage" && sha256sum --check --strict --quiet SHA256SUMS) || { echo "routeros-upgrade: ERROR: the stage changed"; exit 1; }
echo "routeros-upgrade: version $V installed (stand-in)"
EOF
chmod +x "$T/fake-install"
export ROUTEROS_UPGRADE_REQ_DIR=$REQ ROUTEROS_UPGRADE_OUT=$OUT ROUTEROS_UPGRADE_CMD=$T/fake-install \
    ROUTEROS_UPGRADE_REBOOT_DELAY=0 ROUTEROS_UPGRADE_NO_REBOOT=1
status() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["state"], d["message"])' "$OUT/web-status.json"; }
request() { printf '{"id":"%s","requested_by":"admin","at_ms":1,%s}\n' "$1" "$2" >"$REQ/request.json"; }
# helper_gives NAME WANT: run the helper; its status must contain WANT.
helper_gives() {
    local out st
    out=$("$HELPER" 2>&1) || true
    st=$(status 2>&1)
    if [[ $st == *"$2"* ]]; then ok "$1"; else bad "$1 (want '$2')" "$st
$out
$(cat "$OUT/web-upgrade.log" 2>/dev/null)"; fi
}

cp "$T/good.tar" "$REQ/bundle.tar"
ln "$REQ/bundle.tar" "$REQ/kept.tar"
request a1 '"bundle":"bundle.tar"'
helper_gives "an upload swapped during and after the check: only the checked copy is used" "rebooting installed $V"
cmp -s "$REQ/kept.tar" "$T/forged.tar" && ok "  ...(the web user's file did change)" || bad "  ...the swap did not happen"
[[ ! -e $REQ/bundle.tar && ! -L $REQ/bundle.tar && ! -e $REQ/request.json && -e $T/forged.tar ]] &&
    ok "  ...request and bundle names removed, the swapped-in link not followed" ||
    bad "  ...unexpected request directory" "$(ls -l "$REQ")"
rm -f "$REQ/kept.tar"

# Overwritten before the helper has copied it: the copy fails the check.
cp "$T/good.tar" "$REQ/bundle.tar"
ln "$REQ/bundle.tar" "$REQ/kept.tar"
cat "$T/forged.tar" >"$REQ/kept.tar"
request a0 '"bundle":"bundle.tar"'
helper_gives "an upload changed before the copy is refused by the check of the copy" "failed SHA256SUMS.sig is not a valid signature"
rm -f "$REQ/kept.tar"

ln -s "$T/good.tar" "$REQ/bundle.tar"
request a2 '"bundle":"bundle.tar"'
helper_gives "an uploaded bundle that is a symlink is refused" "failed the uploaded bundle cannot be opened"
[[ -e $T/good.tar && ! -L $REQ/bundle.tar ]] && ok "  ...the link is removed, its target kept" || bad "  ...link or target wrong"

cp "$T/sym.tar" "$REQ/bundle.tar"
request a3 '"bundle":"bundle.tar"'
helper_gives "an upload with a symlink member is refused" "failed bundle refused: member 'router_$V.efi' is a symlink"

ln -s "$T/secret-request.json" "$REQ/request.json"
echo '{"id":"a4","url":"http://127.0.0.1:8765/b1.tar","requested_by":"admin"}' >"$T/secret-request.json"
helper_gives "a request.json that is a symlink is refused" "failed the request was refused"
[[ ! -e $REQ/request.json && ! -L $REQ/request.json ]] && ok "  ...and removed (the path unit does not fire again)" ||
    bad "  ...request.json is still there"

request a5 "\"url\":\"file://$T/good.tar\""
helper_gives "a file:// URL is refused" "failed the request was refused: request.json: bad url"
request a6 '"url":"http://127.0.0.1:8765/{b1,b2}.tar"'
helper_gives "a URL with {a,b} is refused" "failed the request was refused: request.json: the url must not contain { or }"
request a7 '"url":"http://127.0.0.1:8765/b1.tar"'
helper_gives "a good URL request goes through" "rebooting installed $V"

# The request directory itself replaced by a symlink (the web user owns its parent).
mv "$REQ" "$REQ.real"
ln -s "$REQ.real" "$REQ"
request a8 '"url":"http://127.0.0.1:8765/b1.tar"'
helper_gives "a request directory that is a symlink is refused" "failed the request was refused"

echo
echo "$passes passed, $fails failed"
((fails == 0))
