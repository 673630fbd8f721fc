"""Bring the template (``plantkpi.pot``) and every language's catalogue up to date with the
texts in the code: ``python -m collector.i18n.extract``.

Texts are found by Babel's extractors: ``_()`` and ``N_()`` calls in ``collector/`` and
``onboarding/`` (Python), ``_()`` calls in the dashboard's JavaScript; and the dashboard's
HTML elements and attributes marked ``data-i18n`` / ``data-i18n-<attribute>``. New texts
enter each catalogue untranslated, texts no longer in the code are dropped; then translate
the empty ``msgstr`` entries (tests/collector/i18n fails until every one is).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import write_po

from collector.i18n.catalogue import DOMAIN, LOCALES, TEMPLATE, po_path, read_catalog

ROOT = Path(__file__).resolve().parents[2]
PYTHON_DIRS = ("collector", "onboarding")
STATIC = ROOT / "collector" / "api" / "static"
KEYWORDS = {"_": None, "N_": None}


_VOID = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    }
)


class _Marked(HTMLParser):
    """Texts of elements with ``data-i18n`` (their whole text, child elements included) and
    attributes named by ``data-i18n-<name>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, int]] = []
        self._depth = 0
        self._marked_depth: int | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        line = self.getpos()[0]
        for name, value in values.items():
            if name.startswith("data-i18n-") and value is None:
                attribute = values.get(name.removeprefix("data-i18n-"))
                if attribute:
                    self.found.append((attribute, line))
        if tag in _VOID:
            return
        self._depth += 1
        if "data-i18n" in values and self._marked_depth is None:
            self._marked_depth = self._depth
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._marked_depth is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        if self._marked_depth == self._depth:
            self._marked_depth = None
            text = " ".join("".join(self._text).split())
            if text:
                self.found.append((text, self.getpos()[0]))
        self._depth -= 1


def html_texts(path: Path) -> list[tuple[str, int]]:
    parser = _Marked()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.found


def _extracted() -> Iterator[tuple[str, str, int]]:
    """(text, file, line) of every marked text."""
    for folder in PYTHON_DIRS:
        for filename, line, message, _comments, _context in extract_from_dir(
            ROOT / folder, method_map=[("**.py", "python")], keywords=KEYWORDS
        ):
            if isinstance(message, str):
                yield message, f"{folder}/{filename}", line
    for filename, line, message, _comments, _context in extract_from_dir(
        STATIC, method_map=[("**.js", "javascript")], keywords=KEYWORDS
    ):
        if isinstance(message, str):
            yield message, f"collector/api/static/{filename}", line
    for page in sorted(STATIC.glob("*.html")):
        for text, line in html_texts(page):
            yield text, f"collector/api/static/{page.name}", line


_STAMP = datetime(2026, 12, 7, tzinfo=UTC)
"""A fixed date in the headers: running the extraction again changes nothing."""
_HEADER = "# plantkpi's texts{lang}.\n# Edit msgstr only; msgid is the English text in the code."


def _catalog(locale: str | None = None) -> Catalog:
    catalog = Catalog(
        locale=locale,
        domain=DOMAIN,
        project="plantkpi",
        version="1",
        copyright_holder="the plantkpi authors",
        msgid_bugs_address="",
        creation_date=_STAMP,
        revision_date=_STAMP,
        last_translator="plantkpi",
        language_team="plantkpi",
        charset="utf-8",
        fuzzy=False,
        header_comment=_HEADER.format(lang=f" in {locale}" if locale else ""),
    )
    return catalog


def template() -> Catalog:
    catalog = _catalog()
    for message, where, line in _extracted():
        catalog.add(message, locations=[(where, line)])
    return catalog


def _write(catalog: Catalog, path: Path, **options: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        write_po(file, catalog, width=100, sort_output=True, include_lineno=False, **options)


def _fill(catalog: Catalog, translations: dict[str, str]) -> None:
    for message_id, text in translations.items():
        message = catalog.get(message_id)
        if message is None:
            raise SystemExit(
                f"--fill: {message_id!r} is not a text in the code (run without --fill)"
            )
        message.string = text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--fill",
        type=Path,
        metavar="JSON",
        help='also set translations from a JSON file {"lang": {"English text": "translation"}}',
    )
    args = parser.parse_args(argv)
    fills: dict[str, dict[str, str]] = (
        json.loads(args.fill.read_text(encoding="utf-8")) if args.fill else {}
    )
    # Two people (or editors) updating the catalogue at once must not undo each other.
    with (ROOT / ".i18n.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _update(fills)


def _update(fills: dict[str, dict[str, str]]) -> int:
    pot = template()
    _write(pot, TEMPLATE, ignore_obsolete=True)
    for lang, locale in LOCALES.items():
        path = po_path(lang)
        catalog = _catalog(locale)
        if path.exists():
            for message in read_catalog(path, locale):
                if message.id:
                    catalog.add(message.id, message.string, flags=message.flags)
        # No fuzzy matching: a guessed translation of a changed text is worse than none.
        catalog.update(pot, no_fuzzy_matching=True, update_creation_date=False)
        catalog.revision_date = _STAMP
        _fill(catalog, fills.get(lang, {}))
        _write(catalog, path, ignore_obsolete=True)
        missing = [m.id for m in catalog if m.id and not m.string]
        print(f"{path.relative_to(ROOT)}: {len(catalog)} texts, {len(missing)} untranslated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
