"""Building a Simulator from a scenario: routing, source selection and option errors (no I/O)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from harness.servers import REPO_ROOT
from simulators.modbus_server import ModbusDeviceServer
from simulators.opcua_server import OpcUaSourceServer
from simulators.runner import Simulator, SimulatorError
from simulators.s7_server import S7PlcServer
from simulators.scenario import LoadedScenario, load_scenario
from tests import registers
from tests.simulators.conftest import MQTT_SCENARIO, mqtt_document, write_scenario

DEMO = REPO_ROOT / "examples" / "demo" / "scenario.yaml"


@pytest.fixture(scope="module")
def demo() -> LoadedScenario:
    return load_scenario(DEMO)


def test_one_server_per_opcua_source_and_one_client_per_mqtt_source(demo: LoadedScenario) -> None:
    sim = Simulator(demo)
    assert sorted(sim.equipment) == [
        "a1-opcua",
        "a2-opcua",
        "a3-plc",
        "a4-cnc",
        "b1-opcua",
        "b4-plc",
    ]
    assert isinstance(sim.equipment["a3-plc"], ModbusDeviceServer)
    assert isinstance(sim.equipment["b4-plc"], S7PlcServer)
    opcua = {sid: e for sid, e in sim.equipment.items() if isinstance(e, OpcUaSourceServer)}
    assert sorted(opcua) == ["a1-opcua", "a2-opcua", "b1-opcua"]
    assert sorted(sim.mqtt) == ["a-devices", "b-devices"]
    assert sim.endpoints["a1-opcua"] == "opc.tcp://127.0.0.1:48401"
    assert sim.brokers["b-devices"] == "mqtt://127.0.0.1:18830"
    assert opcua["a2-opcua"].polled and not opcua["a1-opcua"].polled
    assert opcua["a1-opcua"].processes == [
        "a1-deburring",
        "a1-grinding",
        "a1-milling",
        "a1-turning",
    ]
    assert sim.mqtt["a-devices"].topics[0] == "devices/plant-a/a2-marking/power"


def test_overrides_and_source_selection(demo: LoadedScenario) -> None:
    sim = Simulator(
        demo,
        endpoints={"b1-opcua": "opc.tcp://127.0.0.1:0"},
        brokers={"b-devices": "mqtt://broker:1884"},
        sources={"b1-opcua", "b-devices"},
    )
    assert sim.endpoints == {"b1-opcua": "opc.tcp://127.0.0.1:0"}
    assert sim.brokers == {"b-devices": "mqtt://broker:1884"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"endpoints": {"a-devices": "opc.tcp://h:1"}}, "but it is a mqtt source"),
        ({"endpoints": {"zz": "opc.tcp://h:1"}}, "unknown source 'zz'"),
        ({"endpoints": {"a1-opcua": "http://h:1"}}, "is not opc.tcp://host:port"),
        ({"brokers": {"a-devices": "tcp://h:1"}}, "broker for a-devices: broker 'tcp://h:1'"),
        ({"sources": {"a1-opcua", "nope"}}, "unknown source ids ['nope']"),
        ({"tick": 0}, "tick must be positive"),
    ],
)
def test_option_errors_name_the_culprit(
    demo: LoadedScenario, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(SimulatorError) as info:
        Simulator(demo, **kwargs)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_source_ids_must_be_unique_across_plants(tmp_path: Path) -> None:
    doc = mqtt_document()
    second = copy.deepcopy(doc["plants"][0])
    second["id"] = "p2"
    second["lines"][0]["id"] = "l2"
    for process in second["lines"][0]["processes"]:
        process["id"] += "x"
    doc["plants"].append(second)
    register = registers.to_yaml(doc)
    scenario = load_scenario(write_scenario(tmp_path, register, MQTT_SCENARIO))
    with pytest.raises(SimulatorError, match="source id 'dev' is used by plants p1 and p2"):
        Simulator(scenario)


def test_a_signal_bound_through_a_wildcard_subscription_is_named(tmp_path: Path) -> None:
    doc = mqtt_document()
    plant = doc["plants"][0]
    plant["sources"][0]["subscriptions"] = [{"pattern": "w/{signal}", "process": "d2"}]
    (viscosity,) = plant["lines"][0]["processes"][1]["signals"]
    viscosity["topic"] = None
    register = registers.to_yaml(doc)
    message = "d2.viscosity is bound through a wildcard subscription"
    scenario = load_scenario(write_scenario(tmp_path, register, MQTT_SCENARIO))
    with pytest.raises(SimulatorError, match=message):
        Simulator(scenario)
