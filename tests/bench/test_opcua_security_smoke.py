"""bench/opcua_security.py at a tiny size: one secured simulator process, the edge's source
under each security policy, positive figures and a table row per case (no speed or ratio is
asserted: machines are noisy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.opcua_path import Timing
from bench.opcua_security import CASES, render_section, run_size
from tests.edge.opcua.security_kit import Keys, make_keys

pytestmark = pytest.mark.integration


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return make_keys(tmp_path / "keys")  # RSA: slow, and not on the test's event loop


async def test_tiny_security_benchmark_measures_every_policy(tmp_path: Path, keys: Keys) -> None:
    said: list[str] = []
    result = await run_size(
        20, 200, keys, Timing(seconds=1.0, warmup=0.5), tmp_path / "run", said.append
    )

    assert [c.case for c in result.cases] == list(CASES)
    for case in result.cases:
        # Every policy delivers notifications (how many per second is the benchmark's job).
        assert case.per_s > 0, case
        assert case.setup_s > 0 and case.edge_cpu > 0, case
    section = render_section([result], "(smoke test)", "tiny", "shared machine")
    for label in (
        "| None |",
        "| Basic256Sha256 SignAndEncrypt |",
        "| Aes256_Sha256_RsaPss SignAndEncrypt |",
    ):
        assert section.count(label) == 1, label
    assert "| 20 | 200 ms | 100/s |" in section and "- note: shared machine" in section
    assert "In this run, SignAndEncrypt against None: notifications/s " in section
    assert len(said) == 1 + len(CASES)
