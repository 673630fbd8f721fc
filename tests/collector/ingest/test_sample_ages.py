"""The histogram of sample ages at write (source time → stored): pure logic."""

from __future__ import annotations

import pytest

from collector.ingest.ages import AGE_BUCKETS, SampleAges

S = 1_000_000_000


def test_ages_fall_in_their_buckets_and_a_future_source_time_is_age_zero() -> None:
    ages = SampleAges()
    now = 1_800_000_000 * S
    ages.observe([now - S // 100, now - S // 100 + 1, now - 2 * S, now + 5 * S], now)
    assert ages.total == 4
    assert ages.counts[AGE_BUCKETS.index(0.005)] == 1  # the clock ahead: age 0
    assert ages.counts[AGE_BUCKETS.index(0.01)] == 2  # 10 ms is "le 0.01", as Prometheus
    assert ages.counts[AGE_BUCKETS.index(2.0)] == 1
    assert ages.sum_s == pytest.approx(0.02 + 2.0, abs=1e-6)


def test_quantiles_interpolate_within_the_bucket() -> None:
    ages = SampleAges()
    now = 10**18
    # 100 samples between 0.1 and 0.15 s, then one of an hour and a half (+Inf bucket).
    ages.observe([now - int((0.1 + 0.0004 * k) * S) - 1 for k in range(100)], now)
    assert ages.quantile(0.5) == pytest.approx(0.125)
    assert ages.quantile(0.99) == pytest.approx(0.1495)
    ages.observe([now - 5400 * S], now)
    assert ages.quantile(1.0) == AGE_BUCKETS[-1]
    summary = ages.summary()
    assert summary["samples"] == 101
    assert summary["mean_s"] == pytest.approx(
        (sum(0.1 + 0.0004 * k for k in range(100)) + 5400) / 101
    )


def test_an_empty_histogram_has_no_quantile() -> None:
    assert SampleAges().summary() == {"samples": 0, "p50_s": None, "p99_s": None, "mean_s": None}
