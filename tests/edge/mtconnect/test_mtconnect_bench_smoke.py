"""bench/mtconnect_path.py at a tiny size: it runs against a real simulated agent process and
reports positive figures for both clients (no speed is asserted: machines are noisy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.mtconnect_path import render_section, run_size
from bench.opcua_path import Timing

pytestmark = pytest.mark.integration


async def test_tiny_mtconnect_path_benchmark_reports_both_clients(tmp_path: Path) -> None:
    said: list[str] = []
    timing = Timing(seconds=1.0, warmup=0.5)
    result = await run_size(50, 20, 1, timing, tmp_path, said.append)
    assert (result.count, result.signals) == (50, 20)
    assert len(result.baseline) == len(result.edge) == 1
    assert result.baseline[0] > 0 and result.edge[0] > 0
    section = render_section([result], "(smoke test)", timing, 1)
    assert "| 50 (20) |" in section and "**" in section
    assert any("edge" in line for line in said)
