"""Hypothesis profiles for the property suites (tests/fuzz), applied per test with ``@fuzz``.

``ci`` (default): a bounded number of derandomized examples, so the fuzz suite takes
seconds and fails the same way on every run. ``long``: many random examples, for a
fuzzing session (docs/hostile-input.md)::

    HYPOTHESIS_PROFILE=long .venv/bin/pytest tests/fuzz -q

Applied per test rather than loaded globally, so other suites that use hypothesis
(schemathesis) keep their own settings. Wall-clock deadlines are off: the machine is shared.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=20_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
fuzz = settings(settings.get_profile(PROFILE))
"""Decorate each property test with this (after ``@given``)."""
fuzz_slow = settings(fuzz, max_examples=max(30, fuzz.max_examples // 5))
"""For properties whose one example takes tens of milliseconds (a whole register)."""
