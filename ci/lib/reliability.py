#!/usr/bin/env python3
"""Helpers for ci/test-reliability.sh (standard library only). Subcommands:

  api-key     finish the first-boot password step on a fresh routeros-web and mint an admin
              API key; prints the key (run inside the LAN namespace).
  web-flood   hold N idle TCP connections (and as many half-sent request headers) to a web
              server from one address, until SIGTERM; prints how many were accepted.
  http-check  one GET from a given source address; prints status and seconds, fails on error
              or when slower than --max-seconds.
  ctl-flood   hold N idle connections to the daemon's control socket until SIGTERM.
  ctl-line    send one over-long line (--mib MiB, no newline until the end) to the control
              socket; prints what the daemon answered (or that it closed the connection).
  ctl         one request line to the control socket; prints the answer.
"""

import argparse
import json
import resource
import socket
import sys
import time
import urllib.request

from udp_probe import stop_on_term  # same folder: the SIGTERM/SIGINT handling of the probes


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, min(hard, n + 64))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def wait_for_term():
    state = stop_on_term()
    while not state["stop"]:
        time.sleep(0.2)


def open_many(n, connect):
    """Call connect(i) n times, each on a fresh socket it returns; keep those that connected."""
    raise_nofile(n)
    socks = []
    for i in range(n):
        try:
            socks.append(connect(i))
        except OSError:
            pass
    return socks


def http(method, url, body=None, headers=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def cmd_api_key(a):
    base = a.base.rstrip("/")
    origin = {"Origin": base}
    status, headers, body = http(
        "POST", base + "/api/v1/login", {"username": "admin", "password": a.default_password}
    )
    if status != 200:
        sys.exit(f"login with the default password: {status} {body[:200]!r}")
    cookie = headers["Set-Cookie"].split(";")[0]
    auth = dict(origin, Cookie=cookie)
    status, headers, body = http(
        "POST", base + "/api/v1/setup/password", {"new_password": a.password}, auth
    )
    if status not in (200, 204):
        sys.exit(f"setting the password: {status} {body[:200]!r}")
    # The password change may hand the caller a fresh session cookie.
    if headers.get("Set-Cookie"):
        auth["Cookie"] = headers["Set-Cookie"].split(";")[0]
    status, _, body = http(
        "POST", base + "/api/v1/keys", {"role": "admin", "label": "reliability"}, auth
    )
    if status != 201:
        sys.exit(f"creating an API key: {status} {body[:200]!r}")
    print(json.loads(body)["key"])


def cmd_web_flood(a):
    def connect(i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.settimeout(2)
            s.bind((a.source, 0))
            s.connect((a.host, a.port))
            if i % 2:
                # Slowloris: a request line and part of the headers, never finished.
                s.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        except OSError:
            s.close()
            raise
        return s

    socks = open_many(a.conns, connect)
    print(f"web-flood: {len(socks)} of {a.conns} connections opened from {a.source}", flush=True)
    wait_for_term()
    alive = 0
    for s in socks:
        try:
            s.setblocking(False)
            alive += s.recv(1) != b""
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
        s.close()
    print(f"web-flood: {alive} still open at the end", flush=True)


def cmd_http_check(a):
    # urllib cannot pick a source address: use a raw socket for one HTTP/1.0 request.
    t0 = time.monotonic()
    try:
        s = socket.create_connection((a.host, a.port), timeout=a.max_seconds, source_address=(a.source, 0))
        s.settimeout(a.max_seconds)
        s.sendall(f"GET {a.path} HTTP/1.0\r\nHost: {a.host}:{a.port}\r\n\r\n".encode())
        head = s.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace")
        s.close()
    except OSError as e:
        sys.exit(f"http-check {a.host}:{a.port}{a.path} from {a.source}: {e}")
    took = time.monotonic() - t0
    print(f"http-check {a.path} from {a.source}: {head!r} in {took:.3f}s")
    if not head.startswith("HTTP/1.") or took > a.max_seconds:
        sys.exit(1)


def cmd_ctl_flood(a):
    def connect(_i):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(a.socket)
        except OSError:
            s.close()
            raise
        return s

    socks = open_many(a.conns, connect)
    print(f"ctl-flood: {len(socks)} of {a.conns} connections opened", flush=True)
    wait_for_term()
    for s in socks:
        s.close()


def cmd_ctl_line(a):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(a.socket)
    s.settimeout(30)
    chunk = b"x" * (1 << 20)
    sent = 0
    try:
        for _ in range(a.mib):
            s.sendall(chunk)
            sent += 1
        s.sendall(b"\n")
    except OSError as e:
        # The daemon answers and closes once the line passes its cap: read what it said.
        print(f"ctl-line: the daemon stopped reading after {sent} MiB ({e.__class__.__name__})")
    try:
        answer = s.recv(4096).decode(errors="replace").strip() or "(closed without an answer)"
    except OSError as e:
        answer = f"(no answer: {e.__class__.__name__})"
    print(f"ctl-line: {answer[:200]}")


def cmd_ctl(a):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(a.socket)
    s.sendall(a.request.encode() + b"\n")
    buf = b""
    while not buf.endswith(b"\n"):
        part = s.recv(65536)
        if not part:
            break
        buf += part
    print(buf.decode().strip())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("api-key")
    p.add_argument("--base", required=True, help="http://192.168.1.1:8080")
    p.add_argument("--password", required=True)
    p.add_argument("--default-password", default="routeros123")
    p = sub.add_parser("web-flood")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--conns", type=int, default=1100)
    p = sub.add_parser("http-check")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--path", default="/api/v1/setup")
    p.add_argument("--max-seconds", type=float, default=2.0)
    p = sub.add_parser("ctl-flood")
    p.add_argument("--socket", required=True)
    p.add_argument("--conns", type=int, default=2000)
    p = sub.add_parser("ctl-line")
    p.add_argument("--socket", required=True)
    p.add_argument("--mib", type=int, default=300)
    p = sub.add_parser("ctl")
    p.add_argument("--socket", required=True)
    p.add_argument("request")
    a = ap.parse_args()
    {
        "api-key": cmd_api_key,
        "web-flood": cmd_web_flood,
        "http-check": cmd_http_check,
        "ctl-flood": cmd_ctl_flood,
        "ctl-line": cmd_ctl_line,
        "ctl": cmd_ctl,
    }[a.cmd](a)


if __name__ == "__main__":
    main()
