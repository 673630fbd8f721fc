"""Where and how the collector writes: settings resolved at start-up. No server."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from collector.storage.settings import InfluxSettings


@pytest.mark.parametrize(
    ("url", "gzip", "compresses"),
    [
        ("http://127.0.0.1:8086", "auto", False),
        ("http://localhost:8086", "auto", False),
        ("http://[::1]:8086", "auto", False),
        ("https://127.0.0.2", "auto", False),
        ("http://10.1.2.3:8086", "auto", True),
        ("https://influx.plant.example:8086", "auto", True),
        ("http://127.0.0.1:8086", "on", True),
        ("https://influx.plant.example", "off", False),
    ],
)
def test_write_bodies_are_gzipped_unless_the_server_is_on_this_host(
    url: str, gzip: str, compresses: bool
) -> None:
    settings = InfluxSettings.model_validate({"url": url, "gzip": gzip})
    assert settings.compresses is compresses


def test_a_bad_gzip_setting_fails_at_start_up_naming_it() -> None:
    with pytest.raises(ValidationError, match="gzip"):
        InfluxSettings.model_validate({"gzip": "sometimes"})
