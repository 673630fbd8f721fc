"""The stage-by-stage ingest benchmark at a tiny size, against a commit in a worktree: every
stage timed in both checkouts, the section written. No speed is asserted."""

from __future__ import annotations

import re
from pathlib import Path

from bench.ingest_stages import SECTION, STAGES, main


def test_tiny_stage_benchmark_times_both_checkouts(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    assert main(["--batches", "1", "--runs", "1", "--against", "HEAD", "--out", str(out)]) == 0
    text = out.read_text()
    assert f"## {SECTION}" in text
    for stage in (*STAGES, "**total**"):
        row = next(line for line in text.splitlines() if line.startswith(f"| {stage} |"))
        cells = [c.strip("* ") for c in row.strip("|").split("|")]
        before, now, ratio = (float(c.rstrip("×")) for c in cells[1:])
        assert before > 0 and now > 0 and ratio > 0, row
    assert re.search(r"5,000 samples in uplink batches", text)
