"""OPC UA DataValues → sample fields: the collector's value rules applied at the edge too."""

from __future__ import annotations

import math

import pytest
from asyncua import ua

from edge.sources.opcua.values import UnsupportedValue, sample_fields

RECV = 1_764_000_000_000_000_000


def data_value(value: object, variant: ua.VariantType) -> ua.DataValue:
    return ua.DataValue(ua.Variant(value, variant), StatusCode=ua.StatusCode(ua.UInt32(0)))


@pytest.mark.parametrize(
    ("value", "variant", "message"),
    [
        ("\ud800broken", ua.VariantType.String, "lone surrogate"),
        ("x" * 5000, ua.VariantType.String, "longer than the limit"),
        (math.nan, ua.VariantType.Double, "NaN and ±inf are not"),
        (-math.inf, ua.VariantType.Float, "NaN and ±inf are not"),
        (2**64 - 1, ua.VariantType.UInt64, "does not fit in int64"),
        (b"\x00\x01", ua.VariantType.ByteString, "ByteString"),
    ],
)
def test_values_the_storage_cannot_hold_are_rejected_with_the_reason(
    value: object, variant: ua.VariantType, message: str
) -> None:
    with pytest.raises(UnsupportedValue, match=message):
        sample_fields(data_value(value, variant), RECV)


@pytest.mark.parametrize(
    ("value", "variant"),
    [
        ("RUNNING", ua.VariantType.String),
        ("温度", ua.VariantType.String),
        (2**63 - 1, ua.VariantType.Int64),
        (1.5e308, ua.VariantType.Double),
        (True, ua.VariantType.Boolean),
    ],
)
def test_storable_values_pass_unchanged(value: object, variant: ua.VariantType) -> None:
    ts, got, status, _ = sample_fields(data_value(value, variant), RECV)
    assert got == value and status == 0 and ts == RECV
