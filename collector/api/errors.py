"""One JSON error shape for every failure: ``{"error": code, "detail": text, ...}``.

Codes a client can branch on (the HTTP status says the class of problem):

========================  ======  =====================================================
``unauthorized``          401     missing or wrong bearer token
``not_found``             404     no such route
``unknown_scope``         404     scope kind or scope id not in the loaded registers
``unknown_process``       404     no key process with that id
``invalid_request``       422     a parameter failed validation (``field`` names it)
``bad_time_range``        422     start/end missing a time zone, reversed, or too long
``too_many_windows``      422     a report would compute more windows than allowed
``not_ready``             503     no KPI evaluation yet
``storage_unavailable``   503     InfluxDB unreachable or answering 5xx
``storage_error``         502     InfluxDB refused the query
``internal``              500     anything unexpected (logged server-side with ``error_id``)
========================  ======  =====================================================

Every body also carries ``message``: what the code means, for a person, in the reader's
language (``?lang=``, else ``Accept-Language``); ``detail`` names the culprit (in English,
as the logs do).

A traceback never reaches the client: the catch-all middleware logs it with an id and
answers that id. Nor does a client's input come back whole: a value quoted in a message is
cut to :data:`ECHO_MAX_CHARS` (:func:`excerpt`), and every text of an error body to
:data:`BODY_TEXT_MAX_CHARS` whatever produced it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from collector.i18n import reader_lang, translator
from collector.i18n.catalogue import N_
from collector.storage.errors import QueryError, QueryUnavailable

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ApiError(Exception):
    """Raised by routes; rendered as ``{"error": code, "detail": detail, **extra}``."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers
        self.extra = dict(extra)
        if field is not None:
            self.extra["field"] = field


ECHO_MAX_CHARS = 200
"""Characters of a client's value an error message quotes: enough to recognise it, while a
100 KB parameter does not come back as a 100 KB answer."""
BODY_TEXT_MAX_CHARS = 1000
"""Longest text in an error body: the last guard for a message that quoted its input whole."""


def excerpt(value: object, limit: int = ECHO_MAX_CHARS) -> str:
    """A client's value quoted for an error message, cut to ``limit`` characters and then
    saying how long it was."""
    text = str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text)} characters)"


def bounded(text: str, limit: int = BODY_TEXT_MAX_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def bad_range(detail: str, field: str) -> ApiError:
    return ApiError(422, "bad_time_range", detail, field=field)


MESSAGES: dict[str, str] = {
    "unauthorized": N_("An API token is missing or wrong."),
    "not_found": N_("There is no such page or address."),
    "method_not_allowed": N_("This address does not take that kind of request."),
    "unknown_scope": N_("That line, plant, enterprise or region is not in the loaded registers."),
    "unknown_process": N_("There is no key process with that id in the loaded registers."),
    "invalid_request": N_("A parameter is not valid: the field named says which."),
    "bad_time_range": N_(
        "The time range is not valid: give start and end with a time zone, start first, within the allowed length."
    ),
    "too_many_windows": N_(
        "The report would compute too many windows: ask for a shorter range or longer windows."
    ),
    "not_ready": N_(
        "No KPI evaluation yet: the first one runs shortly after the collector starts."
    ),
    "storage_unavailable": N_(
        "The database (InfluxDB) cannot be reached: try again shortly, or tell the operator."
    ),
    "storage_error": N_("The database (InfluxDB) refused the query: tell the operator."),
    "internal": N_("Unexpected server error: tell the operator the error id."),
}
"""What each code means to a person; ``detail`` says what exactly was wrong."""


def error_body(
    code: str, detail: Any, request: Request | None = None, **extra: Any
) -> dict[str, Any]:
    message = MESSAGES.get(code)
    body = {"error": code, "detail": _bounded_texts(detail), **_bounded_texts(extra)}
    if message:
        lang = (
            reader_lang(request.query_params.get("lang"), request.headers.get("accept-language"))
            if request is not None
            else "en"
        )
        body["message"] = translator(lang)(message)
    return body


def _bounded_texts(value: Any) -> Any:
    """Every string inside ``value`` (nested lists and dicts too) cut by :func:`bounded`."""
    if isinstance(value, str):
        return bounded(value)
    if isinstance(value, dict):
        return {key: _bounded_texts(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_bounded_texts(item) for item in value]
    return value


_HTTP_CODES = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 503: "not_ready"}


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(
        error_body(exc.code, exc.detail, request, **exc.extra), exc.status, headers=exc.headers
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    return JSONResponse(
        error_body(code, exc.detail, request),
        exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors():
        location = [str(part) for part in err.get("loc", ()) if part not in ("query", "path")]
        problems.append({"field": ".".join(location), "message": str(err.get("msg", ""))})
    first = problems[0] if problems else {"field": "", "message": "invalid request"}
    return JSONResponse(
        error_body(
            "invalid_request",
            f"{first['field']}: {first['message']}" if first["field"] else first["message"],
            request,
            field=first["field"],
            problems=problems,
        ),
        422,
    )


async def _storage_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QueryError)
    # The server's message helps an operator; the full query text stays in the log.
    log.warning("API query failed: %s", exc)
    if isinstance(exc, QueryUnavailable):
        return JSONResponse(
            error_body("storage_unavailable", f"InfluxDB is unavailable: {exc.target}", request),
            503,
        )
    return JSONResponse(
        error_body("storage_error", f"InfluxDB refused the query ({exc.target})", request), 502
    )


class CatchAllMiddleware:
    """Any exception no handler took becomes a 500 JSON naming an error id; the traceback
    goes to the log under that id. (Starlette's own ``Exception`` handler would answer,
    then re-raise for the server to log a second time.) A response already started — a
    streamed CSV — cannot change its status: the connection is cut so the client sees an
    incomplete transfer rather than a silently short file."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            error_id = uuid.uuid4().hex[:12]
            log.exception("API error %s on %s %s", error_id, scope.get("method"), scope.get("path"))
            if started:
                raise
            response = JSONResponse(
                error_body(
                    "internal",
                    f"unexpected server error; logged as {error_id}",
                    Request(scope),
                    error_id=error_id,
                ),
                500,
            )
            await response(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(QueryError, _storage_error)
    app.add_middleware(CatchAllMiddleware)
