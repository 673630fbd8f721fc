"""Which language a reader asked for: ``?lang=``, ``--lang`` / ``KPI_LANG``, or a browser's
``Accept-Language``."""

from __future__ import annotations

from common.languages import DEFAULT_LANG, LANGS, Lang

__all__ = ["DEFAULT_LANG", "LANGS", "Lang", "negotiate", "parse_lang", "reader_lang"]

_ALIASES: dict[str, Lang] = {
    "en": "en",
    "zh": "zh",
    # Simplified Chinese as browsers and locales spell it; Traditional is not offered.
    "zh-cn": "zh",
    "zh-hans": "zh",
    "zh-hans-cn": "zh",
    "zh-sg": "zh",
}


def _lookup(tag: str) -> Lang | None:
    tag = tag.strip().lower().replace("_", "-").split(".", 1)[0]  # zh_CN.UTF-8 → zh-cn
    if tag in _ALIASES:
        return _ALIASES[tag]
    if tag.startswith("en-"):
        return "en"
    return None


def parse_lang(text: str) -> Lang:
    """``en``, ``zh`` (or ``zh-CN``, ``zh_CN.UTF-8``, ``en-GB``, …) → a supported language;
    anything else is a ValueError naming what is supported."""
    found = _lookup(text)
    if found is None:
        raise ValueError(f"language {text!r} is not supported: use one of {', '.join(LANGS)}")
    return found


def negotiate(accept_language: str | None, default: Lang = DEFAULT_LANG) -> Lang:
    """The supported language a browser's ``Accept-Language`` header prefers most."""
    if not accept_language:
        return default
    ranked: list[tuple[float, int, Lang]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        found = _lookup(tag)
        if found is not None and quality > 0:
            ranked.append((-quality, position, found))
    return min(ranked)[2] if ranked else default


def reader_lang(asked: str | None, accept_language: str | None) -> Lang:
    """For texts that must not fail (an error's message): an explicit ``lang`` if it is
    supported, else the ``Accept-Language`` header's choice."""
    if asked:
        try:
            return parse_lang(asked)
        except ValueError:
            pass
    return negotiate(accept_language)
