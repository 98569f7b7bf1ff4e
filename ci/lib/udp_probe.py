#!/usr/bin/env python3
"""Probe helpers for ci/bench-failover.sh (standard library only). Subcommands:

  server   UDP and TCP echo server on the internet host (one or more --addr, IPv4 and/or
           IPv6); every answer carries the address the server saw (the router masquerades,
           so it names the WAN that carried it).
  udp      LAN-side UDP prober: one long-lived socket (fixed source port) sends a probe
           every --interval; in addition a new socket (new source port, i.e. a new flow)
           sends one probe every --fresh-interval and is closed after --fresh-timeout.
           --want-addr: the long-lived socket is one whose flow the router put on the WAN of
           that address (new sockets until one is answered through it; for IPv6, which the
           traffic policies do not steer).
  tcp      LAN-side long-lived TCP connections, each exchanging a line every --interval.
  wait     block until a probe log shows an answer of a kind, after a time, via an address.
  status-wait  poll the daemon's control socket until a WAN is (not) active.
  ready    poll {"cmd":"history"} until a new probe round of every WAN was fully answered (so
           a scenario starts with no failed round counted against a WAN), then wait --delay.
  ctl      send one control-socket request, print the JSON answer.
  snapshot the daemon's events and every WAN's probe-round history, as one JSON file.
  analyze  turn the logs and the daemon's events of one scenario into key=value lines.

Times are wall-clock Unix milliseconds everywhere (the daemon's events use the same clock).
The socket family (IPv4 or IPv6) follows the server address. Answers name "addr:port"; the
address is everything before the last colon (so IPv6 addresses work unbracketed).
Log lines (whitespace separated):
  udp:  M seq t_send | m seq t_send t_recv addr | F id t_send sport | f id t_send t_recv addr
  tcp:  C i t sport | r i t addr | E i t reason
"""

import argparse
import json
import selectors
import signal
import socket
import sys
import time


def now_ms():
    return time.time() * 1000.0


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def any_addr(fam):
    return "::" if fam == socket.AF_INET6 else "0.0.0.0"


def peer_text(peer):
    """"addr:port" of a peer (an IPv6 peer is a 4-tuple)."""
    return "%s:%d" % peer[:2]


def answer_addr(text):
    """The address in an answer's "addr:port"."""
    return text.rsplit(":", 1)[0]


def stop_on_term():
    """SIGTERM/SIGINT end the main loops cleanly (the logs are line-buffered)."""
    state = {"stop": False}

    def handler(_sig, _frm):
        state["stop"] = True

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return state


# --- server ---------------------------------------------------------------------------------


def cmd_server(a):
    sel = selectors.DefaultSelector()
    for addr in a.addr:
        u = socket.socket(family(addr), socket.SOCK_DGRAM)
        u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        u.bind((addr, a.udp_port))
        u.setblocking(False)
        t = socket.socket(family(addr), socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((addr, a.tcp_port))
        t.listen(256)
        t.setblocking(False)
        sel.register(u, selectors.EVENT_READ, "udp")
        sel.register(t, selectors.EVENT_READ, "listen")
    st = stop_on_term()
    print("ready", flush=True)
    while not st["stop"]:
        for key, _ in sel.select(timeout=0.5):
            if key.data == "udp":
                u = key.fileobj
                try:
                    data, peer = u.recvfrom(2048)
                    u.sendto(data.strip() + (" " + peer_text(peer)).encode(), peer)
                except OSError:
                    pass
            elif key.data == "listen":
                try:
                    conn, peer = key.fileobj.accept()
                except OSError:
                    continue
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ, ["tcp", peer, b""])
            else:
                conn, data = key.fileobj, b""
                try:
                    data = conn.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    pass
                if not data:
                    sel.unregister(conn)
                    conn.close()
                    continue
                buf = key.data[2] + data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    try:
                        conn.send(line + (" %s\n" % peer_text(key.data[1])).encode())
                    except OSError:
                        pass
                key.data[2] = buf


# --- UDP prober -----------------------------------------------------------------------------


def main_socket(a, fam, dst, out):
    """The long-lived probe socket and how many sockets it took. Without --want-addr the
    first one. With it, a socket whose flow is answered through that address: the router
    balances each new flow over its WANs by weight, so a few new sockets (new source ports)
    find one it put there; the others are closed (their conntrack entries time out unused).
    Exits 1 after --want-tries sockets."""
    for tries in range(1, (a.want_tries if a.want_addr else 1) + 1):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.bind((any_addr(fam), 0))
        if not a.want_addr:
            return s, tries
        s.settimeout(0.2)
        via = None
        for _ in range(10):               # up to 2 s: the first packets of a flow may be lost
            try:
                s.sendto(b"p %d" % tries, dst)
                parts = s.recv(2048).decode(errors="replace").split()
                if len(parts) == 3 and parts[0] == "p" and parts[1] == str(tries):
                    via = answer_addr(parts[2])
                    break
            except OSError:
                pass                      # timeout, or no route for a moment
        out.write("# try %d sport %d answered via %s\n" % (tries, s.getsockname()[1], via))
        if via == a.want_addr:
            return s, tries
        s.close()
    sys.exit("udp: no flow answered through %s after %d sockets" % (a.want_addr, a.want_tries))


def cmd_udp(a):
    out = open(a.log, "a", buffering=1)
    dst = (a.server, a.port)
    fam = family(a.server)
    sel = selectors.DefaultSelector()
    # Unconnected sockets (sendto): ICMP errors from a dead ISP are not reported to them, so
    # the prober keeps sending at its pace whatever happens upstream.
    main, tries = main_socket(a, fam, dst, out)
    main.setblocking(False)
    sel.register(main, selectors.EVENT_READ, "m")
    out.write("# main sport %d (after %d tries)\n" % (main.getsockname()[1], tries))
    sent = {}                       # main seq -> t_send
    fresh = {}                      # fresh id -> (socket, t_send, close_at)
    seq = fid = 0
    next_main = next_fresh = time.time()
    st = stop_on_term()
    while not st["stop"]:
        now = time.time()
        if now >= next_main:
            t = now_ms()
            try:
                main.sendto(b"m %d" % seq, dst)
            except OSError:
                pass                # e.g. no route for a moment: counts as lost
            sent[seq] = t
            out.write("M %d %.1f\n" % (seq, t))
            seq += 1
            next_main += a.interval
            if next_main < now:     # fell behind (stopped?): no burst
                next_main = now + a.interval
            sent.pop(seq - 5000, None)
        if a.fresh_interval > 0 and now >= next_fresh:
            s = socket.socket(fam, socket.SOCK_DGRAM)
            s.bind((any_addr(fam), 0))
            s.setblocking(False)
            t = now_ms()
            try:
                s.sendto(b"f %d" % fid, dst)
            except OSError:
                pass
            fresh[fid] = (s, t, now + a.fresh_timeout)
            sel.register(s, selectors.EVENT_READ, fid)
            out.write("F %d %.1f %d\n" % (fid, t, s.getsockname()[1]))
            fid += 1
            next_fresh += a.fresh_interval
            if next_fresh < now:
                next_fresh = now + a.fresh_interval
        for i in [i for i, (_, _, until) in fresh.items() if until <= now]:
            s = fresh.pop(i)[0]
            sel.unregister(s)
            s.close()
        deadline = min([next_main] + ([next_fresh] if a.fresh_interval > 0 else []))
        for key, _ in sel.select(timeout=max(0.0, deadline - time.time())):
            try:
                data = key.fileobj.recv(2048)
            except OSError:
                continue
            t = now_ms()
            parts = data.decode(errors="replace").split()
            if len(parts) != 3:
                continue
            kind, n, addr = parts[0], int(parts[1]), answer_addr(parts[2])
            if kind == "m" and n in sent:
                out.write("m %d %.1f %.1f %s\n" % (n, sent[n], t, addr))
            elif kind == "f" and n in fresh:
                out.write("f %d %.1f %.1f %s\n" % (n, fresh[n][1], t, addr))


# --- TCP connections ------------------------------------------------------------------------


def cmd_tcp(a):
    out = open(a.log, "a", buffering=1)
    sel = selectors.DefaultSelector()
    conns = {}
    start = time.time()
    for i in range(a.conns):
        try:
            s = socket.create_connection((a.server, a.port), timeout=3)
        except OSError as e:
            out.write("E %d %.1f connect:%s\n" % (i, now_ms(), type(e).__name__))
            continue
        s.setblocking(False)
        out.write("C %d %.1f %d\n" % (i, now_ms(), s.getsockname()[1]))
        # Stagger the lines so the connections do not all talk in the same millisecond.
        conns[i] = {"s": s, "buf": b"", "seq": 0,
                    "next": start + a.interval * i / max(1, a.conns)}
        sel.register(s, selectors.EVENT_READ, i)

    def fail(i, why):
        c = conns.pop(i)
        out.write("E %d %.1f %s\n" % (i, now_ms(), why))
        sel.unregister(c["s"])
        c["s"].close()

    st = stop_on_term()
    while not st["stop"]:
        now = time.time()
        for i in list(conns):
            c = conns[i]
            if now >= c["next"]:
                try:
                    c["s"].send(b"%d\n" % c["seq"])
                except BlockingIOError:
                    pass            # send buffer full (stalled path): try again next time
                except OSError as e:
                    fail(i, "send:%s" % (e.strerror or type(e).__name__).replace(" ", "_"))
                    continue
                c["seq"] += 1
                c["next"] += a.interval
                if c["next"] < now:
                    c["next"] = now + a.interval
        if not conns:
            time.sleep(0.2)
            continue
        nxt = min(c["next"] for c in conns.values())
        for key, _ in sel.select(timeout=max(0.0, nxt - time.time())):
            i = key.data
            if i not in conns:
                continue
            c = conns[i]
            try:
                data = c["s"].recv(4096)
            except BlockingIOError:
                continue
            except OSError as e:
                fail(i, "recv:%s" % (e.strerror or type(e).__name__).replace(" ", "_"))
                continue
            if not data:
                fail(i, "eof")
                continue
            buf = c["buf"] + data
            t = now_ms()
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                parts = line.decode(errors="replace").split()
                if len(parts) == 2:
                    out.write("r %d %.1f %s\n" % (i, t, answer_addr(parts[1])))
            c["buf"] = buf


# --- waiting and the control socket ---------------------------------------------------------


def read_udp(path):
    main_sent, main_ans, fresh_sent, fresh_ans = {}, {}, {}, {}
    try:
        f = open(path)
    except FileNotFoundError:       # the prober has not started yet
        return main_sent, main_ans, fresh_sent, fresh_ans
    with f:
        for line in f:
            p = line.split()
            if not p or p[0] == "#":
                continue
            try:
                if p[0] == "M":
                    main_sent[int(p[1])] = float(p[2])
                elif p[0] == "m":
                    main_ans[int(p[1])] = (float(p[2]), float(p[3]), p[4])
                elif p[0] == "F":
                    fresh_sent[int(p[1])] = float(p[2])
                elif p[0] == "f":
                    fresh_ans[int(p[1])] = (float(p[2]), float(p[3]), p[4])
            except (IndexError, ValueError):
                pass                # a line cut short while being written
    return main_sent, main_ans, fresh_sent, fresh_ans


def cmd_wait(a):
    """Exit 0 once an answer of --kind (m/f), sent after --after, came back via --addr."""
    deadline = time.time() + a.timeout
    while time.time() < deadline:
        _, main_ans, _, fresh_ans = read_udp(a.log)
        ans = main_ans if a.kind == "m" else fresh_ans
        if any(ts > a.after and addr == a.addr for ts, _, addr in ans.values()):
            return 0
        time.sleep(0.1)
    return 1


def ctl(sock_path, req, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    s.sendall(json.dumps(req).encode() + b"\n")
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        buf += chunk
    s.close()
    return json.loads(buf)


def cmd_ctl(a):
    print(json.dumps(ctl(a.socket, json.loads(a.request))))


def cmd_status_wait(a):
    """Poll {"cmd":"status"} every --poll s; print the Unix ms when --wan's `active` equals
    --active (exit 0), or exit 1 after --timeout."""
    want = a.active == "true"
    deadline = time.time() + a.timeout
    while time.time() < deadline:
        t = now_ms()
        try:
            st = ctl(a.socket, {"cmd": "status"})
            for w in st.get("wans", []):
                if w.get("name") == a.wan and bool(w.get("active")) == want:
                    print("%.0f" % t)
                    return 0
        except (OSError, ValueError):
            pass
        time.sleep(a.poll)
    return 1


def cmd_ready(a):
    """Wait for a probe round of every WAN that completes after this call and was fully
    answered; then sleep until --delay seconds after that round (a fixed phase of the probe
    cycle for whatever follows)."""
    start = now_ms()
    deadline = time.time() + a.timeout
    wans = a.wans.split(",")
    while time.time() < deadline:
        last = []
        for w in wans:
            try:
                pts = ctl(a.socket, {"cmd": "history", "wan": w, "seconds": 3600}).get("points", [])
            except (OSError, ValueError):
                pts = []
            if pts and pts[-1]["t_ms"] >= start and pts[-1].get("loss_percent") == 0:
                last.append(pts[-1]["t_ms"])
        if len(last) == len(wans):
            time.sleep(max(0.0, (max(last) + a.delay * 1000 - now_ms()) / 1000))
            return 0
        time.sleep(0.05)
    return 1


def cmd_snapshot(a):
    snap = {"events": [], "history": {}}
    try:
        snap["events"] = ctl(a.socket, {"cmd": "events"}).get("events", [])
        for w in a.wans.split(","):
            snap["history"][w] = ctl(a.socket, {"cmd": "history", "wan": w,
                                                "seconds": 3600}).get("points", [])
    except (OSError, ValueError) as e:
        snap["error"] = str(e)
    with open(a.out, "w") as f:
        json.dump(snap, f)


# --- analysis -------------------------------------------------------------------------------


def max_gap(times, start, end):
    """Longest interval between consecutive times in [start, end], the window edges
    included (so a window with no answer at all is one gap of end - start)."""
    pts = [start] + sorted(t for t in times if start <= t <= end) + [end]
    best, at = 0.0, start
    for x, y in zip(pts, pts[1:]):
        if y - x > best:
            best, at = y - x, x
    return best, at


def cmd_analyze(a):
    wan_addr = dict(x.split("=") for x in a.wans.split(","))      # wan1=192.0.2.2,...
    addr_wan = {v: k for k, v in wan_addr.items()}
    t0, t_end = a.t0, a.t_end
    res = {}
    main_sent, main_ans, fresh_sent, fresh_ans = read_udp(a.udp_log)

    # Long-lived UDP flow: answered probes by send time, longest gap around the event.
    before = [v for v in main_ans.values() if t0 - 2000 <= v[0] < t0]
    res["probe_wan_before"] = addr_wan.get(before[-1][2], "?") if before else "none"
    snap = json.load(open(a.snapshot))
    # The daemon's events of one address family (each WAN's IPv4 and IPv6 sides have their
    # own health and failover; events before the family field count as IPv4).
    events = [e for e in snap.get("events", [])
              if (e.get("details") or {}).get("family", "v4") == a.family]
    t_up = min((e["at_ms"] for e in events if e.get("wan") == "wan1" and t0 <= e["at_ms"] <= t_end
                and (e.get("details") or {}).get("to") in ("up", "degraded")
                and (e.get("details") or {}).get("from") in ("down", "recovering")), default=None)
    answered = [v[0] for v in main_ans.values()]
    # The event's window: for a failure, from --pre before it to 1 s after the first probe
    # answered through --switch-addr (the surviving WAN), or to the end of the scenario if that
    # never happens; for a recovery, +-1 s around the daemon's wan1 up event (its only kernel
    # change), or the whole scenario without one. Longer gaps outside the window are not the
    # event's: they are reported as background noise (a busy machine).
    t_sw = min((v[0] for v in main_ans.values()
                if v[0] > t0 and a.switch_addr and v[2] == a.switch_addr), default=None)
    w_start, w_end = t0 - a.pre, (min(t_end, t_sw + 1000) if t_sw else t_end)
    if a.recovery and t_up:
        w_start, w_end = t_up - 1000, min(t_end, t_up + 1000)
    gap, gap_at = max_gap(answered, w_start, w_end)
    res["outage_ms"] = "%.0f" % gap
    res["outage_start_ms"] = "%.0f" % (gap_at - t0)       # relative to the event
    # Probes sent inside that gap and never answered: 0 means the gap is the prober's own
    # stall (a busy CPU), not the network's.
    res["outage_lost"] = sum(1 for n, t in main_sent.items()
                             if gap_at < t < gap_at + gap and n not in main_ans)
    res["switched_ms"] = "%.0f" % (t_sw - t0) if t_sw else "n/a"
    noise = 0.0
    if w_start - (t0 - a.pre) > 100:
        noise = max(noise, max_gap(answered, t0 - a.pre, w_start)[0])
    if t_end - w_end > 100:
        noise = max(noise, max_gap(answered, w_end, t_end)[0])
    res["noise_gap_ms"] = "%.0f" % noise
    after = sorted(v for v in main_ans.values() if v[0] > gap_at + gap - 1)
    res["probe_wan_after"] = addr_wan.get(after[0][2], "?") if after else "none"
    lost = [s for s, t in main_sent.items()
            if t0 - a.pre <= t <= t_end - 1000 and s not in main_ans]
    res["probes_lost"] = len(lost)

    # New flows (a new socket every --fresh-interval): when do they use wan1 again, and were
    # any of them lost after the event (sent early enough to have been answered)?
    f_after = sorted((t, i) for i, t in fresh_sent.items() if t0 <= t <= t_end - 1000)
    first_wan1 = next((t for t, i in f_after
                       if i in fresh_ans and fresh_ans[i][2] == wan_addr["wan1"]), None)
    res["new_flow_wan1_ms"] = "%.0f" % (first_wan1 - t0) if first_wan1 else "never"
    res["new_flows_lost"] = sum(1 for _, i in f_after if i not in fresh_ans)
    res["new_flows_sent"] = len(f_after)

    # TCP: the connections alive at the event, by the WAN their last answer named.
    conns = {}                    # i -> {"wan", "replies": [...], "err": (t, why)}
    with open(a.tcp_log) as f:
        for line in f:
            p = line.split()
            try:
                if p[0] == "r":
                    c = conns.setdefault(int(p[1]), {"replies": [], "err": None, "wan": None})
                    t = float(p[2])
                    c["replies"].append(t)
                    if t < t0:
                        c["wan"] = addr_wan.get(p[3], "?")
                elif p[0] == "E":
                    c = conns.setdefault(int(p[1]), {"replies": [], "err": None, "wan": None})
                    c["err"] = (float(p[2]), p[3])
            except (IndexError, ValueError):
                pass
    alive = {i: c for i, c in conns.items()
             if c["wan"] and (c["err"] is None or c["err"][0] >= t0)
             and any(t0 - 2000 <= t < t0 for t in c["replies"])}
    for wan in sorted(wan_addr):
        mine = {i: c for i, c in alive.items() if c["wan"] == wan}
        broken, worst, why = 0, 0.0, []
        for c in mine.values():
            stall, _ = max_gap(c["replies"], t0, t_end)
            worst = max(worst, stall)
            if c["err"] and c["err"][0] <= t_end:
                broken += 1
                why.append(c["err"][1])
            elif stall >= a.stall_ms and not any(t >= t_end - a.stall_ms for t in c["replies"]):
                broken += 1         # still silent at the end of the scenario
                why.append("stalled")
        res["tcp_%s_total" % wan] = len(mine)
        res["tcp_%s_broken" % wan] = broken
        res["tcp_%s_max_stall_ms" % wan] = "%.0f" % worst
        res["tcp_%s_why" % wan] = ",".join(sorted(set(why))) or "-"

    # The daemon's view: state changes of each WAN, the failover it did, and when.
    # Probe rounds of wan1 completed in the window: +ms relative to t0 and answered/lost.
    rounds = ["%+.0f%s" % (pt["t_ms"] - t0, "x" if pt.get("loss_percent") == 100 else
                           ("" if pt.get("loss_percent") == 0 else "~"))
              for pt in snap.get("history", {}).get("wan1", []) if t0 - 6000 <= pt["t_ms"] <= t_end]
    res["wan1_rounds"] = " ".join(rounds[:12]) + (" ..." if len(rounds) > 12 else "") or "-"
    if a.family != "v4":
        res["wan1_rounds"] = "n/a (the history command has IPv4 rounds only)"
    for wan in sorted(wan_addr):
        # down: to "down"; up: from down/recovering back to a usable state; quality: up <->
        # degraded (the WAN stays in service).
        downs = ups = quality = 0
        seq = []
        for e in events:
            if e.get("wan") != wan or e.get("kind") not in ("state_change", "high_latency"):
                continue
            if not t0 <= e["at_ms"] <= t_end:
                continue
            d = e.get("details") or {}
            to, frm = d.get("to", "?"), d.get("from", "?")
            seq.append("%s->%s@%+.0f" % (frm, to, e["at_ms"] - t0))
            if to == "down":
                downs += 1
            elif to in ("up", "degraded") and frm in ("down", "recovering"):
                ups += 1
            elif to in ("up", "degraded"):
                quality += 1
        res["%s_downs" % wan] = downs
        res["%s_ups" % wan] = ups
        res["%s_quality_changes" % wan] = quality
        res["%s_states" % wan] = ";".join(seq) or "-"
        pre = ["%s->%s@%+.0f" % ((e.get("details") or {}).get("from", "?"),
                                 (e.get("details") or {}).get("to", "?"), e["at_ms"] - t0)
               for e in events if e.get("wan") == wan and e["at_ms"] < t0
               and e.get("kind") in ("state_change", "high_latency")]
        res["%s_pre_states" % wan] = ";".join(pre) or "-"
    res["flapping"] = "yes" if res["wan1_downs"] > 1 or res["wan1_ups"] > 1 else "no"
    down = [e["at_ms"] for e in events if e.get("wan") == "wan1" and e.get("kind") == "state_change"
            and (e.get("details") or {}).get("to") == "down" and t0 <= e["at_ms"] <= t_end]
    res["detect_ms"] = "%.0f" % (down[0] - t0) if down else "n/a"
    res["wan1_up_event_ms"] = "%.0f" % (t_up - t0) if t_up else "n/a"
    flush = [e for e in events if e.get("kind") == "failover" and e.get("wan") == "wan1"
             and t0 <= e["at_ms"] <= t_end]
    res["flush_ms"] = "%.0f" % (flush[0]["at_ms"] - t0) if flush else "n/a"
    res["flushed"] = ((flush[0].get("details") or {}).get("reset_connections", "?")
                      if flush else "n/a")
    for k, v in res.items():
        print("%s=%s" % (k, v))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("server")
    p.add_argument("--addr", required=True, action="append", help="repeat for more addresses")
    p.add_argument("--udp-port", type=int, required=True)
    p.add_argument("--tcp-port", type=int, required=True)
    p = sub.add_parser("udp")
    p.add_argument("--server", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--interval", type=float, default=0.02)
    p.add_argument("--fresh-interval", type=float, default=0.1)
    p.add_argument("--fresh-timeout", type=float, default=1.0)
    p.add_argument("--want-addr", default="", help="keep a flow answered through this address")
    p.add_argument("--want-tries", type=int, default=50)
    p.add_argument("--log", required=True)
    p = sub.add_parser("tcp")
    p.add_argument("--server", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--conns", type=int, default=20)
    p.add_argument("--interval", type=float, default=0.2)
    p.add_argument("--log", required=True)
    p = sub.add_parser("wait")
    p.add_argument("--log", required=True)
    p.add_argument("--kind", choices=["m", "f"], default="m")
    p.add_argument("--after", type=float, required=True)
    p.add_argument("--addr", required=True)
    p.add_argument("--timeout", type=float, default=30)
    p = sub.add_parser("ctl")
    p.add_argument("--socket", required=True)
    p.add_argument("request")
    p = sub.add_parser("ready")
    p.add_argument("--socket", required=True)
    p.add_argument("--wans", required=True, help="wan1,wan2")
    p.add_argument("--delay", type=float, default=0, help="seconds after the good round")
    p.add_argument("--timeout", type=float, default=30)
    p = sub.add_parser("snapshot")
    p.add_argument("--socket", required=True)
    p.add_argument("--wans", required=True, help="wan1,wan2")
    p.add_argument("--out", required=True)
    p = sub.add_parser("status-wait")
    p.add_argument("--socket", required=True)
    p.add_argument("--wan", required=True)
    p.add_argument("--active", choices=["true", "false"], required=True)
    p.add_argument("--poll", type=float, default=0.1)
    p.add_argument("--timeout", type=float, default=30)
    p = sub.add_parser("analyze")
    p.add_argument("--udp-log", required=True)
    p.add_argument("--tcp-log", required=True)
    p.add_argument("--snapshot", required=True, help="written by the snapshot subcommand")
    p.add_argument("--wans", required=True, help="wan1=ADDR,wan2=ADDR")
    p.add_argument("--t0", type=float, required=True)
    p.add_argument("--t-end", type=float, required=True)
    p.add_argument("--pre", type=float, default=1000, help="ms before t0 in the gap window")
    p.add_argument("--switch-addr", default="", help="address of the WAN the flow fails over to")
    p.add_argument("--recovery", action="store_true", help="judge gaps around wan1's up event")
    p.add_argument("--stall-ms", type=float, default=2000)
    p.add_argument("--family", choices=["v4", "v6"], default="v4",
                   help="whose health events to read (the flows' address family)")
    a = ap.parse_args()
    return {"server": cmd_server, "udp": cmd_udp, "tcp": cmd_tcp, "wait": cmd_wait,
            "ctl": cmd_ctl, "status-wait": cmd_status_wait, "ready": cmd_ready,
            "snapshot": cmd_snapshot, "analyze": cmd_analyze}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main() or 0)
