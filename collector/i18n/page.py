"""The dashboard's catalogue as JSON (``/i18n/{lang}.json``): the same texts as the
gettext catalogue, and what the KPI's codes mean."""

from __future__ import annotations

from typing import Any

from collector.i18n.catalogue import catalogue_of, translator
from collector.i18n.lang import Lang
from collector.i18n.terms import REASONS, SCOPES, STATUSES


def page_catalogue(lang: Lang) -> dict[str, Any]:
    _ = translator(lang)
    return {
        "lang": lang,
        "messages": dict(catalogue_of(lang)),
        "reasons": {code: {"label": _(t.label), "fix": _(t.fix)} for code, t in REASONS.items()},
        "statuses": {code: _(text) for code, text in STATUSES.items()},
        "scopes": {scope: _(text) for scope, text in SCOPES.items()},
    }
