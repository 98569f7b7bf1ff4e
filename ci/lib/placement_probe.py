#!/usr/bin/env python3
"""Helpers of ci/bench-placement.sh: count which WAN new connections use, read iperf3 results,
follow the daemon's learned speeds.

  server --addr A --port P           TCP server (internet host): answers each connection with
                                     the source address it sees (the router masquerades, so the
                                     WAN) and closes it; prints "ready" once listening
  probe --server A --port P --count N --wans wan1=IP,wan2=IP
                                     N new connections one after another (LAN client); prints
                                     {"wan1": n1, "wan2": n2, "other": k} as JSON
  goodput FILE...                    iperf3 -J results: the received goodput of each, Mbit/s
  stats X...                         "min median" of numbers
  follow --socket S --wan W --below KBIT [--since UNIX_TIME] [--timeout T]
                                     poll the daemon's status every 0.5 s until W's learned
                                     download speed is at or below KBIT; prints the seconds
                                     since UNIX_TIME (default: the start) and the speeds and
                                     weights then (exit 1 on timeout)
  speeds --socket S                  one line: each WAN's download speed (source), weight, share
"""

import argparse
import json
import socket
import statistics
import sys
import time

# The daemon's control socket, as the failover bench's helper speaks it.
sys.path.insert(0, __import__("os").path.dirname(__file__))
from udp_probe import ctl  # noqa: E402


def cmd_server(a):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((a.addr, a.port))
    srv.listen(128)
    print("ready", flush=True)
    while True:
        conn, peer = srv.accept()
        try:
            conn.sendall(f"{peer[0]}\n".encode())
        except OSError:
            pass
        conn.close()


def cmd_probe(a):
    wans = dict(reversed(kv.split("=", 1)) for kv in a.wans.split(","))
    counts = {name: 0 for name in wans.values()}
    counts["other"] = 0
    for _ in range(a.count):
        s = socket.create_connection((a.server, a.port), timeout=3)
        s.settimeout(3)
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(256)
            if not chunk:
                break
            buf += chunk
        s.close()
        counts[wans.get(buf.decode().strip(), "other")] += 1
        time.sleep(a.gap)
    print(json.dumps(counts))


def cmd_goodput(a):
    for path in a.files:
        with open(path) as f:
            result = json.load(f)
        if "error" in result:
            sys.exit(f"{path}: iperf3 error: {result['error']}")
        bps = result["end"]["sum_received"]["bits_per_second"]
        print(round(bps / 1e6, 2))


def cmd_stats(a):
    xs = [float(x) for x in a.numbers]
    print(f"{min(xs):.3f} {statistics.median(xs):.3f}")


def wans_of(status):
    return {w["name"]: w for w in status.get("wans", [])}


def describe(status):
    parts = []
    for name, w in sorted(wans_of(status).items()):
        speed = w.get("speed_down") or {}
        parts.append(
            f"{name} {speed.get('kbit', 0) / 1000:.1f} Mbit/s ({speed.get('source', '?')}) "
            f"weight {w.get('weight')} share {w.get('share')}"
        )
    return "; ".join(parts)


def cmd_speeds(a):
    print(describe(ctl(a.socket, {"cmd": "status"})))


def cmd_follow(a):
    start = a.since if a.since is not None else time.time()
    while True:
        status = ctl(a.socket, {"cmd": "status"})
        speed = (wans_of(status).get(a.wan) or {}).get("speed_down") or {}
        took = time.time() - start
        if speed.get("source") == "learned" and speed.get("kbit", 1 << 62) <= a.below:
            print(f"{took:.1f} {describe(status)}")
            return
        if time.time() - start > a.timeout:
            print(f"timeout {describe(status)}")
            sys.exit(1)
        time.sleep(0.5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("server")
    p.add_argument("--addr", required=True)
    p.add_argument("--port", type=int, required=True)
    p.set_defaults(func=cmd_server)
    p = sub.add_parser("probe")
    p.add_argument("--server", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--wans", required=True, help="name=address,...")
    p.add_argument("--gap", type=float, default=0.05, help="seconds between connections")
    p.set_defaults(func=cmd_probe)
    p = sub.add_parser("goodput")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=cmd_goodput)
    p = sub.add_parser("stats")
    p.add_argument("numbers", nargs="+")
    p.set_defaults(func=cmd_stats)
    p = sub.add_parser("speeds")
    p.add_argument("--socket", required=True)
    p.set_defaults(func=cmd_speeds)
    p = sub.add_parser("follow")
    p.add_argument("--socket", required=True)
    p.add_argument("--wan", required=True)
    p.add_argument("--below", type=int, required=True, help="kbit/s")
    p.add_argument("--timeout", type=float, default=90, help="seconds after --since")
    p.add_argument("--since", type=float, help="count from this Unix time (default: now)")
    p.set_defaults(func=cmd_follow)
    a = ap.parse_args()
    a.func(a)


if __name__ == "__main__":
    main()
