"""The project's version, as installed (``pyproject.toml``): one number for the API, the
edge's health report and the logs."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("plantkpi")
except PackageNotFoundError:  # run from a source tree that was never installed
    VERSION = "0+unknown"
