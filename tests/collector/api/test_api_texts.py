"""Texts for people: the register's names and what the codes mean, per language."""

from __future__ import annotations

import pytest

from collector.kpi.evaluator import Reason, Status
from tests.collector.api.conftest import Apps, client


async def test_names_in_each_language_with_fallbacks(make_app: Apps) -> None:
    async with client(make_app()) as api:
        zh = (await api.get("/api/v1/names", params={"lang": "zh"})).json()
        en = (await api.get("/api/v1/names", params={"lang": "en"})).json()
        browser = await api.get("/api/v1/names", headers={"Accept-Language": "zh-CN,en;q=0.5"})
    assert zh["lang"] == "zh" and en["lang"] == "en"
    assert browser.json() == zh
    (ent_zh,), (ent_en,) = zh["enterprises"], en["enterprises"]
    assert (ent_zh["id"], ent_zh["name"], ent_en["name"]) == ("ent-a", "甲企业", "Enterprise A")
    assert ent_zh["names"] == {"zh": "甲企业"} and ent_zh["register_version"] == "api-test-1"
    (plant_zh,), (plant_en,) = ent_zh["plants"], ent_en["plants"]
    # No English name and no plain name: the Chinese one rather than nothing.
    assert (plant_zh["name"], plant_en["name"]) == ("甲厂", "甲厂")
    line1_zh, line2_zh = plant_zh["lines"]
    line1_en, line2_en = plant_en["lines"]
    assert (line1_zh["name"], line1_en["name"]) == ("一线", "Line one")
    assert line2_zh["name"] == line2_en["name"] == "l2"  # no name at all: its id
    p1_zh, p2_zh = line1_zh["processes"]
    p1_en = line1_en["processes"][0]
    assert (p1_zh["id"], p1_zh["name"], p1_en["name"]) == ("p1", "车削", "Turning")
    assert (p1_zh["equipment"], p1_en["equipment"]) == ("数控车床", "CNC lathe")
    assert p2_zh["name"] == "p2" and p2_zh["equipment"] == ""


async def test_terms_explain_every_code(make_app: Apps) -> None:
    async with client(make_app()) as api:
        zh = (await api.get("/api/v1/terms", params={"lang": "zh-CN"})).json()
        en = (await api.get("/api/v1/terms")).json()
    assert set(zh["reasons"]) == set(en["reasons"]) == set(Reason)
    assert set(zh["statuses"]) == set(Status)
    assert zh["reasons"]["OVERRIDDEN"]["label"] == "参数被人工强制"
    assert "检查本地覆盖" in zh["reasons"]["OVERRIDDEN"]["fix"]
    assert en["reasons"]["OVERRIDDEN"]["label"] == "Parameter forced by hand"
    assert zh["statuses"]["DIGITALIZED"] == "已数控化"
    assert zh["scopes"]["region_official"].endswith("规模以上工业企业）")


@pytest.mark.parametrize("path", ["/api/v1/names", "/api/v1/terms"])
async def test_unsupported_language_is_named(make_app: Apps, path: str) -> None:
    async with client(make_app()) as api:
        response = await api.get(path, params={"lang": "fr"})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_request" and body["field"] == "lang"
    assert "'fr'" in body["detail"] and "en, zh" in body["detail"]


async def test_page_catalogue_is_open_and_per_language(make_app: Apps) -> None:
    async with client(make_app(), token=None) as api:
        zh = await api.get("/i18n/zh.json")
        missing = await api.get("/i18n/fr.json")
    assert zh.status_code == 200
    body = zh.json()
    assert body["messages"]["Digitalized"] == "已数控化"
    assert body["reasons"]["MANUAL_MODE"]["label"] == "手动模式运行"
    assert missing.status_code == 404 and missing.json()["field"] == "lang"
