"""The dashboard in Simplified Chinese and English, in a real browser against the running demo.

Debian's chromium, headless, driven over the DevTools protocol (``tests/e2e/cdp.py``): the
page is loaded with the browser's language (``--accept-lang``), switched with its buttons,
reloaded, and then read as a person sees it: every visible text node and every visible
``title`` / ``aria-label`` / ``placeholder`` / ``alt``. The catalogue the page uses
(``/i18n/zh.json``) is walked against it: in Chinese no English text of the catalogue is
left, and every text that is not data (ids, codes, numbers, times: marked ``translate="no"``)
is Chinese; in English nothing Chinese shows but the register's names that the register
gives only in Chinese, and the language switch's own "中文". The numbers (``data-value``)
are the same in both languages. The report button downloads the report as PDF.

Shares the session's demo run with ``test_demo_plant.py`` and ``test_dashboard.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from collector.i18n.catalogue import PLACEHOLDER
from tests.e2e.cdp import Chromium

pytestmark = pytest.mark.integration

CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
LETTER = re.compile(r"[^\W\d_]")
# Where an attribute's text is cut into the pieces it was put together from.
SEGMENTS = re.compile(r"\n| · |: |：|\s*\[|\]\s*|\s*\(|\)\s*|（|）")

RENDERED = "document.documentElement.getAttribute('data-rendered') === {lang!r} && document.querySelector('[data-testid=status]').getAttribute('data-value') === 'ok'"

# Everything a person can read on the page, with what the markup says about it.
READ_PAGE = """(() => {
  const shown = (node) => {
    const host = node.closest("option") ? node.closest("select") : node;
    return host.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true });
  };
  const where = (node) => {
    const parts = [];
    for (let n = node; n && n !== document.body && parts.length < 4; n = n.parentElement) {
      const id = n.getAttribute("data-testid");
      parts.push(n.tagName.toLowerCase() + (id ? "[" + id + "]" : n.getAttribute("class") ? "." + n.getAttribute("class").split(" ")[0] : ""));
    }
    return parts.reverse().join(" > ");
  };
  const about = (node) => ({
    data: Boolean(node.closest('[translate="no"]')),
    lang: (node.closest("[lang]") || document.documentElement).getAttribute("lang"),
    name: Boolean(node.closest(".name")),
    where: where(node),
  });
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.nodeValue.trim();
    const parent = n.parentElement;
    if (!text || !parent || parent.closest("script, style") || !shown(parent)) continue;
    texts.push({ text, ...about(parent) });
  }
  const attrs = [];
  for (const node of document.body.querySelectorAll("*")) {
    if (!shown(node)) continue;
    for (const attr of ["title", "aria-label", "placeholder", "alt"]) {
      const text = (node.getAttribute(attr) || "").trim();
      if (text) attrs.push({ attr, text, ...about(node) });
    }
  }
  return { texts, attrs, title: document.title, lang: document.documentElement.lang };
})()"""

# Every report form open, with its from/to dates showing: they are read too.
OPEN_FORMS = """(() => {
  for (const box of document.querySelectorAll("details.report")) box.open = true;
  for (const select of document.querySelectorAll('select[name="period"]')) {
    select.value = "dates";
    select.dispatchEvent(new Event("change"));
  }
  return document.querySelectorAll("details.report").length;
})()"""

VALUES = """Object.fromEntries([...document.querySelectorAll("[data-testid]")].map(
  (n) => [n.getAttribute("data-testid"), n.getAttribute("data-value")]))"""


@pytest.fixture(scope="module")
def api(demo_run: dict[str, Any]) -> str:
    url: str = demo_run["stack"].api_url
    return url


@pytest.fixture(scope="module")
def zh_catalogue(api: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{api}/i18n/zh.json", timeout=10).json()
    assert body["lang"] == "zh" and body["messages"]
    return body


@pytest.fixture
def browser_zh() -> Iterator[Chromium]:
    """A browser whose reader prefers Simplified Chinese, in the plants' time zone."""
    with Chromium("--accept-lang=zh-CN,zh;q=0.9,en;q=0.5") as browser:
        browser.call("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Shanghai"})
        yield browser


@pytest.fixture
def browser_en() -> Iterator[Chromium]:
    with Chromium("--accept-lang=en-US,en") as browser:
        yield browser


def _rendered(browser: Chromium, lang: str) -> None:
    browser.wait_for(RENDERED.format(lang=lang))


def _pattern(msgid: str) -> re.Pattern[str] | None:
    """A catalogue text as it would show untranslated (its placeholders filled by anything);
    None for a text with too few letters to tell."""
    literals = PLACEHOLDER.split(msgid)[::2]
    if sum(len(re.findall(r"[A-Za-z]", part)) for part in literals) < 2:
        return None
    body = ".+?".join(re.escape(part) for part in literals)
    return re.compile(rf"(?<![A-Za-z]){body}(?![A-Za-z])")


def _english_left(catalogue: dict[str, Any]) -> list[tuple[str, re.Pattern[str]]]:
    found = []
    for msgid, text in catalogue["messages"].items():
        pattern = _pattern(msgid)
        if pattern is not None and text != msgid:
            found.append((msgid, pattern))
    return found


def check_chinese_page(page: dict[str, Any], catalogue: dict[str, Any]) -> None:
    assert page["lang"] == "zh-CN"
    english = _english_left(catalogue)
    texts = [t for t in page["texts"] if t["lang"] == "zh-CN"]
    assert len(texts) > 100, "the page shows too little to judge"
    problems = []
    for t in texts:
        if t["data"]:
            continue  # ids, codes, numbers, times, register names: as they are
        if LETTER.search(t["text"]) and not HAN.search(t["text"]):
            problems.append(f"not Chinese: {t['text']!r} at {t['where']}")
        for msgid, pattern in english:
            if pattern.search(t["text"]):
                problems.append(f"English {msgid!r} in {t['text']!r} at {t['where']}")
    for a in page["attrs"]:
        if a["data"] or a["lang"] != "zh-CN":
            continue
        for segment in SEGMENTS.split(a["text"]):
            for msgid, pattern in english:
                if pattern.fullmatch(segment.strip()):
                    problems.append(
                        f"English {msgid!r} in {a['attr']}={a['text']!r} at {a['where']}"
                    )
    for msgid, pattern in english:
        if pattern.search(page["title"]):
            problems.append(f"English {msgid!r} in the document title {page['title']!r}")
    assert not problems, "\n".join(problems)
    # The official words.
    shown = "\n".join(t["text"] for t in texts) + page["title"]
    for word in ("关键工序数控化率", "关键工序", "数控化", "规模以上工业企业", "申报值", "实测值"):
        assert word in shown, word


def check_english_page(page: dict[str, Any], names_en: dict[str, Any]) -> None:
    assert page["lang"] == "en"
    # Names the register gives only in Chinese show in Chinese in English too.
    only_chinese = set()
    for ent in names_en["enterprises"]:
        entries = [ent]
        for plant in ent["plants"]:
            entries.append(plant)
            for line in plant["lines"]:
                entries.append(line)
                for process in line["processes"]:
                    entries.append(process)
                    only_chinese.add(process["equipment"])
        only_chinese.update(e["name"] for e in entries)
    only_chinese = {n for n in only_chinese if n and CJK.search(n)}
    problems = []
    for t in page["texts"]:
        if t["lang"] != "en":
            continue  # the switch's "中文", in its own language
        if CJK.search(t["text"]) and not (t["name"] and t["text"] in only_chinese):
            problems.append(f"Chinese {t['text']!r} at {t['where']}")
    for a in page["attrs"]:
        if a["lang"] != "en":
            continue
        text = a["text"]
        for name in only_chinese:
            text = text.replace(name, "")
        if CJK.search(text):
            problems.append(f"Chinese in {a['attr']}={a['text']!r} at {a['where']}")
    if CJK.search(page["title"]):
        problems.append(f"Chinese in the document title {page['title']!r}")
    assert not problems, "\n".join(problems)
    shown = "\n".join(t["text"] for t in page["texts"])
    assert "Key-process digitalization rate" in shown
    assert "Measured" in shown and "Declared" in shown


def read_page(browser: Chromium) -> dict[str, Any]:
    assert browser.evaluate(OPEN_FORMS) >= 1, "no report form"
    page: dict[str, Any] = browser.evaluate(READ_PAGE)
    return page


def test_browser_language_chooses_the_page_language(
    api: str, zh_catalogue: dict[str, Any], browser_zh: Chromium
) -> None:
    browser_zh.open(f"{api}/dashboard")
    _rendered(browser_zh, "zh")
    assert browser_zh.evaluate("navigator.languages[0]") == "zh-CN"
    assert browser_zh.evaluate("document.documentElement.lang") == "zh-CN"
    # The browser's language is not a choice: nothing is remembered.
    assert browser_zh.evaluate("localStorage.getItem('plantkpi.lang')") is None
    pressed = "document.querySelector('[data-testid=lang-{}]').getAttribute('aria-pressed')"
    assert browser_zh.evaluate(pressed.format("zh")) == "true"
    assert browser_zh.evaluate(pressed.format("en")) == "false"
    check_chinese_page(read_page(browser_zh), zh_catalogue)
    # Names from the register in Chinese, the ids beside them.
    names = httpx.get(f"{api}/api/v1/names", params={"lang": "zh"}, timeout=10).json()
    ent = names["enterprises"][0]
    process = ent["plants"][0]["lines"][0]["processes"][0]
    chip = browser_zh.evaluate(
        f"document.querySelector('[data-testid=process-{process['id']}]').textContent"
    )
    assert process["name"] in chip and process["id"] in chip
    panel = browser_zh.evaluate(
        f"document.querySelector('[data-testid=enterprise-{ent['id']}] h2').textContent"
    )
    assert ent["name"] in panel and ent["id"] in panel

    # ?lang= in the address wins over the browser's language (a wall screen's link).
    browser_zh.open(f"{api}/dashboard?lang=en")
    _rendered(browser_zh, "en")
    assert browser_zh.evaluate("document.documentElement.lang") == "en"


def test_switch_changes_the_language_in_place_and_is_remembered(
    api: str, zh_catalogue: dict[str, Any], browser_en: Chromium
) -> None:
    browser_en.open(f"{api}/dashboard")
    _rendered(browser_en, "en")
    names_en = httpx.get(f"{api}/api/v1/names", params={"lang": "en"}, timeout=10).json()
    check_english_page(read_page(browser_en), names_en)

    # The switch: the same evaluation drawn in Chinese, the page not reloaded. (A poll may
    # bring a new evaluation between the two readings: then read both again.)
    for _attempt in range(5):
        english = browser_en.evaluate(VALUES)
        browser_en.evaluate("window.__same_page = true")
        browser_en.click("[data-testid=lang-zh]")
        _rendered(browser_en, "zh")
        assert browser_en.evaluate("window.__same_page") is True, "the switch reloaded the page"
        chinese = browser_en.evaluate(VALUES)
        if chinese["window"] == english["window"]:
            break
        browser_en.click("[data-testid=lang-en]")
        _rendered(browser_en, "en")
    else:
        pytest.fail("every switch met a new evaluation")
    assert chinese == english
    assert sum(1 for k in chinese if k.startswith(("rate-", "numerator-", "process-"))) > 20
    assert browser_en.evaluate("localStorage.getItem('plantkpi.lang')") == "zh"
    check_chinese_page(read_page(browser_en), zh_catalogue)

    # Remembered: a reload comes back in Chinese although the browser prefers English.
    browser_en.reload()
    _rendered(browser_en, "zh")
    check_chinese_page(read_page(browser_en), zh_catalogue)

    # And back.
    browser_en.click("[data-testid=lang-en]")
    _rendered(browser_en, "en")
    browser_en.reload()
    _rendered(browser_en, "en")
    assert browser_en.evaluate("localStorage.getItem('plantkpi.lang')") == "en"
    check_english_page(read_page(browser_en), names_en)


def _local(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset() == timedelta(hours=8), text  # the reader's time zone
    return moment


def test_report_button_downloads_the_report(api: str, browser_zh: Chromium, tmp_path: Path) -> None:
    paths = httpx.get(f"{api}/openapi.json", timeout=10).json()["paths"]
    assert "/api/v1/report-doc" in paths
    enterprise = httpx.get(f"{api}/api/v1/enterprises", timeout=10).json()["enterprises"][0]
    eid = enterprise["enterprise_id"]
    browser_zh.allow_downloads(tmp_path)
    browser_zh.call("Network.enable")
    browser_zh.open(f"{api}/dashboard")
    _rendered(browser_zh, "zh")
    # The page's token goes with the request (the demo sets none: any is let through).
    browser_zh.evaluate("sessionStorage.setItem('plantkpi.token', 'e2e-token')")

    browser_zh.click(f"[data-testid=report-{eid}] summary")
    browser_zh.click(f"[data-testid=report-download-{eid}]")  # this month, PDF: the defaults
    request = _report_request(browser_zh)
    query = {k: v[0] for k, v in parse_qs(urlsplit(request["url"]).query).items()}
    assert query["enterprise"] == eid and query["format"] == "pdf" and query["lang"] == "zh"
    start, end = _local(query["start"]), _local(query["end"])
    assert (start.day, start.hour, start.minute) == (1, 0, 0)
    assert (end.day, end.hour, end.minute) == (1, 0, 0)
    assert 28 <= (end - start).days <= 31
    assert request["headers"]["Authorization"] == "Bearer e2e-token"

    saved = _downloaded(browser_zh, tmp_path)
    assert saved.read_bytes().startswith(b"%PDF-")
    assert re.fullmatch(rf"plantkpi-report_{eid}_\d{{8}}\+0800_\d{{8}}\+0800_zh\.pdf", saved.name)
    message = f"document.querySelector('[data-testid=report-message-{eid}]')"
    browser_zh.wait_for(f"{message}.getAttribute('data-value') === 'ok'")
    assert browser_zh.evaluate(f"{message}.getAttribute('data-file')") == saved.name
    assert saved.name in browser_zh.evaluate(f"{message}.textContent")

    # A period the API refuses: the page shows the API's own message, in Chinese.
    browser_zh.evaluate(
        f"""(() => {{
        const form = document.querySelector('[data-testid=report-{eid}] form');
        form.querySelector('select[name=period]').value = 'dates';
        form.querySelector('select[name=period]').dispatchEvent(new Event('change'));
        form.querySelector('input[name=from]').value = '2001-01-01';
        form.querySelector('input[name=to]').value = '2025-12-31';
        form.querySelector('input[value=xlsx]').checked = true;
    }})()"""
    )
    browser_zh.click(f"[data-testid=report-download-{eid}]")
    request = _report_request(browser_zh)
    assert "format=xlsx" in request["url"]
    browser_zh.wait_for(f"{message}.getAttribute('data-value') === 'error'")
    answer = httpx.get(request["url"], headers={"Accept-Language": "zh-CN"}, timeout=30)
    assert answer.status_code == 422
    assert browser_zh.evaluate(f"{message}.textContent") == answer.json()["message"]
    assert HAN.search(answer.json()["message"])


def _report_request(browser: Chromium) -> dict[str, Any]:
    while True:
        event = browser.wait_event("Network.requestWillBeSent")
        request: dict[str, Any] = event["params"]["request"]
        if "/api/v1/report-doc?" in request["url"]:
            return request


def _downloaded(browser: Chromium, folder: Path) -> Path:
    begun = browser.wait_event("Browser.downloadWillBegin")["params"]
    while True:
        progress = browser.wait_event("Browser.downloadProgress")["params"]
        if progress["guid"] != begun["guid"]:
            continue
        assert progress["state"] != "canceled", json.dumps(progress)
        if progress["state"] == "completed":
            break
    saved: Path = folder / str(begun["suggestedFilename"])
    assert saved.is_file(), sorted(p.name for p in folder.iterdir())
    return saved
