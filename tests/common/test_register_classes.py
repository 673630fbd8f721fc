"""Equipment classes: a machine type written once and instantiated per machine loads as the
register written out by hand; an error in an instance names its line and the class field.
The demo register is the worked example: its instances load as their classes declare."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.register import Signal
from common.register_loader import RegisterError, load_register, parse_register
from tests import registers

DEMO = Path(__file__).parents[2] / "examples" / "demo" / "register.yaml"

LATHE: dict[str, Any] = {
    "equipment": "CNC lathe",
    "industry": "discrete",
    "key": True,
    "params": {"ns": "urn:plant-a"},
    "signals": [
        {
            "id": "state",
            "role": "state",
            "update": "on_change",
            "node": "nsu={ns};s={machine}.State",
        },
        {"id": "spindle_speed", "role": "parameter", "node": "nsu={ns};s={machine}.Spindle"},
        {
            "id": "mode",
            "role": "mode",
            "update": "on_change",
            "node": "nsu={ns};s={machine}.Mode",
            "manual_values": ["JOG", "MDA"],
        },
    ],
}


def document(processes: list[dict[str, Any]], classes: dict[str, Any]) -> dict[str, Any]:
    doc = registers.document(
        [registers.plant("pl", registers.SOURCES, [registers.line("l1", processes)])]
    )
    return {**doc, "equipment_classes": classes}


def load(doc: dict[str, Any]) -> Any:
    return parse_register(registers.to_yaml(doc).encode(), Path("plant.yaml"))


def test_instances_load_as_the_register_written_out_by_hand() -> None:
    instances = [
        {
            "id": f"lathe{n}",
            "name": f"车床 {n}",
            "class": "lathe",
            "source": "opc",
            "params": {"machine": f"L0{n}"},
        }
        for n in (1, 2)
    ]
    by_class = load(document(instances, {"lathe": LATHE}))

    def by_hand(n: int) -> dict[str, Any]:
        ns = "nsu=urn:plant-a;s="
        return {
            "id": f"lathe{n}",
            "name": f"车床 {n}",
            "key": True,
            "industry": "discrete",
            "equipment": "CNC lathe",
            "signals": [
                {
                    "id": "state",
                    "role": "state",
                    "update": "on_change",
                    "source": "opc",
                    "node": f"{ns}L0{n}.State",
                },
                {
                    "id": "spindle_speed",
                    "role": "parameter",
                    "source": "opc",
                    "node": f"{ns}L0{n}.Spindle",
                },
                {
                    "id": "mode",
                    "role": "mode",
                    "update": "on_change",
                    "source": "opc",
                    "node": f"{ns}L0{n}.Mode",
                    "manual_values": ["JOG", "MDA"],
                },
            ],
        }

    written = registers.load(
        registers.document(
            [
                registers.plant(
                    "pl", registers.SOURCES, [registers.line("l1", [by_hand(1), by_hand(2)])]
                )
            ]
        )
    )
    assert by_class.model.plants == written.model.plants
    assert [r.signal.binding for r in by_class.signals()][1].node == "nsu=urn:plant-a;s=L01.Spindle"


def test_an_instance_overrides_a_field_adds_a_signal_and_keeps_number_types() -> None:
    press = {
        "industry": "discrete",
        "key": True,
        "signals": [
            {
                "id": "state",
                "role": "state",
                "update": "on_change",
                "table": "holding",
                "address": "{base}",
                "type": "uint16",
            },
            {"id": "force", "role": "parameter", "address": "{base+4}", "type": "float32"},
            {"id": "topic_like", "role": "parameter", "key": False, "address": "{base+10}"},
        ],
    }
    plc = {"id": "plc", "kind": "modbus", "endpoint": "modbus://10.0.0.7"}
    instance = {
        "id": "press7",
        "name": "Press 7",
        "class": "press",
        "source": "plc",
        "params": {"base": 100},
        "signals": [
            {"id": "force", "interval": "500ms"},
            {
                "id": "temperature",
                "role": "parameter",
                "address": "{base+20}",
                "type": "int16",
                "scale": 0.1,
            },
        ],
    }
    doc = registers.document([registers.plant("pl", [plc], [registers.line("l1", [instance])])])
    loaded = load({**doc, "equipment_classes": {"press": press}})
    signals = {r.signal.id: r.signal for r in loaded.signals()}
    assert list(signals) == ["state", "force", "topic_like", "temperature"]
    assert [s.binding.address for s in signals.values()] == [100, 104, 110, 120]
    assert signals["force"].interval == 0.5 and signals["state"].interval == 1.0
    assert signals["temperature"].source == "plc"


def test_braces_are_written_doubled() -> None:
    cls = {
        "key": True,
        "industry": "discrete",
        "signals": [
            {"id": "state", "role": "state", "update": "on_change", "topic": "m/{machine}/{{raw}}"}
        ],
    }
    instance = {"id": "m1", "name": "m1", "class": "c", "source": "dev", "params": {"machine": "x"}}
    loaded = load(document([instance], {"c": cls}))
    assert loaded.signals()[0].signal.binding.topic == "m/x/{raw}"


@pytest.mark.parametrize(
    ("instance", "classes", "needle", "reason"),
    [
        (
            {"class": "lath"},
            {"lathe": LATHE},
            "class: lath",
            "no equipment class 'lath' (classes: lathe)",
        ),
        (
            {"class": "lathe", "params": {"machin": "L01"}},
            {"lathe": LATHE},
            "machin: L01",
            "class lathe has no parameter 'machin' (its parameters: machine, ns)",
        ),
        (
            {"class": "lathe"},
            {"lathe": LATHE},
            "node: nsu={ns};s={machine}.State",
            "class lathe, for process lathe1 (plant.yaml:25): no parameter 'machine' for {machine} "
            "(known: line, ns, plant, process)",
        ),
        (
            {
                "class": "lathe",
                "params": {"machine": "L01"},
                "signals": [{"id": "mode"}, {"unit": "twice", "id": "mode"}],
            },
            {"lathe": LATHE},
            "  id: mode",  # the second entry's id (its first key is unit)
            "signal 'mode' is overridden twice",
        ),
        (
            {"class": "lathe", "params": {"machine": "L01", "ns": "x"}},
            {"lathe": {**LATHE, "signals": [{**LATHE["signals"][0], "role": "sate"}]}},
            "role: sate",
            "(class lathe: equipment_classes.lathe.signals[0].role): Input should be",
        ),
        (
            {
                "class": "lathe",
                "params": {"machine": "L01"},
                "signals": [{"id": "mode", "intervl": "1s"}],
            },
            {"lathe": LATHE},
            "intervl: 1s",
            "processes[0].signals[2].intervl (class lathe: ",
        ),
    ],
)
def test_an_error_names_the_line_and_the_class_field(
    instance: dict[str, Any], classes: dict[str, Any], needle: str, reason: str
) -> None:
    process = {"id": "lathe1", "name": "lathe 1", "source": "opc", **instance}
    doc = document([process], classes)
    text = registers.to_yaml(doc)
    with pytest.raises(RegisterError) as caught:
        parse_register(text.encode(), Path("plant.yaml"))
    message = str(caught.value)
    line = [n for n, row in enumerate(text.splitlines(), 1) if needle in row][-1]
    assert f"plant.yaml:{line}: " in message and reason in message, (message, line)


def test_an_override_error_points_at_the_field_where_it_was_written() -> None:
    """A class field's error names the class's line, an overridden field's the override's."""
    instance = {
        "id": "l1",
        "name": "l1",
        "class": "lathe",
        "source": "opc",
        "params": {"machine": "L01"},
        "signals": [{"id": "mode", "update": "sometimes"}],
    }
    text = registers.to_yaml(
        document(
            [instance],
            {
                "lathe": {
                    **LATHE,
                    "signals": [
                        LATHE["signals"][0],
                        LATHE["signals"][1],
                        {**LATHE["signals"][2], "interval": "fast"},
                    ],
                }
            },
        )
    )
    with pytest.raises(RegisterError) as caught:
        parse_register(text.encode(), Path("plant.yaml"))
    rows = text.splitlines()
    interval = next(n for n, row in enumerate(rows, 1) if "interval: fast" in row)
    update = next(n for n, row in enumerate(rows, 1) if "update: sometimes" in row)
    message = str(caught.value)
    assert f"plant.yaml:{interval}: plants[0].lines[0].processes[0].signals[2].interval " in message
    assert f"plant.yaml:{update}: plants[0].lines[0].processes[0].signals[2].update " in message


def test_params_are_text_or_numbers_named_as_placeholders_and_braces_are_checked() -> None:
    def instance(**params: Any) -> dict[str, Any]:
        return {"id": "p", "name": "p", "class": "c", "source": "opc", "params": params}

    def cls(node: str, **defaults: Any) -> dict[str, Any]:
        return {
            "key": True,
            "industry": "discrete",
            "params": defaults,
            "signals": [{"id": "s", "role": "state", "node": node}],
        }

    with pytest.raises(RegisterError, match="a parameter is text or a whole number"):
        load(document([instance(machine=True)], {"c": cls("{machine}")}))
    with pytest.raises(RegisterError, match="is not a placeholder"):
        load(document([instance(machine="x")], {"c": cls("{spindle-no}.{machine}")}))
    with pytest.raises(RegisterError, match="letters, digits and _ only"):
        load(document([instance()], {"c": cls("x", **{"spindle-no": 1})}))
    with pytest.raises(RegisterError, match="is always the line's id"):
        load(document([instance()], {"c": cls("x", line="l9")}))


def test_a_class_without_signals_or_with_an_unknown_key_is_refused() -> None:
    with pytest.raises(RegisterError, match=r"equipment_classes\.c\.signals: Field required"):
        load(document([], {"c": {"key": True}}))
    with pytest.raises(RegisterError, match=r"equipment_classes\.c\.colour"):
        load(document([], {"c": {"signals": [], "colour": "red"}}))
    cls = {
        "key": True,
        "industry": "discrete",
        "signals": [{"id": "s", "role": "state", "node": "{machine+1}"}],
    }
    instance = {"id": "p", "name": "p", "class": "c", "source": "opc", "params": {"machine": "L01"}}
    with pytest.raises(RegisterError, match="adds to machine='L01', not a whole number"):
        load(document([instance], {"c": cls}))


def test_the_example_of_docs_onboarding_loads_as_it_says() -> None:
    page = Path(__file__).parents[2] / "docs" / "onboarding.md"
    (block,) = re.findall(r"^```yaml\n(.*?)^```", page.read_text(encoding="utf-8"), re.M | re.S)
    loaded = parse_register(block.encode(), Path("onboarding.md"))
    signals = {(r.process.id, r.signal.id): r.signal for r in loaded.signals()}
    assert signals[("a1-lathe-02", "spindle_speed")].interval == 0.5
    assert signals[("a1-lathe-01", "spindle_speed")].interval == 1.0
    assert signals[("a1-press-01", "force")].binding.address == 104  # type: ignore[union-attr]
    assert signals[("a1-lathe-01", "mode")].manual_values == ("JOG", "MDA")


def test_the_demo_register_loads_each_class_instance_as_its_class_declares() -> None:
    written = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    classes = written["equipment_classes"]
    loaded = load_register(DEMO)
    processes = {p.id: p for pl in loaded.model.plants for ln in pl.lines for p in ln.processes}
    instances = [
        p for pl in written["plants"] for ln in pl["lines"] for p in ln["processes"] if "class" in p
    ]
    uses = Counter(p["class"] for p in instances)
    assert set(uses) == set(classes), "a class of the example that no machine uses"
    assert min(uses.values()) >= 2, f"a class written for one machine only: {uses}"
    for instance in instances:
        cls, process = classes[instance["class"]], processes[instance["id"]]
        for field in ("key", "industry", "equipment"):
            assert getattr(process, field) == instance.get(field, cls.get(field, "")), field
        overrides = {s["id"]: s for s in instance.get("signals", [])}
        entries = [{**s, **overrides.pop(s["id"], {})} for s in cls["signals"]]
        entries += overrides.values()  # the instance's own signals follow the class's
        assert [s.id for s in process.signals] == [e["id"] for e in entries], process.id
        for signal, entry in zip(process.signals, entries, strict=True):
            where = f"{process.id}.{signal.id}"
            assert signal.source == entry.get("source", instance.get("source")), where
            core = {k: v for k, v in entry.items() if k in Signal.model_fields and k != "source"}
            as_declared = Signal.model_validate(core)
            assert signal.model_copy(update={"source": None, "binding": None}) == as_declared
            assert signal.binding is not None, where
            address = signal.binding.model_dump(exclude={"kind"})
            assert set(entry) - set(Signal.model_fields) <= set(address), where
            assert not any("{" in str(v) for v in address.values()), f"{where}: {address}"
    # Placeholders are what keep machines of one class apart: no two signals read one address.
    read = [(r.signal.source, repr(r.signal.binding)) for r in loaded.signals() if r.signal.binding]
    assert [a for a, n in Counter(read).items() if n > 1] == []
