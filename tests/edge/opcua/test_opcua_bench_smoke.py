"""bench/opcua_path.py at a tiny size: it runs against a real simulator process and reports
positive figures for both clients (no speed is asserted: machines are noisy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.opcua_path import Timing, render_section, run_size

pytestmark = pytest.mark.integration


async def test_tiny_opcua_path_benchmark_reports_both_clients(tmp_path: Path) -> None:
    said: list[str] = []
    result = await run_size(20, 200, Timing(seconds=2.0, warmup=1.0), tmp_path, said.append)
    assert result.signals == 20 and result.edge_connections == 1
    # Both clients receive notifications (how many per second is the benchmark's job).
    assert result.baseline_per_s > 0 and result.edge_per_s > 0
    section = render_section([result], "(smoke test)", "tiny")
    assert "| 20 | 200 ms | 100/s |" in section and "**" in section
    assert any("edge" in line for line in said)
