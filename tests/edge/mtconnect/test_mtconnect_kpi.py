"""MTConnect's words as the KPI reads them, with the register of the source's README: an
Execution state signal counts by its quality, whatever the word; a ControllerMode of
MANUAL, MANUAL_DATA_INPUT or EDIT is manual (rule R6), AUTOMATIC is not, UNAVAILABLE is
unknown. And why the README's ``manual_values`` are needed: the default misses MDI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from collector.kpi import ProcessResult, Reason, SignalSamples, Status, evaluate
from common.quality import BAD_NO_COMMUNICATION, GOOD
from common.register_loader import LoadedRegister, parse_register
from tests.collector.kpi.kpi_testkit import DEFAULTS, points, window
from tests.edge.readme_snippets import as_register, snippets

PROCESS = "vmc3"


def readme_register(**mode_fields: Any) -> LoadedRegister:
    (snippet,) = snippets("mtconnect")
    process = snippet["lines"][0]["processes"][0]
    mode = next(s for s in process["signals"] if s["role"] == "mode")
    mode.update(mode_fields)
    for key in [k for k, v in mode.items() if v is None]:
        del mode[key]
    return parse_register(as_register(snippet).encode(), Path("readme.yaml"))


def run(register: LoadedRegister, mode: SignalSamples, execution: str = "ACTIVE") -> ProcessResult:
    samples = {
        (PROCESS, "execution"): points((-10, GOOD, execution)),
        (PROCESS, "spindle_speed"): points((-10, GOOD, 1200.0)),
        (PROCESS, "controller_mode"): mode,
    }
    return evaluate(register, window(), samples, {}, DEFAULTS).process(PROCESS)


@pytest.mark.parametrize("word", ["MANUAL", "MANUAL_DATA_INPUT", "EDIT", "manual_data_input"])
def test_a_manual_controller_mode_counts_as_manual(word: str) -> None:
    result = run(readme_register(), points((-10, GOOD, "AUTOMATIC"), (50, GOOD, word)))
    assert result.manual_share == pytest.approx(0.5)
    assert result.status is Status.NOT_DIGITALIZED and result.reasons == (Reason.MANUAL_MODE,)


@pytest.mark.parametrize(
    "mode",
    [
        points((-10, GOOD, "AUTOMATIC")),
        points((-10, GOOD, "AUTOMATIC"), (50, GOOD, "SEMI_AUTOMATIC")),  # the plant's call
        points((-10, GOOD, "AUTOMATIC"), (50, BAD_NO_COMMUNICATION, None)),  # UNAVAILABLE
    ],
    ids=["automatic", "semi-automatic", "unavailable"],
)
def test_automatic_or_unknown_is_not_manual(mode: SignalSamples) -> None:
    result = run(readme_register(), mode)
    assert result.manual_share == 0.0 and result.status is Status.DIGITALIZED


@pytest.mark.parametrize("word", ["ACTIVE", "READY", "STOPPED", "INTERRUPTED", "FEED_HOLD"])
def test_any_execution_word_is_a_known_state(word: str) -> None:
    result = run(readme_register(), points((-10, GOOD, "AUTOMATIC")), execution=word)
    assert result.status is Status.DIGITALIZED


def test_without_the_readmes_manual_values_mdi_would_count_as_automatic() -> None:
    register = readme_register(manual_values=None)  # the register's default: [MANUAL]
    mdi = points((-10, GOOD, "AUTOMATIC"), (50, GOOD, "MANUAL_DATA_INPUT"))
    assert run(register, mdi).manual_share == 0.0
