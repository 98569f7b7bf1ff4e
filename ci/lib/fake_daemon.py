#!/usr/bin/env python3
"""A stand-in for routeros-watchdog's control socket, for benchmarks of routeros-web.

Answers the newline-delimited JSON requests routeros-web sends (status, events, history,
disable/enable/maintenance, get_config/apply_config/confirm_config/config_history/
rollback_config) with canned but plausible answers, at once. Byte counters grow so that
throughput figures are computed. Usage: fake_daemon.py --socket PATH [--wans N]
"""

import argparse
import json
import os
import socketserver
import threading
import time

CONFIG = """[[wan_interfaces]]
name = "wan1"
gateway = "192.0.2.1"

[[wan_interfaces]]
name = "wan2"
gateway = "198.51.100.1"

[lan]
interface = "lan0"
address = "192.168.1.1/24"

[health_check]
targets = ["203.0.113.1"]
"""


class State:
    def __init__(self, wans):
        self.lock = threading.Lock()
        self.start = time.time()
        self.wans = [f"wan{i + 1}" for i in range(wans)]
        self.calls = 0

    def now_ms(self):
        return int(time.time() * 1000)

    def status(self):
        with self.lock:
            self.calls += 1
        elapsed = time.time() - self.start
        cards = []
        for i, name in enumerate(self.wans):
            rate = 12_500_000 // (i + 1)  # bytes/s: 100 Mbit/s, 50 Mbit/s, ...
            cards.append({
                "name": name, "table": 100 * (i + 1), "mark": (i + 1) << 8, "weight": 1,
                "priority": 1, "gateway": f"192.0.2.{i + 1}", "address": f"192.0.2.{100 + i}",
                "present": True, "carrier": True, "state": "up", "since_ms": 1000,
                "latency_ms": 10.0 + i, "jitter_ms": 0.5, "loss_percent": 0.0,
                "connections": 100 * (i + 1), "rx_bytes": int(elapsed * rate),
                "tx_bytes": int(elapsed * rate / 10), "usable": True, "disabled": False,
                "maintenance_until": None, "active": True,
            })
        return {"ok": True, "config": "/opt/routeros/config/routeros.toml", "mode": "ecmp",
                "active_wans": self.wans, "failover_paused_until": None, "wans": cards,
                "applied_at": 1000, "last_apply_ms": 3, "last_error": None}

    def answer(self, req):
        cmd = req.get("cmd")
        wan = req.get("wan")
        if cmd == "status":
            return self.status()
        if cmd == "events":
            return {"ok": True, "events": []}
        if cmd == "history":
            now = self.now_ms()
            points = [{"t_ms": now - 5000 * k, "latency_ms": 10.0, "jitter_ms": 0.5,
                       "loss_percent": 0.0} for k in range(min(req.get("seconds", 60) // 5, 720))]
            return {"ok": True, "wan": wan, "points": points[::-1]}
        if cmd in ("disable", "enable", "maintenance"):
            if wan is not None and wan not in self.wans:
                return {"ok": False, "error": f"`{wan}` is not a WAN interface"}
            return {"ok": True, "message": f"{wan} {cmd} by the operator"}
        if cmd == "get_config":
            return {"ok": True, "toml": CONFIG, "version": 1, "pending": None}
        if cmd in ("apply_config", "rollback_config"):
            return {"ok": True, "version": 2,
                    "pending": {"id": "1", "rollback_at_ms": self.now_ms() + 60_000}}
        if cmd == "confirm_config":
            return {"ok": True}
        if cmd == "config_history":
            return {"ok": True, "versions": [{"version": 1, "saved_at_ms": 1000, "by": "install"}]}
        return {"ok": False, "error": f"unknown request {cmd!r}"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True)
    parser.add_argument("--wans", type=int, default=2)
    args = parser.parse_args()
    state = State(args.wans)

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            for line in self.rfile:
                try:
                    answer = state.answer(json.loads(line))
                except ValueError as e:
                    answer = {"ok": False, "error": f"bad request: {e}"}
                self.wfile.write((json.dumps(answer) + "\n").encode())
                self.wfile.flush()

    if os.path.exists(args.socket):
        os.unlink(args.socket)
    socketserver.ThreadingUnixStreamServer.daemon_threads = True
    with socketserver.ThreadingUnixStreamServer(args.socket, Handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
