"""The peer plantkpi's device path is compared with: a small Python MQTT → InfluxDB bridge.

    python bench/mqtt_bridge.py BROKER_URL TOPIC_FILTER QOS INFLUX_URL DATABASE EXPECTED

What a plant engineer writes in an afternoon (about a hundred lines): paho-mqtt's
``on_message`` turns each JSON message (``{"value": v, "ts": ms}``) into a line of line
protocol, a writer thread posts them to ``/write`` in batches of 5,000 lines or every
100 ms. Nothing is kept on disk: paho acknowledges a QoS 1 message once the callback
returned, before the write (a crash loses what was in memory). Exits once ``EXPECTED``
samples were written and prints ``{"written", "first_message", "done", "cpu_s",
"peak_rss_mb"}`` (times from ``time.time()``; its own CPU seconds, including start-up) on
its last line.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
import urllib.parse
import urllib.request

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

BATCH_LINES = 5000
FLUSH_S = 0.1


class Bridge:
    def __init__(self, influx_url: str, database: str, expected: int) -> None:
        query = urllib.parse.urlencode({"db": database, "precision": "ms"})
        self.write_url = f"{influx_url}/write?{query}"
        self.expected = expected
        self.pending: list[str] = []
        self.lock = threading.Lock()
        self.written = 0
        self.first_message: float | None = None
        self.done = threading.Event()

    def on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if self.first_message is None:
            self.first_message = time.time()
        data = json.loads(msg.payload)
        line = f"bridge,topic={msg.topic} value={float(data['value'])} {int(data['ts'])}"
        with self.lock:
            self.pending.append(line)

    def writer(self) -> None:
        while not self.done.is_set():
            time.sleep(FLUSH_S)
            # Take everything at once: slicing BATCH_LINES off the front of a long list
            # would copy the rest every time (quadratic once a backlog builds up).
            with self.lock:
                taken, self.pending = self.pending, []
            for start in range(0, len(taken), BATCH_LINES):
                batch = taken[start : start + BATCH_LINES]
                body = "\n".join(batch).encode()
                request = urllib.request.Request(self.write_url, data=body, method="POST")
                with urllib.request.urlopen(request, timeout=30) as response:
                    response.read()
                self.written += len(batch)
            if self.written >= self.expected:
                self.done.set()


def main() -> None:
    broker_url, topic, qos, influx_url, database, expected = sys.argv[1:7]
    host, port = broker_url.removeprefix("mqtt://").rsplit(":", 1)
    bridge = Bridge(influx_url, database, int(expected))
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bridge")
    client.on_message = bridge.on_message
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=int(qos))
    client.connect(host, int(port))
    client.loop_start()
    writer = threading.Thread(target=bridge.writer, daemon=True)
    writer.start()
    print("ready", flush=True)
    bridge.done.wait()
    done = time.time()
    client.disconnect()
    client.loop_stop()
    result = {
        "written": bridge.written,
        "first_message": bridge.first_message,
        "done": done,
        "cpu_s": time.process_time(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
