"""Thresholds (defaults, validation, fingerprint) and the evaluator's input types."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from collector.kpi import SignalSamples, Thresholds, Window


def test_threshold_defaults_follow_kpi_md() -> None:
    t = Thresholds()
    assert t.coverage_min == 0.95
    assert t.manual_mode_max == 0.10
    assert t.periodic_hold_factor == 3.0
    assert t.on_change_max_hold == 43200.0
    assert t.reason_min_share == 0.01


def test_thresholds_are_frozen_and_strict() -> None:
    with pytest.raises(ValidationError, match="extra"):
        Thresholds(coverage=0.9)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Thresholds().coverage_min = 0.5  # type: ignore[misc]
    with pytest.raises(ValidationError, match="coverage_min"):
        Thresholds(coverage_min=1.5)
    with pytest.raises(ValidationError, match="periodic_hold_factor"):
        Thresholds(periodic_hold_factor=0)


def test_on_change_max_hold_accepts_durations() -> None:
    assert Thresholds(on_change_max_hold="2h").on_change_max_hold == 7200.0
    with pytest.raises(ValidationError, match="not a duration"):
        Thresholds(on_change_max_hold="two hours")


def test_fingerprint_is_compact_sorted_json_of_the_values_in_force() -> None:
    fp = Thresholds().fingerprint()
    assert " " not in fp
    assert json.loads(fp) == {
        "coverage_min": 0.95,
        "manual_mode_max": 0.1,
        "on_change_max_hold": 43200.0,
        "periodic_hold_factor": 3.0,
        "reason_min_share": 0.01,
        "scheduled_min_share": 0.05,
        "provisional_max": 900.0,
    }
    assert list(json.loads(fp)) == sorted(json.loads(fp))
    assert Thresholds().fingerprint() == fp
    assert Thresholds(coverage_min=0.9).fingerprint() != fp
    assert Thresholds.model_validate_json(fp) == Thresholds()


def test_window_must_end_after_it_starts() -> None:
    assert Window(1, 2).duration_ns == 1
    with pytest.raises(ValueError, match="must be after its start"):
        Window(5, 5)
    with pytest.raises(TypeError, match="int nanoseconds"):
        Window(1.0, 2)  # type: ignore[arg-type]


def test_signal_samples_columns_must_match() -> None:
    assert len(SignalSamples([1, 2], [0, 0], ["a", "b"])) == 2
    assert len(SignalSamples([1, 2], [0, 0])) == 2  # values optional except for mode signals
    with pytest.raises(ValueError, match="differ in length"):
        SignalSamples([1, 2], [0])
    with pytest.raises(ValueError, match="differ in length"):
        SignalSamples([1, 2], [0, 0], ["a"])
