"""Pure pieces of the benchmarks: the report section replacement and the synthetic plant."""

from __future__ import annotations

from pathlib import Path

from bench.report import DEFAULT_HEADER, replace_section
from bench.scaled_plant import PlantSize, write_plant
from common.register_loader import load_register
from simulators.scenario import load_scenario


def test_a_missing_file_is_created_with_the_section(tmp_path: Path) -> None:
    path = tmp_path / "benchmarks.md"
    replace_section(path, "End-to-end throughput", "figures")
    assert path.read_text() == DEFAULT_HEADER + "\n## End-to-end throughput\n\nfigures\n"


def test_only_the_named_section_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "benchmarks.md"
    path.write_text(
        "# Benchmarks\n\nintro\n\n## Buffer drain\n\ndrain figures\n\n"
        "## End-to-end throughput\n\nold figures\n### Reading\n\nold text\n\n"
        "## Line protocol\n\nserializer figures\n"
    )
    replace_section(path, "End-to-end throughput", "new figures with $1 and \\1")
    assert path.read_text() == (
        "# Benchmarks\n\nintro\n\n## Buffer drain\n\ndrain figures\n\n"
        "## End-to-end throughput\n\nnew figures with $1 and \\1\n\n"
        "## Line protocol\n\nserializer figures\n"
    )


def test_a_new_section_is_appended(tmp_path: Path) -> None:
    path = tmp_path / "benchmarks.md"
    path.write_text("# Benchmarks\n\n## Buffer drain\n\ndrain figures\n")
    replace_section(path, "End-to-end throughput", "figures")
    assert path.read_text() == (
        "# Benchmarks\n\n## Buffer drain\n\ndrain figures\n\n## End-to-end throughput\n\nfigures\n"
    )


def test_the_synthetic_plant_loads_and_splits_signals_between_sources(tmp_path: Path) -> None:
    size = PlantSize(signals=23, params_per_process=5, interval_ms=100)
    register_path, scenario_path = write_plant(size, tmp_path)
    register = load_register(register_path)
    load_scenario(scenario_path)  # the simulators accept it
    periodic = [ref for ref in register.signals() if ref.signal.update == "periodic"]
    assert size.processes == 5
    assert len(periodic) == size.periodic_signals == 25
    assert size.offered_per_s == 250.0
    by_source = {ref.signal.source for ref in periodic}
    assert by_source == {"bench-opcua", "bench-mqtt"}
