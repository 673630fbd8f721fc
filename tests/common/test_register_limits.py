"""Register (and scenario) YAML limits: duplicate keys, file size, alias expansion, nesting,
and a large register loading whole."""

from __future__ import annotations

import concurrent.futures
import gc
import os
import tracemalloc
from pathlib import Path

import pytest

from bench.register_load import register_text
from common import yaml_source
from common.limits import REGISTER_MAX_BYTES
from common.protocols.opcua import OpcUaSignalBinding
from common.register_loader import RegisterError, load_register, parse_register
from common.yaml_source import (
    MAX_ALIAS_NODES,
    MAX_NESTING,
    YamlSourceError,
    parse_yaml,
    read_limited,
)
from simulators.scenario import ScenarioError, load_scenario

DEMO_REGISTER = Path(__file__).parents[2] / "examples" / "demo" / "register.yaml"

REGISTER = """\
enterprise: {id: e1, region: Shanxi, above_designated_size: true}
plants:
  - id: p1
    lines:
      - id: l1
        processes:
          - id: cnc1
            name: Turning
            key: true
            industry: discrete
            signals:
              - {id: state, role: state}
              - {id: speed, role: parameter}
            signals:
              - {id: state, role: state}
"""


def parse(text: str) -> object:
    return parse_yaml(text.encode(), Path("x.yaml")).data


# Duplicate keys


def test_duplicate_key_names_file_line_field_and_first_line() -> None:
    with pytest.raises(RegisterError) as caught:
        parse_register(REGISTER.encode(), Path("register.yaml"))
    assert str(caught.value) == (
        "register.yaml:14: plants[0].lines[0].processes[0]: "
        "duplicate key 'signals' (first at line 11)"
    )


def test_duplicate_key_in_a_flow_mapping_on_one_line() -> None:
    text = REGISTER.replace("{id: speed, role: parameter}", "{id: speed, role: parameter, id: x}")
    with pytest.raises(
        RegisterError,
        match=r"register.yaml:13: .*signals\[1\]: duplicate key 'id' \(first at line 13\)",
    ):
        parse_register(text.encode(), Path("register.yaml"))


def test_duplicate_top_level_key() -> None:
    with pytest.raises(YamlSourceError, match=r"^x.yaml:3: \(top level\): duplicate key 'b'"):
        parse("a: 1\nb: 2\nb: 3\n")


@pytest.mark.parametrize(
    "text",
    [
        'a: 1\n"a": 2\n',  # quoting does not make another key
        "1: a\n0x1: b\n",  # the same int
        "yes: a\ntrue: b\n",  # the same bool in YAML 1.1
        "<<: {a: 1}\n<<: {b: 2}\n",  # two merge keys in one mapping
    ],
)
def test_keys_that_build_the_same_value_are_duplicates(text: str) -> None:
    with pytest.raises(YamlSourceError, match=r"x.yaml:2: \(top level\): duplicate key"):
        parse(text)


@pytest.mark.parametrize(
    ("text", "data"),
    [
        ('1: a\n"1": b\n', {1: "a", "1": "b"}),  # an int and a str are two keys
        # A key written beside a merge overrides the merged one: not a duplicate.
        (
            "base: &b {x: 1, y: 1}\nuse: {<<: *b, x: 2}\n",
            {"base": {"x": 1, "y": 1}, "use": {"x": 2, "y": 1}},
        ),
        ("a: {k: 1}\nb: {k: 2}\n", {"a": {"k": 1}, "b": {"k": 2}}),  # same key, other mapping
    ],
)
def test_distinct_keys_are_not_duplicates(text: str, data: object) -> None:
    assert parse(text) == data


def test_duplicate_key_in_a_scenario_names_its_file_and_line(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("seed: 1\nmachines: {}\nseed: 2\n")
    with pytest.raises(
        ScenarioError,
        match=r"scenario.yaml:3: \(top level\): duplicate key 'seed' \(first at line 1\)",
    ):
        load_scenario(scenario, register=DEMO_REGISTER)


# File size


def test_register_over_the_size_limit_is_refused_by_its_size(tmp_path: Path) -> None:
    path = tmp_path / "register.yaml"
    with path.open("wb") as file:
        file.truncate(REGISTER_MAX_BYTES + 1)  # sparse: no disk or memory used
    with pytest.raises(RegisterError) as caught:
        load_register(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert f"{REGISTER_MAX_BYTES + 1:,} bytes" in message
    assert f"limit of {REGISTER_MAX_BYTES:,} bytes" in message
    assert "REGISTER_MAX_BYTES" in message


def test_register_bytes_over_the_size_limit_are_refused_before_parsing() -> None:
    with pytest.raises(RegisterError, match=r"^big.yaml: .*REGISTER_MAX_BYTES"):
        parse_register(b"#" * (REGISTER_MAX_BYTES + 1), Path("big.yaml"))


def test_file_at_the_size_limit_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "register.yaml"
    with path.open("wb") as file:
        file.truncate(REGISTER_MAX_BYTES)
    assert len(read_limited(path, "register")) == REGISTER_MAX_BYTES


def test_a_small_file_is_read_without_reserving_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "register.yaml"
    path.write_text(REGISTER)
    tracemalloc.start()
    try:
        raw = read_limited(path, "register")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert raw == REGISTER.encode()
    assert peak < 1024**2 < REGISTER_MAX_BYTES


def test_a_pipe_is_read_up_to_the_limit(tmp_path: Path) -> None:
    """A pipe reports size 0: what it carries is read all the same, and refused past the limit."""
    fifo = tmp_path / "register.fifo"
    os.mkfifo(fifo)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(fifo.write_bytes, REGISTER.encode())
        assert read_limited(fifo, "register") == REGISTER.encode()
        pool.submit(fifo.write_bytes, b"#" * (REGISTER_MAX_BYTES + 10))
        raw = read_limited(fifo, "register")
    assert len(raw) == REGISTER_MAX_BYTES + 1


def test_size_limit_is_documented() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "hostile-input.md").read_text()
    assert "REGISTER_MAX_BYTES" in docs


# Alias expansion and nesting


def flow_list(items: int) -> str:
    return "[" + ", ".join(["a"] * items) + "]"


def test_large_file_with_an_alias_is_not_an_alias_bomb() -> None:
    # More nodes than MAX_ALIAS_NODES, but the alias adds one: plain size is not expansion.
    text = f"a: &x 1\nb: *x\nc: {flow_list(MAX_ALIAS_NODES + 10)}\n"
    data = parse(text)
    assert isinstance(data, dict) and len(data["c"]) == MAX_ALIAS_NODES + 10


@pytest.mark.parametrize(("copies", "refused"), [(9, False), (10, True)])
def test_aliases_may_add_up_to_the_limit(
    copies: int, refused: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(yaml_source, "MAX_ALIAS_NODES", 1000)
    # Each copy of *a adds the 101 nodes of the list it names.
    text = f"a: &a {flow_list(100)}\nb: [{', '.join(['*a'] * copies)}]\n"
    if refused:
        with pytest.raises(YamlSourceError, match="aliases expand it to more than 1000 nodes"):
            parse(text)
    else:
        data = parse(text)
        assert isinstance(data, dict) and len(data["b"]) == copies


def test_nesting_beyond_the_limit_is_refused_by_name() -> None:
    deep = MAX_NESTING + 1
    with pytest.raises(
        YamlSourceError,
        match=rf"x.yaml:1: invalid YAML: nested too deeply \(more than {MAX_NESTING} levels\)",
    ):
        parse("a: " + "[" * deep + "]" * deep)


def test_nesting_at_the_limit_is_read() -> None:
    depth = MAX_NESTING - 1  # plus the top-level mapping
    assert parse("a: " + "[" * depth + "]" * depth) is not None


# The garbage collector is paused while loading, and only then


def test_garbage_collector_is_enabled_again_after_loading_and_after_an_error() -> None:
    parse_register(DEMO_REGISTER.read_bytes(), DEMO_REGISTER)
    assert gc.isenabled()
    with pytest.raises(RegisterError):
        parse_register(REGISTER.encode(), Path("register.yaml"))
    assert gc.isenabled()


def test_garbage_collector_stays_disabled_when_the_caller_disabled_it() -> None:
    gc.disable()
    try:
        parse_register(DEMO_REGISTER.read_bytes(), DEMO_REGISTER)
        assert not gc.isenabled()
    finally:
        gc.enable()


# Large registers


def test_register_of_20000_processes_loads_whole(tmp_path: Path) -> None:
    path = tmp_path / "register.yaml"
    path.write_text(register_text(20_000))
    assert 4_000_000 < os.path.getsize(path) < REGISTER_MAX_BYTES
    register = load_register(path)
    assert len(register.signals()) == 100_000
    last = register.signal("m19999", "p3")
    assert last is not None and last.line.id == "line-0999"
    binding = register.model.plants[0].lines[-1].processes[-1].signals[0].binding
    assert isinstance(binding, OpcUaSignalBinding) and binding.node == "i=19999"


@pytest.mark.parametrize("text", ["a: !!int abc", "a: !!timestamp abc", "a: !!bool maybe"])
def test_a_value_that_does_not_fit_its_explicit_tag_is_a_register_error(text: str) -> None:
    with pytest.raises(RegisterError, match="does not fit its explicit tag"):
        parse_register(text.encode(), Path("x.yaml"))
