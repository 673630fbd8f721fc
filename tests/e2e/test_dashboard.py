"""The dashboard in a real browser (Debian's chromium, headless) against the running demo.

The page is loaded with ``--dump-dom`` after its scripts ran; every number it shows carries
a ``data-testid`` and its raw value, and must equal what the API answered for the same KPI
evaluation. The live loop evaluates every 2 s here, so a poller records every evaluation
the API serves while the browser runs, and the page is compared with the one it drew
(the page says which, by its window end).

``PLANTKPI_SCREENSHOT=docs/dashboard.png`` also writes a screenshot of the page.
"""

from __future__ import annotations

import os
import re
import threading
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.browser import Shown, by_testid, dump_dom, screenshot

ROOT = Path(__file__).parents[2]
STATIC = ROOT / "collector" / "api" / "static"


class EvaluationRecorder:
    """Polls the API in a thread; keeps each distinct evaluation's answers by window end."""

    def __init__(self, api: str, interval: float = 0.25) -> None:
        self.api = api
        self.interval = interval
        self.seen: dict[str, dict[float, dict[str, Any]]] = {
            "kpi": {},
            "processes": {},
            "enterprises": {},
        }
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="api-recorder", daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.api, timeout=5) as client:
            while not self._stop.is_set():
                for path, answers in self.seen.items():
                    response = client.get(f"/api/v1/{path}")
                    if response.status_code == 200:
                        body = response.json()
                        # Keyed as the page shows it: a JS number (a double).
                        answers[float(body["window"]["end_ns"])] = body
                self._stop.wait(self.interval)

    def __enter__(self) -> EvaluationRecorder:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def _value(shown: dict[str, Shown], testid: str) -> str:
    assert testid in shown, f"the page shows no {testid!r}"
    value = shown[testid].value
    assert value is not None, f"{testid!r} has no data-value"
    return value


def _rate(shown: dict[str, Shown], testid: str) -> float | None:
    value = _value(shown, testid)
    return None if value == "null" else float(value)


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f} %"


@pytest.mark.integration
def test_page_and_assets_are_served_without_a_token(demo_run: dict[str, Any]) -> None:
    api = demo_run["stack"].api_url
    for path in ("/", "/dashboard"):
        page = httpx.get(api + path, timeout=10)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert 'src="static/dashboard.js"' in page.text
    script = httpx.get(api + "/static/dashboard.js", timeout=10)
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert httpx.get(api + "/static/dashboard.css", timeout=10).status_code == 200
    assert httpx.get(api + "/static/nothing.js", timeout=10).status_code == 404
    # The page is not part of the API's contract.
    paths = httpx.get(api + "/openapi.json", timeout=10).json()["paths"]
    assert "/" not in paths and "/dashboard" not in paths


@pytest.mark.integration
def test_dashboard_shows_the_numbers_the_api_gives(demo_run: dict[str, Any]) -> None:
    api = demo_run["stack"].api_url
    with EvaluationRecorder(api) as recorder:
        html = dump_dom(f"{api}/dashboard")
    shown = by_testid(html)
    assert _value(shown, "status") == "ok", shown.get("status")

    end = float(_value(shown, "window"))
    assert float(_value(shown, "processes-window")) == end, "page mixes two evaluations"
    assert end in recorder.seen["kpi"], "the page shows an evaluation the API never served"
    kpi = recorder.seen["kpi"][end]
    processes = recorder.seen["processes"][end]["processes"]
    enterprises = recorder.seen["enterprises"][end]["enterprises"]
    all_rates = [r for r in kpi["rates"] if r["industry"] == "all"]

    # Enterprise: measured (with its counts) beside declared.
    assert enterprises
    for ent in enterprises:
        eid = ent["enterprise_id"]
        measured = next(r for r in all_rates if r["scope"] == "enterprise" and r["scope_id"] == eid)
        assert _rate(shown, f"rate-enterprise-{eid}") == measured["rate"]
        assert shown[f"rate-enterprise-{eid}"].text == _pct(measured["rate"])
        assert int(_value(shown, f"numerator-enterprise-{eid}")) == measured["numerator"]
        assert int(_value(shown, f"denominator-enterprise-{eid}")) == measured["denominator"]
        assert _rate(shown, f"declared-enterprise-{eid}") == ent["declared_rate"]
        assert ent["declared_rate"] is not None  # the demo register declares one

    # Every plant and line of the register, each with the API's rate and counts.
    plants = {r["scope_id"] for r in all_rates if r["scope"] == "plant"}
    assert plants == {p.id for p in demo_run["stack"].register.model.plants}
    for plant in plants:
        rate = next(r for r in all_rates if r["scope"] == "plant" and r["scope_id"] == plant)
        assert _rate(shown, f"rate-plant-{plant}") == rate["rate"], plant
        assert int(_value(shown, f"denominator-plant-{plant}")) == rate["denominator"]
    lines = [r for r in all_rates if r["scope"] == "line"]
    assert lines
    for line in lines:
        key = f"{line['plant_id']}-{line['scope_id']}"
        assert _rate(shown, f"rate-line-{key}") == line["rate"], key
        assert int(_value(shown, f"numerator-line-{key}")) == line["numerator"], key

    # Every key process with its status; the ones that do not count with their reasons.
    shown_processes = {k.removeprefix("process-") for k in shown if k.startswith("process-")}
    assert shown_processes == {p["process_id"] for p in processes}
    failing = [p for p in processes if p["status"] == "NOT_DIGITALIZED"]
    assert failing, "the demo has processes that do not count"
    for p in processes:
        pid = p["process_id"]
        assert _value(shown, f"process-{pid}") == p["status"], pid
        if p["reasons"]:
            assert _value(shown, f"reasons-{pid}").split(",") == p["reasons"], pid
        else:
            assert f"reasons-{pid}" not in shown, pid

    # The Pareto: every enterprise's reason counts, summed.
    pareto: dict[str, int] = {}
    for r in all_rates:
        if r["scope"] == "enterprise":
            for code, count in r["reasons"].items():
                pareto[code] = pareto.get(code, 0) + count
    shown_pareto = {
        k.removeprefix("pareto-"): int(v.value or "")
        for k, v in shown.items()
        if k.startswith("pareto-")
    }
    assert shown_pareto == pareto

    # The trend chart drew the stored windows; edge health lists both edges online.
    assert int(_value(shown, "trend")) > 0
    assert re.search(r"<polyline[^>]+points=", html)
    edges = httpx.get(f"{api}/api/v1/edges", timeout=10).json()["edges"]
    assert len(edges) == len(plants)
    for key, edge in edges.items():
        assert _value(shown, f"edge-online-{key}") == str(edge["online"]).lower()
        assert edge["online"]
        depth = edge["health"].get("buffer", {}).get("depth")
        assert _value(shown, f"edge-buffer-{key}") == ("null" if depth is None else str(depth))
        # The demo's offline and stalled machines: signals their edge names as not delivered.
        assert int(_value(shown, f"edge-problems-{key}")) >= 1

    target = os.environ.get("PLANTKPI_SCREENSHOT")
    if target:
        screenshot(f"{api}/dashboard", Path(target))


def test_static_files_ship_with_the_package_and_load_nothing_external() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["collector.api"]
    for name in ("index.html", "dashboard.js", "dashboard.css"):
        assert (STATIC / name).is_file()
        assert any(Path("static", name).match(p) for p in patterns), name
        text = (STATIC / name).read_text(encoding="utf-8")
        # The network is closed in plants: no CDN, no web font, no remote script.
        remote = set(re.findall(r"https?://[^\s\"'`)]+", text)) - {"http://www.w3.org/2000/svg"}
        assert not remote, f"{name} loads {remote}"
