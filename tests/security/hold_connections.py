#!/usr/bin/env python3
"""Holds idle connections open against the daemon, as another OS user would (issue 32, point 6).

    hold_connections.py --zmq PORT --zmq-count N [--http PORT --http-count M]
                        --seconds S --status FILE

ZeroMQ: a TCP connection that sends the first byte of a ZMTP greeting and nothing more (an idle
peer: the handshake never completes; the byte makes the kernel reset a connection the daemon's
host never accepted, which would otherwise look open here forever). HTTP: a request head that never ends, one more byte every --trickle seconds
(slowloris). Every connection the daemon closes is opened again after --reopen seconds, so the
daemon faces N and M connections for the whole run, as it would from a patient attacker. Each
second a JSON line goes to --status: how many are open, opened and closed by the daemon, and how
long closed ones had lived since they were established: under 0.5 s ("at_once": over a bound),
3 s or more ("timed_out": a handshake or header timeout), or in between ("other"). Loopback
only, bounded in time and count; stops by itself.
"""
import argparse
import errno
import json
import resource
import selectors
import socket
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--host", default="127.0.0.1")
ap.add_argument("--zmq", type=int)
ap.add_argument("--zmq-count", type=int, default=0)
ap.add_argument("--http", type=int)
ap.add_argument("--http-count", type=int, default=0)
ap.add_argument("--seconds", type=float, required=True)
ap.add_argument("--trickle", type=float, default=2.0)
ap.add_argument("--reopen", type=float, default=1.0)
ap.add_argument("--status", required=True, help="a file, or - for stdout")
args = ap.parse_args()
assert args.host.startswith("127.") or args.host in ("localhost", "::1"), "loopback only"
assert args.zmq_count + args.http_count <= 20000 and args.seconds <= 600

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

sel = selectors.DefaultSelector()
kinds = {}
for kind, port, count in (("zmq", args.zmq, args.zmq_count), ("http", args.http, args.http_count)):
    if port and count:
        kinds[kind] = {
            "port": port, "want": count, "open": 0, "opened": 0, "closed": 0,
            "at_once": 0, "timed_out": 0, "other": 0, "failed": 0, "longest": 0.0,
        }
conns = {}  # socket -> (kind, opened at, connected)
pending_reopen = []  # (when, kind)
HEAD = b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


def open_one(kind):
    k = kinds[kind]
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    rc = s.connect_ex((args.host, k["port"]))
    if rc not in (0, errno.EINPROGRESS):
        s.close()
        k["failed"] += 1
        pending_reopen.append((time.monotonic() + args.reopen, kind))
        return
    conns[s] = [kind, time.monotonic(), False]
    k["open"] += 1
    k["opened"] += 1
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)


def closed(s, by_daemon=True):
    kind, established, connected = conns.pop(s)
    sel.unregister(s)
    s.close()
    k = kinds[kind]
    k["open"] -= 1
    if by_daemon and not connected:
        k["failed"] += 1
    elif by_daemon:
        lived = time.monotonic() - established
        k["closed"] += 1
        k["at_once" if lived < 0.5 else "timed_out" if lived >= 3 else "other"] += 1
        k["longest"] = round(max(k["longest"], lived), 2)
    pending_reopen.append((time.monotonic() + args.reopen, kind))


def report(line):
    now = time.monotonic()
    for kind, k in kinds.items():
        line[kind] = {n: v for n, v in k.items() if n not in ("port", "want")}
        ages = [now - c[1] for c in conns.values() if c[0] == kind and c[2]]
        line[kind]["oldest_open"] = round(max(ages, default=0.0), 2)
    status.write(json.dumps(line) + "\n")
    status.flush()


start = time.monotonic()
end = start + args.seconds
next_trickle = start + args.trickle
next_status = start
# Opened in bursts of 100, so the kernel's accept queue is not what refuses them.
to_open = [kind for kind in kinds for _ in range(kinds[kind]["want"])]
status = sys.stdout if args.status == "-" else open(args.status, "w", buffering=1)
while True:
    now = time.monotonic()
    if now >= end:
        break
    for _ in range(min(100, len(to_open))):
        open_one(to_open.pop())
    due = [r for r in pending_reopen if r[0] <= now]
    pending_reopen[:] = [r for r in pending_reopen if r[0] > now]
    for _, kind in due:
        open_one(kind)
    for key, mask in sel.select(timeout=0.05):
        s = key.fileobj
        if s not in conns:
            continue
        entry = conns[s]
        if mask & selectors.EVENT_WRITE and not entry[2]:
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                closed(s)
                continue
            entry[1], entry[2] = time.monotonic(), True
            sel.modify(s, selectors.EVENT_READ)
            try:
                s.send(HEAD if entry[0] == "http" else b"\xff")
            except OSError:
                closed(s)
                continue
        if mask & selectors.EVENT_READ:
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                closed(s)
    if now >= next_trickle:
        next_trickle = now + args.trickle
        for s, (kind, _, connected) in list(conns.items()):
            if kind == "http" and connected:
                try:
                    s.send(b"a")
                except OSError:
                    closed(s)
    if now >= next_status:
        next_status = now + 1.0
        report({"t": round(now - start, 1)})
report({"t": round(time.monotonic() - start, 1), "final": True})
for s in list(conns):
    closed(s, by_daemon=False)
