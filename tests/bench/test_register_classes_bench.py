"""bench/register_classes.py at a tiny size: both forms load to the same plants and the
class-based one is shorter (a size, not a speed: sizes do not depend on the machine)."""

from __future__ import annotations

from bench.register_classes import measure, render


def test_the_class_form_loads_the_same_plants_in_fewer_lines() -> None:
    result = measure(10, 1)
    written, with_classes = result["lines"]
    assert with_classes < written
    assert "| ratio |" in render(result, "(smoke test)")
