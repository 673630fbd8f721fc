"""Node-RED as a peer of plantkpi's device path: ``mqtt in`` → ``join`` → ``influxdb batch``.

The flow a plant engineer builds in Node-RED's editor in a few minutes (issue 13 measured
the same kind of flow elsewhere): the MQTT input parses each JSON message
(``{"value": v, "ts": ms}``), a function node turns it into a point, a join node groups
5,000 points or what came in 100 ms (as the Python bridge does), and
node-red-contrib-influxdb's batch node writes each group with one ``/write``. Nothing is
kept on disk: MQTT.js acknowledges a QoS 1 message once it is handed to the flow, before
the write. Node-RED and its InfluxDB nodes are the versions pinned in
``bench/node_red/package-lock.json``, installed there with ``npm ci`` when missing.

The bench reads progress from the flow itself: a ``complete`` node after each finished
write adds the group's size to a counter, a ``catch`` node counts failed writes, and a
``status`` node records the MQTT connection; ``GET /progress`` returns all three and when
the last write finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "bench" / "node_red"
RED_JS = PACKAGE_DIR / "node_modules" / "node-red" / "red.js"
MEASUREMENT = "nodered"
VERSION = json.loads((PACKAGE_DIR / "package.json").read_text())["dependencies"]["node-red"]
JOIN_COUNT = 5000
JOIN_TIMEOUT_S = 0.1


class NodeRedError(RuntimeError):
    """Node-RED could not be installed or started, or its flow reported an error."""


def install() -> Path:
    """The pinned Node-RED, installed with ``npm ci`` if it is not there yet (blocking)."""
    if RED_JS.exists():
        return RED_JS
    npm = shutil.which("npm")
    if npm is None:
        raise NodeRedError("npm not found: Node-RED, the peer flow, cannot be installed")
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=PACKAGE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode or not RED_JS.exists():
        raise NodeRedError(f"npm ci in {PACKAGE_DIR} failed: {done.stderr[-1000:]}")
    return RED_JS


def flow(
    broker: tuple[str, int], topic: str, qos: int, influx: tuple[str, int], database: str
) -> list[dict[str, object]]:
    """The flow, as Node-RED's editor would export it (the nodes' own field names)."""
    counter = "flow.set('{key}', (flow.get('{key}') || 0) + {amount}); return null;"
    nodes: list[dict[str, object]] = [
        {"id": "burst", "type": "tab", "label": "burst"},
        {
            "id": "device",
            "type": "mqtt-broker",
            "broker": broker[0],
            "port": str(broker[1]),
            "clientid": "bench-node-red",
            "autoConnect": True,
            "usetls": False,
            "protocolVersion": "4",
            "keepalive": "60",
            "cleansession": True,
        },
        {
            "id": "in",
            "type": "mqtt in",
            "z": "burst",
            "topic": topic,
            "qos": str(qos),
            "datatype": "json",
            "broker": "device",
            "nl": False,
            "rap": True,
            "rh": 0,
            "inputs": 0,
            "wires": [["point"]],
        },
        {
            "id": "point",
            "type": "function",
            "z": "burst",
            "func": (
                f"msg.payload = {{measurement: '{MEASUREMENT}', tags: {{topic: msg.topic}}, "
                "fields: {value: Number(msg.payload.value)}, timestamp: msg.payload.ts};\n"
                "return msg;"
            ),
            "outputs": 1,
            "wires": [["join"]],
        },
        {
            "id": "join",
            "type": "join",
            "z": "burst",
            "mode": "custom",
            "build": "array",
            "property": "payload",
            "propertyType": "msg",
            "key": "topic",
            "joiner": "\\n",
            "joinerType": "str",
            "accumulate": False,
            "timeout": str(JOIN_TIMEOUT_S),
            "count": str(JOIN_COUNT),
            "wires": [["write"]],
        },
        {
            "id": "influx",
            "type": "influxdb",
            "hostname": influx[0],
            "port": str(influx[1]),
            "protocol": "http",
            "database": database,
            "influxdbVersion": "1.x",
            "usetls": False,
        },
        {
            "id": "write",
            "type": "influxdb batch",
            "z": "burst",
            "influxdb": "influx",
            "precision": "ms",
            "retentionPolicy": "",
            "wires": [],
        },
        {
            "id": "written",
            "type": "complete",
            "z": "burst",
            "scope": ["write"],
            "uncaught": False,
            "wires": [["count-written"]],
        },
        {
            "id": "count-written",
            "type": "function",
            "z": "burst",
            "func": "flow.set('last_write_ms', Date.now());\n"
            + counter.format(key="written", amount="msg.payload.length"),
            "outputs": 1,
            "wires": [[]],
        },
        {
            "id": "failed",
            "type": "catch",
            "z": "burst",
            "scope": None,
            "uncaught": False,
            "wires": [["count-failed"]],
        },
        {
            "id": "count-failed",
            "type": "function",
            "z": "burst",
            "func": "flow.set('error', String(msg.error && msg.error.message));\n"
            + counter.format(key="failed", amount="1"),
            "outputs": 1,
            "wires": [[]],
        },
        {
            "id": "connection",
            "type": "status",
            "z": "burst",
            "scope": ["in"],
            "wires": [["keep-status"]],
        },
        {
            "id": "keep-status",
            "type": "function",
            "z": "burst",
            "func": "flow.set('mqtt', String(msg.status.text)); return null;",
            "outputs": 1,
            "wires": [[]],
        },
        {
            "id": "ask",
            "type": "http in",
            "z": "burst",
            "url": "/progress",
            "method": "get",
            "wires": [["answer"]],
        },
        {
            "id": "answer",
            "type": "function",
            "z": "burst",
            "func": (
                "msg.payload = {written: flow.get('written') || 0, failed: flow.get('failed')"
                " || 0, error: flow.get('error') || null, mqtt: flow.get('mqtt') || null,"
                " last_write_ms: flow.get('last_write_ms') || 0};\n"
                "return msg;"
            ),
            "outputs": 1,
            "wires": [["reply"]],
        },
        {"id": "reply", "type": "http response", "z": "burst", "wires": []},
    ]
    # A node placed on a tab has a position; one without is taken for a configuration node.
    for n, node in enumerate(node for node in nodes if "z" in node):
        node.update(x=160 + 200 * (n % 6), y=80 + 80 * (n // 6))
    return nodes


SETTINGS = """module.exports = {{
  uiHost: "127.0.0.1",
  uiPort: {port},
  flowFile: "flows.json",
  credentialSecret: false,
  httpAdminRoot: false,
  httpNodeRoot: "/",
  diagnostics: {{ enabled: false }},
  runtimeState: {{ enabled: false }},
  externalModules: {{ autoInstall: false }},
  logging: {{ console: {{ level: "warn", metrics: false, audit: false }} }},
}};
"""


@dataclass(frozen=True)
class Progress:
    written: int
    failed: int
    error: str | None
    mqtt: str | None
    last_write: float = 0.0
    """When the last write finished (``time.time()``): the answer itself may come late,
    Node-RED's one thread being busy with the flow."""


@dataclass
class NodeRed:
    proc: asyncio.subprocess.Process
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def progress(self, http: httpx.AsyncClient) -> Progress:
        data = (await http.get(f"{self.url}/progress", timeout=5)).json()
        return Progress(
            int(data["written"]),
            int(data["failed"]),
            data["error"],
            data["mqtt"],
            int(data["last_write_ms"]) / 1000,
        )

    def check(self, progress: Progress) -> None:
        if self.proc.returncode is not None:
            raise NodeRedError(f"Node-RED exited ({self.proc.returncode}): {self.log_tail()}")
        if progress.failed:
            raise NodeRedError(f"{progress.failed} writes failed, last: {progress.error}")

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-2000:]
        return ""


def _prepare_user_dir(user_dir: Path, port: int, nodes: list[dict[str, object]]) -> None:
    user_dir.mkdir(parents=True)
    (user_dir / "settings.js").write_text(SETTINGS.format(port=port))
    (user_dir / "flows.json").write_text(json.dumps(nodes, indent=1))
    # Node-RED finds installed nodes under its user directory's node_modules.
    (user_dir / "node_modules").symlink_to(PACKAGE_DIR / "node_modules")


@contextlib.asynccontextmanager
async def running_node_red(
    user_dir: Path,
    broker: tuple[str, int],
    topic: str,
    qos: int,
    influx: tuple[str, int],
    database: str,
) -> AsyncIterator[NodeRed]:
    """Node-RED running the flow, until its MQTT input is connected; stopped afterwards."""
    red_js = await asyncio.to_thread(install)
    node = shutil.which("node")
    if node is None:
        raise NodeRedError("node not found: Node-RED cannot run")
    port = free_port()
    nodes = flow(broker, topic, qos, influx, database)
    await asyncio.to_thread(_prepare_user_dir, user_dir, port, nodes)
    log = user_dir / "node-red.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            node,
            str(red_js),
            *("--userDir", str(user_dir), "--settings", str(user_dir / "settings.js")),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    red = NodeRed(proc, f"http://127.0.0.1:{port}", log)
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(600):
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                    progress = await red.progress(http)
                    if (progress.mqtt or "").endswith(".connected"):
                        break
                if proc.returncode is not None:
                    break
                await asyncio.sleep(0.1)
            else:
                raise NodeRedError(f"Node-RED's MQTT input did not connect: {red.log_tail()}")
            red.check(Progress(0, 0, None, None))
        await asyncio.sleep(0.5)  # subscribed (the status says connected before the SUBACK)
        yield red
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
