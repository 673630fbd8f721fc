"""The catalogue is complete and in step with the code: every text a person reads has its
Chinese translation (CI fails on a new English text left untranslated)."""

from __future__ import annotations

import pytest

from collector.i18n import LANGS, catalogue_of, display_name, negotiate, parse_lang, translator
from collector.i18n.catalogue import LOCALES, PLACEHOLDER, TEMPLATE, po_path, read_catalog
from collector.i18n.extract import html_texts, template
from collector.i18n.terms import REASONS, SCOPES, STATUSES, reason_fix, reason_label
from collector.kpi.evaluator import Reason, Status
from common.languages import Names

FIX = "run `python -m collector.i18n.extract`, then translate the new msgstr entries"


def _ids(catalog: object) -> set[str]:
    return {str(m.id) for m in catalog if m.id}  # type: ignore[attr-defined]


def test_template_is_in_step_with_the_code() -> None:
    in_code = _ids(template())
    on_disk = _ids(read_catalog(TEMPLATE))
    assert in_code - on_disk == set(), f"texts missing from {TEMPLATE.name}: {FIX}"
    assert on_disk - in_code == set(), f"texts no longer in the code: {FIX}"


@pytest.mark.parametrize("lang", sorted(LOCALES))
def test_every_text_is_translated(lang: str) -> None:
    path = po_path(lang)  # type: ignore[arg-type]
    catalog = read_catalog(path, LOCALES[lang])  # type: ignore[index]
    in_code = _ids(template())
    assert _ids(catalog) == in_code, f"{path}: {FIX}"
    for message in catalog:
        if not message.id:
            continue
        where = f"{path}: msgid {message.id!r}"
        assert message.string, f"{where} has no translation"
        assert not message.fuzzy, f"{where} is marked fuzzy: check and unmark it"
        english = set(PLACEHOLDER.findall(str(message.id)))
        translated = set(PLACEHOLDER.findall(str(message.string)))
        assert english == translated, f"{where}: placeholders {english} vs {translated}"


def test_chinese_texts_are_chinese() -> None:
    """A copied English text is not a translation (codes and units may stay Latin)."""
    texts = catalogue_of("zh")
    assert texts
    for english, chinese in texts.items():
        assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese), f"{english!r} → {chinese!r}"


def test_official_vocabulary() -> None:
    _ = translator("zh")
    assert reason_label(_, Reason.OVERRIDDEN) == "参数被人工强制"
    assert "检查本地覆盖" in reason_fix(_, Reason.OVERRIDDEN)
    assert "规模以上工业企业" in _(SCOPES["region_official"])


def test_every_code_has_its_texts() -> None:
    assert set(REASONS) == set(Reason)
    assert set(STATUSES) == set(Status)
    _ = translator("en")
    assert reason_label(_, "SOMETHING_NEW") == "SOMETHING_NEW"  # an unknown code as it is


def test_placeholders_are_filled_in_both_languages() -> None:
    text = "wrote {rows} rows to {path}"
    assert translator("en")(text, rows=3, path="a.csv") == "wrote 3 rows to a.csv"
    chinese = translator("zh")(text, rows=3, path="a.csv")
    assert "3" in chinese and "a.csv" in chinese and "{" not in chinese
    for lang in LANGS:  # a text missing from the catalogue shows as written, filled
        assert translator(lang)("{n} x", n=2) == "2 x"


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("en", "en"),
        ("zh", "zh"),
        ("zh-CN", "zh"),
        ("zh_CN.UTF-8", "zh"),
        ("en-GB", "en"),
        ("zh-Hans", "zh"),
        (" ZH ", "zh"),
    ],
)
def test_parse_lang(text: str, lang: str) -> None:
    assert parse_lang(text) == lang


@pytest.mark.parametrize("text", ["fr", "zh-TW", "", "english"])
def test_parse_lang_refuses_and_names_the_choices(text: str) -> None:
    with pytest.raises(ValueError, match="en, zh"):
        parse_lang(text)


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        (None, "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("fr-FR,fr;q=0.9,zh;q=0.5", "zh"),
        ("de", "en"),
        ("zh;q=0, en;q=0.1", "en"),
        ("en;q=0.5, zh-Hans;q=0.7", "zh"),
        ("zh;q=bogus, en", "en"),
    ],
)
def test_negotiate(header: str | None, lang: str) -> None:
    assert negotiate(header) == lang


def test_display_name_falls_back() -> None:
    names: Names = {"zh": "磨削", "en": "Grinding"}
    assert display_name("zh", names, "Grinding (plant word)") == "磨削"
    assert display_name("en", {"zh": "磨削"}, "") == "磨削"
    assert display_name("en", {"zh": "磨削"}, "Grinding") == "Grinding"
    assert display_name("zh", {}, "", "a1-grinding") == "a1-grinding"


def test_marked_html_texts(tmp_path: object) -> None:
    from pathlib import Path

    page = Path(str(tmp_path)) / "p.html"
    page.write_text(
        "<h1 data-i18n>Key  processes\n</h1><b>data</b>"
        '<input placeholder="Token" data-i18n-placeholder><p data-i18n>A <i>b</i> c</p>'
    )
    assert [t for t, _ in html_texts(page)] == ["Key processes", "Token", "A b c"]


def test_docs_list_every_code_as_the_catalogue_says() -> None:
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[3] / "docs" / "kpi.md").read_text()
    en, zh = translator("en"), translator("zh")
    for code, text in REASONS.items():
        row = (
            f"| `{code}` | {en(text.label)} | {zh(text.label)} | {en(text.fix)} | {zh(text.fix)} |"
        )
        assert row in docs, f"docs/kpi.md: the row of {code} is not {row!r}"
    for code, label in STATUSES.items():
        assert f"| `{code}` | {en(label)} | {zh(label)} |" in docs, code
