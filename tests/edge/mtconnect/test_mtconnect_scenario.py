"""A scenario drives the simulated MTConnect agent (the simulator's runner, ``serve``) and the
edge reads it as the agent builds its reader: every observation the agent made once
connected arrives, in MTConnect's words (Execution, ControllerMode), and a failing machine
reading is UNAVAILABLE, no value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from common.quality import BAD_NO_COMMUNICATION, GOOD
from common.register_loader import load_register
from edge.agent import build_sources
from edge.settings import EdgeSettings
from edge.sources.mtconnect.source import MtconnectAgentSource
from simulators.ledger import Ledger
from simulators.mtconnect_agent import MtconnectAgent
from simulators.runner import Simulator
from simulators.scenario import load_scenario
from tests import registers
from tests.edge.source_kit import eventually, running

pytestmark = pytest.mark.integration

MANUAL_WORDS = ["MANUAL", "MANUAL_DATA_INPUT", "EDIT"]


def vmc(process_id: str) -> dict[str, Any]:
    signals = [
        registers.sig(
            "execution", "state", "agent", "on_change", data_item=f"{process_id}_execution"
        ),
        registers.sig(
            "controller_mode",
            "mode",
            "agent",
            "on_change",
            data_item=f"{process_id}_mode",
            manual_values=MANUAL_WORDS,
        ),
        registers.sig(
            "spindle_speed", source="agent", interval="100ms", data_item=f"{process_id}_S1speed"
        ),
    ]
    return registers.process(process_id, signals)


def write_plant(folder: Path) -> Path:
    source = {"id": "agent", "kind": "mtconnect", "endpoint": "http://127.0.0.1:5000"}
    lines = [registers.line("l1", [vmc("vmc1"), vmc("vmc2"), vmc("vmc3")])]
    registers.write(folder, registers.document([registers.plant("p1", [source], lines)]))
    scenario = {
        "seed": 7,
        "register": "register.yaml",
        "machines": {
            "vmc2": {"behaviour": "manual_mode"},
            "vmc3": {"behaviour": "bad_quality", "signals": ["spindle_speed"]},
        },
    }
    path = folder / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario), encoding="utf-8")
    return path


async def test_a_scenario_drives_the_agent_and_the_edge_reads_every_observation(
    tmp_path: Path,
) -> None:
    scenario = load_scenario(write_plant(tmp_path))
    ledger = Ledger(keep=True)
    simulator = Simulator(
        scenario, endpoints={"agent": "http://127.0.0.1:0"}, tick=0.05, ledger=ledger
    )
    async with simulator:
        agent = simulator.equipment["agent"]
        assert isinstance(agent, MtconnectAgent) and agent.devices == ["vmc1", "vmc2", "vmc3"]
        settings = EdgeSettings(
            _env_file=None,
            register_file=tmp_path / "register.yaml",
            plant="p1",
            endpoints=simulator.endpoints,
            buffer_dir=tmp_path / "buffer",
        )
        (source,) = build_sources(load_register(tmp_path / "register.yaml"), settings)
        assert isinstance(source, MtconnectAgentSource)
        async with running(source) as sink:
            await eventually(lambda: bool(sink.ups()), what="up")
            mark = len(ledger.records)  # written after /current was read: all by /sample
            await eventually(lambda: len(ledger.records) > mark + 30, what="30 observations")
            made = ledger.records[mark:]
            await eventually(
                lambda: (
                    {(s.process, s.signal, s.ts, s.value) for s in sink.samples}
                    >= {(r.process, r.signal, r.ts, r.value) for r in made}
                ),
                what="every observation made",
            )
    got = {(s.process, s.signal, s.ts, s.value) for s in sink.samples}
    assert got >= {(r.process, r.signal, r.ts, r.value) for r in made}
    modes = {s.process: s.value for s in sink.samples if s.signal == "controller_mode"}
    assert modes == {"vmc1": "AUTOMATIC", "vmc2": "MANUAL", "vmc3": "AUTOMATIC"}
    states = {s.value for s in sink.samples if s.signal == "execution"}
    assert states <= {"ACTIVE", "READY", "INTERRUPTED", "STOPPED"} and states
    speeds = [s for s in sink.samples if s.signal == "spindle_speed"]
    assert all(
        (s.value, s.status) == (None, BAD_NO_COMMUNICATION) for s in speeds if s.process == "vmc3"
    )
    assert all(
        isinstance(s.value, float) and s.status == GOOD for s in speeds if s.process != "vmc3"
    )
    assert not sink.rejections
