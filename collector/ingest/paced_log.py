"""Logging that a flood cannot turn into a flood of log lines: counters carry the rest.

Two paces, for two kinds of trouble: a limit exceeded (a hostile or broken edge) logs its
first violations and then every thousandth; rejected samples (a PLC with a wrong clock
rejects all of its samples) are named up to a number per minute, and a line per minute
says how many more were not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

LOGGED_VIOLATIONS = 10
"""Each limit logs its first violations, then every thousandth (a flood must not flood the log)."""
LOGGED_REJECTIONS_PER_MINUTE = 20
"""Rejected samples named in the log per minute; a PLC with a wrong clock rejects all of its
samples, and the counters (``/metrics``) carry the rest."""


class LimitViolations:
    """How often each limit (an ``UplinkLimits`` field name) was exceeded, logged paced."""

    def __init__(self, counts: dict[str, int]) -> None:
        """``counts``: by limit, the counters ``/metrics`` reports (kept up to date here)."""
        self.counts = counts

    def count(self, limit: str, message: str) -> None:
        count = self.counts[limit] = self.counts.get(limit, 0) + 1
        if count <= LOGGED_VIOLATIONS or count % 1000 == 0:
            log.warning("limit %s exceeded (%d times so far): %s", limit, count, message)


class RejectionLog:
    """Names rejected samples, at most ``LOGGED_REJECTIONS_PER_MINUTE`` a minute."""

    def __init__(self, by_rule: dict[str, int]) -> None:
        """``by_rule``: the rejection counters, quoted in the per-minute summary."""
        self.by_rule = by_rule
        self.clock: Callable[[], float] = time.monotonic
        """Seconds; paces the log (tests fix it)."""
        self._minute = 0
        self._logged = 0
        self._unlogged = 0

    def rejected(self, reasons: list[str], count: int) -> None:
        """``count`` samples were rejected; ``reasons`` names some of them (resolving names
        costs, so a batch names at most a few: the others count as unlogged)."""
        minute = int(self.clock() // 60)
        if minute != self._minute:
            if self._unlogged:
                log.warning(
                    "%d more rejected samples were not logged in the last minute; by rule: "
                    "%s (see plantkpi_samples_rejected_by_rule)",
                    self._unlogged,
                    self.by_rule,
                )
            self._minute = minute
            self._logged = self._unlogged = 0
        self._unlogged += max(0, count - len(reasons))
        for reason in reasons:
            if self._logged < LOGGED_REJECTIONS_PER_MINUTE:
                self._logged += 1
                log.warning("rejected sample: %s", reason)
            else:
                self._unlogged += 1
