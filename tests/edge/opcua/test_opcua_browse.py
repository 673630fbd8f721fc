"""Browse paths (register syntax, resolution at every connect) and folder browsing, against
the asyncua simulator and node-opcua."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from common.browse_paths import (
    BrowseName,
    BrowsePathError,
    format_browse_path,
    parse_browse_path,
)
from common.protocols.opcua import OpcUaSignalBinding
from common.register_loader import RegisterError, parse_register
from edge.sources.opcua.browse import BrowseError, browse_endpoint, register_entries
from harness.servers import free_port
from simulators import Simulator, load_scenario
from tests import registers
from tests.edge.opcua.helpers import (
    INTEROP_URI,
    SIM_URI,
    NodeOpcUaServer,
    edge_source,
    machines_document,
    register_yaml,
    write_files,
)
from tests.edge.source_kit import RecordingSink, eventually


def covers(sink: RecordingSink, start: int, expected: set[tuple[str, str]]) -> bool:
    return {(s.process, s.signal) for s in sink.samples[start:]} >= expected


UA = "http://opcfoundation.org/UA/"


# --- the syntax (pure) ---------------------------------------------------------------------


def test_a_namespace_holds_until_the_next_one_is_named() -> None:
    path = "/Objects/{urn:plant:line1}Line1/Press/{http://opcfoundation.org/UA/DI/}Temp"
    assert parse_browse_path(path) == (
        BrowseName(UA, "Objects"),
        BrowseName("urn:plant:line1", "Line1"),
        BrowseName("urn:plant:line1", "Press"),
        BrowseName("http://opcfoundation.org/UA/DI/", "Temp"),
    )
    assert format_browse_path(parse_browse_path(path)) == path


def test_escaped_characters_round_trip() -> None:
    elements = (BrowseName(UA, "Objects"), BrowseName("urn:x", "A/B {c} & d"))
    text = format_browse_path(elements)
    assert text == "/Objects/{urn:x}A&/B &{c&} && d"
    assert parse_browse_path(text) == elements


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Objects/Line1", "must start with '/'"),
        ("/Objects//Line1", "empty browse name"),
        ("/Objects/Line1/", "empty browse name"),
        ("/Objects/{urn:x Line1", "without its closing"),
        ("/Objects/{}Line1", "empty namespace URI"),
        ("/Objects/Li{ne", "inside a name"),
        ("/Objects/Line&1", "must escape"),
        ("/", "empty browse name"),
    ],
)
def test_bad_browse_paths_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(BrowsePathError, match=re.escape(reason)):
        parse_browse_path(text)


REGISTER = """\
enterprise: {{id: e, region: R, above_designated_size: true}}
plants:
- id: p1
  sources:
  - {{id: plc, kind: opcua, endpoint: "opc.tcp://127.0.0.1:4840",
     security: {{policy: None, mode: None}}}}
  lines:
  - id: l1
    processes:
    - id: m1
      name: M1
      key: true
      industry: discrete
      signals:
      - {{id: state, role: state, source: plc, browse_path: "/Objects/{{urn:x}}M1/State"}}
      - {{id: speed, role: parameter, source: plc, {binding}}}
"""


@pytest.mark.parametrize(
    ("binding", "reason"),
    [
        ('browse_path: "Objects/M1/Speed"', "must start with '/'"),
        ('browse_path: "/Objects/{urn:x}M1//Speed"', "empty browse name"),
        ('browse_path: "/Objects/{urn:x}M1/Speed", node: "ns=2;s=S"', "either 'node' or"),
    ],
)
def test_a_bad_browse_path_fails_at_load_naming_file_line_and_field(
    binding: str, reason: str
) -> None:
    raw = REGISTER.format(binding=binding).encode()
    with pytest.raises(RegisterError) as caught:
        parse_register(raw, Path("plant.yaml"))
    message = str(caught.value)
    assert "plant.yaml:16:" in message, message
    assert "signals[1]" in message and reason in message, message


def test_a_browse_path_is_a_complete_opc_ua_binding() -> None:
    loaded = parse_register(REGISTER.format(binding="node: 'ns=2;s=S'").encode(), Path("p.yaml"))
    ref = loaded.signal("m1", "state")
    assert ref is not None and isinstance(ref.signal.binding, OpcUaSignalBinding)
    assert ref.signal.binding.browse_path == "/Objects/{urn:x}M1/State"


# --- resolution at connect, against real servers -------------------------------------------


def browse_path_register(machines: int, broken: str) -> str:
    """machines_document's machines, addressed by browse paths (the simulator's folders are
    the machines, its variables the signals); ``broken`` signal of m0 names no node."""
    doc = machines_document(machines)
    for i, machine in enumerate(doc["plants"][0]["lines"][0]["processes"]):
        for signal in machine["signals"]:
            del signal["node"]
            target = "nope" if (i, signal["id"]) == (0, broken) else signal["id"]
            signal["browse_path"] = f"/Objects/{{{SIM_URI}}}m{i}/{target}"
    return registers.to_yaml(doc)


@pytest.mark.integration
async def test_browse_paths_resolve_at_every_connect_and_a_bad_one_stops_no_other(
    tmp_path: Path,
) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    _, scenario = write_files(tmp_path, register_yaml(3))  # the simulator serves node ids
    edge_register, _ = write_files(tmp_path / "edge", browse_path_register(3, broken="speed"))
    source = edge_source(edge_register, endpoint)
    sink = RecordingSink()
    expected = {(f"m{i}", s) for i in range(3) for s in ("state", "speed")} - {("m0", "speed")}
    task = asyncio.create_task(source.run(sink))
    try:
        for _ in range(2):  # resolved again after a server restart
            start = len(sink.samples)
            async with Simulator(load_scenario(scenario), endpoints={"s1": endpoint}, tick=0.05):
                await eventually(
                    functools.partial(covers, sink, start, expected),
                    what="every resolvable browse path's samples",
                )
            await eventually(lambda: not sink.events[-1].up, what="source down")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert ("m0", "speed") not in {(s.process, s.signal) for s in sink.samples}
    bad = f"/Objects/{{{SIM_URI}}}m0/nope"
    assert {culprit for _, culprit, _ in sink.rejections} == {bad}
    source_id, _, reason = sink.rejections[0]
    assert source_id == "s1" and "BadNoMatch" in reason and "m0.speed" in reason
    assert len(sink.rejections) == 2  # once per connect
    assert source.stats.nodes_ok == 5 and source.stats.failed_nodes.keys() == {bad}


# --- folder browsing -----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def node_opcua(**env: str) -> AsyncIterator[NodeOpcUaServer]:
    server = NodeOpcUaServer(free_port(), **env)
    await server.start()
    try:
        yield server
    finally:
        await server.kill()


@pytest.mark.integration
async def test_browse_lists_the_simulators_variables_as_register_entries(tmp_path: Path) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    _, scenario = write_files(tmp_path, register_yaml(3))
    async with Simulator(load_scenario(scenario), endpoints={"s1": endpoint}, tick=0.05):
        outcome = await browse_endpoint(
            endpoint, f"/Objects/{{{SIM_URI}}}m1", depth=2, max_nodes=100, timeout=2.0
        )
        assert not outcome.stopped
        assert {(v.node, v.data_type) for v in outcome.variables} == {
            (f"nsu={SIM_URI};s=m1.state", "String"),
            (f"nsu={SIM_URI};s=m1.speed", "Double"),
        }
        # The entries load as signals of a register, by node id and by browse path.
        for address in ("node", "browse_path"):
            entries = yaml.safe_load(register_entries(outcome, "s1", address))
            assert {e["id"] for e in entries} == {"state", "speed"}
            assert all(e["source"] == "s1" and address in e for e in entries)
        by_path = yaml.safe_load(register_entries(outcome, "s1", "browse_path"))
        assert {e["browse_path"] for e in by_path} == {
            f"/Objects/{{{SIM_URI}}}m1/state",
            f"/Objects/{{{SIM_URI}}}m1/speed",
        }
        # From Objects, one level down holds the machines (no variables yet): the depth
        # limit stops the walk and says so.
        shallow = await browse_endpoint(endpoint, "i=85", depth=1, max_nodes=100, timeout=2.0)
        assert "depth 1 reached" in shallow.stopped and not shallow.variables
        with pytest.raises(BrowseError, match="BadNoMatch"):
            await browse_endpoint(endpoint, "/Objects/Nowhere", depth=1, max_nodes=5)


@pytest.mark.integration
async def test_browse_follows_continuation_points_and_stops_at_the_node_limit() -> None:
    # node-opcua hands out 2 references per node per answer (continuation points) and
    # enforces, without publishing, 2 nodes per Browse and 3 per Read.
    async with node_opcua(
        INTEROP_PRESSES="3",
        INTEROP_MAX_NODES_PER_BROWSE="2",
        INTEROP_MAX_NODES_PER_READ="3",
        INTEROP_UNPUBLISHED_LIMITS="1",
    ) as server:
        root = f"/Objects/{{{INTEROP_URI}}}Press2"
        whole = await browse_endpoint(
            server.url, root, depth=3, max_nodes=100, references_per_node=2, timeout=2.0
        )
        assert [v.node for v in whole.variables] == [
            f"nsu={INTEROP_URI};s=Press2.{name}" for name in ("State", "Force", "Count", "Level")
        ]
        assert not whole.stopped
        everything = await browse_endpoint(
            server.url, "/Objects", depth=2, max_nodes=10_000, references_per_node=2
        )
        presses = {v.parent for v in everything.variables if INTEROP_URI in v.node}
        assert presses == {f"/Objects/{{{INTEROP_URI}}}Press{p}" for p in (1, 2, 3)}
        limited = await browse_endpoint(
            server.url, "/Objects", depth=5, max_nodes=6, references_per_node=2
        )
        assert limited.nodes == 6 and "node limit 6 reached" in limited.stopped


@pytest.mark.integration
async def test_the_browse_command_prints_register_entries_and_says_where_it_stopped() -> None:
    async with node_opcua(INTEROP_PRESSES="2") as server:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "edge",
            "browse",
            "--endpoint",
            server.url,
            "--root",
            f"/Objects/{{{INTEROP_URI}}}Press1",
            "--depth",
            "1",
            "--max-nodes",
            "3",
            "--source",
            "press-plc",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=Path(__file__).parents[3],
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    entries = yaml.safe_load(out)
    assert [e["node"] for e in entries] == [
        f"nsu={INTEROP_URI};s=Press1.{name}" for name in ("State", "Force", "Count")
    ]
    assert all(e["source"] == "press-plc" for e in entries)
    assert "node limit 3 reached" in err.decode()
