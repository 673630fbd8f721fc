"""Read-only bearer tokens: /api needs one when configured; probes and metrics stay open."""

from __future__ import annotations

import hmac
from typing import Any

import pytest

from tests.collector.api.conftest import Apps, client

pytestmark = pytest.mark.integration

TOKENS = ["first-token-0123456789", "second-token-abcdef"]


@pytest.mark.parametrize("path", ["/api/v1/kpi", "/api/v1/history", "/api/v1/export/rates.csv"])
async def test_api_routes_need_a_valid_token(make_app: Apps, path: str) -> None:
    app = make_app(tokens=TOKENS)
    async with client(app) as anonymous, client(app, "not-a-token") as wrong:
        missing = await anonymous.get(path)
        bad = await wrong.get(path)
        basic = await anonymous.get(path, headers={"Authorization": "Basic dTpw"})
    for response in (missing, bad, basic):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"] == "unauthorized"
        assert "Traceback" not in response.text
    assert "Bearer <token>" in missing.json()["detail"]
    assert bad.json()["detail"] == "the bearer token is not valid"


async def test_either_configured_token_reads(make_app: Apps) -> None:
    app = make_app(tokens=TOKENS)
    for token in TOKENS:
        async with client(app, token) as api:
            response = await api.get("/api/v1/kpi")
        assert response.status_code == 200
        assert response.json()["rates"]


async def test_probes_and_metrics_stay_open(make_app: Apps) -> None:
    async with client(make_app(tokens=TOKENS)) as anonymous:
        assert (await anonymous.get("/health")).status_code == 200
        # Not ready (no broker in these tests), but not refused either.
        assert (await anonymous.get("/ready")).status_code == 503
        assert (await anonymous.get("/metrics")).status_code == 200


async def test_no_tokens_configured_means_open(make_app: Apps) -> None:
    async with client(make_app()) as anonymous:
        assert (await anonymous.get("/api/v1/kpi")).status_code == 200


async def test_tokens_are_compared_in_constant_time_all_of_them(
    make_app: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, Any]] = []
    compare = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # what collector.api.auth calls
    app = make_app(tokens=TOKENS)
    for presented, status in ((TOKENS[0], 200), ("nope", 401), (TOKENS[1], 200)):
        calls.clear()
        async with client(app, presented) as api:
            assert (await api.get("/api/v1/stats")).status_code == status
        # Every token is compared, whichever matched (no early exit to time).
        assert sorted(b for _, b in calls) == sorted(t.encode() for t in TOKENS)
        assert {a for a, _ in calls} == {presented.encode()}


def test_tokens_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from collector.settings import CollectorSettings

    monkeypatch.setenv("COLLECTOR_REGISTERS", '["x.yaml"]')
    monkeypatch.setenv("COLLECTOR_API__TOKENS", '["a-token", "b-token"]')
    settings = CollectorSettings(_env_file=None)
    assert [t.get_secret_value() for t in settings.api.tokens] == ["a-token", "b-token"]
    assert "a-token" not in repr(settings.api)


async def test_cors_is_off_and_the_api_is_read_only(make_app: Apps) -> None:
    """No browser on another origin may read the API; nothing can be written through it."""
    app = make_app(tokens=TOKENS)
    origin = {"Origin": "https://evil.example"}
    async with client(app, TOKENS[0]) as api:
        read = await api.get("/api/v1/kpi", headers=origin)
        preflight = await api.options(
            "/api/v1/kpi", headers={**origin, "Access-Control-Request-Method": "GET"}
        )
        writes = [
            await api.request(method, "/api/v1/kpi")
            for method in ("POST", "PUT", "PATCH", "DELETE")
        ]
    assert read.status_code == 200
    assert "access-control-allow-origin" not in read.headers
    assert "access-control-allow-origin" not in preflight.headers
    assert preflight.status_code == 405
    assert [w.status_code for w in writes] == [405] * 4
