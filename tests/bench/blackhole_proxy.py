#!/usr/bin/env python3
"""tests/bench/blackhole_proxy.py -- a TCP relay that can stop forwarding.

Why: hang.sh's second mode needs a database that is not down (connections
are accepted, nothing is refused or reset) but answers nothing: a network
path that black-holes packets.  vexil connects to PostgreSQL through this
relay; on SIGUSR1 the relay stops reading from every connection, old and
new (new ones are accepted and then ignored), so every statement and every
connect attempt hangs until vexil's own bounds end it; on SIGUSR2 it
forwards again.

Loopback only: it listens on 127.0.0.1 and connects to 127.0.0.1.  It stops
by itself after --max-seconds, or as soon as the process that started it is
gone, so a killed benchmark never leaves it behind.

Usage: blackhole_proxy.py --port P --target-port T [--max-seconds S]
Prints "ready" on stdout once it listens.
"""

import argparse
import os
import selectors
import signal
import socket
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True, help="listen on 127.0.0.1:PORT")
    ap.add_argument("--target-port", type=int, required=True, help="forward to 127.0.0.1:PORT")
    ap.add_argument("--max-seconds", type=float, default=3600, help="exit after this long")
    a = ap.parse_args()

    deadline = time.monotonic() + a.max_seconds
    parent = os.getppid()
    state = {"hole": False}
    signal.signal(signal.SIGUSR1, lambda *_: state.update(hole=True))
    signal.signal(signal.SIGUSR2, lambda *_: state.update(hole=False))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", a.port))
    lsock.listen(128)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ)
    peer = {}  # socket -> the socket it forwards to (both directions)
    waiting = []  # accepted while black-holed, not yet connected upstream
    registered = True  # are the relayed sockets in the selector?

    def close_pair(s):
        p = peer.pop(s, None)
        for x in (s, p):
            if x is None:
                continue
            peer.pop(x, None)
            try:
                sel.unregister(x)
            except (KeyError, ValueError):
                pass
            x.close()

    def connect(c):
        try:
            u = socket.create_connection(("127.0.0.1", a.target_port), timeout=5)
        except OSError:
            c.close()
            return
        for x in (c, u):
            x.settimeout(5)  # sendall() never blocks for long
        peer[c], peer[u] = u, c
        sel.register(c, selectors.EVENT_READ)
        sel.register(u, selectors.EVENT_READ)

    print("ready", flush=True)
    while time.monotonic() < deadline and os.getppid() == parent:
        if state["hole"] and registered:
            for s in list(peer):
                sel.unregister(s)
            registered = False
        elif not state["hole"] and not registered:
            for s in list(peer):
                sel.register(s, selectors.EVENT_READ)
            registered = True
            while waiting:
                connect(waiting.pop())
        for key, _ in sel.select(0.2):
            s = key.fileobj
            if s is lsock:
                c, _ = lsock.accept()
                if state["hole"]:
                    waiting.append(c)
                else:
                    connect(c)
                continue
            if state["hole"] or s not in peer:
                continue
            try:
                data = s.recv(65536)
                if data:
                    peer[s].sendall(data)
                    continue
            except OSError:
                pass
            close_pair(s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
