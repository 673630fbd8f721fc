"""Every failure is ``{"error": code, "detail": ...}`` with the right status, no traceback."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from collector.storage.settings import InfluxSettings
from tests.api.conftest import Apps, client
from tests.support.servers import free_port

pytestmark = pytest.mark.integration

HISTORY = {"scope": "enterprise", "scope_id": "ent-a"}


@pytest.mark.parametrize(
    ("path", "params", "status", "code", "field"),
    [
        (
            "/api/v1/recompute",
            {"start": "2026-11-28T08:00:00", "end": "2026-11-28T09:00:00Z"},
            422,
            "bad_time_range",
            "start",
        ),
        (
            "/api/v1/recompute",
            {"start": "2026-11-28T09:00:00Z", "end": "2026-11-28T08:00:00Z"},
            422,
            "bad_time_range",
            "end",
        ),
        (
            "/api/v1/recompute",
            {"start": "2026-11-20T00:00:00Z", "end": "2026-11-28T00:00:00Z"},
            422,
            "bad_time_range",
            "end",
        ),
        (
            "/api/v1/recompute",
            {"start": "yesterday", "end": "2026-11-28T00:00:00Z"},
            422,
            "invalid_request",
            "start",
        ),
        ("/api/v1/recompute", {"end": "2026-11-28T00:00:00Z"}, 422, "invalid_request", "start"),
        (
            "/api/v1/recompute",
            {"start": "1500-01-01T00:00:00Z", "end": "2026-11-28T00:00:00Z"},
            422,
            "bad_time_range",
            "start",
        ),
        (
            "/api/v1/history",
            {**HISTORY, "start": "2026-01-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"},
            422,
            "bad_time_range",
            "end",
        ),
        (
            "/api/v1/history",
            {
                **HISTORY,
                "scope": "galaxy",
                "start": "2026-11-28T00:00:00Z",
                "end": "2026-11-29T00:00:00Z",
            },
            422,
            "unknown_scope",
            "scope",
        ),
        (
            "/api/v1/history",
            {
                **HISTORY,
                "scope_id": "ent-z",
                "start": "2026-11-28T00:00:00Z",
                "end": "2026-11-29T00:00:00Z",
            },
            404,
            "unknown_scope",
            "scope_id",
        ),
        (
            "/api/v1/history",
            {
                **HISTORY,
                "industry": "mining",
                "start": "2026-11-28T00:00:00Z",
                "end": "2026-11-29T00:00:00Z",
            },
            422,
            "invalid_request",
            "industry",
        ),
        (
            "/api/v1/history",
            {
                **HISTORY,
                "resolution": "week",
                "start": "2026-11-28T00:00:00Z",
                "end": "2026-11-29T00:00:00Z",
            },
            422,
            "invalid_request",
            "resolution",
        ),
        (
            "/api/v1/report",
            {"start": "2026-11-01T00:00:00Z", "end": "2026-11-28T00:00:00Z", "window": "1h"},
            422,
            "too_many_windows",
            "end",
        ),
        (
            "/api/v1/report",
            {"start": "2026-11-27T00:00:00Z", "end": "2026-11-28T00:00:00Z", "window": "5h"},
            422,
            "invalid_request",
            "window",
        ),
        ("/api/v1/kpi", {"scope": "galaxy"}, 422, "unknown_scope", "scope"),
        ("/api/v1/processes/p404", {}, 404, "unknown_process", "process_id"),
        (
            "/api/v1/export/rates.csv",
            {"start": "2026-11-28T00:00:00Z"},
            422,
            "invalid_request",
            "end",
        ),
    ],
)
async def test_bad_requests_name_the_culprit(
    make_app: Apps, path: str, params: dict[str, str], status: int, code: str, field: str
) -> None:
    async with client(make_app()) as api:
        response = await api.get(path, params=params)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code
    assert body["field"] == field
    assert isinstance(body["detail"], str) and body["detail"]


async def test_unknown_route_is_json(make_app: Apps) -> None:
    async with client(make_app()) as api:
        response = await api.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "Not Found"}


async def test_no_evaluation_yet_is_503(make_app: Apps) -> None:
    runtime = make_app.runtime()
    runtime.kpi.latest = None
    async with client(make_app(runtime)) as api:
        response = await api.get("/api/v1/kpi")
    assert response.status_code == 503
    assert response.json()["error"] == "not_ready"


async def test_storage_down_is_503_json(make_app: Apps) -> None:
    nowhere = InfluxSettings(url=f"http://127.0.0.1:{free_port()}", database="x", timeout=2)
    params = {**HISTORY, "start": "2026-11-28T00:00:00Z", "end": "2026-11-29T00:00:00Z"}
    async with client(make_app(make_app.runtime(nowhere))) as api:
        history = await api.get("/api/v1/history", params=params)
        export = await api.get("/api/v1/export/rates.csv", params=params)
    for response in (history, export):
        assert response.status_code == 503
        assert response.json()["error"] == "storage_unavailable"
        assert "query" not in response.json()["detail"]  # the query text stays in the log


async def test_unexpected_exception_is_a_500_without_traceback(
    make_app: Apps, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()

    @app.get("/api/v1/boom")
    async def boom() -> dict[str, Any]:
        raise RuntimeError("secret internals")

    with caplog.at_level(logging.ERROR, logger="collector.api.errors"):
        async with client(app) as api:
            response = await api.get("/api/v1/boom")
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "internal"
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert body["error_id"] in body["detail"]
    logged = [r for r in caplog.records if body["error_id"] in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback is in the server log
