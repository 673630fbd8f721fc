"""Capped exponential backoff with jitter, for every reconnect and retry loop."""

from __future__ import annotations

import random


class Backoff:
    """Equal-jitter backoff capped at ``cap`` seconds: the n-th delay is drawn from
    ``[c/2, c]`` with ``c = min(cap, base·2ⁿ)``, so retries neither come in lockstep (no
    reconnect storm after an outage) nor come back sooner than half the step."""

    def __init__(self, cap: float = 30.0, base: float = 0.5) -> None:
        self.cap = cap
        self.base = base
        self.attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * 2**self.attempt)
        self.attempt = min(self.attempt + 1, 30)
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0
