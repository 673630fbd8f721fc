"""Property-based run against the OpenAPI schema (schemathesis): no input gives a 5xx,
and every answer, success or error, matches the schema documented for its status.

Bounded and deterministic: at most ``MAX_EXAMPLES`` per operation, derandomized. Each
example runs in-process over ASGI (httpx) against an app over the real influxd holding
the test plant; small range limits keep each generated request cheap.
"""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from collector.api.app import create_app
from collector.settings import ApiSettings
from collector.storage.settings import InfluxSettings
from tests.collector.api.conftest import Plant, build_register, make_runtime

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 50
LIMITS: dict[str, Any] = {
    "max_range": "6h",  # an export of 6 h is 6 hour-sized reads
    "max_recompute": "1d",
    "report_max_windows": 3,
    "tokens": ["fuzz-token"],
}


# The schema does not depend on data: read it from an app whose parts are not connected.
_schema_app = create_app(
    make_runtime(build_register(), InfluxSettings(), None), ApiSettings(**LIMITS)
)
schema = schemathesis.openapi.from_asgi("/openapi.json", _schema_app)


def test_the_api_states_the_version_of_the_installed_package() -> None:
    project = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())
    assert _schema_app.openapi()["info"]["version"] == project["project"]["version"]


@pytest.fixture(scope="module")
def fuzz_app(plant: Plant) -> Iterator[tuple[asyncio.Runner, FastAPI]]:
    """One app and one event loop of its own for every example: the app's InfluxDB session
    belongs to that loop (the test itself is synchronous, as schemathesis drives it)."""
    runtime = plant.runtime()
    with asyncio.Runner() as runner:
        yield runner, plant.app(runtime, **LIMITS)
        runner.run(runtime.kpi.reader.close())
        runner.run(runtime.kpi.writer.close())


async def _call(app: FastAPI, kwargs: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as api:
        response = await api.request(**kwargs)
        await response.aread()
        return response


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_gives_a_server_error(case: Any, fuzz_app: tuple[asyncio.Runner, FastAPI]) -> None:
    runner, app = fuzz_app
    kwargs = case.as_transport_kwargs(
        base_url="http://api.test", headers={"Authorization": "Bearer fuzz-token"}
    )
    if not kwargs.get("cookies"):
        kwargs.pop("cookies", None)
    response = runner.run(_call(app, kwargs))
    if case.path == "/ready" and response.status_code == 503:
        # /ready's answer while not ready (no broker here), not a server error.
        assert response.json()["ready"] is False
        return
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
    if response.status_code >= 400 and case.path != "/metrics":
        body = response.json()
        assert set(body) >= {"error", "detail"}, body


def test_every_json_route_documents_its_answer_and_its_errors() -> None:
    text_routes = {"/metrics", "/api/v1/export/processes.csv", "/api/v1/export/rates.csv"}
    for path, operations in _schema_app.openapi()["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            if path not in text_routes:
                schema = responses["200"]["content"]["application/json"]["schema"]
                assert "$ref" in schema or "anyOf" in schema, f"{method} {path}: {schema}"
            if path.startswith("/api/"):
                error = responses["422"]["content"]["application/json"]["schema"]
                assert error == {"$ref": "#/components/schemas/ErrorOut"}, f"{method} {path}"
