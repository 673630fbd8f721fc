"""What the ``kpi`` CLI shows while a plant's data is on its way, and why a process failed."""

from __future__ import annotations

from rich.console import Console

from collector.api.models import KpiOut, OutageOut, ProcessesOut
from collector.kpi import EDGE_SOURCE, SourceEvent, aggregate, evaluate
from collector.kpi_cli import format_outage, render_kpi
from tests.collector.kpi.kpi_testkit import DEFAULTS, at, on_change_state, series, window
from tests.registers import process, register


def test_the_table_counts_provisional_processes_and_says_why() -> None:
    reg = register([process("p1"), process("p2")])
    samples = {
        (p, s): data
        for p in ("p1", "p2")
        for s, data in (("state", on_change_state()), ("speed", series(-1, 40)))
    }
    will = SourceEvent(at(40), False, "uplink link 1 lost (Last Will)", at(-3600), 1)
    evaluation = evaluate(
        reg, window(), samples, {("pl", EDGE_SOURCE): [will]}, DEFAULTS, {"pl": at(40)}
    )
    kpi = KpiOut.model_validate(
        {
            "window": window().to_dict(),
            "computed_at_ns": at(60),
            "rates": [r.to_dict() for r in aggregate([evaluation])],
        }
    )
    processes = ProcessesOut.model_validate(
        {"window": window().to_dict(), "processes": [p.to_dict() for p in evaluation.processes]}
    )
    console = Console(record=True, width=200)
    render_kpi(console, kpi, processes)
    text = console.export_text()
    plant_row = next(line for line in text.splitlines() if "│ plant" in line)
    assert "0/0" in plant_row and "│           2 │" in plant_row and "EDGE_BUFFERING×2" in plant_row
    assert "data for these processes is still on its way" in text
    assert text.count("PROVISIONAL") == 2


def test_an_outage_reads_as_source_reason_and_span_in_the_window() -> None:
    start = window().start_ns
    outage = OutageOut(
        source="opc1", down_ns=at(35.2), up_ns=at(58.8), detail="connection lost: transport lost"
    )
    assert format_outage(outage, start).startswith(
        "opc1: connection lost: transport lost, 35.2–58.8 s ("
    )
    ongoing = outage.model_copy(update={"up_ns": None})
    assert "from 35.2 s on" in format_outage(ongoing, start)
