"""The configurable KPI thresholds; the values in force are stored with every result (R7)."""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field

from common.durations import Duration
from common.register import ON_CHANGE_MAX_HOLD, PERIODIC_HOLD_FACTOR


class Thresholds(BaseModel):
    """Defaults follow KPI.md. Shares are fractions of the scheduled part of the window."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    coverage_min: float = Field(0.95, gt=0.0, le=1.0)
    """R3: minimum share of the scheduled window with a known, good value."""
    manual_mode_max: float = Field(0.10, ge=0.0, le=1.0)
    """R6: maximum share of the scheduled window in manual control mode."""
    periodic_hold_factor: float = Field(PERIODIC_HOLD_FACTOR, gt=0.0)
    """A periodic sample stays known for this many expected intervals."""
    on_change_max_hold: Duration = ON_CHANGE_MAX_HOLD
    """Seconds an on-change sample stays known while its source is alive."""
    reason_min_share: float = Field(0.01, ge=0.0, le=1.0)
    """A failing signal reports every non-good category with at least this share."""
    scheduled_min_share: float = Field(0.05, ge=0.0, le=1.0)
    """A process scheduled for less than this share of the window (the rest is planned
    downtime) is ``NOT_SCHEDULED``: a second of running time is no verdict."""
    provisional_max: Duration = Field(900.0, ge=0.0)
    """Seconds past a plant's watermark (the edge's "everything before this is delivered")
    during which a window is ``PROVISIONAL`` rather than judged on data still on its way;
    a window ending later than this after the watermark is judged on what arrived."""

    def fingerprint(self) -> str:
        """Compact, key-sorted JSON: equal thresholds always give the same text."""
        return json.dumps(self.model_dump(), sort_keys=True, separators=(",", ":"))
