"""The one aiohttp session a writer or reader keeps for its InfluxDB server."""

from __future__ import annotations

import aiohttp

from collector.storage.settings import InfluxSettings


class LazySession:
    """Created on first use: a ClientSession belongs to the event loop that runs it."""

    def __init__(self, settings: InfluxSettings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._settings.timeout),
                headers=self._settings.auth_headers(),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
