"""A paced device: JSON samples stamped with their send time, at a fixed rate, over MQTT.

    python bench/paced_publisher.py HOST PORT QOS RATE SECONDS TOPIC_PREFIX TOPICS [FIRST STEP]

Publishes ``RATE`` messages a second for ``SECONDS`` on the topics ``{prefix}/t{k}/v``
for ``k`` = ``FIRST``, ``FIRST + STEP``, … below ``TOPICS`` (round robin; several
publishers take disjoint topics, so no two samples of one series share a time), each ``{"value": v, "ts": µs}`` with ``ts`` the moment
it is built (within a millisecond of being written to the socket), so that the stored
sample's age is the path's latency. Every 10 ms it sends what the rate owes by then, so a
slow moment is caught up, not lost; ``behind_max_s`` says how far it ever fell behind.
Prints ``{"sent", "seconds", "behind_max_s"}`` on its last line.

Hand-written MQTT 3.1.1 (CONNECT, PUBLISH, PUBACKs drained by a thread) rather than paho:
paho costs ~40 µs a publish, which on a 2-core machine would make the load generator
the limit at 20,000 messages/s; building a PUBLISH here costs a few µs.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time

TICK_S = 0.01


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def connect(host: str, port: int, client_id: str) -> socket.socket:
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    body = _string("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 60) + _string(client_id)
    sock.sendall(bytes([0x10]) + _length(len(body)) + body)
    connack = sock.recv(4)
    if len(connack) < 4 or connack[0] != 0x20 or connack[3] != 0:
        raise SystemExit(f"CONNECT refused: {connack!r}")
    return sock


def _drain(sock: socket.socket) -> None:
    """Read and drop what the broker sends (PUBACKs), or its window would fill."""
    try:
        while sock.recv(65536):
            pass
    except OSError:
        pass


def main() -> None:
    host, port, qos, rate, seconds, prefix, topics = sys.argv[1:8]
    first, step = (int(sys.argv[8]), int(sys.argv[9])) if len(sys.argv) > 9 else (0, 1)
    q = int(qos)
    sock = connect(host, int(port), f"paced-{prefix}-{first}-{time.time_ns()}")
    threading.Thread(target=_drain, args=(sock,), daemon=True).start()
    heads = [_string(f"{prefix}/t{k}/v") for k in range(first, int(topics), step)]
    n_topics = len(heads)
    command = 0x30 | (q << 1)
    per_s, duration = float(rate), float(seconds)
    sent, mid, behind_max = 0, 0, 0.0
    start = time.monotonic()
    while True:
        now = time.monotonic()
        elapsed = now - start
        if elapsed >= duration:
            break
        owed = int(elapsed * per_s) - sent
        behind_max = max(behind_max, owed / per_s)
        chunk = bytearray()
        for _ in range(owed):
            ts_us = time.time_ns() // 1000
            payload = b'{"value":%d.5,"ts":%d}' % (sent % 1000, ts_us)
            head = heads[sent % n_topics]
            if q:
                mid = mid % 65535 + 1
                variable = head + struct.pack("!H", mid)
            else:
                variable = head
            chunk += bytes([command]) + _length(len(variable) + len(payload))
            chunk += variable + payload
            sent += 1
        if chunk:
            sock.sendall(chunk)
        time.sleep(max(0.0, TICK_S - (time.monotonic() - now)))
    elapsed = time.monotonic() - start
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()
    print(json.dumps({"sent": sent, "seconds": elapsed, "behind_max_s": behind_max}), flush=True)


if __name__ == "__main__":
    main()
