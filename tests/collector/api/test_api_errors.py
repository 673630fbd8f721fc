"""Every failure is ``{"error": code, "detail": ...}`` with the right status, no traceback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import pytest

from collector.api.errors import error_body
from collector.storage.settings import InfluxSettings
from harness.servers import free_port
from tests.collector.api.conftest import Apps, Runtime, client
from tests.edge.source_kit import eventually

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
    assert response.json() == {
        "error": "not_found",
        "detail": "Not Found",
        "message": "There is no such page or address.",
    }


@pytest.mark.parametrize(
    ("query", "headers", "message"),
    [
        ("?lang=zh", {}, "没有这个页面或地址。"),
        ("", {"Accept-Language": "zh-CN,zh;q=0.9"}, "没有这个页面或地址。"),
        ("?lang=zh", {"Accept-Language": "en"}, "没有这个页面或地址。"),
        ("?lang=fr", {"Accept-Language": "zh-CN"}, "没有这个页面或地址。"),
        ("?lang=en", {"Accept-Language": "zh-CN"}, "There is no such page or address."),
    ],
)
async def test_error_message_in_the_readers_language(
    make_app: Apps, query: str, headers: dict[str, str], message: str
) -> None:
    """``message`` follows ``?lang=`` then ``Accept-Language``; code and detail do not."""
    async with client(make_app()) as api:
        response = await api.get(f"/api/v1/nothing-here{query}", headers=headers)
    assert response.json() == {"error": "not_found", "detail": "Not Found", "message": message}


def test_every_error_code_has_a_message() -> None:
    """The codes of the module's table each have their sentence for people."""
    from collector.api import errors

    table = errors.__doc__ or ""
    codes = {line.split("``")[1] for line in table.splitlines() if line.startswith("``")}
    assert codes and codes <= set(errors.MESSAGES), codes - set(errors.MESSAGES)


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
        report = await api.get(
            "/api/v1/report-doc",
            params={"enterprise": "ent-a", "start": params["start"], "end": params["end"]},
        )
        report_zh = await api.get(
            "/api/v1/report-doc",
            params={"enterprise": "ent-a", "start": params["start"], "end": params["end"]},
            headers={"Accept-Language": "zh-CN"},
        )
    for response in (history, export, report):
        assert response.status_code == 503
        assert response.json()["error"] == "storage_unavailable"
        assert "query" not in response.json()["detail"]  # the query text stays in the log
    assert report_zh.status_code == 503 and "无法连接数据库" in report_zh.json()["message"]


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


async def _failed_evaluation(runtime: Runtime) -> str:
    """Run the KPI loop until its first evaluation fails; the error it keeps."""
    task = asyncio.create_task(runtime.kpi.run())
    try:
        await eventually(lambda: bool(runtime.kpi.last_error), what="a failed KPI evaluation")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return runtime.kpi.last_error


@pytest.mark.parametrize(
    ("storage", "reason"),
    [("down", "influxdb unreachable"), ("no_database", "query failed: QueryError")],
)
async def test_ready_names_the_failure_without_url_or_query(
    make_app: Apps, caplog: pytest.LogCaptureFixture, storage: str, reason: str
) -> None:
    # /ready is open (no token): the InfluxDB URL and the InfluxQL text stay in the log.
    database = "kpi_store_of_this_test"
    if storage == "down":
        influx = InfluxSettings(url=f"http://127.0.0.1:{free_port()}", database=database)
    else:
        influx = make_app.plant.influx.model_copy(update={"database": database})
    runtime = make_app.runtime(influx)
    runtime.kpi.latest = None
    with caplog.at_level(logging.ERROR, logger="collector.kpi.service"):
        kept = await _failed_evaluation(runtime)
    assert influx.url in kept and "SELECT" in kept  # what the log has, and /ready must not
    assert any(influx.url in r.getMessage() for r in caplog.records)
    async with client(make_app(runtime, tokens=["t0ken-for-the-api-routes"])) as anonymous:
        response = await anonymous.get("/ready")
    assert response.status_code == 503
    assert response.json()["kpi_error"] == reason
    host_port = influx.url.removeprefix("http://")
    for secret in (host_port, "SELECT", "query:", influx.database):
        assert secret not in response.text


HUGE = "x" * 60_000
"""A 60 000-character parameter (httpx refuses to build a longer query string)."""
RANGE = {"start": "2026-11-28T00:00:00Z", "end": "2026-11-29T00:00:00Z"}


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("/api/v1/report", {**RANGE, "window": HUGE}, 422, "window"),
        ("/api/v1/history", {**RANGE, "scope": HUGE, "scope_id": "ent-a"}, 422, "scope"),
        ("/api/v1/history", {**HISTORY, **RANGE, "industry": HUGE}, 422, "industry"),
        ("/api/v1/kpi", {"scope": HUGE}, 422, "scope"),
        ("/api/v1/kpi", {"industry": HUGE}, 422, "industry"),
        (f"/api/v1/scopes/plant/{HUGE}", {}, 404, "scope_id"),
        (f"/api/v1/scopes/{HUGE}/pl", {}, 404, "scope"),
        (f"/api/v1/processes/{HUGE}", {}, 404, "process_id"),
    ],
)
async def test_an_error_quotes_a_huge_value_cut_and_says_how_long_it_was(
    make_app: Apps, path: str, params: dict[str, str], status: int, field: str
) -> None:
    async with client(make_app()) as api:
        response = await api.get(path, params=params)
    assert response.status_code == status, response.text[:300]
    body = response.json()
    assert body["field"] == field
    assert len(response.text) < 1500
    assert f"'{'x' * 200}'… (60000 characters)" in body["detail"]
    assert "x" * 201 not in response.text


def test_every_text_of_an_error_body_is_bounded() -> None:
    # The last guard: a message that quoted its input whole (a validator's ValueError).
    body = error_body(
        "invalid_request",
        "y" * 5000,
        field="f",
        problems=[{"field": "f", "message": "z" * 5000}],
    )
    assert body["detail"] == "y" * 1000 + "… (5000 characters)"
    assert body["problems"][0]["message"] == "z" * 1000 + "… (5000 characters)"
    assert body["field"] == "f"
