"""The languages people read plantkpi in: English and Simplified Chinese.

A register's ``names:`` maps use these keys; the collector's texts (collector/i18n) are
in these languages."""

from __future__ import annotations

from typing import Literal, get_args

Lang = Literal["en", "zh"]
LANGS: tuple[Lang, ...] = get_args(Lang)
DEFAULT_LANG: Lang = "en"

Names = dict[Lang, str]
"""A name per language (``{zh: 磨削, en: Grinding}``), beside the plain ``name``."""
