"""What every ``kpi`` command shares as a client of the collector API: its options, the
reader's language, one GET with the API's errors printed as one line (exit 3: unreachable,
4: the API's error), the register's names, and times as a person writes them."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
import typer

from collector.api.models import NamesOut
from collector.i18n import DEFAULT_LANG, Translator, parse_lang, translator
from common.durations import parse_duration

ApiOption = Annotated[str, typer.Option(envvar="KPI_API", help="Collector API base URL")]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar="KPI_TOKEN", help="API bearer token (env KPI_TOKEN)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON")]
LangOption = Annotated[
    str | None,
    typer.Option(
        "--lang",
        envvar="KPI_LANG",
        help="en or zh (Simplified Chinese); default: the terminal's locale (LANG), else en",
    ),
]
DEFAULT_API = "http://127.0.0.1:8080"
LOCALE_VARS = ("LC_ALL", "LC_MESSAGES", "LANG")


def reader(lang: str | None) -> Translator:
    """The texts of ``--lang`` / ``KPI_LANG``, else of the terminal's locale, else English."""
    if lang:
        try:
            return translator(parse_lang(lang))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--lang") from None
    for name in LOCALE_VARS:
        value = os.environ.get(name)
        if value:  # the first one set decides, as for the C library
            try:
                return translator(parse_lang(value))
            except ValueError:
                break
    return translator(DEFAULT_LANG)


def headers(token: str | None, _: Translator) -> dict[str, str]:
    # Accept-Language: the API's error messages come back in the reader's language.
    headers: dict[str, str] = {"Accept-Language": _.lang}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def error_text(response: httpx.Response, _: Translator) -> str:
    """The API's JSON error as one line: status, code, the parameter at fault, detail."""
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text}
    detail = body.get("detail", response.text) if isinstance(body, dict) else body
    field = body.get("field") if isinstance(body, dict) else None
    code = body.get("error", "") if isinstance(body, dict) else ""
    message = body.get("message") if isinstance(body, dict) else None
    where = f" [{field}]" if field else ""
    # In English ``detail`` says it all; in another language ``message`` says it for people.
    said = f" ({message})" if message and _.lang != DEFAULT_LANG else ""
    return f"{response.status_code} {code}{where} {detail}{said}"


def fail(path: str, response: httpx.Response, _: Translator) -> typer.Exit:
    """Print the API's JSON error and exit 4."""
    print(f"kpi: {path}: {error_text(response, _)}", file=sys.stderr)
    return typer.Exit(4)


def unreachable(api: str, exc: Exception, _: Translator) -> typer.Exit:
    text = _("cannot reach the collector API at {api}: {error}", api=api, error=exc)
    print(f"kpi: {text}", file=sys.stderr)
    return typer.Exit(3)


class Unreachable(Exception):
    """The API did not answer (connection refused, timed out)."""


class Refused(Exception):
    """The API answered with an error (its JSON body says which)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def answer(
    api: str, path: str, token: str | None, timeout: float, _: Translator, **params: Any
) -> httpx.Response:
    """One GET of the API: its 200 answer, or :class:`Unreachable` / :class:`Refused`."""
    query = {k: v for k, v in params.items() if v is not None}
    try:
        response = httpx.get(
            f"{api.rstrip('/')}{path}", params=query, headers=headers(token, _), timeout=timeout
        )
    except httpx.HTTPError as exc:
        raise Unreachable(str(exc)) from None
    if response.status_code != 200:
        raise Refused(response)
    return response


def call(
    api: str, path: str, token: str | None, timeout: float, _: Translator, **params: Any
) -> Any:
    """One GET of the API: its JSON answer, or :class:`Unreachable` / :class:`Refused`."""
    return answer(api, path, token, timeout, _, **params).json()


def fetch(
    api: str, path: str, token: str | None, _: Translator, timeout: float = 300, **params: Any
) -> httpx.Response:
    """One GET for a command: its 200 answer; anything else printed, and the command ends
    (exit 3: unreachable, 4: the API's error)."""
    try:
        return answer(api, path, token, timeout, _, **params)
    except Unreachable as exc:
        raise unreachable(api, exc, _) from None
    except Refused as exc:
        raise fail(path, exc.response, _) from None


def get(api: str, path: str, token: str | None, _: Translator, **params: Any) -> Any:
    """:func:`fetch`'s JSON."""
    return fetch(api, path, token, _, **params).json()


def display_names(api: str, token: str | None, _: Translator) -> DisplayNames:
    """The register's names in the reader's language (ids only from a collector without
    ``/api/v1/names``)."""
    try:
        answer = NamesOut.model_validate(call(api, "/api/v1/names", token, 30, _, lang=_.lang))
    except (Unreachable, Refused):
        return DisplayNames()
    return DisplayNames.of(answer)


@dataclass
class DisplayNames:
    """Display names by id, from ``/api/v1/names``."""

    enterprises: dict[str, str] = field(default_factory=dict)
    plants: dict[tuple[str, str], str] = field(default_factory=dict)
    lines: dict[tuple[str, str], str] = field(default_factory=dict)
    """By (plant, line): line ids are unique per plant only."""
    processes: dict[tuple[str, str], str] = field(default_factory=dict)
    """By (enterprise, process)."""

    @classmethod
    def of(cls, answer: NamesOut) -> DisplayNames:
        names = cls()
        for e in answer.enterprises:
            names.enterprises[e.id] = e.name
            for p in e.plants:
                names.plants[(e.id, p.id)] = p.name
                for line in p.lines:
                    names.lines[(p.id, line.id)] = line.name
                    for proc in line.processes:
                        names.processes[(e.id, proc.id)] = proc.name
        return names

    def scope(self, scope: str, scope_id: str, plant: str | None, enterprise: str | None) -> str:
        if scope == "enterprise":
            return self.enterprises.get(scope_id, "")
        if scope == "plant":
            return self.plants.get((enterprise or "", scope_id), "")
        if scope == "line":
            return self.lines.get((plant or "", scope_id), "")
        return ""


def parse_moment(text: str, now: datetime | None = None, option: str | None = None) -> datetime:
    """``now``, ``-24h`` / ``-7d`` (before now), or ISO 8601, a date or a time (no zone:
    UTC); a wrong one is a usage error naming ``option``."""
    now = now or datetime.now(UTC)
    text = text.strip()
    if text == "now":
        return now
    if text.startswith("-"):
        try:
            return now - timedelta(seconds=parse_duration(text[1:]))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint=option) from None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: use ISO 8601 (2026-11-28, 2026-11-28T08:00:00Z, …+08:00), 'now' or '-24h'",
            param_hint=option,
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def parse_when(text: str, now: datetime | None = None) -> str:
    """:func:`parse_moment` as ISO 8601 text with its zone."""
    return iso(parse_moment(text, now))
