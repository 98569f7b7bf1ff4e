#!/usr/bin/env python3
"""Run a shell script in a running ISP guest (ci/lib/isp-guest.sh) through its control serial
port: ttyS1, where the guest's init keeps a plain `sh` reading commands (raw tty, no echo), and
QEMU a unix socket. The script travels base64-encoded (no quoting trouble), runs with its
stdin closed and stderr joined to stdout; its output is printed and its exit code returned.

    isp-guest-ctl.py SOCKET SCRIPT [TIMEOUT]

Exit 124 when the script did not finish within TIMEOUT seconds (default 30), 125 when the
socket cannot be reached.
"""
import base64
import os
import re
import socket
import sys
import time

sock_path, script = sys.argv[1:3]
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
tag = "%x%x" % (os.getpid(), int(time.time() * 1000))
payload = base64.b64encode(script.encode()).decode()
# The markers are printed by printf from two pieces, so an echo of this line (if the tty ever
# echoed) never matches them.
line = (
    f"printf '@@ISP%s\\n' BEGIN{tag}; echo {payload} | base64 -d >/tmp/ctl.{tag}; "
    f"sh /tmp/ctl.{tag} </dev/null 2>&1; printf '@@ISP%s %s\\n' END{tag} $?; rm -f /tmp/ctl.{tag}\n"
)
done_rx = re.compile(
    rb"@@ISPBEGIN" + tag.encode() + rb"\r?\n(.*?)@@ISPEND" + tag.encode() + rb" (\d+)\r?\n", re.S
)

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
deadline = time.time() + timeout
while True:
    try:
        s.connect(sock_path)
        break
    except OSError as e:
        if time.time() > deadline:
            print(f"isp-guest-ctl: cannot connect to {sock_path}: {e}", file=sys.stderr)
            sys.exit(125)
        time.sleep(0.2)
s.settimeout(0.5)
s.sendall(line.encode())
buf = b""
while time.time() < deadline:
    m = done_rx.search(buf)
    if m:
        sys.stdout.write(m.group(1).decode(errors="replace").replace("\r", ""))
        sys.exit(int(m.group(2)))
    try:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    except socket.timeout:
        pass
print(f"isp-guest-ctl: no answer within {timeout:g} s; got: {buf[-300:]!r}", file=sys.stderr)
sys.exit(124)
