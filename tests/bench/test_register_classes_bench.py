"""bench/register_classes.py at a tiny size: both forms load to the same plants and the
class-based one is shorter (a size, not a speed: sizes do not depend on the machine)."""

from __future__ import annotations

from bench.register_classes import measure, render


def test_the_class_form_loads_the_same_plants_in_fewer_lines() -> None:
    result = measure(10, 1)
    written, with_classes = result["lines"]
    assert with_classes < written
    assert "| ratio |" in render(result, "(smoke test)")


def test_the_ledger_import_bench_imports_a_small_ledger() -> None:
    from bench.ledger_import import measure as measure_import
    from bench.ledger_import import render as render_import

    result = measure_import(20, 1)
    assert result["rows"] == 20 and result["bytes"] > 0  # sizes, never a speed
    assert "| 20 |" in render_import(result, "(smoke test)")


def test_the_signal_watch_bench_runs_both_paths() -> None:
    from bench.signal_watch import measure as measure_watch
    from bench.signal_watch import render as render_watch

    result = measure_watch(10, 1000, 1)
    assert result["signals"] == 10 and result["samples"] == 1000
    assert "| 10 | 1,000 |" in render_watch(result, "(smoke test)")
