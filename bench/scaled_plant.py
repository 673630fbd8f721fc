"""A synthetic plant of any size for benchmarks: a register and an all-healthy scenario.

One enterprise, one plant, one OPC UA source (subscribed) and one MQTT device source.
Processes alternate between the two sources (``ua-p0000`` on OPC UA, ``mq-p0001`` on MQTT),
each with an on-change ``state`` signal and ``params_per_process`` periodic parameters at
``interval``. The offered load is therefore ``signals / interval`` samples per second,
plus a few on-change state samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ENTERPRISE = "bench-enterprise"
PLANT = "bench-plant"
OPCUA_SOURCE = "bench-opcua"
MQTT_SOURCE = "bench-mqtt"
OPCUA_PREFIX = "ua-"
MQTT_PREFIX = "mq-"
_NAMESPACE = "urn:plantkpi:bench"
_PROCESSES_PER_LINE = 20
# Ids the simulator's dynamics know (realistic values); the rest become random walks.
_PARAMETER_IDS = ("spindle_speed", "feed_rate", "temperature", "pressure", "power", "torque")


@dataclass(frozen=True)
class PlantSize:
    """How big the synthetic plant is."""

    signals: int
    """Periodic parameters in total (rounded up to whole processes)."""
    params_per_process: int = 5
    interval_ms: int = 100

    def __post_init__(self) -> None:
        if self.signals < 2:
            raise ValueError(f"signals must be at least 2 (one per source), got {self.signals}")
        if self.params_per_process < 1:
            raise ValueError(
                f"params_per_process must be at least 1, got {self.params_per_process}"
            )
        if self.interval_ms < 1:
            raise ValueError(f"interval_ms must be at least 1, got {self.interval_ms}")

    @property
    def processes(self) -> int:
        # At least two, so both sources carry load.
        return max(2, -(-self.signals // self.params_per_process))

    @property
    def periodic_signals(self) -> int:
        return self.processes * self.params_per_process

    @property
    def offered_per_s(self) -> float:
        """Periodic samples per second the simulators are asked to produce."""
        return self.periodic_signals * 1000.0 / self.interval_ms


def parameter_id(index: int) -> str:
    if index < len(_PARAMETER_IDS):
        return _PARAMETER_IDS[index]
    return f"param_{index:02d}"


def process_id(index: int) -> str:
    prefix = OPCUA_PREFIX if index % 2 == 0 else MQTT_PREFIX
    return f"{prefix}p{index:04d}"


def register_document(size: PlantSize) -> dict[str, Any]:
    """The register as a YAML-ready mapping."""
    interval = f"{size.interval_ms}ms"
    lines: list[dict[str, Any]] = []
    for index in range(size.processes):
        pid = process_id(index)
        on_opcua = pid.startswith(OPCUA_PREFIX)
        source = OPCUA_SOURCE if on_opcua else MQTT_SOURCE

        def binding(signal: str, *, pid: str = pid, on_opcua: bool = on_opcua) -> dict[str, str]:
            if on_opcua:
                return {"node": f"nsu={_NAMESPACE};s={pid}.{signal}"}
            return {"topic": f"bench/{pid}/{signal}"}

        signals: list[dict[str, Any]] = [
            {
                "id": "state",
                "role": "state",
                "source": source,
                **binding("state"),
                "interval": "1s",
                "update": "on_change",
            }
        ]
        for param in range(size.params_per_process):
            signal = parameter_id(param)
            signals.append(
                {
                    "id": signal,
                    "role": "parameter",
                    "source": source,
                    **binding(signal),
                    "interval": interval,
                    "update": "periodic",
                }
            )
        if index % _PROCESSES_PER_LINE == 0:
            lines.append({"id": f"line-{index // _PROCESSES_PER_LINE:03d}", "processes": []})
        lines[-1]["processes"].append(
            {
                "id": pid,
                "name": f"Bench process {index}",
                "key": True,
                "industry": "discrete",
                "equipment": "synthetic machine",
                "signals": signals,
            }
        )
    return {
        "version": f"bench-{size.periodic_signals}x{size.interval_ms}ms",
        "enterprise": {
            "id": ENTERPRISE,
            "name": "Benchmark enterprise",
            "region": "Bench",
            "above_designated_size": True,
        },
        "plants": [
            {
                "id": PLANT,
                "name": "Benchmark plant",
                "sources": [
                    # Endpoint and broker are placeholders: PlantStack overrides both.
                    {
                        "id": OPCUA_SOURCE,
                        "kind": "opcua",
                        "endpoint": "opc.tcp://127.0.0.1:4840",
                        "security": {"policy": "None", "mode": "None"},
                        "mode": "subscribe",
                    },
                    {"id": MQTT_SOURCE, "kind": "mqtt", "broker": "mqtt://127.0.0.1:1883"},
                ],
                "lines": lines,
            }
        ],
    }


def write_plant(size: PlantSize, folder: Path, *, seed: int = 1) -> tuple[Path, Path]:
    """Write ``register.yaml`` and an all-healthy ``scenario.yaml``; return both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    register = folder / "register.yaml"
    scenario = folder / "scenario.yaml"
    register.write_text(yaml.safe_dump(register_document(size), sort_keys=False))
    scenario.write_text(yaml.safe_dump({"seed": seed, "register": register.name}, sort_keys=False))
    return register, scenario
