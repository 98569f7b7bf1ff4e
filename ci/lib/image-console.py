#!/usr/bin/env python3
"""Run a shell command on the QEMU router through its serial console (for diagnosis when the
network is down, and in the USB stick's live system, which logs root in by itself): logs in
as USER with PASSWORD if the console asks on the console socket of ci/lib/image-vm.sh,
runs `sudo sh -c CMD`, prints its output and logs out.

    image-console.py SOCKET USER PASSWORD CMD [TIMEOUT]
"""
import re
import socket
import sys
import time

sock_path, user, password, cmd = sys.argv[1:5]
timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 120.0
marker = "__RTR_%d__" % int(time.time())

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock_path)
s.settimeout(1.0)
buf = b""


def read_until(pattern, limit):
    global buf
    deadline = time.time() + limit
    rx = re.compile(pattern.encode())
    while time.time() < deadline:
        m = rx.search(buf)
        if m:
            out, buf = buf[: m.end()], buf[m.end():]
            return out
        try:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        except socket.timeout:
            pass
    raise SystemExit(f"console: timed out waiting for {pattern!r}; last output: {buf[-300:]!r}")


def send(text):
    s.sendall(text.encode() + b"\r")


send("")
got = read_until(r"(login: |\$ |# )", 30)
auto = False
if got.endswith(b"login: "):
    # A console that logs in by itself (the USB stick's live system) says so right after the
    # prompt: "router login: root (automatic login)".
    try:
        auto = b"automatic login" in read_until(r"(automatic login|[$#] )", 4)
    except SystemExit:
        auto = False
if auto:
    read_until(r"[$#] ", 60)
elif got.endswith(b"login: "):
    send(user)
    read_until(r"Password: ", 20)
    send(password)
    read_until(r"[$#] ", 60)
send("")
read_until(r"[$#] ", 10)
quoted = "'" + cmd.replace("'", "'\\''") + "'"
send(f"stty -echo cols 250; sudo sh -c {quoted} 2>&1; echo {marker}$?")
out = read_until(marker + r"\d+", timeout)
send("stty echo; exit")
text = out.decode(errors="replace").replace("\r", "")
body, _, rc = text.rpartition(marker)
lines = body.split("\n")
print("\n".join(lines[1:]) if len(lines) > 1 else body, end="")
sys.exit(int(rc.strip() or 1))
