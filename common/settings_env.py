"""The environment seen against a settings model: names that set nothing, values that are
not the JSON their setting needs.

pydantic-settings ignores a variable with the service's prefix that matches no field (the
models say ``extra="ignore"``, so ``COLLECTOR_BROKR`` silently leaves the broker at its
default), and when a JSON value does not parse it names only the top-level field
(``kpi`` for ``COLLECTOR_KPI__THRESHOLDS``). :func:`unknown_settings` and
:func:`bad_json_settings` are pure (an environment mapping and a settings class in,
messages out); :func:`settings_environment`, :func:`warn_unknown_settings` and
:func:`json_errors_named` wire them to the process. No message ever quotes a value: the
environment holds passwords and tokens.

A setting that was renamed keeps working under its earlier name: a settings class lists
``RENAMED_SETTINGS`` (earlier name → current name), :func:`apply_renamed_settings` hands
each earlier name's value to the current one before pydantic-settings reads it, and
:func:`renamed_settings` says at start-up what to rename.

Names are compared case-insensitively, as pydantic-settings does with the models'
default ``case_sensitive=False``.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import types
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Final, Union, get_args, get_origin

from dotenv import dotenv_values
from pydantic import BaseModel
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsError

MODEL_ENV_FILE: Final = object()
"""Read the ``.env`` file the model names (pydantic-settings' default for ``_env_file``)."""
NOT_A_SETTING: Final = object()
"""What :func:`setting_type` answers for a name that sets nothing."""
_CONTAINERS = (list, set, frozenset, tuple, dict, Sequence, Mapping)
"""Origins of the types pydantic-settings reads as JSON from a variable."""


def _renamed(settings: type[BaseSettings]) -> Mapping[str, str]:
    """The settings' ``RENAMED_SETTINGS``: earlier variable name → current one."""
    renamed: Mapping[str, str] = getattr(settings, "RENAMED_SETTINGS", {})
    return renamed


def _earlier_name(variable: str, value: str | None, settings: type[BaseSettings]) -> str | None:
    """The current name ``variable`` is an earlier name of, or None. An earlier name that
    is now a nested model's own (``COLLECTOR_BROKER`` was the URL, is now the JSON of the
    whole link) is earlier only for a value that is not a JSON object."""
    current = {old.upper(): new for old, new in _renamed(settings).items()}.get(variable.upper())
    if current is None:
        return None
    if setting_type(variable, settings) is not NOT_A_SETTING and (value or "").lstrip()[:1] == "{":
        return None
    return current


def apply_renamed_settings(
    settings: type[BaseSettings], *sources: PydanticBaseSettingsSource
) -> None:
    """In the environment and ``.env`` sources (``settings_customise_sources``), move each
    earlier name's value to its current name. Both names given in one source is an error
    naming them: which one was meant is not for us to guess."""
    for source in sources:
        env_vars = getattr(source, "env_vars", None)
        if not isinstance(env_vars, MutableMapping):
            continue
        sensitive = bool(getattr(source, "case_sensitive", False))
        for variable in list(env_vars):
            current = _earlier_name(variable, env_vars[variable], settings)
            if current is None:
                continue
            key = current if sensitive else current.lower()
            if key in env_vars:
                raise SettingsError(
                    f"{variable.upper()} and {current} are both set; {variable.upper()} is the "
                    f"earlier name of {current}: keep {current}"
                )
            env_vars[key] = env_vars.pop(variable)


def renamed_settings(environ: Mapping[str, str], settings: type[BaseSettings]) -> list[str]:
    """One message per variable set under an earlier name, naming the current one."""
    messages = []
    for variable, value in sorted(environ.items()):
        current = _earlier_name(variable, value, settings)
        if current is not None:
            messages.append(f"{variable} is now {current}: the earlier name still works; rename it")
    return messages


def _prefix(settings: type[BaseSettings]) -> str:
    return str(settings.model_config.get("env_prefix") or "").upper()


def _delimiter(settings: type[BaseSettings]) -> str | None:
    delimiter = settings.model_config.get("env_nested_delimiter")
    return str(delimiter).upper() if delimiter else None


def _members(annotation: Any) -> tuple[Any, ...]:
    """The types of ``annotation`` without ``None``: ``X | None`` is ``(X,)``."""
    if get_origin(annotation) in (Union, types.UnionType):
        return tuple(arg for arg in get_args(annotation) if arg is not type(None))
    return (annotation,)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model a nested setting is (``InfluxSettings``, ``KpiSettings | None``)."""
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None


def _is_mapping(annotation: Any) -> bool:
    return any(
        member is dict or get_origin(member) in (dict, Mapping) for member in _members(annotation)
    )


def _is_json(annotation: Any) -> bool:
    """pydantic-settings decodes such a value as JSON; a union with a plain type (``list |
    str``) it may also take as text, so that one is not held to JSON here either."""
    members = _members(annotation)
    return all(
        _model_of(member) is not None or member in _CONTAINERS or get_origin(member) in _CONTAINERS
        for member in members
    )


def setting_type(environ_name: str, settings: type[BaseSettings]) -> Any:
    """The type a variable sets (``COLLECTOR_KPI__WINDOW`` → ``KpiSettings.window``'s), or
    :data:`NOT_A_SETTING`. A key below a ``dict`` setting (``…__<any key>``) sets one of
    its values."""
    name, prefix, delimiter = environ_name.upper(), _prefix(settings), _delimiter(settings)
    if not name.startswith(prefix):
        return NOT_A_SETTING
    rest = name[len(prefix) :]
    parts = rest.split(delimiter) if delimiter else [rest]
    model: type[BaseModel] = settings
    for depth, part in enumerate(parts):
        fields = {field.upper(): info for field, info in model.model_fields.items()}
        if part not in fields:
            return NOT_A_SETTING
        annotation = fields[part].annotation
        if depth == len(parts) - 1:
            return annotation
        nested = _model_of(annotation)
        if nested is None:
            if _is_mapping(annotation) and depth == len(parts) - 2:
                return _dict_value_type(annotation)
            return NOT_A_SETTING
        model = nested
    return NOT_A_SETTING


def _dict_value_type(annotation: Any) -> Any:
    for member in _members(annotation):
        arguments = get_args(member)
        if len(arguments) == 2:
            return arguments[1]
    return Any


def setting_names(settings: type[BaseSettings]) -> list[str]:
    """Every variable that sets something: each field, and with a nested delimiter each
    field of a nested model (``COLLECTOR_INFLUX`` as JSON and ``COLLECTOR_INFLUX__URL``)."""
    delimiter = _delimiter(settings)

    def walk(model: type[BaseModel], path: str) -> Iterator[str]:
        for field, info in model.model_fields.items():
            name = path + field.upper()
            yield name
            nested = _model_of(info.annotation)
            if delimiter and nested is not None:
                yield from walk(nested, name + delimiter)

    return list(walk(settings, _prefix(settings)))


def unknown_settings(environ: Mapping[str, str], settings: type[BaseSettings]) -> list[str]:
    """One message per variable with the settings' prefix that sets nothing, naming the
    likely intended one when a name is close: ``COLLECTOR_BROKR is not a setting (did you
    mean COLLECTOR_BROKER?)``."""
    prefix = _prefix(settings)
    # Matched without the prefix every name shares, or anything would look close.
    known = {name[len(prefix) :]: name for name in setting_names(settings)}
    messages = []
    for variable in sorted(environ):
        if not variable.upper().startswith(prefix):
            continue
        if setting_type(variable, settings) is not NOT_A_SETTING:
            continue
        if _earlier_name(variable, environ[variable], settings) is not None:
            continue
        close = difflib.get_close_matches(variable.upper()[len(prefix) :], known, n=1)
        hint = f" (did you mean {known[close[0]]}?)" if close else ""
        messages.append(f"{variable} is not a setting{hint}")
    return messages


def bad_json_settings(environ: Mapping[str, str], settings: type[BaseSettings]) -> list[str]:
    """One message per variable whose setting takes JSON (a list, a mapping, a nested
    model) and whose value does not parse, naming the variable and where the JSON breaks,
    never the value."""
    delimiter = _delimiter(settings)
    messages = []
    for variable, value in sorted(environ.items()):
        annotation = setting_type(variable, settings)
        if annotation is NOT_A_SETTING or not _is_json(annotation):
            continue
        if _earlier_name(variable, value, settings) is not None:
            continue
        # pydantic-settings leaves an empty nested variable unset rather than decode it.
        if not value and delimiter and delimiter in variable.upper():
            continue
        try:
            json.loads(value)
        except json.JSONDecodeError as exc:
            where = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
            field = _field_path(variable, settings)
            messages.append(f"{variable} (setting {field}) is not valid JSON: {where}")
    return messages


def _field_path(environ_name: str, settings: type[BaseSettings]) -> str:
    """``COLLECTOR_KPI__THRESHOLDS`` → ``kpi.thresholds``."""
    rest = environ_name[len(_prefix(settings)) :].lower()
    delimiter = _delimiter(settings)
    return rest.replace(delimiter.lower(), ".") if delimiter else rest


def settings_environment(
    settings: type[BaseSettings], env_file: object = MODEL_ENV_FILE
) -> dict[str, str]:
    """The variables the settings are read from: the ``.env`` file(s) (``env_file``; None
    for none) under the process environment, which wins as it does for pydantic-settings."""
    if env_file is MODEL_ENV_FILE:
        env_file = settings.model_config.get("env_file")
    merged: dict[str, str] = {}
    for path in _env_files(env_file):  # a later file overrides an earlier one
        if path.is_file():
            values = dotenv_values(path)
            merged.update({name: value for name, value in values.items() if value is not None})
    merged.update(os.environ)
    return merged


def _env_files(env_file: object) -> list[Path]:
    """pydantic-settings' ``env_file``: None, one path, or several."""
    if isinstance(env_file, str | Path):
        return [Path(env_file)]
    if isinstance(env_file, Sequence):
        return [Path(path) for path in env_file]
    return []


def warn_unknown_settings(settings: type[BaseSettings], log: logging.Logger) -> None:
    """Log each variable with the service's prefix that sets nothing, and each set under
    an earlier name (start-up)."""
    environ = settings_environment(settings)
    for message in unknown_settings(environ, settings) + renamed_settings(environ, settings):
        log.warning("%s", message)


@contextmanager
def json_errors_named(
    settings: type[BaseSettings], init_values: Mapping[str, Any]
) -> Iterator[None]:
    """Turn pydantic-settings' "error parsing value for field "kpi"" into an error naming
    the variable(s) whose value is not JSON. ``init_values`` are the keyword arguments the
    settings were built with (for an ``_env_file`` among them)."""
    try:
        yield
    except SettingsError as exc:
        if not isinstance(exc.__cause__, json.JSONDecodeError):
            raise
        environ = settings_environment(settings, init_values.get("_env_file", MODEL_ENV_FILE))
        problems = bad_json_settings(environ, settings)
        if not problems:
            raise
        raise SettingsError("; ".join(problems)) from None


class ServiceSettings(BaseSettings):
    """The base of each service's one settings object: an error for a value that is not
    JSON names its variable (pydantic-settings names only the top-level field), and
    ``RENAMED_SETTINGS`` are read under their earlier names too."""

    RENAMED_SETTINGS: ClassVar[dict[str, str]] = {}
    """Earlier variable name → current name, for settings that were renamed."""

    def __init__(self, **values: Any) -> None:
        with json_errors_named(type(self), values):
            super().__init__(**values)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        apply_renamed_settings(settings_cls, env_settings, dotenv_settings)
        return init_settings, env_settings, dotenv_settings, file_secret_settings
