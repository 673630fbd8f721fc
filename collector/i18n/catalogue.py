"""The message catalogues, read once from the gettext ``.po`` files with Babel."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from collector.i18n.lang import Lang

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "plantkpi"
TEMPLATE = LOCALE_DIR / f"{DOMAIN}.pot"
LOCALES: Mapping[Lang, str] = MappingProxyType({"zh": "zh_CN"})
"""The catalogue of each language that is not the source language (English)."""

PLACEHOLDER = re.compile(r"\{(\w+)\}")


def po_path(lang: Lang) -> Path:
    return LOCALE_DIR / LOCALES[lang] / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as file:
        return read_po(file, locale=locale, domain=DOMAIN)


@cache
def catalogue_of(lang: Lang) -> Mapping[str, str]:
    """English text → its translation; empty for English. Fuzzy and untranslated entries
    are left out (the text then shows in English, and the completeness test fails)."""
    if lang not in LOCALES:
        return MappingProxyType({})
    catalog = read_catalog(po_path(lang), LOCALES[lang])
    return MappingProxyType(
        {
            str(m.id): str(m.string)
            for m in catalog
            if m.id and isinstance(m.id, str) and m.string and not m.fuzzy
        }
    )


class Translator:
    """``_("Plant {id}", id="plant-a")``: the text in one language, placeholders filled."""

    def __init__(self, lang: Lang) -> None:
        self.lang: Lang = lang
        self._texts = catalogue_of(lang)

    def __call__(self, message: str, /, **values: object) -> str:
        text = self._texts.get(message, message)
        return text.format(**values) if values else text


@cache
def translator(lang: Lang) -> Translator:
    return Translator(lang)


def N_(message: str) -> str:
    """Marks a text for the catalogue where it is defined; translated where it is shown."""
    return message
