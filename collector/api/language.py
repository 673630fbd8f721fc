"""The ``lang`` parameter of a route: the reader's language of one request: ``?lang=``, else the ``Accept-Language`` header,
else English. Codes, ids and JSON keys are the same in every language."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Query

from collector.api.errors import ApiError
from collector.i18n import Lang, negotiate, parse_lang

LANG_DESCRIPTION = "en or zh (Simplified Chinese); default: the Accept-Language header, else en"


def lang_param(
    lang: Annotated[str | None, Query(description=LANG_DESCRIPTION)] = None,
    accept_language: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Lang:
    """A route's ``lang`` parameter: an unsupported value is a 422 naming it."""
    if lang:
        try:
            return parse_lang(lang)
        except ValueError as exc:
            raise ApiError(422, "invalid_request", f"lang: {exc}", field="lang") from None
    return negotiate(accept_language)
