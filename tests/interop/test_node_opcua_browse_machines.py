"""``plantkpi-edge browse --machines`` against node-opcua serving the OPC Foundation's
own Machinery, MachineTool, CNC and PackML types (tests/interop/server.js with
INTEROP_MACHINES=1): every standard machine is proposed with its state and mode bound, the
enumerations as this server numbers them, and the proposal, pasted into a register, runs:
the edge reads it and the KPI sees the manual modes the server's numbering makes manual."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from asyncua.client.client import Client

from common.register_loader import load_register
from edge.sources.opcua.machines import ProposedProcess, recognize_machines
from harness.plant import PlantStack
from harness.servers import InfluxServer, MosquittoServer
from tests import registers
from tests.interop.test_node_opcua_machines import machines_server  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration

SOURCE = "cell-opc"


@pytest.fixture
async def client(machines_server: str) -> AsyncIterator[Client]:  # noqa: F811
    async with Client(machines_server) as connected:
        yield connected


def signals(process: ProposedProcess) -> dict[str, tuple[str, str]]:
    return {s.id: (s.role, s.profile) for s in process.signals}


async def test_every_standard_machine_is_proposed_with_its_state_and_modes(
    client: Client,
) -> None:
    found = {process.id: process for process in await recognize_machines(client)}
    assert set(found) == {"Mill1", "Press7", "CncInterface", "Filler1"}

    mill = found["Mill1"]
    assert signals(mill) == {
        "state": ("state", "MachineryItemState"),
        "operation_mode": ("mode", "MachineOperationMode"),
        "machinery_mode": ("mode", "MachineryOperationMode"),
        "Channel1_mode": ("mode", "ChannelMode"),
    }
    assert any("Channel1" in note and "ChannelState" in note for note in mill.notes), mill.notes
    by_id = {s.id: s for s in mill.signals}
    # The MachineTool nodeset numbers MachineOperationMode as OPC 40501 does: no numbering.
    assert by_id["operation_mode"].numbering == ()
    assert "the server numbers it as the standard does" in by_id["operation_mode"].note
    assert mill.standard == "OPC 40501 machine tool"
    assert found["Press7"].standard == "OPC 40001 machine"
    assert by_id["state"].data_type == "LocalizedText"

    assert signals(found["Press7"]) == {
        "state": ("state", "MachineryItemState"),
        "machinery_mode": ("mode", "MachineryOperationMode"),
    }
    assert signals(found["CncInterface"]) == {
        "Channel1_status": ("state", "CncChannelStatus"),
        "Channel1_mode": ("mode", "CncOperationMode"),
    }
    cnc_mode = found["CncInterface"].signals[1]
    assert cnc_mode.numbering == ()  # Manual/MDA/Automatic are Manual_0/MDA_1/Automatic_2

    filler = found["Filler1"]
    assert signals(filler) == {
        "state": ("state", "PackMLState"),
        "unit_mode": ("mode", "PackMLUnitMode"),
    }
    unit_mode = filler.signals[1]
    assert unit_mode.data_type == "FillerUnitMode"
    assert unit_mode.numbering == (("Production", 1), ("Maintenance", 2), ("Manual", 3))
    assert "Clean=17" in unit_mode.note
    for process in found.values():
        assert all(s.node.startswith("nsu=urn:plantkpi:interop;") for s in process.signals)


async def proposed_register(machines_server: str, tmp_path: Path) -> Path:  # noqa: F811
    """What ``plantkpi-edge browse --machines`` prints, as a line's processes."""
    browse = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "edge",
        "browse",
        "--endpoint",
        machines_server,
        "--source",
        SOURCE,
        "--machines",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(browse.communicate(), 60)
    assert browse.returncode == 0, err.decode()
    stdout = out.decode()
    processes = yaml.safe_load(stdout)
    assert stdout.startswith("# 4 standard machines recognized on ")
    document = registers.document(
        [
            registers.plant(
                "p1",
                [registers.opcua_source(SOURCE, machines_server, publishing_interval="100ms")],
                [registers.line("l1", processes)],
            )
        ],
        enterprise="machines-co",
        version="browse-machines-1",
    )
    path = tmp_path / "register.yaml"
    path.write_text(registers.to_yaml(document))
    return path


async def test_the_proposal_runs_and_the_servers_numbering_makes_its_manual_modes_manual(
    machines_server: str,  # noqa: F811
    mosquitto: MosquittoServer,
    influxdb: InfluxServer,
    influx_db: str,
    tmp_path: Path,
) -> None:
    register = await proposed_register(machines_server, tmp_path)
    loaded = load_register(register)
    (mode,) = [
        s for s in loaded.model.plants[0].lines[0].processes[3].signals if s.id == "unit_mode"
    ]
    assert mode.manual_values == ("Maintenance", "Manual", 2, 3)

    env = {"COLLECTOR_INFLUX__URL": influxdb.url, "COLLECTOR_INFLUX__DATABASE": influx_db}
    stack = PlantStack(register, register, mosquitto.url, env, tmp_path / "logs")
    stack.endpoints[SOURCE] = machines_server
    try:
        stack.start_collector(window="6s", period="2s", lag="1s")
        stack.wait_for_api()
        stack.start_edges()
        started = time.time_ns() + 2 * 10**9
        shares: dict[str, Any] = {}
        deadline = time.monotonic() + 90
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=5) as api:
            while time.monotonic() < deadline:
                stack.check_alive()
                response = await api.get("/api/v1/processes")
                if response.status_code == 200:
                    found = response.json()["processes"]
                    shares = {p["process_id"]: p for p in found}
                    # A whole window of the edge's data (the edge takes a moment to subscribe),
                    # judged: a window past the plant's watermark is PROVISIONAL, no verdict.
                    if len(shares) == 4 and all(
                        p["manual_share"] is not None
                        and p["window"]["start_ns"] > started
                        and p["status"] != "PROVISIONAL"
                        for p in found
                    ):
                        break
                await asyncio.sleep(1)
            else:
                pytest.fail(f"no KPI over the proposal: {shares}\n{stack.logs()}")
    finally:
        stack.stop_all()

    # Filler1 cycles Production(1), Maintenance(2), Manual(3), Clean(17): half the time
    # manual, which only the server's numbering shows (the numbers 2 and 3 are no names).
    filler = shares["Filler1"]
    assert 0.25 < filler["manual_share"] < 0.75, filler
    assert "MANUAL_MODE" in filler["reasons"], filler
    # Mill1 is in Manual / Setup / JogManual a third of its cycle, the CNC in Manual too.
    for process_id in ("Mill1", "CncInterface"):
        assert shares[process_id]["manual_share"] > 0.15, shares[process_id]
