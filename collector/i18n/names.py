"""The name of a register entry (enterprise, plant, line, process, equipment) in the
reader's language."""

from __future__ import annotations

from collections.abc import Mapping

from collector.i18n.lang import LANGS, Lang


def display_name(lang: Lang, names: Mapping[Lang, str], name: str = "", fallback: str = "") -> str:
    """``names[lang]``, else the plain ``name`` (written in whatever language the plant
    uses), else the name in another language, else ``fallback`` (the id)."""
    if names.get(lang):
        return names[lang]
    if name:
        return name
    for other in LANGS:
        if names.get(other):
            return names[other]
    return fallback
