"""TEST SUPPORT ONLY: InfluxDB 1.8's ``/api/v2/write`` compatibility API in front of 1.x.

Debian's influxd 1.6.7 has no ``/api/v2/write``; InfluxDB 1.8+ does (the "2.x
compatibility API"). To test the collector's v2 mode (``V2Writer`` through
influxdb-client) against a real database, this small aiohttp server translates:

- ``POST /api/v2/write?org=&bucket=<db>[/<rp>]&precision=ns|us|ms|s`` →
  ``POST <upstream>/write?db=<db>&rp=<rp>&precision=n|u|ms|s``, the body forwarded
  untouched with its ``Content-Encoding`` (influxd 1.x reads gzip itself);
- 1.x error answers → 2.x-style JSON with the same status code, e.g. 400
  ``{"code": "invalid", "message": "partial write: field type conflict: ..."}`` and 404
  ``{"code": "not found", "message": "database not found: ..."}``; an unreachable
  upstream → 503 ``{"code": "unavailable", ...}``;
- ``/ping`` and ``/query`` are passed through unchanged; ``/health`` answers
  ``{"status": "pass"}`` while the upstream answers ``/ping``.

Authentication is off: the ``Authorization: Token ...`` header is accepted and ignored
(and not forwarded, so 1.x never sees a token it cannot parse). Modelled on InfluxDB 1.8's
compatibility API; it is not a product component.

In-process::

    proxy = V2Proxy("http://127.0.0.1:8086")
    url = await proxy.start()
    ...
    await proxy.stop()

As a process: ``python -m harness.v2_proxy --upstream URL --port N``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from collections.abc import Mapping

import aiohttp
from aiohttp import web

_PRECISIONS = {"ns": "n", "us": "u", "ms": "ms", "s": "s"}
_CODES = {
    400: "invalid",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    413: "request too large",
    429: "too many requests",
    503: "unavailable",
}
_PASSED_HEADERS = ("Content-Type", "X-Influxdb-Version", "X-Influxdb-Build", "Request-Id")


def _error(status: int, message: str) -> web.Response:
    code = _CODES.get(status, "internal error" if status >= 500 else "invalid")
    return web.json_response({"code": code, "message": message}, status=status)


def _upstream_message(body: bytes, status: int) -> str:
    text = body.decode(errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text or f"upstream answered HTTP {status}"
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return str(data["error"])
    return text


def _passed(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: headers[k] for k in _PASSED_HEADERS if k in headers}


class V2Proxy:
    """The compatibility endpoint as an aiohttp app; ``start()`` returns its URL."""

    def __init__(
        self, upstream: str, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0
    ):
        self.upstream = upstream.rstrip("/")
        self.host = host
        self.port = port
        self.timeout = timeout
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self) -> str:
        # aiohttp's default 1 MiB body limit is below 5,000 uncompressed lines; influxd's
        # own default max-body-size is 25 MB.
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_post("/api/v2/write", self._write)
        app.router.add_route("GET", "/ping", self._ping)
        app.router.add_route("HEAD", "/ping", self._ping)
        app.router.add_get("/health", self._health)
        app.router.add_route("GET", "/query", self._query)
        app.router.add_route("POST", "/query", self._query)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        # auto_decompress=False: a gzip write body is forwarded as gzip, not re-inflated.
        self._runner = web.AppRunner(app, auto_decompress=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.port = int(port)
        self.url = f"http://{host}:{self.port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("V2Proxy is not started")
        return self._session

    async def _write(self, request: web.Request) -> web.Response:
        bucket = request.query.get("bucket", "")
        if not bucket:
            return _error(400, "bucket is required")
        database, _, rp = bucket.partition("/")
        precision = request.query.get("precision", "ns")
        if precision not in _PRECISIONS:
            return _error(400, f"invalid precision {precision!r}: use ns, us, ms or s")
        params = {"db": database, "precision": _PRECISIONS[precision]}
        if rp:
            params["rp"] = rp
        headers = {"Content-Type": request.headers.get("Content-Type", "text/plain")}
        if "Content-Encoding" in request.headers:
            headers["Content-Encoding"] = request.headers["Content-Encoding"]
        body = await request.read()
        try:
            async with self._http().post(
                f"{self.upstream}/write", params=params, data=body, headers=headers
            ) as upstream:
                status = upstream.status
                answer = await upstream.read()
                passed = _passed(upstream.headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return _error(503, f"upstream InfluxDB at {self.upstream} unreachable: {exc!r}")
        if status in (200, 204):
            passed.pop("Content-Type", None)
            return web.Response(status=204, headers=passed)
        response = _error(status, _upstream_message(answer, status))
        response.headers.update({k: v for k, v in passed.items() if k != "Content-Type"})
        return response

    async def _ping(self, request: web.Request) -> web.Response:
        try:
            async with self._http().request(
                request.method, f"{self.upstream}/ping", params=request.query
            ) as upstream:
                body = await upstream.read()
                return web.Response(
                    status=upstream.status, body=body, headers=_passed(upstream.headers)
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            return _error(503, f"upstream InfluxDB at {self.upstream} unreachable: {exc!r}")

    async def _health(self, request: web.Request) -> web.Response:
        try:
            async with self._http().get(f"{self.upstream}/ping") as upstream:
                ok = upstream.status == 204
                version = upstream.headers.get("X-Influxdb-Version", "")
        except (aiohttp.ClientError, TimeoutError) as exc:
            ok, version = False, ""
            message = f"upstream unreachable: {exc!r}"
        else:
            message = "ready for queries and writes" if ok else "upstream /ping failed"
        body: dict[str, object] = {
            "name": "influxdb",
            "message": message,
            "status": "pass" if ok else "fail",
            "checks": [],
            "version": version,
        }
        return web.json_response(body, status=200 if ok else 503)

    async def _query(self, request: web.Request) -> web.Response:
        # Unchanged, except for the Authorization header: the token is ignored here.
        headers = {
            k: v
            for k, v in request.headers.items()
            if k in ("Content-Type", "Content-Encoding", "Accept")
        }
        body = await request.read() if request.can_read_body else None
        try:
            async with self._http().request(
                request.method,
                f"{self.upstream}/query",
                params=request.query,
                data=body,
                headers=headers,
            ) as upstream:
                answer = await upstream.read()
                # The client session has already inflated a gzip answer: send it plain.
                return web.Response(
                    status=upstream.status, body=answer, headers=_passed(upstream.headers)
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            return _error(503, f"upstream InfluxDB at {self.upstream} unreachable: {exc!r}")


async def _serve(upstream: str, host: str, port: int) -> None:
    proxy = V2Proxy(upstream, host, port)
    url = await proxy.start()
    print(f"v2 proxy for {upstream} listening on {url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await proxy.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m harness.v2_proxy",
        description="Test-only InfluxDB 1.8-style /api/v2/write proxy in front of InfluxDB 1.x.",
    )
    parser.add_argument("--upstream", required=True, help="InfluxDB 1.x URL, http://host:port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.upstream, args.host, args.port))


if __name__ == "__main__":
    main()
