"""Read-only bearer tokens for the ``/api`` routes.

Every configured token is compared with :func:`hmac.compare_digest`, and all of them
are compared on every request (no early exit), so the time taken says nothing about how
much of a token matched, or which one. The API only reads, so a token grants reading.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence

from fastapi import Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from collector.api.errors import ApiError

_bearer = HTTPBearer(auto_error=False, description="A read-only token from COLLECTOR_API__TOKENS")

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def token_matches(presented: str, tokens: Sequence[bytes]) -> bool:
    candidate = presented.encode()
    matched = False
    for token in tokens:
        # `|` rather than `or`: every token is compared whatever the earlier ones said.
        matched = hmac.compare_digest(candidate, token) | matched
    return matched


def require_token(
    tokens: Sequence[SecretStr],
) -> Callable[[HTTPAuthorizationCredentials | None], Awaitable[None]]:
    """A dependency that lets a request through with a valid token (or when none is set)."""
    secrets = [t.get_secret_value().encode() for t in tokens]

    async def check(
        credentials: HTTPAuthorizationCredentials | None = Security(_bearer),  # noqa: B008
    ) -> None:
        if not secrets:
            return
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise ApiError(
                401,
                "unauthorized",
                "this API needs a token: send 'Authorization: Bearer <token>'",
                headers=_CHALLENGE,
            )
        if not token_matches(credentials.credentials, secrets):
            raise ApiError(401, "unauthorized", "the bearer token is not valid", headers=_CHALLENGE)

    return check
