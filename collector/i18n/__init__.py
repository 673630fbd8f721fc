"""Two languages wherever a person reads: English (the source texts) and Simplified Chinese.

The texts are gettext messages: the English text is the message id, written in the code
(``_("Key processes")`` in Python, ``_("…")`` in the dashboard's JavaScript, ``data-i18n``
in its HTML), and ``locale/zh_CN/LC_MESSAGES/plantkpi.po`` holds the Chinese. That one
catalogue serves the CLI, the API's texts, the exports and reports, and, as JSON, the page
(``/i18n/zh.json``). ``python -m collector.i18n.extract`` brings the template and the
catalogue up to date with the code; ``tests/collector/i18n`` fails while a text has no
translation.

Codes (``LOW_COVERAGE``, ``DIGITALIZED``), ids and JSON keys are never translated.
"""

from collector.i18n.catalogue import Translator, catalogue_of, translator
from collector.i18n.lang import DEFAULT_LANG, LANGS, Lang, negotiate, parse_lang, reader_lang
from collector.i18n.names import display_name

__all__ = [
    "DEFAULT_LANG",
    "LANGS",
    "Lang",
    "Translator",
    "catalogue_of",
    "display_name",
    "negotiate",
    "parse_lang",
    "reader_lang",
    "translator",
]
